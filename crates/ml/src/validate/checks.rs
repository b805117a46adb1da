//! Each expectation type compiled into its [`Check`](super::model::Check), through one
//! table from the type's name to its family's function.

mod pairs;
mod sets;
mod statistics;
mod table;
mod text;
mod values;

use super::condition;
use super::context::Ctx;
use super::model::*;
use polars::prelude::*;
use serde_json::Value;
use tollgate_spec::Expectation;

/// Whether an expectation of `kind` looks at rows, so a `row_condition` narrows it; the
/// table-level ones look at the whole table.
pub(super) fn takes_condition(kind: &str) -> bool {
    !(kind.starts_with("expect_table_") || kind == "expect_column_to_exist")
}

pub(super) fn compile(e: &Expectation, schema: &Schema) -> Result<Compiled, String> {
    let k = &e.kwargs;
    let domain = match k.get("row_condition") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.trim().is_empty() => None,
        Some(Value::String(c)) => {
            if !takes_condition(&e.kind) {
                return Err(format!("{} takes no row_condition", e.kind));
            }
            let parser = k
                .get("condition_parser")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    format!(
                        "row_condition {c:?} needs condition_parser: {}",
                        condition::PARSERS.join(" or ")
                    )
                })?;
            Some(condition::parse(c, parser, schema).map_err(|e| e.to_string())?)
        }
        Some(v) => return Err(format!("argument row_condition must be text, got {v}")),
    };
    let check = check(e, schema, domain.as_ref())?;
    Ok(Compiled { check, domain })
}

/// A check's compiler: from the expectation in its context to its [`Check`].
type CheckFn = fn(&Ctx) -> Result<Check, String>;

