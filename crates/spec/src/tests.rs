//! Unit tests of the parent module.

use super::*;

const EXAMPLE: &str = include_str!("../../../examples/churn/tollgate.yaml");

#[test]
fn the_shipped_example_parses() {
    let spec = ModelSpec::parse(EXAMPLE).unwrap();
    assert_eq!(spec.model, "churn");
    assert_eq!(spec.gates["auc_roc"].min, Some(0.80));
    assert_eq!(
        spec.plan("data").unwrap(),
        &["validate", "train", "gate", "promote"]
    );
    assert_eq!(spec.plan("code").unwrap(), &["validate", "train", "gate"]);
}

#[test]
fn unknown_stage_is_named() {
    let text = EXAMPLE.replace("promote]", "deploy]");
    let err = ModelSpec::parse(&text).unwrap_err().to_string();
    assert!(err.contains("unknown stage \"deploy\""), "{err}");
}

#[test]
fn unknown_gate_is_named() {
    let text = EXAMPLE.replace("f1:", "f2:");
    let err = ModelSpec::parse(&text).unwrap_err().to_string();
    assert!(err.contains("unknown gate \"f2\""), "{err}");
}

#[test]
fn champion_checks_name_known_metrics() {
    let spec = ModelSpec::parse(EXAMPLE).unwrap();
    assert_eq!(spec.champion[0].metric, "auc_roc");
    assert!(!spec.approvers.is_empty());
    let text = EXAMPLE.replace("- {metric: auc_roc,", "- {metric: auc,");
    let err = ModelSpec::parse(&text).unwrap_err().to_string();
    assert!(err.contains("champion: unknown metric \"auc\""), "{err}");
}

#[test]
fn bad_model_name_is_refused() {
    let text = EXAMPLE.replace("model: churn", "model: Churn Model");
    assert!(ModelSpec::parse(&text).is_err());
}
