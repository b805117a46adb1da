//! The expectation suite as polars aggregations: every expectation becomes a few
//! aggregate expressions, and the whole suite is evaluated in one `select` over a lazy
//! scan, so the data is read once. Results follow Great Expectations' names and fields.
//!
//! A problem with one expectation (a column the data lacks, a bad argument, a wrong type)
//! fails that expectation with an error message; it never stops the others.

use std::path::Path;

use polars::prelude::*;
use serde_json::{Map, Value};
use tollgate_proto::{ExpectationResult, ValidationReport};
use tollgate_spec::Expectation;

use crate::data::{self, DataError, unreadable};

/// Expectation types this engine evaluates.
pub const SUPPORTED: &[&str] = &[
    "expect_table_row_count_to_be_between",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_unique",
];

#[derive(Debug, Clone)]
enum Check {
    RowCount {
        min: Option<f64>,
        max: Option<f64>,
    },
    NotNull {
        column: String,
        mostly: f64,
    },
    Between {
        column: String,
        min: Option<f64>,
        max: Option<f64>,
        strict_min: bool,
        strict_max: bool,
        mostly: f64,
    },
    InSet {
        column: String,
        set: Vec<Value>,
        mostly: f64,
    },
    Unique {
        column: String,
        mostly: f64,
    },
}

impl Check {
    fn column(&self) -> Option<&str> {
        match self {
            Check::RowCount { .. } => None,
            Check::NotNull { column, .. }
            | Check::Between { column, .. }
            | Check::InSet { column, .. }
            | Check::Unique { column, .. } => Some(column),
        }
    }
}

fn number(kwargs: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match kwargs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("argument {key} must be a number, got {v}")),
    }
}

fn flag(kwargs: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match kwargs.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("argument {key} must be true or false, got {v}")),
    }
}

fn column(kwargs: &Map<String, Value>) -> Result<String, String> {
    kwargs
        .get("column")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "argument column is required".to_string())
}

fn mostly(kwargs: &Map<String, Value>) -> Result<f64, String> {
    let m = number(kwargs, "mostly")?.unwrap_or(1.0);
    if (0.0..=1.0).contains(&m) {
        Ok(m)
    } else {
        Err(format!("argument mostly must be between 0 and 1, got {m}"))
    }
}

fn parse(e: &Expectation) -> Result<Check, String> {
    let k = &e.kwargs;
    Ok(match e.kind.as_str() {
        "expect_table_row_count_to_be_between" => Check::RowCount {
            min: number(k, "min_value")?,
            max: number(k, "max_value")?,
        },
        "expect_column_values_to_not_be_null" => Check::NotNull {
            column: column(k)?,
            mostly: mostly(k)?,
        },
        "expect_column_values_to_be_between" => {
            let (min, max) = (number(k, "min_value")?, number(k, "max_value")?);
            if min.is_none() && max.is_none() {
                return Err("give min_value, max_value or both".into());
            }
            Check::Between {
                column: column(k)?,
                min,
                max,
                strict_min: flag(k, "strict_min")?,
                strict_max: flag(k, "strict_max")?,
                mostly: mostly(k)?,
            }
        }
        "expect_column_values_to_be_in_set" => {
            let set = match k.get("value_set") {
                Some(Value::Array(values)) if !values.is_empty() => values.clone(),
                _ => return Err("argument value_set must be a non-empty list".into()),
            };
            if let Some(v) = set
                .iter()
                .find(|v| !(v.is_string() || v.is_number() || v.is_boolean()))
            {
                return Err(format!(
                    "value_set may hold text, numbers or booleans, not {v}"
                ));
            }
            Check::InSet {
                column: column(k)?,
                set,
                mostly: mostly(k)?,
            }
        }
        "expect_column_values_to_be_unique" => Check::Unique {
            column: column(k)?,
            mostly: mostly(k)?,
        },
        other => {
            return Err(format!(
                "unknown expectation type {other:?}; supported: {}",
                SUPPORTED.join(", ")
            ));
        }
    })
}

fn literal(v: &Value) -> Expr {
    match v {
        Value::String(s) => lit(s.as_str()),
        Value::Bool(b) => lit(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => lit(i),
            None => lit(n.as_f64().unwrap_or(f64::NAN)),
        },
        _ => lit(NULL),
    }
}

