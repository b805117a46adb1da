//! The expectation suite as polars aggregations: every expectation compiles into a few
//! aggregate expressions and the whole suite runs as one `select` over a lazy scan, so
//! the data is read once. Only compound-column uniqueness needs a group-by of its own,
//! and failing column expectations a small second query for up to 20 unexpected values.
//!
//! Results follow Great Expectations' names and its SUMMARY result fields. A problem with
//! one expectation (a column the data lacks, a bad argument, a wrong type) fails that
//! expectation with an error message; it never stops the others.

use std::{collections::BTreeMap, path::Path};

use polars::prelude::*;
use serde_json::{Map, Value};
use tollgate_proto::{ExpectationResult, ValidationReport};
use tollgate_spec::Expectation;

use crate::data::{self, DataError, unreadable};

/// Expectation types this engine evaluates.
pub const SUPPORTED: &[&str] = &[
    "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_column_to_exist",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
    "expect_column_value_lengths_to_be_between",
    "expect_column_min_to_be_between",
    "expect_column_max_to_be_between",
    "expect_column_mean_to_be_between",
    "expect_column_median_to_be_between",
    "expect_column_stdev_to_be_between",
    "expect_column_sum_to_be_between",
    "expect_column_proportion_of_unique_values_to_be_between",
    "expect_column_distinct_values_to_be_in_set",
    "expect_column_distinct_values_to_contain_set",
    "expect_column_distinct_values_to_equal_set",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_compound_columns_to_be_unique",
];

/// Unexpected values kept per expectation, as Great Expectations' SUMMARY does.
pub const PARTIAL_UNEXPECTED: usize = 20;

/// A numeric range with Great Expectations' `strict_min` / `strict_max`.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: Option<f64>,
    max: Option<f64>,
    strict_min: bool,
    strict_max: bool,
}

impl Range {
    /// Neither side given: every value is in range (GX passes such an expectation).
    fn unbounded(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    fn holds(&self, v: f64) -> bool {
        let above = |m: f64| if self.strict_min { v > m } else { v >= m };
        let below = |m: f64| if self.strict_max { v < m } else { v <= m };
        self.min.is_none_or(above) && self.max.is_none_or(below)
    }

    /// True where `x` is outside the range (nulls stay null).
    fn outside(&self, x: Expr) -> Expr {
        let mut out = lit(false);
        if let Some(min) = self.min {
            out = out.or(if self.strict_min {
                x.clone().lt_eq(lit(min))
            } else {
                x.clone().lt(lit(min))
            });
        }
        if let Some(max) = self.max {
            out = out.or(if self.strict_max {
                x.clone().gt_eq(lit(max))
            } else {
                x.gt(lit(max))
            });
        }
        out
    }
}

/// What a per-row check counts as unexpected, and out of how many rows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Counts {
    /// Present values that fail, out of the present values.
    Present,
    /// The nulls, out of every row (`expect_column_values_to_not_be_null`).
    Nulls,
    /// The present values, out of every row (`expect_column_values_to_be_null`).
    Values,
}

/// How the distinct values of a column must relate to a set.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SetMode {
    Within,
    Contains,
    Equals,
}

#[derive(Debug, Clone)]
enum Check {
    /// Decided from the schema alone.
    Schema {
        success: bool,
        observed: String,
    },
    RowCount(Range),
    /// A per-row check: `unexpected` is true on a non-null row that fails.
    Map {
        column: String,
        unexpected: Expr,
        mostly: f64,
        counts: Counts,
    },
    /// An aggregate of the column within a range.
    Stat {
        stat: Expr,
        range: Range,
    },
    ProportionUnique {
        column: String,
        range: Range,
    },
    Distinct {
        column: String,
        set: Vec<Value>,
        mode: SetMode,
    },
    Compound {
        columns: Vec<String>,
        mostly: f64,
    },
    /// Values that appear once: found by [`duplicates`] after the scan, not by a
    /// string group-by in it.
    Unique {
        column: String,
        mostly: f64,
        /// True for text and integers, which [`duplicates`] keys; other types use
        /// polars' `is_duplicated`.
        keyed: bool,
    },
}

fn number(k: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match k.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("argument {key} must be a number, got {v}")),
    }
}

fn flag(k: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match k.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("argument {key} must be true or false, got {v}")),
    }
}

