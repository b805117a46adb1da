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
    /// The dataset has columns but no rows.
    #[error("the dataset has a header but no rows")]
    NoRows,
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
    let source: Box<dyn std::error::Error + Send + Sync> = e.into();
    let source = if source.to_string().contains("invalid utf-8") {
        format!("it is not UTF-8 text ({source}); save it as UTF-8").into()
    } else {
        source
    };
    DataError::Unreadable {
        path: path.display().to_string(),
        source,
    }
}

/// Refuses a file that is visibly not what its extension says, or cut short: Parquet must
/// start (and, polars checks, end) with `PAR1`; a CSV whose last line has fewer fields than
/// its header and no line end was truncated mid-write.
fn check_whole(path: &Path, format: Format) -> Result<(), DataError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| unreadable(path, e))?;
    let len = file.metadata().map_err(|e| unreadable(path, e))?.len();
    match format {
        Format::Parquet => {
            let mut magic = [0u8; 4];
            if file.read_exact(&mut magic).is_err() || &magic != b"PAR1" {
                return Err(unreadable(
                    path,
                    "not a Parquet file: it does not start with PAR1",
                ));
            }
        }
        Format::Csv => {
            const WINDOW: u64 = 64 * 1024;
            let mut head = Vec::new();
            (&mut file)
                .take(WINDOW)
                .read_to_end(&mut head)
                .map_err(|e| unreadable(path, e))?;
            let Some(header_end) = head.iter().position(|&b| b == b'\n') else {
                return Ok(());
            };
            file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)))
                .map_err(|e| unreadable(path, e))?;
            let mut tail = Vec::new();
            file.read_to_end(&mut tail)
                .map_err(|e| unreadable(path, e))?;
            if tail.last() == Some(&b'\n') {
                return Ok(());
            }
            let last = tail
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(&tail[..], |i| &tail[i + 1..]);
            let (want, have) = (fields(&head[..header_end]), fields(last));
            if have < want {
                return Err(unreadable(
                    path,
                    format!(
                        "its last line has {have} of the header's {want} fields and no line end: the file looks cut short"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The number of comma-separated fields on a CSV line, quotes respected.
fn fields(line: &[u8]) -> usize {
    let mut quoted = false;
    1 + line
        .iter()
        .filter(|&&b| {
            if b == b'"' {
                quoted = !quoted;
            }
            b == b',' && !quoted
        })
        .count()
}

/// A lazy scan of the dataset at `path`, with its schema checked to be readable.
pub fn scan(path: &Path) -> Result<(LazyFrame, SchemaRef), DataError> {
    if !path.exists() {
        return Err(DataError::Missing(path.display().to_string()));
    }
    let format =
        Format::of(path).ok_or_else(|| DataError::UnknownFormat(path.display().to_string()))?;
    check_whole(path, format)?;
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
                available: {
                    const SHOWN: usize = 12;
                    let names: Vec<&str> = schema.iter_names().map(|n| n.as_str()).collect();
                    let mut list = names[..names.len().min(SHOWN)].join(", ");
                    if names.len() > SHOWN {
                        list += &format!(" and {} more", names.len() - SHOWN);
                    }
                    list
                },
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

/// A column as `f64` values, `None` for nulls; see [`numeric_column_coerced`].
pub fn numeric_column(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, DataError> {
    numeric_column_coerced(df, name).map(|(values, _)| values)
}

/// Text that conventionally stands for no value in a numeric column (`NA`, `n/a`, `null`,
/// `None`, `-`, blank).
fn is_null_text(t: &str) -> bool {
    t.is_empty()
        || ["na", "n/a", "null", "none", "-"]
            .iter()
            .any(|n| t.eq_ignore_ascii_case(n))
}

/// A column as `f64` values, `None` for nulls. A column of text (numbers that arrived as
/// strings) is parsed, and its no-value texts (`NA`, `n/a`, blank, ...) become null: their
/// number is returned beside. Other text (a column mixing numbers and words) and NaN or
/// infinite values are errors that name the column, a row and the fix.
pub fn numeric_column_coerced(
    df: &DataFrame,
    name: &str,
) -> Result<(Vec<Option<f64>>, usize), DataError> {
    let bad = |reason: String| DataError::BadColumn {
        column: name.into(),
        reason,
    };
    let column = df.column(name).map_err(|e| bad(e.to_string()))?;
    let (mut coerced, mut not_numbers, mut non_finite) = (0, 0, 0);
    let (mut first_word, mut first_non_finite) = (None, None);
    let mut check = |row: usize, x: f64| {
        if x.is_finite() {
            Some(x)
        } else {
            non_finite += 1;
            first_non_finite.get_or_insert(row + 1);
            None
        }
    };
    let values: Vec<Option<f64>> = if column.dtype() == &DataType::String {
        let text = column.str().map_err(|e| bad(e.to_string()))?;
        text.iter()
            .enumerate()
            .map(|(row, v)| {
                let t = v?.trim();
                if is_null_text(t) {
                    coerced += 1;
                    return None;
                }
                match t.parse::<f64>() {
                    Ok(x) => check(row, x),
                    Err(_) => {
                        not_numbers += 1;
                        first_word.get_or_insert_with(|| {
                            (row + 1, t.chars().take(40).collect::<String>())
                        });
                        None
                    }
                }
            })
            .collect()
    } else {
        let cast = column
            .cast(&DataType::Float64)
            .map_err(|e| bad(e.to_string()))?;
        cast.f64()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .enumerate()
            .map(|(row, v)| check(row, v?))
            .collect()
    };
    if let Some((row, word)) = first_word {
        return Err(bad(format!(
            "{not_numbers} values are not numbers (e.g. {word:?} in row {row}); fix them, or list the column under features.categorical"
        )));
    }
    if let Some(row) = first_non_finite {
        return Err(bad(format!(
            "{non_finite} values are NaN or infinite (the first in row {row}); a model cannot learn from them: fix or drop those rows"
        )));
    }
    Ok((values, coerced))
}

/// A column as text values, `None` for nulls.
pub fn text_column(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>, DataError> {
    Ok(as_text(df, name)?
        .iter()
        .map(|v| v.map(str::to_string))
        .collect())
}

/// A text column with each distinct value stored once and a code per row: reading,
/// encoding and profiling it copies no strings per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextColumn {
    /// The distinct values, in order of first appearance.
    pub values: Vec<String>,
    /// Each row's index into `values`, or `None` where the value is missing.
    pub codes: Vec<Option<u32>>,
}

impl TextColumn {
    /// Row `i`'s value.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.codes[i].map(|c| self.values[c as usize].as_str())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

impl<'a> FromIterator<Option<&'a str>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(rows: I) -> Self {
        let mut seen: std::collections::HashMap<&'a str, u32> = std::collections::HashMap::new();
        let mut column = TextColumn::default();
        for v in rows {
            let code = v.map(|v| {
                *seen.entry(v).or_insert_with(|| {
                    column.values.push(v.to_string());
                    (column.values.len() - 1) as u32
                })
            });
            column.codes.push(code);
        }
        column
    }
}

/// Column `name` of `df` as text, dictionary-coded: [`text_column`] without a string per row.
pub fn text_codes(df: &DataFrame, name: &str) -> Result<TextColumn, DataError> {
    Ok(as_text(df, name)?.iter().collect())
}

/// Column `name` of `df` cast to text.
fn as_text(df: &DataFrame, name: &str) -> Result<StringChunked, DataError> {
    let bad = |e: PolarsError| DataError::BadColumn {
        column: name.into(),
        reason: e.to_string(),
    };
    let cast = df
        .column(name)
        .map_err(bad)?
        .cast(&DataType::String)
        .map_err(bad)?;
    Ok(cast.str().map_err(bad)?.clone())
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

/// Writes rows `rows` (in order) of the dataset at `path`, every column as read, to the
/// Parquet or CSV file `out`: the training rows a training command gets.
pub fn write_rows(path: &Path, rows: &[usize], out: &Path) -> Result<(), DataError> {
    let (lf, _) = scan(path)?;
    let df = collect(lf).map_err(|e| unreadable(path, e))?;
    let index: Vec<IdxSize> = rows
        .iter()
        .map(|&r| IdxSize::try_from(r).unwrap_or(IdxSize::MAX))
        .collect();
    let index = IdxCa::from_vec("rows".into(), index);
    let mut taken = df.take(&index).map_err(|e| unreadable(path, e))?;
    write(&mut taken, out)
}

/// sha256 of a file's bytes.
pub fn file_digest(path: &Path) -> Result<String, DataError> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).map_err(|e| unreadable(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| unreadable(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests;
