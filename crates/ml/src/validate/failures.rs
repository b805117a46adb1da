//! Every failing row of a validation, not a sample: for each per-row expectation that
//! failed, the rows it counts as unexpected (a null for `not_be_null`, a present value for
//! `be_null`, a present value that fails for the rest; for uniqueness, every row of a
//! repeated value), within its `row_condition`. Each row is named by its position in the
//! file (`row`, from 0) and the spec's id columns. Expectations judged on an aggregate (a
//! mean, a row count, a set of distinct values) have no rows of their own and are left
//! out.

use std::path::Path;

use polars::prelude::*;
use tollgate_proto::ValidationReport;
use tollgate_spec::Expectation;

use super::{checks::compile, model::*, results::counted};
use crate::data::{self, DataError};

/// The failing rows of `report`'s failed per-row expectations over the dataset at
/// `path`: columns `expectation` (its position in the suite, from 1), `type`, `column`,
/// `row`, then each of `id_columns` the data has, as text.
pub fn failing_rows(
    path: &Path,
    expectations: &[Expectation],
    report: &ValidationReport,
    id_columns: &[String],
) -> Result<DataFrame, DataError> {
    let (lf, schema) = data::scan(path)?;
    let ids: Vec<&String> = id_columns
        .iter()
        .filter(|c| schema.contains(c.as_str()))
        .collect();
    let numbered = lf.with_row_index("row", None);
    let mut parts = Vec::new();
    for (i, (e, r)) in expectations.iter().zip(&report.results).enumerate() {
        if r.success || !r.error.is_empty() {
            continue;
        }
        let Ok(compiled) = compile(e, &schema) else {
            continue;
        };
        // The rows in the expectation's domain, and which of them fail.
        let (column, rows, fails) = match &compiled.check {
            Check::Map {
                column,
                unexpected,
                present,
                counts,
                ..
            } => {
                let fails = match counts {
                    Counts::Present => unexpected.clone().and(counted(column, present)),
                    Counts::Nulls => counted(column, present).not(),
                    Counts::Values => counted(column, present),
                };
                (column, numbered.clone(), compiled.within(fails))
            }
            // Every row of a value that appears more than once.
            Check::Unique { column, .. } => (
                column,
                compiled.rows(&numbered),
                col(column.as_str())
                    .is_duplicated()
                    .and(col(column.as_str()).is_not_null()),
            ),
            _ => continue,
        };
        let mut keys = vec![
            lit((i + 1) as u32)
                .cast(DataType::UInt32)
                .alias("expectation"),
            lit(e.kind.clone()).alias("type"),
            lit(column.clone()).alias("column"),
            col("row").cast(DataType::UInt64),
        ];
        keys.extend(ids.iter().map(|c| col(c.as_str()).cast(DataType::String)));
        let query = rows.filter(fails).select(keys);
        parts.push(data::collect(query).map_err(|e| data::unreadable(path, e))?);
    }
    let mut out = empty(&ids);
    for part in parts {
        out.vstack_mut(&part)
            .map_err(|e| data::unreadable(path, e))?;
    }
    Ok(out)
}

/// A table with the failing-rows columns and no row.
fn empty(ids: &[&String]) -> DataFrame {
    let mut columns: Vec<Column> = vec![
        Column::new_empty("expectation".into(), &DataType::UInt32),
        Column::new_empty("type".into(), &DataType::String),
        Column::new_empty("column".into(), &DataType::String),
        Column::new_empty("row".into(), &DataType::UInt64),
    ];
    columns.extend(
        ids.iter()
            .map(|c| Column::new_empty(c.as_str().into(), &DataType::String)),
    );
    DataFrame::new(0, columns).unwrap_or_default()
}

/// Writes kept failing rows (`parquet`, as [`failing_rows`] made and the data-validator
/// kept them) to `out` (.parquet or .csv), only `expectation`'s when given; returns how
/// many rows it wrote.
pub fn export_failing_rows(
    parquet: &[u8],
    expectation: Option<u32>,
    out: &Path,
) -> Result<usize, DataError> {
    let source = Path::new("the kept failing rows");
    let kept = ParquetReader::new(std::io::Cursor::new(parquet))
        .finish()
        .map_err(|e| data::unreadable(source, e))?;
    let mut rows = match expectation {
        Some(n) => kept
            .lazy()
            .filter(col("expectation").eq(lit(n)))
            .collect()
            .map_err(|e| data::unreadable(source, e))?,
        None => kept,
    };
    data::write(&mut rows, out)?;
    Ok(rows.height())
}
