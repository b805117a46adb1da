//! NATS JetStream plumbing shared by every Tollgate service.
//!
//! Services never spell a subject, stream or bucket name themselves: they come from
//! [`subjects`]. [`Bus::connect`] creates what the pipeline needs idempotently at start-up,
//! [`codec`] carries protobuf payloads with the W3C trace context in headers, and
//! [`worker`] is the one loop that pulls stage work, runs a stage, forwards the run on its
//! routing slip and acks only after the stage's effects.
//!
//! # Layout
//! - [`subjects`]: subject, stream, consumer and bucket names.
//! - [`bus`]: connecting and creating streams, consumers, KV buckets and object stores.
//! - [`codec`]: protobuf publish and decode with trace propagation.
//! - [`worker`]: the stage worker loop, dead-lettering and run events.
//! - [`dataset`]: turning a dataset URI into a local file.
//! - [`defaults`]: default addresses and paths.
//! - [`service`]: config loading, health endpoint and shutdown signal for binaries.

pub mod bus;
pub mod codec;
pub mod dataset;
pub mod defaults;
pub mod service;
pub mod subjects;
pub mod worker;

pub use bus::{Bus, BusError};
pub use worker::{StageContext, StageDone, StageError, StageHandler, StageOutcome};

/// Milliseconds since the Unix epoch, the timestamp unit of every message.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
