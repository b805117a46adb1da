//! Dataset URIs and the datasets object store, which this module owns: `file:///abs/path`
//! (or a bare path), `objstore://<name>` for datasets pushed into the store, objects in a
//! cloud bucket (`s3://`, `gs://`, `az://`, confined to `data_buckets`) and PostgreSQL
//! tables and queries (`postgres://…?table=` or `?query=`). Stages turn a run's URI into a
//! local file here, the one place a dataset is resolved.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use tollgate_bus::{Bus, BusError};
use tollgate_sources::{SourceError, cloud, postgres};

/// Scheme of datasets pushed into the object store.
pub const OBJSTORE_SCHEME: &str = "objstore://";

/// Why a dataset could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The run or trigger names no dataset.
    #[error("the run names no dataset")]
    Unnamed,
    /// A local dataset file does not exist.
    #[error("dataset file {0} does not exist")]
    Missing(String),
    /// A pushed dataset is not in the object store.
    #[error("dataset {name:?} is not in the object store (push it with `tollgate data push`)")]
    NotPushed {
        /// The object name.
        name: String,
        /// What the store said.
        source: BusError,
    },
    /// A spec's `data.source` holds no dataset yet.
    #[error("data.source {0} holds no Parquet or CSV dataset yet")]
    EmptySource(String),
    /// A spec's `data.source` glob is not one.
    #[error("data.source {source_uri}: {reason}")]
    BadSource {
        /// The source.
        source_uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Writing the local copy failed.
    #[error("cannot write local copy of dataset: {0}")]
    Io(#[from] std::io::Error),
    /// A `file://` dataset outside every configured root (after `..` and symlinks).
    #[error(
        "dataset {path} is outside the data roots ({roots}); list its directory under data_roots (TOLLGATE_DATA_ROOTS)"
    )]
    Outside {
        /// The file, as resolved.
        path: String,
        /// The roots, or "none configured".
        roots: String,
    },
    /// A dataset URI or object name with a `..` segment.
    #[error("dataset {0:?} has a '..' segment; name the file by its real path")]
    DotDot(String),
    /// A dataset larger than the configured limit, refused before it is read.
    #[error("dataset {name} is {size} bytes, over the {limit}-byte limit (max_dataset_bytes)")]
    TooLarge {
        /// The file or object.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An object-store dataset outside every bucket and prefix of `data_buckets`.
    #[error(
        "dataset {uri} is outside the data buckets ({buckets}); list its bucket or prefix under data_buckets (TOLLGATE_DATA_BUCKETS)"
    )]
    OutsideBuckets {
        /// The dataset.
        uri: String,
        /// The buckets, or "none configured".
        buckets: String,
    },
    /// A cloud bucket or a database failed, refused or has no such dataset.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An object name that is not one Tollgate stores.
    #[error(
        "object name {0:?}: use 1 to 255 printable characters, no leading '/', no '..' segment, no backslash"
    )]
    BadName(String),
}

/// Where stages may read datasets from, and how large one may be.
#[derive(Debug, Clone, PartialEq)]
pub struct DataAccess {
    /// Where pushed datasets are downloaded.
    pub cache_dir: PathBuf,
    /// The directories `file://` datasets must lie under, symlinks resolved; with none,
    /// `file://` datasets are refused (pushed ones still work).
    pub roots: Vec<PathBuf>,
    /// The buckets, or prefixes in them, `s3://`, `gs://` and `az://` datasets must lie
    /// in; with none, they are refused.
    pub buckets: Vec<String>,
    /// The largest dataset read, in bytes; larger ones are refused before reading.
    pub max_bytes: u64,
}

impl DataAccess {
    /// `roots` as a `PATH`-style list (`/data:/mnt/shared`), the way `data_roots` is set.
    pub fn parse_roots(list: &str) -> Vec<PathBuf> {
        std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect()
    }

