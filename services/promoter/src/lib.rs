//! The promoter moves versions between registry stages and tests them on the way.
//!
//! Consumes four stages:
//! - `tollgate.stage.promote`: moves the run's blessed version to Staging (compare-and-set
//!   on the stage pointer; the previous Staging version is archived).
//! - `tollgate.stage.integration`: replays the golden records the trainer stored through
//!   the Staging model server over the Open Inference Protocol (`staging_server_url`; a
//!   loopback server of its own when none is set): predictions equal to the trainer's,
//!   probabilities in [0, 1], the spec's schema, infer round-trip p99 within the gate;
//!   then runs the spec's `tests.integration` against the same server.
//! - `tollgate.stage.approval`: asks the spec's approvers for Production, on
//!   `tollgate.alert.approval` and in the run's verdict.
//! - `tollgate.stage.production`: after a recorded approval, moves the version to
//!   Production and archives the previous one; or, when the model's policy has a
//!   `rollout:` section, starts the rollout the registry drives.
//!
//! Publishes each run to its next stage, or ends it.

use std::cmp::Ordering;

use tollgate_bus::subjects;
use tollgate_inference::{ServedModel, client::Client, http::Loopback};
use tollgate_ml::{
    artifact::Artifact,
    grade::{Integration, golden_records, integration_of, percentiles},
    table::Columns,
};
use tollgate_pipeline::{StageContext, StageDone, StageError, StageHandler, StageOutcome};
use tollgate_proto::{
    GetVersionRequest, ModelStage, RolloutState, Run, Stage, StartRolloutRequest,
    TransitionStageRequest,
};
use tollgate_service::{ServiceError, StageConfig, StageDeps};
use tollgate_spec::{Gate, ModelSpec};

/// Errors that stop the promoter.
pub type Error = ServiceError;

/// Promoter configuration (file, then `TOLLGATE_*` environment variables): the
/// stage services' shared shape.
pub type Config = StageConfig;

/// The stages the promoter serves.
pub const STAGES: &[Stage] = &[
    Stage::Promote,
    Stage::Integration,
    Stage::Approval,
    Stage::Production,
];

/// Runs the promoter until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    config.serve("promoter", STAGES, Promoter, shutdown).await
}

/// What makes an integration test fail: no golden records, predictions that differ from
/// the trainer's, probabilities outside [0, 1], latency over the gate's p99 limit (or not
/// measured at all).
pub fn integration_failures(check: &Integration, latency_limit_ms: Option<f64>) -> Vec<String> {
    let mut failures = Vec::new();
    if check.golden == 0 {
        failures.push("the artifact holds no golden records".to_string());
    }
    if check.max_difference > 1e-9 {
        failures.push(format!(
            "predictions differ from the trainer's by up to {:.3e}",
            check.max_difference
        ));
    }
    if check.out_of_range > 0 {
        failures.push(format!(
            "{} probabilities outside [0, 1]",
            check.out_of_range
        ));
    }
    let over = |l: &f64| {
        matches!(
            check.latency_p99_ms.partial_cmp(l),
            Some(Ordering::Greater) | None
        )
    };
    if let Some(limit) = latency_limit_ms.filter(over) {
        failures.push(format!(
            "latency p99 {:.3} ms over the gate's {limit} ms",
            check.latency_p99_ms
        ));
    }
    failures
}

/// The stage handler, made from what the stage config provides.
struct Promoter(StageDeps);

impl StageHandler for Promoter {
    async fn handle(&self, run: Run, ctx: StageContext) -> Result<StageDone, StageError> {
        if run.model_version == 0 {
            return Err(StageError::Input("the run names no model version".into()));
        }
        let outcome = match run.current_stage() {
            Some(Stage::Promote) => self.move_to(&run, ModelStage::Staging).await?,
            Some(Stage::Production) => self.to_production(&run, &ctx).await?,
            // Only waiting on servers: on shutdown the run goes back at once.
            Some(Stage::Integration) => ctx.waiting(self.integration(&run, &ctx)).await??,
            Some(Stage::Approval) => self.request_approval(&run, &ctx).await?,
            other => {
                return Err(StageError::Input(format!(
                    "the promoter does not serve stage {}",
                    other.map_or("(none)".into(), |s| s.to_string())
                )));
            }
        };
        Ok(StageDone { run, outcome })
    }
}

