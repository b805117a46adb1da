//! Unit tests of the parent module.

use super::*;
use crate::{
    grade::{evaluate, integration},
    synth::{SynthOptions, churn},
};

const SPEC: &str = include_str!("../../../../examples/churn/tollgate.yaml");

#[test]
fn trains_on_generated_churn_data_past_the_default_gates() {
    let dir = tempfile::tempdir().unwrap();
    let path = churn_file(dir.path(), "churn.parquet", 5_000, 1);
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
    let check = integration(&back, 100).unwrap();
    assert_eq!(check.golden, GOLDEN_RECORDS);
    assert_eq!(check.max_difference, 0.0);
    assert_eq!(check.out_of_range, 0);
}

#[test]
fn same_data_spec_and_seed_give_the_same_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let path = churn_file(dir.path(), "churn.csv", 2_000, 3);
    let spec = ModelSpec::parse(SPEC).unwrap();
    let first = train(&spec, SPEC, &path, "c").unwrap();
    let a = first.artifact.encode().unwrap();
    let b = train(&spec, SPEC, &path, "c")
        .unwrap()
        .artifact
        .encode()
        .unwrap();
    assert_eq!(crate::artifact::digest(&a), crate::artifact::digest(&b));
    let back = Artifact::decode(&a).unwrap();
    assert!(back.meta.training_seconds > 0.0);
    assert_eq!(back.meta.training_seconds, first.seconds);
    assert!(
        back.meta
            .algorithm
            .starts_with("logistic_regression(alpha=1")
    );
}

#[test]
fn training_time_is_outside_the_digest_but_the_model_is_inside() {
    let dir = tempfile::tempdir().unwrap();
    let path = churn_file(dir.path(), "churn.csv", 1_000, 4);
    let spec = ModelSpec::parse(SPEC).unwrap();
    let mut artifact = train(&spec, SPEC, &path, "c").unwrap().artifact;
    let before = crate::artifact::digest(&artifact.encode().unwrap());
    artifact.meta.training_seconds += 100.0;
    let slower = artifact.encode().unwrap();
    assert_eq!(crate::artifact::digest(&slower), before);
    assert_eq!(
        Artifact::decode_verified(&slower, &before)
            .unwrap()
            .meta
            .training_seconds,
        artifact.meta.training_seconds
    );
    artifact.meta.code_commit = "d".into();
    assert_ne!(crate::artifact::digest(&artifact.encode().unwrap()), before);
    let mut truncated = slower.clone();
    truncated.truncate(40);
    let err = Artifact::decode(&truncated).unwrap_err().to_string();
    assert!(err.contains("truncated"), "{err}");
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
    for algorithm in [
        Algorithm::default(),
        Algorithm::DecisionTree(Default::default()),
        Algorithm::RandomForest(Default::default()),
        Algorithm::GaussianNaiveBayes {
            var_smoothing: 1e-9,
        },
    ] {
        let x = ndarray::Array2::zeros((20, 2));
        let err = learners::fit(&algorithm, x, &[1; 20], 1, &Progress::silent())
            .unwrap_err()
            .to_string();
        assert!(err.contains("one class only"), "{err}");
    }
}

#[test]
fn integration_notices_a_model_that_no_longer_reproduces_its_golden_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = churn_file(dir.path(), "churn.parquet", 2_000, 9);
    let spec = ModelSpec::parse(SPEC).unwrap();
    let mut artifact = train(&spec, SPEC, &path, "c").unwrap().artifact;
    assert_eq!(integration(&artifact, 100).unwrap().max_difference, 0.0);
    let Scorer::Builtin(Builtin {
        model: learners::Model::Logistic(model),
        ..
    }) = &mut artifact.scorer
    else {
        panic!("the example trains a logistic regression");
    };
    model.intercept += 1.0;
    let check = integration(&artifact, 100).unwrap();
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
    let path = churn_file(dir.path(), "c.csv", rows, 4);
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
    let few = churn_csv(12, |_, l| l.to_string());
    let folds =
        train_csv(&few, |s| s.replace("  seed: 42", "  seed: 42\n  folds: 20")).unwrap_err();
    assert!(folds.to_string().contains("than folds (20)"), "{folds}");
    let csv = churn_csv(300, |_, l| l.to_string());
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

/// The example spec with its `algorithm:` block replaced by `block`.
fn with_algorithm(block: &str) -> String {
    let start = SPEC.find("algorithm:").unwrap();
    let end = SPEC[start..].find("\n\n").unwrap() + start;
    format!("{}{block}{}", &SPEC[..start], &SPEC[end..])
}