    /// `buckets` as a comma-separated list (`s3://churn-data,gs://features/daily/`), the
    /// way `data_buckets` is set.
    pub fn parse_buckets(list: &str) -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The object `uri` names, if it lies in one of `buckets`.
    pub fn confine_object(&self, uri: &str) -> Result<Option<cloud::ObjectUri>, DatasetError> {
        let Some(parsed) = cloud::ObjectUri::parse(uri) else {
            return Ok(None);
        };
        let parsed = parsed?;
        if !parsed.allowed_by(&self.buckets) {
            return Err(DatasetError::OutsideBuckets {
                uri: uri.into(),
                buckets: if self.buckets.is_empty() {
                    "none configured".into()
                } else {
                    self.buckets.join(", ")
                },
            });
        }
        Ok(Some(parsed))
    }

    /// The file a `file://` URI (or bare path) names, if it lies under a root: `..`
    /// segments are refused outright, symlinks are followed before the check.
    pub fn confine(&self, uri: &str, path: &Path) -> Result<PathBuf, DatasetError> {
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(DatasetError::DotDot(uri.into()));
        }
        let real = std::fs::canonicalize(path)
            .map_err(|_| DatasetError::Missing(path.display().to_string()))?;
        let inside = self
            .roots
            .iter()
            .filter_map(|r| std::fs::canonicalize(r).ok())
            .any(|root| real.starts_with(root));
        if !inside {
            let roots = if self.roots.is_empty() {
                "none configured".to_string()
            } else {
                self.roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(DatasetError::Outside {
                path: real.display().to_string(),
                roots,
            });
        }
        Ok(real)
    }

    fn within_limit(&self, name: &str, size: u64) -> Result<(), DatasetError> {
        if size > self.max_bytes {
            return Err(DatasetError::TooLarge {
                name: name.into(),
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

/// Checks a name for the datasets object store.
pub fn check_object_name(name: &str) -> Result<(), DatasetError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.starts_with('/')
        || name.contains('\\')
        || name.split('/').any(|segment| segment == "..")
        || name.chars().any(char::is_control);
    if bad {
        return Err(DatasetError::BadName(name.into()));
    }
    Ok(())
}

impl DatasetError {
    /// Whether trying again may help (the store or the disk failed, not the name).
    pub fn is_transient(&self) -> bool {
        match self {
            DatasetError::Source(e) => e.is_transient(),
            other => matches!(other, DatasetError::Bus(_) | DatasetError::Io(_)),
        }
    }
}

/// Whether `uri` is kept elsewhere: a cloud bucket or a database.
pub fn is_remote(uri: &str) -> bool {
    ["s3://", "gs://", "az://", "postgres://", "postgresql://"]
        .iter()
        .any(|s| uri.starts_with(s))
}

/// A bare path or `file://` URI as a path; `None` for other schemes.
pub fn local_path(uri: &str) -> Option<PathBuf> {
    if uri.starts_with(OBJSTORE_SCHEME) || is_remote(uri) {
        return None;
    }
    Some(PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri)))
}

/// The canonical URI of a local file (absolute `file://`).
pub fn file_uri(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", abs.display())
}

/// The datasets object store.
pub struct Datasets<'a>(pub(crate) &'a Bus);

/// A cache file name of `uri`'s content: a digest of `identity` and the URI's file name.
fn cache_name(identity: &str, uri: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    identity.hash(&mut h);
    uri.hash(&mut h);
    let file = uri.rsplit('/').next().unwrap_or("dataset");
    format!("{:016x}-{file}", h.finish())
}

/// Brings a bucket's object (within `data_buckets`) or a PostgreSQL table or query to a
/// local file under `access`; `None` when `uri` names neither.
pub async fn fetch_remote(uri: &str, access: &DataAccess) -> Result<Option<PathBuf>, DatasetError> {
    if let Some(object) = access.confine_object(uri)? {
        return fetch_object(&object, access).await.map(Some);
    }
    if let Some(pg) = postgres::PgUri::parse(uri) {
        return read_table(&pg?, access).await.map(Some);
    }
    Ok(None)
}

/// Downloads a bucket's object into the cache once per ETag and version, streamed to
/// disk; refused over the size limit before a byte is read.
async fn fetch_object(
    object: &cloud::ObjectUri,
    access: &DataAccess,
) -> Result<PathBuf, DatasetError> {
    let uri = object.to_string();
    let meta = cloud::head(object).await?;
    access.within_limit(&uri, meta.size)?;
    let local = access
        .cache_dir
        .join(cache_name(&cloud::identity(&meta), &uri));
    if local.exists() {
        return Ok(local);
    }
    tokio::fs::create_dir_all(&access.cache_dir).await?;
    let tmp = local.with_extension(format!("{}.part", ulid::Ulid::new()));
    match cloud::download(object, &tmp, access.max_bytes).await {
        Ok(_) => {
            tokio::fs::rename(&tmp, &local).await?;
            Ok(local)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e.into())
        }
    }
}

