//! Every subject, stream, consumer, bucket, KV key and message id Tollgate uses, built and
//! parsed here alone, from typed values. No other module formats a `tollgate.` subject
//! or a key.

use tollgate_proto::{ModelStage, RunEventKind, RunId, Stage, TriggerId, TriggerKind};

/// Every trigger subject.
pub const TRIGGER_ALL: &str = "tollgate.trigger.>";
/// Every stage subject.
pub const STAGE_ALL: &str = "tollgate.stage.>";
/// Every run event.
pub const RUN_ALL: &str = "tollgate.run.>";
/// Every dead letter.
pub const DEADLETTER_ALL: &str = "tollgate.deadletter.>";

const TRIGGER: &str = "tollgate.trigger.";
const STAGE: &str = "tollgate.stage.";
const RUN: &str = "tollgate.run.";
const DEADLETTER: &str = "tollgate.deadletter.";
const ALERT: &str = "tollgate.alert.";
const SERVED: &str = "tollgate.served.";
const LABELS: &str = "tollgate.labels.";
const SHADOW: &str = "tollgate.shadow.";
const LIVE: &str = "tollgate.live.";

/// The name a model's spec has in its folder (and in a training command's workspace).
pub const SPEC_FILE: &str = "tollgate.yaml";

/// Work-queue stream of triggers and stage work.
pub const WORK_STREAM: &str = "TOLLGATE_WORK";
/// Limits-retention stream of run events: the run history.
pub const RUNS_STREAM: &str = "TOLLGATE_RUNS";
/// Limits-retention stream of dead letters.
pub const DEADLETTER_STREAM: &str = "TOLLGATE_DEADLETTER";

/// Durable consumer of the trigger-watcher.
pub const TRIGGER_CONSUMER: &str = "trigger-watcher";
/// Durable consumer through which the registry keeps run records.
pub const REGISTRY_RUNS_CONSUMER: &str = "registry-runs";

/// Header carrying the reason a message was dead-lettered.
pub const HEADER_REASON: &str = "Tollgate-Reason";
/// Header naming a message's protobuf type (`Trigger`, `Run`, `RunEvent`), so a message of
/// another type on a subject is refused rather than misread.
pub const HEADER_TYPE: &str = "Tollgate-Type";
/// Header carrying the subject a dead letter was first published on.
pub const HEADER_ORIGINAL_SUBJECT: &str = "Tollgate-Original-Subject";
/// Header carrying how many deliveries a dead letter had.
pub const HEADER_DELIVERIES: &str = "Tollgate-Deliveries";

/// A key-value bucket; each has one owning module (named on the variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Model versions, stage pointers, aliases, approvals: the registry's `store`.
    Models,
    /// Run records: the registry's `runs`.
    Runs,
    /// Trigger ids already turned into runs: `tollgate_pipeline::claims`.
    Triggers,
    /// Published specs by digest, and each model's current one: `tollgate_pipeline::specs`.
    Specs,
    /// Concurrency groups and cancel requests: `tollgate_pipeline::groups`.
    Groups,
    /// Each model's alert rules' state: `tollgate_pipeline::alerts`.
    Alerts,
    /// Scored records by model and id, kept for the labels' retention window:
    /// `tollgate_pipeline::feedback`.
    Predictions,
    /// Webhook subscriptions: the registry's `webhooks`.
    Webhooks,
    /// Webhook deliveries, pending and done, kept a week: the registry's `webhooks`.
    Deliveries,
}

impl Bucket {
    /// Every bucket, created at connect.
    pub const ALL: [Bucket; 9] = [
        Bucket::Models,
        Bucket::Runs,
        Bucket::Triggers,
        Bucket::Specs,
        Bucket::Groups,
        Bucket::Alerts,
        Bucket::Predictions,
        Bucket::Webhooks,
        Bucket::Deliveries,
    ];

