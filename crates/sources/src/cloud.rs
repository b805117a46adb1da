//! Objects in S3 (and S3-compatible stores such as MinIO), Google Cloud Storage and Azure
//! Blob Storage: `s3://bucket/key`, `gs://bucket/key`, `az://container/key`. Credentials
//! and endpoints come from each cloud's standard variables and files, never from a spec:
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_PROFILE` (with `~/.aws/credentials` and `~/.aws/config`);
//! `GOOGLE_APPLICATION_CREDENTIALS`; `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY` and the other `AZURE_STORAGE_*`.

use std::{path::Path, sync::Arc};

use futures::{StreamExt, TryStreamExt};
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, aws::AmazonS3Builder, azure::MicrosoftAzureBuilder,
    gcp::GoogleCloudStorageBuilder, path::Path as Key,
};
use tokio::io::AsyncWriteExt;

use crate::SourceError;

/// The clouds a dataset URI may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// `s3://`: Amazon S3 or an S3-compatible store.
    S3,
    /// `gs://`: Google Cloud Storage.
    Gcs,
    /// `az://`: Azure Blob Storage (the account from `AZURE_STORAGE_ACCOUNT_NAME`).
    Azure,
}

impl Cloud {
    /// The URI scheme, with `://`.
    pub fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3://",
            Cloud::Gcs => "gs://",
            Cloud::Azure => "az://",
        }
    }
}

/// An object URI, or a prefix or glob of them: the cloud, the bucket (or container) and
/// the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUri {
    /// Which cloud.
    pub cloud: Cloud,
    /// The bucket or container.
    pub bucket: String,
    /// The key, a prefix ending in `/`, or a glob; empty for the whole bucket.
    pub key: String,
}

impl std::fmt::Display for ObjectUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}/{}", self.cloud.scheme(), self.bucket, self.key)
    }
}

impl ObjectUri {
    /// Parses `s3://bucket/key`, `gs://…` or `az://…`; `None` for any other scheme.
    pub fn parse(uri: &str) -> Option<Result<ObjectUri, SourceError>> {
        let (cloud, rest) = [Cloud::S3, Cloud::Gcs, Cloud::Azure]
            .into_iter()
            .find_map(|c| uri.strip_prefix(c.scheme()).map(|rest| (c, rest)))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = !bucket.is_empty()
            && bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !key.split('/').any(|s| s == "..");
        Some(if valid {
            Ok(ObjectUri {
                cloud,
                bucket: bucket.into(),
                key: key.into(),
            })
        } else {
            Err(SourceError::BadUri(format!(
                "{uri:?}: write {}BUCKET/KEY, with no '..' segment",
                cloud.scheme()
            )))
        })
    }

    /// Whether `allowed` (the `data_buckets` setting) lets a stage read this object: an
    /// entry is a bucket (`s3://bucket`, or `bucket` for any cloud) or a prefix in one
    /// (`s3://bucket/incoming/`).
    pub fn allowed_by(&self, allowed: &[String]) -> bool {
        let full = self.to_string();
        let bare = format!("{}/{}", self.bucket, self.key);
        allowed.iter().any(|entry| {
            let entry = entry.trim();
            let (against, entry) = match ObjectUri::parse(entry) {
                Some(_) => (&full, entry),
                None => (&bare, entry),
            };
            let entry = entry.trim_end_matches('/');
            !entry.is_empty()
                && (against.trim_end_matches('/') == entry
                    || against.starts_with(&format!("{entry}/")))
        })
    }

    /// The part of the key before the first glob character: what is listed.
    fn list_prefix(&self) -> &str {
        let end = self.key.find(['*', '?', '[']).unwrap_or(self.key.len());
        &self.key[..end]
    }
}

/// A client of the bucket `uri` names, configured from the environment.
pub fn store(uri: &ObjectUri) -> Result<Arc<dyn ObjectStore>, SourceError> {
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match uri.cloud {
        Cloud::S3 => {
            let mut b = AmazonS3Builder::from_env().with_bucket_name(&uri.bucket);
            if let Some((key, secret, token, region)) = profile_credentials() {
                b = b.with_access_key_id(key).with_secret_access_key(secret);
                if let Some(token) = token {
                    b = b.with_token(token);
                }
                if let Some(region) = region {
                    b = b.with_region(region);
                }
            }
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .unwrap_or_default();
            if endpoint.starts_with("http://") {
                b = b.with_allow_http(true);
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        Cloud::Gcs => GoogleCloudStorageBuilder::from_env()
            .with_bucket_name(&uri.bucket)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
        Cloud::Azure => MicrosoftAzureBuilder::from_env()
            .with_container_name(&uri.bucket)
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>),
    };
    built.map_err(|e| SourceError::Config {
        uri: uri.to_string(),
        reason: e.to_string(),
    })
}

/// `AWS_PROFILE`'s keys from `~/.aws/credentials` (or `AWS_SHARED_CREDENTIALS_FILE`) and
/// its region from `~/.aws/config` (or `AWS_CONFIG_FILE`), when the keys are not in the
/// environment already.
fn profile_credentials() -> Option<(String, String, Option<String>, Option<String>)> {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return None;
    }
    let profile = std::env::var("AWS_PROFILE").ok()?;
    let home = std::env::var("HOME").unwrap_or_default();
    let file = |var: &str, default: &str| {
        std::env::var(var).unwrap_or_else(|_| format!("{home}/.aws/{default}"))
    };
    let credentials =
        std::fs::read_to_string(file("AWS_SHARED_CREDENTIALS_FILE", "credentials")).ok()?;
    let keys = ini_section(&credentials, &profile);
    let config = std::fs::read_to_string(file("AWS_CONFIG_FILE", "config")).unwrap_or_default();
    let named = if profile == "default" {
        profile.clone()
    } else {
        format!("profile {profile}")
    };
    let region = ini_section(&config, &named)
        .into_iter()
        .find(|(k, _)| k == "region")
        .map(|(_, v)| v);
    let get = |name: &str| keys.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Some((
        get("aws_access_key_id")?,
        get("aws_secret_access_key")?,
        get("aws_session_token"),
        region,
    ))
}

