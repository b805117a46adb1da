//! The Tollgate wire contract: every message that crosses NATS and the registry's gRPC
//! service, generated from `tollgate/v1/tollgate.proto`, plus the words each enum is
//! written with and the typed ids.
//!
//! This crate alone has a build script; everything else depends on it for the contract.
//!
//! # Layout
//! - the generated messages, enums and the registry client and server;
//! - [`ids`]: [`RunId`] and [`TriggerId`], parsed and validated in one place;
//! - the enums' words: each enum's [`std::fmt::Display`], [`std::str::FromStr`] and serde
//!   form come from one table per enum, so the spec, subjects and tables agree.

#[allow(clippy::all, missing_docs)]
mod generated {
    // What `tonic::include_proto!` expands to for the proto package `tollgate.v1`.
    include!(concat!(env!("OUT_DIR"), "/tollgate.v1.rs"));
}

/// The Open Inference Protocol's gRPC API (KServe v2 `GRPCInferenceService`), generated
/// from `inference/grpc_predict_v2.proto`: the model server serves it.
#[allow(clippy::all, missing_docs)]
pub mod inference {
    include!(concat!(env!("OUT_DIR"), "/inference.rs"));
}

pub mod ids;
mod words;

pub use generated::*;
pub use ids::{IdError, RunId, TriggerId};
pub use prost;
pub use tonic;
pub use words::UnknownWord;

/// The registry gRPC client.
pub use generated::registry_client::RegistryClient;
/// The registry gRPC server and the trait a registry implements.
pub use generated::registry_server::{Registry, RegistryServer};

named_words!(
    TriggerKind,
    "trigger kind",
    [
        Code = "code",
        Data = "data",
        Model = "model",
        Schedule = "schedule",
        Manual = "manual",
        Drift = "drift",
    ]
);

named_words!(
    Stage,
    "stage",
    [
        Validate = "validate",
        Train = "train",
        Gate = "gate",
        Promote = "promote",
        Integration = "integration",
        Approval = "approval",
        Production = "production",
    ]
);

named_words!(
    ModelChange,
    "model change",
    [
        Registered = "registered",
        Staged = "staged",
        Promoted = "promoted",
        Archived = "archived",
        Unstaged = "unstaged",
        Approved = "approved",
        Rejected = "rejected",
        Overridden = "override",
        RolledBack = "rolled_back",
        Updated = "update",
        Aliased = "alias",
        GateBlessed = "gate blessed",
        GateBlocked = "gate blocked",
    ]
);

named_words!(
    Concurrency,
    "concurrency",
    [
        Parallel = "parallel",
        Queue = "queue",
        CancelInProgress = "cancel-in-progress",
    ]
);

named_words!(Comparison, "comparison", [AtLeast = ">=", AtMost = "<="]);

named_words!(
    ModelStage,
    "model stage",
    [
        None = "None",
        Staging = "Staging",
        Production = "Production",
        Archived = "Archived",
    ]
);

named_words!(
    RunEventKind,
    "run event",
    [
        Created = "created",
        StageStarted = "started",
        StageFinished = "finished",
        Progress = "progress",
        Completed = "completed",
        Queued = "queued",
    ]
);

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
            StageStatus::Cancelled => "cancelled",
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
            Verdict::Cancelled => "cancelled",
        }
    }
}

impl RunSummary {
    /// The run's state for tables: its verdict, `queued` while it waits for its
    /// concurrency group, `running` otherwise.
    pub fn status(&self) -> &'static str {
        if self.verdict() == Verdict::Unspecified
            && self.stages.is_empty()
            && !self.queued_behind.is_empty()
        {
            "queued"
        } else {
            self.verdict().name()
        }
    }
}

impl AlertState {
    /// Lower-case name for tables and logs.
    pub fn name(self) -> &'static str {
        match self {
            AlertState::Unspecified => "-",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
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

impl Comparison {
    /// Whether `observed` is on the right side of `threshold`; NaN never is.
    pub fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Comparison::AtLeast => observed >= threshold,
            Comparison::AtMost => observed <= threshold,
            Comparison::Unspecified => false,
        }
    }
}