/// Reads a PostgreSQL table or query into a fresh Parquet file in the cache (a table
/// changes between runs, so nothing is reused).
async fn read_table(pg: &postgres::PgUri, access: &DataAccess) -> Result<PathBuf, DatasetError> {
    tokio::fs::create_dir_all(&access.cache_dir).await?;
    let local = access
        .cache_dir
        .join(format!("postgres-{}.parquet", ulid::Ulid::new()));
    // A row takes well over a byte: the byte limit bounds the rows too.
    match postgres::read(pg, &local, access.max_bytes).await {
        Ok(_) => Ok(local),
        Err(e) => {
            let _ = tokio::fs::remove_file(&local).await;
            Err(e.into())
        }
    }
}

/// Whether a file is a dataset Tollgate reads (Parquet or CSV).
fn is_dataset(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("csv"))
}

/// The newest dataset file of a `file://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestFile {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, in ms since the epoch.
    pub modified_ms: i64,
}

/// The newest Parquet or CSV file in a `file:///dir/` source or matching a `file://` glob.
pub fn newest_file(source: &str) -> Result<Option<NewestFile>, DatasetError> {
    let path = source.strip_prefix("file://").unwrap_or(source);
    let pattern = if path.ends_with('/') {
        format!("{path}*")
    } else {
        path.to_string()
    };
    let matches = glob::glob(&pattern).map_err(|e| DatasetError::BadSource {
        source_uri: source.into(),
        reason: e.to_string(),
    })?;
    Ok(matches
        .filter_map(Result::ok)
        .filter(|p| p.is_file() && is_dataset(p))
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            let modified_ms = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis() as i64;
            Some((modified_ms, meta.len(), path))
        })
        .max()
        .map(|(modified_ms, size, path)| NewestFile {
            path,
            size,
            modified_ms,
        }))
}

