//! Unit tests of the parent module.

use super::*;
use std::time::Duration;

const EXAMPLE: &str = include_str!("../../../examples/churn/tollgate.yaml");

#[test]
fn the_shipped_example_parses() {
    let spec = ModelSpec::parse(EXAMPLE).unwrap();
    assert_eq!(spec.model, "churn");
    assert_eq!(spec.gates[&Gate::AucRoc].min, Some(0.80));
    assert_eq!(
        spec.plan(TriggerKind::Data).unwrap(),
        &[Stage::Validate, Stage::Train, Stage::Gate, Stage::Promote]
    );
    assert_eq!(
        spec.plan(TriggerKind::Code).unwrap(),
        &[Stage::Validate, Stage::Train, Stage::Gate]
    );
}

#[test]
fn unknown_stage_is_named() {
    let text = EXAMPLE.replace("promote]", "deploy]");
    let err = ModelSpec::parse(&text).unwrap_err().to_string();
    assert!(err.contains("triggers.data[3]: unknown stage \"deploy\"; use one of validate, train, gate, promote, integration, approval, production"), "{err}");
}

#[test]
fn unknown_gate_is_named() {
    let text = EXAMPLE.replace("f1:", "f2:");
    let err = ModelSpec::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("gates.f2: unknown gate \"f2\"; use one of auc_roc,"),
        "{err}"
    );
}

#[test]
fn champion_checks_name_known_metrics() {
    let spec = ModelSpec::parse(EXAMPLE).unwrap();
    assert_eq!(spec.champion[0].metric, Metric::AucRoc);
    assert!(!spec.approvers.is_empty());
    let text = EXAMPLE.replace("- {metric: auc_roc,", "- {metric: auc,");
    let err = ModelSpec::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("champion[0].metric: unknown metric \"auc\""),
        "{err}"
    );
}

#[test]
fn unknown_trigger_kind_is_named_with_the_allowed_ones() {
    let text = EXAMPLE.replace("  manual: [", "  cron: [");
    let err = ModelSpec::parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("triggers.cron: unknown trigger kind \"cron\"; use one of code, data, model, schedule, manual, drift"),
        "{err}"
    );
}

#[test]
fn bad_model_name_is_refused() {
    let text = EXAMPLE.replace("model: churn", "model: Churn Model");
    assert!(ModelSpec::parse(&text).is_err());
}

#[test]
fn the_vendored_gx_fixture_suite_reads_as_is() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/gx/churn_suite.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
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

/// The example with its `algorithm:` block replaced by `block`.
fn with_algorithm(block: &str) -> String {
    let start = EXAMPLE.find("algorithm:").unwrap();
    let end = EXAMPLE[start..].find("\n\n").unwrap() + start;
    format!("{}{block}{}", &EXAMPLE[..start], &EXAMPLE[end..])
}

#[test]
fn every_algorithm_parses_with_defaults_and_overrides() {
    let spec = ModelSpec::parse(EXAMPLE).unwrap();
    assert_eq!(
        spec.algorithms(),
        vec![Algorithm::LogisticRegression {
            alpha: 1.0,
            max_iterations: 100
        }]
    );
    let spec = ModelSpec::parse(&with_algorithm(
        "algorithm: {kind: random_forest, trees: 20, max_depth: 4, criterion: entropy}",
    ))
    .unwrap();
    let Algorithm::RandomForest(f) = &spec.algorithms()[0] else {
        panic!("{:?}", spec.algorithm)
    };
    assert_eq!((f.trees, f.max_depth), (20, 4));
    assert_eq!(f.criterion, Criterion::Entropy);
    assert_eq!(f.sample_fraction, ForestParams::default().sample_fraction);
    for kind in ALGORITHMS {
        let spec =
            ModelSpec::parse(&with_algorithm(&format!("algorithm: {{kind: {kind}}}"))).unwrap();
        assert_eq!(spec.algorithms()[0].kind(), *kind);
    }
}

