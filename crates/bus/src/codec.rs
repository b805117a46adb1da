//! Protobuf payloads on NATS, with the W3C trace context of the current span in the
//! message headers, so one pipeline run is one trace across every service.

use async_nats::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use prost::Message;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use async_nats::jetstream::kv::Store;

use crate::error::Cause;
use crate::{Bus, BusError, subjects};

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

/// Headers carrying the current span's trace context (`traceparent`, `tracestate`).
pub fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut HeaderInjector(&mut headers))
    });
    headers
}

/// Makes the trace context in `headers` the parent of `span`.
pub fn adopt_trace(span: &tracing::Span, headers: Option<&HeaderMap>) {
    if let Some(headers) = headers {
        let cx = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(headers))
        });
        // A span without an OpenTelemetry layer has nothing to parent: not an error here.
        let _ = span.set_parent(cx);
    }
}

/// The trace id (32 hex digits) of the trace context `headers` carry, if they carry one:
/// read by the same propagator [`adopt_trace`] uses.
pub fn trace_id(headers: Option<&HeaderMap>) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    let headers = headers?;
    let cx =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| context.trace_id().to_string())
}

/// Decodes a protobuf payload, naming the type in the error.
pub fn decode<M: Message + Default>(what: &'static str, payload: &[u8]) -> Result<M, BusError> {
    M::decode(payload).map_err(|source| BusError::Decode { what, source })
}

/// The short name of a message type, as the type header carries it (`Trigger`).
fn type_word<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Decodes a delivered message as `M`. Protobuf bytes of another type often decode
/// without error, so a message whose type header names another type is refused; one
/// without the header (another publisher) is decoded as it is.
pub fn decode_delivery<M: Message + Default>(
    payload: &[u8],
    headers: Option<&HeaderMap>,
) -> Result<M, BusError> {
    let what = type_word::<M>();
    if let Some(found) = headers.and_then(|h| h.get(subjects::HEADER_TYPE))
        && found.as_str() != what
    {
        return Err(BusError::WrongType {
            expected: what,
            found: found.as_str().to_string(),
        });
    }
    decode(what, payload)
}

impl Bus {
    /// Publishes `msg` on a JetStream subject with trace headers and waits for the
    /// stream's acknowledgement. `msg_id` (if any) makes the publish idempotent within
    /// the dedupe window.
    pub async fn publish<M: Message>(
        &self,
        subject: String,
        msg: &M,
        msg_id: Option<&str>,
    ) -> Result<(), BusError> {
        let mut headers = trace_headers();
        headers.insert(subjects::HEADER_TYPE, type_word::<M>());
        if let Some(id) = msg_id {
            headers.insert("Nats-Msg-Id", id);
        }
        self.publish_raw(subject, headers, msg.encode_to_vec().into())
            .await
    }

    /// Publishes raw bytes with the given headers and waits for the stream's ack.
    pub async fn publish_raw(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: bytes::Bytes,
    ) -> Result<(), BusError> {
        let err = |e: crate::error::Cause| BusError::Publish {
            subject: subject.clone(),
            source: e,
        };
        self.js
            .publish_with_headers(subject.clone(), headers, payload)
            .await
            .map_err(|e| err(e.into()))?
            .await
            .map_err(|e| err(e.into()))?;
        Ok(())
    }
}

/// An ordered consumer (ephemeral, in order, through reconnects).
pub type Ordered =
    async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::push::OrderedConfig>;

/// Where a stream read starts.
#[derive(Debug, Clone, Copy)]
enum From {
    /// The oldest message the stream keeps.
    Oldest,
    /// The stream's `n` latest messages (of any subject).
    Last(u64),
    /// The first message stored at or after this time (Unix ms).
    Time(i64),
}

