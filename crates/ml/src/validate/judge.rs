//! From the scan's aggregates to each expectation's result: whether it holds, what was
//! observed, and the examples and details Great Expectations reports.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde_json::Value;
use tollgate_proto::ExpectationResult;

use super::{dates::*, duplicates::*, kl, model::*, results::*, types::*};

/// What the results are judged from: the main scan's aggregates, the row count, the scan
/// itself (for the follow-up queries) and the uniqueness scans' outcomes by expectation.
pub(super) struct Scanned<'a> {
    /// The main scan's one row of aggregates.
    pub(super) df: &'a DataFrame,
    /// The dataset's rows.
    pub(super) rows: u64,
    /// The dataset.
    pub(super) lf: &'a LazyFrame,
    /// The uniqueness scans, by expectation index.
    pub(super) uniques: BTreeMap<usize, PolarsResult<(u64, Vec<String>)>>,
}

/// Fills `r`, the result of expectation `i` compiled as `compiled`, from `scanned`.
pub(super) fn judge(
    i: usize,
    compiled: &Compiled,
    r: &mut ExpectationResult,
    scanned: &mut Scanned,
) {
    let df = scanned.df;
    let lf = scanned.lf;
    let v = |what: &str| get(df, &format!("e{i}_{what}"));
    // The rows in the expectation's domain: all of them without a row_condition.
    let rows = v("rows").map_or(scanned.rows, |n| n as u64);
    match &compiled.check {
        Check::Schema {
            success,
            observed,
            json,
        } => {
            r.success = *success;
            observe(r, observed.clone(), json.clone());
        }
        Check::RowCount(range) => {
            observe(r, rows.to_string(), Value::from(rows));
            r.element_count = rows;
            r.success = range.holds(rows as f64);
        }
        Check::Map {
            column,
            unexpected,
            present,
            mostly,
            counts,
        } => {
            let (nulls, bad) = (
                v("nulls").unwrap_or(0.0) as u64,
                v("unexpected").unwrap_or(0.0) as u64,
            );
            fill_map(r, rows, nulls, bad, *mostly, *counts);
            if *counts != Counts::Nulls && r.unexpected_count > 0 {
                r.partial_unexpected_list = sample(
                    lf,
                    column,
                    compiled.within(unexpected.clone().and(counted(column, present))),
                );
            }
        }
        Check::Stat {
            range, temporal, ..
        } => match v("stat").filter(|x| !x.is_nan() || temporal.is_none()) {
            Some(x) => {
                match temporal.as_ref().and_then(|t| iso(x as i64, t)) {
                    Some(when) => observe(r, when.clone(), Value::String(when)),
                    None => observe(r, format!("{x}"), json_number(x)),
                }
                r.success = range.holds(x);
            }
            None => {
                observe(r, "no values".into(), Value::Null);
                r.success = range.unbounded();
            }
        },
        Check::Stats {
            ranges, quantiles, ..
        } => {
            let values: Vec<Option<f64>> = (0..ranges.len())
                .map(|j| v(&format!("stat{j}")).filter(|x| !x.is_nan()))
                .collect();
            r.success = values
                .iter()
                .zip(ranges)
                .all(|(x, range)| x.is_some_and(|x| range.holds(x)) || range.unbounded());
            let shown: Vec<String> = values
                .iter()
                .map(|x| x.map_or("none".into(), |x| x.to_string()))
                .collect();
            observe(
                r,
                format!("quantiles {quantiles:?}: [{}]", shown.join(", ")),
                serde_json::json!({
                    "quantiles": quantiles,
                    "values": values.iter().map(|x| x.map_or(Value::Null, json_number)).collect::<Vec<_>>(),
                }),
            );
        }
        Check::Kl { column, settings } => kl_result(r, compiled, column, settings, lf, rows, &v),
        Check::MostCommon {
            column,
            dtype,
            set,
            ties_okay,
        } => most_common_result(r, compiled, (column, dtype, set, *ties_okay), lf, rows, &v),
        Check::ProportionUnique { range, .. } => {
            let (distinct, present) = (v("distinct").unwrap_or(0.0), v("present").unwrap_or(0.0));
            let share = if present > 0.0 {
                distinct / present
            } else {
                0.0
            };
            observe(r, format!("{share}"), json_number(share));
            r.element_count = rows;
            r.success = range.holds(share);
        }
        Check::Distinct {
            column,
            dtype,
            set,
            mode,
        } => distinct_result(r, compiled, column, dtype, set, *mode, lf),
        Check::Unique { mostly, .. } => match scanned
            .uniques
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
        Check::Compound { columns, mostly } => {
            match compound_duplicates(&compiled.rows(lf), columns) {
                Ok(dup_rows) => {
                    r.column = columns.join(",");
                    fill_map(r, rows, 0, dup_rows, *mostly, Counts::Present);
                }
                Err(e) => r.error = format!("cannot evaluate: {e}"),
            }
        }
    }
}