#[test]
fn bad_hyper_parameters_are_named_with_their_range() {
    for (block, expected) in [
        ("algorithm: {kind: xgboost}", "unknown variant `xgboost`"),
        (
            "algorithm: {kind: decision_tree, max_depth: 0}",
            "algorithm: decision_tree.max_depth must be between 1 and 64, got 0",
        ),
        (
            "algorithm: {kind: random_forest, trees: 0}",
            "random_forest.trees must be between 1 and 1000, got 0",
        ),
        (
            "algorithm: {kind: random_forest, feature_fraction: 1.5}",
            "random_forest.feature_fraction must be in (0, 1], got 1.5",
        ),
        (
            "algorithm: {kind: decision_tree, min_impurity_decrease: 0}",
            "decision_tree.min_impurity_decrease must be a number above 0 (e.g. 1e-7), got 0",
        ),
        (
            "algorithm: {kind: decision_tree, min_samples_split: 1}",
            "decision_tree.min_samples_split must be at least 2",
        ),
        (
            "algorithm: {kind: gaussian_naive_bayes, var_smoothing: -1}",
            "gaussian_naive_bayes.var_smoothing must be a finite number >= 0",
        ),
        (
            "algorithm: {kind: logistic_regression, alpha: -1}",
            "logistic_regression.alpha must be a finite number >= 0",
        ),
        (
            "algorithm: {kind: decision_tree, depth: 3}",
            "unknown field `depth`",
        ),
        (
            "algorithm: {kind: random_forest, tress: 3}",
            "unknown field `tress`",
        ),
        (
            "candidates: {algorithms: [{kind: decision_tree}, {kind: random_forest, trees: 0}]}",
            "candidates.algorithms[1]: random_forest.trees must be between 1 and 1000",
        ),
        (
            "candidates: {metric: auc, algorithms: [{kind: decision_tree}]}",
            "candidates.metric: unknown selection metric \"auc\"; use one of auc_roc, pr_auc, f1, precision, recall, accuracy, log_loss",
        ),
        (
            "candidates: {validation_fraction: 1, algorithms: [{kind: decision_tree}]}",
            "candidates.validation_fraction must be between 0 and 1",
        ),
        (
            "candidates: {algorithms: []}",
            "list at least one algorithm",
        ),
        (
            "algorithm: {kind: decision_tree}\ncandidates: {algorithms: [{kind: decision_tree}]}",
            "give either algorithm or candidates",
        ),
    ] {
        let err = ModelSpec::parse(&with_algorithm(block))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{block}: {err}");
    }
}

#[test]
fn the_shipped_candidates_example_parses() {
    let spec = ModelSpec::parse(include_str!("../../../examples/churn/candidates.yaml")).unwrap();
    let kinds: Vec<_> = spec.algorithms().iter().map(Algorithm::kind).collect();
    assert_eq!(kinds, ALGORITHMS);
    assert_eq!(spec.candidates.unwrap().metric, SelectionMetric::AucRoc);
}

#[test]
fn candidates_list_their_algorithms_in_order() {
    let spec = ModelSpec::parse(&with_algorithm(
        "candidates:\n  metric: log_loss\n  algorithms:\n    - {kind: logistic_regression}\n    - {kind: gaussian_naive_bayes}",
    ))
    .unwrap();
    let c = spec.candidates.as_ref().unwrap();
    assert!(!c.higher_is_better());
    assert_eq!(c.validation_fraction, 0.2);
    let kinds: Vec<_> = spec.algorithms().iter().map(Algorithm::kind).collect();
    assert_eq!(kinds, ["logistic_regression", "gaussian_naive_bayes"]);
}

#[test]
fn concurrency_is_one_mode_or_one_per_plan_and_parallel_by_default() {
    let spec = ModelSpec::parse(EXAMPLE).unwrap();
    assert_eq!(
        spec.concurrency.mode(TriggerKind::Data),
        Concurrency::Parallel
    );
    let every = ModelSpec::parse(&format!("{EXAMPLE}\nconcurrency: queue\n")).unwrap();
    assert_eq!(
        every.concurrency.mode(TriggerKind::Code),
        Concurrency::Queue
    );
    let text = format!("{EXAMPLE}\nconcurrency: {{code: cancel-in-progress, data: queue}}\n");
    let by_plan = ModelSpec::parse(&text).unwrap();
    assert_eq!(
        by_plan.concurrency.mode(TriggerKind::Code),
        Concurrency::CancelInProgress
    );
    assert_eq!(
        by_plan.concurrency.mode(TriggerKind::Data),
        Concurrency::Queue
    );
    assert_eq!(
        by_plan.concurrency.mode(TriggerKind::Manual),
        Concurrency::Parallel
    );
    let err = ModelSpec::parse(&format!("{EXAMPLE}\nconcurrency: latest\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "concurrency: unknown concurrency \"latest\"; use one of parallel, queue, cancel-in-progress"
        ),
        "{err}"
    );
    let err = ModelSpec::parse(&format!("{EXAMPLE}\nconcurrency: {{nightly: queue}}\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown trigger kind \"nightly\""), "{err}");
}

