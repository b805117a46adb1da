//! Text expectations: regular expressions, value lengths, strftime formats, dates that
//! parse, JSON and JSON Schema.

use polars::prelude::*;
use serde_json::Value;

use crate::validate::{args::*, context::Ctx, dates::*, model::*, types::*};

/// `expect_column_values_to_match_regex`, `expect_column_values_to_not_match_regex`.
pub(super) fn column_values_to_match_regex(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let kind = cx.e.kind.as_str();
    Ok({
        let (c, dtype) = cx.column(k)?;
        let pattern = text(k, "regex")?;
        // A column of nulls only (Parquet's null type) has nothing to match.
        if dtype == DataType::Null {
            return Ok(cx.map(c, lit(false), mostly(k)?));
        }
        cx.textual(&c, &dtype)?;
        let matches = col(c.as_str()).str().contains(lit(pattern.as_str()), true);
        let unexpected = if kind.contains("not_match") {
            matches
        } else {
            matches.not()
        };
        cx.map(c, unexpected, mostly(k)?)
    })
}

/// `expect_column_value_lengths_to_be_between`.
pub(super) fn column_value_lengths_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let (c, dtype) = cx.column(k)?;
        cx.textual(&c, &dtype)?;
        // Crossed bounds are no error here (GX): no length is in the range.
        let r = bounds_as_given(k, None)?;
        if r.unbounded() {
            return Err("give min_value, max_value or both".into());
        }
        let outside = r.outside(col(c.as_str()).str().len_chars().cast(DataType::Float64));
        cx.map(c, outside, mostly(k)?)
    })
}

/// `expect_column_value_lengths_to_equal`: every text is `value` characters long.
pub(super) fn column_value_lengths_to_equal(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let (c, dtype) = cx.column(k)?;
    cx.textual(&c, &dtype)?;
    let Some(length) = number(k, "value")? else {
        return Err("argument value (the length) is required".into());
    };
    if length < 0.0 || length.fract() != 0.0 {
        return Err(format!(
            "argument value must be a whole length, got {length}"
        ));
    }
    let unexpected = col(c.as_str())
        .str()
        .len_chars()
        .cast(DataType::Float64)
        .neq(lit(length));
    Ok(cx.map(c, unexpected, mostly(k)?))
}

/// `expect_column_values_to_match_regex_list`, `expect_column_values_to_not_match_regex_list`.
pub(super) fn column_values_to_match_regex_list(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let kind = cx.e.kind.as_str();
    Ok({
        let (c, dtype) = cx.column(k)?;
        let patterns = strings(k, "regex_list")?;
        if patterns.is_empty() {
            return Err("argument regex_list must not be empty".into());
        }
        if dtype == DataType::Null {
            return Ok(cx.map(c, lit(false), mostly(k)?));
        }
        cx.textual(&c, &dtype)?;
        let matches: Vec<Expr> = patterns
            .iter()
            .map(|p| col(c.as_str()).str().contains(lit(p.as_str()), true))
            .collect();
        let any = matches
            .iter()
            .cloned()
            .reduce(Expr::or)
            .unwrap_or(lit(false));
        let unexpected = if kind.contains("not_match") {
            any
        } else {
            match k.get("match_on").and_then(Value::as_str).unwrap_or("any") {
                "any" => any.not(),
                "all" => matches
                    .into_iter()
                    .reduce(Expr::and)
                    .unwrap_or(lit(true))
                    .not(),
                other => return Err(format!("match_on must be any or all, got {other:?}")),
            }
        };
        cx.map(c, unexpected, mostly(k)?)
    })
}

/// `expect_column_values_to_match_strftime_format`, `expect_column_values_to_be_dateutil_parseable`, `expect_column_values_to_be_json_parseable`, `expect_column_values_to_match_json_schema`.
pub(super) fn column_values_to_match_strftime_format(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let kind = cx.e.kind.as_str();
    Ok({
        let (c, dtype) = cx.column(k)?;
        let json = matches!(
            kind,
            "expect_column_values_to_be_json_parseable"
                | "expect_column_values_to_match_json_schema"
        );
        match dtype {
            DataType::String => {}
            DataType::Null => return Ok(cx.map(c, lit(false), mostly(k)?)),
            // GX hands each value to json.loads, which takes only text.
            _ if json => return Ok(cx.map(c, lit(true), mostly(k)?)),
            _ => {
                return Err(format!(
                    "values passed to {kind} must be of type string; column {c:?} is {dtype}"
                ));
            }
        }
        let fails: Box<dyn Fn(&str) -> bool + Send + Sync> = match kind {
            "expect_column_values_to_match_strftime_format" => {
                let format = text(k, "strftime_format")?;
                strftime_usable(&format)?;
                Box::new(move |v| !strftime_matches(v, &format))
            }
            "expect_column_values_to_be_dateutil_parseable" => {
                Box::new(|v| dtparse::parse(v).is_err())
            }
            "expect_column_values_to_be_json_parseable" => {
                Box::new(|v| serde_json::from_str::<serde::de::IgnoredAny>(v).is_err())
            }
            _ => {
                let schema = k
                    .get("json_schema")
                    .ok_or("argument json_schema is required")?;
                let validator = jsonschema::validator_for(schema)
                    .map_err(|e| format!("json_schema is not a valid schema: {e}"))?;
                Box::new(move |v| {
                    serde_json::from_str::<Value>(v).map_or(true, |v| !validator.is_valid(&v))
                })
            }
        };
        cx.map(c.clone(), rejected(&c, fails), mostly(k)?)
    })
}
