//! The run metrics every service records, named once here in OpenTelemetry's style
//! (`tollgate.run.duration`, unit `s`). They go to the global meter: exported over OTLP
//! when [`crate::init`] found an endpoint, dropped otherwise. A collector's Prometheus
//! exporter names them with `_` for `.` and the unit as a suffix
//! (`tollgate_run_duration_seconds`), which is what `deploy/prometheus/rules.yml` reads.

use std::sync::OnceLock;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Gauge, Histogram},
};

/// Histogram buckets in seconds for runs, stages and training: fine below a minute, and
/// edges at the brief's 30- and 60-minute training targets so alert rules can count
/// trainings past them.
pub const DURATION_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// Every metric name, for the check that the alert rules and dashboard read only these.
/// [`prometheus_names`] gives the names a collector's Prometheus exporter turns them into.
pub const NAMES: &[&str] = &[
    RUNS,
    RUN_DURATION,
    STAGE_DURATION,
    TRAINING_DURATION,
    VALIDATIONS,
    EXPECTATIONS_FAILED,
    GATE_DECISIONS,
    GATE_CHECKS_FAILED,
    MODEL_METRIC,
    DEAD_LETTERED,
];

/// Runs ended, by `model`, `trigger` and `verdict`.
pub const RUNS: &str = "tollgate.runs";
/// Seconds from a run's creation to its verdict, by `model`, `trigger` and `verdict`.
pub const RUN_DURATION: &str = "tollgate.run.duration";
/// Seconds each stage took, by `stage` and `status`.
pub const STAGE_DURATION: &str = "tollgate.stage.duration";
/// Seconds of training, by `model` and `algorithm`.
pub const TRAINING_DURATION: &str = "tollgate.training.duration";
/// Data validations, by `model` and `result` (`passed` or `failed`).
pub const VALIDATIONS: &str = "tollgate.validation.runs";
/// Expectations that failed, by `model`.
pub const EXPECTATIONS_FAILED: &str = "tollgate.validation.expectations.failed";
/// Gate decisions, by `model` and `verdict` (`passed` or `blocked`).
pub const GATE_DECISIONS: &str = "tollgate.gate.decisions";
/// Gate checks that failed, by `model`.
pub const GATE_CHECKS_FAILED: &str = "tollgate.gate.checks.failed";
/// A held-out metric of a model version, by `model`, `version` and `metric`.
pub const MODEL_METRIC: &str = "tollgate.model.metric";
/// Messages moved to the dead-letter stream, by `stage`.
pub const DEAD_LETTERED: &str = "tollgate.messages.dead_lettered";

/// The series names a collector's Prometheus exporter makes of [`NAMES`]: `.` becomes
/// `_`, a unit of seconds adds `_seconds`, a counter adds `_total`, and a histogram's
/// series end in `_bucket`, `_sum` and `_count`.
pub fn prometheus_names() -> Vec<String> {
    let mut out = Vec::new();
    for name in NAMES {
        let base = name.replace('.', "_");
        if [RUN_DURATION, STAGE_DURATION, TRAINING_DURATION].contains(name) {
            for suffix in ["bucket", "sum", "count"] {
                out.push(format!("{base}_seconds_{suffix}"));
            }
        } else if *name == MODEL_METRIC {
            out.push(base);
        } else {
            out.push(format!("{base}_total"));
        }
    }
    out
}

/// The instruments, made once from the global meter.
pub struct Metrics {
    runs: Counter<u64>,
    run_duration: Histogram<f64>,
    stage_duration: Histogram<f64>,
    training_duration: Histogram<f64>,
    validations: Counter<u64>,
    expectations_failed: Counter<u64>,
    gate_decisions: Counter<u64>,
    gate_checks_failed: Counter<u64>,
    model_metric: Gauge<f64>,
    dead_lettered: Counter<u64>,
}