#[test]
fn stage_timeouts_default_per_stage_and_can_be_set() {
    let spec = ModelSpec::parse(EXAMPLE).unwrap();
    assert_eq!(spec.stage_timeout(Stage::Train), Duration::from_secs(3600));
    assert_eq!(spec.stage_timeout(Stage::Gate), Duration::from_secs(900));
    assert_eq!(spec.stage_timeout(Stage::Promote), Duration::from_secs(300));
    let set =
        ModelSpec::parse(&format!("{EXAMPLE}\ntimeouts: {{train: 2h, gate: 30s}}\n")).unwrap();
    assert_eq!(set.stage_timeout(Stage::Train), Duration::from_secs(7200));
    assert_eq!(set.stage_timeout(Stage::Gate), Duration::from_secs(30));
    let err = ModelSpec::parse(&format!("{EXAMPLE}\ntimeouts: {{deploy: 1m}}\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown stage \"deploy\""), "{err}");
    let err = ModelSpec::parse(&format!("{EXAMPLE}\ntimeouts: {{gate: 0s}}\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("timeouts.gate"), "{err}");
}

#[test]
fn a_plan_cannot_skip_the_gate_or_reach_production_without_an_approval() {
    let ungated = EXAMPLE.replace(
        "data: [validate, train, gate, promote]",
        "data: [validate, train, promote]",
    );
    let err = ModelSpec::parse(&ungated).unwrap_err().to_string();
    assert!(
        err.contains("triggers.data: promote must come after gate"),
        "{err}"
    );
    let straight = EXAMPLE.replace(
        "model: [integration, approval]",
        "model: [integration, approval, production]",
    );
    let err = ModelSpec::parse(&straight).unwrap_err().to_string();
    assert!(
        err.contains("triggers.model: production is not a plan stage"),
        "{err}"
    );
}

/// GX writes a partition's open ends as Python's bare `Infinity`; the suite still reads,
/// and the same word inside a string is left alone.
#[test]
fn a_suite_with_pythons_infinities_reads() {
    let text = r#"{"name": "s", "expectations": [{"type": "expect_column_kl_divergence_to_be_less_than",
        "kwargs": {"column": "x", "note": "Infinity \"NaN\"",
                   "partition_object": {"bins": [-Infinity, 0, Infinity], "weights": [0.5, 0.5]}}}]}"#;
    let (_, suite) = read_gx_suite(text).unwrap();
    let k = &suite[0].kwargs;
    assert_eq!(
        k["partition_object"]["bins"],
        serde_json::json!(["-Infinity", 0, "Infinity"])
    );
    assert_eq!(k["note"], "Infinity \"NaN\"");
}

#[test]
fn a_training_command_and_tests_parse_with_their_defaults() {
    let spec = ModelSpec::parse(&with_algorithm(
        "algorithm: {kind: command, run: python3 train.py --max-depth 6}\ntests:\n  gate:\n    - {name: model-quality, run: pytest tests/model -q}\n  integration:\n    - {name: smoke, run: pytest tests/integration -q, timeout_minutes: 10}",
    ))
    .unwrap();
    let command = spec.train_command().unwrap();
    assert_eq!(command.run, "python3 train.py --max-depth 6");
    assert_eq!(command.timeout_minutes, 60);
    assert_eq!(spec.algorithms()[0].kind(), COMMAND);
    assert_eq!(spec.tests.gate[0].name, "model-quality");
    assert_eq!(spec.tests.gate[0].timeout_minutes, 10);
    assert!(spec.needs_code());
    // The stages wait for the user's commands: their timeouts count in the defaults.
    assert_eq!(spec.stage_timeout(Stage::Train).as_secs(), 70 * 60);
    assert_eq!(spec.stage_timeout(Stage::Gate).as_secs(), 25 * 60);
    assert!(!ModelSpec::parse(EXAMPLE).unwrap().needs_code());
}

