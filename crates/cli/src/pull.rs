//! `tollgate data pull URI --out FILE`: a dataset where teams keep it (a bucket's object,
//! a PostgreSQL table or query) brought to a local file exactly as a stage reads it, to
//! look at it or validate it locally.

use std::path::Path;

use tollgate_pipeline::dataset::{self, DataAccess};

use crate::CliError;

/// Writes the dataset `uri` names to `out`: the object's bytes, or the table's rows as
/// Parquet.
pub async fn pull(uri: &str, out: &Path) -> Result<(), CliError> {
    let started = std::time::Instant::now();
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
    let Some(local) = dataset::fetch_remote(uri, &access).await? else {
        return Err(CliError::Usage(format!(
            "{uri}: pull reads s3://, gs://, az:// and postgres:// datasets; a local file is already one"
        )));
    };
    let wants_parquet = out.extension().is_some_and(|e| e == "parquet");
    if uri.starts_with("postgres") && !wants_parquet {
        return Err(CliError::Usage(format!(
            "a table is written as Parquet: name the output {}.parquet",
            out.with_extension("").display()
        )));
    }
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