    /// The bucket's name on the server.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Models => "tollgate_models",
            Bucket::Runs => "tollgate_runs",
            Bucket::Triggers => "tollgate_triggers",
            Bucket::Specs => "tollgate_specs",
            Bucket::Groups => "tollgate_groups",
            Bucket::Alerts => "tollgate_alerts",
            Bucket::Predictions => "tollgate_predictions",
            Bucket::Webhooks => "tollgate_webhooks",
            Bucket::Deliveries => "tollgate_deliveries",
        }
    }

    /// How long an entry is kept: the predictions only for the labels' retention window
    /// (the oldest go first when the bucket is full); every other bucket keeps its
    /// entries and refuses writes when full.
    pub fn max_age(self) -> Option<std::time::Duration> {
        match self {
            Bucket::Predictions => Some(PREDICTION_RETENTION),
            Bucket::Deliveries => Some(DELIVERY_RETENTION),
            _ => None,
        }
    }
}

/// How long a webhook delivery is kept in the delivery log.
pub const DELIVERY_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// How long a scored record waits for its label: a label for a request older than this
/// finds nothing to join.
pub const PREDICTION_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// Object store of model artifacts, owned by `tollgate_pipeline::artifacts`.
pub const ARTIFACTS_STORE: &str = "tollgate_artifacts";
/// Object store of pushed datasets, owned by `tollgate_pipeline::dataset`.
pub const DATASETS_STORE: &str = "tollgate_datasets";
/// Object store of code snapshots and uploaded models, by digest, owned by `tollgate_pipeline::code`.
pub const CODE_STORE: &str = "tollgate_code";
/// Object store of each failed validation's failing rows, by run, owned by
/// `tollgate_pipeline::failures`.
pub const FAILURES_STORE: &str = "tollgate_failures";

/// An alert a service raises on `tollgate.alert.<rule>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alert {
    /// A version waits for an approver.
    Approval,
    /// The spec's `alerts.pipeline_failures`: consecutive failed runs.
    PipelineFailures,
    /// `alerts.training_minutes`: a training past its time.
    TrainingMinutes,
    /// `alerts.validation_failures`: consecutive failed validations.
    ValidationFailures,
    /// `alerts.gate_blocks`: consecutive gate blocks.
    GateBlocks,
    /// `monitor.min_auc_roc`: the Production version's live AUC-ROC fell under it.
    LiveAucRoc,
    /// A rollout's analysis failed a check: the candidate was rolled back.
    Rollout,
}

impl Alert {
    /// The rules of the spec's `alerts:` section, evaluated as runs end.
    pub const RULES: [Alert; 4] = [
        Alert::PipelineFailures,
        Alert::TrainingMinutes,
        Alert::ValidationFailures,
        Alert::GateBlocks,
    ];

    /// The rule's name: its `alerts:` key and the last token of its subject.
    pub fn name(self) -> &'static str {
        match self {
            Alert::Approval => "approval",
            Alert::PipelineFailures => "pipeline_failures",
            Alert::TrainingMinutes => "training_minutes",
            Alert::ValidationFailures => "validation_failures",
            Alert::GateBlocks => "gate_blocks",
            Alert::LiveAucRoc => "live_auc_roc",
            Alert::Rollout => "rollout",
        }
    }
}

/// The subject a trigger of `kind` is published on.
pub fn trigger(kind: TriggerKind) -> String {
    format!("{TRIGGER}{kind}")
}

/// The trigger kind of a trigger subject, if it is one Tollgate knows.
pub fn trigger_kind(subject: &str) -> Option<TriggerKind> {
    trigger_origin(subject).map(|(kind, _)| kind)
}

/// Who may publish a trigger subject: the subject, not the body, says what a trigger is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// CI and people: code, data and manual triggers.
    Publisher,
    /// Tollgate's own services: schedules, drift, model changes, data arrivals.
    System,
}

impl Origin {
    /// The namespace of this origin's trigger ids in the claims bucket.
    pub fn namespace(self) -> &'static str {
        match self {
            Origin::Publisher => "pub",
            Origin::System => "sys",
        }
    }
}

/// The suffix of the subject a service publishes a publisher kind on (a data arrival).
const SYSTEM_SUFFIX: &str = ".system";

/// The subject Tollgate's own services publish a trigger of `kind` on: the kind's own
/// subject for schedules, drift and model changes, which only services may publish, and
/// `tollgate.trigger.data.system` for a data arrival, apart from CI's data triggers.
pub fn system_trigger(kind: TriggerKind) -> String {
    match kind {
        TriggerKind::Code | TriggerKind::Data | TriggerKind::Manual => {
            format!("{}{SYSTEM_SUFFIX}", trigger(kind))
        }
        other => trigger(other),
    }
}