#[test]
fn bad_commands_and_tests_are_named() {
    for (block, expected) in [
        ("algorithm: {kind: command}", "missing field `run`"),
        (
            "algorithm: {kind: command, run: \" \"}",
            "command.run: give the command line",
        ),
        (
            "algorithm: {kind: command, run: x, timeout_minutes: 0}",
            "command.timeout_minutes must be between 1 and 1440",
        ),
        (
            "candidates: {algorithms: [{kind: command, run: x}]}",
            "a training command cannot be a candidate",
        ),
        (
            "tests: {gate: [{name: a, run: x}, {name: a, run: y}]}",
            "two tests are named \"a\"",
        ),
        ("tests: {gate: [{name: a, run: ''}]}", "tests.gate[0].run"),
        ("tests: {gate: [{name: a}]}", "missing field `run`"),
        ("tests: {smoke: []}", "unknown field `smoke`"),
    ] {
        let err = ModelSpec::parse(&with_algorithm(block))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{block}: {err}");
    }
}

#[test]
fn limits_on_folds_candidates_timeouts_and_schedule_frequency() {
    let example = EXAMPLE;
    let refused = |extra: &str, says: &str| {
        let e = ModelSpec::parse(&format!("{example}\n{extra}")).unwrap_err();
        assert!(e.to_string().contains(says), "{extra}: {e}");
    };
    refused("timeouts: {train: 25h}", "timeouts.train: at most 24h");
    let folds = example.replace("  seed: 42\n", "  seed: 42\n  folds: 50\n");
    let e = ModelSpec::parse(&folds).unwrap_err();
    assert!(e.to_string().contains("between 2 and 20"), "{e}");
    let many = (0..17)
        .map(|_| "{kind: gaussian_naive_bayes}")
        .collect::<Vec<_>>()
        .join(", ");
    let candidates = example.replace(
        "algorithm:\n  kind: logistic_regression\n  alpha: 1.0\n  max_iterations: 100\n",
        &format!("candidates:\n  algorithms: [{many}]\n"),
    );
    let e = ModelSpec::parse(&candidates).unwrap_err();
    assert!(e.to_string().contains("at most 16"), "{e}");

    // A schedule parses at any frequency; applying one more often than once a minute is
    // an admin's explicit choice.
    let every_second = ModelSpec::parse(&format!(
        "{example}\nschedule:\n  - {{cron: \"*/5 * * * * *\"}}\n"
    ))
    .unwrap();
    let why = every_second.too_frequent_schedule().unwrap();
    assert!(
        why.contains("every 5s") && why.contains("--allow-frequent-schedule"),
        "{why}"
    );
    let twice_a_day_close = ModelSpec::parse(&format!(
        "{example}\nschedule:\n  - {{cron: \"0,30 0 2 * * *\"}}\n"
    ))
    .unwrap();
    assert!(twice_a_day_close.too_frequent_schedule().is_some());
    let hourly = ModelSpec::parse(&format!(
        "{example}\nschedule:\n  - {{cron: \"0 * * * *\"}}\n"
    ))
    .unwrap();
    assert_eq!(hourly.too_frequent_schedule(), None);
}

#[test]
fn monitor_takes_a_live_auc_floor_over_a_window_of_labels_and_is_policy() {
    let spec = ModelSpec::parse(&format!("{EXAMPLE}\nmonitor: {{min_auc_roc: 0.8}}\n")).unwrap();
    assert_eq!(
        spec.monitor,
        Some(crate::monitor::Monitor {
            min_auc_roc: 0.8,
            window: 500
        })
    );
    for (block, says) in [
        (
            "monitor: {min_auc_roc: 1.5}",
            "monitor.min_auc_roc must be in (0, 1]",
        ),
        (
            "monitor: {min_auc_roc: 0.8, window: 10}",
            "monitor.window must be 50 to 100000",
        ),
        ("monitor: {min_auc: 0.8}", "unknown field"),
    ] {
        let e = ModelSpec::parse(&format!("{EXAMPLE}\n{block}\n")).unwrap_err();
        assert!(e.to_string().contains(says), "{block}: {e}");
    }
    // A proposal cannot turn the policy's monitor off.
    let policy = spec;
    let proposal = ModelSpec::parse(EXAMPLE).unwrap();
    let (effective, changes) = crate::policy::effective(&policy, &proposal);
    assert_eq!(effective.monitor, policy.monitor);
    assert!(
        changes.iter().any(|c| c.starts_with("monitor ")),
        "{changes:?}"
    );
}