fn text(k: &Map<String, Value>, key: &str) -> Result<String, String> {
    k.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("argument {key} is required"))
}

fn strings(k: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match k.get(key) {
        Some(Value::Array(v)) if v.iter().all(Value::is_string) => Ok(v
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()),
        _ => Err(format!("argument {key} must be a list of names")),
    }
}

/// `value_set`: text, numbers and booleans. A null in it matches no row and is dropped
/// (GX accepts it). An empty set is refused unless `empty_ok`: a row-wise check against
/// an empty set is well defined (nothing is in it), a check of the distinct values is not.
fn values(k: &Map<String, Value>, empty_ok: bool) -> Result<Vec<Value>, String> {
    match k.get("value_set") {
        Some(Value::Array(v)) if empty_ok || !v.is_empty() => {
            if let Some(bad) = v
                .iter()
                .find(|x| !(x.is_string() || x.is_number() || x.is_boolean() || x.is_null()))
            {
                return Err(format!(
                    "value_set may hold text, numbers or booleans, not {bad}"
                ));
            }
            Ok(v.iter().filter(|x| !x.is_null()).cloned().collect())
        }
        Some(Value::Array(_)) => Err("argument value_set must be a non-empty list".into()),
        _ => Err("argument value_set must be a list".into()),
    }
}

fn mostly(k: &Map<String, Value>) -> Result<f64, String> {
    let m = number(k, "mostly")?.unwrap_or(1.0);
    if (0.0..=1.0).contains(&m) {
        Ok(m)
    } else {
        Err(format!("argument mostly must be between 0 and 1, got {m}"))
    }
}

/// `min_value` / `max_value` (either may be null: unbounded on that side), refused when the
/// minimum is above the maximum, as Great Expectations refuses it.
fn bounds(k: &Map<String, Value>) -> Result<Range, String> {
    let r = Range {
        min: number(k, "min_value")?,
        max: number(k, "max_value")?,
        strict_min: flag(k, "strict_min")?,
        strict_max: flag(k, "strict_max")?,
    };
    if let (Some(min), Some(max)) = (r.min, r.max)
        && min > max
    {
        return Err(format!(
            "min_value ({min}) must not be greater than max_value ({max})"
        ));
    }
    Ok(r)
}

/// [`bounds`] with at least one side given.
fn range(k: &Map<String, Value>) -> Result<Range, String> {
    let r = bounds(k)?;
    if r.unbounded() {
        return Err("give min_value, max_value or both".into());
    }
    Ok(r)
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

fn in_set(column: &str, set: &[Value]) -> Expr {
    set.iter()
        .map(|v| col(column).eq(literal(v)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false))
}

/// Type names Great Expectations users write (pandas, SQL, Python) for a polars type.
fn type_names(dtype: &DataType) -> &'static [&'static str] {
    match dtype {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => &[
            "int", "int8", "int16", "int32", "int64", "integer", "bigint", "smallint",
        ],
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            &["int", "uint8", "uint16", "uint32", "uint64", "integer"]
        }
        DataType::Float32 | DataType::Float64 => {
            &["float", "float32", "float64", "double", "real", "numeric"]
        }
        // pandas keeps text in object columns: `object_` and `O` name them too.
        DataType::String => &[
            "str", "string", "object", "object_", "o", "varchar", "text", "utf8",
        ],
        DataType::Boolean => &["bool", "boolean"],
        // A time zone makes pandas' dtype DatetimeTZDtype, which `datetime64` does not name
        // (polars keeps zones only with its `timezones` feature, which this build omits).
        DataType::Datetime(_, None) => &[
            "datetime64",
            "datetime64[ns]",
            "datetime64[us]",
            "datetime64[ms]",
            "datetime",
            "timestamp",
        ],
        DataType::Datetime(_, Some(_)) => &["timestamp", "datetimetzdtype", "datetime"],
        DataType::Date => &["date"],
        _ => &[],
    }
}

fn type_matches(dtype: &DataType, wanted: &str) -> bool {
    let w = wanted.to_ascii_lowercase();
    w == dtype.to_string().to_ascii_lowercase() || type_names(dtype).contains(&w.as_str())
}