/// The kind and origin a trigger subject stands for, if it is one Tollgate knows.
pub fn trigger_origin(subject: &str) -> Option<(TriggerKind, Origin)> {
    let rest = subject.strip_prefix(TRIGGER)?;
    let (word, system) = match rest.strip_suffix(SYSTEM_SUFFIX) {
        Some(word) => (word, true),
        None => (rest, false),
    };
    let kind: TriggerKind = word.parse().ok()?;
    let origin = match kind {
        TriggerKind::Code | TriggerKind::Data | TriggerKind::Manual if !system => Origin::Publisher,
        TriggerKind::Code | TriggerKind::Manual => return None,
        _ => Origin::System,
    };
    Some((kind, origin))
}

/// The subject of a stage's work.
pub fn stage(stage: Stage) -> String {
    format!("{STAGE}{stage}")
}

/// The stage of a stage subject.
pub fn stage_of(subject: &str) -> Option<Stage> {
    subject.strip_prefix(STAGE)?.parse().ok()
}

/// The durable consumer name of a stage.
pub fn stage_consumer(stage: Stage) -> String {
    format!("stage-{stage}")
}

/// The subject of one run event.
pub fn run_event(run: &RunId, kind: RunEventKind) -> String {
    format!("{RUN}{run}.{kind}")
}

/// Every event of one run: what `publish --wait` subscribes to.
pub fn run_events(run: &RunId) -> String {
    format!("{RUN}{run}.>")
}

/// Every run's events of one kind (`tollgate.run.*.completed`: every verdict).
pub fn run_events_of_kind(kind: RunEventKind) -> String {
    format!("{RUN}*.{kind}")
}

/// The run id and event kind of a run event subject.
pub fn run_event_of(subject: &str) -> Option<(RunId, RunEventKind)> {
    let (run, kind) = subject.strip_prefix(RUN)?.split_once('.')?;
    Some((run.parse().ok()?, kind.parse().ok()?))
}

/// The dead-letter subject of a consumer.
pub fn deadletter(consumer: &str) -> String {
    format!("{DEADLETTER}{consumer}")
}

/// The consumer a dead-letter subject is for.
pub fn deadletter_consumer(subject: &str) -> Option<&str> {
    subject.strip_prefix(DEADLETTER)
}

/// The subject of an alert.
pub fn alert(rule: Alert) -> String {
    format!("{ALERT}{}", rule.name())
}

/// Whether `subject` is an alert's.
pub fn is_alert(subject: &str) -> bool {
    subject.starts_with(ALERT)
}

/// Every alert subject.
pub const ALERT_ALL: &str = "tollgate.alert.>";
/// The stream that keeps alerts.
pub const ALERTS_STREAM: &str = "TOLLGATE_ALERTS";

/// Every served-input sample.
pub const SERVED_ALL: &str = "tollgate.served.>";
/// Limits-retention stream of the inputs model servers sampled: what drift monitors read.
pub const SERVED_STREAM: &str = "TOLLGATE_SERVED";

/// The subject a model server publishes its sampled inputs of `model` on.
pub fn served(model: &str) -> String {
    format!("{SERVED}{model}")
}

/// Every labelled prediction.
pub const LABEL_ALL: &str = "tollgate.labels.>";
/// Limits-retention stream of labelled predictions: what live metrics are computed from.
pub const LABELS_STREAM: &str = "TOLLGATE_LABELS";

/// The subject labelled predictions of `model` are published on.
pub fn labels(model: &str) -> String {
    format!("{LABELS}{model}")
}

/// Every shadow report.
pub const SHADOW_ALL: &str = "tollgate.shadow.>";
/// Limits-retention stream of what server replicas saw of each shadow.
pub const SHADOW_STREAM: &str = "TOLLGATE_SHADOW";

/// The subject the servers of `model` report its shadow's comparison on.
pub fn shadow(model: &str) -> String {
    format!("{SHADOW}{model}")
}

