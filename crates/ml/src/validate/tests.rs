//! Unit tests of the parent module.

use serde_json::{Value, json as j};

use super::*;

fn exp(kind: &str, kwargs: Value) -> Expectation {
    Expectation {
        kind: kind.into(),
        kwargs: kwargs.as_object().cloned().unwrap_or_default(),
    }
}

fn write_csv(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("d.csv");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(text: &str, suite: Vec<Expectation>) -> ValidationReport {
    let dir = tempfile::tempdir().unwrap();
    validate(&write_csv(&dir, text), &suite).unwrap()
}

const DATA: &str = "id,age,contract,fee,paid\na,30,one-year,10.5,12\n,150,one-year,20,20\nc,-1,weekly,30,25\nc,40,,40,50\n";

#[test]
fn counts_nulls_out_of_range_out_of_set_and_duplicates() {
    let report = run(
        DATA,
        vec![
            exp(
                "expect_table_row_count_to_be_between",
                serde_json::json!({"min_value": 1, "max_value": 3}),
            ),
            exp(
                "expect_column_values_to_not_be_null",
                serde_json::json!({"column": "id"}),
            ),
            exp(
                "expect_column_values_to_be_between",
                serde_json::json!({"column": "age", "min_value": 0, "max_value": 120}),
            ),
            exp(
                "expect_column_values_to_be_in_set",
                serde_json::json!({"column": "contract", "value_set": ["one-year", "two-year"]}),
            ),
            exp(
                "expect_column_values_to_be_unique",
                serde_json::json!({"column": "id"}),
            ),
        ],
    );
    assert_eq!(report.row_count, 4);
    assert!(!report.success);
    let r = &report.results;
    assert!(!r[0].success, "4 rows is above max 3");
    assert_eq!((r[1].unexpected_count, r[1].success), (1, false));
    assert_eq!(r[2].unexpected_count, 2, "150 and -1");
    assert_eq!(r[2].partial_unexpected_list, ["150", "-1"]);
    assert_eq!(
        (r[3].unexpected_count, r[3].missing_count),
        (1, 1),
        "weekly; one null"
    );
    assert_eq!(r[3].partial_unexpected_list, ["weekly"]);
    assert_eq!(r[4].unexpected_count, 2, "both rows with id c");
    assert!(
        (r[3].unexpected_percent - 100.0 / 3.0).abs() < 1e-9,
        "of the 3 present values"
    );
}

#[test]
fn the_rest_of_the_catalogue() {
    let suite = vec![
        exp("expect_table_row_count_to_equal", j!({"value": 4})),
        exp(
            "expect_table_columns_to_match_set",
            j!({"column_set": ["id", "age", "contract", "fee", "paid"]}),
        ),
        exp(
            "expect_table_columns_to_match_ordered_list",
            j!({"column_list": ["age", "id"]}),
        ),
        exp("expect_column_to_exist", j!({"column": "fee"})),
        exp(
            "expect_column_values_to_be_null",
            j!({"column": "contract"}),
        ),
        exp(
            "expect_column_values_to_not_be_in_set",
            j!({"column": "contract", "value_set": ["weekly"]}),
        ),
        exp(
            "expect_column_values_to_match_regex",
            j!({"column": "contract", "regex": "^[a-z]+-[a-z]+$"}),
        ),
        exp(
            "expect_column_values_to_not_match_regex",
            j!({"column": "contract", "regex": "year"}),
        ),
        exp(
            "expect_column_values_to_be_of_type",
            j!({"column": "age", "type_": "int64"}),
        ),
        exp(
            "expect_column_values_to_be_in_type_list",
            j!({"column": "contract", "type_list": ["INTEGER", "VARCHAR"]}),
        ),
        exp(
            "expect_column_value_lengths_to_be_between",
            j!({"column": "contract", "min_value": 7, "max_value": 8}),
        ),
        exp(
            "expect_column_mean_to_be_between",
            j!({"column": "fee", "min_value": 25, "max_value": 25.5}),
        ),
        exp(
            "expect_column_median_to_be_between",
            j!({"column": "fee", "min_value": 26, "max_value": 30}),
        ),
        exp(
            "expect_column_sum_to_be_between",
            j!({"column": "fee", "max_value": 100, "strict_max": true}),
        ),
        exp(
            "expect_column_stdev_to_be_between",
            j!({"column": "fee", "min_value": 10}),
        ),
        exp(
            "expect_column_min_to_be_between",
            j!({"column": "age", "min_value": 0}),
        ),
        exp(
            "expect_column_max_to_be_between",
            j!({"column": "age", "max_value": 150}),
        ),
        exp(
            "expect_column_proportion_of_unique_values_to_be_between",
            j!({"column": "id", "min_value": 0.6, "max_value": 0.7}),
        ),
        exp(
            "expect_column_distinct_values_to_be_in_set",
            j!({"column": "contract", "value_set": ["one-year", "weekly", "two-year"]}),
        ),
        exp(
            "expect_column_distinct_values_to_contain_set",
            j!({"column": "contract", "value_set": ["one-year", "two-year"]}),
        ),
        exp(
            "expect_column_distinct_values_to_equal_set",
            j!({"column": "contract", "value_set": ["one-year", "weekly"]}),
        ),
        exp(
            "expect_column_pair_values_a_to_be_greater_than_b",
            j!({"column_A": "paid", "column_B": "fee", "or_equal": true}),
        ),
        exp(
            "expect_compound_columns_to_be_unique",
            j!({"column_list": ["id", "contract"]}),
        ),
    ];
    let report = run(DATA, suite);
    let got: Vec<(String, bool)> = report
        .results
        .iter()
        .map(|r| (r.expectation_type.clone(), r.success))
        .collect();
    let want = [
        true,  // 4 rows
        true,  // same set
        false, // order differs
        true,  // fee exists
        false, // contract mostly present
        false, // weekly present
        false, // weekly has no dash
        false, // one-year matches "year"
        true,  // age is int64
        true,  // contract is text, VARCHAR matches
        false, // "weekly" has 6 characters
        true,  // mean 25.125
        false, // median 25
        false, // sum 100.5 is not < 100
        true,  // stdev ~12.8
        false, // min -1
        true,  // max 150
        true,  // 2 distinct of 3 ids
        true,  // all distinct values listed
        false, // two-year absent
        true,  // equal set
        false, // paid 25 < fee 30
        true,  // (id, contract) pairs are unique
    ];
    for ((kind, ok), want) in got.iter().zip(want) {
        assert_eq!(
            *ok,
            want,
            "{kind}: {:?}",
            report.results.iter().find(|r| &r.expectation_type == kind)
        );
    }
    assert!(
        report.results.iter().all(|r| r.error.is_empty()),
        "{:?}",
        report.results
    );
    let pair = &report.results[21];
    assert_eq!(
        (
            pair.unexpected_count,
            pair.partial_unexpected_list.as_slice()
        ),
        (1, &["25".to_string()][..])
    );
}

#[test]
fn mostly_tolerates_a_share_of_failures() {
    let suite = vec![exp(
        "expect_column_values_to_not_be_null",
        serde_json::json!({"column": "x", "mostly": 0.7}),
    )];
    assert!(run("x\n1\n2\n3\n\n", suite).success);
}

#[test]
fn nan_and_infinity_fall_outside_a_range() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.parquet");
    let mut df = DataFrame::new(
        4,
        vec![Column::new(
            "x".into(),
            vec![1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY],
        )],
    )
    .unwrap();
    data::write(&mut df, &p).unwrap();
    let suite = vec![exp(
        "expect_column_values_to_be_between",
        serde_json::json!({"column": "x", "min_value": 0, "max_value": 10}),
    )];
    let r = &validate(&p, &suite).unwrap().results[0];
    assert_eq!(r.unexpected_count, 3, "{r:?}");
}