#[test]
fn rollout_takes_the_issues_keys_with_durations_in_seconds_minutes_and_hours() {
    let block = "rollout:\n  shadow: {share: 1.0, duration: 30m}\n  canary: {steps: [5, 25, 50, 100], step: 15m}\n  analysis:\n    max_error_rate: 0.01\n    max_latency_p99_ms: 10\n    min_agreement: 0.9\n    max_prediction_drift: 0.1\n    min_auc_roc: 0.80\n    min_labels: 200\n";
    let spec = ModelSpec::parse(&format!("{EXAMPLE}\n{block}")).unwrap();
    let r = spec.rollout.clone().unwrap();
    let shadow = r.shadow.unwrap();
    assert_eq!(shadow.duration.0, std::time::Duration::from_secs(1800));
    assert_eq!(r.canary.steps, vec![5, 25, 50, 100]);
    assert_eq!(r.canary.step.0, std::time::Duration::from_secs(900));
    assert_eq!(r.analysis.min_agreement, Some(0.9));
    assert_eq!(r.analysis.min_labels, 200);
    let short = ModelSpec::parse(&format!(
        "{EXAMPLE}\nrollout: {{canary: {{steps: [50, 100], step: 30s}}}}\n"
    ))
    .unwrap();
    let short = short.rollout.unwrap();
    assert_eq!(short.canary.step.0, std::time::Duration::from_secs(30));
    assert_eq!(short.shadow, None);
    assert_eq!(short.analysis.min_auc_roc, None);
    let hourly = ModelSpec::parse(&format!(
        "{EXAMPLE}\nrollout: {{canary: {{steps: [100], step: 1h}}}}\n"
    ))
    .unwrap();
    assert_eq!(
        hourly.rollout.unwrap().canary.step.0,
        std::time::Duration::from_secs(3600)
    );
    for (block, says) in [
        (
            "rollout: {canary: {steps: [5, 50], step: 1m}}",
            "must end at 100",
        ),
        (
            "rollout: {canary: {steps: [50, 25, 100], step: 1m}}",
            "must rise",
        ),
        (
            "rollout: {canary: {steps: [100], step: 10 minutes please}}",
            "not a duration",
        ),
        (
            "rollout: {shadow: {share: 2, duration: 1m}, canary: {steps: [100], step: 1m}}",
            "rollout.shadow.share",
        ),
        (
            "rollout: {canary: {steps: [100], step: 1m}, analysis: {min_agreement: 1.2}}",
            "rollout.analysis.min_agreement",
        ),
        (
            "rollout: {canary: {steps: [100], step: 1m}, analysis: {max_errors: 1}}",
            "unknown field",
        ),
    ] {
        let e = ModelSpec::parse(&format!("{EXAMPLE}\n{block}\n")).unwrap_err();
        assert!(e.to_string().contains(says), "{block}: {e}");
    }
    // A proposal cannot change or drop the policy's rollout.
    let proposal = ModelSpec::parse(EXAMPLE).unwrap();
    let (effective, changes) = crate::policy::effective(&spec, &proposal);
    assert_eq!(effective.rollout, spec.rollout);
    assert!(
        changes.iter().any(|c| c.starts_with("rollout ")),
        "{changes:?}"
    );
}

#[test]
fn a_data_source_is_a_uri_or_a_table_with_its_watermark() {
    let spec = ModelSpec::parse(&format!(
        "{EXAMPLE}\ndata:\n  source: s3://churn-data/incoming/\n  interval: 30s\n"
    ))
    .unwrap();
    let data = spec.data.unwrap();
    assert_eq!(data.source, "s3://churn-data/incoming/");
    assert_eq!(data.watermark, None);
    assert_eq!(data.interval.0, std::time::Duration::from_secs(30));
    assert_eq!(data.debounce.0, std::time::Duration::from_secs(30));
    let table = ModelSpec::parse(&format!(
        "{EXAMPLE}\ndata:\n  source: {{uri: \"postgres://ml@db/crm?table=customers\", watermark: updated_at}}\n"
    ))
    .unwrap()
    .data
    .unwrap();
    assert_eq!(table.source, "postgres://ml@db/crm?table=customers");
    assert_eq!(table.watermark.as_deref(), Some("updated_at"));
    assert_eq!(table.interval.0, std::time::Duration::from_secs(60));
    for (block, says) in [
        (
            "data: {source: {uri: \"s3://b/p/\", watermark: t}}",
            "watermark is for a postgres:// source",
        ),
        ("data: {source: \"http://x/y.parquet\"}", "data.source"),
        (
            "data: {source: {uri: \"postgres://a@b/c?table=t\", column: t}}",
            "data",
        ),
    ] {
        let e = ModelSpec::parse(&format!("{EXAMPLE}\n{block}\n")).unwrap_err();
        assert!(e.to_string().contains(says), "{block}: {e}");
    }
}
