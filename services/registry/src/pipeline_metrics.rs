//! The brief's `pipeline_metrics` record: one run's trigger, stages, AUC and gate result
//! in a fixed JSON shape, printed by `tollgate runs --json` (one per run, in an array)
//! and `tollgate runs show RUN --json`. Field names are the contract scripts rely on.

use serde::Serialize;
use tollgate_proto::{CheckVerdict, RunSummary, StageStatus};

/// One run as `pipeline_metrics`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PipelineMetrics {
    /// The run's id.
    pub run_id: String,
    /// The model the run is for.
    pub model: String,
    /// The version it trained, if it got that far.
    pub model_version: Option<u32>,
    /// `code`, `data`, `manual`, `model`, `drift` or `schedule`.
    pub trigger: String,
    /// `passed`, `failed`, `blocked`, `cancelled`, `running` or `queued`.
    pub verdict: String,
    /// Why the run ended as it did; empty when it passed.
    pub reason: String,
    /// When the run was created (RFC 3339, UTC).
    pub created_at: String,
    /// When it ended, or `null` while it runs.
    pub finished_at: Option<String>,
    /// Seconds from creation to verdict, or `null` while it runs.
    pub total_duration_s: Option<f64>,
    /// Each stage that started, in order.
    pub stages: Vec<StageMetrics>,
    /// The held-out AUC-ROC the gate measured, if the gate ran.
    pub auc_roc: Option<f64>,
    /// Gate checks that passed, if the gate ran.
    pub gate_checks_passed: Option<u32>,
    /// Gate checks judged (skipped checks not counted), if the gate ran.
    pub gate_checks_total: Option<u32>,
    /// The commit the trigger named, or `null`.
    pub commit: Option<String>,
    /// The git ref CI recorded (`refs/pull/12/merge`), or `null`.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The pull request number, or `null` when the change is not one.
    pub pull_request: Option<u32>,
    /// Who pushed or opened the pull request, as CI recorded it, or `null`.
    pub actor: Option<String>,
    /// The CI run's web page, or `null`.
    pub ci_run_url: Option<String>,
    /// Who asked for the run (the CI actor, `--as`, or the user), or `null`.
    pub requested_by: Option<String>,
}

/// One stage of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageMetrics {
    /// `validate`, `train`, `gate`, `promote`, `integration` or `approval`.
    pub stage: String,
    /// `running`, `passed`, `failed`, `blocked`, `skipped` or `cancelled`.
    pub status: String,
    /// Seconds the stage took (so far, while running).
    pub duration_s: f64,
    /// What the stage reported.
    pub message: String,
    /// The replica that ran it (`host:pid`).
    pub worker: String,
}

/// `Some` of a recorded text; `None` (JSON `null`) when it is empty.
fn given(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn rfc3339(unix_ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl PipelineMetrics {
    /// The record of `run`.
    pub fn of(run: &RunSummary) -> Self {
        let finished = run.finished_unix_ms > 0;
        let gate = run.gate.as_ref();
        let ci = run.ci.as_ref();
        let judged = |c: &&tollgate_proto::GateCheck| c.verdict() != CheckVerdict::Skipped;
        PipelineMetrics {
            run_id: run.run_id.clone(),
            model: run.model.clone(),
            model_version: (run.model_version > 0).then_some(run.model_version),
            trigger: run.trigger().to_string(),
            verdict: run.status().into(),
            reason: run.reason.clone(),
            created_at: rfc3339(run.created_unix_ms).unwrap_or_default(),
            finished_at: finished.then(|| rfc3339(run.finished_unix_ms)).flatten(),
            total_duration_s: finished
                .then(|| (run.finished_unix_ms - run.created_unix_ms).max(0) as f64 / 1000.0),
            stages: run
                .stages
                .iter()
                .map(|s| StageMetrics {
                    stage: s.stage().to_string(),
                    status: if s.status() == StageStatus::Running {
                        "running".into()
                    } else {
                        s.status().name().into()
                    },
                    duration_s: s.duration_ms as f64 / 1000.0,
                    message: s.message.clone(),
                    worker: s.worker.clone(),
                })
                .collect(),
            auc_roc: gate
                .and_then(|g| g.checks.iter().find(|c| c.name == "auc_roc"))
                .map(|c| c.observed),
            gate_checks_passed: gate.map(|g| {
                g.checks
                    .iter()
                    .filter(|c| c.verdict() == CheckVerdict::Pass)
                    .count() as u32
            }),
            gate_checks_total: gate.map(|g| g.checks.iter().filter(judged).count() as u32),
            commit: given(&run.code_commit),
            git_ref: ci.and_then(|c| given(&c.git_ref)),
            pull_request: ci.map(|c| c.pull_request).filter(|&n| n > 0),
            actor: ci.and_then(|c| given(&c.actor)),
            ci_run_url: ci.and_then(|c| given(&c.run_url)),
            requested_by: given(&run.requested_by),
        }
    }
}

#[cfg(test)]
mod tests;