/// A KL-divergence check's result: its partition's counts from the scan (continuous) or
/// from value counts (categorical, or its own partition when none is given).
fn kl_result(
    r: &mut ExpectationResult,
    compiled: &Compiled,
    column: &str,
    settings: &kl::Settings,
    lf: &LazyFrame,
    rows: u64,
    v: &dyn Fn(&str) -> Option<f64>,
) {
    let nonnull = v("nonnull").unwrap_or(0.0) as u64;
    let outcome = match &settings.partition {
        Some(kl::Partition::Continuous {
            bins,
            weights,
            tail_weights,
        }) => {
            let counts = kl::Counts {
                histogram: (0..weights.len())
                    .map(|j| v(&format!("h{j}")).unwrap_or(0.0) as u64)
                    .collect(),
                below: v("below").unwrap_or(0.0) as u64,
                above: v("above").unwrap_or(0.0) as u64,
                nonnull,
            };
            Ok(kl::continuous(
                bins,
                weights,
                *tail_weights,
                &counts,
                settings.tail_weight_holdout,
                settings.internal_weight_holdout,
            ))
        }
        Some(kl::Partition::Categorical { values, weights }) => {
            value_counts(&compiled.rows(lf), column).map(|counts| {
                kl::categorical(
                    values,
                    weights,
                    &counts,
                    nonnull,
                    settings.tail_weight_holdout,
                )
            })
        }
        None => own_partition(&compiled.rows(lf), column, settings.bucketize_data),
    };
    match outcome {
        Ok(outcome) => {
            let (success, observed) = kl::verdict(outcome.divergence, settings.threshold);
            r.success = success;
            r.element_count = rows;
            r.details_json = outcome.details.to_string();
            observe(r, format!("{}", outcome.divergence), observed);
        }
        Err(e) => r.error = format!("cannot evaluate: {e}"),
    }
}

/// A distinct-values check's result, judged from the column's value counts.
fn distinct_result(
    r: &mut ExpectationResult,
    compiled: &Compiled,
    column: &str,
    dtype: &DataType,
    set: &[Value],
    mode: SetMode,
    lf: &LazyFrame,
) {
    let counts = match value_counts(&compiled.rows(lf), column) {
        Ok(counts) => counts,
        Err(e) => {
            r.error = format!("cannot evaluate: {e}");
            return;
        }
    };
    let values: Vec<Value> = counts.iter().map(|(v, _)| v.clone()).collect();
    r.details_json = serde_json::json!({
        "value_counts": counts
            .iter()
            .map(|(value, count)| serde_json::json!({"value": value, "count": count}))
            .collect::<Vec<_>>(),
    })
    .to_string();
    let wanted = members(set, dtype);
    let outside: u64 = counts
        .iter()
        .filter(|(value, _)| !wanted.iter().any(|w| same_value(value, w)))
        .map(|(_, n)| n)
        .sum();
    let absent: Vec<String> = set
        .iter()
        .zip(&wanted)
        .filter(|(_, w)| !values.iter().any(|value| same_value(value, w)))
        .map(|(x, _)| x.to_string())
        .collect();
    let text = format!(
        "{} distinct values; {outside} rows outside the set; absent from the data: [{}]",
        values.len(),
        absent.join(", ")
    );
    observe(r, text, Value::Array(values));
    r.success = match mode {
        SetMode::Anything => true,
        SetMode::Within => outside == 0,
        SetMode::Contains => absent.is_empty(),
        SetMode::Equals => outside == 0 && absent.is_empty(),
    };
}

/// A most-common-value check's result: the modes (found by a group-by) within the set.
fn most_common_result(
    r: &mut ExpectationResult,
    compiled: &Compiled,
    (column, dtype, set, ties_okay): (&str, &DataType, &[Value], bool),
    lf: &LazyFrame,
    rows: u64,
    v: &dyn Fn(&str) -> Option<f64>,
) {
    match most_common(&compiled.rows(lf), column) {
        Ok(modes) => {
            let wanted = members(set, dtype);
            let hits = modes
                .iter()
                .filter(|m| wanted.iter().any(|w| same_value(m, w)))
                .count();
            // GX: with ties_okay one of the tied values suffices; without, there
            // must be one most common value, in the set.
            r.success = if ties_okay {
                hits > 0
            } else {
                modes.len() == 1 && hits == 1
            };
            r.element_count = rows;
            let nulls = v("nulls").unwrap_or(0.0) as u64;
            r.missing_count = nulls;
            r.missing_percent = percent(nulls, rows);
            let text = modes.iter().map(Value::to_string).collect::<Vec<_>>();
            observe(r, format!("[{}]", text.join(", ")), Value::Array(modes));
        }
        Err(e) => r.error = format!("cannot evaluate: {e}"),
    }
}