fn compile(e: &Expectation, schema: &Schema) -> Result<Check, String> {
    let k = &e.kwargs;
    let column = |k: &Map<String, Value>| -> Result<(String, DataType), String> {
        let c = text(k, "column")?;
        match schema.get(&c) {
            Some(dtype) => Ok((c, dtype.clone())),
            None => Err(format!("column {c:?} is not in the dataset")),
        }
    };
    let numeric = |c: &str, dtype: &DataType| -> Result<(), String> {
        if dtype.is_primitive_numeric() {
            Ok(())
        } else {
            Err(format!("column {c:?} is {dtype}, not numeric"))
        }
    };
    let textual = |c: &str, dtype: &DataType| -> Result<(), String> {
        if dtype == &DataType::String {
            Ok(())
        } else {
            Err(format!("column {c:?} is {dtype}, not text"))
        }
    };
    let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let map = |column: String, unexpected: Expr, mostly: f64| Check::Map {
        column,
        unexpected,
        mostly,
        counts: Counts::Present,
    };
    Ok(match e.kind.as_str() {
        "expect_table_row_count_to_be_between" => Check::RowCount(bounds(k)?),
        "expect_table_row_count_to_equal" => {
            let v = number(k, "value")?.ok_or("argument value is required")?;
            Check::RowCount(Range {
                min: Some(v),
                max: Some(v),
                strict_min: false,
                strict_max: false,
            })
        }
        "expect_table_columns_to_match_set" => {
            // A null set is an empty one (GX): every column is unexpected.
            let want = match k.get("column_set") {
                Some(Value::Null) => Vec::new(),
                _ => strings(k, "column_set")?,
            };
            let exact = k
                .get("exact_match")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            let missing: Vec<_> = want.iter().filter(|c| !names.contains(c)).collect();
            let extra: Vec<_> = names.iter().filter(|c| !want.contains(c)).collect();
            Check::Schema {
                success: missing.is_empty() && (!exact || extra.is_empty()),
                observed: format!("columns {names:?}; missing {missing:?}; unexpected {extra:?}"),
            }
        }
        "expect_table_columns_to_match_ordered_list" => {
            // A null list asks nothing (GX passes it).
            let success = match k.get("column_list") {
                Some(Value::Null) => true,
                _ => strings(k, "column_list")? == names,
            };
            Check::Schema {
                success,
                observed: format!("columns {names:?}"),
            }
        }
        "expect_column_to_exist" => {
            let c = text(k, "column")?;
            // With `column_index`, the column must be there at that position.
            let success = match k.get("column_index") {
                None | Some(Value::Null) => names.contains(&c),
                Some(i) => {
                    let i = i.as_u64().ok_or_else(|| {
                        format!("argument column_index must be a position, got {i}")
                    })?;
                    names.get(i as usize) == Some(&c)
                }
            };
            Check::Schema {
                success,
                observed: format!("columns {names:?}"),
            }
        }
        "expect_column_values_to_not_be_null" => {
            let (c, _) = column(k)?;
            Check::Map {
                column: c,
                unexpected: lit(false),
                mostly: mostly(k)?,
                counts: Counts::Nulls,
            }
        }
        "expect_column_values_to_be_null" => {
            let (c, _) = column(k)?;
            Check::Map {
                column: c.clone(),
                unexpected: col(c.as_str()).is_not_null(),
                mostly: mostly(k)?,
                counts: Counts::Values,
            }
        }
        "expect_column_values_to_be_between" => {
            let (c, dtype) = column(k)?;
            numeric(&c, &dtype)?;
            // NaN orders above every number in polars, so it falls outside any max.
            let outside = range(k)?.outside(col(c.as_str()).cast(DataType::Float64));
            map(c, outside, mostly(k)?)
        }
        "expect_column_values_to_be_in_set" => {
            let (c, _) = column(k)?;
            let unexpected = in_set(&c, &values(k, true)?).not();
            map(c, unexpected, mostly(k)?)
        }
        "expect_column_values_to_not_be_in_set" => {
            let (c, _) = column(k)?;
            let unexpected = in_set(&c, &values(k, true)?);
            map(c, unexpected, mostly(k)?)
        }
        "expect_column_values_to_be_unique" => {
            let (c, dtype) = column(k)?;
            Check::Unique {
                column: c,
                mostly: mostly(k)?,
                keyed: dtype == DataType::String || dtype.is_integer(),
            }
        }
        kind @ ("expect_column_values_to_match_regex"
        | "expect_column_values_to_not_match_regex") => {
            let (c, dtype) = column(k)?;
            let pattern = text(k, "regex")?;
            // A column of nulls only (Parquet's null type) has nothing to match.
            if dtype == DataType::Null {
                return Ok(map(c, lit(false), mostly(k)?));
            }
            textual(&c, &dtype)?;
            let matches = col(c.as_str()).str().contains(lit(pattern.as_str()), true);
            let unexpected = if kind.contains("not_match") {
                matches
            } else {
                matches.not()
            };
            map(c, unexpected, mostly(k)?)
        }
        "expect_column_values_to_be_of_type" | "expect_column_values_to_be_in_type_list" => {
            let (c, dtype) = column(k)?;
            let wanted = match (k.get("type_"), k.get("type_list")) {
                (Some(Value::String(t)), _) => Some(vec![t.clone()]),
                // A null type_list asks nothing (GX passes it).
                (_, Some(Value::Null)) if e.kind == "expect_column_values_to_be_in_type_list" => {
                    None
                }
                _ => Some(
                    strings(k, "type_list")
                        .map_err(|_| "argument type_ (or type_list) is required".to_string())?,
                ),
            };
            let success = wanted.is_none_or(|w| w.iter().any(|t| type_matches(&dtype, t)));
            if dtype == DataType::String {
                // Text is checked value by value, as GX checks an object column in pandas:
                // every present value of the wrong type is unexpected.
                map(c, lit(!success), 1.0)
            } else {
                Check::Schema {
                    success,
                    observed: dtype.to_string(),
                }
            }
        }
        "expect_column_value_lengths_to_be_between" => {
            let (c, dtype) = column(k)?;
            textual(&c, &dtype)?;
            let outside =
                range(k)?.outside(col(c.as_str()).str().len_chars().cast(DataType::Float64));
            map(c, outside, mostly(k)?)
        }
        kind @ ("expect_column_min_to_be_between"
        | "expect_column_max_to_be_between"
        | "expect_column_mean_to_be_between"
        | "expect_column_median_to_be_between"
        | "expect_column_stdev_to_be_between"
        | "expect_column_sum_to_be_between") => {
            let (c, dtype) = column(k)?;
            // GX averages booleans as 0 and 1 (the mean of true, false is 0.5).
            if !(kind == "expect_column_mean_to_be_between" && dtype == DataType::Boolean) {
                numeric(&c, &dtype)?;
            }
            let x = col(c.as_str()).cast(DataType::Float64);
            let stat = match kind {
                "expect_column_min_to_be_between" => x.min(),
                "expect_column_max_to_be_between" => x.max(),
                "expect_column_mean_to_be_between" => x.mean(),
                "expect_column_median_to_be_between" => x.median(),
                "expect_column_stdev_to_be_between" => x.std(1),
                _ => x.sum(),
            };
            // GX passes the mean, median and stdev with neither bound given.
            let range = match kind {
                "expect_column_mean_to_be_between"
                | "expect_column_median_to_be_between"
                | "expect_column_stdev_to_be_between" => bounds(k)?,
                _ => range(k)?,
            };
            Check::Stat { stat, range }
        }
        "expect_column_proportion_of_unique_values_to_be_between" => {
            let (c, _) = column(k)?;
            Check::ProportionUnique {
                column: c,
                range: bounds(k)?,
            }
        }
        kind @ ("expect_column_distinct_values_to_be_in_set"
        | "expect_column_distinct_values_to_contain_set"
        | "expect_column_distinct_values_to_equal_set") => {
            let (c, _) = column(k)?;
            let mode = match kind {
                "expect_column_distinct_values_to_be_in_set" => SetMode::Within,
                "expect_column_distinct_values_to_contain_set" => SetMode::Contains,
                _ => SetMode::Equals,
            };
            Check::Distinct {
                column: c,
                set: values(k, false)?,
                mode,
            }
        }
        "expect_column_pair_values_a_to_be_greater_than_b" => {
            let (a, b) = (text(k, "column_A")?, text(k, "column_B")?);
            for c in [&a, &b] {
                if schema.get(c).is_none() {
                    return Err(format!("column {c:?} is not in the dataset"));
                }
            }
            let (x, y) = (col(a.as_str()), col(b.as_str()));
            let ok = if flag(k, "or_equal")? {
                x.clone().gt_eq(y.clone())
            } else {
                x.clone().gt(y.clone())
            };
            // A row counts when both values are present.
            let unexpected = ok.not().and(x.is_not_null()).and(y.is_not_null());
            Check::Map {
                column: a,
                unexpected,
                mostly: mostly(k)?,
                counts: Counts::Present,
            }
        }
        "expect_compound_columns_to_be_unique" => {
            let columns = strings(k, "column_list")?;
            if let Some(c) = columns.iter().find(|c| schema.get(c.as_str()).is_none()) {
                return Err(format!("column {c:?} is not in the dataset"));
            }
            Check::Compound {
                columns,
                mostly: mostly(k)?,
            }
        }
        other => {
            return Err(format!(
                "unknown expectation type {other:?}; supported: {}",
                SUPPORTED.join(", ")
            ));
        }
    })
}

