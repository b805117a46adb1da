//! Expectations across columns: pairs of columns, sums over columns, values unique within
//! a record and compound-column uniqueness.

use polars::prelude::*;
use serde_json::Value;

use crate::validate::{args::*, context::Ctx, model::*, types::*};

/// `expect_column_pair_values_a_to_be_greater_than_b`.
pub(super) fn column_pair_values_a_to_be_greater_than_b(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let schema = cx.schema;
    Ok({
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
            present: None,
            mostly: mostly(k)?,
            counts: Counts::Present,
        }
    })
}

/// `expect_column_pair_values_to_be_equal`, `expect_column_pair_values_to_be_in_set`.
pub(super) fn column_pair_values_to_be_equal(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let schema = cx.schema;
    let kind = cx.e.kind.as_str();
    Ok({
        let (a, b) = (text(k, "column_A")?, text(k, "column_B")?);
        let (ta, tb) = (
            schema
                .get(&a)
                .ok_or(format!("column {a:?} is not in the dataset"))?,
            schema
                .get(&b)
                .ok_or(format!("column {b:?} is not in the dataset"))?,
        );
        let (x, y) = (col(a.as_str()), col(b.as_str()));
        let present = match k
            .get("ignore_row_if")
            .and_then(Value::as_str)
            .unwrap_or("both_values_are_missing")
        {
            "both_values_are_missing" => x.clone().is_not_null().or(y.clone().is_not_null()),
            "either_value_is_missing" => x.clone().is_not_null().and(y.clone().is_not_null()),
            "neither" => x.clone().is_null().or(x.clone().is_not_null()),
            other => {
                return Err(format!(
                    "ignore_row_if must be both_values_are_missing, either_value_is_missing or neither, got {other:?}"
                ));
            }
        };
        let unexpected = if kind.ends_with("to_be_equal") {
            let number_and_text = |n: &DataType, t: &DataType| {
                n.is_primitive_numeric() && matches!(t, DataType::String)
            };
            if comparable(ta, tb) {
                x.neq_missing(y)
            } else if number_and_text(ta, tb) || number_and_text(tb, ta) {
                // Each value by its own type: a text that reads as a number (a pandas
                // column of numbers and words arrives as text) equals that number; a
                // word never does.
                x.cast(DataType::Float64)
                    .neq_missing(y.cast(DataType::Float64))
            } else {
                // pandas: a number never equals a text.
                present.clone()
            }
        } else {
            let pairs = k
                .get("value_pairs_set")
                .and_then(Value::as_array)
                .ok_or("argument value_pairs_set must be a list of pairs")?;
            pairs
                .iter()
                .map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([p, q]) => Ok(x
                        .clone()
                        .eq_missing(literal(p, ta))
                        .and(y.clone().eq_missing(literal(q, tb)))),
                    _ => Err(format!("value_pairs_set holds pairs, not {pair}")),
                })
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .reduce(Expr::or)
                .unwrap_or(lit(false))
                .fill_null(lit(false))
                .not()
        };
        Check::Map {
            column: a,
            unexpected,
            present: Some(present),
            mostly: mostly(k)?,
            counts: Counts::Present,
        }
    })
}

/// `expect_multicolumn_sum_to_equal`, `expect_select_column_values_to_be_unique_within_record`.
pub(super) fn multicolumn_sum_to_equal(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let schema = cx.schema;
    let kind = cx.e.kind.as_str();
    Ok({
        let columns = strings(k, "column_list")?;
        if columns.is_empty() {
            return Err("argument column_list must name columns".into());
        }
        let mut types = Vec::new();
        for c in &columns {
            types.push(
                schema
                    .get(c)
                    .ok_or(format!("column {c:?} is not in the dataset"))?
                    .clone(),
            );
        }
        let xs: Vec<Expr> = columns.iter().map(|c| col(c.as_str())).collect();
        let any_present = xs.iter().map(|x| x.clone().is_not_null()).reduce(Expr::or);
        let all_present = xs.iter().map(|x| x.clone().is_not_null()).reduce(Expr::and);
        let present = match k
            .get("ignore_row_if")
            .and_then(Value::as_str)
            .unwrap_or("all_values_are_missing")
        {
            "all_values_are_missing" => any_present,
            "any_value_is_missing" => all_present,
            "never" => any_present.map(|p| p.clone().or(p.not())),
            other => {
                return Err(format!(
                    "ignore_row_if must be all_values_are_missing, any_value_is_missing or never, got {other:?}"
                ));
            }
        };
        let unexpected = if kind == "expect_multicolumn_sum_to_equal" {
            let total = number(k, "sum_total")?.ok_or("argument sum_total is required")?;
            for (c, t) in columns.iter().zip(&types) {
                cx.numeric(c, t)?;
            }
            // pandas' row sum skips missing values.
            let sum = xs
                .iter()
                .map(|x| x.clone().cast(DataType::Float64).fill_null(lit(0.0)))
                .reduce(|a, b| a + b)
                .unwrap_or(lit(0.0));
            let (off, tolerance) = (sum - lit(total), 1e-9 * total.abs().max(1.0));
            off.clone().gt(lit(tolerance)).or(off.lt(lit(-tolerance)))
        } else {
            // Two present values of a row that are equal; values of types that cannot
            // be equal (text and numbers) never are.
            let mut same = Vec::new();
            for i in 0..xs.len() {
                for j in i + 1..xs.len() {
                    if comparable(&types[i], &types[j]) {
                        same.push(xs[i].clone().eq(xs[j].clone()).fill_null(lit(false)));
                    }
                }
            }
            same.into_iter().reduce(Expr::or).unwrap_or(lit(false))
        };
        Check::Map {
            column: columns[0].clone(),
            unexpected,
            present,
            mostly: mostly(k)?,
            counts: Counts::Present,
        }
    })
}

/// `expect_compound_columns_to_be_unique`.
pub(super) fn compound_columns_to_be_unique(cx: &Ctx) -> Result<Check, String> {
    let k = cx.k;
    let schema = cx.schema;
    Ok({
        let columns = strings(k, "column_list")?;
        if let Some(c) = columns.iter().find(|c| schema.get(c.as_str()).is_none()) {
            return Err(format!("column {c:?} is not in the dataset"));
        }
        Check::Compound {
            columns,
            mostly: mostly(k)?,
        }
    })
}
