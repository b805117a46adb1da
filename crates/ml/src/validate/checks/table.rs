//! Table-level expectations: row counts, the columns and their order, column counts.

use serde_json::Value;

use crate::validate::{args::*, context::Ctx, model::*};

/// `expect_table_row_count_to_be_between`.
pub(super) fn table_row_count_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok(Check::RowCount(bounds(k, None)?))
}

/// `expect_table_row_count_to_equal`.
pub(super) fn table_row_count_to_equal(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    Ok({
        let v = number(k, "value")?.ok_or("argument value is required")?;
        Check::RowCount(Range {
            min: Some(v),
            max: Some(v),
            strict_min: false,
            strict_max: false,
        })
    })
}

/// `expect_table_columns_to_match_set`.
pub(super) fn table_columns_to_match_set(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let names = cx.names.clone();
    let listed = cx.listed();
    Ok({
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
            json: listed,
        }
    })
}

/// `expect_table_columns_to_match_ordered_list`.
pub(super) fn table_columns_to_match_ordered_list(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let names = cx.names.clone();
    let listed = cx.listed();
    Ok({
        // A null list asks nothing (GX passes it).
        let success = match k.get("column_list") {
            Some(Value::Null) => true,
            _ => strings(k, "column_list")? == names,
        };
        Check::Schema {
            success,
            observed: format!("columns {names:?}"),
            json: listed,
        }
    })
}

/// `expect_column_to_exist`.
pub(super) fn column_to_exist(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let names = cx.names.clone();
    Ok({
        let c = text(k, "column")?;
        // With `column_index`, the column must be there at that position.
        let success = match k.get("column_index") {
            None | Some(Value::Null) => names.contains(&c),
            Some(i) => {
                let i = i
                    .as_u64()
                    .ok_or_else(|| format!("argument column_index must be a position, got {i}"))?;
                names.get(i as usize) == Some(&c)
            }
        };
        Check::Schema {
            success,
            observed: format!("columns {names:?}"),
            json: Value::Null,
        }
    })
}

/// `expect_table_column_count_to_be_between`, `expect_table_column_count_to_equal`.
pub(super) fn table_column_count_to_be_between(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let names = cx.names.clone();
    let kind = cx.e.kind.as_str();
    Ok({
        let integer = |key: &str| -> Result<Option<f64>, String> {
            match k.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) if v.is_i64() || v.is_u64() => Ok(v.as_f64()),
                Some(v) => Err(format!("argument {key} must be an integer, got {v}")),
            }
        };
        let range = if kind.ends_with("_to_equal") {
            let v = integer("value")?.ok_or("argument value is required")?;
            Range {
                min: Some(v),
                max: Some(v),
                strict_min: false,
                strict_max: false,
            }
        } else {
            integer("min_value")?;
            integer("max_value")?;
            bounds(k, None)?
        };
        Check::Schema {
            success: range.holds(names.len() as f64),
            observed: format!("{} columns", names.len()),
            json: Value::from(names.len()),
        }
    })
}