/// The aggregate expressions of check `i`, aliased `e{i}_<what>`.
fn aggregates(i: usize, check: &Check) -> Vec<Expr> {
    let name = |what: &str| format!("e{i}_{what}");
    let count = |e: Expr| e.cast(DataType::Int64).sum();
    match check {
        Check::Schema { .. } | Check::RowCount(_) | Check::Compound { .. } => vec![],
        Check::Map {
            column, unexpected, ..
        } => vec![
            col(column.as_str()).null_count().alias(name("nulls")),
            count(unexpected.clone().and(col(column.as_str()).is_not_null()))
                .alias(name("unexpected")),
        ],
        Check::Stat { stat, .. } => vec![stat.clone().alias(name("stat"))],
        Check::Unique { column, .. } => {
            vec![col(column.as_str()).null_count().alias(name("nulls"))]
        }
        Check::ProportionUnique { column, .. } => vec![
            col(column.as_str())
                .drop_nulls()
                .n_unique()
                .alias(name("distinct")),
            col(column.as_str()).count().alias(name("present")),
        ],
        Check::Distinct { column, set, .. } => {
            let mut v = vec![
                count(
                    in_set(column, set)
                        .not()
                        .and(col(column.as_str()).is_not_null()),
                )
                .alias(name("outside")),
                col(column.as_str())
                    .drop_nulls()
                    .n_unique()
                    .alias(name("distinct")),
            ];
            for (j, value) in set.iter().enumerate() {
                v.push(
                    count(col(column.as_str()).eq(literal(value))).alias(name(&format!("has{j}"))),
                );
            }
            v
        }
    }
}