#[test]
fn bad_input_fails_expectations_never_the_process() {
    let suite = || {
        vec![
            exp(
                "expect_column_values_to_not_be_null",
                j!({"column": "nope"}),
            ),
            exp(
                "expect_column_values_to_be_between",
                j!({"column": "s", "min_value": 0}),
            ),
            exp("expect_column_to_be_magic", j!({})),
            exp(
                "expect_column_values_to_match_regex",
                j!({"column": "s", "regex": "(unclosed"}),
            ),
            exp(
                "expect_column_mean_to_be_between",
                j!({"column": "n", "min_value": 0}),
            ),
            exp("expect_column_values_to_not_be_null", j!({"column": "s"})),
        ]
    };
    let r = run("s,n\nabc,\n", suite()).results;
    assert!(r[0].error.contains("\"nope\" is not in the dataset"));
    assert!(r[1].error.contains("not numeric"), "{}", r[1].error);
    assert!(
        r[2].error
            .contains("unknown expectation type \"expect_column_to_be_magic\"")
    );
    assert!(r[3].error.contains("cannot evaluate"), "{}", r[3].error);
    assert!(!r[4].success, "an all-null column has no mean: {:?}", r[4]);
    assert!(r[5].success, "the others still run");

    let zero_rows = run("s,n\n", suite());
    assert_eq!(zero_rows.row_count, 0);
    assert!(zero_rows.results[5].success);

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    let report = validate(&empty, &suite()).unwrap();
    assert!(report.results.iter().all(|r| r.error.contains("is empty")));
}

