//! Connecting to NATS and creating, idempotently, every stream, consumer, KV bucket and
//! object store the pipeline uses, so any service can start first.

use std::time::Duration;

use async_nats::jetstream::{
    self, consumer,
    kv::Store,
    object_store::ObjectStore,
    stream::{self, RetentionPolicy, StorageType},
};

use backon::{ExponentialBuilder, Retryable};
use tracing::warn;

use crate::subjects::{self, Bucket};

/// The cause of a bus failure, as the NATS client reported it.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the bus plumbing; each keeps the client's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL that was tried.
        url: String,
        /// What the client said.
        source: Cause,
    },
    /// A stream, consumer, bucket or object store could not be created or opened.
    #[error("cannot set up {what} on NATS JetStream: {source}")]
    Setup {
        /// The thing being set up.
        what: String,
        /// What the server said.
        source: Cause,
    },
    /// Publishing failed or was not acknowledged.
    #[error("cannot publish on {subject}: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// What the client said.
        source: Cause,
    },
    /// A KV or object store operation failed.
    #[error("{op} failed: {source}")]
    Store {
        /// The operation.
        op: String,
        /// What the server said.
        source: Cause,
    },
    /// A message's type header names another type than the subject carries.
    #[error("a {found} message where a {expected} belongs")]
    WrongType {
        /// The type the subject carries.
        expected: &'static str,
        /// The type the message says it is.
        found: String,
    },
    /// A payload could not be decoded.
    #[error("malformed {what}: {source}")]
    Decode {
        /// The message type expected.
        what: &'static str,
        /// What the decoder said.
        source: prost::DecodeError,
    },
}

impl BusError {
    /// A failed KV or object store operation.
    pub fn store(op: impl Into<String>, source: impl Into<Cause>) -> Self {
        BusError::Store {
            op: op.into(),
            source: source.into(),
        }
    }
}

/// How long a stage may hold a message before JetStream redelivers it, unless the
/// worker sends progress acks (it does, every third of this); the default of
/// [`Bus::with_ack_wait`].
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Deliveries of a message before it is dead-lettered.
pub const MAX_DELIVER: i64 = 5;
/// JetStream's publish dedupe window (`Nats-Msg-Id`).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A connection to NATS with every Tollgate stream, bucket and store opened. The buckets
/// and stores are reached through their owning modules, not from here.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    buckets: Vec<Store>,
    pub(crate) artifacts: ObjectStore,
    pub(crate) datasets: ObjectStore,
    pub(crate) code: ObjectStore,
    ack_wait: Duration,
}

/// How a connection signs in to NATS, which servers it trusts, and how many copies of
/// each stream, bucket and store it asks for when it creates them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// A `.creds` file from `tollgate nats-config`; `None`: no credentials.
    pub creds: Option<std::path::PathBuf>,
    /// A CA certificate (PEM) that signs the server's TLS certificate; `None`: plain TCP.
    pub ca: Option<std::path::PathBuf>,
    /// Replicas of every stream, bucket and object store this connection creates (3 on
    /// a three-node cluster); 0 or 1: one. Ones that exist are opened as they are.
    pub replicas: usize,
}

impl Options {
    /// The variables [`Options::from_env`] reads: credentials, CA, replicas.
    pub const ENV_VARS: [&str; 3] = [
        "TOLLGATE_NATS_CREDS",
        "TOLLGATE_NATS_CA",
        "TOLLGATE_NATS_REPLICAS",
    ];

    /// `TOLLGATE_NATS_CREDS`, `TOLLGATE_NATS_CA` and `TOLLGATE_NATS_REPLICAS`, where set:
    /// what the CLI connects with.
    pub fn from_env() -> Self {
        let [creds, ca, replicas] = Self::ENV_VARS;
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from)
        };
        Options {
            creds: path(creds),
            ca: path(ca),
            replicas: std::env::var(replicas)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(1),
        }
    }
}

/// The servers of a NATS URL: one, or several separated by commas (the nodes of a
/// cluster, any of which will do).
fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.parse().map_err(|e| format!("{u}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|addrs| {
            if addrs.is_empty() {
                Err("no server in the URL".into())
            } else {
                Ok(addrs)
            }
        })
}