/// Every expectation type this engine evaluates, with its check: adding one is an entry
/// here and a function in its family's module.
const CHECKS: &[(&str, CheckFn)] = &[
    (
        "expect_table_row_count_to_be_between",
        table::table_row_count_to_be_between,
    ),
    (
        "expect_table_row_count_to_equal",
        table::table_row_count_to_equal,
    ),
    (
        "expect_table_columns_to_match_set",
        table::table_columns_to_match_set,
    ),
    (
        "expect_table_columns_to_match_ordered_list",
        table::table_columns_to_match_ordered_list,
    ),
    ("expect_column_to_exist", table::column_to_exist),
    (
        "expect_column_values_to_not_be_null",
        values::column_values_to_not_be_null,
    ),
    (
        "expect_column_values_to_be_null",
        values::column_values_to_be_null,
    ),
    (
        "expect_column_values_to_be_between",
        values::column_values_to_be_between,
    ),
    (
        "expect_column_values_to_be_in_set",
        sets::column_values_to_be_in_set,
    ),
    (
        "expect_column_values_to_not_be_in_set",
        sets::column_values_to_be_in_set,
    ),
    (
        "expect_column_values_to_be_unique",
        values::column_values_to_be_unique,
    ),
    (
        "expect_column_values_to_match_regex",
        text::column_values_to_match_regex,
    ),
    (
        "expect_column_values_to_not_match_regex",
        text::column_values_to_match_regex,
    ),
    (
        "expect_column_values_to_be_of_type",
        values::column_values_to_be_of_type,
    ),
    (
        "expect_column_values_to_be_in_type_list",
        values::column_values_to_be_of_type,
    ),
    (
        "expect_column_value_lengths_to_be_between",
        text::column_value_lengths_to_be_between,
    ),
    (
        "expect_column_value_lengths_to_equal",
        text::column_value_lengths_to_equal,
    ),
    (
        "expect_column_min_to_be_between",
        statistics::column_min_to_be_between,
    ),
    (
        "expect_column_max_to_be_between",
        statistics::column_min_to_be_between,
    ),
    (
        "expect_column_mean_to_be_between",
        statistics::column_min_to_be_between,
    ),
    (
        "expect_column_median_to_be_between",
        statistics::column_min_to_be_between,
    ),
    (
        "expect_column_stdev_to_be_between",
        statistics::column_min_to_be_between,
    ),
    (
        "expect_column_sum_to_be_between",
        statistics::column_min_to_be_between,
    ),
    (
        "expect_column_proportion_of_unique_values_to_be_between",
        sets::column_proportion_of_unique_values_to_be_between,
    ),
    (
        "expect_column_distinct_values_to_be_in_set",
        sets::column_distinct_values_to_be_in_set,
    ),
    (
        "expect_column_distinct_values_to_contain_set",
        sets::column_distinct_values_to_be_in_set,
    ),
    (
        "expect_column_distinct_values_to_equal_set",
        sets::column_distinct_values_to_be_in_set,
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        pairs::column_pair_values_a_to_be_greater_than_b,
    ),
    (
        "expect_column_values_to_be_increasing",
        values::column_values_to_be_increasing,
    ),
    (
        "expect_column_values_to_be_decreasing",
        values::column_values_to_be_increasing,
    ),
    (
        "expect_column_values_to_match_regex_list",
        text::column_values_to_match_regex_list,
    ),
    (
        "expect_column_values_to_not_match_regex_list",
        text::column_values_to_match_regex_list,
    ),
    (
        "expect_column_values_to_match_strftime_format",
        text::column_values_to_match_strftime_format,
    ),
    (
        "expect_column_values_to_be_dateutil_parseable",
        text::column_values_to_match_strftime_format,
    ),
    (
        "expect_column_values_to_be_json_parseable",
        text::column_values_to_match_strftime_format,
    ),
    (
        "expect_column_values_to_match_json_schema",
        text::column_values_to_match_strftime_format,
    ),
    (
        "expect_column_value_z_scores_to_be_less_than",
        statistics::column_value_z_scores_to_be_less_than,
    ),
    (
        "expect_column_quantile_values_to_be_between",
        statistics::column_quantile_values_to_be_between,
    ),
    (
        "expect_column_most_common_value_to_be_in_set",
        sets::column_most_common_value_to_be_in_set,
    ),
    (
        "expect_column_unique_value_count_to_be_between",
        sets::column_unique_value_count_to_be_between,
    ),
    (
        "expect_column_pair_values_to_be_equal",
        pairs::column_pair_values_to_be_equal,
    ),
    (
        "expect_column_pair_values_to_be_in_set",
        pairs::column_pair_values_to_be_equal,
    ),
    (
        "expect_multicolumn_sum_to_equal",
        pairs::multicolumn_sum_to_equal,
    ),
    (
        "expect_select_column_values_to_be_unique_within_record",
        pairs::multicolumn_sum_to_equal,
    ),
    (
        "expect_table_column_count_to_be_between",
        table::table_column_count_to_be_between,
    ),
    (
        "expect_table_column_count_to_equal",
        table::table_column_count_to_be_between,
    ),
    (
        "expect_column_kl_divergence_to_be_less_than",
        statistics::column_kl_divergence_to_be_less_than,
    ),
    (
        "expect_compound_columns_to_be_unique",
        pairs::compound_columns_to_be_unique,
    ),
];

/// The expectation types this engine evaluates, in the table's order.
pub fn supported() -> impl Iterator<Item = &'static str> {
    CHECKS.iter().map(|(name, _)| *name)
}

/// Compiles `e` on `schema`, restricted to `domain`, with the table's check for its type.
pub(super) fn check(
    e: &Expectation,
    schema: &Schema,
    domain: Option<&Expr>,
) -> Result<Check, String> {
    let cx = Ctx::new(e, schema, domain);
    match CHECKS.iter().find(|(name, _)| *name == e.kind) {
        Some((_, compile)) => compile(&cx),
        None => Err(format!(
            "unknown expectation type {:?}; supported: {}",
            e.kind,
            supported().collect::<Vec<_>>().join(", ")
        )),
    }
}
