//! The gate grades a candidate version against the spec's quality gates.
//!
//! Consumes `tollgate.stage.gate`. Fetches the candidate's artifact through the registry
//! (gRPC, digest checked), evaluates it itself on the held-out split of the run's data
//! (metrics at threshold 0.5), times single-record inference with feature encoding, and
//! checks the artifact size. Every check is listed with observed value, threshold and
//! verdict. Blessed: the run goes to its next stage; blocked: the run ends `blocked`
//! naming the checks that failed.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};
use tollgate_bus::{
    StageContext, StageDone, StageError, StageHandler, StageOutcome, defaults, service, worker,
};
use tollgate_proto::{
    CheckVerdict, GateCheck, GateDecision, GetVersionRequest, LatestByStageRequest, ModelStage, Run,
};
use tollgate_spec::Bound;

/// Errors that stop the gate.
pub type Error = service::ServiceError;

/// Gate configuration (file, then `TOLLGATE_*` environment variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// NATS server URL.
    pub nats_url: String,
    /// Address of the health endpoint (`/healthz`).
    pub health_addr: String,
    /// URL of the registry's gRPC API.
    pub registry_url: String,
    /// Where pushed datasets are downloaded to.
    pub cache_dir: PathBuf,
    /// Single-record predictions timed for the latency checks.
    pub latency_calls: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats_url: defaults::NATS_URL.into(),
            health_addr: defaults::HEALTH_ADDR.into(),
            registry_url: defaults::REGISTRY_URL.into(),
            cache_dir: defaults::cache_dir(),
            latency_calls: 200,
        }
    }
}

/// Runs the gate until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = service::token_from(shutdown);
    if config.latency_calls < 100 {
        return Err(Error::Config("latency_calls must be at least 100".into()));
    }
    let registry = defaults::registry_client(&config.registry_url)?;
    let handler = Gate {
        cache_dir: config.cache_dir.clone(),
        registry,
        latency_calls: config.latency_calls,
    };
    worker::serve_stage(
        &config.nats_url,
        &config.health_addr,
        "gate",
        handler,
        token,
    )
    .await
}

struct Gate {
    cache_dir: PathBuf,
    registry: tollgate_proto::RegistryClient<tonic::transport::Channel>,
    latency_calls: usize,
}

/// Checks an observed value against a bound: one check per side that is set.
pub fn checks_for(name: &str, observed: Option<f64>, bound: &Bound) -> Vec<GateCheck> {
    let sides = [(bound.min, ">="), (bound.max, "<=")];
    sides
        .into_iter()
        .filter_map(|(threshold, comparison)| threshold.map(|t| (t, comparison)))
        .map(|(threshold, comparison)| {
            let (verdict, note) = match observed {
                None => (CheckVerdict::Fail, format!("{name} could not be measured")),
                Some(v)
                    if (comparison == ">=" && v >= threshold)
                        || (comparison == "<=" && v <= threshold) =>
                {
                    (CheckVerdict::Pass, String::new())
                }
                Some(_) => (CheckVerdict::Fail, String::new()),
            };
            GateCheck {
                name: name.into(),
                observed: observed.unwrap_or(f64::NAN),
                threshold,
                comparison: comparison.into(),
                verdict: verdict as i32,
                note,
            }
        })
        .collect()
}

