//! The model spec: the user's `tollgate.yaml`, versioned in their git, which says what a
//! model is made of (features, target, split, algorithm), which expectations its data
//! must meet, which gates a version must pass and which stages each trigger runs.
//!
//! Parsing and validation live here once, so the CLI, the trigger-watcher and every
//! stage read a spec the same way and reject a bad one with the same message.

use std::collections::BTreeMap;

pub mod algorithm;
pub mod data;
pub mod envelope;
pub mod expectations;
pub mod monitor;
pub mod policy;
pub mod rollout;
pub mod schedule;
pub mod usercode;

pub use data::DataSource;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use algorithm::*;
pub use expectations::*;
pub use tollgate_proto::{Concurrency, Stage, TriggerKind};
pub use usercode::{TestCommand, Tests, TrainCommand};

/// A metric the trainer and gate compute on held-out rows, usable in `gates:` and
/// `champion:`; higher is better for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Area under the ROC curve.
    AucRoc,
    /// F1 at the spec's threshold.
    F1,
    /// Precision at the spec's threshold.
    Precision,
    /// Recall at the spec's threshold.
    Recall,
    /// Accuracy at the spec's threshold.
    Accuracy,
}

tollgate_proto::named_words!(
    Metric,
    "metric",
    [
        AucRoc = "auc_roc",
        F1 = "f1",
        Precision = "precision",
        Recall = "recall",
        Accuracy = "accuracy",
    ]
);

/// A metric that can pick among candidates on the validation fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SelectionMetric {
    /// Area under the ROC curve (the default).
    #[default]
    AucRoc,
    /// Area under the precision-recall curve.
    PrAuc,
    /// F1 at threshold 0.5.
    F1,
    /// Precision at threshold 0.5.
    Precision,
    /// Recall at threshold 0.5.
    Recall,
    /// Accuracy at threshold 0.5.
    Accuracy,
    /// Log loss: the lowest wins.
    LogLoss,
}

tollgate_proto::named_words!(
    SelectionMetric,
    "selection metric",
    [
        AucRoc = "auc_roc",
        PrAuc = "pr_auc",
        F1 = "f1",
        Precision = "precision",
        Recall = "recall",
        Accuracy = "accuracy",
        LogLoss = "log_loss",
    ]
);

impl SelectionMetric {
    /// Whether a larger value is better (all but `log_loss`).
    pub fn higher_is_better(self) -> bool {
        self != SelectionMetric::LogLoss
    }
}

/// A quality gate: a held-out metric, or a figure the gate measures itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gate {
    /// Area under the ROC curve.
    AucRoc,
    /// F1 at the spec's threshold.
    F1,
    /// Precision at the spec's threshold.
    Precision,
    /// Recall at the spec's threshold.
    Recall,
    /// Accuracy at the spec's threshold.
    Accuracy,
    /// Median single-record inference time, feature encoding included.
    LatencyP50Ms,
    /// 99th-percentile single-record inference time.
    LatencyP99Ms,
    /// Size of the artifact.
    ModelSizeMb,
}

tollgate_proto::named_words!(
    Gate,
    "gate",
    [
        AucRoc = "auc_roc",
        F1 = "f1",
        Precision = "precision",
        Recall = "recall",
        Accuracy = "accuracy",
        LatencyP50Ms = "latency_p50_ms",
        LatencyP99Ms = "latency_p99_ms",
        ModelSizeMb = "model_size_mb",
    ]
);