impl Bus {
    /// Connects to `url` as [`Options::from_env`] says (`TOLLGATE_NATS_CREDS`,
    /// `TOLLGATE_NATS_CA`, `TOLLGATE_NATS_REPLICAS`) and creates (or opens) every stream,
    /// bucket and store.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with(url, &Options::from_env()).await
    }

    /// Connects to `url` (one server, or a cluster's, comma-separated) with `options`
    /// and creates (or opens) every stream, bucket and store.
    pub async fn connect_with(url: &str, options: &Options) -> Result<Self, BusError> {
        let refused = |source: String| BusError::Connect {
            url: url.into(),
            source: source.into(),
        };
        let mut connect = async_nats::ConnectOptions::new()
            .name("tollgate")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &options.creds {
            let text = std::fs::read_to_string(path)
                .map_err(|e| refused(format!("credentials file {}: {e}", path.display())))?;
            let (identity, seed) = crate::access::parse_creds(&text)
                .map_err(|e| refused(format!("credentials file {}: {e}", path.display())))?;
            connect = connect
                .nkey(seed)
                .custom_inbox_prefix(identity.inbox_prefix());
        }
        if let Some(ca) = &options.ca {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        let addrs = server_addrs(url).map_err(refused)?;
        let client = connect.connect(addrs.as_slice());
        let client = tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .map_err(|_| BusError::Connect {
                url: url.into(),
                source: "no answer within 30 s".into(),
            })?
            .map_err(|e| BusError::Connect {
                url: url.into(),
                source: e.into(),
            })?;
        let js = jetstream::new(client.clone());
        let replicas = options.replicas.max(1);
        // A cluster that is still electing leaders, or busy placing replicas for services
        // that all start at once, times requests out for a while: try again before
        // giving up.
        let Opened {
            buckets,
            artifacts,
            datasets,
            code,
        } = (|| open_all(&js, replicas))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(250))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(8),
            )
            .notify(|e, after| warn!(error = %e, ?after, "NATS JetStream not ready; trying again"))
            .await?;
        Ok(Bus {
            client,
            js,
            buckets,
            artifacts,
            datasets,
            code,
            ack_wait: ACK_WAIT,
        })
    }

    /// The same connection, creating consumers with `ack_wait` instead of [`ACK_WAIT`].
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// How long a held message waits before it is delivered again.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// The core NATS client (plain subscriptions and publishes).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (streams and consumers; the tests read dead letters here).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// A key-value bucket, for the module that owns it (see [`Bucket`]).
    pub fn key_value(&self, bucket: Bucket) -> Store {
        // `Bucket::ALL` lists every variant in declaration order, as `connect` created them.
        self.buckets[bucket as usize].clone()
    }

    /// Opens (creating if needed) a durable pull consumer on the work stream.
    pub async fn work_consumer(
        &self,
        durable: &str,
        filter: &str,
    ) -> Result<consumer::PullConsumer, BusError> {
        self.durable(subjects::WORK_STREAM, durable, filter).await
    }

    /// Opens (creating if needed) a durable pull consumer on `stream` filtered to `filter`.
    pub async fn durable(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
    ) -> Result<consumer::PullConsumer, BusError> {
        let setup = |e: Cause| BusError::Setup {
            what: format!("consumer {durable} on {stream}"),
            source: e,
        };
        let stream = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| setup(e.into()))?;
        stream
            .get_or_create_consumer(
                durable,
                consumer::pull::Config {
                    durable_name: Some(durable.into()),
                    filter_subject: filter.into(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    max_deliver: MAX_DELIVER,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| setup(e.into()))
    }
}

/// A stream every connection opens: its name, subjects, retention and how long it keeps
/// messages.
struct StreamSpec {
    name: &'static str,
    subjects: &'static [&'static str],
    retention: RetentionPolicy,
    days: u64,
}

/// Every stream of Tollgate's own, in one place: [`Bus::connect_with`] opens them and
/// [`stream_names`] lists them for nats-server's permissions.
const STREAMS: [StreamSpec; 5] = [
    StreamSpec {
        name: subjects::WORK_STREAM,
        subjects: &[subjects::TRIGGER_ALL, subjects::STAGE_ALL],
        retention: RetentionPolicy::WorkQueue,
        days: 7,
    },
    StreamSpec {
        name: subjects::RUNS_STREAM,
        subjects: &[subjects::RUN_ALL],
        retention: RetentionPolicy::Limits,
        days: 90,
    },
    StreamSpec {
        name: subjects::ALERTS_STREAM,
        subjects: &[subjects::ALERT_ALL],
        retention: RetentionPolicy::Limits,
        days: 90,
    },
    StreamSpec {
        name: subjects::DEADLETTER_STREAM,
        subjects: &[subjects::DEADLETTER_ALL],
        retention: RetentionPolicy::Limits,
        days: 30,
    },
    StreamSpec {
        name: subjects::SERVED_STREAM,
        subjects: &[subjects::SERVED_ALL],
        retention: RetentionPolicy::Limits,
        days: 7,
    },
];