fn get(df: &DataFrame, name: &str) -> Option<f64> {
    let c = df.column(name).ok()?.cast(&DataType::Float64).ok()?;
    c.f64().ok()?.get(0)
}

fn result_for(e: &Expectation) -> ExpectationResult {
    let column = e
        .kwargs
        .get("column")
        .or_else(|| e.kwargs.get("column_A"))
        .and_then(Value::as_str);
    ExpectationResult {
        expectation_type: e.kind.clone(),
        column: column.unwrap_or_default().to_string(),
        kwargs_json: Value::Object(e.kwargs.clone()).to_string(),
        ..Default::default()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn fill_map(
    r: &mut ExpectationResult,
    rows: u64,
    nulls: u64,
    unexpected: u64,
    mostly: f64,
    counts: Counts,
) {
    let nonmissing = rows.saturating_sub(nulls);
    r.element_count = rows;
    r.missing_count = nulls;
    r.missing_percent = percent(nulls, rows);
    match counts {
        Counts::Nulls => {
            r.unexpected_count = nulls;
            r.unexpected_percent = percent(nulls, rows);
            r.observed_value = format!("{nulls} null of {rows}");
        }
        Counts::Values => {
            r.unexpected_count = nonmissing;
            r.unexpected_percent = percent(nonmissing, rows);
            r.observed_value = format!("{nonmissing} not null of {rows}");
        }
        Counts::Present => {
            r.unexpected_count = unexpected;
            r.unexpected_percent = percent(unexpected, nonmissing);
            r.observed_value = format!("{unexpected} unexpected of {nonmissing} present");
        }
    }
    r.success = r.unexpected_percent / 100.0 <= 1.0 - mostly + 1e-12;
}

/// A value as a report shows it; a long one is cut at [`SHOWN_CHARS`] with its length, so
/// a huge cell cannot swell the report past what a message carries.
fn render(v: &AnyValue) -> String {
    let text = match v {
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    };
    let length = text.chars().count();
    if length <= SHOWN_CHARS {
        return text;
    }
    let head: String = text.chars().take(SHOWN_CHARS).collect();
    format!("{head}… ({length} characters)")
}

/// The longest value a report shows whole.
const SHOWN_CHARS: usize = 200;

/// Up to [`PARTIAL_UNEXPECTED`] values of `column` on rows where `unexpected` holds.
fn sample(lf: &LazyFrame, column: &str, unexpected: Expr) -> Vec<String> {
    let rows = data::collect(
        lf.clone()
            .filter(unexpected.and(col(column).is_not_null()))
            .select([col(column)])
            .limit(PARTIAL_UNEXPECTED as IdxSize),
    );
    match rows {
        Ok(df) => match df.column(column) {
            Ok(c) => (0..c.len())
                .filter_map(|i| c.get(i).ok().map(|v| render(&v)))
                .collect(),
            Err(_) => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}

/// Runs `expectations` over the dataset at `path`. An unreadable or missing file is an
/// error; a problem with one expectation is reported in that expectation's result.
pub fn validate(path: &Path, expectations: &[Expectation]) -> Result<ValidationReport, DataError> {
    let started = std::time::Instant::now();
    let mut results: Vec<ExpectationResult> = expectations.iter().map(result_for).collect();
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        for r in &mut results {
            r.error = format!("the dataset file {} is empty", path.display());
        }
        return Ok(ValidationReport {
            success: false,
            row_count: 0,
            results,
            ..Default::default()
        });
    }
    let (lf, schema) = data::scan(path)?;
    let mut checks: Vec<Option<Check>> = Vec::with_capacity(expectations.len());
    for (e, r) in expectations.iter().zip(results.iter_mut()) {
        match compile(e, &schema) {
            Ok(c) => checks.push(Some(c)),
            Err(msg) => {
                r.error = msg;
                checks.push(None);
            }
        }
    }
    let select = |checks: &[Option<Check>]| -> Vec<Expr> {
        std::iter::once(len().alias("rows"))
            .chain(
                checks
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
                    .flat_map(|(i, c)| aggregates(i, c)),
            )
            .collect()
    };
    // The uniqueness checks read their column in scans of their own, beside the main one.
    let (main, mut uniques) = std::thread::scope(|scope| {
        let uniques: Vec<_> = checks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(Check::Unique { column, keyed, .. }) => {
                    let lf = &lf;
                    Some((
                        i,
                        scope.spawn(move || {
                            if *keyed {
                                duplicates(lf, column)
                            } else {
                                duplicates_by_polars(lf, column)
                            }
                        }),
                    ))
                }
                _ => None,
            })
            .collect();
        let main = data::collect(lf.clone().select(select(&checks)));
        let uniques: BTreeMap<usize, PolarsResult<(u64, Vec<String>)>> = uniques
            .into_iter()
            .map(|(i, handle)| {
                let result = handle.join().unwrap_or_else(|_| {
                    Err(polars_err!(ComputeError: "the uniqueness scan panicked"))
                });
                (i, result)
            })
            .collect();
        (main, uniques)
    });
    let df = match main {
        Ok(df) => df,
        // Bytes that are not text are the file's fault, not one expectation's.
        Err(whole) if whole.to_string().contains("invalid utf-8") => {
            return Err(data::unreadable(path, whole));
        }
        Err(whole) => {
            // Attribute the failure: evaluate each expectation alone, drop the broken ones.
            for (i, c) in checks.iter_mut().enumerate() {
                if let Some(check) = c {
                    let alone = aggregates(i, check);
                    if !alone.is_empty()
                        && let Err(e) = data::collect(lf.clone().select(alone))
                    {
                        results[i].error = format!("cannot evaluate: {e}");
                        *c = None;
                    }
                }
            }
            lf.clone()
                .select(select(&checks))
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
            Check::Schema { success, observed } => {
                r.success = *success;
                r.observed_value = observed.clone();
            }
            Check::RowCount(range) => {
                r.observed_value = rows.to_string();
                r.element_count = rows;
                r.success = range.holds(rows as f64);
            }
            Check::Map {
                column,
                unexpected,
                mostly,
                counts,
            } => {
                let (nulls, bad) = (
                    v("nulls").unwrap_or(0.0) as u64,
                    v("unexpected").unwrap_or(0.0) as u64,
                );
                fill_map(r, rows, nulls, bad, *mostly, *counts);
                if *counts != Counts::Nulls && r.unexpected_count > 0 {
                    r.partial_unexpected_list = sample(&lf, column, unexpected.clone());
                }
            }
            Check::Stat { range, .. } => match v("stat") {
                Some(x) => {
                    r.observed_value = format!("{x}");
                    r.success = range.holds(x);
                }
                None => {
                    r.observed_value = "no values".into();
                    r.success = range.unbounded();
                }
            },
            Check::ProportionUnique { range, .. } => {
                let (distinct, present) =
                    (v("distinct").unwrap_or(0.0), v("present").unwrap_or(0.0));
                let share = if present > 0.0 {
                    distinct / present
                } else {
                    0.0
                };
                r.observed_value = format!("{share}");
                r.element_count = rows;
                r.success = range.holds(share);
            }
            Check::Distinct { set, mode, .. } => {
                let outside = v("outside").unwrap_or(0.0) as u64;
                let absent: Vec<String> = set
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| v(&format!("has{j}")).unwrap_or(0.0) == 0.0)
                    .map(|(_, x)| x.to_string())
                    .collect();
                r.observed_value = format!(
                    "{} distinct values; {outside} rows outside the set; absent from the data: [{}]",
                    v("distinct").unwrap_or(0.0),
                    absent.join(", ")
                );
                r.success = match mode {
                    SetMode::Within => outside == 0,
                    SetMode::Contains => absent.is_empty(),
                    SetMode::Equals => outside == 0 && absent.is_empty(),
                };
            }
            Check::Unique { mostly, .. } => match uniques
                .remove(&i)
                .unwrap_or_else(|| Err(polars_err!(ComputeError: "no uniqueness scan ran")))
            {
                Ok((dup_rows, examples)) => {
                    let nulls = v("nulls").unwrap_or(0.0) as u64;
                    fill_map(r, rows, nulls, dup_rows, *mostly, Counts::Present);
                    r.partial_unexpected_list = examples;
                }
                Err(e) => r.error = format!("cannot evaluate: {e}"),
            },
            Check::Compound { columns, mostly } => match compound_duplicates(&lf, columns) {
                Ok(dup_rows) => {
                    r.column = columns.join(",");
                    fill_map(r, rows, 0, dup_rows, *mostly, Counts::Present);
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
        ..Default::default()
    })
}

/// The report in Great Expectations' validation-result shape (SUMMARY format), so tools
/// that read GX results can read Tollgate's.
pub fn summary_json(report: &ValidationReport, suite_name: &str) -> Value {
    let ok = report.results.iter().filter(|r| r.success).count();
    let n = report.results.len();
    let results: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let kwargs: Value = serde_json::from_str(&r.kwargs_json).unwrap_or(Value::Null);
            serde_json::json!({
                "expectation_config": {"type": r.expectation_type, "kwargs": kwargs},
                "success": r.success,
                "result": {
                    "observed_value": r.observed_value,
                    "element_count": r.element_count,
                    "missing_count": r.missing_count,
                    "missing_percent": r.missing_percent,
                    "unexpected_count": r.unexpected_count,
                    "unexpected_percent": r.unexpected_percent,
                    "partial_unexpected_list": r.partial_unexpected_list,
                },
                "exception_info": {
                    "raised_exception": !r.error.is_empty(),
                    "exception_message": if r.error.is_empty() { Value::Null } else { Value::String(r.error.clone()) },
                },
            })
        })
        .collect();
    serde_json::json!({
        "success": report.success,
        "suite_name": suite_name,
        "statistics": {
            "evaluated_expectations": n,
            "successful_expectations": ok,
            "unsuccessful_expectations": n - ok,
            "success_percent": if n == 0 { 100.0 } else { 100.0 * ok as f64 / n as f64 },
        },
        "results": results,
        "meta": {"row_count": report.row_count, "duration_ms": report.duration_ms, "engine": "tollgate"},
    })
}