/// The decision over all checks: blessed when none failed.
pub fn decide(checks: Vec<GateCheck>, version: u32) -> GateDecision {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict() == CheckVerdict::Fail)
        .map(|c| {
            format!(
                "{} {:.4} not {} {}",
                c.name, c.observed, c.comparison, c.threshold
            )
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

impl StageHandler for Gate {
    async fn handle(&self, mut run: Run, ctx: StageContext) -> Result<StageDone, StageError> {
        let spec = worker::run_spec(&run)?;
        if run.model_version == 0 {
            return Err(StageError::Input(
                "no candidate version: the plan must train before it gates".into(),
            ));
        }
        let mut registry = self.registry.clone();
        let fetched = registry
            .get_artifact(GetVersionRequest {
                model: run.model.clone(),
                version: run.model_version,
            })
            .await
            .map_err(worker::grpc_error)?
            .into_inner();
        let version = fetched.version.unwrap_or_default();
        let artifact = tollgate_ml::artifact::Artifact::decode_verified(
            &fetched.data,
            &version.artifact_digest,
        )
        .map_err(|e| {
            StageError::Input(format!(
                "candidate {} v{}: {e}",
                run.model, run.model_version
            ))
        })?;
        let path = worker::run_dataset(ctx.bus(), &run, &self.cache_dir).await?;
        ctx.progress(format!(
            "evaluating {} v{} on the held-out split",
            run.model, run.model_version
        ))
        .await;
        let (calls, eval_spec) = (self.latency_calls, spec.clone());
        let eval = tokio::task::spawn_blocking(move || {
            tollgate_ml::model::evaluate(&eval_spec, &artifact, &path, calls)
        })
        .await
        .map_err(|e| StageError::Transient(format!("evaluation task failed: {e}")))?
        .map_err(|e| StageError::Input(e.to_string()))?;
        let mut observed: BTreeMap<String, f64> = eval.metrics.clone();
        observed.insert("latency_p50_ms".into(), eval.latency_p50_ms);
        observed.insert("latency_p99_ms".into(), eval.latency_p99_ms);
        observed.insert(
            "model_size_mb".into(),
            fetched.data.len() as f64 / (1024.0 * 1024.0),
        );
        let mut checks: Vec<GateCheck> = spec
            .gates
            .iter()
            .flat_map(|(name, bound)| checks_for(name, observed.get(name).copied(), bound))
            .collect();
        let production = registry
            .latest_by_stage(LatestByStageRequest {
                model: run.model.clone(),
                stage: ModelStage::Production as i32,
            })
            .await;
        checks.push(match production {
            Err(s) if s.code() == tonic::Code::NotFound => GateCheck {
                name: "no_regression_vs_production".into(),
                verdict: CheckVerdict::Skipped as i32,
                note: "no Production version to compare with".into(),
                ..Default::default()
            },
            Err(s) => return Err(worker::grpc_error(s)),
            Ok(p) => GateCheck {
                name: "no_regression_vs_production".into(),
                verdict: CheckVerdict::Skipped as i32,
                note: format!(
                    "champion/challenger comparison with v{} is not implemented yet",
                    p.into_inner().version
                ),
                ..Default::default()
            },
        });
        let decision = decide(checks, run.model_version);
        let outcome = if decision.blessed {
            StageOutcome::Passed(format!(
                "{} v{} {}",
                run.model, run.model_version, decision.summary
            ))
        } else {
            StageOutcome::Blocked(format!(
                "{} v{} {}",
                run.model, run.model_version, decision.summary
            ))
        };
        run.gate = Some(decision);
        Ok(StageDone { run, outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_min_blocks_and_is_named() {
        let mut checks = checks_for(
            "auc_roc",
            Some(0.75),
            &Bound {
                min: Some(0.8),
                max: None,
            },
        );
        checks.extend(checks_for(
            "latency_p99_ms",
            Some(0.2),
            &Bound {
                min: None,
                max: Some(100.0),
            },
        ));
        let d = decide(checks, 3);
        assert!(!d.blessed);
        assert_eq!(d.checks[0].verdict(), CheckVerdict::Fail);
        assert_eq!(d.checks[1].verdict(), CheckVerdict::Pass);
        assert!(
            d.summary.contains("auc_roc 0.7500 not >= 0.8"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn an_unmeasured_value_fails_its_check() {
        let checks = checks_for(
            "auc_roc",
            None,
            &Bound {
                min: Some(0.8),
                max: None,
            },
        );
        assert_eq!(checks[0].verdict(), CheckVerdict::Fail);
        assert!(!decide(checks, 1).blessed);
    }
}