#[test]
fn unreadable_parquet_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.parquet");
    std::fs::write(&p, b"this is not parquet").unwrap();
    let err = validate(&p, &[]).unwrap_err();
    assert!(matches!(err, DataError::Unreadable { .. }), "{err}");
}

#[test]
fn a_huge_unexpected_value_is_shown_cut_with_its_length() {
    let long = "x".repeat(10_000);
    assert_eq!(
        render(&AnyValue::String(&long)),
        format!("{}… (10000 characters)", "x".repeat(200))
    );
    assert_eq!(render(&AnyValue::String("weekly")), "weekly");
}

#[test]
fn uniqueness_counts_every_row_of_a_repeated_value_in_text_integers_and_floats() {
    let unique = |c: &str| exp("expect_column_values_to_be_unique", j!({"column": c}));
    let report = run(
        "id,n,x\nb,1,1.5\na,2,1.5\nb,3,2.5\nc,1,\na,4,2.5\nd,5,9\n",
        vec![unique("id"), unique("n"), unique("x"), unique("d")],
    );
    let r = &report.results;
    assert_eq!(r[0].unexpected_count, 4, "b twice, a twice");
    assert_eq!(r[0].partial_unexpected_list, ["b", "a", "b", "a"]);
    assert_eq!(r[1].unexpected_count, 2, "1 twice");
    assert_eq!(r[1].partial_unexpected_list, ["1", "1"]);
    assert_eq!((r[2].unexpected_count, r[2].missing_count), (4, 1));
    assert_eq!(r[2].partial_unexpected_list, ["1.5", "1.5", "2.5", "2.5"]);
    assert!(r.iter().take(3).all(|r| !r.success));
    assert_eq!(r[3].error, "column \"d\" is not in the dataset");
    let report = run("id\nx\ny\nz\n", vec![unique("id")]);
    assert!(report.success);
    assert_eq!(report.results[0].unexpected_count, 0);
}

// The cases below are Great Expectations 1.2.0's own test definitions
// (tests/test_definitions/*/<expectation>.json), each named by its title.

#[test]
fn be_null_with_mostly_counts_every_row_as_gx_does() {
    // expect_column_values_to_be_null.json: positive_mostly, negative_mostly and
    // positive_case_with_mostly_and_no_unexpected_values.
    let data = "three_null,all_null\n,\n,\n,\n5,\n";
    let report = run(
        data,
        vec![
            exp(
                "expect_column_values_to_be_null",
                j!({"column": "three_null", "mostly": 0.75}),
            ),
            exp(
                "expect_column_values_to_be_null",
                j!({"column": "three_null", "mostly": 0.8}),
            ),
            exp(
                "expect_column_values_to_be_null",
                j!({"column": "all_null", "mostly": 0.9}),
            ),
        ],
    );
    let r = &report.results;
    assert_eq!(
        (r[0].success, r[0].unexpected_count, r[0].unexpected_percent),
        (true, 1, 25.0)
    );
    assert_eq!(r[0].partial_unexpected_list, ["5"]);
    assert!(!r[1].success);
    assert_eq!((r[2].success, r[2].unexpected_count), (true, 0));
}

