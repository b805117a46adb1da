//! NATS JetStream plumbing shared by every Tollgate service: only the bus.
//!
//! Services never spell a subject, stream, bucket or key themselves: they come from
//! [`subjects`]. [`Bus::connect`] creates what the pipeline needs idempotently at start-up,
//! [`codec`] carries protobuf payloads with the W3C trace context in headers, [`consume`]
//! is the one loop that pulls messages and acks only after their effects, and [`stage`]
//! is the stage protocol on top of it. Each bucket and object store has one owning module.
//!
//! # Layout
//! - [`subjects`]: subject, stream, consumer, bucket, key and message-id names.
//! - [`bus`]: connecting and creating streams, consumers, KV buckets and object stores.
//! - [`codec`]: protobuf publish and decode with trace propagation.
//! - [`consume`]: the consume loop, dead-lettering and release on shutdown.
//! - [`deadletters`]: listing and replaying dead letters.
//! - [`stage`]: the stage protocol: run a handler, forward the run or end it.
//! - [`events`]: run events (created, started, finished, progress, completed).
//! - [`claims`]: trigger claims (the `tollgate_triggers` bucket).
//! - [`specs`]: published specs by digest (the `tollgate_specs` bucket).
//! - [`groups`]: concurrency groups and cancel requests (the `tollgate_groups` bucket).
//! - [`alerts`]: the spec's alert rules as runs end (the `tollgate_alerts` bucket).
//! - [`artifacts`]: the model artifacts object store.
//! - [`code`]: code snapshots and uploaded models, by digest.
//! - [`dataset`]: dataset URIs and the datasets object store.

pub mod access;
pub mod alerts;
pub mod artifacts;
pub mod bus;
pub mod catalog;
pub mod claims;
pub mod code;
pub mod codec;
pub mod consume;
pub mod dataset;
pub mod deadletters;
pub mod error;
pub mod events;
pub mod groups;
pub mod specs;
pub mod stage;
pub mod subjects;

pub use bus::{Bus, BusError};
pub use stage::{StageContext, StageDone, StageError, StageHandler, StageOutcome};

/// Milliseconds since the Unix epoch, the timestamp unit of every message.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
