//! What `tollgate publish` and `tollgate apply` send beside the spec: the snapshot of the
//! spec's folder, when the spec trains with a command or lists tests, and a model trained
//! elsewhere (`publish --model FILE.onnx`). Both go into the code store by digest.

use std::path::Path;
use tollgate_pipeline::{Stores, code::CodeObject};

use tollgate_bus::Bus;
use tollgate_spec::ModelSpec;
use tollgate_usercode::snapshot;

use crate::CliError;

/// Packs the folder of the spec at `spec_path` and stores it, when the spec needs its
/// code; returns the snapshot's digest.
pub async fn code(
    bus: &Bus,
    spec: &ModelSpec,
    spec_path: &Path,
) -> Result<Option<String>, CliError> {
    if !spec.needs_code() {
        return Ok(None);
    }
    let dir = folder_of(spec_path);
    let packed = snapshot::pack(&dir).map_err(|e| CliError::Usage(e.to_string()))?;
    let digest = bus.code().put(CodeObject::Snapshot, &packed.bytes).await?;
    say!(
        "packed {} files ({:.1} KiB) of {} as code snapshot {}",
        packed.files,
        packed.size as f64 / 1024.0,
        dir.display(),
        &digest[..12]
    );
    Ok(Some(digest))
}

/// The folder a spec file lives in (`.` for a bare file name).
pub fn folder_of(spec_path: &Path) -> std::path::PathBuf {
    match spec_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => ".".into(),
    }
}

/// Whether a `--model` value names a model file rather than a model.
pub fn is_model_file(value: &str) -> bool {
    value.to_ascii_lowercase().ends_with(".onnx") || Path::new(value).is_file()
}

/// Stores the ONNX model at `path`; returns its digest.
pub async fn model(bus: &Bus, path: &Path) -> Result<String, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("cannot read model {}: {e}", path.display())))?;
    let limit = tollgate_ml::onnx::MAX_MODEL_BYTES;
    if bytes.len() > limit {
        return Err(CliError::Usage(format!(
            "model {} is {} bytes, over the {limit}-byte limit",
            path.display(),
            bytes.len()
        )));
    }
    let digest = bus.code().put(CodeObject::Model, &bytes).await?;
    say!(
        "uploaded model {} ({:.1} KiB) as {}",
        path.display(),
        bytes.len() as f64 / 1024.0,
        &digest[..12]
    );
    Ok(digest)
}