/// Why a spec was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The text is not YAML of the spec's shape: the message names the line, the
    /// field and, for a word, the allowed values.
    #[error("model spec is not valid: {}", .0.without_snippet())]
    Parse(#[from] serde_saphyr::Error),
    /// The spec parsed but says something Tollgate cannot do.
    #[error("model spec is not valid: {0}")]
    Invalid(String),
    /// The spec file could not be read.
    #[error("cannot read model spec {path}: {source}")]
    Read {
        /// The path that was asked for.
        path: String,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// A parsed and validated model spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Model name: lower-case letters, digits, `-` and `_`.
    pub model: String,
    /// One line about the model, for people.
    #[serde(default)]
    pub description: String,
    /// Which columns feed the model and how.
    pub features: Features,
    /// The label column: 0/1, or text mapped by `positive_label`.
    pub target: String,
    /// For a text target, the value that means 1 (e.g. "Yes"); every other value is 0.
    #[serde(default)]
    pub positive_label: Option<String>,
    /// How rows are split into training and test sets.
    #[serde(default)]
    pub split: Split,
    /// The learning algorithm and its hyper-parameters; logistic regression when the
    /// spec names neither this nor `candidates`.
    #[serde(default)]
    pub algorithm: Option<Algorithm>,
    /// Several algorithms, the best kept by a metric on a validation fold (instead of
    /// `algorithm`).
    #[serde(default)]
    pub candidates: Option<Candidates>,
    /// Expectations the data must meet, with Great Expectations' names and arguments.
    #[serde(default)]
    pub expectations: Vec<Expectation>,
    /// Quality gates: metric or measurement to bound.
    #[serde(default)]
    pub gates: BTreeMap<Gate, Bound>,
    /// Trigger kind (`code`, `data`, `manual`, ...) to the stages it runs. The `model`
    /// plan runs when a version enters Staging.
    #[serde(default)]
    pub triggers: BTreeMap<TriggerKind, Vec<Stage>>,
    /// Identities allowed to approve or reject Production and to override the gate.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Distinct approvers a version needs for Production (none of them its change's
    /// author).
    #[serde(default = "default_approvals_required")]
    pub approvals_required: u32,
    /// Hours an approval counts for; after them a new one is needed.
    #[serde(default = "default_approval_expires_hours")]
    pub approval_expires_hours: u64,
    /// Champion/challenger checks: how much worse than the Production version a candidate
    /// may score, both evaluated by the gate on the same test data.
    #[serde(default)]
    pub champion: Vec<ChampionCheck>,
    /// Drift thresholds against the Production version's training data.
    #[serde(default)]
    pub drift: DriftSettings,
    /// The decision threshold the gate's threshold metrics use: a probability, or
    /// `optimal` for the F1-optimal threshold the trainer stored. Default 0.5.
    #[serde(default)]
    pub threshold: Threshold,
    /// Where the model's data comes from, for scheduled runs and triggers that name no
    /// dataset.
    #[serde(default)]
    pub data: Option<DataSource>,
    /// When scheduled runs start: `default` (Monday 02:00 UTC) or a list of
    /// `{cron, timezone, catch_up}`.
    #[serde(default)]
    pub schedule: schedule::Schedule,
    /// How a new run meets an active one of the same model and plan: `queue`,
    /// `cancel-in-progress`, or per plan; runs go side by side when unset.
    #[serde(default)]
    pub concurrency: ConcurrencySettings,
    /// How long each stage may take before it is tried again (and, after its attempts,
    /// the run fails), e.g. `{train: 2h}`; see [`ModelSpec::stage_timeout`] for defaults.
    #[serde(default)]
    pub timeouts: BTreeMap<Stage, schedule::Window>,
    /// The brief's alert rules, evaluated as runs end; `alerts: {gate_blocks: 3}` changes
    /// one and keeps the others' defaults, and 0 turns a rule off.
    #[serde(default)]
    pub alerts: AlertRules,
    /// The user's own tests, run by the gate against the candidate and by the integration
    /// stage against the Staging server.
    #[serde(default)]
    pub tests: Tests,
    /// How the Production version must do on live traffic once labels arrive.
    #[serde(default)]
    pub monitor: Option<monitor::Monitor>,
    /// How an approved version reaches Production: shadow, canary steps and analysis.
    /// Without it, an approval moves Production at once.
    #[serde(default)]
    pub rollout: Option<rollout::Rollout>,
}

/// The spec's `alerts:` section. Each rule fires on `tollgate.alert.<rule>` and resolves
/// when its condition clears.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRules {
    /// Consecutive failed runs that fire `pipeline_failures` (pipeline success > 95%).
    pub pipeline_failures: u32,
    /// A training longer than this many minutes fires `training_minutes` (target < 30).
    pub training_minutes: f64,
    /// Consecutive failed validations that fire `validation_failures` (pass 100%).
    pub validation_failures: u32,
    /// Consecutive gate blocks that fire `gate_blocks` (gate pass > 90%).
    pub gate_blocks: u32,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            pipeline_failures: 2,
            training_minutes: 60.0,
            validation_failures: 1,
            gate_blocks: 2,
        }
    }
}