/// How long reading a stream may wait for the next message it was told is there.
const READ_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Bus {
    /// An ordered consumer of every message on `subject` that `stream` keeps, from the
    /// oldest: how histories are read and followed.
    pub async fn ordered(&self, stream: &str, subject: &str) -> Result<Ordered, BusError> {
        self.ordered_from(stream, subject, From::Oldest).await
    }

    /// [`Bus::ordered`] from where `from` says: a bound on how much history a reader takes.
    async fn ordered_from(
        &self,
        stream: &str,
        subject: &str,
        from: From,
    ) -> Result<Ordered, BusError> {
        use async_nats::jetstream::consumer::{DeliverPolicy, push::OrderedConfig};
        let setup = |e: Cause| BusError::Setup {
            what: format!("an ordered consumer of {stream}"),
            source: e,
        };
        let mut handle = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| setup(e.into()))?;
        let deliver_policy = match from {
            From::Oldest => DeliverPolicy::All,
            From::Time(ms) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(ms) * 1_000_000,
                )
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            },
            From::Last(n) => {
                let state = &handle.info().await.map_err(|e| setup(e.into()))?.state;
                let start = state
                    .last_sequence
                    .saturating_sub(n.saturating_sub(1))
                    .max(state.first_sequence)
                    .max(1);
                DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                }
            }
        };
        handle
            .create_consumer(OrderedConfig {
                deliver_subject: self.client().new_inbox(),
                filter_subject: subject.into(),
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| setup(e.into()))
    }

    /// [`Bus::read_all`] among the stream's `last` latest messages only.
    pub async fn read_recent<M: Message + Default>(
        &self,
        stream: &str,
        subject: &str,
        last: u64,
        what: &'static str,
    ) -> Result<Vec<M>, BusError> {
        self.read_from(stream, subject, From::Last(last), what)
            .await
    }

    /// [`Bus::read_all`] of the messages stored at or after `since_unix_ms` only.
    pub async fn read_since<M: Message + Default>(
        &self,
        stream: &str,
        subject: &str,
        since_unix_ms: i64,
        what: &'static str,
    ) -> Result<Vec<M>, BusError> {
        self.read_from(stream, subject, From::Time(since_unix_ms), what)
            .await
    }

    /// Every message on `subject` that `stream` keeps, oldest first, decoded as `what`
    /// (one that does not decode is skipped with a warning): what a command reads a
    /// history with.
    pub async fn read_all<M: Message + Default>(
        &self,
        stream: &str,
        subject: &str,
        what: &'static str,
    ) -> Result<Vec<M>, BusError> {
        self.read_from(stream, subject, From::Oldest, what).await
    }

    async fn read_from<M: Message + Default>(
        &self,
        stream: &str,
        subject: &str,
        from: From,
        what: &'static str,
    ) -> Result<Vec<M>, BusError> {
        use futures::StreamExt;
        let setup = |e: Cause| BusError::Setup {
            what: format!("an ordered consumer of {stream}"),
            source: e,
        };
        let mut consumer = self.ordered_from(stream, subject, from).await?;
        let pending = consumer
            .info()
            .await
            .map_err(|e| setup(e.into()))?
            .num_pending as usize;
        let mut out = Vec::with_capacity(pending);
        if pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(|e| setup(e.into()))?;
        while out.len() < pending {
            let Ok(Some(message)) = tokio::time::timeout(READ_WAIT, messages.next()).await else {
                tracing::warn!(%stream, %subject, read = out.len(), pending, "stream stopped early");
                break;
            };
            let message = message.map_err(|e| setup(e.into()))?;
            match decode::<M>(what, &message.payload) {
                Ok(m) => out.push(m),
                Err(e) => {
                    tracing::warn!(%subject, error = %e, "a message does not decode; skipped")
                }
            }
        }
        Ok(out)
    }
}

/// Reads a protobuf value (`what` names its type in errors) and its revision from
/// `store`: the default and `None` before its first write.
pub async fn read_versioned<M: prost::Message + Default>(
    store: &Store,
    key: &str,
    what: &'static str,
) -> Result<(M, Option<u64>), BusError> {
    use async_nats::jetstream::kv::Operation;
    let entry = store
        .entry(key)
        .await
        .map_err(|e| BusError::store(format!("reading {key}"), e))?;
    match entry {
        Some(e) if e.operation == Operation::Put => Ok((decode(what, &e.value)?, Some(e.revision))),
        Some(e) => Ok((M::default(), Some(e.revision))),
        None => Ok((M::default(), None)),
    }
}

/// Writes `value` at `key` if nobody wrote it since `revision` (`None`: nobody ever
/// did); `false` when someone did.
pub async fn write_versioned<M: prost::Message>(
    store: &Store,
    key: &str,
    value: &M,
    revision: Option<u64>,
) -> Result<bool, BusError> {
    use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
    let bytes = value.encode_to_vec().into();
    let err = |e: Cause| BusError::store(format!("writing {key}"), e);
    match revision {
        Some(rev) => match store.update(key, bytes, rev).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(err(e.into())),
        },
        None => match store.create(key, bytes).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(err(e.into())),
        },
    }
}
