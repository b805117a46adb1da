//! From the scan's aggregates to Great Expectations' results: counts and percents,
//! the observed values, examples of unexpected values, and the SUMMARY document.

use super::kl;
use super::model::*;
use crate::data;
use polars::prelude::*;
use serde_json::Value;
use tollgate_proto::{ExpectationResult, ValidationReport};
use tollgate_spec::Expectation;

/// Unexpected values kept per expectation, as Great Expectations' SUMMARY does.
pub const PARTIAL_UNEXPECTED: usize = 20;

/// The rows a per-row check counts: `present`, or where `column` is not null.
pub(super) fn counted(column: &str, present: &Option<Expr>) -> Expr {
    present.clone().unwrap_or_else(|| col(column).is_not_null())
}

/// The aggregate expressions of expectation `i`, aliased `e{i}_<what>`. Under a
/// `row_condition` each counts the rows of its domain only (`e{i}_rows`).
pub(super) fn aggregates(i: usize, compiled: &Compiled) -> Vec<Expr> {
    let name = |what: &str| format!("e{i}_{what}");
    let count = |e: Expr| e.cast(DataType::Int64).sum();
    let mut v = match &compiled.check {
        // The distinct values are judged from their value counts, taken after the scan.
        Check::Schema { .. }
        | Check::RowCount(_)
        | Check::Compound { .. }
        | Check::Distinct { .. } => vec![],
        Check::Map {
            column,
            unexpected,
            present,
            ..
        } => {
            // Over every row of one column, polars' null count reads the validity bitmaps.
            let missing = match (present, &compiled.domain) {
                (None, None) => col(column.as_str()).null_count(),
                _ => count(compiled.within(counted(column, present).not())),
            };
            vec![
                missing.alias(name("nulls")),
                count(compiled.within(unexpected.clone().and(counted(column, present))))
                    .alias(name("unexpected")),
            ]
        }
        Check::Stat { stat, .. } => vec![stat.clone().alias(name("stat"))],
        Check::Stats { stats, .. } => stats
            .iter()
            .enumerate()
            .map(|(j, s)| s.clone().alias(name(&format!("stat{j}"))))
            .collect(),
        Check::MostCommon { column, .. } => {
            vec![count(compiled.within(col(column.as_str()).is_null())).alias(name("nulls"))]
        }
        Check::Kl { column, settings } => {
            let x = col(column.as_str()).cast(DataType::Float64);
            let present = || compiled.within(col(column.as_str()).is_not_null());
            let mut v = vec![count(present()).alias(name("nonnull"))];
            if let Some(kl::Partition::Continuous { bins, .. }) = &settings.partition {
                let (first, last) = (bins[0], bins[bins.len() - 1]);
                v.push(count(present().and(x.clone().lt(lit(first)))).alias(name("below")));
                v.push(count(present().and(x.clone().gt(lit(last)))).alias(name("above")));
                for (j, pair) in bins.windows(2).enumerate() {
                    // Each bin holds its left edge; the last also its right (numpy).
                    let upper = if j + 2 == bins.len() {
                        x.clone().lt_eq(lit(pair[1]))
                    } else {
                        x.clone().lt(lit(pair[1]))
                    };
                    v.push(
                        count(present().and(x.clone().gt_eq(lit(pair[0]))).and(upper))
                            .alias(name(&format!("h{j}"))),
                    );
                }
            }
            v
        }
        Check::Unique { column, .. } => match &compiled.domain {
            None => vec![col(column.as_str()).null_count().alias(name("nulls"))],
            Some(_) => {
                vec![count(compiled.within(col(column.as_str()).is_null())).alias(name("nulls"))]
            }
        },
        Check::ProportionUnique { column, .. } => vec![
            compiled
                .source(column)
                .drop_nulls()
                .n_unique()
                .alias(name("distinct")),
            compiled.source(column).count().alias(name("present")),
        ],
    };
    if let Some(d) = &compiled.domain
        && !v.is_empty()
    {
        v.push(count(d.clone()).alias(name("rows")));
    }
    v
}

pub(super) fn get(df: &DataFrame, name: &str) -> Option<f64> {
    let c = df.column(name).ok()?.cast(&DataType::Float64).ok()?;
    c.f64().ok()?.get(0)
}

pub(super) fn result_for(e: &Expectation) -> ExpectationResult {
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

pub(super) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

pub(super) fn fill_map(
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
    // GX reports no observed value for a row-by-row check, only the counts.
    r.observed_json = Value::Null.to_string();
}

/// Sets the observed value: `text` for people, `json` as GX types it.
pub(super) fn observe(r: &mut ExpectationResult, text: String, json: Value) {
    r.observed_value = text;
    r.observed_json = json.to_string();
}

/// A value as a report shows it; a long one is cut at [`SHOWN_CHARS`] with its length, so
/// a huge cell cannot swell the report past what a message carries.
pub(super) fn render(v: &AnyValue) -> String {
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
pub(super) const SHOWN_CHARS: usize = 200;

/// Up to [`PARTIAL_UNEXPECTED`] values of `column` on rows where `unexpected` holds.
pub(super) fn sample(lf: &LazyFrame, column: &str, unexpected: Expr) -> Vec<String> {
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
            // GX's typed value; a report kept before it was recorded has the text only.
            let observed = match serde_json::from_str(&r.observed_json) {
                Ok(typed) => typed,
                Err(_) if r.observed_value.is_empty() => Value::Null,
                Err(_) => Value::String(r.observed_value.clone()),
            };
            serde_json::json!({
                "expectation_config": {"type": r.expectation_type, "kwargs": kwargs},
                "success": r.success,
                "result": {
                    "observed_value": observed,
                    "element_count": r.element_count,
                    "missing_count": r.missing_count,
                    "missing_percent": r.missing_percent,
                    "unexpected_count": r.unexpected_count,
                    "unexpected_percent": r.unexpected_percent,
                    "partial_unexpected_list": r.partial_unexpected_list,
                    "details": serde_json::from_str::<Value>(&r.details_json).unwrap_or(Value::Null),
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