/// Rows whose value of `column` appears more than once, and up to [`PARTIAL_UNEXPECTED`]
/// of those values in row order (Great Expectations' `expect_column_values_to_be_unique`).
///
/// Text is keyed by a 64-bit hash and integers by their value. The keys are taken from the
/// scan batch by batch (the column is never held whole) and radix-sorted; when no key
/// repeats, every value is unique. Only when one does is the column read whole and the
/// rows behind repeated keys compared exactly, so a hash collision never counts. At 10M
/// text ids: 1.5 s and 650 MB where polars' `is_duplicated` took 7 s and 950 MB. Only
/// for text and integer columns.
fn duplicates(lf: &LazyFrame, column: &str) -> PolarsResult<(u64, Vec<String>)> {
    let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let sink = keys.clone();
    let name = column.to_string();
    let batches = lf.clone().select([col(column)]).sink_batches(
        PlanCallback::new(move |df: DataFrame| {
            let batch = column_keys(df.column(&name)?.as_materialized_series())?;
            sink.lock()
                .map_err(|_| polars_err!(ComputeError: "a key batch panicked"))?
                .extend(batch.into_iter().flatten());
            Ok(false)
        }),
        false,
        None,
    )?;
    data::collect(batches)?;
    let mut sorted = std::mem::take(
        &mut *keys
            .lock()
            .map_err(|_| polars_err!(ComputeError: "a key batch panicked"))?,
    );
    radsort::sort(&mut sorted);
    let repeated: PlHashSet<u64> = sorted
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() > 1)
        .map(|run| run[0])
        .collect();
    drop(sorted);
    if repeated.is_empty() {
        return Ok((0, Vec::new()));
    }
    // Some key repeats: read the column whole and group the rows behind repeated keys by
    // exact value (an integer's key is its value; text is compared as text).
    let df = data::collect(lf.clone().select([col(column)]))?;
    let values = df.column(column)?.as_materialized_series();
    let text = values.str().ok();
    let mut groups: PlHashMap<(u64, Option<&str>), Vec<usize>> = PlHashMap::default();
    for (row, key) in column_keys(values)?.into_iter().enumerate() {
        if let Some(key) = key
            && repeated.contains(&key)
        {
            let exact = text.and_then(|t| t.get(row));
            groups.entry((key, exact)).or_default().push(row);
        }
    }
    let mut rows: Vec<usize> = groups
        .into_values()
        .filter(|rows| rows.len() > 1)
        .flatten()
        .collect();
    rows.sort_unstable();
    let examples = rows
        .iter()
        .take(PARTIAL_UNEXPECTED)
        .map(|&row| values.get(row).map(|v| render(&v)))
        .collect::<PolarsResult<_>>()?;
    Ok((rows.len() as u64, examples))
}