impl Promoter {
    /// Moves an approved version to Production: at once, or by starting the rollout the
    /// model's policy (`rollout:`) asks for, which the registry then drives.
    async fn to_production(
        &self,
        run: &Run,
        ctx: &StageContext,
    ) -> Result<StageOutcome, StageError> {
        use tollgate_pipeline::Stores;
        let policy = ctx
            .bus()
            .specs()
            .current(&run.model)
            .await
            .map_err(|e| match e {
                tollgate_pipeline::specs::SpecStoreError::Bus(e) => StageError::Bus(e),
                invalid => StageError::Input(format!("the model's policy: {invalid}")),
            })?;
        if policy.is_none_or(|p| p.spec.rollout.is_none()) {
            return self.move_to(run, ModelStage::Production).await;
        }
        let rollout = self
            .0
            .registry
            .clone()
            .start_rollout(StartRolloutRequest {
                model: run.model.clone(),
                version: run.model_version,
                actor: "promoter".into(),
                reason: run.reason.clone(),
                run_id: run.run_id.clone(),
            })
            .await?
            .into_inner();
        if rollout.state() == RolloutState::Promoted {
            return Ok(StageOutcome::Passed(format!(
                "{} v{} is now in Production: {}",
                run.model, run.model_version, rollout.reason
            )));
        }
        let plan = rollout.plan.unwrap_or_default();
        let phases: Vec<String> = tollgate_pipeline::rollout::phases(&plan)
            .into_iter()
            .map(|p| p.name)
            .collect();
        Ok(StageOutcome::Passed(format!(
            "rollout of {} v{} against Production v{} started: {}; follow it with tollgate rollout status {}",
            run.model,
            run.model_version,
            rollout.from_version,
            phases.join(" → "),
            run.model
        )))
    }

