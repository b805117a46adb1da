//! The gate grades a candidate version against the spec's quality gates.
//!
//! Consumes `tollgate.stage.gate`. Fetches the candidate's artifact through the registry
//! (gRPC, digest checked), evaluates it itself on the held-out split of the run's data
//! (metrics at threshold 0.5), times single-record inference with feature encoding in
//! process and as `infer` round trips through a server of the candidate on loopback (the
//! latency gates judge the served figure; the in-process one is noted beside it), and
//! checks the artifact size. When a Production version exists, it is graded on the same
//! test rows and the spec's `champion:` checks bound how much worse the candidate may be.
//! Every check is listed with observed value, threshold and verdict (SKIPPED with the
//! reason when there is nothing to compare with), and the decision is recorded on the
//! version in the registry. Blessed: the run goes to its next stage; blocked: the run
//! ends `blocked` naming the checks that failed. The spec's `tests.gate` run against the
//! candidate on the same loopback server (see [`user_tests`]); each of their test cases is
//! a check row.

pub mod user_tests;

use std::collections::BTreeMap;

use tollgate_inference::{ServedModel, http::Loopback};
use tollgate_ml::{
    artifact::Artifact,
    grade::{evaluate, percentiles},
};
use tollgate_pipeline::{StageContext, StageDone, StageError, StageHandler, StageOutcome};
use tollgate_proto::{
    CheckVerdict, Comparison, GateCheck, GateDecision, GetVersionRequest, LatestByStageRequest,
    ModelStage, RecordGateRequest, Run, Stage,
};
use tollgate_service::{ServiceError, StageConfig, StageDeps};
use tollgate_spec::{Bound, ChampionCheck};
use tollgate_spec::{Gate, ModelSpec};

/// Errors that stop the gate.
pub type Error = ServiceError;

/// Gate configuration (file, then `TOLLGATE_*` environment variables): the
/// stage services' shared shape.
pub type Config = StageConfig;

/// Runs the gate until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    config.serve("gate", &[Stage::Gate], Grader, shutdown).await
}

/// The stage handler, made from what the stage config provides.
struct Grader(StageDeps);

/// Checks an observed value against a bound: one check per side that is set.
pub fn checks_for(gate: Gate, observed: Option<f64>, bound: &Bound) -> Vec<GateCheck> {
    let sides = [
        (bound.min, Comparison::AtLeast),
        (bound.max, Comparison::AtMost),
    ];
    sides
        .into_iter()
        .filter_map(|(threshold, comparison)| threshold.map(|t| (t, comparison)))
        .map(|(threshold, comparison)| {
            let (verdict, note) = match observed {
                None => (CheckVerdict::Fail, format!("{gate} could not be measured")),
                Some(v) if comparison.holds(v, threshold) => (CheckVerdict::Pass, String::new()),
                Some(_) => (CheckVerdict::Fail, String::new()),
            };
            GateCheck {
                name: gate.to_string(),
                observed: observed.unwrap_or(f64::NAN),
                threshold,
                comparison: comparison as i32,
                verdict: verdict as i32,
                note,
                test: false,
            }
        })
        .collect()
}

/// Champion/challenger checks: the challenger may score at most `max_drop` below the
/// champion (absolute, or a share of the champion's value). Without a champion each
/// check is SKIPPED with the reason, and passes.
pub fn champion_checks(
    spec: &[ChampionCheck],
    challenger: &BTreeMap<String, f64>,
    champion: Option<(u32, &BTreeMap<String, f64>)>,
) -> Vec<GateCheck> {
    spec.iter()
        .map(|c| {
            let name = format!("{}_drop_vs_production", c.metric);
            let Some((version, champ)) = champion else {
                return GateCheck {
                    name,
                    threshold: c.max_drop,
                    comparison: Comparison::AtMost as i32,
                    verdict: CheckVerdict::Skipped as i32,
                    note: "no Production version to compare with; passes".into(),
                    ..Default::default()
                };
            };
            let (new, old) = (
                challenger.get(c.metric.name()).copied(),
                champ.get(c.metric.name()).copied(),
            );
            let (observed, verdict, note) = match (new, old) {
                (Some(new), Some(old)) => {
                    let drop = if c.relative && old != 0.0 {
                        (old - new) / old
                    } else {
                        old - new
                    };
                    let verdict = if drop <= c.max_drop {
                        CheckVerdict::Pass
                    } else {
                        CheckVerdict::Fail
                    };
                    let unit = if c.relative { " (relative)" } else { "" };
                    (
                        drop,
                        verdict,
                        format!("challenger {new:.4} vs champion v{version} {old:.4}{unit}"),
                    )
                }
                _ => (
                    f64::NAN,
                    CheckVerdict::Fail,
                    format!("{} not measured on both models", c.metric),
                ),
            };
            GateCheck {
                name,
                observed,
                threshold: c.max_drop,
                comparison: Comparison::AtMost as i32,
                verdict: verdict as i32,
                note,
                test: false,
            }
        })
        .collect()
}

