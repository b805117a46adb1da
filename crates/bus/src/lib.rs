//! NATS JetStream plumbing shared by every Tollgate service: only the transport.
//!
//! Services never spell a subject, stream, bucket or key themselves: they come from
//! [`subjects`]. [`Bus::connect`] creates what the pipeline needs idempotently at start-up,
//! [`codec`] carries protobuf payloads with the W3C trace context in headers, and
//! [`consume`] is the one loop that pulls messages and acks only after their effects. What
//! the messages mean (stages, run events, claims, groups, specs, alerts, datasets,
//! artifacts) lives in the `tollgate-pipeline` crate on top of this one.
//!
//! # Layout
//! - [`subjects`]: subject, stream, consumer, bucket, key and message-id names.
//! - [`bus`]: connecting and creating streams, consumers, KV buckets and object stores.
//! - [`codec`]: protobuf publish and decode with trace propagation.
//! - [`consume`]: the consume loop, dead-lettering and release on shutdown.
//! - [`deadletters`]: listing and replaying dead letters.
//! - [`access`]: who may publish and subscribe to what, as NATS permissions.
//! - [`catalog`]: every stream, bucket and object store, with its limits.
//! - [`error`]: the bus's errors.

pub mod access;
pub mod bus;
pub mod catalog;
pub mod codec;
pub mod consume;
pub mod deadletters;
pub mod error;
pub mod subjects;

pub use bus::{Bus, BusError};

/// Milliseconds since the Unix epoch, the timestamp unit of every message.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
