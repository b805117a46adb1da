//! What a stage needs to run the user's code: the run's code snapshot from the code store,
//! unpacked into a temp dir that goes away with the stage, and a relay that turns the
//! lines of the user's commands into run progress.

use std::path::PathBuf;
use tollgate_pipeline::{StageContext, StageError, Stores, code::CodeObject};

use tollgate_proto::Run;
use tollgate_usercode::snapshot;

/// A run's code, unpacked: `code` is the copy of the spec's folder; `root` holds it and
/// the stage's other files, and is removed on drop.
#[derive(Debug)]
pub struct CodeDir {
    /// The temp dir, removed on drop.
    root: tempfile::TempDir,
    /// The copy of the spec's folder.
    pub code: PathBuf,
}

impl CodeDir {
    /// The temp dir beside the code, for the stage's own files.
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }
}

/// A code store failure as a stage error: NATS may pass, a missing or tampered object
/// will not.
pub fn code_error(e: tollgate_pipeline::code::CodeError) -> StageError {
    match e {
        tollgate_pipeline::code::CodeError::Bus(e) => StageError::Bus(e),
        other => StageError::Input(other.to_string()),
    }
}

/// Unpacks the run's code snapshot into a new temp dir named after `stage`; `needs` says
/// what in the spec wants it, for the error when the run carries none.
pub async fn unpack(ctx: &StageContext, run: &Run, needs: &str) -> Result<CodeDir, StageError> {
    if run.code_digest.is_empty() {
        return Err(StageError::Input(format!(
            "{needs}, but the run carries no snapshot of the spec's folder to run it in: publish with `tollgate publish --spec` or `tollgate apply`, which pack the folder"
        )));
    }
    let bytes = ctx
        .bus()
        .code()
        .get(
            CodeObject::Snapshot,
            &run.code_digest,
            snapshot::MAX_BYTES as usize,
        )
        .await
        .map_err(code_error)?;
    let root = tempfile::Builder::new()
        .prefix("tollgate-code-")
        .tempdir()
        .map_err(|e| StageError::Transient(format!("no temp dir for the user's code: {e}")))?;
    let code = root.path().join("code");
    let files = snapshot::unpack(&bytes, &run.code_digest, &code)
        .map_err(|e| StageError::Input(e.to_string()))?;
    ctx.progress(format!(
        "unpacked code snapshot {} ({files} files)",
        short(&run.code_digest)
    ))
    .await;
    Ok(CodeDir { root, code })
}

/// The first 12 characters of a digest.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// A sender whose lines become the run's progress, and the task relaying them; drop the
/// sender (and every clone) and await the task to flush them.
pub fn relay(
    ctx: &StageContext,
) -> (
    tokio::sync::mpsc::UnboundedSender<String>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let ctx = ctx.clone();
    let task = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            ctx.progress(line).await;
        }
    });
    (tx, task)
}