/// The decision over all checks: blessed when none failed.
pub fn decide(checks: Vec<GateCheck>, version: u32) -> GateDecision {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict() == CheckVerdict::Fail)
        .map(|c| match c.test {
            true if c.note.is_empty() => format!("test {} failed", c.name),
            true => format!("test {} failed: {}", c.name, c.note),
            false => format!(
                "{} {:.4} not {} {}",
                c.name,
                c.observed,
                c.comparison(),
                c.threshold
            ),
        })
        .collect();
    let judged = checks
        .iter()
        .filter(|c| c.verdict() != CheckVerdict::Skipped)
        .count();
    let summary = if failed.is_empty() {
        format!("blessed: {judged}/{judged} checks passed")
    } else {
        format!("blocked: {}", failed.join("; "))
    };
    GateDecision {
        blessed: failed.is_empty(),
        checks,
        summary,
        model_version: version,
    }
}

impl StageHandler for Grader {
    async fn handle(&self, mut run: Run, ctx: StageContext) -> Result<StageDone, StageError> {
        let spec = ModelSpec::parse(&run.spec_yaml)?;
        if run.model_version == 0 {
            return Err(StageError::Input(
                "no candidate version: the plan must train before it gates".into(),
            ));
        }
        let (candidate, size) = self.fetch(&run.model, run.model_version).await?;
        let path = ctx.dataset(&run, &self.0.data).await?;
        let mut registry = self.0.registry.clone();
        let production = match registry
            .latest_by_stage(LatestByStageRequest {
                model: run.model.clone(),
                stage: ModelStage::Production as i32,
            })
            .await
        {
            Ok(p) => Some(p.into_inner().version).filter(|&v| v != run.model_version),
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => return Err(s.into()),
        };
        ctx.progress(format!(
            "evaluating {} v{} on the held-out split",
            run.model, run.model_version
        ))
        .await;
        let served = ServedModel::new(
            &run.model,
            run.model_version,
            "candidate",
            candidate.clone(),
            spec.threshold.resolve(candidate.meta.optimal_threshold),
        );
        let eval = self.evaluate(candidate, &path, &spec).await?;
        ctx.progress(format!(
            "timing {} single-record infer round trips over HTTP",
            self.0.latency_calls
        ))
        .await;
        let columns = served.columns().clone();
        let loopback = Loopback::serve(served)
            .await
            .map_err(|e| StageError::Input(format!("no loopback server to time inference: {e}")))?;
        let (served_p50, served_p99) = self
            .served_latency(&loopback, &run, &columns, &eval)
            .await?;
        let champion = match production {
            Some(version) => {
                ctx.progress(format!("evaluating champion v{version} on the same rows"))
                    .await;
                let (artifact, _) = self.fetch(&run.model, version).await?;
                Some((version, self.evaluate(artifact, &path, &spec).await?))
            }
            None => None,
        };
        let observed = |gate: Gate| match gate {
            Gate::LatencyP50Ms => Some(served_p50),
            Gate::LatencyP99Ms => Some(served_p99),
            Gate::ModelSizeMb => Some(size as f64 / (1024.0 * 1024.0)),
            metric => eval.metrics.get(metric.name()).copied(),
        };
        let mut checks: Vec<GateCheck> = spec
            .gates
            .iter()
            .flat_map(|(&gate, bound)| checks_for(gate, observed(gate), bound))
            .collect();
        for check in &mut checks {
            let in_process = match check.name.parse() {
                Ok(Gate::LatencyP50Ms) => eval.latency_p50_ms,
                Ok(Gate::LatencyP99Ms) => eval.latency_p99_ms,
                _ => continue,
            };
            let note =
                format!("infer round trip over HTTP on loopback; in process {in_process:.4} ms");
            check.note = if check.note.is_empty() {
                note
            } else {
                format!("{}; {note}", check.note)
            };
        }
        checks.extend(champion_checks(
            &spec.champion,
            &eval.metrics,
            champion.as_ref().map(|(v, e)| (*v, &e.metrics)),
        ));
        if !spec.tests.gate.is_empty() {
            checks.extend(user_tests::run(&ctx, &run, &spec, &path, loopback.client.base()).await?);
        }
        drop(loopback);
        let decision = decide(checks, run.model_version);
        let failed = decision
            .checks
            .iter()
            .filter(|c| c.verdict() == CheckVerdict::Fail)
            .count() as u64;
        if let Some(auc) = eval.metrics.get("auc_roc") {
            tollgate_pipeline::stage::record("auc_roc", *auc);
        }
        tollgate_pipeline::stage::record(
            "gate_verdict",
            if decision.blessed {
                "passed"
            } else {
                "blocked"
            },
        );
        tollgate_telemetry::metrics::get().gated(&run.model, decision.blessed, failed);
        registry
            .record_gate(RecordGateRequest {
                model: run.model.clone(),
                version: run.model_version,
                decision: Some(decision.clone()),
                run_id: run.run_id.clone(),
            })
            .await?;
        let message = format!("{} v{} {}", run.model, run.model_version, decision.summary);
        let outcome = if decision.blessed {
            StageOutcome::Passed(message)
        } else {
            StageOutcome::Blocked(message)
        };
        run.gate = Some(decision);
        Ok(StageDone { run, outcome })
    }
}