/// The spec's `concurrency:` section: one mode for every plan (`concurrency: queue`) or
/// one per plan (`concurrency: {code: cancel-in-progress, data: queue}`). A plan it does
/// not name runs in parallel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConcurrencySettings {
    every: Option<Concurrency>,
    by_plan: BTreeMap<TriggerKind, Concurrency>,
}

impl ConcurrencySettings {
    /// The mode of the group that runs the `plan` entry of `triggers:`.
    pub fn mode(&self, plan: TriggerKind) -> Concurrency {
        self.by_plan
            .get(&plan)
            .copied()
            .or(self.every)
            .unwrap_or(Concurrency::Parallel)
    }
}

impl Serialize for ConcurrencySettings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.every {
            Some(mode) => mode.serialize(s),
            None => self.by_plan.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ConcurrencySettings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            ByPlan(BTreeMap<String, String>),
        }
        let mode = |w: &str| w.parse::<Concurrency>().map_err(serde::de::Error::custom);
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "concurrency: use queue, cancel-in-progress or parallel, or a map of plan to one of those",
            )
        })? {
            Raw::Word(w) => Ok(ConcurrencySettings {
                every: Some(mode(&w)?),
                by_plan: BTreeMap::new(),
            }),
            Raw::ByPlan(plans) => {
                let mut by_plan = BTreeMap::new();
                for (plan, word) in plans {
                    let plan = plan.parse::<TriggerKind>().map_err(serde::de::Error::custom)?;
                    by_plan.insert(plan, mode(&word)?);
                }
                Ok(ConcurrencySettings {
                    every: None,
                    by_plan,
                })
            }
        }
    }
}

/// When a dataset counts as drifted. Distances, not p-values, decide.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DriftSettings {
    /// A numeric column drifts past this Wasserstein distance (normed by the reference stdev).
    pub wasserstein: f64,
    /// A text column drifts past this Jensen-Shannon distance.
    pub jensen_shannon: f64,
    /// Any column drifts past this population stability index.
    pub psi: f64,
    /// The dataset drifts when at least this share of the monitored columns do.
    pub share: f64,
}

impl Default for DriftSettings {
    fn default() -> Self {
        DriftSettings {
            wasserstein: 0.1,
            jensen_shannon: 0.1,
            psi: 0.2,
            share: 0.5,
        }
    }
}

/// A decision threshold.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Threshold {
    /// A fixed probability.
    Fixed(f64),
    /// 0.5, when the spec says nothing.
    #[default]
    Half,
    /// The F1-optimal threshold the trainer found on the held-out rows (`optimal`).
    Optimal,
}

impl Threshold {
    /// The probability to cut at, given the model's stored F1-optimal threshold.
    pub fn resolve(self, optimal: f64) -> f64 {
        match self {
            Threshold::Fixed(t) => t,
            Threshold::Half => 0.5,
            Threshold::Optimal => optimal,
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Threshold::Fixed(t) => s.serialize_f64(*t),
            Threshold::Half => s.serialize_f64(0.5),
            Threshold::Optimal => s.serialize_str("optimal"),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(t) if t > 0.0 && t < 1.0 => Ok(Threshold::Fixed(t)),
            Raw::Number(t) => Err(serde::de::Error::custom(format!(
                "threshold {t} must be between 0 and 1"
            ))),
            Raw::Word(w) if w == "optimal" => Ok(Threshold::Optimal),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "threshold {w:?}: use a probability or `optimal`"
            ))),
        }
    }
}

