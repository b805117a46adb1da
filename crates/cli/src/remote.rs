//! Datasets where teams keep them, from the command line: `tollgate data pull URI --out
//! FILE` brings a bucket's object or a PostgreSQL table or query to a local file exactly
//! as a stage reads it; `tollgate data push FILE --to s3://…` puts a file in a bucket.

use std::path::Path;

use tollgate_pipeline::dataset::{self, DataAccess};

use crate::CliError;

/// The dataset `uri` names, brought to a local file in a temporary directory (kept as
/// long as the returned guard lives): a bucket's object, or a table's rows as Parquet.
pub async fn fetch(uri: &str) -> Result<(tempfile::TempDir, std::path::PathBuf), CliError> {
    let cache = tempfile::tempdir().map_err(|source| CliError::File {
        path: std::env::temp_dir().display().to_string(),
        source,
    })?;
    let access = DataAccess {
        cache_dir: cache.path().to_path_buf(),
        roots: Vec::new(),
        // Asked for by name: its own bucket is the one it may be read from.
        buckets: vec![uri.to_string()],
        max_bytes: u64::MAX,
    };
    match dataset::fetch_remote(uri, &access).await? {
        Some(local) => Ok((cache, local)),
        None => Err(CliError::Usage(format!(
            "{uri}: not an s3://, gs://, az:// or postgres:// dataset"
        ))),
    }
}

/// Writes the dataset `uri` names to `out`: the object's bytes, or the table's rows as
/// Parquet.
pub async fn pull(uri: &str, out: &Path) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    if uri.starts_with("postgres") && out.extension().is_none_or(|e| e != "parquet") {
        return Err(CliError::Usage(format!(
            "a table is written as Parquet: name the output {}.parquet",
            out.with_extension("").display()
        )));
    }
    let (_cache, local) = fetch(uri).await?;
    let size = std::fs::copy(&local, out).map_err(|source| CliError::File {
        path: out.display().to_string(),
        source,
    })?;
    say!(
        "wrote {} ({size} bytes) from {uri} in {:.2}s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Uploads `path` to the bucket object `to` names (`s3://bucket/key`, `gs://…`, `az://…`).
pub async fn push_to(path: &Path, to: &str) -> Result<(), CliError> {
    use tollgate_sources::cloud;
    let Some(object) = cloud::ObjectUri::parse(to) else {
        return Err(CliError::Usage(format!(
            "--to {to}: name an object as s3://BUCKET/KEY, gs://BUCKET/KEY or az://CONTAINER/KEY"
        )));
    };
    let object = object.map_err(|e| CliError::Usage(e.to_string()))?;
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let meta = cloud::upload(path, &object)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    say!("{object} ({} bytes, {})", meta.size, cloud::identity(&meta));
    Ok(())
}