/// Every live-metrics snapshot.
pub const LIVE_ALL: &str = "tollgate.live.>";
/// Where an object store publishes its bucket notifications (S3's event JSON, as MinIO's
/// NATS target sends it): the trigger-watcher lists a source's bucket at once on one,
/// instead of waiting for `data.interval`. Published by the `buckets` identity.
pub const BUCKET_EVENTS: &str = "tollgate.bucket.events";
/// Limits-retention stream of each version's live figures over time.
pub const LIVE_STREAM: &str = "TOLLGATE_LIVE";

/// The subject the servers of `model` publish its versions' live figures on.
pub fn live(model: &str) -> String {
    format!("{LIVE}{model}")
}

/// Longest prediction id a label may name, in bytes.
pub const MAX_PREDICTION_ID: usize = 256;

/// The key of `model`'s prediction `id` in the predictions bucket: `<model>.<id>`, the id
/// as it is when it is made of letters, digits, `-` and `_` (ULIDs and most request ids),
/// else `=` and its bytes in hex, so every id has one key and no two ids share one.
pub fn prediction_key(model: &str, id: &str) -> Result<String, String> {
    if id.is_empty() || id.len() > MAX_PREDICTION_ID {
        return Err(format!(
            "a prediction id is 1 to {MAX_PREDICTION_ID} bytes, got {}",
            id.len()
        ));
    }
    let plain = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        return Ok(format!("{model}.{id}"));
    }
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{model}.={hex}"))
}

/// The durable consumer through which the servers of `model` watch its labels.
pub fn labels_monitor(model: &str) -> String {
    format!("labels-monitor-{model}")
}

/// The durable consumer through which the servers of `model` watch its served inputs.
pub fn served_monitor(model: &str) -> String {
    format!("served-drift-{model}")
}

/// Message ids: JetStream drops a second publish of the same id within its dedupe window,
/// so a redelivered stage never forwards a run twice.
pub mod msg_id {
    use super::*;

    /// The label of a prediction (its bucket key): one per prediction, however often sent.
    pub fn label(prediction_key: &str) -> String {
        format!("label-{prediction_key}")
    }

    /// A run's message to one stage.
    pub fn stage(run: &RunId, stage: Stage) -> String {
        format!("{run}.{stage}")
    }

    /// A run event; stage events carry their stage and start time.
    pub fn event(run: &RunId, kind: RunEventKind, stage: Option<(Stage, i64)>) -> String {
        match stage {
            Some((stage, started)) => format!("{run}.{stage}.{kind}.{started}"),
            None => format!("{run}.{kind}"),
        }
    }

    /// A trigger: its id.
    pub fn trigger(id: &TriggerId) -> String {
        id.to_string()
    }
}

/// Ids of the triggers Tollgate publishes itself, derived from what caused them so a
/// repeat of the cause is deduped as the same trigger.
pub mod trigger_ids {
    use super::*;

    /// The drift trigger a run's dataset raises.
    pub fn drift(run: &RunId) -> String {
        format!("drift-{run}")
    }

    /// The trigger of one slot of a schedule entry: every watcher names it the same.
    pub fn schedule(model: &str, entry: &str, slot_ms: i64) -> String {
        format!("schedule-{model}-{entry}-{slot_ms}")
    }

    /// The trigger of a dataset arriving under a model's source: named by the dataset's
    /// identity (its sha256, since a path does not fit an id).
    pub fn arrival(model: &str, identity: &str) -> String {
        format!("arrival-{model}-{}", &tollgate_spec::digest(identity)[..16])
    }

    /// The drift trigger served traffic raises against a Production version: one per
    /// version and cooldown `slot`, whichever server replica sees the drift.
    pub fn served_drift(model: &str, version: u32, slot: i64) -> String {
        format!("served-drift-{model}-v{version}-{slot}")
    }

    /// The retrain a Production version's live AUC-ROC under `monitor.min_auc_roc`
    /// raises: one per version and cooldown `slot`, whichever replica judges it.
    pub fn live_performance(model: &str, version: u32, slot: i64) -> String {
        format!("live-auc-{model}-v{version}-{slot}")
    }

    /// The run the registry starts for a version after an approval or an override.
    pub fn registry(stage: Stage, model: &str, version: u32) -> String {
        format!("registry-{stage}-{model}-{version}")
    }
}

/// Keys of the `tollgate_triggers` bucket.
pub mod trigger_keys {
    use super::*;

