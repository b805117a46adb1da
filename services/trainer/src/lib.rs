//! The trainer trains a run's model and registers the version.
//!
//! Consumes `tollgate.stage.train`. Fits the spec's feature pipeline and its algorithm (or
//! the best of its candidates, chosen on a validation fold) on the seeded training split,
//! measures held-out AUC-ROC and F1, puts the
//! artifact into the `tollgate_artifacts` object store and registers the version over
//! gRPC. Registration is keyed by run id, so a redelivered message never makes a second
//! version. Publishes the run to its next stage (usually `gate`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tollgate_bus::{
    StageContext, StageDone, StageError, StageHandler, StageOutcome, defaults, service, worker,
};
use tollgate_proto::{RegisterVersionRequest, Run};

/// Errors that stop the trainer.
pub type Error = service::ServiceError;

/// Trainer configuration (file, then `TOLLGATE_*` environment variables).
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats_url: defaults::NATS_URL.into(),
            health_addr: defaults::HEALTH_ADDR.into(),
            registry_url: defaults::REGISTRY_URL.into(),
            cache_dir: defaults::cache_dir(),
        }
    }
}

/// Runs the trainer until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = service::token_from(shutdown);
    let registry = defaults::registry_client(&config.registry_url)?;
    let handler = Trainer {
        cache_dir: config.cache_dir.clone(),
        registry,
    };
    worker::serve_stage(
        &config.nats_url,
        &config.health_addr,
        "trainer",
        &["train"],
        handler,
        token,
    )
    .await
}

struct Trainer {
    cache_dir: PathBuf,
    registry: tollgate_proto::RegistryClient<tonic::transport::Channel>,
}

impl StageHandler for Trainer {
    async fn handle(&self, mut run: Run, ctx: StageContext) -> Result<StageDone, StageError> {
        let spec = worker::run_spec(&run)?;
        let path = worker::run_dataset(ctx.bus(), &run, &self.cache_dir).await?;
        let algorithms: Vec<String> = spec.algorithms().iter().map(|a| a.describe()).collect();
        ctx.progress(match &spec.candidates {
            Some(c) => format!(
                "choosing by validation {} among {} on {}",
                c.metric,
                algorithms.join(", "),
                path.display()
            ),
            None => format!("training {} on {}", algorithms.join(", "), path.display()),
        })
        .await;
        let (spec_text, commit) = (run.spec_yaml.clone(), run.code_commit.clone());
        let model_spec = spec.clone();
        // Training blocks a thread; its progress lines come back over a channel and go out
        // as run progress while it works.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let training = tokio::task::spawn_blocking(move || {
            let report = |line: &str| {
                let _ = tx.send(line.to_string());
            };
            tollgate_ml::model::train_with_progress(
                &model_spec,
                &spec_text,
                &path,
                &commit,
                &report,
            )
        });
        while let Some(line) = rx.recv().await {
            ctx.progress(line).await;
        }
        let trained = training
            .await
            .map_err(|e| StageError::Transient(format!("training task failed: {e}")))?
            .map_err(|e| StageError::Input(e.to_string()))?;
        ctx.progress(format!(
            "trained on {} rows in {:.2}s; uploading artifact",
            trained.train_rows, trained.seconds
        ))
        .await;
        let bytes = trained
            .artifact
            .encode()
            .map_err(|e| StageError::Input(e.to_string()))?;
        let digest = tollgate_ml::artifact::digest(&bytes);
        let name = format!("{}/{}.tgm", spec.model, run.run_id);
        ctx.bus()
            .artifacts
            .put(name.as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| StageError::Transient(format!("storing artifact: {e}")))?;
        let version = self
            .registry
            .clone()
            .register_version(RegisterVersionRequest {
                model: spec.model.clone(),
                run_id: run.run_id.clone(),
                artifact_name: name,
                artifact_digest: digest,
                artifact_size: bytes.len() as u64,
                metrics: trained.metrics.clone().into_iter().collect(),
                code_commit: run.code_commit.clone(),
                dataset_uri: run.dataset_uri.clone(),
                spec_digest: trained.artifact.meta.spec_digest.clone(),
                reference_profile_json: serde_json::to_string(&trained.profile)
                    .map_err(|e| StageError::Input(format!("profile: {e}")))?,
                algorithm: trained.artifact.meta.algorithm.clone(),
                training_seconds: trained.seconds,
            })
            .await
            .map_err(worker::grpc_error)?
            .into_inner();
        run.model_version = version.version;
        let fmt = |k: &str| {
            trained
                .metrics
                .get(k)
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "n/a".into())
        };
        let mut message = format!(
            "registered {} v{} ({}): held-out auc_roc {}, f1 {} ({} train / {} test rows, {:.2}s)",
            spec.model,
            version.version,
            trained.artifact.meta.algorithm,
            fmt("auc_roc"),
            fmt("f1"),
            trained.train_rows,
            trained.test_rows,
            trained.seconds
        );
        if let Some(selection) = &trained.artifact.meta.selection {
            let scores: Vec<String> = selection
                .scores
                .iter()
                .map(|(algorithm, value)| format!("{algorithm} {value:.4}"))
                .collect();
            message += &format!(
                "; chosen by validation {}: {}",
                selection.metric,
                scores.join(", ")
            );
        }
        for (column, n) in &trained.coerced {
            message +=
                &format!("; {n} text values of {column} were not numbers and count as missing");
        }
        Ok(StageDone {
            run,
            outcome: StageOutcome::Passed(message),
        })
    }
}
