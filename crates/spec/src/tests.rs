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

#[test]
fn the_shared_gx_fixture_suite_reads_as_is() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/gx/churn_suite.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (the shared fixtures sit beside the clone)"));
    let (name, suite) = read_gx_suite(&text).unwrap();
    assert_eq!(name, "churn_suite");
    assert_eq!(suite.len(), 9);
    assert_eq!(suite[3].kind, "expect_column_values_to_be_between");
    assert_eq!(suite[3].kwargs["column"], "age");
}

#[test]
fn a_gx_suite_without_expectations_is_refused() {
    let err = read_gx_suite(r#"{"name": "x"}"#).unwrap_err().to_string();
    assert!(err.contains("no \"expectations\" list"), "{err}");
}

#[test]
fn threshold_is_a_probability_or_optimal() {
    assert_eq!(
        ModelSpec::parse(EXAMPLE).unwrap().threshold,
        Threshold::Half
    );
    let with = |t: &str| ModelSpec::parse(&format!("{EXAMPLE}\nthreshold: {t}\n"));
    assert_eq!(with("optimal").unwrap().threshold, Threshold::Optimal);
    assert_eq!(with("0.3").unwrap().threshold.resolve(0.7), 0.3);
    assert_eq!(with("optimal").unwrap().threshold.resolve(0.7), 0.7);
    assert!(
        with("1.5")
            .unwrap_err()
            .to_string()
            .contains("between 0 and 1")
    );
    assert!(
        with("best")
            .unwrap_err()
            .to_string()
            .contains("use a probability or `optimal`")
    );
}
