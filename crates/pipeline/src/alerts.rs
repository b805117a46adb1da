//! The spec's alert rules, evaluated as each run ends (the registry calls [`Alerts::run_ended`]
//! from its run-record consumer). Each model's rule keeps a streak in the alerts bucket;
//! reaching the rule's count fires it once on `tollgate.alert.<rule>` (a protobuf
//! [`Alert`]), and the run that breaks the streak resolves it. Reading one record per rule
//! keeps this O(1) per run, however long the history.

use tollgate_proto::{Alert, AlertSettings, AlertState, RunSummary, Stage, StageStatus, Verdict};
use tracing::{info, warn};

use tollgate_bus::{
    Bus, BusError,
    codec::{read_versioned, write_versioned},
    subjects::{self, Alert as Rule, Bucket},
};

/// How a run moves a rule: one more in its streak, a break of it, or nothing to say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// The run counts toward the rule (a failure, a block, a slow training).
    Hit,
    /// The run clears the rule (a pass, a training in time).
    Clear,
    /// The run says nothing about the rule (it never reached the stage).
    Skip,
}

fn stage_status(run: &RunSummary, stage: Stage) -> Option<(StageStatus, u64)> {
    run.stages
        .iter()
        .rev()
        .find(|s| s.stage() == stage)
        .map(|s| (s.status(), s.duration_ms))
}

/// What `run` means for `rule` under `settings`, and the streak length that fires it
/// (0: the rule is off).
pub fn step(rule: Rule, settings: &AlertSettings, run: &RunSummary) -> (Step, u32) {
    let by = |status: Option<StageStatus>, hit: StageStatus| match status {
        Some(s) if s == hit => Step::Hit,
        Some(StageStatus::Passed) => Step::Clear,
        _ => Step::Skip,
    };
    match rule {
        Rule::PipelineFailures => (
            match run.verdict() {
                Verdict::Failed => Step::Hit,
                Verdict::Passed => Step::Clear,
                _ => Step::Skip,
            },
            settings.pipeline_failures,
        ),
        Rule::ValidationFailures => (
            by(
                stage_status(run, Stage::Validate).map(|s| s.0),
                StageStatus::Failed,
            ),
            settings.validation_failures,
        ),
        Rule::GateBlocks => (
            by(
                stage_status(run, Stage::Gate).map(|s| s.0),
                StageStatus::Blocked,
            ),
            settings.gate_blocks,
        ),
        Rule::TrainingMinutes => {
            let limit_ms = settings.training_minutes * 60_000.0;
            let on = u32::from(settings.training_minutes > 0.0);
            match stage_status(run, Stage::Train) {
                Some((StageStatus::Running, _)) | None => (Step::Skip, on),
                Some((_, ms)) if ms as f64 > limit_ms => (Step::Hit, on),
                Some(_) => (Step::Clear, on),
            }
        }
        // Not a run's: raised by the model server's labels monitor and the registry's
        // rollouts.
        Rule::Approval | Rule::LiveAucRoc | Rule::Rollout => (Step::Skip, 0),
    }
}

/// What a rule's condition says in words once it fires.
fn summary(rule: Rule, settings: &AlertSettings, model: &str, runs: usize) -> String {
    let s = if runs == 1 { "" } else { "s" };
    match rule {
        Rule::PipelineFailures => format!("{model}: {runs} failed run{s} in a row"),
        Rule::ValidationFailures => format!("{model}: {runs} failed validation{s} in a row"),
        Rule::GateBlocks => format!("{model}: the gate blocked {runs} versions in a row"),
        Rule::TrainingMinutes => format!(
            "{model}: a training took longer than {} minutes",
            settings.training_minutes
        ),
        Rule::Approval => format!("{model}: approval requested"),
        Rule::LiveAucRoc => format!("{model}: live AUC-ROC under monitor.min_auc_roc"),
        Rule::Rollout => format!("{model}: a rollout was rolled back"),
    }
}

