//! The data-validator runs the model spec's expectation suite over a run's dataset and
//! measures drift against the data the Production version was trained on.
//!
//! Consumes `tollgate.stage.validate`. Reads Parquet or CSV with polars (the whole suite
//! in one pass), stores the report (per expectation: observed value, element, missing and
//! unexpected counts) in the run, and publishes the run to its next stage, or ends it
//! `failed` naming each failing expectation and its counts. When a Production version
//! exists, the dataset's profile is compared with that version's reference profile; the
//! scores are recorded either way, and a drifted dataset publishes
//! `tollgate.trigger.drift` (never from a run that drift itself started).

use std::path::PathBuf;

use tollgate_bus::subjects;
use tollgate_pipeline::{StageContext, StageDone, StageError, StageHandler, StageOutcome};
use tollgate_proto::{
    ColumnDrift, LatestByStageRequest, ModelStage, Run, Stage, Trigger, TriggerKind,
    ValidationReport,
};
use tollgate_service::{ServiceError, StageConfig, StageDeps};
use tollgate_spec::ModelSpec;

/// Errors that stop the data-validator.
pub type Error = ServiceError;

/// Data-validator configuration (file, then `TOLLGATE_*` environment variables): the
/// stage services' shared shape.
pub type Config = StageConfig;

/// Runs the data-validator until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    config
        .serve("data-validator", &[Stage::Validate], Validator, shutdown)
        .await
}

/// The stage handler, made from what the stage config provides.
struct Validator(StageDeps);

impl StageHandler for Validator {
    async fn handle(&self, mut run: Run, ctx: StageContext) -> Result<StageDone, StageError> {
        let spec = ModelSpec::parse(&run.spec_yaml)?;
        let path = ctx.dataset(&run, &self.0.data).await?;
        ctx.progress(format!(
            "validating {} expectations on {}",
            spec.expectations.len(),
            path.display()
        ))
        .await;
        let (suite, data) = (spec.expectations.clone(), path.clone());
        let mut report =
            tokio::task::spawn_blocking(move || tollgate_ml::validate::validate(&data, &suite))
                .await
                .map_err(|source| StageError::Task {
                    what: "validation",
                    source,
                })?
                .map_err(StageError::invalid)?;
        let mut outcome = outcome_of(&report);
        let failed = report.results.iter().filter(|r| !r.success).count() as u64;
        tollgate_pipeline::stage::record("rows", report.row_count);
        tollgate_pipeline::stage::record("expectations_failed", failed);
        tollgate_telemetry::metrics::get().validated(&run.model, failed);
        if report.success {
            self.measure_drift(&run, &spec, path, &mut report, &ctx)
                .await?;
            if let StageOutcome::Passed(m) = &mut outcome {
                *m = format!("{m}; {}", report.drift_note);
            }
        } else {
            keep_failing_rows(&run, &spec, path, &mut report, &ctx).await;
        }
        run.validation = Some(report);
        Ok(StageDone { run, outcome })
    }
}

