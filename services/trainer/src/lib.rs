//! The trainer trains a run's model and registers the version.
//!
//! Consumes `tollgate.stage.train`. Fits the spec's feature pipeline and its algorithm (or
//! the best of its candidates, chosen on a validation fold) on the seeded training split;
//! or runs the spec's training command on the training rows in a copy of the spec's
//! folder (the run's code snapshot from `tollgate_code`) and imports the ONNX model it
//! writes; or, when the trigger uploaded a model trained elsewhere, imports that. Either
//! way it measures held-out AUC-ROC and F1, puts the artifact into the
//! `tollgate_artifacts` object store and registers the version over gRPC. Registration is
//! keyed by run id, so a redelivered message never makes a second version. Publishes the
//! run to its next stage (usually `gate`).

pub mod command;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};
use tollgate_pipeline::{
    StageContext, StageDone, StageError, StageHandler, StageOutcome, Stores, artifacts,
    code::CodeObject,
};

use tollgate_ml::{
    artifact::{Lineage, Origin},
    learners::Progress,
    onnx::MAX_MODEL_BYTES,
    train::{Trained, from_onnx, train_with_progress},
};
use tollgate_proto::{RegisterVersionRequest, Run, Stage};
use tollgate_service::{ServiceError, StageConfig, StageDeps};
use tollgate_spec::ModelSpec;

/// Errors that stop the trainer.
pub type Error = ServiceError;

/// Trainer configuration (file, then `TOLLGATE_*` environment variables): the
/// stage services' shared shape.
pub type Config = StageConfig;

/// Runs the trainer until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    config
        .serve("trainer", &[Stage::Train], Trainer, shutdown)
        .await
}

/// The stage handler, made from what the stage config provides.
struct Trainer(StageDeps);

impl StageHandler for Trainer {
    async fn handle(&self, mut run: Run, ctx: StageContext) -> Result<StageDone, StageError> {
        let spec = ModelSpec::parse(&run.spec_yaml)?;
        let path = ctx.dataset(&run, &self.0.data).await?;
        let mut trained = if !run.model_upload.is_empty() {
            uploaded(&ctx, &spec, &run, path).await?
        } else if let Some(command) = spec.train_command() {
            with_command(&ctx, &spec, command, &run, &path).await?
        } else {
            let algorithms: Vec<String> = spec.algorithms().iter().map(|a| a.describe()).collect();
            ctx.progress(match (&spec.candidates, spec.split.folds) {
                (Some(c), Some(k)) => format!(
                    "choosing by mean {} over {k} cross-validation folds among {} on {}",
                    c.metric,
                    algorithms.join(", "),
                    path.display()
                ),
                (Some(c), None) => format!(
                    "choosing by validation {} among {} on {}",
                    c.metric,
                    algorithms.join(", "),
                    path.display()
                ),
                (None, _) => format!("training {} on {}", algorithms.join(", "), path.display()),
            })
            .await;
            train_interruptibly(&ctx, &spec, &run, path).await?
        };
        // The code the run carried (its tests, for a built-in model) is lineage too.
        if trained.artifact.lineage.code_digest.is_empty() {
            trained.artifact.lineage.code_digest = run.code_digest.clone();
        }
        ctx.progress(format!(
            "trained on {} rows in {:.2}s; uploading artifact",
            trained.train_rows, trained.seconds
        ))
        .await;
        let bytes = trained.artifact.encode().map_err(StageError::invalid)?;
        let digest = tollgate_ml::artifact::digest(&bytes);
        let name = artifacts::name(&spec.model, ctx.run_id(), &digest);
        ctx.bus().artifacts().put(&name, &bytes).await?;
        let version = self
            .0
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
                origin: trained.artifact.lineage.origin.name().into(),
                model_format: trained.artifact.format().into(),
                code_digest: trained.artifact.lineage.code_digest.clone(),
            })
            .await?
            .into_inner();
        run.model_version = version.version;
        tollgate_pipeline::stage::record("version", version.version);
        tollgate_pipeline::stage::record("rows", trained.train_rows as u64);
        if let Some(auc) = trained.metrics.get("auc_roc") {
            tollgate_pipeline::stage::record("auc_roc", *auc);
        }
        tollgate_telemetry::metrics::get().trained(
            &spec.model,
            &trained.artifact.meta.algorithm,
            version.version,
            trained.seconds,
            &trained.metrics,
        );
        let message = registered_message(&spec.model, version.version, &trained);
        Ok(StageDone {
            run,
            outcome: StageOutcome::Passed(message),
        })
    }
}