/// The alert rules' state.
pub struct Alerts<'a>(pub(crate) &'a Bus);

/// How many times a compare-and-set is retried against another writer.
const CAS_ATTEMPTS: usize = 20;

impl Alerts<'_> {
    fn key(model: &str, rule: Rule) -> String {
        format!("{model}.{}", rule.name())
    }

    /// Every model's rule records, firing ones first, then by model and rule.
    pub async fn list(&self) -> Result<Vec<Alert>, BusError> {
        use futures::TryStreamExt as _;
        let kv = self.0.key_value(Bucket::Alerts);
        let keys: std::collections::BTreeSet<String> = kv
            .keys()
            .await
            .map_err(|e| BusError::store("listing alerts", e))?
            .try_collect()
            .await
            .map_err(|e| BusError::store("listing alerts", e))?;
        let mut out = Vec::new();
        for key in keys {
            let (alert, revision): (Alert, _) = read_versioned(&kv, &key, "Alert").await?;
            if revision.is_some() && !alert.rule.is_empty() {
                out.push(alert);
            }
        }
        out.sort_by_key(|a| {
            (
                a.state() != AlertState::Firing,
                a.model.clone(),
                a.rule.clone(),
            )
        });
        Ok(out)
    }

    /// Moves each of the run's rules on by one ended run; publishes the alerts that fire
    /// or resolve.
    pub async fn run_ended(&self, run: &RunSummary) -> Result<(), BusError> {
        let Some(settings) = run.alerts else {
            return Ok(());
        };
        for rule in Rule::RULES {
            let (step, needed) = step(rule, &settings, run);
            if needed == 0 || step == Step::Skip {
                continue;
            }
            self.advance(rule, &settings, run, step == Step::Hit, needed)
                .await?;
        }
        Ok(())
    }

    async fn advance(
        &self,
        rule: Rule,
        settings: &AlertSettings,
        run: &RunSummary,
        hit: bool,
        needed: u32,
    ) -> Result<(), BusError> {
        let kv = self.0.key_value(Bucket::Alerts);
        let key = Self::key(&run.model, rule);
        for _ in 0..CAS_ATTEMPTS {
            let (old, revision): (Alert, _) = read_versioned(&kv, &key, "Alert").await?;
            // A redelivered run event must not count twice.
            if old.run_ids.first() == Some(&run.run_id) {
                return Ok(());
            }
            let firing = old.state() == AlertState::Firing;
            let mut new = Alert {
                rule: rule.name().into(),
                model: run.model.clone(),
                at_unix_ms: run.finished_unix_ms,
                ..old.clone()
            };
            let mut changed = false;
            if hit {
                new.streak = old.streak + 1;
                new.run_ids.insert(0, run.run_id.clone());
                new.run_ids.truncate(needed.max(1) as usize);
                if !firing && new.streak >= needed {
                    new.state = AlertState::Firing as i32;
                    new.firing_since_unix_ms = run.finished_unix_ms;
                    new.summary = summary(rule, settings, &run.model, new.streak as usize);
                    changed = true;
                }
            } else {
                if old.streak == 0 && !firing {
                    return Ok(());
                }
                new.streak = 0;
                new.run_ids = vec![run.run_id.clone()];
                if firing {
                    new.state = AlertState::Resolved as i32;
                    new.summary = format!("{} (resolved by run {})", old.summary, run.run_id);
                    changed = true;
                }
            }
            if !write_versioned(&kv, &key, &new, revision).await? {
                continue;
            }
            if changed {
                info!(rule = rule.name(), model = %run.model, state = new.state().name(), summary = %new.summary, "alert");
                if let Err(e) = self.0.publish(subjects::alert(rule), &new, None).await {
                    warn!(error = %e, rule = rule.name(), "alert recorded but not published");
                }
            }
            return Ok(());
        }
        Err(BusError::store(
            format!("updating alert {key}"),
            "too many concurrent writers",
        ))
    }
}

#[cfg(test)]
mod tests;
