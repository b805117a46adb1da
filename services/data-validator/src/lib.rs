//! The data-validator runs the model spec's expectation suite over a run's dataset.
//!
//! Consumes `tollgate.stage.validate`. Reads Parquet or CSV with polars (the whole suite
//! in one pass), stores the report (per expectation: observed value, element, missing and
//! unexpected counts) in the run, and publishes the run to its next stage, or ends it
//! `failed` naming each failing expectation and its counts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tollgate_bus::{
    StageContext, StageDone, StageError, StageHandler, StageOutcome, defaults, service, worker,
};
use tollgate_proto::{Run, ValidationReport};

/// Errors that stop the data-validator.
pub type Error = service::ServiceError;

/// Data-validator configuration (file, then `TOLLGATE_*` environment variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// NATS server URL.
    pub nats_url: String,
    /// Address of the health endpoint (`/healthz`).
    pub health_addr: String,
    /// Where pushed datasets are downloaded to.
    pub cache_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats_url: defaults::NATS_URL.into(),
            health_addr: defaults::HEALTH_ADDR.into(),
            cache_dir: defaults::cache_dir(),
        }
    }
}

/// Runs the data-validator until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = service::token_from(shutdown);
    let handler = Validator {
        cache_dir: config.cache_dir.clone(),
    };
    worker::serve_stage(
        &config.nats_url,
        &config.health_addr,
        "data-validator",
        &["validate"],
        handler,
        token,
    )
    .await
}

struct Validator {
    cache_dir: PathBuf,
}

impl StageHandler for Validator {
    async fn handle(&self, mut run: Run, ctx: StageContext) -> Result<StageDone, StageError> {
        let spec = worker::run_spec(&run)?;
        let path = worker::run_dataset(ctx.bus(), &run, &self.cache_dir).await?;
        ctx.progress(format!(
            "validating {} expectations on {}",
            spec.expectations.len(),
            path.display()
        ))
        .await;
        let report = tokio::task::spawn_blocking(move || {
            tollgate_ml::validate::validate(&path, &spec.expectations)
        })
        .await
        .map_err(|e| StageError::Transient(format!("validation task failed: {e}")))?
        .map_err(|e| StageError::Input(e.to_string()))?;
        let outcome = outcome_of(&report);
        run.validation = Some(report);
        Ok(StageDone { run, outcome })
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