#[test]
fn column_to_exist_checks_the_position_when_given_a_column_index() {
    // expect_column_to_exist.json: positive_test_with_column_order,
    // column_exists_but_wrong_index.
    let data = "c1,c2,c3\n4,a,\n5,b,\n";
    let report = run(
        data,
        vec![
            exp(
                "expect_column_to_exist",
                j!({"column": "c2", "column_index": 1}),
            ),
            exp(
                "expect_column_to_exist",
                j!({"column": "c3", "column_index": 4}),
            ),
            exp(
                "expect_column_to_exist",
                j!({"column": "c1", "column_index": null}),
            ),
        ],
    );
    let r = &report.results;
    assert!(r[0].success);
    assert!(!r[1].success);
    assert!(r[2].success);
}

#[test]
fn an_empty_value_set_fails_every_present_row_and_a_null_in_it_matches_none() {
    // expect_column_values_to_be_in_set.json: negative_empty_values_set;
    // expect_column_values_to_not_be_in_set.json: positive_empty_values_set,
    // positive_test_values_set_is_null.
    let data = "x,n\n1,\n2,\n4,2\n";
    let report = run(
        data,
        vec![
            exp(
                "expect_column_values_to_be_in_set",
                j!({"column": "x", "value_set": []}),
            ),
            exp(
                "expect_column_values_to_not_be_in_set",
                j!({"column": "x", "value_set": []}),
            ),
            exp(
                "expect_column_values_to_not_be_in_set",
                j!({"column": "n", "value_set": [null]}),
            ),
            exp(
                "expect_column_values_to_be_in_set",
                j!({"column": "x", "value_set": [1, null, 2]}),
            ),
        ],
    );
    let r = &report.results;
    assert_eq!((r[0].success, r[0].unexpected_count), (false, 3));
    assert_eq!(r[0].partial_unexpected_list, ["1", "2", "4"]);
    assert_eq!((r[1].success, r[1].unexpected_count), (true, 0));
    assert_eq!((r[2].success, r[2].unexpected_count), (true, 0));
    assert_eq!((r[3].success, r[3].unexpected_count), (false, 1), "only 4");
    for x in r {
        assert!(x.error.is_empty(), "{}", x.error);
    }
}

#[test]
fn no_bounds_pass_the_mean_median_stdev_unique_share_and_row_count_and_crossed_bounds_are_refused()
{
    // expect_column_mean_to_be_between.json: vacuously_true_missing_min_and_max (and the
    // same case of the median, stdev, proportion-unique and row-count definitions).
    let data = "x\n2.0\n5.0\n";
    let none = j!({"column": "x", "min_value": null, "max_value": null});
    let report = run(
        data,
        vec![
            exp("expect_column_mean_to_be_between", none.clone()),
            exp("expect_column_median_to_be_between", none.clone()),
            exp("expect_column_stdev_to_be_between", none.clone()),
            exp(
                "expect_column_proportion_of_unique_values_to_be_between",
                none.clone(),
            ),
            exp(
                "expect_table_row_count_to_be_between",
                j!({"min_value": null, "max_value": null}),
            ),
            // GX raises on a minimum above the maximum.
            exp(
                "expect_column_values_to_be_between",
                j!({"column": "x", "min_value": 5, "max_value": 1}),
            ),
            // The row-wise between still needs a bound.
            exp("expect_column_values_to_be_between", none),
        ],
    );
    let r = &report.results;
    for x in &r[..5] {
        assert!(x.success && x.error.is_empty(), "{x:?}");
    }
    assert_eq!(r[0].observed_value, "3.5");
    assert!(
        r[5].error
            .contains("min_value (5) must not be greater than max_value (1)"),
        "{}",
        r[5].error
    );
    assert!(r[6].error.contains("give min_value, max_value or both"));
}