impl Validator {
    async fn measure_drift(
        &self,
        run: &Run,
        spec: &ModelSpec,
        path: PathBuf,
        report: &mut ValidationReport,
        ctx: &StageContext,
    ) -> Result<(), StageError> {
        let request = LatestByStageRequest {
            model: run.model.clone(),
            stage: ModelStage::Production as i32,
        };
        let production = match self.0.registry.clone().latest_by_stage(request).await {
            Ok(v) => v.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => {
                report.drift_note = "drift not measured: no Production version yet".into();
                return Ok(());
            }
            Err(s) => return Err(s.into()),
        };
        let Ok(reference) = serde_json::from_str::<tollgate_ml::profile::Profile>(
            &production.reference_profile_json,
        ) else {
            report.drift_note = format!(
                "drift not measured: Production v{} has no reference profile",
                production.version
            );
            return Ok(());
        };
        let (profile_spec, settings) = (spec.clone(), spec.drift);
        let scores = tokio::task::spawn_blocking(move || {
            tollgate_ml::profile::of_file(&path, &profile_spec)
                .map(|p| tollgate_ml::drift::drift(&reference, &p, &settings))
        })
        .await
        .map_err(|source| StageError::Task {
            what: "drift",
            source,
        })?
        .map_err(StageError::invalid)?;
        report.drifted = scores.drifted;
        report.drift = scores
            .columns
            .iter()
            .map(|c| ColumnDrift {
                column: c.column.clone(),
                wasserstein: c.wasserstein,
                ks: c.ks,
                jensen_shannon: c.jensen_shannon,
                psi: c.psi,
                drifted: c.drifted,
            })
            .collect();
        let drifted: Vec<&str> = scores
            .columns
            .iter()
            .filter(|c| c.drifted)
            .map(|c| c.column.as_str())
            .collect();
        let summary = format!(
            "{} of {} columns drifted from Production v{}{}",
            drifted.len(),
            scores.columns.len(),
            production.version,
            if drifted.is_empty() {
                String::new()
            } else {
                format!(" ({})", drifted.join(", "))
            }
        );
        report.drift_note = if !scores.drifted {
            format!("no drift: {summary}")
        } else if run.trigger() == TriggerKind::Drift {
            format!("drift: {summary}; this run was started by drift, so no new trigger")
        } else if spec.plan(TriggerKind::Drift).is_none() {
            format!(
                "drift detected: {summary}; the spec has no drift plan, so nothing was retrained (add triggers.drift to tollgate.yaml)"
            )
        } else {
            let trigger = Trigger {
                trigger_id: subjects::trigger_ids::drift(ctx.run_id()),
                kind: TriggerKind::Drift as i32,
                model: run.model.clone(),
                dataset_uri: run.dataset_uri.clone(),
                code_commit: run.code_commit.clone(),
                reason: format!("drift: {summary}"),
                requested_by: "data-validator".into(),
                created_unix_ms: tollgate_bus::now_ms(),
                ..Default::default()
            };
            let id = trigger.trigger_id.clone();
            ctx.bus()
                .publish(subjects::trigger(TriggerKind::Drift), &trigger, Some(&id))
                .await?;
            format!(
                "drift: {summary}; published {}",
                subjects::trigger(TriggerKind::Drift)
            )
        };
        Ok(())
    }
}

/// Keeps every failing row of a failed validation beside the run (`tollgate runs
/// failures`), and their count in the report. The verdict stands without them: a failure
/// to keep them is logged.
async fn keep_failing_rows(
    run: &Run,
    spec: &ModelSpec,
    path: std::path::PathBuf,
    report: &mut ValidationReport,
    ctx: &StageContext,
) {
    use tollgate_pipeline::Stores;
    let Ok(id) = run.id() else {
        return;
    };
    let file = std::env::temp_dir().join(format!("tollgate-failures-{id}.parquet"));
    let (suite, ids, judged, out) = (
        spec.expectations.clone(),
        spec.features.id_columns.clone(),
        report.clone(),
        file.clone(),
    );
    let written = tokio::task::spawn_blocking(move || {
        let mut rows = tollgate_ml::validate::failing_rows(&path, &suite, &judged, &ids)
            .map_err(|e| e.to_string())?;
        tollgate_ml::data::write(&mut rows, &out).map_err(|e| e.to_string())?;
        let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
        Ok::<_, String>((rows.height() as u64, bytes))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let _ = std::fs::remove_file(&file);
    let (count, bytes) = match written {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!(run_id = %id, error = %e, "failing rows not collected");
            return;
        }
    };
    match ctx.bus().failures().put(&id, &bytes).await {
        Ok(name) => {
            report.failing_rows = count;
            report.failures_object = name;
        }
        Err(e) => tracing::warn!(run_id = %id, error = %e, "failing rows not kept"),
    }
}

/// The stage outcome a report leads to, naming each failing expectation.
pub fn outcome_of(report: &ValidationReport) -> StageOutcome {
    let failed: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.success)
        .map(|r| {
            let target = if r.column.is_empty() {
                String::new()
            } else {
                format!("({})", r.column)
            };
            if !r.error.is_empty() {
                format!("{}{target}: {}", r.expectation_type, r.error)
            } else if r.unexpected_count > 0 {
                format!(
                    "{}{target}: {} unexpected of {} ({:.2}%)",
                    r.expectation_type, r.unexpected_count, r.element_count, r.unexpected_percent
                )
            } else {
                format!(
                    "{}{target}: observed {}",
                    r.expectation_type, r.observed_value
                )
            }
        })
        .collect();
    if failed.is_empty() {
        StageOutcome::Passed(format!(
            "{} expectations met on {} rows",
            report.results.len(),
            report.row_count
        ))
    } else {
        StageOutcome::Failed(format!(
            "{} of {} expectations failed: {}",
            failed.len(),
            report.results.len(),
            failed.join("; ")
        ))
    }
}