/// Generated churn data written to `name` (.parquet or .csv) in `dir`.
fn churn_file(dir: &std::path::Path, name: &str, rows: usize, seed: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut df = churn(SynthOptions {
        rows,
        seed,
        dirty: false,
    })
    .unwrap();
    data::write(&mut df, &path).unwrap();
    path
}

#[test]
fn every_algorithm_learns_the_churn_signal_and_round_trips_through_its_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let path = churn_file(dir.path(), "churn.parquet", 4_000, 11);
    for (block, floor) in [
        ("algorithm: {kind: decision_tree, max_depth: 6}", 0.80),
        (
            "algorithm: {kind: random_forest, trees: 20, max_depth: 6}",
            0.85,
        ),
        ("algorithm: {kind: gaussian_naive_bayes}", 0.80),
    ] {
        let text = with_algorithm(block);
        let spec = ModelSpec::parse(&text).unwrap();
        let trained = train(&spec, &text, &path, "c").unwrap();
        let auc = trained.metrics["auc_roc"];
        assert!(auc >= floor, "{block}: auc {auc} < {floor}");
        assert!(trained.metrics["log_loss"].is_finite(), "{block}");
        assert!(
            trained
                .artifact
                .meta
                .algorithm
                .starts_with(spec.algorithms()[0].kind()),
            "{}",
            trained.artifact.meta.algorithm
        );
        let bytes = trained.artifact.encode().unwrap();
        let back = Artifact::decode(&bytes).unwrap();
        assert_eq!(back, trained.artifact);
        let check = integration(&back, 10).unwrap();
        assert_eq!(check.max_difference, 0.0, "{block}");
        assert_eq!(check.out_of_range, 0, "{block}");
        let eval = evaluate(&back, &path, &spec.split, spec.threshold, 10).unwrap();
        assert!((eval.metrics["auc_roc"] - auc).abs() < 1e-12, "{block}");
    }
}

/// The digests of the artifacts `algorithm` trains on `rows` churn rows (seed `seed`) on
/// one thread and on three.
fn digests_on_one_and_three_threads(algorithm: &str, rows: usize, seed: u64) -> [String; 2] {
    let dir = tempfile::tempdir().unwrap();
    let path = churn_file(dir.path(), "churn.parquet", rows, seed);
    let text = with_algorithm(algorithm);
    let spec = ModelSpec::parse(&text).unwrap();
    [1, 3].map(|threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let trained = pool.install(|| train(&spec, &text, &path, "c").unwrap());
        crate::artifact::digest(&trained.artifact.encode().unwrap())
    })
}

#[test]
fn a_forest_is_the_same_on_every_fit_and_thread_count() {
    let [one, three] = digests_on_one_and_three_threads(
        "algorithm: {kind: random_forest, trees: 8, max_depth: 5}",
        1_500,
        12,
    );
    assert_eq!(one, three);
}

#[test]
fn gradient_boosting_is_the_same_on_every_thread_count() {
    // Enough rows that histograms, splits, gradients and the early-stopping scores all
    // run block by block on every core.
    let [one, three] = digests_on_one_and_three_threads(
        "algorithm: {kind: gradient_boosting, trees: 12}",
        40_000,
        13,
    );
    assert_eq!(one, three);
}

#[test]
fn candidates_are_graded_on_a_validation_fold_and_the_best_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = churn_file(dir.path(), "churn.parquet", 3_000, 13);
    // A one-split stump cannot rank customers as well as a logistic regression; the
    // winner must not depend on where it is listed.
    for algorithms in [
        "[{kind: decision_tree, max_depth: 1}, {kind: logistic_regression}]",
        "[{kind: logistic_regression}, {kind: decision_tree, max_depth: 1}]",
    ] {
        let text = with_algorithm(&format!(
            "candidates:\n  metric: auc_roc\n  algorithms: {algorithms}"
        ));
        let spec = ModelSpec::parse(&text).unwrap();
        let trained = train(&spec, &text, &path, "c").unwrap();
        let chosen: Vec<_> = trained.candidates.iter().filter(|c| c.chosen).collect();
        assert_eq!(chosen.len(), 1, "{:?}", trained.candidates);
        assert!(chosen[0].algorithm.starts_with("logistic_regression"));
        let stump = trained
            .candidates
            .iter()
            .find(|c| c.algorithm.starts_with("decision_tree"))
            .unwrap();
        assert!(stump.value < chosen[0].value, "{:?}", trained.candidates);
        assert!(
            trained
                .artifact
                .meta
                .algorithm
                .starts_with("logistic_regression")
        );
        assert!(matches!(
            trained.artifact.scorer,
            Scorer::Builtin(Builtin {
                model: learners::Model::Logistic(_),
                ..
            })
        ));
        let selection = trained.artifact.meta.selection.as_ref().unwrap();
        assert_eq!(selection.metric, "auc_roc");
        assert_eq!(selection.scores.len(), 2);
    }
    // log_loss is minimized: the lower value wins.
    let text = with_algorithm(
        "candidates:\n  metric: log_loss\n  algorithms: [{kind: decision_tree, max_depth: 1}, {kind: logistic_regression}]",
    );
    let spec = ModelSpec::parse(&text).unwrap();
    let trained = train(&spec, &text, &path, "c").unwrap();
    let (chosen, other): (Vec<_>, Vec<_>) = trained.candidates.iter().partition(|c| c.chosen);
    assert!(chosen[0].value < other[0].value, "{:?}", trained.candidates);
}