/// One champion/challenger check (TFX-style change threshold).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChampionCheck {
    /// The metric compared, e.g. `auc_roc`.
    pub metric: Metric,
    /// Largest allowed drop of the challenger below the champion.
    pub max_drop: f64,
    /// Whether `max_drop` is a share of the champion's value rather than absolute.
    #[serde(default)]
    pub relative: bool,
}

/// Feature columns by kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// Columns that identify a row and never feed the model.
    #[serde(default)]
    pub id_columns: Vec<String>,
    /// Numeric columns: median-imputed, then standardized.
    #[serde(default)]
    pub numeric: Vec<String>,
    /// Categorical columns: one-hot encoded; unseen categories encode as all zeros.
    #[serde(default)]
    pub categorical: Vec<String>,
}

/// Train/test split settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Share of rows held out for testing, in (0, 1).
    pub test_fraction: f64,
    /// Seed of the split and of anything random in training.
    pub seed: u64,
    /// Optional k-fold cross-validation on the training rows (k >= 2): mean and std of
    /// the metrics are reported beside the held-out ones.
    #[serde(default)]
    pub folds: Option<usize>,
}

impl Default for Split {
    fn default() -> Self {
        Split {
            test_fraction: 0.2,
            seed: 42,
            folds: None,
        }
    }
}

fn default_approvals_required() -> u32 {
    1
}

fn default_approval_expires_hours() -> u64 {
    72
}

/// The most approvers a version may be required to have.
pub const MAX_APPROVALS: u32 = 10;

/// A bound on a gate: at least `min`, at most `max`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// The observed value must be at least this.
    pub min: Option<f64>,
    /// The observed value must be at most this.
    pub max: Option<f64>,
}

/// The largest spec text Tollgate parses: a spec is a page of YAML, and a bigger one is
/// refused before the parser sees it.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

