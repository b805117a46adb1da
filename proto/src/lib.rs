//! The Tollgate wire contract: every message that crosses NATS and the registry's gRPC
//! service, generated from `tollgate/v1/tollgate.proto`, plus small conveniences on them.
//!
//! This crate alone has a build script; everything else depends on it for the contract.

#[allow(clippy::all, missing_docs)]
mod generated {
    tonic::include_proto!("tollgate.v1");
}

pub use generated::*;
pub use prost;
pub use tonic;

/// The registry gRPC client.
pub use generated::registry_client::RegistryClient;
/// The registry gRPC server and the trait a registry implements.
pub use generated::registry_server::{Registry, RegistryServer};

impl TriggerKind {
    /// Lower-case name used in subjects, tables and the spec's `triggers:` section.
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::Unspecified => "unspecified",
            TriggerKind::Code => "code",
            TriggerKind::Data => "data",
            TriggerKind::Model => "model",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Manual => "manual",
            TriggerKind::Drift => "drift",
        }
    }

    /// Parses the lower-case name back; `None` for names Tollgate does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "code" => TriggerKind::Code,
            "data" => TriggerKind::Data,
            "model" => TriggerKind::Model,
            "schedule" => TriggerKind::Schedule,
            "manual" => TriggerKind::Manual,
            "drift" => TriggerKind::Drift,
            _ => return None,
        })
    }
}

impl StageStatus {
    /// Lower-case name for tables and logs.
    pub fn name(self) -> &'static str {
        match self {
            StageStatus::Unspecified => "pending",
            StageStatus::Running => "running",
            StageStatus::Passed => "passed",
            StageStatus::Failed => "failed",
            StageStatus::Blocked => "blocked",
            StageStatus::Skipped => "skipped",
        }
    }
}

impl Verdict {
    /// Lower-case name for tables and logs; `running` while the run has no verdict.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Unspecified => "running",
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Blocked => "blocked",
        }
    }
}

impl ModelStage {
    /// Name as people write it: None, Staging, Production, Archived.
    pub fn name(self) -> &'static str {
        match self {
            ModelStage::None => "None",
            ModelStage::Staging => "Staging",
            ModelStage::Production => "Production",
            ModelStage::Archived => "Archived",
        }
    }
}

impl CheckVerdict {
    /// PASS, FAIL or SKIPPED, as gate reports print them.
    pub fn name(self) -> &'static str {
        match self {
            CheckVerdict::Unspecified => "?",
            CheckVerdict::Pass => "PASS",
            CheckVerdict::Fail => "FAIL",
            CheckVerdict::Skipped => "SKIPPED",
        }
    }
}

impl Run {
    /// The stage this message is addressed to, if the position is on the slip.
    pub fn current_stage(&self) -> Option<&str> {
        self.plan.get(self.position as usize).map(String::as_str)
    }

    /// The stage after the current one, if any.
    pub fn next_stage(&self) -> Option<&str> {
        self.plan
            .get(self.position as usize + 1)
            .map(String::as_str)
    }

    /// A summary of the run as it stands, for run events.
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            run_id: self.run_id.clone(),
            model: self.model.clone(),
            trigger: self.trigger,
            verdict: Verdict::Unspecified as i32,
            reason: String::new(),
            plan: self.plan.clone(),
            stages: self.stages.clone(),
            model_version: self.model_version,
            created_unix_ms: self.created_unix_ms,
            finished_unix_ms: 0,
            validation: self.validation.clone(),
            gate: self.gate.clone(),
            dataset_uri: self.dataset_uri.clone(),
            code_commit: self.code_commit.clone(),
            trigger_id: self.trigger_id.clone(),
        }
    }
}

/// Largest message the registry API moves (artifacts travel in one message).
pub const MAX_MESSAGE_BYTES: usize = 600 * 1024 * 1024;

/// A registry client that connects on first use and reconnects by itself, so a service
/// can start before the registry does.
pub fn registry_client(
    url: &str,
) -> Result<RegistryClient<tonic::transport::Channel>, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy();
    Ok(RegistryClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}