/// The process's instruments. Call it after [`crate::init`], so they bind to the exporter.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = opentelemetry::global::meter("tollgate");
        Metrics {
            runs: m
                .u64_counter(RUNS)
                .with_unit("{run}")
                .with_description("Runs ended, by trigger and verdict")
                .build(),
            run_duration: m
                .f64_histogram(RUN_DURATION)
                .with_unit("s")
                .with_description("Run creation to verdict")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            stage_duration: m
                .f64_histogram(STAGE_DURATION)
                .with_unit("s")
                .with_description("Time in each stage")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            training_duration: m
                .f64_histogram(TRAINING_DURATION)
                .with_unit("s")
                .with_description("Reading, fitting and scoring in the trainer")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            validations: m
                .u64_counter(VALIDATIONS)
                .with_unit("{validation}")
                .with_description("Data validations, by result")
                .build(),
            expectations_failed: m
                .u64_counter(EXPECTATIONS_FAILED)
                .with_unit("{expectation}")
                .with_description("Expectations that failed")
                .build(),
            gate_decisions: m
                .u64_counter(GATE_DECISIONS)
                .with_unit("{decision}")
                .with_description("Gate decisions, by verdict")
                .build(),
            gate_checks_failed: m
                .u64_counter(GATE_CHECKS_FAILED)
                .with_unit("{check}")
                .with_description("Gate checks that failed")
                .build(),
            model_metric: m
                .f64_gauge(MODEL_METRIC)
                .with_description("Held-out metrics of each model version")
                .build(),
            dead_lettered: m
                .u64_counter(DEAD_LETTERED)
                .with_unit("{message}")
                .with_description("Messages moved to the dead-letter stream")
                .build(),
        }
    })
}

fn kv(key: &'static str, value: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(key, value)
}

impl Metrics {
    /// A run of `model` ended with `verdict` after `seconds`.
    pub fn run_ended(&self, model: &str, trigger: &str, verdict: &str, seconds: f64) {
        let attrs = [
            kv("model", model.to_string()),
            kv("trigger", trigger.to_string()),
            kv("verdict", verdict.to_string()),
        ];
        self.runs.add(1, &attrs);
        self.run_duration.record(seconds, &attrs);
    }

    /// A stage ended with `status` after `seconds`.
    pub fn stage_ended(&self, stage: &str, status: &str, seconds: f64) {
        self.stage_duration.record(
            seconds,
            &[
                kv("stage", stage.to_string()),
                kv("status", status.to_string()),
            ],
        );
    }

    /// The trainer fitted `model` with `algorithm` in `seconds`; `version` scored `metrics`.
    pub fn trained<'a>(
        &self,
        model: &str,
        algorithm: &str,
        version: u32,
        seconds: f64,
        metrics: impl IntoIterator<Item = (&'a String, &'a f64)>,
    ) {
        self.training_duration.record(
            seconds,
            &[
                kv("model", model.to_string()),
                kv("algorithm", algorithm.to_string()),
            ],
        );
        for (name, value) in metrics {
            self.model_metric.record(
                *value,
                &[
                    kv("model", model.to_string()),
                    kv("version", i64::from(version)),
                    kv("metric", name.clone()),
                ],
            );
        }
    }

    /// A validation of `model`'s data ended, `failed` expectations unmet.
    pub fn validated(&self, model: &str, failed: u64) {
        let result = if failed == 0 { "passed" } else { "failed" };
        let m = kv("model", model.to_string());
        self.validations
            .add(1, &[m.clone(), kv("result", result.to_string())]);
        self.expectations_failed.add(failed, &[m]);
    }

    /// The gate decided on `model`: `passed` or not, `failed` of its checks unmet.
    pub fn gated(&self, model: &str, passed: bool, failed: u64) {
        let verdict = if passed { "passed" } else { "blocked" };
        let m = kv("model", model.to_string());
        self.gate_decisions
            .add(1, &[m.clone(), kv("verdict", verdict.to_string())]);
        self.gate_checks_failed.add(failed, &[m]);
    }

    /// A message of `stage` went to the dead-letter stream.
    pub fn dead_lettered(&self, stage: &str) {
        self.dead_lettered.add(1, &[kv("stage", stage.to_string())]);
    }
}

#[cfg(test)]
mod tests;
