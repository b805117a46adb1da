use tollgate_proto::{ExpectationResult, RunSummary, ValidationReport};

use super::run_json;

#[test]
fn the_validation_table_lists_failing_expectations_first_keeping_their_positions() {
    let result = |column: &str, success: bool| ExpectationResult {
        expectation_type: "expect_column_values_to_not_be_null".into(),
        column: column.into(),
        success,
        ..Default::default()
    };
    let run = RunSummary {
        run_id: "01KBRUN".into(),
        validation: Some(ValidationReport {
            results: vec![
                result("a", true),
                result("b", false),
                result("c", true),
                result("d", false),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let json = run_json(&run, None, None);
    let rows: Vec<(u64, &str)> = json["validation"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["expectation"].as_u64().unwrap(),
                r["column"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [(2, "b"), (4, "d"), (1, "a"), (3, "c")]);
}
