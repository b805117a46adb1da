//! Dataset URIs: `file:///abs/path` (or a bare path) and `objstore://<name>` for datasets
//! pushed into the JetStream object store. Stages turn a URI into a local file here.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use crate::{Bus, BusError};

/// Scheme of datasets pushed into the object store.
pub const OBJSTORE_SCHEME: &str = "objstore://";

/// Why a dataset could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A local dataset file does not exist.
    #[error("dataset file {0} does not exist")]
    Missing(String),
    /// A pushed dataset is not in the object store.
    #[error("dataset {0:?} is not in the object store (push it with `tollgate data push`)")]
    NotPushed(String),
    /// The object store failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Writing the local copy failed.
    #[error("cannot write local copy of dataset: {0}")]
    Io(#[from] std::io::Error),
}

/// A bare path or `file://` URI as a path; `None` for other schemes.
pub fn local_path(uri: &str) -> Option<PathBuf> {
    if uri.starts_with(OBJSTORE_SCHEME) {
        return None;
    }
    Some(PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri)))
}

/// The canonical URI of a local file (absolute `file://`).
pub fn file_uri(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", abs.display())
}

impl Bus {
    /// Makes the dataset at `uri` available as a local file, downloading pushed datasets
    /// into `cache_dir` once per content digest.
    pub async fn materialize_dataset(
        &self,
        uri: &str,
        cache_dir: &Path,
    ) -> Result<PathBuf, DatasetError> {
        if let Some(path) = local_path(uri) {
            if !path.exists() {
                return Err(DatasetError::Missing(path.display().to_string()));
            }
            return Ok(path);
        }
        let name = uri.trim_start_matches(OBJSTORE_SCHEME);
        let info = self
            .datasets
            .info(name)
            .await
            .map_err(|_| DatasetError::NotPushed(name.into()))?;
        let digest: String = info
            .digest
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(24)
            .collect();
        let file_name = Path::new(name)
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_else(|| "dataset".into());
        let local = cache_dir.join(format!("{digest}-{file_name}"));
        if local.exists() {
            return Ok(local);
        }
        tokio::fs::create_dir_all(cache_dir).await?;
        let mut object = self
            .datasets
            .get(name)
            .await
            .map_err(|_| DatasetError::NotPushed(name.into()))?;
        let mut bytes = Vec::with_capacity(info.size);
        object.read_to_end(&mut bytes).await?;
        let tmp = cache_dir.join(format!(".{digest}-{file_name}.{}", ulid::Ulid::new()));
        tokio::fs::write(&tmp, &bytes).await?;
        tokio::fs::rename(&tmp, &local).await?;
        Ok(local)
    }

    /// Pushes a local file into the dataset object store under `name`; returns its URI.
    pub async fn push_dataset(&self, path: &Path, name: &str) -> Result<String, DatasetError> {
        if !path.exists() {
            return Err(DatasetError::Missing(path.display().to_string()));
        }
        let mut file = tokio::fs::File::open(path).await?;
        self.datasets
            .put(name, &mut file)
            .await
            .map_err(|e| BusError::Store {
                op: format!("pushing dataset {name}"),
                reason: e.to_string(),
            })?;
        Ok(format!("{OBJSTORE_SCHEME}{name}"))
    }
}
