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
    let eval = evaluate(&back, &path, &spec.split, spec.threshold, 100).unwrap();
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

/// Writes `csv` and trains the example spec, edited by `edit`, on it.
fn train_csv(csv: &str, edit: impl Fn(String) -> String) -> Result<Trained, ModelError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv");
    std::fs::write(&path, csv).unwrap();
    let text = edit(SPEC.to_string());
    let spec = ModelSpec::parse(&text).unwrap();
    train(&spec, &text, &path, "c")
}

/// Generated churn data as CSV text with `f` applied to each data line.
fn churn_csv(rows: usize, f: impl Fn(usize, &str) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.csv");
    let mut df = churn(SynthOptions {
        rows,
        seed: 4,
        dirty: false,
    })
    .unwrap();
    data::write(&mut df, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        out += &f(i, l);
        out.push('\n');
    }
    out
}

#[test]
fn text_targets_map_through_positive_label_and_text_numbers_are_coerced() {
    // label 0/1 -> "No"/"Yes"; every 50th tenure blank or garbage (the column becomes text).
    let csv = churn_csv(2_000, |i, line| {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        let last = cells.len() - 1;
        cells[last] = if cells[last] == "1" {
            "Yes".into()
        } else {
            "No".into()
        };
        if i % 50 == 0 {
            cells[2] = if i % 100 == 0 {
                " ".into()
            } else {
                "n/a".into()
            };
        }
        cells.join(",")
    });
    let err = train_csv(&csv, |s| s).unwrap_err().to_string();
    assert!(err.contains("set positive_label"), "{err}");
    let trained = train_csv(&csv, |s| {
        s.replace("target: label", "target: label\npositive_label: \"Yes\"")
    })
    .unwrap();
    assert!(trained.metrics["auc_roc"] > 0.8, "{:?}", trained.metrics);
    assert_eq!(
        trained.coerced,
        [("tenure_months".to_string(), 40)],
        "20 blank strings + 20 \"n/a\""
    );
}

#[test]
fn k_fold_cross_validation_reports_mean_and_std() {
    let csv = churn_csv(2_000, |_, l| l.to_string());
    let t = train_csv(&csv, |s| s.replace("  seed: 42", "  seed: 42\n  folds: 5")).unwrap();
    for k in [
        "cv_auc_roc_mean",
        "cv_auc_roc_std",
        "cv_f1_mean",
        "cv_f1_std",
    ] {
        assert!(t.metrics[k].is_finite(), "{k}: {:?}", t.metrics);
    }
    assert!((t.metrics["cv_auc_roc_mean"] - t.metrics["auc_roc"]).abs() < 0.05);
    for k in [
        "pr_auc",
        "log_loss",
        "tp",
        "fp",
        "tn",
        "fn",
        "f1_optimal_threshold",
    ] {
        assert!(t.metrics.contains_key(k), "{k}");
    }
}

#[test]
fn bad_training_data_is_a_clear_error() {
    let csv = churn_csv(300, |_, l| l.to_string());
    let folds = train_csv(&csv, |s| {
        s.replace("  seed: 42", "  seed: 42\n  folds: 500")
    })
    .unwrap_err();
    assert!(folds.to_string().contains("than folds (500)"), "{folds}");
    let constant = churn_csv(300, |_, l| {
        let mut c: Vec<&str> = l.split(',').collect();
        c[7] = "3";
        c.join(",")
    });
    let err = train_csv(&constant, |s| s).unwrap_err().to_string();
    assert!(
        err.contains("support_calls") && err.contains("constant"),
        "{err}"
    );
    let one_class = churn_csv(300, |_, l| format!("{}0", &l[..l.len() - 1]));
    assert!(
        train_csv(&one_class, |s| s)
            .unwrap_err()
            .to_string()
            .contains("one class only")
    );
    let err = train_csv(&csv, |s| s.replace("target: label", "target: churned"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"churned\" is missing"), "{err}");
    let all_null = churn_csv(300, |_, l| {
        let mut c: Vec<&str> = l.split(',').collect();
        c[4] = "";
        c.join(",")
    });
    let err = train_csv(&all_null, |s| s).unwrap_err().to_string();
    assert!(err.contains("total_charges"), "{err}");
}
