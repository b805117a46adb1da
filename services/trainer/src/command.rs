//! Training with the user's own command (`algorithm: {kind: command, run: ...}`): the
//! training rows of the seeded split go to a Parquet file (the test rows stay here, so the
//! gate's figures are honest), the command runs in a copy of the spec's folder with the
//! documented `TOLLGATE_*` variables, its lines stream as progress, and the ONNX model it
//! writes is imported and graded on the held-out rows like a built-in one. The trainer and
//! `tollgate train` both train this way.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tollgate_ml::{
    ModelError,
    artifact::{Lineage, Origin},
    train::{Prepared, Trained, from_onnx_prepared, prepare},
};
use tollgate_spec::{ModelSpec, TrainCommand};
use tollgate_usercode::{CommandError, Invocation, command, vars};

/// Why training with a command did not give a model.
#[derive(Debug, thiserror::Error)]
pub enum CommandTrainError {
    /// The command exited with a failure.
    #[error("the training command `{line}` failed with {status}{}", last(.tail))]
    Failed {
        /// The command line.
        line: String,
        /// `exit status 1`, `killed by signal 9`.
        status: String,
        /// Its last lines of stderr (else stdout).
        tail: String,
    },
    /// It exited 0 without writing the model.
    #[error("the training command `{line}` exited 0 but wrote no model to ${} ({path}){}", vars::MODEL_OUT, last(.tail))]
    NoModel {
        /// The command line.
        line: String,
        /// Where the model was expected.
        path: String,
        /// Its last lines.
        tail: String,
    },
    /// It could not run, or ran past its timeout.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Reading the data, writing the training rows, or the model, failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The work folder could not be written.
    #[error("cannot prepare the training command's files: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task failed.
    #[error("training task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn last(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last lines: {tail}")
    }
}

/// Where a training command's files live: `code/` (the copy of the spec's folder it runs
/// in) and the Parquet, spec and model files beside it, outside the user's folder.
#[derive(Debug)]
pub struct Workspace {
    /// The copy of the spec's folder; the command's working directory.
    pub code: PathBuf,
    /// The training rows.
    pub train_data: PathBuf,
    /// Where the command writes its model.
    pub model_out: PathBuf,
    /// The copy of the spec.
    pub spec: PathBuf,
}

impl Workspace {
    /// The files of a workspace under `root`; `code/` is for the caller to fill.
    pub fn under(root: &Path) -> Workspace {
        Workspace {
            code: root.join("code"),
            train_data: root.join("train.parquet"),
            model_out: root.join("model.onnx"),
            spec: root.join(tollgate_bus::subjects::SPEC_FILE),
        }
    }
}

/// The run a command trains for, as its variables name it.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// The spec, parsed.
    pub spec: &'a ModelSpec,
    /// Its text.
    pub spec_text: &'a str,
    /// The training command.
    pub command: &'a TrainCommand,
    /// The dataset.
    pub data: &'a Path,
    /// The run's id (`local` for `tollgate train`).
    pub run_id: &'a str,
    /// The code commit, for the lineage.
    pub commit: &'a str,
    /// The code snapshot's digest, for the lineage.
    pub code_digest: &'a str,
}

/// Runs the job's command in `workspace` (its `code/` filled by the caller) and imports
/// the model it writes; each line it prints, and Tollgate's own, go to `progress`.
pub async fn train(
    job: &Job<'_>,
    workspace: &Workspace,
    progress: mpsc::UnboundedSender<String>,
    stop: &CancellationToken,
) -> Result<Trained, CommandTrainError> {
    let (spec, data, out) = (
        job.spec.clone(),
        job.data.to_path_buf(),
        workspace.train_data.clone(),
    );
    let prepared: Prepared = tokio::task::spawn_blocking(move || {
        let prepared = prepare(&spec, &data)?;
        tollgate_ml::data::write_rows(&data, &prepared.train_rows, &out)
            .map_err(ModelError::from)?;
        Ok::<_, ModelError>(prepared)
    })
    .await??;
    tokio::fs::write(&workspace.spec, job.spec_text).await?;
    let _ = tokio::fs::remove_file(&workspace.model_out).await;
    let path = |p: &Path| p.display().to_string();
    let invocation = Invocation {
        line: job.command.run.clone(),
        dir: workspace.code.clone(),
        env: vec![
            (vars::TRAIN_DATA.into(), path(&workspace.train_data)),
            (vars::MODEL_OUT.into(), path(&workspace.model_out)),
            (vars::SPEC.into(), path(&workspace.spec)),
            (vars::RUN_ID.into(), job.run_id.into()),
            (vars::MODEL.into(), job.spec.model.clone()),
            (vars::SEED.into(), job.spec.split.seed.to_string()),
            (vars::TARGET.into(), job.spec.target.clone()),
        ],
        timeout: job.command.timeout(),
    };
    let _ = progress.send(format!(
        "running `{}` on the {} training rows ({} test rows withheld), timeout {} min",
        invocation.line,
        prepared.train_rows.len(),
        prepared.test_rows.len(),
        job.command.timeout_minutes
    ));
    let finished = command::run_to_progress(&invocation, &progress, stop).await?;
    let tail = finished.last_lines(8);
    if !finished.success() {
        return Err(CommandTrainError::Failed {
            line: invocation.line,
            status: finished.status(),
            tail,
        });
    }
    let bytes = match tokio::fs::read(&workspace.model_out).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CommandTrainError::NoModel {
                line: invocation.line,
                path: path(&workspace.model_out),
                tail,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let _ = progress.send(format!(
        "the command wrote a {:.1} KiB model in {:.1}s; grading it on the held-out rows",
        bytes.len() as f64 / 1024.0,
        finished.elapsed.as_secs_f64()
    ));
    let lineage = Lineage {
        origin: Origin::Command,
        code_digest: job.code_digest.into(),
        model_digest: tollgate_spec::sha256_hex(&bytes),
    };
    let (spec, text, data, commit) = (
        job.spec.clone(),
        job.spec_text.to_string(),
        job.data.to_path_buf(),
        job.commit.to_string(),
    );
    let trained = tokio::task::spawn_blocking(move || {
        from_onnx_prepared(&spec, &text, &data, &commit, prepared, bytes, lineage)
    })
    .await??;
    Ok(trained)
}