#[test]
fn null_column_sets_lists_and_type_lists_mean_what_gx_makes_of_them() {
    // expect_table_columns_to_match_set.json: negative_test_null_set_exact_match_true,
    // positive_test_vacuously_true_null_set_exact_match_false;
    // expect_table_columns_to_match_ordered_list.json:
    // null_list_provides_vacuously_true_expectation;
    // expect_column_values_to_be_in_type_list.json: positive_test_placeholder_expectation.
    let data = "c1,c2,c3\n4,a,\n5,b,\n";
    let report = run(
        data,
        vec![
            exp(
                "expect_table_columns_to_match_set",
                j!({"column_set": null, "exact_match": true}),
            ),
            exp(
                "expect_table_columns_to_match_set",
                j!({"column_set": null, "exact_match": false}),
            ),
            exp(
                "expect_table_columns_to_match_ordered_list",
                j!({"column_list": null}),
            ),
            exp(
                "expect_column_values_to_be_in_type_list",
                j!({"column": "c2", "type_list": null}),
            ),
        ],
    );
    let r = &report.results;
    assert!(!r[0].success);
    assert!(
        r[0].observed_value
            .contains(r#"unexpected ["c1", "c2", "c3"]"#),
        "{}",
        r[0].observed_value
    );
    assert!(r[1].success && r[2].success && r[3].success);
    for x in r {
        assert!(x.error.is_empty(), "{}", x.error);
    }
}

#[test]
fn the_mean_of_a_boolean_column_counts_true_as_one() {
    // expect_column_mean_to_be_between.json: coerced_types_true_false_values,
    // coerced_types_true_false_and_null.
    let data = "b,x\ntrue,true\nfalse,\nfalse,false\ntrue,\n";
    let range = |c: &str| j!({"column": c, "min_value": 0, "max_value": 1});
    let report = run(
        data,
        vec![
            exp("expect_column_mean_to_be_between", range("b")),
            exp("expect_column_mean_to_be_between", range("x")),
            // Other statistics still want numbers.
            exp("expect_column_sum_to_be_between", range("b")),
        ],
    );
    let r = &report.results;
    assert_eq!((r[0].success, r[0].observed_value.as_str()), (true, "0.5"));
    assert_eq!((r[1].success, r[1].observed_value.as_str()), (true, "0.5"));
    assert!(r[2].error.contains("not numeric"), "{}", r[2].error);
}

#[test]
fn a_text_column_of_the_wrong_type_has_every_present_value_unexpected() {
    // expect_column_values_to_be_in_type_list.json:
    // negative_test_string_and_int_values_summary_output, positive_test_string_values.
    let data = "s\nhello\njello\n1\n\n";
    let report = run(
        data,
        vec![
            exp(
                "expect_column_values_to_be_in_type_list",
                j!({"column": "s", "type_list": ["bool"]}),
            ),
            exp(
                "expect_column_values_to_be_in_type_list",
                j!({"column": "s", "type_list": ["str", "int"]}),
            ),
        ],
    );
    let r = &report.results;
    assert_eq!((r[0].success, r[0].unexpected_count), (false, 3));
    assert_eq!(r[0].partial_unexpected_list, ["hello", "jello", "1"]);
    assert_eq!((r[1].success, r[1].unexpected_count), (true, 0));
}

#[test]
fn a_column_of_nulls_only_has_nothing_to_match_a_regex() {
    // expect_column_values_to_match_regex.json and _not_match_regex.json: the all-null
    // column, which Parquet stores with the null type.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nulls.parquet");
    let mut df = DataFrame::new(
        3,
        vec![
            Column::new("a".into(), ["aaa", "abb", "acc"]),
            Column::full_null("n".into(), 3, &DataType::Null),
        ],
    )
    .unwrap();
    assert_eq!(df.column("n").unwrap().dtype(), &DataType::Null);
    data::write(&mut df, &path).unwrap();
    let report = validate(
        &path,
        &[
            exp(
                "expect_column_values_to_match_regex",
                j!({"column": "n", "regex": "^a"}),
            ),
            exp(
                "expect_column_values_to_not_match_regex",
                j!({"column": "n", "regex": "^a"}),
            ),
        ],
    )
    .unwrap();
    for r in &report.results {
        assert!(r.error.is_empty(), "{}", r.error);
        assert_eq!(
            (r.success, r.unexpected_count, r.missing_count),
            (true, 0, 3)
        );
    }
}

#[test]
fn pandas_type_aliases_name_text_and_datetimes() {
    // expect_column_values_to_be_of_type.json:
    // dtype_object_and_type_object_still_has_aggregate_semantics_object_underscore and
    // _big_o, positive_pandas_datetime_no_timezone. (Time zones need polars' `timezones`
    // feature, which the build leaves out: a zoned column reads as a naive one.)
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.parquet");
    let naive = Column::new("datetime".into(), [1_451_651_696_000i64, 1_451_735_998_000])
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    let mut df =
        DataFrame::new(2, vec![Column::new("z".into(), ["hello", "jello"]), naive]).unwrap();
    data::write(&mut df, &path).unwrap();
    let of_type = |c: &str, t: &str| {
        exp(
            "expect_column_values_to_be_of_type",
            j!({"column": c, "type_": t}),
        )
    };
    let report = validate(
        &path,
        &[
            of_type("z", "object_"),
            of_type("z", "O"),
            of_type("datetime", "datetime64"),
            of_type("datetime", "Timestamp"),
            of_type("z", "datetime64"),
        ],
    )
    .unwrap();
    let got: Vec<bool> = report.results.iter().map(|r| r.success).collect();
    assert_eq!(got, [true, true, true, true, false]);
}

/// GX's `test_conditional_expectation_passes` / `_fails` (values_to_be_between,
/// value_lengths, in_set): only the rows the condition selects are checked.
#[test]
fn a_row_condition_narrows_the_rows_checked_and_is_never_ignored() {
    let data = "x,y,s\n1,1,a\n2,2,bb\n10,9,ccc\n4,9,dddd\n";
    let between = |cond: &str, parser: &str| {
        exp(
            "expect_column_values_to_be_between",
            j!({"column": "x", "min_value": 10, "max_value": 10,
                "row_condition": cond, "condition_parser": parser}),
        )
    };
    let report = run(
        data,
        vec![
            between("y == 9 & s == \"ccc\"", "pandas"),
            between("y == 9", "pandas"),
            between("col(\"y\") > 8", "great_expectations"),
            exp(
                "expect_column_mean_to_be_between",
                j!({"column": "x", "min_value": 1.5, "max_value": 1.5,
                    "row_condition": "y < 3", "condition_parser": "pandas"}),
            ),
            between("y == 9", "bad_parser"),
            exp(
                "expect_column_values_to_be_between",
                j!({"column": "x", "min_value": 10, "row_condition": "y == 9"}),
            ),
            exp(
                "expect_table_row_count_to_equal",
                j!({"value": 4, "row_condition": "y == 9", "condition_parser": "pandas"}),
            ),
        ],
    );
    let r = &report.results;
    assert_eq!(
        (r[0].success, r[0].element_count, r[0].unexpected_count),
        (true, 1, 0)
    );
    assert_eq!(
        (r[1].success, r[1].element_count, r[1].unexpected_count),
        (false, 2, 1)
    );
    assert_eq!(r[1].partial_unexpected_list, ["4"]);
    assert_eq!((r[2].success, r[2].unexpected_count), (false, 1));
    assert_eq!((r[3].success, r[3].observed_json.as_str()), (true, "1.5"));
    assert!(
        r[4].error
            .contains("condition_parser \"bad_parser\" is unknown"),
        "{}",
        r[4].error
    );
    assert!(
        r[5].error.contains("needs condition_parser"),
        "{}",
        r[5].error
    );
    assert!(
        r[6].error.contains("takes no row_condition"),
        "{}",
        r[6].error
    );
}

/// GX's `datetime_except_sqlite` cases (min, max, between): a datetime column against
/// ISO 8601 bounds, the observed value in ISO 8601.
#[test]
fn datetime_columns_compare_with_iso_bounds_in_between_min_max_and_sets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let micros: Vec<Option<i64>> = ["2000-01-01T12:00:01", "2001-01-01T12:00:01"]
        .iter()
        .map(|t| Some(timestamp(t).unwrap()))
        .chain([None])
        .collect();
    let ts = Int64Chunked::from_iter_options("ts".into(), micros.into_iter())
        .into_datetime(TimeUnit::Microseconds, None)
        .into_series();
    let mut df = DataFrame::new_infer_height(vec![ts.into()]).unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut df)
        .unwrap();
    let suite = [
        exp(
            "expect_column_max_to_be_between",
            j!({"column": "ts", "min_value": "2001-01-01T12:00:01", "max_value": "2001-01-01 12:00:01"}),
        ),
        exp(
            "expect_column_values_to_be_between",
            j!({"column": "ts", "min_value": "Jan 01 2000", "max_value": "2000-12-31"}),
        ),
        exp(
            "expect_column_values_to_be_in_set",
            j!({"column": "ts", "value_set": ["2000-01-01T12:00:01"]}),
        ),
        exp(
            "expect_column_min_to_be_between",
            j!({"column": "ts", "min_value": 5}),
        ),
        exp(
            "expect_column_values_to_be_of_type",
            j!({"column": "ts", "type_": "datetime64"}),
        ),
        exp("expect_column_values_to_be_unique", j!({"column": "ts"})),
    ];
    let report = validate(&path, &suite).unwrap();
    let r = &report.results;
    assert!(r[0].success, "{r:?}");
    assert_eq!(r[0].observed_json, "\"2001-01-01T12:00:01\"");
    assert_eq!((r[1].success, r[1].unexpected_count), (false, 1));
    assert_eq!((r[2].success, r[2].unexpected_count), (false, 1));
    assert!(
        r[3].error.contains("must be a date or time"),
        "{}",
        r[3].error
    );
    assert_eq!(
        (r[4].success, r[4].observed_json.as_str()),
        (true, "\"datetime64\"")
    );
    assert_eq!((r[5].success, r[5].unexpected_count), (true, 0));
}

