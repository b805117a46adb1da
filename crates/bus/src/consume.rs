//! The consume loop every consumer shares, with dead-lettering.
//!
//! A message is acked only after its handler's effects are stored in JetStream. A failure
//! that may pass is nak'ed with a growing delay; after [`MAX_DELIVER`] deliveries, or at
//! once for a message that can never succeed, it is dead-lettered on
//! `tollgate.deadletter.<consumer>` with the reason in a header, then acked. On shutdown
//! the message in hand gets the bus's shutdown grace ([`crate::bus::SHUTDOWN_GRACE`] unless the
//! service sets `shutdown_grace_secs`) to finish; then it is nak'ed so another replica
//! takes it. Nothing waits past the grace, not even with nats-server unreachable: a
//! message whose nak cannot be sent is redelivered after the ack wait. Nothing is
//! dropped silently.

use std::{future::Future, time::Duration};

use async_nats::{HeaderMap, jetstream::AckKind, jetstream::consumer::PullConsumer};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Bus, BusError, bus::MAX_DELIVER, subjects};

/// The most the last acknowledgements may take to reach nats-server on shutdown; an
/// unreachable server does not hold the process.
const FINAL_FLUSH: Duration = Duration::from_millis(500);

/// How long one pull request waits for a message before the next one is sent.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// A message handed to a consumer, with its delivery count.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subject it arrived on.
    pub subject: String,
    /// The raw payload.
    pub payload: bytes::Bytes,
    /// Its headers (trace context, message id).
    pub headers: Option<HeaderMap>,
    /// 1 for the first delivery.
    pub attempt: i64,
}

impl Delivery {
    /// Whether a failure now exhausts the redelivery budget.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= MAX_DELIVER
    }
}

/// What the consume loop does with a message after its handler ran.
#[derive(Debug)]
pub enum Disposition {
    /// Done: acknowledge.
    Ack,
    /// Failed in a way that may pass: redeliver later, or dead-letter on the last attempt.
    Retry(String),
    /// Cannot ever be handled: dead-letter with this reason, then acknowledge.
    DeadLetter(String),
    /// Put back at once for another consumer (this one is shutting down).
    Release(String),
}

/// Pulls from `consumer` one message at a time until `shutdown`, handing each to `handle`
/// with a token that is cancelled when shutdown is asked. The message in hand is always
/// finished (acked, nak'ed or dead-lettered) before returning; progress acks keep it from
/// being redelivered while the handler works.
pub async fn consume<F, Fut>(
    bus: &Bus,
    consumer: PullConsumer,
    name: &str,
    shutdown: CancellationToken,
    mut handle: F,
) -> Result<(), BusError>
where
    F: FnMut(Delivery, CancellationToken) -> Fut,
    Fut: Future<Output = Disposition>,
{
    // Short-lived pull requests: a request the server dropped under load would otherwise
    // leave the consumer idle until the default 30 s expiry (seen in `make bench-load`).
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_EXPIRES / 2)
        .messages()
        .await
        .map_err(|e| BusError::Setup {
            what: format!("message stream of consumer {name}"),
            source: e.into(),
        })?;
    info!(consumer = name, "consuming");
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            next = messages.next() => next,
        };
        let msg = match next {
            None => break,
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                warn!(consumer = name, error = %e, "pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let delivery = Delivery {
            subject: msg.subject.to_string(),
            payload: msg.payload.clone(),
            headers: msg.headers.clone(),
            attempt: msg.info().map(|i| i.delivered).unwrap_or(1),
        };
        let work = handle(delivery.clone(), shutdown.clone());
        tokio::pin!(work);
        let mut ticker = tokio::time::interval(bus.ack_wait() / 3);
        ticker.tick().await;
        let grace = tokio::time::sleep(Duration::MAX);
        tokio::pin!(grace);
        let mut stopping = false;
        let allowed = bus.shutdown_grace();
        let disposition = loop {
            tokio::select! {
                d = &mut work => break d,
                _ = shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    info!(consumer = name, "shutdown asked; letting the message in hand finish");
                    grace.as_mut().reset(tokio::time::Instant::now() + allowed);
                }
                _ = &mut grace => {
                    break Disposition::Release(format!("not finished within {allowed:?} of shutdown"));
                }
                _ = ticker.tick() => {
                    if let Err(e) = msg.ack_with(AckKind::Progress).await {
                        warn!(consumer = name, error = %e, "progress ack failed");
                    }
                }
            }
        };
        let settled = settle(bus, name, &msg, &delivery, disposition);
        // Settling talks to nats-server: after shutdown it may not wait on one that is gone.
        let settled = if shutdown.is_cancelled() {
            match tokio::time::timeout(FINAL_FLUSH, settled).await {
                Ok(settled) => settled,
                Err(_) => {
                    warn!(
                        consumer = name,
                        "nats-server did not take the acknowledgement in time; JetStream will redeliver the message after the ack wait"
                    );
                    Ok(())
                }
            }
        } else {
            settled.await
        };
        if let Err(e) = settled {
            warn!(consumer = name, error = %e, "could not settle message; JetStream will redeliver it");
        }
    }
    // Acks and naks are buffered: send them before the process may exit, so a message
    // put back on shutdown goes to another replica now, not after the ack wait. A server
    // that is gone cannot take them: then JetStream redelivers after the ack wait.
    match tokio::time::timeout(FINAL_FLUSH, bus.client().flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            warn!(consumer = name, error = %e, "could not flush the last acknowledgements")
        }
        Err(_) => {
            warn!(
                consumer = name,
                "nats-server did not take the last acknowledgements in time"
            )
        }
    }
    info!(consumer = name, "stopped consuming");
    Ok(())
}