/// Each row's key for [`duplicates`]: a fixed-seed 64-bit hash of text, an integer's bits;
/// `None` for null.
fn column_keys(values: &Series) -> PolarsResult<Vec<Option<u64>>> {
    use std::hash::BuildHasher;
    if let Ok(text) = values.str() {
        let hasher = PlFixedStateQuality::default();
        return Ok(text.iter().map(|v| v.map(|v| hasher.hash_one(v))).collect());
    }
    // Unsigned integers as u64 and signed as i64, so no value is out of range of its key.
    if values.dtype().is_unsigned_integer() {
        return Ok(values.cast(&DataType::UInt64)?.u64()?.iter().collect());
    }
    Ok(values
        .cast(&DataType::Int64)?
        .i64()?
        .iter()
        .map(|v| v.map(|v| v as u64))
        .collect())
}

/// [`duplicates`] for the types it does not key: polars' `is_duplicated`.
fn duplicates_by_polars(lf: &LazyFrame, column: &str) -> PolarsResult<(u64, Vec<String>)> {
    let unexpected = col(column).is_duplicated();
    let n = data::collect(
        lf.clone().select([unexpected
            .clone()
            .and(col(column).is_not_null())
            .cast(DataType::Int64)
            .sum()
            .alias("n")]),
    )?;
    let n = get(&n, "n").unwrap_or(0.0) as u64;
    let examples = if n > 0 {
        sample(lf, column, unexpected)
    } else {
        Vec::new()
    };
    Ok((n, examples))
}

/// Rows whose combination of `columns` appears more than once.
fn compound_duplicates(lf: &LazyFrame, columns: &[String]) -> PolarsResult<u64> {
    let keys: Vec<Expr> = columns.iter().map(|c| col(c.as_str())).collect();
    let dups = data::collect(
        lf.clone()
            .group_by(keys)
            .agg([len().alias("n")])
            .filter(col("n").gt(lit(1)))
            .select([col("n").cast(DataType::Int64).sum().alias("n")]),
    )?;
    Ok(get(&dups, "n").unwrap_or(0.0) as u64)
}

#[cfg(test)]
mod tests;