/// GX's observed values have types: numbers, lists of values or column names, type
/// names, and null (with the counts) for the row-by-row checks.
#[test]
fn observed_values_in_json_have_gx_types_and_the_text_stays_readable() {
    let report = run(
        DATA,
        vec![
            exp(
                "expect_column_max_to_be_between",
                j!({"column": "age", "max_value": 200}),
            ),
            exp(
                "expect_column_mean_to_be_between",
                j!({"column": "fee", "min_value": 0}),
            ),
            exp(
                "expect_column_distinct_values_to_be_in_set",
                j!({"column": "contract", "value_set": ["one-year", "weekly"]}),
            ),
            exp(
                "expect_table_columns_to_match_set",
                j!({"column_set": ["id"]}),
            ),
            exp("expect_column_values_to_not_be_null", j!({"column": "id"})),
            exp("expect_table_row_count_to_equal", j!({"value": 4})),
            exp(
                "expect_column_values_to_be_of_type",
                j!({"column": "age", "type_": "int"}),
            ),
        ],
    );
    let json = summary_json(&report, "s");
    let observed: Vec<&Value> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["result"]["observed_value"])
        .collect();
    assert_eq!(observed[0], &j!(150));
    assert_eq!(observed[1], &j!(25.125));
    assert_eq!(observed[2], &j!(["one-year", "weekly"]));
    assert_eq!(observed[3], &j!(["id", "age", "contract", "fee", "paid"]));
    assert_eq!(observed[4], &Value::Null);
    assert_eq!(json["results"][4]["result"]["unexpected_count"], j!(1));
    assert_eq!(observed[5], &j!(4));
    assert_eq!(observed[6], &j!("int64"));
    assert_eq!(report.results[1].observed_value, "25.125");
    assert_eq!(report.results[4].observed_value, "1 null of 4");
}