/// The aggregate expressions of check `i`, aliased `e{i}_<what>`.
fn aggregates(i: usize, check: &Check) -> Vec<Expr> {
    let name = |what: &str| format!("e{i}_{what}");
    let count = |e: Expr| e.cast(DataType::Int64).sum();
    match check {
        Check::RowCount { .. } | Check::Unique { .. } => vec![],
        Check::NotNull { column, .. } => {
            vec![col(column.as_str()).null_count().alias(name("nulls"))]
        }
        Check::Between {
            column,
            min,
            max,
            strict_min,
            strict_max,
            ..
        } => {
            let x = col(column.as_str()).cast(DataType::Float64);
            let mut outside = lit(false);
            if let Some(min) = min {
                let below = if *strict_min {
                    x.clone().lt_eq(lit(*min))
                } else {
                    x.clone().lt(lit(*min))
                };
                outside = outside.or(below);
            }
            if let Some(max) = max {
                let above = if *strict_max {
                    x.clone().gt_eq(lit(*max))
                } else {
                    x.clone().gt(lit(*max))
                };
                outside = outside.or(above);
            }
            vec![
                col(column.as_str()).null_count().alias(name("nulls")),
                count(outside).alias(name("unexpected")),
                x.clone().min().alias(name("min")),
                x.max().alias(name("max")),
            ]
        }
        Check::InSet { column, set, .. } => {
            let inside = set
                .iter()
                .map(|v| col(column.as_str()).eq(literal(v)))
                .reduce(|a, b| a.or(b))
                .unwrap_or(lit(false));
            vec![
                col(column.as_str()).null_count().alias(name("nulls")),
                count(inside.not()).alias(name("unexpected")),
            ]
        }
    }
}

fn get(df: &DataFrame, name: &str) -> Option<f64> {
    let c = df.column(name).ok()?.cast(&DataType::Float64).ok()?;
    c.f64().ok()?.get(0)
}

fn result_for(e: &Expectation) -> ExpectationResult {
    ExpectationResult {
        expectation_type: e.kind.clone(),
        column: e
            .kwargs
            .get("column")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        kwargs_json: Value::Object(e.kwargs.clone()).to_string(),
        ..Default::default()
    }
}

fn fill_map_result(r: &mut ExpectationResult, rows: u64, nulls: u64, unexpected: u64, mostly: f64) {
    let nonmissing = rows.saturating_sub(nulls);
    r.element_count = rows;
    r.missing_count = nulls;
    r.unexpected_count = unexpected;
    r.unexpected_percent = if nonmissing == 0 {
        0.0
    } else {
        100.0 * unexpected as f64 / nonmissing as f64
    };
    r.success = r.unexpected_percent / 100.0 <= 1.0 - mostly + 1e-12;
}