/// The stages of a plan as words, for tables and logs: `validate → train → gate`.
pub fn plan_text(plan: &[i32]) -> String {
    if plan.is_empty() {
        return "(none)".into();
    }
    plan.iter()
        .map(|&s| Stage::try_from(s).map(Stage::name).unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(" → ")
}

impl Run {
    /// The run a trigger becomes, created at `created_unix_ms` with id `id`: what the
    /// trigger asks for, before planning fills in its spec and plan. The one place a
    /// trigger's fields become a run's, for every origin (publishers, schedules, arrivals
    /// and the registry's own).
    pub fn from_trigger(id: &RunId, trigger: &Trigger, created_unix_ms: i64) -> Run {
        Run {
            run_id: id.to_string(),
            trigger_id: trigger.trigger_id.clone(),
            trigger: trigger.kind,
            model: trigger.model.clone(),
            dataset_uri: trigger.dataset_uri.clone(),
            code_commit: trigger.code_commit.clone(),
            reason: trigger.reason.clone(),
            requested_by: trigger.requested_by.clone(),
            created_unix_ms,
            model_version: trigger.model_version,
            scheduled_for_unix_ms: trigger.scheduled_for_unix_ms,
            ci: trigger.ci.clone(),
            // Only an inbox: the registry relays events there, never to a Tollgate subject.
            notify_subject: Some(trigger.notify_subject.clone())
                .filter(|s| is_notify_subject(s))
                .unwrap_or_default(),
            code_digest: trigger.code_digest.clone(),
            model_upload: trigger.model_upload.clone(),
            ..Default::default()
        }
    }

    /// The run's id, typed; an id that is not one fails here, once.
    pub fn id(&self) -> Result<RunId, IdError> {
        self.run_id.parse()
    }

    /// The stage this message is addressed to, if the position is on the slip.
    pub fn current_stage(&self) -> Option<Stage> {
        self.stage_at(self.position as usize)
    }

    /// The stage after the current one, if any.
    pub fn next_stage(&self) -> Option<Stage> {
        self.stage_at(self.position as usize + 1)
    }

    /// How long the current stage may take, when the run carries its timeouts.
    pub fn stage_timeout(&self) -> Option<std::time::Duration> {
        self.stage_timeouts_ms
            .get(self.position as usize)
            .filter(|&&ms| ms > 0)
            .map(|&ms| std::time::Duration::from_millis(ms))
    }

    fn stage_at(&self, i: usize) -> Option<Stage> {
        self.plan.get(i).and_then(|&s| Stage::try_from(s).ok())
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
            spec_digest: self.spec_digest.clone(),
            requested_reason: self.reason.clone(),
            requested_by: self.requested_by.clone(),
            scheduled_for_unix_ms: self.scheduled_for_unix_ms,
            ci: self.ci.clone(),
            concurrency: self.concurrency,
            plan_kind: self.plan_kind,
            queued_behind: self.queued_behind.clone(),
            plan_timeout_ms: self.stage_timeouts_ms.iter().sum(),
            alerts: self.alerts,
            notify_subject: self.notify_subject.clone(),
            code_digest: self.code_digest.clone(),
            model_upload: self.model_upload.clone(),
            policy_changes: self.policy_changes.clone(),
            rollout: Vec::new(),
            // The registry fills it from the trace context the run's events carry.
            trace_id: String::new(),
        }
    }
}

/// Whether `subject` may receive a run's relayed events: an inbox, never a Tollgate
/// subject a service consumes.
pub fn is_notify_subject(subject: &str) -> bool {
    subject.starts_with("_INBOX") && !subject.contains(['*', '>', ' ']) && subject.len() <= 256
}

/// Largest message the registry API moves (artifacts travel in one message).
pub const MAX_MESSAGE_BYTES: usize = 600 * 1024 * 1024;

/// The registry client every caller holds: its calls carry the current span's trace
/// context in their gRPC metadata, so the registry's work joins the caller's trace, and
/// the caller's bearer token when it has one.
pub type RegistryApi = RegistryClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallContext>,
>;

/// Puts the current span's W3C trace context (`traceparent`, `tracestate`) and the
/// caller's `authorization: Bearer` token into each request's metadata.
#[derive(Clone, Default)]
pub struct CallContext {
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.authorization.is_some() {
            "<redacted>"
        } else {
            "none"
        };
        f.debug_struct("CallContext")
            .field("token", &token)
            .finish()
    }
}

/// How long a registry call may take before the client gives up (artifacts of hundreds
/// of megabytes included).
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

impl tonic::service::Interceptor for CallContext {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let cx = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut MetadataInjector(request.metadata_mut()))
        });
        Ok(request)
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl opentelemetry::propagation::Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Reads a W3C trace context from an HTTP request's headers: the registry's server
/// makes each call's span a child of the caller's.
pub struct HeaderExtractor<'a>(pub &'a tonic::codegen::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// A registry client that connects on first use and reconnects by itself, so a service
/// can start before the registry does.
pub fn registry_client(url: &str) -> Result<RegistryApi, tonic::transport::Error> {
    registry_client_with_token(url, "")
}

/// [`registry_client_with_token`] over TLS to an `https://` URL whose certificate
/// `ca_pem` (a CA or the server's own, PEM) signs; `None`: as the URL says.
pub fn registry_client_tls(
    url: &str,
    token: &str,
    ca_pem: Option<Vec<u8>>,
) -> Result<RegistryApi, tonic::transport::Error> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(CALL_TIMEOUT);
    if let Some(ca) = ca_pem {
        endpoint = endpoint.tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
        )?;
    }
    let authorization = (!token.is_empty())
        .then(|| format!("Bearer {}", token.trim()).parse().ok())
        .flatten();
    Ok(
        RegistryClient::with_interceptor(endpoint.connect_lazy(), CallContext { authorization })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// [`registry_client`] whose calls carry `token` (`TOLLGATE_TOKEN`) as a bearer token;
/// an empty token sends none. Every call has a deadline of [`CALL_TIMEOUT`].
pub fn registry_client_with_token(
    url: &str,
    token: &str,
) -> Result<RegistryApi, tonic::transport::Error> {
    registry_client_tls(url, token, None)
}

#[cfg(test)]
mod tests;