    async fn move_to(&self, run: &Run, to: ModelStage) -> Result<StageOutcome, StageError> {
        if to == ModelStage::Staging && run.gate.as_ref().is_some_and(|g| !g.blessed) {
            return Err(StageError::Input(format!(
                "{} v{} was not blessed by the gate",
                run.model, run.model_version
            )));
        }
        let v = self
            .0
            .registry
            .clone()
            .transition_stage(TransitionStageRequest {
                model: run.model.clone(),
                version: run.model_version,
                to: to as i32,
                archive_existing: true,
                actor: "promoter".into(),
                reason: if run.reason.is_empty() {
                    format!("run {}", run.run_id)
                } else {
                    run.reason.clone()
                },
                run_id: run.run_id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(StageOutcome::Passed(format!(
            "{} v{} is now in {}",
            v.model,
            v.version,
            v.stage().name()
        )))
    }

    async fn integration(&self, run: &Run, ctx: &StageContext) -> Result<StageOutcome, StageError> {
        let spec = ModelSpec::parse(&run.spec_yaml)?;
        let mut registry = self.0.registry.clone();
        let request = GetVersionRequest {
            model: run.model.clone(),
            version: run.model_version,
        };
        let fetched = registry.get_artifact(request).await?.into_inner();
        let version = fetched.version.unwrap_or_default();
        if version.stage() != ModelStage::Staging {
            return Ok(StageOutcome::Failed(format!(
                "{} v{} is no longer in Staging (now {})",
                run.model,
                run.model_version,
                version.stage().name()
            )));
        }
        let artifact = Artifact::decode_verified(&fetched.data, &version.artifact_digest)
            .map_err(|e| StageError::Input(format!("{} v{}: {e}", run.model, run.model_version)))?;
        let (have, want) = (artifact.columns(), Columns::of_spec(&spec));
        if have != want {
            return Ok(StageOutcome::Failed(format!(
                "schema: the model reads {:?} but the spec lists {:?}",
                have.all(),
                want.all()
            )));
        }
        let (client, served_by, _loopback) = match self.staging(run, &spec, &artifact).await {
            Ok(served) => served,
            Err(unserved) => return Ok(StageOutcome::Failed(unserved)),
        };
        let limit = spec.gates.get(&Gate::LatencyP99Ms).and_then(|b| b.max);
        let (mut failures, passed) = match self
            .served_check(run, &client, &served_by, &artifact)
            .await
        {
            Ok(check) => {
                let passed = format!(
                    "{} v{} in Staging, served by {served_by}: {} golden records reproduced over HTTP, probabilities in [0, 1], schema matches, infer round trip p99 {:.3} ms",
                    run.model, run.model_version, check.golden, check.latency_p99_ms
                );
                (integration_failures(&check, limit), passed)
            }
            Err(unscored) => (vec![unscored], String::new()),
        };
        let mut passed = passed;
        if !spec.tests.integration.is_empty() {
            let runs = self.user_tests(ctx, run, &spec, client.base()).await?;
            let failed: Vec<String> = runs
                .iter()
                .filter(|t| !t.passed())
                .map(|t| t.failure())
                .collect();
            if failed.is_empty() {
                let names: Vec<&str> = runs.iter().map(|t| t.name.as_str()).collect();
                passed += &format!("; tests passed: {}", names.join(", "));
            }
            failures.extend(failed);
        }
        if failures.is_empty() {
            Ok(StageOutcome::Passed(passed))
        } else {
            Ok(StageOutcome::Failed(failures.join("; ")))
        }
    }

    /// The spec's `tests.integration`, run against the server at `server_url`.
    async fn user_tests(
        &self,
        ctx: &StageContext,
        run: &Run,
        spec: &ModelSpec,
        server_url: &str,
    ) -> Result<Vec<tollgate_usercode::suite::TestRun>, StageError> {
        use tollgate_usercode::{CommandError, suite};
        let code =
            tollgate_service::code::unpack(ctx, run, "the spec lists tests.integration").await?;
        let target = suite::Target {
            server_url: server_url.into(),
            model: run.model.clone(),
            version: run.model_version,
            test_data: None,
        };
        let (tx, relay) = tollgate_service::code::relay(ctx);
        let runs = suite::run(
            &spec.tests.integration,
            &code.code,
            &target,
            &tx,
            ctx.stop(),
        )
        .await;
        drop(tx);
        let _ = relay.await;
        match runs {
            Ok(runs) => Ok(runs),
            Err(CommandError::Stopped { .. }) => Err(StageError::Interrupted),
            Err(e) => Err(StageError::Input(e.to_string())),
        }
    }

    /// A client of the server the integration test calls: the configured Staging server
    /// once it serves the version, or a loopback server of the promoter's own (kept alive
    /// by the third value) when none is configured; and who serves, for the messages.
    async fn staging(
        &self,
        run: &Run,
        spec: &ModelSpec,
        artifact: &Artifact,
    ) -> Result<(Client, String, Option<Loopback>), String> {
        let (model, version) = (run.model.as_str(), run.model_version);
        let url = &self.0.staging_server_url;
        let client = Client::with_bearer(url, &self.0.staging_server_token);
        // A Staging server that has no entry for this model cannot test it: one of our own.
        let elsewhere = if url.is_empty() {
            Some("set staging_server_url to test the deployed one".to_string())
        } else if let Ok(false) = client.serves(model).await {
            Some(format!(
                "the Staging server at {url} does not serve {model}"
            ))
        } else {
            None
        };
        if let Some(why) = elsewhere {
            let threshold = spec.threshold.resolve(artifact.meta.optimal_threshold);
            let served = ServedModel::new(model, version, "Staging", artifact.clone(), threshold);
            let loopback = Loopback::serve(served)
                .await
                .map_err(|e| format!("no loopback server for the integration test: {e}"))?;
            let served_by = format!("a loopback server of the promoter ({why})");
            return Ok((loopback.client.clone(), served_by, Some(loopback)));
        }
        client
            .wait_ready(model, Some(version), self.0.staging_wait)
            .await
            .map_err(|e| {
                format!("the Staging server at {url} does not serve {model} v{version}: {e}")
            })?;
        Ok((client, format!("the Staging server at {url}"), None))
    }

    /// Replays the golden records through `client` over the Open Inference Protocol and
    /// times round trips; returns the check, or why nothing could be checked.
    async fn served_check(
        &self,
        run: &Run,
        client: &Client,
        served_by: &str,
        artifact: &Artifact,
    ) -> Result<Integration, String> {
        let (model, version) = (run.model.as_str(), run.model_version);
        let golden = golden_records(artifact);
        let columns = artifact.columns();
        let probabilities = client
            .probabilities(model, Some(version), &columns, &golden)
            .await
            .map_err(|e| format!("golden records not scored by {served_by}: {e}"))?;
        let mut times = client
            .round_trips(
                model,
                Some(version),
                &columns,
                &golden,
                self.0.latency_calls,
            )
            .await
            .map_err(|e| format!("latency not measured on {served_by}: {e}"))?;
        let (_, p99) = percentiles(&mut times);
        Ok(integration_of(artifact, &probabilities, p99))
    }

    async fn request_approval(
        &self,
        run: &Run,
        ctx: &StageContext,
    ) -> Result<StageOutcome, StageError> {
        let spec = ModelSpec::parse(&run.spec_yaml)?;
        if spec.approvers.is_empty() {
            return Ok(StageOutcome::Failed(
                "the spec lists no approvers: add approvers: to tollgate.yaml".into(),
            ));
        }
        let ask = format!(
            "approval for Production requested from {}: tollgate approve {} {} --reason ...",
            spec.approvers.join(", "),
            run.model,
            run.model_version
        );
        let rule = subjects::Alert::Approval;
        let alert = tollgate_proto::Alert {
            rule: rule.name().into(),
            model: run.model.clone(),
            state: tollgate_proto::AlertState::Firing as i32,
            summary: ask.clone(),
            run_ids: vec![run.run_id.clone()],
            at_unix_ms: tollgate_bus::now_ms(),
            ..Default::default()
        };
        if let Err(e) = ctx.bus().publish(subjects::alert(rule), &alert, None).await {
            tracing::warn!(error = %e, "approval alert not published");
        }
        Ok(StageOutcome::Passed(ask))
    }
}

#[cfg(test)]
mod tests;