/// Runs `expectations` over the dataset at `path`. An unreadable or missing file is an
/// error; a problem with one expectation is reported in that expectation's result.
pub fn validate(path: &Path, expectations: &[Expectation]) -> Result<ValidationReport, DataError> {
    let started = std::time::Instant::now();
    let (lf, schema) = data::scan(path)?;
    let mut results: Vec<ExpectationResult> = expectations.iter().map(result_for).collect();
    let mut checks: Vec<Option<Check>> = Vec::with_capacity(expectations.len());
    for (e, r) in expectations.iter().zip(results.iter_mut()) {
        let check = parse(e).and_then(|c| {
            if let Some(column) = c.column() {
                match schema.get(column) {
                    None => return Err(format!("column {column:?} is not in the dataset")),
                    Some(dtype)
                        if matches!(c, Check::Between { .. }) && !dtype.is_primitive_numeric() =>
                    {
                        return Err(format!("column {column:?} is {dtype}, not numeric"));
                    }
                    _ => {}
                }
            }
            Ok(c)
        });
        match check {
            Ok(c) => checks.push(Some(c)),
            Err(msg) => {
                r.error = msg;
                checks.push(None);
            }
        }
    }
    let mut exprs = vec![len().alias("rows")];
    for (i, c) in checks.iter().enumerate() {
        if let Some(c) = c {
            exprs.extend(aggregates(i, c));
        }
    }
    let df = match lf.clone().select(exprs).collect() {
        Ok(df) => df,
        Err(whole) => {
            // Attribute the failure: evaluate each expectation alone.
            for (i, c) in checks.iter_mut().enumerate() {
                if let Some(check) = c {
                    let alone = aggregates(i, check);
                    if !alone.is_empty()
                        && let Err(e) = lf.clone().select(alone).collect()
                    {
                        results[i].error = format!("cannot evaluate: {e}");
                        *c = None;
                    }
                }
            }
            lf.clone()
                .select(
                    std::iter::once(len().alias("rows"))
                        .chain(
                            checks
                                .iter()
                                .enumerate()
                                .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
                                .flat_map(|(i, c)| aggregates(i, c)),
                        )
                        .collect::<Vec<_>>(),
                )
                .collect()
                .map_err(|_| unreadable(path, whole))?
        }
    };
    let rows = get(&df, "rows").unwrap_or(0.0) as u64;
    for (i, c) in checks.iter().enumerate() {
        let Some(check) = c else { continue };
        let r = &mut results[i];
        let v = |what: &str| get(&df, &format!("e{i}_{what}"));
        match check {
            Check::RowCount { min, max } => {
                let n = rows as f64;
                r.observed_value = rows.to_string();
                r.element_count = rows;
                r.success = min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m);
            }
            Check::NotNull { mostly, .. } => {
                let nulls = v("nulls").unwrap_or(0.0) as u64;
                r.observed_value = format!("{nulls} null of {rows}");
                r.element_count = rows;
                r.unexpected_count = nulls;
                r.unexpected_percent = if rows == 0 {
                    0.0
                } else {
                    100.0 * nulls as f64 / rows as f64
                };
                r.success = r.unexpected_percent / 100.0 <= 1.0 - mostly + 1e-12;
            }
            Check::Between { mostly, .. } => {
                let (nulls, unexpected) = (
                    v("nulls").unwrap_or(0.0) as u64,
                    v("unexpected").unwrap_or(0.0) as u64,
                );
                r.observed_value = match (v("min"), v("max")) {
                    (Some(lo), Some(hi)) => format!("min {lo}, max {hi}"),
                    _ => "no values".into(),
                };
                fill_map_result(r, rows, nulls, unexpected, *mostly);
            }
            Check::InSet { mostly, .. } => {
                let (nulls, unexpected) = (
                    v("nulls").unwrap_or(0.0) as u64,
                    v("unexpected").unwrap_or(0.0) as u64,
                );
                r.observed_value = format!("{unexpected} outside the set");
                fill_map_result(r, rows, nulls, unexpected, *mostly);
            }
            Check::Unique { column, mostly } => match duplicates(&lf, column) {
                Ok((nulls, dup_rows)) => {
                    r.observed_value = format!("{dup_rows} rows share a value");
                    fill_map_result(r, rows, nulls, dup_rows, *mostly);
                }
                Err(e) => r.error = format!("cannot evaluate: {e}"),
            },
        }
    }
    for r in &mut results {
        if !r.error.is_empty() {
            r.success = false;
        }
    }
    Ok(ValidationReport {
        success: results.iter().all(|r| r.success),
        row_count: rows,
        results,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// Nulls in `column`, and rows whose non-null value appears more than once (as Great
/// Expectations counts unexpected values of uniqueness).
fn duplicates(lf: &LazyFrame, column: &str) -> PolarsResult<(u64, u64)> {
    let nulls = lf
        .clone()
        .select([col(column).null_count().alias("n")])
        .collect()?;
    let dups = lf
        .clone()
        .filter(col(column).is_not_null())
        .group_by([col(column)])
        .agg([len().alias("n")])
        .filter(col("n").gt(lit(1)))
        .select([col("n").cast(DataType::Int64).sum().alias("n")])
        .collect()?;
    Ok((
        get(&nulls, "n").unwrap_or(0.0) as u64,
        get(&dups, "n").unwrap_or(0.0) as u64,
    ))
}

#[cfg(test)]
mod tests;
