//! Unit tests of the parent module.

use super::*;
use tollgate_proto::{
    CheckVerdict, CiContext, Comparison, ExpectationResult, GateCheck, GateDecision, StageResult,
    StageStatus, ValidationReport, Verdict,
};

#[test]
fn a_blocked_run_reads_as_markdown_with_stages_checks_and_deltas() {
    let run = RunSummary {
        run_id: "01JRUN".into(),
        model: "churn".into(),
        verdict: Verdict::Blocked as i32,
        reason: "gate: churn v2 blocked: f1 0.6 not >= 0.7".into(),
        plan: vec![
            Stage::Validate as i32,
            Stage::Train as i32,
            Stage::Gate as i32,
        ],
        stages: vec![
            StageResult {
                stage: Stage::Validate as i32,
                status: StageStatus::Passed as i32,
                duration_ms: 30,
                message: "6 expectations met".into(),
                ..Default::default()
            },
            StageResult {
                stage: Stage::Gate as i32,
                status: StageStatus::Blocked as i32,
                duration_ms: 1200,
                message: "a | b".into(),
                ..Default::default()
            },
        ],
        validation: Some(ValidationReport {
            results: vec![ExpectationResult {
                expectation_type: "expect_column_values_to_not_be_null".into(),
                column: "customer_id".into(),
                unexpected_count: 3,
                element_count: 100,
                ..Default::default()
            }],
            ..Default::default()
        }),
        gate: Some(GateDecision {
            checks: vec![GateCheck {
                name: "f1".into(),
                observed: 0.6,
                threshold: 0.7,
                comparison: Comparison::AtLeast as i32,
                verdict: CheckVerdict::Fail as i32,
                note: String::new(),
                test: false,
            }],
            ..Default::default()
        }),
        code_commit: "abc123".into(),
        ci: Some(CiContext {
            pull_request: 12,
            run_url: "https://ci.example/run/1".into(),
            ..Default::default()
        }),
        model_version: 2,
        ..Default::default()
    };
    let v = |n: u32, auc: f64| ModelVersion {
        version: n,
        metrics: [("auc_roc".to_string(), auc)].into(),
        ..Default::default()
    };
    let md = markdown(&run, Some(&v(2, 0.85)), Some(&v(1, 0.87)));
    assert!(md.starts_with("## Tollgate: churn BLOCKED"), "{md}");
    assert!(
        md.contains("commit `abc123` · PR #12 · [CI run](https://ci.example/run/1)"),
        "{md}"
    );
    assert!(md.contains("| gate | blocked | 1.20s | a \\| b |"), "{md}");
    assert!(md.contains("| train | not run | - | |"), "{md}");
    assert!(
        md.contains("| expect_column_values_to_not_be_null | customer_id | 3 of 100 |"),
        "{md}"
    );
    assert!(md.contains("| f1 | 0.6000 | >= 0.7 | FAIL |"), "{md}");
    assert!(
        md.contains("| auc_roc | 0.8500 | 0.8700 | -0.0200 |"),
        "{md}"
    );
}