#[test]
fn too_few_rows_for_a_validation_fold_is_a_clear_error() {
    let csv = churn_csv(20, |_, l| l.to_string());
    let err = train_csv(&csv, |_| {
        with_algorithm(
            "candidates:\n  validation_fraction: 0.5\n  algorithms: [{kind: logistic_regression}, {kind: decision_tree}]",
        )
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("to hold out a validation fold"), "{err}");
}

#[test]
fn cross_validation_chooses_where_one_validation_fold_would_mislead() {
    let dir = tempfile::tempdir().unwrap();
    // 400 rows: the one validation fold (64 rows) favours naive Bayes; five folds favour
    // the logistic regression, which also does better on the held-out test rows.
    let path = churn_file(dir.path(), "churn.parquet", 400, 26);
    let one_text = with_algorithm(
        "candidates:\n  metric: auc_roc\n  algorithms: [{kind: gaussian_naive_bayes}, {kind: logistic_regression}]",
    );
    let cv_text = one_text.replace("  seed: 42", "  seed: 42\n  folds: 5");
    let one = train(&ModelSpec::parse(&one_text).unwrap(), &one_text, &path, "c").unwrap();
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let report = |line: &str| lines.lock().unwrap().push(line.to_string());
    let cv_spec = ModelSpec::parse(&cv_text).unwrap();
    let cv = train_with_progress(&cv_spec, &cv_text, &path, "c", &Progress::new(&report)).unwrap();
    let chosen = |t: &Trained| t.candidates.iter().find(|c| c.chosen).unwrap().clone();
    assert!(
        chosen(&one).algorithm.starts_with("gaussian_naive_bayes"),
        "{:?}",
        one.candidates
    );
    assert!(
        chosen(&cv).algorithm.starts_with("logistic_regression"),
        "{:?}",
        cv.candidates
    );
    for c in &one.candidates {
        assert_eq!((c.folds, c.std), (1, None), "{c:?}");
    }
    for c in &cv.candidates {
        assert_eq!(c.folds, 5, "{c:?}");
        assert!(c.std.is_some_and(|s| s.is_finite() && s > 0.0), "{c:?}");
        assert!(c.value <= chosen(&cv).value, "{:?}", cv.candidates);
    }
    // The winner was refitted on every training row, and its CV figures are reported.
    assert!(
        cv.artifact
            .meta
            .algorithm
            .starts_with("logistic_regression")
    );
    assert_eq!(cv.artifact.meta.train_rows as usize, cv.train_rows);
    assert!(
        cv.metrics["auc_roc"] > one.metrics["auc_roc"],
        "{:?} {:?}",
        cv.metrics,
        one.metrics
    );
    assert!(cv.metrics["cv_auc_roc_mean"].is_finite());
    let said = lines.lock().unwrap().join("\n");
    for line in [
        "fold 1/5, candidate 1/2: ",
        "fold 5/5, candidate 2/2: ",
        "chose logistic_regression",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
}

#[test]
fn a_tie_in_mean_goes_to_the_simpler_model_and_nan_never_wins() {
    // Forest (4) and logistic regression (0) tie: the regression, though listed second.
    assert_eq!(best_of(&[0.9, 0.9], &[4, 0], true), Some(1));
    // Otherwise the better mean wins, whatever its complexity; lower for log loss.
    assert_eq!(best_of(&[0.91, 0.9], &[4, 0], true), Some(0));
    assert_eq!(best_of(&[0.3, 0.2], &[0, 4], false), Some(1));
    // Same complexity: the earlier.
    assert_eq!(best_of(&[0.9, 0.9], &[2, 2], true), Some(0));
    assert_eq!(best_of(&[f64::NAN, 0.5], &[0, 4], true), Some(1));
    assert_eq!(best_of(&[f64::NAN], &[0], true), None);
}
