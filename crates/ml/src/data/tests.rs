//! Unit tests of the parent module: files that are not what they claim, and columns the
//! model cannot use, are clear errors.

use super::*;

fn csv(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_csv_cut_mid_line_is_refused_and_one_without_a_final_newline_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let cut = csv(&dir, "cut.csv", "a,b,\"c,d\"\n1,2,\"3,4\"\n5,6");
    let err = scan(&cut).err().unwrap().to_string();
    assert!(
        err.contains("its last line has 2 of the header's 3 fields and no line end"),
        "{err}"
    );
    let whole = csv(&dir, "whole.csv", "a,b,\"c,d\"\n1,2,\"3,4\"\n5,6,7");
    assert!(scan(&whole).is_ok());
}

#[test]
fn parquet_must_start_with_its_magic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    std::fs::write(&path, b"XXXX not parquet PAR1").unwrap();
    let err = scan(&path).err().unwrap().to_string();
    assert!(err.contains("does not start with PAR1"), "{err}");
}

#[test]
fn a_missing_column_lists_a_dozen_of_the_columns_there_are() {
    let header: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = csv(
        &dir,
        "wide.csv",
        &format!("{}\n{}\n", header.join(","), vec!["1"; 50].join(",")),
    );
    let (_, schema) = scan(&path).unwrap();
    let err = require_columns(&schema, &["age".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "column \"age\" is missing from the dataset (it has: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11 and 38 more)"
    );
}

#[test]
fn words_and_non_finite_values_in_a_numeric_column_are_errors_and_no_value_texts_are_missing() {
    let frame = |values: &[&str]| {
        DataFrame::new(values.len(), vec![Column::new("x".into(), values.to_vec())]).unwrap()
    };
    let (values, missing) =
        numeric_column_coerced(&frame(&["1", " n/a", "", "NA", "2.5"]), "x").unwrap();
    assert_eq!(values, [Some(1.0), None, None, None, Some(2.5)]);
    assert_eq!(missing, 3);
    let err = numeric_column_coerced(&frame(&["1", "12 USD", "x"]), "x")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "column \"x\": 2 values are not numbers (e.g. \"12 USD\" in row 2); fix them, or list the column under features.categorical"
    );
    let floats = DataFrame::new(
        3,
        vec![Column::new("x".into(), [1.0, f64::NAN, f64::INFINITY])],
    )
    .unwrap();
    let err = numeric_column(&floats, "x").unwrap_err().to_string();
    assert!(
        err.contains("2 values are NaN or infinite (the first in row 2)"),
        "{err}"
    );
}
