//! Unit tests of the parent module.

use super::*;

const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.52">
<testcase classname="tests.model.test_quality" name="test_auc" time="0.21" />
<testcase classname="tests.model.test_quality" name="test_recall" time="0.10"><failure message="AssertionError: recall 0.41 is below 0.6&#10;assert 0.41 &gt;= 0.6">def test_recall():
&gt;       assert recall &gt;= 0.6
E       AssertionError: recall 0.41 is below 0.6</failure></testcase>
<testcase classname="tests.model.test_quality" name="test_server" time="0.01"><error message="failed on setup with &quot;ConnectionRefusedError&quot;">ConnectionRefusedError</error></testcase>
<testcase classname="tests.model.test_quality" name="test_slow" time="0.00"><skipped type="pytest.skip" message="needs a GPU">skipped</skipped></testcase>
</testsuite></testsuites>"#;

#[test]
fn pytest_results_become_one_case_each() {
    let cases = parse(PYTEST).unwrap();
    let outcomes: Vec<(&str, Outcome)> = cases
        .iter()
        .map(|c| (c.name.rsplit("::").next().unwrap(), c.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("test_auc", Outcome::Passed),
            ("test_recall", Outcome::Failed),
            ("test_server", Outcome::Error),
            ("test_slow", Outcome::Skipped),
        ]
    );
    assert_eq!(cases[0].name, "tests.model.test_quality::test_auc");
    assert_eq!(cases[1].message, "AssertionError: recall 0.41 is below 0.6");
    assert_eq!(
        cases[2].message,
        "failed on setup with \"ConnectionRefusedError\""
    );
    assert_eq!(cases[3].message, "needs a GPU");
    assert!((cases[0].seconds - 0.21).abs() < 1e-9);
}

#[test]
fn a_failure_without_a_message_takes_its_text() {
    let xml = "<testsuite><testcase name=\"t\"><failure>line one\nexpected 3, got 4</failure></testcase></testsuite>";
    let cases = parse(xml).unwrap();
    assert_eq!(cases[0].outcome, Outcome::Failed);
    assert_eq!(cases[0].message, "expected 3, got 4");
    assert_eq!(cases[0].name, "t");
}

#[test]
fn broken_xml_is_an_error_not_a_panic() {
    assert!(parse("<testsuite><testcase name=\"a\"></testsuit>").is_err());
    assert!(parse("").unwrap().is_empty());
}
