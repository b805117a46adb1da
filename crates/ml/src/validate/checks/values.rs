//! Per-value expectations on one column: nulls, ranges, uniqueness, types, order and
//! z-scores.

use polars::prelude::*;
use serde_json::Value;

use crate::validate::{args::*, context::Ctx, dates::*, model::*, types::*};

/// `expect_column_values_to_not_be_null`.
pub(super) fn column_values_to_not_be_null(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, _) = cx.column(k)?;
        Check::Map {
            column: c,
            unexpected: lit(false),
            present: None,
            mostly: mostly(k)?,
            counts: Counts::Nulls,
        }
    })
}

/// `expect_column_values_to_be_null`.
pub(super) fn column_values_to_be_null(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, _) = cx.column(k)?;
        Check::Map {
            column: c.clone(),
            unexpected: col(c.as_str()).is_not_null(),
            present: None,
            mostly: mostly(k)?,
            counts: Counts::Values,
        }
    })
}

/// `expect_column_values_to_be_between`.
pub(super) fn column_values_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, dtype) = cx.column(k)?;
        let (x, dtype) = cx.as_times(col(c.as_str()), &dtype)?;
        let temporal = cx.ordered(&c, &dtype)?;
        // NaN orders above every number in polars, so it falls outside any max; text
        // that does not read as a date is outside too.
        let outside = range(k, temporal.as_ref())?
            .outside(physical_of(x, &dtype).cast(DataType::Float64))
            .fill_null(lit(true));
        cx.map(c, outside, mostly(k)?)
    })
}

/// `expect_column_values_to_be_unique`.
pub(super) fn column_values_to_be_unique(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, dtype) = cx.column(k)?;
        Check::Unique {
            column: c,
            mostly: mostly(k)?,
            keyed: dtype == DataType::String || dtype.is_integer(),
        }
    })
}

/// `expect_column_values_to_be_of_type`, `expect_column_values_to_be_in_type_list`.
pub(super) fn column_values_to_be_of_type(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let e = cx.e;
    Ok({
        let (c, dtype) = cx.column(k)?;
        let wanted = match (k.get("type_"), k.get("type_list")) {
            (Some(Value::String(t)), _) => Some(vec![t.clone()]),
            // A null type_list asks nothing (GX passes it).
            (_, Some(Value::Null)) if e.kind == "expect_column_values_to_be_in_type_list" => None,
            _ => Some(
                strings(k, "type_list")
                    .map_err(|_| "argument type_ (or type_list) is required".to_string())?,
            ),
        };
        let success = wanted
            .as_ref()
            .is_none_or(|w| w.iter().any(|t| type_matches(&dtype, t)));
        // pandas keeps text in object columns: asked for `object`, GX compares the
        // column's type; asked for another type, it checks value by value, and every
        // present value of the wrong type is unexpected.
        let object = wanted.as_ref().is_some_and(|w| {
            w.iter()
                .any(|t| matches!(t.to_ascii_lowercase().as_str(), "object" | "object_" | "o"))
        });
        if dtype == DataType::String && wanted.is_some() && !object {
            cx.map(c, lit(!success), 1.0)
        } else {
            Check::Schema {
                success,
                observed: pandas_type(&dtype),
                json: Value::String(pandas_type(&dtype)),
            }
        }
    })
}

/// `expect_column_values_to_be_increasing`, `expect_column_values_to_be_decreasing`.
pub(super) fn column_values_to_be_increasing(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let kind = cx.e.kind.as_str();
    Ok({
        let (c, dtype) = cx.column(k)?;
        if !(dtype.is_primitive_numeric()
            || dtype.is_temporal()
            || matches!(dtype, DataType::String | DataType::Null))
        {
            return Err(format!("column {c:?} is {dtype}, which has no order"));
        }
        // Each value against the last present one before it; the first has none.
        let x = subject(&c, &dtype);
        let previous = x
            .clone()
            .shift(lit(1))
            .fill_null_with_strategy(FillNullStrategy::Forward(None));
        let strictly = flag(k, "strictly")?;
        let unexpected = match (kind.ends_with("increasing"), strictly) {
            (true, false) => x.lt(previous),
            (true, true) => x.lt_eq(previous),
            (false, false) => x.gt(previous),
            (false, true) => x.gt_eq(previous),
        };
        cx.map(c, unexpected.fill_null(lit(false)), mostly(k)?)
    })
}