impl ModelSpec {
    /// Parses and validates spec text (at most [`MAX_SPEC_BYTES`]).
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        if text.len() > MAX_SPEC_BYTES {
            return Err(SpecError::Invalid(format!(
                "the spec is {} bytes, over the {MAX_SPEC_BYTES}-byte limit",
                text.len()
            )));
        }
        // serde_path_to_error puts the field's path (`champion[0].metric`) before the
        // message; serde-saphyr adds the line and column.
        let spec: ModelSpec = serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize(de)
                .map_err(|e| <serde_saphyr::Error as serde::de::Error>::custom(e.to_string()))
        })?;
        spec.validate()?;
        Ok(spec)
    }

    /// Reads, parses and validates a spec file.
    pub fn load(path: &std::path::Path) -> Result<(Self, String), SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok((Self::parse(&text)?, text))
    }

    /// The algorithms to train: the candidates, or the one algorithm (logistic regression
    /// by default).
    pub fn algorithms(&self) -> Vec<Algorithm> {
        match (&self.candidates, &self.algorithm) {
            (Some(c), _) => c.algorithms.clone(),
            (None, Some(a)) => vec![a.clone()],
            (None, None) => vec![Algorithm::default()],
        }
    }

    /// The stages a trigger kind runs, when the spec has a non-empty plan for it.
    pub fn plan(&self, trigger: TriggerKind) -> Option<&[Stage]> {
        self.triggers
            .get(&trigger)
            .map(Vec::as_slice)
            .filter(|p| !p.is_empty())
    }

    /// How long `stage` may take: the spec's `timeouts:`, else 60 minutes for training
    /// (the brief's alert threshold), 15 for validation, the gate and integration tests,
    /// and 5 for the registry moves. A training command's or the user tests' own timeouts
    /// are added to the default, so the stage never ends before they do.
    pub fn stage_timeout(&self, stage: Stage) -> std::time::Duration {
        let minutes = usercode::minutes;
        self.timeouts.get(&stage).map_or_else(
            || match stage {
                Stage::Train => match &self.algorithm {
                    Some(Algorithm::Command(c)) => c.timeout() + minutes(10),
                    _ => minutes(60),
                },
                Stage::Gate => minutes(15) + Tests::total(&self.tests.gate),
                Stage::Integration => minutes(15) + Tests::total(&self.tests.integration),
                Stage::Validate => minutes(15),
                _ => minutes(5),
            },
            |w| w.0,
        )
    }

    /// The training command, when the spec's algorithm is one.
    pub fn train_command(&self) -> Option<&TrainCommand> {
        match &self.algorithm {
            Some(Algorithm::Command(c)) => Some(c),
            _ => None,
        }
    }

    /// Whether runs of the spec need the files of its folder: it trains with a command or
    /// lists tests. `tollgate publish` and `apply` then pack the folder with the spec.
    pub fn needs_code(&self) -> bool {
        self.train_command().is_some() || !self.tests.is_empty()
    }

    fn validate(&self) -> Result<(), SpecError> {
        let bad = |m: String| Err(SpecError::Invalid(m));
        if !valid_model_name(&self.model) {
            return bad(format!(
                "model name {:?} must be 1-64 lower-case letters, digits, '-' or '_'",
                self.model
            ));
        }
        if self.features.numeric.is_empty() && self.features.categorical.is_empty() {
            return bad("features: list at least one numeric or categorical column".into());
        }
        if self.target.is_empty() {
            return bad("target: name the label column".into());
        }
        if let Some(m) = &self.monitor {
            m.check().map_err(SpecError::Invalid)?;
        }
        if let Some(r) = &self.rollout {
            r.check().map_err(SpecError::Invalid)?;
        }
        if let Some((stage, _)) = self.timeouts.iter().find(|(_, w)| w.0.is_zero()) {
            return bad(format!("timeouts.{stage}: a stage needs more than no time"));
        }
        if let Some((stage, _)) = self.timeouts.iter().find(|(_, w)| w.0 > MAX_STAGE_TIMEOUT) {
            return bad(format!("timeouts.{stage}: at most 24h"));
        }
        for (trigger, plan) in &self.triggers {
            // Staging only through the gate, Production only through an approval: a plan
            // cannot route around either.
            if let Some(i) = plan.iter().position(|s| *s == Stage::Promote)
                && !plan[..i].contains(&Stage::Gate)
            {
                return bad(format!(
                    "triggers.{trigger}: promote must come after gate, so no version reaches Staging ungraded"
                ));
            }
            if plan.contains(&Stage::Production) {
                return bad(format!(
                    "triggers.{trigger}: production is not a plan stage; a recorded approval starts it (tollgate approve)"
                ));
            }
        }
        let minutes = self.alerts.training_minutes;
        if !(minutes.is_finite() && minutes >= 0.0) {
            return bad(format!(
                "alerts.training_minutes must be a number of minutes >= 0 (0 turns the rule off), got {minutes}"
            ));
        }
        if self.features.numeric.contains(&self.target)
            || self.features.categorical.contains(&self.target)
        {
            return bad(format!(
                "target {:?} is also listed as a feature",
                self.target
            ));
        }
        if !(self.split.test_fraction > 0.0 && self.split.test_fraction < 1.0) {
            return bad(format!(
                "split.test_fraction must be between 0 and 1, got {}",
                self.split.test_fraction
            ));
        }
        if self
            .split
            .folds
            .is_some_and(|k| !(2..=MAX_FOLDS).contains(&k))
        {
            return bad(format!("split.folds must be between 2 and {MAX_FOLDS}"));
        }
        match (&self.algorithm, &self.candidates) {
            (Some(_), Some(_)) => {
                return bad("give either algorithm or candidates, not both".into());
            }
            (_, Some(c)) => {
                if c.algorithms.is_empty() {
                    return bad("candidates.algorithms: list at least one algorithm".into());
                }
                if c.algorithms.len() > MAX_CANDIDATES {
                    return bad(format!(
                        "candidates.algorithms: at most {MAX_CANDIDATES}, got {}",
                        c.algorithms.len()
                    ));
                }
                if c.algorithms
                    .iter()
                    .any(|a| matches!(a, Algorithm::Command(_)))
                {
                    return bad("candidates.algorithms: a training command cannot be a candidate; give it as algorithm: {kind: command, run: ...}".into());
                }
                if !(c.validation_fraction > 0.0 && c.validation_fraction < 1.0) {
                    return bad(format!(
                        "candidates.validation_fraction must be between 0 and 1, got {}",
                        c.validation_fraction
                    ));
                }
            }
            _ => {}
        }
        for (i, a) in self.algorithms().iter().enumerate() {
            if let Err(m) = a.check() {
                return match &self.candidates {
                    Some(_) => bad(format!("candidates.algorithms[{i}]: {m}")),
                    None => bad(format!("algorithm: {m}")),
                };
            }
        }
        if let Some((gate, _)) = self
            .gates
            .iter()
            .find(|(_, b)| b.min.is_none() && b.max.is_none())
        {
            return bad(format!("gates.{gate}: give a min or a max"));
        }
        for c in &self.champion {
            if !(c.max_drop.is_finite() && c.max_drop >= 0.0) {
                return bad(format!(
                    "champion: max_drop of {} must be a number >= 0",
                    c.metric
                ));
            }
        }
        if let Some(d) = &self.data {
            d.check().map_err(SpecError::Invalid)?;
        }
        if let Some(a) = self.approvers.iter().find(|a| a.trim().is_empty()) {
            return bad(format!("approvers: {a:?} is not an identity"));
        }
        self.tests.check().map_err(SpecError::Invalid)?;
        if !(1..=MAX_APPROVALS).contains(&self.approvals_required) {
            return bad(format!(
                "approvals_required must be between 1 and {MAX_APPROVALS}, got {}",
                self.approvals_required
            ));
        }
        if !(1..=24 * 365).contains(&self.approval_expires_hours) {
            return bad(format!(
                "approval_expires_hours must be between 1 and 8760 (a year), got {}",
                self.approval_expires_hours
            ));
        }
        Ok(())
    }
}