impl Datasets<'_> {
    /// The dataset a spec's `data.source` names now, as a URI: the newest object under an
    /// `objstore://PREFIX`, or the newest Parquet or CSV file in a `file:///dir/` or
    /// matching a `file://` glob.
    pub async fn resolve_source(&self, source: &str) -> Result<String, DatasetError> {
        if let Some(parsed) = cloud::ObjectUri::parse(source) {
            return cloud::newest(&parsed?)
                .await?
                .map(|(uri, _)| uri)
                .ok_or_else(|| DatasetError::EmptySource(source.into()));
        }
        if postgres::PgUri::parse(source).is_some() {
            return Ok(source.into());
        }
        if source.starts_with(OBJSTORE_SCHEME) {
            return self
                .newest_object(source)
                .await?
                .map(|(_, uri, _)| uri)
                .ok_or_else(|| DatasetError::EmptySource(source.into()));
        }
        newest_file(source)?
            .map(|f| file_uri(&f.path))
            .ok_or_else(|| DatasetError::EmptySource(source.into()))
    }

    /// The newest complete object under an `objstore://PREFIX`: identity (name and
    /// version), URI and modified time in ms.
    pub async fn newest_object(
        &self,
        source: &str,
    ) -> Result<Option<(String, String, i64)>, BusError> {
        let prefix = source.strip_prefix(OBJSTORE_SCHEME).unwrap_or(source);
        let list = self
            .0
            .datasets_store()
            .list()
            .await
            .map_err(|e| BusError::store("listing datasets", e))?;
        let objects: Vec<_> = futures::TryStreamExt::try_collect(list)
            .await
            .map_err(|e| BusError::store("listing datasets", e))?;
        Ok(objects
            .into_iter()
            .filter(|o| !o.deleted && o.name.starts_with(prefix))
            .max_by_key(|o| (o.modified, o.name.clone()))
            .map(|o| {
                let ms = o
                    .modified
                    .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                    .unwrap_or(0);
                (
                    format!("{}@{}", o.name, o.nuid),
                    format!("{OBJSTORE_SCHEME}{}", o.name),
                    ms,
                )
            }))
    }

    /// Makes the dataset at `uri` available as a local file under `access`: a `file://`
    /// one must lie under a root; a pushed one is downloaded into the cache once per
    /// content digest, streamed to disk. Either is refused over the size limit before a
    /// byte is read.
    pub async fn materialize(
        &self,
        uri: &str,
        access: &DataAccess,
    ) -> Result<PathBuf, DatasetError> {
        if uri.is_empty() {
            return Err(DatasetError::Unnamed);
        }
        if let Some(local) = fetch_remote(uri, access).await? {
            return Ok(local);
        }
        if let Some(path) = local_path(uri) {
            if !path.exists() {
                return Err(DatasetError::Missing(path.display().to_string()));
            }
            let real = access.confine(uri, &path)?;
            let size = std::fs::metadata(&real)?.len();
            access.within_limit(&real.display().to_string(), size)?;
            return Ok(real);
        }
        let cache_dir = &access.cache_dir;
        let store = self.0.datasets_store();
        let name = uri.trim_start_matches(OBJSTORE_SCHEME);
        check_object_name(name)?;
        let not_pushed = |e: Box<dyn std::error::Error + Send + Sync>| DatasetError::NotPushed {
            name: name.into(),
            source: BusError::store(format!("reading dataset {name}"), e),
        };
        let info = store.info(name).await.map_err(|e| not_pushed(e.into()))?;
        access.within_limit(uri, info.size as u64)?;
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
        let mut object = store.get(name).await.map_err(|e| not_pushed(e.into()))?;
        let tmp = cache_dir.join(format!(".{digest}-{file_name}.{}", ulid::Ulid::new()));
        let mut file = tokio::fs::File::create(&tmp).await?;
        let copied =
            tokio::io::copy(&mut (&mut object).take(access.max_bytes + 1), &mut file).await;
        let copied = match copied {
            Ok(n) => n,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e.into());
            }
        };
        file.sync_all().await?;
        if copied > access.max_bytes {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(DatasetError::TooLarge {
                name: uri.into(),
                size: copied,
                limit: access.max_bytes,
            });
        }
        tokio::fs::rename(&tmp, &local).await?;
        Ok(local)
    }

    /// Pushes a local file into the store under `name`; returns its URI.
    pub async fn push(&self, path: &Path, name: &str) -> Result<String, DatasetError> {
        check_object_name(name)?;
        if !path.exists() {
            return Err(DatasetError::Missing(path.display().to_string()));
        }
        let mut file = tokio::fs::File::open(path).await?;
        self.0
            .datasets_store()
            .put(name, &mut file)
            .await
            .map_err(|e| BusError::store(format!("pushing dataset {name}"), e))?;
        Ok(format!("{OBJSTORE_SCHEME}{name}"))
    }
}

#[cfg(test)]
mod tests;