/// A report kept before the typed value was recorded shows its text.
#[test]
fn a_report_without_the_typed_value_shows_the_text() {
    let mut report = run(
        DATA,
        vec![exp("expect_table_row_count_to_equal", j!({"value": 4}))],
    );
    report.results[0].observed_json.clear();
    let json = summary_json(&report, "s");
    assert_eq!(json["results"][0]["result"]["observed_value"], j!("4"));
}

/// A GX 0.x suite's `parse_strings_as_datetimes` reads a text column as dates and times,
/// and text that is no date is outside every range.
#[test]
fn parse_strings_as_datetimes_reads_a_text_column_as_times() {
    let data = "ts\nJan 01 2000 12:00:01\n2001-01-01T12:00:01\nnot a date\n\n";
    let report = run(
        data,
        vec![
            exp(
                "expect_column_values_to_be_between",
                j!({"column": "ts", "min_value": "1999-12-31", "max_value": "2001-06-01",
                    "parse_strings_as_datetimes": true}),
            ),
            exp(
                "expect_column_max_to_be_between",
                j!({"column": "ts", "min_value": "2001-01-01", "parse_strings_as_datetimes": true}),
            ),
            exp(
                "expect_column_values_to_be_in_set",
                j!({"column": "ts", "value_set": ["2000-01-01 12:00:01"],
                    "parse_strings_as_datetimes": true}),
            ),
        ],
    );
    let r = &report.results;
    assert_eq!((r[0].unexpected_count, r[0].element_count), (1, 4), "{r:?}");
    assert_eq!(r[0].partial_unexpected_list, ["not a date"]);
    assert_eq!(
        (r[1].success, r[1].observed_json.as_str()),
        (true, "\"2001-01-01T12:00:01\"")
    );
    assert_eq!(r[2].unexpected_count, 2);
}

