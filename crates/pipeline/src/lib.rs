//! Tollgate's pipeline on top of the bus: what a run is made of, as the services share it.
//!
//! The bus crate (`tollgate-bus`) carries messages; this crate says what they mean: the
//! stage protocol every stage service runs, run events, trigger claims, concurrency
//! groups, published specs, alert rules, and the object stores of datasets, code and
//! artifacts. Each bucket and object store has one owning module, reached from a [`Bus`]
//! through [`Stores`].
//!
//! # Layout
//! - [`stage`]: the stage protocol: run a handler, forward the run or end it.
//! - [`runs`]: starting a run: its id claimed for its trigger, then started or queued.
//! - [`events`]: run events (created, started, finished, progress, completed).
//! - [`claims`]: trigger claims (the `tollgate_triggers` bucket).
//! - [`specs`]: published specs by digest (the `tollgate_specs` bucket).
//! - [`groups`]: concurrency groups and cancel requests (the `tollgate_groups` bucket).
//! - [`alerts`]: the spec's alert rules as runs end (the `tollgate_alerts` bucket).
//! - [`artifacts`]: the model artifacts object store.
//! - [`code`]: code snapshots and uploaded models, by digest.
//! - [`dataset`]: dataset URIs and the datasets object store.
//! - [`feedback`]: predictions kept for their labels, and labels joined to them.
//! - [`failures`]: every failing row of a failed validation, beside its run.

pub mod alerts;
pub mod artifacts;
pub mod claims;
pub mod code;
pub mod dataset;
pub mod events;
pub mod failures;
pub mod feedback;
pub mod groups;
pub mod rollout;
pub mod runs;
pub mod specs;
pub mod stage;

pub use stage::{StageContext, StageDone, StageError, StageHandler, StageOutcome};

use tollgate_bus::Bus;

/// The pipeline's buckets and object stores, each a handle on a connected [`Bus`].
pub trait Stores {
    /// The alert rules' state and their evaluation.
    fn alerts(&self) -> alerts::Alerts<'_>;
    /// The artifacts object store.
    fn artifacts(&self) -> artifacts::Artifacts<'_>;
    /// The trigger claims.
    fn trigger_claims(&self) -> claims::TriggerClaims<'_>;
    /// The code store.
    fn code(&self) -> code::Code<'_>;
    /// The datasets object store.
    fn datasets(&self) -> dataset::Datasets<'_>;
    /// The concurrency groups.
    fn groups(&self) -> groups::Groups<'_>;
    /// The predictions kept for labels.
    fn predictions(&self) -> feedback::Predictions<'_>;
    /// The failing rows of failed validations.
    fn failures(&self) -> failures::Failures<'_>;
    /// The published specs.
    fn specs(&self) -> specs::Specs<'_>;
}

impl Stores for Bus {
    fn alerts(&self) -> alerts::Alerts<'_> {
        alerts::Alerts(self)
    }
    fn artifacts(&self) -> artifacts::Artifacts<'_> {
        artifacts::Artifacts(self)
    }
    fn trigger_claims(&self) -> claims::TriggerClaims<'_> {
        claims::TriggerClaims(self)
    }
    fn code(&self) -> code::Code<'_> {
        code::Code(self)
    }
    fn datasets(&self) -> dataset::Datasets<'_> {
        dataset::Datasets(self)
    }
    fn groups(&self) -> groups::Groups<'_> {
        groups::Groups(self)
    }
    fn predictions(&self) -> feedback::Predictions<'_> {
        feedback::Predictions(self)
    }
    fn failures(&self) -> failures::Failures<'_> {
        failures::Failures(self)
    }
    fn specs(&self) -> specs::Specs<'_> {
        specs::Specs(self)
    }
}