impl Grader {
    /// A version's artifact through the registry, digest checked, and its size in bytes.
    async fn fetch(&self, model: &str, version: u32) -> Result<(Artifact, usize), StageError> {
        let fetched = self
            .0
            .registry
            .clone()
            .get_artifact(GetVersionRequest {
                model: model.into(),
                version,
            })
            .await?
            .into_inner();
        let digest = fetched.version.unwrap_or_default().artifact_digest;
        let artifact = Artifact::decode_verified(&fetched.data, &digest)
            .map_err(|e| StageError::Input(format!("{model} v{version}: {e}")))?;
        Ok((artifact, fetched.data.len()))
    }

    /// p50 and p99 milliseconds of single-record `infer` round trips through a server of
    /// the candidate on a loopback port, over the records the evaluation timed.
    async fn served_latency(
        &self,
        loopback: &Loopback,
        run: &Run,
        columns: &tollgate_ml::table::Columns,
        eval: &tollgate_ml::grade::Evaluation,
    ) -> Result<(f64, f64), StageError> {
        let mut times = loopback
            .client
            .round_trips(
                &run.model,
                Some(run.model_version),
                columns,
                &eval.latency_records,
                self.0.latency_calls,
            )
            .await
            .map_err(|e| StageError::Input(format!("served latency not measured: {e}")))?;
        Ok(percentiles(&mut times))
    }

    /// Evaluates on the spec's test rows at the spec's threshold (`optimal` resolves to
    /// each model's own stored F1-optimal threshold).
    async fn evaluate(
        &self,
        artifact: Artifact,
        path: &std::path::Path,
        spec: &ModelSpec,
    ) -> Result<tollgate_ml::grade::Evaluation, StageError> {
        let (calls, path, split, threshold) = (
            self.0.latency_calls,
            path.to_path_buf(),
            spec.split.clone(),
            spec.threshold,
        );
        tokio::task::spawn_blocking(move || evaluate(&artifact, &path, &split, threshold, calls))
            .await
            .map_err(|source| StageError::Task {
                what: "evaluation",
                source,
            })?
            .map_err(StageError::invalid)
    }
}

#[cfg(test)]
mod tests;
