//! Expectations about a column's values against a set: membership, distinct values, the
//! most common value, unique counts and proportions.

use polars::prelude::*;
use serde_json::Value;

use crate::validate::{args::*, context::Ctx, dates::*, model::*, types::*};

/// `expect_column_values_to_be_in_set`, `expect_column_values_to_not_be_in_set`.
pub(super) fn column_values_to_be_in_set(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let kind = cx.e.kind.as_str();
    Ok({
        let (c, dtype) = cx.column(k)?;
        let (x, dtype) = cx.as_times(col(c.as_str()), &dtype)?;
        let within = in_set(physical_of(x, &dtype), &dtype, &values(k, true)?);
        let unexpected = if kind.contains("not_be_in_set") {
            within
        } else {
            within.not()
        };
        cx.map(c, unexpected, mostly(k)?)
    })
}

/// `expect_column_proportion_of_unique_values_to_be_between`.
pub(super) fn column_proportion_of_unique_values_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, _) = cx.column(k)?;
        Check::ProportionUnique {
            column: c,
            range: bounds(k, None)?,
        }
    })
}

/// `expect_column_distinct_values_to_be_in_set`, `expect_column_distinct_values_to_contain_set`, `expect_column_distinct_values_to_equal_set`.
pub(super) fn column_distinct_values_to_be_in_set(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let kind = cx.e.kind.as_str();
    Ok({
        let (c, dtype) = cx.column(k)?;
        let (mode, set) = match kind {
            // No set is every value (GX passes it).
            "expect_column_distinct_values_to_be_in_set"
                if k.get("value_set").is_none_or(Value::is_null) =>
            {
                (SetMode::Anything, Vec::new())
            }
            "expect_column_distinct_values_to_be_in_set" => (SetMode::Within, values(k, false)?),
            "expect_column_distinct_values_to_contain_set" => {
                (SetMode::Contains, values(k, false)?)
            }
            _ => (SetMode::Equals, values(k, false)?),
        };
        Check::Distinct {
            column: c,
            dtype,
            set,
            mode,
        }
    })
}

/// `expect_column_most_common_value_to_be_in_set`.
pub(super) fn column_most_common_value_to_be_in_set(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, dtype) = cx.column(k)?;
        Check::MostCommon {
            column: c,
            dtype,
            set: values(k, false)?,
            ties_okay: flag(k, "ties_okay")?,
        }
    })
}

/// `expect_column_unique_value_count_to_be_between`.
pub(super) fn column_unique_value_count_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, _) = cx.column(k)?;
        Check::Stat {
            stat: cx
                .source(&c)
                .drop_nulls()
                .n_unique()
                .cast(DataType::Float64),
            range: bounds(k, None)?,
            temporal: None,
        }
    })
}
