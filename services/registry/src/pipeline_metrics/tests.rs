//! Unit tests of the parent module.

use super::*;
use tollgate_proto::{GateCheck, GateDecision, Stage, StageResult, TriggerKind, Verdict};

#[test]
fn a_blocked_run_reports_its_stages_auc_and_gate_count() {
    let check = |name: &str, observed: f64, verdict: CheckVerdict| GateCheck {
        name: name.into(),
        observed,
        verdict: verdict as i32,
        ..Default::default()
    };
    let run = RunSummary {
        run_id: "01J".into(),
        model: "churn".into(),
        model_version: 3,
        trigger: TriggerKind::Data as i32,
        verdict: Verdict::Blocked as i32,
        reason: "f1 0.61 < 0.70".into(),
        created_unix_ms: 1_700_000_000_000,
        finished_unix_ms: 1_700_000_001_500,
        stages: vec![StageResult {
            stage: Stage::Train as i32,
            status: StageStatus::Passed as i32,
            duration_ms: 250,
            message: "registered".into(),
            ..Default::default()
        }],
        gate: Some(GateDecision {
            blessed: false,
            checks: vec![
                check("auc_roc", 0.83, CheckVerdict::Pass),
                check("f1", 0.61, CheckVerdict::Fail),
                check("auc_roc vs Production", 0.0, CheckVerdict::Skipped),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let m = PipelineMetrics::of(&run);
    assert_eq!(m.verdict, "blocked");
    assert_eq!(m.trigger, "data");
    assert_eq!(m.model_version, Some(3));
    assert_eq!(m.total_duration_s, Some(1.5));
    assert_eq!(m.auc_roc, Some(0.83));
    assert_eq!(
        (m.gate_checks_passed, m.gate_checks_total),
        (Some(1), Some(2))
    );
    assert_eq!(m.stages[0].stage, "train");
    assert_eq!(m.stages[0].duration_s, 0.25);
    assert_eq!(m.created_at, "2023-11-14T22:13:20.000Z");
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["stages"][0]["status"], "passed");
    assert!(json["finished_at"].is_string());
}

#[test]
fn the_record_carries_the_provenance_ci_recorded_and_null_where_it_did_not() {
    let run = RunSummary {
        run_id: "01J".into(),
        code_commit: "abc123".into(),
        requested_by: "octocat".into(),
        ci: Some(tollgate_proto::CiContext {
            git_ref: "refs/pull/12/merge".into(),
            pull_request: 12,
            actor: "octocat".into(),
            run_url: "https://github.com/acme/churn/actions/runs/7".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let json = serde_json::to_value(PipelineMetrics::of(&run)).unwrap();
    assert_eq!(json["commit"], "abc123");
    assert_eq!(json["ref"], "refs/pull/12/merge");
    assert_eq!(json["pull_request"], 12);
    assert_eq!(json["actor"], "octocat");
    assert_eq!(
        json["ci_run_url"],
        "https://github.com/acme/churn/actions/runs/7"
    );
    assert_eq!(json["requested_by"], "octocat");
    let bare = serde_json::to_value(PipelineMetrics::of(&RunSummary::default())).unwrap();
    for key in [
        "commit",
        "ref",
        "pull_request",
        "actor",
        "ci_run_url",
        "requested_by",
    ] {
        assert!(bare[key].is_null(), "{key}: {}", bare[key]);
    }
}