/// The model the trigger uploaded, from the code store, imported and graded on the
/// held-out rows instead of training.
async fn uploaded(
    ctx: &StageContext,
    spec: &ModelSpec,
    run: &Run,
    path: PathBuf,
) -> Result<Trained, StageError> {
    let digest = run.model_upload.clone();
    let bytes = ctx
        .bus()
        .code()
        .get(CodeObject::Model, &digest, MAX_MODEL_BYTES)
        .await
        .map_err(tollgate_service::code::code_error)?;
    ctx.progress(format!(
        "registering the uploaded model {} ({:.1} KiB) instead of training; grading it on the held-out rows of {}",
        &digest[..12.min(digest.len())],
        bytes.len() as f64 / 1024.0,
        path.display()
    ))
    .await;
    let lineage = Lineage {
        origin: Origin::Uploaded,
        code_digest: run.code_digest.clone(),
        model_digest: digest,
    };
    let (spec, text, commit) = (spec.clone(), run.spec_yaml.clone(), run.code_commit.clone());
    tokio::task::spawn_blocking(move || from_onnx(&spec, &text, &path, &commit, bytes, lineage))
        .await
        .map_err(|source| StageError::Task {
            what: "importing the uploaded model",
            source,
        })?
        .map_err(StageError::invalid)
}

/// Runs the spec's training command in a copy of the run's code snapshot; its lines go
/// out as run progress. On shutdown or cancellation the command's process group is
/// stopped and the stage is interrupted.
async fn with_command(
    ctx: &StageContext,
    spec: &ModelSpec,
    train: &tollgate_spec::TrainCommand,
    run: &Run,
    path: &std::path::Path,
) -> Result<Trained, StageError> {
    let code =
        tollgate_service::code::unpack(ctx, run, &format!("the spec trains with `{}`", train.run))
            .await?;
    let workspace = command::Workspace::under(code.root());
    let job = command::Job {
        spec,
        spec_text: &run.spec_yaml,
        command: train,
        data: path,
        run_id: &run.run_id,
        commit: &run.code_commit,
        code_digest: &run.code_digest,
    };
    let (tx, relay) = tollgate_service::code::relay(ctx);
    let trained = command::train(&job, &workspace, tx, ctx.stop()).await;
    let _ = relay.await;
    use command::CommandTrainError as E;
    match trained {
        Ok(t) => Ok(t),
        Err(E::Command(tollgate_usercode::CommandError::Stopped { .. })) => {
            Err(StageError::Interrupted)
        }
        Err(e @ (E::Io(_) | E::Task(_))) => Err(StageError::Transient(e.to_string())),
        Err(e) => Err(StageError::Input(e.to_string())),
    }
}

/// Trains on a blocking thread, its progress lines sent on as run progress while it works.
/// On shutdown, or when the run is cancelled, the stop flag is set and training ends at its
/// next checkpoint (candidate, fold, forest tree) with [`StageError::Interrupted`]: the
/// run goes back to the queue, or ends `cancelled`, and nothing is registered half-way.
async fn train_interruptibly(
    ctx: &StageContext,
    spec: &ModelSpec,
    run: &Run,
    path: PathBuf,
) -> Result<Trained, StageError> {
    let (spec_text, commit) = (run.spec_yaml.clone(), run.code_commit.clone());
    let model_spec = spec.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, signal) = (stop.clone(), ctx.stop().clone());
        tokio::spawn(async move {
            signal.cancelled().await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let stop_flag = stop.clone();
    let training = tokio::task::spawn_blocking(move || {
        let report = |line: &str| {
            let _ = tx.send(line.to_string());
        };
        let progress = Progress::stoppable(&report, &stop_flag);
        train_with_progress(&model_spec, &spec_text, &path, &commit, &progress)
    });
    while let Some(line) = rx.recv().await {
        ctx.progress(line).await;
    }
    watcher.abort();
    let trained = match training.await.map_err(|source| StageError::Task {
        what: "training",
        source,
    })? {
        Ok(trained) => trained,
        Err(e) if e.is_interrupted() => return Err(StageError::Interrupted),
        Err(e) => return Err(StageError::invalid(e)),
    };
    if stop.load(Ordering::Relaxed) {
        // The stop came after training: another replica trains again from the start, or
        // the run is cancelled; either way nothing is registered.
        return Err(StageError::Interrupted);
    }
    Ok(trained)
}

/// What the train stage reports: the version, its held-out metrics, how it was chosen and
/// how many no-value texts (NA, n/a, blank) counted as missing.
fn registered_message(model: &str, version: u32, trained: &Trained) -> String {
    let fmt = |k: &str| {
        trained
            .metrics
            .get(k)
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "n/a".into())
    };
    let mut message = format!(
        "registered {} v{} ({}): held-out auc_roc {}, f1 {} ({} train / {} test rows, {:.2}s)",
        model,
        version,
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
            &format!("; {n} values of {column} were NA, n/a, null or blank and count as missing");
    }
    message
}
