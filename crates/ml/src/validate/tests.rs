//! Unit tests of the parent module.

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

#[test]
fn counts_nulls_out_of_range_out_of_set_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(
        &dir,
        "id,age,contract\na,30,one-year\n,150,one-year\nc,-1,weekly\nc,40,\n",
    );
    let suite = vec![
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
    ];
    let report = validate(&p, &suite).unwrap();
    assert_eq!(report.row_count, 4);
    assert!(!report.success);
    let r = &report.results;
    assert!(!r[0].success, "4 rows is above max 3");
    assert_eq!((r[1].unexpected_count, r[1].success), (1, false));
    assert_eq!(r[2].unexpected_count, 2, "150 and -1");
    assert_eq!(r[2].observed_value, "min -1, max 150");
    assert_eq!(
        (r[3].unexpected_count, r[3].missing_count),
        (1, 1),
        "weekly; one null"
    );
    assert_eq!(r[4].unexpected_count, 2, "both rows with id c");
}

#[test]
fn mostly_tolerates_a_share_of_failures() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(&dir, "x\n1\n2\n3\n\n");
    let suite = vec![exp(
        "expect_column_values_to_not_be_null",
        serde_json::json!({"column": "x", "mostly": 0.7}),
    )];
    assert!(validate(&p, &suite).unwrap().success);
}

#[test]
fn a_missing_column_fails_only_its_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(&dir, "x\n1\n");
    let suite = vec![
        exp(
            "expect_column_values_to_not_be_null",
            serde_json::json!({"column": "nope"}),
        ),
        exp(
            "expect_column_values_to_not_be_null",
            serde_json::json!({"column": "x"}),
        ),
        exp("expect_column_to_be_magic", serde_json::json!({})),
    ];
    let report = validate(&p, &suite).unwrap();
    assert!(
        report.results[0]
            .error
            .contains("\"nope\" is not in the dataset")
    );
    assert!(report.results[1].success);
    assert!(report.results[2].error.contains("unknown expectation type"));
}

#[test]
fn unreadable_parquet_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.parquet");
    std::fs::write(&p, b"this is not parquet").unwrap();
    let err = validate(&p, &[]).unwrap_err();
    assert!(matches!(err, DataError::Unreadable { .. }), "{err}");
}
