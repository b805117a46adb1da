//! An expectation's keyword arguments, read and checked: numbers, flags, texts, value
//! sets, `mostly`, and min/max bounds (dates and relative times among them).

use super::dates::*;
use super::model::*;
use super::params::{Param, evaluate_now};
use polars::prelude::*;
use serde_json::{Map, Value};

pub(super) fn number(k: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match k.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) if o.contains_key("$PARAMETER") => {
            let expression = o["$PARAMETER"].as_str().unwrap_or_default();
            match evaluate_now(expression)? {
                Param::Number(n) => Ok(Some(n)),
                other => Err(format!(
                    "argument {key} is the suite parameter {expression:?}, a {other:?} where a number belongs"
                )),
            }
        }
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("argument {key} must be a number, got {v}")),
    }
}

/// One bound: a number, or for a temporal column (`temporal`) a date or time text or a
/// suite parameter that evaluates to one (`now() - timedelta(weeks=52)`,
/// `datetime(2003, 1, 1)`).
pub(super) fn bound(
    k: &Map<String, Value>,
    key: &str,
    temporal: Option<&DataType>,
) -> Result<Option<f64>, String> {
    match (k.get(key), temporal) {
        (Some(Value::String(s)), Some(dtype)) => physical(s, dtype).map(|v| Some(v as f64)),
        (Some(Value::Object(o)), Some(dtype)) if o.contains_key("$PARAMETER") => {
            let expression = o["$PARAMETER"].as_str().unwrap_or_default();
            let Param::Time(micros) = evaluate_now(expression)? else {
                return Err(format!(
                    "argument {key} is the suite parameter {expression:?}, which is not a date or time"
                ));
            };
            let when = chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| format!("{expression:?} is out of range"))?;
            physical(&when.naive_utc().to_string(), dtype).map(|v| Some(v as f64))
        }
        (Some(v), Some(dtype)) if v.is_number() => Err(format!(
            "argument {key} must be a date or time (ISO 8601) for a {dtype} column, got {v}"
        )),
        _ => number(k, key),
    }
}

pub(super) fn flag(k: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match k.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("argument {key} must be true or false, got {v}")),
    }
}

pub(super) fn text(k: &Map<String, Value>, key: &str) -> Result<String, String> {
    k.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("argument {key} is required"))
}

pub(super) fn strings(k: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
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
pub(super) fn values(k: &Map<String, Value>, empty_ok: bool) -> Result<Vec<Value>, String> {
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

pub(super) fn mostly(k: &Map<String, Value>) -> Result<f64, String> {
    let m = number(k, "mostly")?.unwrap_or(1.0);
    if (0.0..=1.0).contains(&m) {
        Ok(m)
    } else {
        Err(format!("argument mostly must be between 0 and 1, got {m}"))
    }
}

/// `min_value` / `max_value` (either may be null: unbounded on that side), as given.
pub(super) fn bounds_as_given(
    k: &Map<String, Value>,
    temporal: Option<&DataType>,
) -> Result<Range, String> {
    Ok(Range {
        min: bound(k, "min_value", temporal)?,
        max: bound(k, "max_value", temporal)?,
        strict_min: flag(k, "strict_min")?,
        strict_max: flag(k, "strict_max")?,
    })
}

/// [`bounds_as_given`], refused when the minimum is above the maximum, as Great
/// Expectations refuses it.
pub(super) fn bounds(k: &Map<String, Value>, temporal: Option<&DataType>) -> Result<Range, String> {
    let r = bounds_as_given(k, temporal)?;
    if let (Some(min), Some(max)) = (r.min, r.max)
        && min > max
    {
        return Err(format!(
            "min_value ({}) must not be greater than max_value ({})",
            k["min_value"], k["max_value"]
        ));
    }
    Ok(r)
}

/// [`bounds`] with at least one side given.
pub(super) fn range(k: &Map<String, Value>, temporal: Option<&DataType>) -> Result<Range, String> {
    let r = bounds(k, temporal)?;
    if r.unbounded() {
        return Err("give min_value, max_value or both".into());
    }
    Ok(r)
}