    /// The claim on a trigger id, in its origin's namespace: a publisher's id never
    /// collides with a schedule slot's or an arrival's.
    pub fn claim(origin: Origin, id: &TriggerId) -> String {
        format!("t.{}.{id}", origin.namespace())
    }

    /// The claim on a run id a publisher chose: which trigger holds it.
    pub fn run(id: &RunId) -> String {
        format!("r.{id}")
    }

    /// The last slot a model's schedule entry fired (or when it started counting).
    pub fn schedule_since(model: &str, entry: &str) -> String {
        format!("sched.{model}.{entry}")
    }

    /// The claim on one slot of a model's schedule entry: whoever creates it fires it.
    pub fn slot(model: &str, entry: &str, slot_ms: i64) -> String {
        format!("slot.{model}.{entry}.{slot_ms}")
    }
}

/// Keys of the `tollgate_specs` bucket.
pub mod spec_keys {
    /// A published spec's text, by its sha256.
    pub fn by_digest(digest: &str) -> String {
        format!("sha.{digest}")
    }

    /// The digest of a model's current spec.
    pub fn current(model: &str) -> String {
        format!("model.{model}")
    }

    /// The model a current-spec key is for.
    pub fn model_of(key: &str) -> Option<&str> {
        key.strip_prefix("model.")
    }

    /// When a model's spec was last applied (`tollgate apply`).
    pub fn applied(model: &str) -> String {
        format!("applied.{model}")
    }

    /// The digest of a model's current code snapshot: the one runs without their own use.
    pub fn code(model: &str) -> String {
        format!("code.{model}")
    }
}

/// Keys of the `tollgate_groups` bucket.
pub mod group_keys {
    use tollgate_proto::{RunId, TriggerKind};

    /// A concurrency group: the runs of `model` on the `plan` entry of its `triggers:`.
    pub fn group(model: &str, plan: TriggerKind) -> String {
        format!("group.{model}.{plan}")
    }

    /// A request to cancel a run, with the reason as its value.
    pub fn cancel(run: &RunId) -> String {
        format!("{CANCEL}{run}")
    }

    /// Every cancel request, for a watch.
    pub const CANCEL_ALL: &str = "cancel.>";

    const CANCEL: &str = "cancel.";

    /// The run a cancel-request key names.
    pub fn cancelled_run(key: &str) -> Option<&str> {
        key.strip_prefix(CANCEL)
    }
}

/// A key of the `tollgate_models` bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelKey<'a> {
    /// A version with its audit trail: `<model>.v.<n>`.
    Version(&'a str, u32),
    /// The next version number: `<model>.next`.
    Next(&'a str),
    /// The version a run registered: `<model>.run.<run_id>`.
    Run(&'a str, &'a RunId),
    /// The version in a stage: `<model>.stage.<stage>`.
    Stage(&'a str, ModelStage),
    /// The version an alias names: `<model>.alias.<alias>`.
    Alias(&'a str, &'a str),
    /// The approval decisions on a version: `<model>.approvals.<n>`.
    Approvals(&'a str, u32),
    /// The model's shadow of Production: `<model>.shadow`.
    Shadow(&'a str),
    /// A model's latest rollout (`Rollout`).
    Rollout(&'a str),
}

impl std::fmt::Display for ModelKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelKey::Version(m, n) => write!(f, "{m}.v.{n}"),
            ModelKey::Next(m) => write!(f, "{m}.next"),
            ModelKey::Run(m, r) => write!(f, "{m}.run.{r}"),
            ModelKey::Stage(m, s) => write!(f, "{m}.stage.{}", s.name().to_ascii_lowercase()),
            ModelKey::Alias(m, a) => write!(f, "{m}.alias.{a}"),
            ModelKey::Approvals(m, n) => write!(f, "{m}.approvals.{n}"),
            ModelKey::Shadow(m) => write!(f, "{m}.shadow"),
            ModelKey::Rollout(m) => write!(f, "{m}.rollout"),
        }
    }
}

impl<'a> ModelKey<'a> {
    /// The model and version of a version key (`<model>.v.<n>`), for listing.
    pub fn version_of(key: &'a str) -> Option<(&'a str, u32)> {
        let mut parts = key.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(m), Some("v"), Some(n), None) => Some((m, n.parse().ok()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
