//! What the registry keeps: model versions, stage pointers, aliases and approvals in the
//! `tollgate_models` KV bucket, and run records in the `tollgate_runs` bucket
//! ([`runs`]); this module owns both.
//!
//! Keys ([`ModelKey`]): a version (with its audit trail); the next version number; the
//! version a run registered (idempotency); the version in a stage; the version an alias
//! names; the approval decision on a version; the model's shadow and rollout. Every change is a compare-and-set on the
//! entry's revision, and every change to a version is published on
//! `tollgate.trigger.model`.

mod approvals;
mod common;
mod rollouts;
pub mod runs;
mod shadows;
mod stages;
mod versions;

pub use crate::error::RegistryError;
pub use approvals::{approve, override_gate, pending};
pub use common::{latest_by_stage, list_versions, resolve, version};
pub use rollouts::{
    control as control_rollout, drive as drive_rollouts, get_rollout, start_rollout,
};
pub use shadows::{get_shadow, set_shadow};
pub use stages::{rollback, set_alias, transition};
pub use versions::{artifact, record_gate, register, update};
