//! Aggregate expectations: min, max, mean, median, stdev and sum, quantiles and the KL
//! divergence from a partition.

use polars::prelude::*;
use serde_json::Value;

use crate::validate::{args::*, context::Ctx, dates::*, kl, model::*};

/// `expect_column_min_to_be_between`, `expect_column_max_to_be_between`, `expect_column_mean_to_be_between`, `expect_column_median_to_be_between`, `expect_column_stdev_to_be_between`, `expect_column_sum_to_be_between`.
pub(super) fn column_min_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let kind = cx.e.kind.as_str();
    Ok({
        let (c, dtype) = cx.column(k)?;
        let (x, dtype) = cx.as_times(cx.source(&c), &dtype)?;
        let extreme = matches!(
            kind,
            "expect_column_min_to_be_between" | "expect_column_max_to_be_between"
        );
        // Dates and times have a min and a max; GX averages booleans as 0 and 1 (the
        // mean of true, false is 0.5).
        let temporal = if extreme {
            cx.ordered(&c, &dtype)?
        } else {
            if !(kind == "expect_column_mean_to_be_between" && dtype == DataType::Boolean) {
                cx.numeric(&c, &dtype)?;
            }
            None
        };
        let x = physical_of(x, &dtype).cast(DataType::Float64);
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
            | "expect_column_stdev_to_be_between" => bounds(k, None)?,
            _ => range(k, temporal.as_ref())?,
        };
        Check::Stat {
            stat,
            range,
            temporal,
        }
    })
}

/// `expect_column_value_z_scores_to_be_less_than`.
pub(super) fn column_value_z_scores_to_be_less_than(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, dtype) = cx.column(k)?;
        cx.numeric(&c, &dtype)?;
        let threshold = number(k, "threshold")?.ok_or("argument threshold is required")?;
        let x = col(c.as_str()).cast(DataType::Float64);
        let whole = cx.source(&c).cast(DataType::Float64);
        let z = (x - whole.clone().mean()) / whole.std(1);
        let under = if flag(k, "double_sided")? {
            z.clone().lt(lit(threshold)).and(z.gt(lit(-threshold)))
        } else {
            z.lt(lit(threshold))
        };
        cx.map(c, under.not().fill_null(lit(true)), mostly(k)?)
    })
}

/// `expect_column_quantile_values_to_be_between`.
pub(super) fn column_quantile_values_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, dtype) = cx.column(k)?;
        cx.numeric(&c, &dtype)?;
        let q = k
            .get("quantile_ranges")
            .and_then(Value::as_object)
            .ok_or("argument quantile_ranges must hold quantiles and value_ranges")?;
        let quantiles: Vec<f64> = q
            .get("quantiles")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let ranges: Vec<Range> = q
            .get("value_ranges")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .map(|pair| {
                        let side = |i: usize| pair.get(i).and_then(Value::as_f64);
                        Range {
                            min: side(0),
                            max: side(1),
                            strict_min: false,
                            strict_max: false,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        if quantiles.is_empty() || quantiles.len() != ranges.len() {
            return Err("quantile_ranges needs one value range per quantile".into());
        }
        if let Some(bad) = ranges
            .iter()
            .find(|r| matches!((r.min, r.max), (Some(a), Some(b)) if a > b))
        {
            return Err(format!(
                "a value range's min ({:?}) is greater than its max ({:?})",
                bad.min, bad.max
            ));
        }
        let x = cx.source(&c).cast(DataType::Float64);
        Check::Stats {
            stats: quantiles
                .iter()
                .map(|&p| x.clone().quantile(lit(p), QuantileMethod::Nearest))
                .collect(),
            ranges,
            quantiles,
        }
    })
}

/// `expect_column_kl_divergence_to_be_less_than`.
pub(super) fn column_kl_divergence_to_be_less_than(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, dtype) = cx.column(k)?;
        let settings = kl::settings(k)?;
        if matches!(settings.partition, Some(kl::Partition::Continuous { .. }))
            || (settings.partition.is_none() && settings.bucketize_data)
        {
            cx.numeric(&c, &dtype)?;
        }
        Check::Kl {
            column: c,
            settings,
        }
    })
}
