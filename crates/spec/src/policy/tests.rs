//! Unit tests of the parent module.

use super::*;

const EXAMPLE: &str = include_str!("../../../../examples/churn/tollgate.yaml");

fn spec(edit: impl Fn(String) -> String) -> ModelSpec {
    ModelSpec::parse(&edit(EXAMPLE.to_string())).unwrap()
}

#[test]
fn the_same_spec_proposes_nothing() {
    let policy = spec(|s| s);
    let (merged, changes) = effective(&policy, &policy);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(merged, policy);
}

#[test]
fn a_hostile_pull_request_changes_nothing_it_may_not_and_says_so() {
    let policy = spec(|s| s);
    let hostile = spec(|s| {
        let s = s.replace("approvers: [alice, bob]", "approvers: [mallory]");
        let start = s.find("gates:").unwrap();
        let end = s.find("# No worse than").unwrap();
        let s = format!("{}gates: {{}}\n\n{}", &s[..start], &s[end..]);
        s.replace("code: [validate, train, gate]", "code: [gate, promote]")
    });
    let (merged, changes) = effective(&policy, &hostile);
    assert_eq!(merged.approvers, ["alice", "bob"]);
    assert_eq!(merged.gates, policy.gates);
    assert_eq!(merged.triggers, policy.triggers);
    let all = changes.join("\n");
    assert!(
        all.contains("approvers [\"alice\", \"bob\"] → [\"mallory\"]: needs `tollgate apply`"),
        "{all}"
    );
    assert!(all.contains("gates.auc_roc (min 0.8) is dropped"), "{all}");
    assert!(
        all.contains("gates.model_size_mb (max 500) is dropped"),
        "{all}"
    );
    assert!(
        all.contains("triggers.code [validate, train, gate] → [gate, promote]"),
        "{all}"
    );
}

#[test]
fn a_gate_may_get_stricter_but_not_looser() {
    let policy = spec(|s| s);
    let stricter = spec(|s| s.replace("f1: {min: 0.70}", "f1: {min: 0.80}"));
    let (merged, changes) = effective(&policy, &stricter);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(merged.gates[&Gate::F1].min, Some(0.8));
    let looser = spec(|s| {
        s.replace("f1: {min: 0.70}", "f1: {min: 0.55}")
            .replace("latency_p99_ms: {max: 100}", "latency_p99_ms: {max: 900}")
    });
    let (merged, changes) = effective(&policy, &looser);
    assert_eq!(
        changes,
        [
            "gates.f1 min 0.7 → 0.55: needs `tollgate apply`",
            "gates.latency_p99_ms max 100 → 900: needs `tollgate apply`"
        ]
    );
    assert_eq!(merged.gates[&Gate::F1].min, Some(0.7));
    assert_eq!(merged.gates[&Gate::LatencyP99Ms].max, Some(100.0));
    // A gate the policy does not have is only stricter.
    let added = spec(|s| s.replace("f1: {min: 0.70}", "f1: {min: 0.70}\n  recall: {min: 0.6}"));
    let (merged, changes) = effective(&policy, &added);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(merged.gates[&Gate::Recall].min, Some(0.6));
}

#[test]
fn what_is_trained_and_tested_is_the_proposal_s() {
    let policy = spec(|s| s);
    let proposal = spec(|s| {
        s.replace(
            "algorithm:\n  kind: logistic_regression\n  alpha: 1.0\n  max_iterations: 100\n",
            "algorithm: {kind: random_forest, trees: 20}\n",
        )
        .replace("numeric: [age, tenure_months,", "numeric: [tenure_months,")
    });
    let (merged, changes) = effective(&policy, &proposal);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(merged.algorithms()[0].kind(), "random_forest");
    assert!(!merged.features.numeric.contains(&"age".to_string()));
}

#[test]
fn the_effective_spec_reads_back_as_json() {
    let policy =
        spec(|s| s + "\nschedule: default\nconcurrency: cancel-in-progress\nthreshold: optimal\n");
    let proposal =
        spec(|s| s.replace("f1: {min: 0.70}", "f1: {min: 0.75}") + "\nthreshold: optimal\n");
    let (merged, _) = effective(&policy, &proposal);
    let text = serde_json::to_string(&merged).unwrap();
    let back = ModelSpec::parse(&text).unwrap();
    assert_eq!(back, merged);
}