/// Acks, naks or dead-letters a handled message as its disposition says.
async fn settle(
    bus: &Bus,
    name: &str,
    msg: &async_nats::jetstream::Message,
    delivery: &Delivery,
    disposition: Disposition,
) -> Result<(), async_nats::Error> {
    match disposition {
        Disposition::Ack => msg.ack().await,
        Disposition::Release(reason) => {
            info!(consumer = name, %reason, "message released for another consumer");
            msg.ack_with(AckKind::Nak(None)).await
        }
        Disposition::Retry(reason) if !delivery.is_last_attempt() => {
            warn!(consumer = name, attempt = delivery.attempt, %reason, "will retry");
            let delay = Duration::from_secs(delivery.attempt.clamp(1, 30) as u64);
            msg.ack_with(AckKind::Nak(Some(delay))).await
        }
        Disposition::Retry(reason) | Disposition::DeadLetter(reason) => {
            match dead_letter(bus, name, delivery, &reason).await {
                Ok(()) => msg.ack().await,
                Err(e) => {
                    warn!(consumer = name, error = %e, "dead-letter publish failed; nak");
                    msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await
                }
            }
        }
    }
}

/// Republishes a message on the consumer's dead-letter subject with the reason.
pub async fn dead_letter(
    bus: &Bus,
    consumer: &str,
    delivery: &Delivery,
    reason: &str,
) -> Result<(), BusError> {
    warn!(consumer, subject = %delivery.subject, %reason, "dead-lettering message");
    tollgate_telemetry::metrics::get().dead_lettered(consumer);
    let mut headers = delivery.headers.clone().unwrap_or_default();
    headers.insert(subjects::HEADER_REASON, one_line(reason).as_str());
    headers.insert(subjects::HEADER_ORIGINAL_SUBJECT, delivery.subject.as_str());
    headers.insert(
        subjects::HEADER_DELIVERIES,
        delivery.attempt.to_string().as_str(),
    );
    // A dead letter is its own message: it must not be deduped against the original.
    headers.insert("Nats-Msg-Id", ulid::Ulid::new().to_string().as_str());
    bus.publish_raw(
        subjects::deadletter(consumer),
        headers,
        delivery.payload.clone(),
    )
    .await
}

/// A reason on one line, as a header value must be.
pub fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}