#[test]
fn every_failing_row_is_named_by_position_and_id_and_whole_column_checks_have_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_csv(&dir, DATA);
    let suite = vec![
        exp("expect_column_values_to_not_be_null", j!({"column": "id"})),
        exp(
            "expect_column_values_to_be_between",
            j!({"column": "age", "min_value": 0, "max_value": 120}),
        ),
        exp(
            "expect_column_values_to_be_in_set",
            j!({"column": "contract", "value_set": ["one-year", "two-year"]}),
        ),
        exp(
            "expect_column_values_to_be_between",
            j!({"column": "fee", "min_value": 0, "max_value": 25,
                "row_condition": "contract == \"one-year\"", "condition_parser": "pandas"}),
        ),
        exp(
            "expect_column_mean_to_be_between",
            j!({"column": "age", "max_value": 1}),
        ),
        exp("expect_column_values_to_be_unique", j!({"column": "id"})),
    ];
    let report = validate(&path, &suite).unwrap();
    let rows = failing_rows(&path, &suite, &report, &["id".into()]).unwrap();
    let got: Vec<(u32, u64, Option<String>)> = (0..rows.height())
        .map(|i| {
            let e = rows
                .column("expectation")
                .unwrap()
                .u32()
                .unwrap()
                .get(i)
                .unwrap();
            let r = rows.column("row").unwrap().u64().unwrap().get(i).unwrap();
            let id = rows
                .column("id")
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .map(str::to_string);
            (e, r, id)
        })
        .collect();
    let c = || Some("c".to_string());
    // Expectation 4's fee 30 is out of range, but its contract is not one-year; the null
    // contract is not counted by in_set (a missing value), as GX has it; the mean has no
    // rows of its own.
    let want = vec![
        (1, 1, None), // the null id
        (2, 1, None), // age 150
        (2, 2, c()),  // age -1
        (3, 2, c()),  // weekly
        (6, 2, c()),  // id c, twice
        (6, 3, c()),
    ];
    assert_eq!(got, want);
    assert_eq!(
        rows.column("type").unwrap().str().unwrap().get(0),
        Some("expect_column_values_to_not_be_null")
    );
}
