//! Reading datasets: Parquet or CSV by file extension, scanned lazily with polars, and
//! the typed columns the feature pipeline needs.

use std::path::Path;

use polars::prelude::*;

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file does not exist.
    #[error("dataset file {0} does not exist")]
    Missing(String),
    /// The extension is neither Parquet nor CSV.
    #[error("dataset {0}: unknown format; use a .parquet or .csv file")]
    UnknownFormat(String),
    /// polars could not read it (corrupt file, bad CSV).
    #[error("dataset {path} is unreadable: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// What polars or the file system said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A column the spec needs is not in the data.
    #[error("column {column:?} is missing from the dataset (it has: {available})")]
    MissingColumn {
        /// The column asked for.
        column: String,
        /// The columns there are.
        available: String,
    },
    /// A column has values the model cannot use.
    #[error("column {column:?}: {reason}")]
    BadColumn {
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing a dataset failed.
    #[error("cannot write dataset {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// File formats Tollgate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
}

impl Format {
    /// The format a path's extension names.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

pub(crate) fn unreadable(
    path: &Path,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> DataError {
    DataError::Unreadable {
        path: path.display().to_string(),
        source: e.into(),
    }
}

/// A lazy scan of the dataset at `path`, with its schema checked to be readable.
pub fn scan(path: &Path) -> Result<(LazyFrame, SchemaRef), DataError> {
    if !path.exists() {
        return Err(DataError::Missing(path.display().to_string()));
    }
    let format =
        Format::of(path).ok_or_else(|| DataError::UnknownFormat(path.display().to_string()))?;
    let pl_path = PlRefPath::try_from_path(path).map_err(|e| unreadable(path, e))?;
    let mut lf = match format {
        Format::Parquet => LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default()),
        Format::Csv => LazyCsvReader::new(pl_path)
            .with_has_header(true)
            .with_infer_schema_length(Some(10_000))
            .finish(),
    }
    .map_err(|e| unreadable(path, e))?;
    let schema = lf.collect_schema().map_err(|e| unreadable(path, e))?;
    Ok((lf, schema))
}

/// Collects a lazy query with polars' streaming engine: scans are processed in batches,
/// so memory stays bounded where the query allows (polars itself falls back to
/// in-memory execution for operations that need a whole column).
pub fn collect(lf: LazyFrame) -> PolarsResult<DataFrame> {
    match lf.collect_with_engine(Engine::Streaming)? {
        polars_core::query_result::QueryResult::Single(df) => Ok(df),
        polars_core::query_result::QueryResult::Multiple(mut frames) => frames
            .pop()
            .ok_or_else(|| polars_err!(ComputeError: "the query produced no result")),
    }
}

/// Checks that every column in `columns` is in `schema`.
pub fn require_columns(schema: &Schema, columns: &[String]) -> Result<(), DataError> {
    for c in columns {
        if schema.get(c).is_none() {
            return Err(DataError::MissingColumn {
                column: c.clone(),
                available: schema
                    .iter_names()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(())
}

/// Reads `columns` of the dataset at `path` into memory.
pub fn read_columns(path: &Path, columns: &[String]) -> Result<DataFrame, DataError> {
    let (lf, schema) = scan(path)?;
    require_columns(&schema, columns)?;
    lf.select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
        .collect()
        .map_err(|e| unreadable(path, e))
}

/// A column as `f64` values, `None` for nulls and non-finite values.
pub fn numeric_column(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, DataError> {
    numeric_column_coerced(df, name).map(|(values, _)| values)
}

/// A column as `f64` values. A column of text (numbers that arrived as strings) is parsed:
/// blank and unparseable values become null, and their number is returned beside.
pub fn numeric_column_coerced(
    df: &DataFrame,
    name: &str,
) -> Result<(Vec<Option<f64>>, usize), DataError> {
    let bad = |e: PolarsError| DataError::BadColumn {
        column: name.into(),
        reason: e.to_string(),
    };
    let column = df.column(name).map_err(bad)?;
    if column.dtype() == &DataType::String {
        let mut coerced = 0;
        let values = column
            .str()
            .map_err(bad)?
            .iter()
            .map(|v| {
                let parsed = v.map(|t| t.trim().parse::<f64>().ok().filter(|x| x.is_finite()));
                match parsed {
                    Some(Some(x)) => Some(x),
                    Some(None) => {
                        coerced += 1;
                        None
                    }
                    None => None,
                }
            })
            .collect();
        return Ok((values, coerced));
    }
    let cast = column.cast(&DataType::Float64).map_err(bad)?;
    let values = cast
        .f64()
        .map_err(bad)?
        .iter()
        .map(|v| v.filter(|x| x.is_finite()))
        .collect();
    Ok((values, 0))
}

/// A column as text values, `None` for nulls.
pub fn text_column(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, DataError> {
    let bad = |e: PolarsError| DataError::BadColumn {
        column: name.into(),
        reason: e.to_string(),
    };
    let cast = df
        .column(name)
        .map_err(bad)?
        .cast(&DataType::String)
        .map_err(bad)?;
    Ok(cast
        .str()
        .map_err(bad)?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// Writes `df` to `path` in the format its extension names.
pub fn write(df: &mut DataFrame, path: &Path) -> Result<(), DataError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| DataError::Write {
        path: path.display().to_string(),
        source: e,
    };
    let format =
        Format::of(path).ok_or_else(|| DataError::UnknownFormat(path.display().to_string()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err(e.into()))?;
    }
    let file = std::fs::File::create(path).map_err(|e| err(e.into()))?;
    match format {
        Format::Parquet => ParquetWriter::new(file)
            .finish(df)
            .map(|_| ())
            .map_err(|e| err(e.into())),
        Format::Csv => CsvWriter::new(file)
            .include_header(true)
            .finish(df)
            .map_err(|e| err(e.into())),
    }
}

/// sha256 of a file's bytes.
pub fn file_digest(path: &Path) -> Result<String, DataError> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).map_err(|e| unreadable(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| unreadable(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}