/// The `key = value` lines of `[section]` in an INI text.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// What a read error means for a person: the bucket, the object or the credentials.
fn read_error(uri: &str, e: object_store::Error) -> SourceError {
    match e {
        object_store::Error::NotFound { .. } => SourceError::NotFound(format!(
            "{uri} does not exist (or the bucket does not): check the name"
        )),
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => SourceError::Denied {
            uri: uri.into(),
            reason: e.to_string(),
        },
        other => {
            let reason = other.to_string();
            // S3-compatible stores answer bad keys and unknown buckets as plain errors.
            if reason.contains("NoSuchBucket") {
                SourceError::NotFound(format!("{uri}: the bucket does not exist"))
            } else if reason.contains("InvalidAccessKeyId")
                || reason.contains("SignatureDoesNotMatch")
                || reason.contains("AccessDenied")
                || reason.contains("403")
            {
                SourceError::Denied {
                    uri: uri.into(),
                    reason,
                }
            } else {
                SourceError::Unavailable {
                    uri: uri.into(),
                    reason,
                }
            }
        }
    }
}

/// What identifies an object's content: its ETag and version id, when the store has them.
pub fn identity(meta: &ObjectMeta) -> String {
    let etag = meta.e_tag.as_deref().unwrap_or("").trim_matches('"');
    match meta.version.as_deref() {
        Some(v) => format!("etag:{etag}@version:{v}"),
        None => format!("etag:{etag}"),
    }
}

/// The object `uri` names: its size, ETag, version and last change.
pub async fn head(uri: &ObjectUri) -> Result<ObjectMeta, SourceError> {
    let client = store(uri)?;
    client
        .head(&Key::from(uri.key.as_str()))
        .await
        .map_err(|e| read_error(&uri.to_string(), e))
}

/// Streams the object `uri` names into `dest`, refusing more than `max_bytes`; returns
/// the bytes written. Memory stays at one chunk whatever the object's size.
pub async fn download(uri: &ObjectUri, dest: &Path, max_bytes: u64) -> Result<u64, SourceError> {
    let client = store(uri)?;
    let name = uri.to_string();
    let got = client
        .get(&Key::from(uri.key.as_str()))
        .await
        .map_err(|e| read_error(&name, e))?;
    let mut file = tokio::fs::File::create(dest).await?;
    let mut stream = got.into_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| read_error(&name, e))?;
        written += chunk.len() as u64;
        if written > max_bytes {
            return Err(SourceError::TooLarge {
                uri: name,
                limit: max_bytes,
            });
        }
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    Ok(written)
}

/// Uploads the file at `path` to `uri` (tests and `make demo` fill buckets with it).
pub async fn upload(path: &Path, uri: &ObjectUri) -> Result<ObjectMeta, SourceError> {
    let client = store(uri)?;
    let bytes = tokio::fs::read(path).await?;
    let key = Key::from(uri.key.as_str());
    client
        .put(&key, bytes.into())
        .await
        .map_err(|e| read_error(&uri.to_string(), e))?;
    client
        .head(&key)
        .await
        .map_err(|e| read_error(&uri.to_string(), e))
}

/// Whether a key names a dataset Tollgate reads.
fn is_dataset(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.ends_with(".parquet") || lower.ends_with(".csv")
}

/// The newest Parquet or CSV object under a prefix (`s3://bucket/incoming/`) or matching
/// a glob (`s3://bucket/daily/*.parquet`): its URI and metadata; `None` when there is none.
pub async fn newest(source: &ObjectUri) -> Result<Option<(String, ObjectMeta)>, SourceError> {
    let client = store(source)?;
    let prefix = source.list_prefix();
    let pattern = (prefix.len() < source.key.len())
        .then(|| glob::Pattern::new(&source.key))
        .transpose()
        .map_err(|e| SourceError::BadUri(format!("{source}: {e}")))?;
    // Listing goes by whole path segments: list the folder the prefix is in.
    let folder = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
    let listed = if folder.is_empty() {
        client.list(None)
    } else {
        client.list(Some(&Key::from(folder)))
    };
    let objects: Vec<ObjectMeta> = listed
        .try_collect()
        .await
        .map_err(|e| read_error(&source.to_string(), e))?;
    Ok(objects
        .into_iter()
        .filter(|o| {
            let key = o.location.as_ref();
            is_dataset(key)
                && key.starts_with(prefix)
                && pattern.as_ref().is_none_or(|p| p.matches(key))
        })
        .max_by(|a, b| {
            (a.last_modified, a.location.as_ref()).cmp(&(b.last_modified, b.location.as_ref()))
        })
        .map(|o| {
            let uri = format!("{}{}/{}", source.cloud.scheme(), source.bucket, o.location);
            (uri, o)
        }))
}

#[cfg(test)]
mod tests;