/// The most folds `split.folds` may ask for.
pub const MAX_FOLDS: usize = 20;
/// The most algorithms `candidates.algorithms` may list.
pub const MAX_CANDIDATES: usize = 16;
/// The longest a stage's `timeouts:` entry may be.
pub const MAX_STAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The shortest time between schedule slots that `tollgate apply` takes without an
/// admin's `--allow-frequent-schedule`.
pub const MIN_SCHEDULE_GAP: std::time::Duration = std::time::Duration::from_secs(60);

impl ModelSpec {
    /// Why its schedule fires too often to apply without an admin's say-so: an entry with
    /// slots less than [`MIN_SCHEDULE_GAP`] apart.
    pub fn too_frequent_schedule(&self) -> Option<String> {
        self.schedule.0.iter().find_map(|entry| {
            let gap = entry.shortest_gap()?;
            (gap < MIN_SCHEDULE_GAP).then(|| {
                format!(
                    "schedule {:?} fires every {}s, more often than once a minute: an admin allows it with `tollgate apply --allow-frequent-schedule`",
                    entry.cron.to_string(),
                    gap.as_secs()
                )
            })
        })
    }
}

/// Whether a model name is safe to use in subjects, keys and file names.
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The sha256 of a text, hex: the spec digest recorded with a version.
pub fn digest(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

/// The sha256 of bytes, hex: how Tollgate names the content of specs and artifacts.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests;
