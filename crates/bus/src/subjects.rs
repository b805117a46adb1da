//! Every subject, stream, consumer and bucket name Tollgate uses, in one place.

/// Prefix of trigger subjects: `tollgate.trigger.<kind>`.
pub const TRIGGER_PREFIX: &str = "tollgate.trigger";
/// Every trigger subject.
pub const TRIGGER_ALL: &str = "tollgate.trigger.>";
/// Prefix of stage work subjects: `tollgate.stage.<stage>`.
pub const STAGE_PREFIX: &str = "tollgate.stage";
/// Every stage subject.
pub const STAGE_ALL: &str = "tollgate.stage.>";
/// Prefix of run event subjects: `tollgate.run.<run_id>.<event>`.
pub const RUN_PREFIX: &str = "tollgate.run";
/// Every run event.
pub const RUN_ALL: &str = "tollgate.run.>";
/// Prefix of dead-letter subjects: `tollgate.deadletter.<consumer>`.
pub const DEADLETTER_PREFIX: &str = "tollgate.deadletter";
/// Every dead letter.
pub const DEADLETTER_ALL: &str = "tollgate.deadletter.>";
/// Prefix of alert subjects: `tollgate.alert.<rule>`.
pub const ALERT_PREFIX: &str = "tollgate.alert";

/// Work-queue stream of triggers and stage work.
pub const WORK_STREAM: &str = "TOLLGATE_WORK";
/// Limits-retention stream of run events: the run history.
pub const RUNS_STREAM: &str = "TOLLGATE_RUNS";
/// Limits-retention stream of dead letters.
pub const DEADLETTER_STREAM: &str = "TOLLGATE_DEADLETTER";

/// KV bucket of model versions, stage pointers and per-run registrations.
pub const MODELS_BUCKET: &str = "tollgate_models";
/// KV bucket of run records.
pub const RUNS_BUCKET: &str = "tollgate_runs";
/// KV bucket of trigger ids already turned into runs (dedupe) and of the last spec per model.
pub const TRIGGERS_BUCKET: &str = "tollgate_triggers";
/// Object store of model artifacts.
pub const ARTIFACTS_STORE: &str = "tollgate_artifacts";
/// Object store of pushed datasets.
pub const DATASETS_STORE: &str = "tollgate_datasets";

/// Durable consumer of the trigger-watcher.
pub const TRIGGER_CONSUMER: &str = "trigger-watcher";
/// Durable consumer through which the registry keeps run records.
pub const REGISTRY_RUNS_CONSUMER: &str = "registry-runs";

/// Header carrying the reason a message was dead-lettered.
pub const HEADER_REASON: &str = "Tollgate-Reason";
/// Header carrying the subject a dead letter was first published on.
pub const HEADER_ORIGINAL_SUBJECT: &str = "Tollgate-Original-Subject";
/// Header carrying how many deliveries a dead letter had.
pub const HEADER_DELIVERIES: &str = "Tollgate-Deliveries";

/// The subject a trigger of `kind` is published on.
pub fn trigger(kind: &str) -> String {
    format!("{TRIGGER_PREFIX}.{kind}")
}

/// The subject of a stage's work.
pub fn stage(stage: &str) -> String {
    format!("{STAGE_PREFIX}.{stage}")
}

/// The durable consumer name of a stage.
pub fn stage_consumer(stage: &str) -> String {
    format!("stage-{stage}")
}

/// The subject of one run event: `started`, `finished`, `progress`, `completed`, `created`.
pub fn run_event(run_id: &str, event: &str) -> String {
    format!("{RUN_PREFIX}.{run_id}.{event}")
}

/// Every event of one run.
pub fn run_events(run_id: &str) -> String {
    format!("{RUN_PREFIX}.{run_id}.>")
}

/// The dead-letter subject of a consumer.
pub fn deadletter(consumer: &str) -> String {
    format!("{DEADLETTER_PREFIX}.{consumer}")
}

/// The run id in a run event subject, if it is one.
pub fn run_id_of(subject: &str) -> Option<&str> {
    subject
        .strip_prefix(RUN_PREFIX)?
        .strip_prefix('.')?
        .split('.')
        .next()
}

#[cfg(test)]
mod tests;
