//! Unit tests of the parent module.

use super::*;
use crate::synth::{SynthOptions, churn};

const SPEC: &str = include_str!("../../../../examples/churn/tollgate.yaml");

#[test]
fn trains_on_generated_churn_data_past_the_default_gates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.parquet");
    let mut df = churn(SynthOptions {
        rows: 5_000,
        seed: 1,
        dirty: false,
    })
    .unwrap();
    data::write(&mut df, &path).unwrap();
    let spec = ModelSpec::parse(SPEC).unwrap();
    let trained = train(&spec, SPEC, &path, "abc").unwrap();
    assert!(trained.metrics["auc_roc"] >= 0.80, "{:?}", trained.metrics);
    assert!(trained.metrics["f1"] >= 0.70, "{:?}", trained.metrics);
    let bytes = trained.artifact.encode().unwrap();
    let back = Artifact::decode_verified(&bytes, &crate::artifact::digest(&bytes)).unwrap();
    assert_eq!(back, trained.artifact);
    let eval = evaluate(&back, &path, &spec.split, 100).unwrap();
    assert!((eval.metrics["auc_roc"] - trained.metrics["auc_roc"]).abs() < 1e-12);
    assert!(eval.latency_p99_ms >= eval.latency_p50_ms);
    let check = integration(&back, 100);
    assert_eq!(check.golden, GOLDEN_RECORDS);
    assert_eq!(check.max_difference, 0.0);
    assert_eq!(check.out_of_range, 0);
}

#[test]
fn same_data_spec_and_seed_give_the_same_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.csv");
    let mut df = churn(SynthOptions {
        rows: 2_000,
        seed: 3,
        dirty: false,
    })
    .unwrap();
    data::write(&mut df, &path).unwrap();
    let spec = ModelSpec::parse(SPEC).unwrap();
    let a = train(&spec, SPEC, &path, "c")
        .unwrap()
        .artifact
        .encode()
        .unwrap();
    let b = train(&spec, SPEC, &path, "c")
        .unwrap()
        .artifact
        .encode()
        .unwrap();
    assert_eq!(crate::artifact::digest(&a), crate::artifact::digest(&b));
}

#[test]
fn another_format_version_is_refused() {
    let mut bytes = b"TOLLGATE".to_vec();
    bytes.extend_from_slice(&9u16.to_le_bytes());
    bytes.extend_from_slice(&[0; 16]);
    let err = Artifact::decode(&bytes).unwrap_err().to_string();
    assert!(err.contains("format version 9"), "{err}");
}

#[test]
fn one_class_only_is_a_clear_error() {
    let x = ndarray::Array2::zeros((20, 2));
    let err = fit_logistic(x, &[1; 20], 1.0, 10).unwrap_err().to_string();
    assert!(err.contains("one class only"), "{err}");
}

#[test]
fn integration_notices_a_model_that_no_longer_reproduces_its_golden_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("churn.parquet");
    let mut df = churn(SynthOptions {
        rows: 2_000,
        seed: 9,
        dirty: false,
    })
    .unwrap();
    data::write(&mut df, &path).unwrap();
    let spec = ModelSpec::parse(SPEC).unwrap();
    let mut artifact = train(&spec, SPEC, &path, "c").unwrap().artifact;
    assert_eq!(integration(&artifact, 100).max_difference, 0.0);
    artifact.model.intercept += 1.0;
    let check = integration(&artifact, 100);
    assert!(check.max_difference > 0.01, "{check:?}");
    assert_eq!(check.out_of_range, 0);
}