/// The name of every stream a connection opens: Tollgate's own, and those behind its
/// key-value buckets (`KV_*`) and object stores (`OBJ_*`).
pub fn stream_names() -> Vec<String> {
    STREAMS
        .iter()
        .map(|s| s.name.to_string())
        .chain(Bucket::ALL.iter().map(|b| format!("KV_{}", b.name())))
        .chain(OBJECT_STORES.iter().map(|o| format!("OBJ_{o}")))
        .collect()
}

/// Every object store a connection opens.
const OBJECT_STORES: [&str; 3] = [
    subjects::ARTIFACTS_STORE,
    subjects::DATASETS_STORE,
    subjects::CODE_STORE,
];

/// What [`open_all`] opened.
struct Opened {
    buckets: Vec<Store>,
    artifacts: ObjectStore,
    datasets: ObjectStore,
    code: ObjectStore,
}

/// Opens (creating where missing) every stream, bucket and store, in one attempt.
async fn open_all(js: &jetstream::Context, replicas: usize) -> Result<Opened, BusError> {
    for spec in &STREAMS {
        ensure_stream(js, spec, replicas).await?;
    }
    let mut buckets = Vec::with_capacity(Bucket::ALL.len());
    for bucket in Bucket::ALL {
        buckets.push(ensure_kv(js, bucket.name(), replicas).await?);
    }
    let [artifacts, datasets, code] = OBJECT_STORES;
    Ok(Opened {
        buckets,
        artifacts: ensure_object_store(js, artifacts, replicas).await?,
        datasets: ensure_object_store(js, datasets, replicas).await?,
        code: ensure_object_store(js, code, replicas).await?,
    })
}

async fn ensure_stream(
    js: &jetstream::Context,
    spec: &StreamSpec,
    replicas: usize,
) -> Result<(), BusError> {
    js.get_or_create_stream(stream::Config {
        name: spec.name.into(),
        subjects: spec.subjects.iter().map(|s| s.to_string()).collect(),
        retention: spec.retention,
        max_age: Duration::from_secs(spec.days * 24 * 3600),
        storage: StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map(|_| ())
    .map_err(|e| BusError::Setup {
        what: format!("stream {}", spec.name),
        source: e.into(),
    })
}

/// Reads of buckets and stores go to each stream's leader (`allow_direct: false`), so a
/// reader sees every write acknowledged before it, on one server or on a cluster. With
/// direct gets, as the client's own create calls set up, any replica answers, and a
/// follower a moment behind reports a just-written artifact missing.
const READ_FROM_LEADER: bool = false;

async fn ensure_kv(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<Store, BusError> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    // The stream `create_key_value` would make, but read through its leader.
    let created = js
        .get_or_create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 10,
            storage: StorageType::File,
            num_replicas: replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: READ_FROM_LEADER,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    let opened = js.get_key_value(bucket).await;
    opened_after(created, opened, || format!("key-value bucket {bucket}"))
}

/// The store opened after its stream was created (or found created by another service);
/// when it cannot be opened, the creation's error if there was one, else the opening's.
fn opened_after<S, C, O>(
    created: Result<S, C>,
    opened: Result<O, impl Into<Cause>>,
    what: impl Fn() -> String,
) -> Result<O, BusError>
where
    C: Into<Cause>,
{
    match (created, opened) {
        (_, Ok(store)) => Ok(store),
        (Err(e), Err(_)) => Err(BusError::Setup {
            what: what(),
            source: e.into(),
        }),
        (Ok(_), Err(e)) => Err(BusError::Setup {
            what: what(),
            source: e.into(),
        }),
    }
}

async fn ensure_object_store(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<ObjectStore, BusError> {
    if let Ok(store) = js.get_object_store(bucket).await {
        return Ok(store);
    }
    // The stream `create_object_store` would make, but read through its leader.
    let created = js
        .get_or_create_stream(stream::Config {
            name: format!("OBJ_{bucket}"),
            subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
            storage: StorageType::File,
            num_replicas: replicas,
            allow_rollup: true,
            allow_direct: READ_FROM_LEADER,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    let opened = js.get_object_store(bucket).await;
    opened_after(created, opened, || format!("object store {bucket}"))
}

/// Reads a protobuf value (`what` names its type in errors) and its revision from
/// `store`: the default and `None` before its first write.
pub(crate) async fn read_versioned<M: prost::Message + Default>(
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
        Some(e) if e.operation == Operation::Put => {
            Ok((crate::codec::decode(what, &e.value)?, Some(e.revision)))
        }
        Some(e) => Ok((M::default(), Some(e.revision))),
        None => Ok((M::default(), None)),
    }
}

/// Writes `value` at `key` if nobody wrote it since `revision` (`None`: nobody ever
/// did); `false` when someone did.
pub(crate) async fn write_versioned<M: prost::Message>(
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
