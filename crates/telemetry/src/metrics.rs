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

/// The namespace every metric name starts with.
pub const NAMESPACE: &str = "tollgate";

/// What kind of instrument a metric is: it decides the Prometheus series it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic count (`_total` in Prometheus).
    Counter,
    /// A histogram in seconds (`_seconds_bucket`, `_sum`, `_count`).
    Histogram,
    /// A last value (the bare name).
    Gauge,
}

/// Every metric the services record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Runs ended, by `model`, `trigger` and `verdict`.
    Runs,
    /// Seconds from a run's creation to its verdict, by `model`, `trigger` and `verdict`.
    RunDuration,
    /// Seconds each stage took, by `stage` and `status`.
    StageDuration,
    /// Seconds of training, by `model` and `algorithm`.
    TrainingDuration,
    /// Data validations, by `model` and `result` (`passed` or `failed`).
    Validations,
    /// Expectations that failed, by `model`.
    ExpectationsFailed,
    /// Gate decisions, by `model` and `verdict` (`passed` or `blocked`).
    GateDecisions,
    /// Gate checks that failed, by `model`.
    GateChecksFailed,
    /// A held-out metric of a model version, by `model`, `version` and `metric`.
    ModelMetric,
    /// Messages moved to the dead-letter stream, by `stage`.
    DeadLettered,
    /// A served version's figure on the labels that arrived (`auc_roc`, `f1`, `log_loss`,
    /// `labels`, `positive_rate`), by `model`, `version` and `metric`.
    LiveMetric,
}

impl Metric {
    /// Every metric, for the check that the alert rules and dashboard read only these.
    pub const ALL: [Metric; 11] = [
        Metric::Runs,
        Metric::RunDuration,
        Metric::StageDuration,
        Metric::TrainingDuration,
        Metric::Validations,
        Metric::ExpectationsFailed,
        Metric::GateDecisions,
        Metric::GateChecksFailed,
        Metric::ModelMetric,
        Metric::DeadLettered,
        Metric::LiveMetric,
    ];

    /// The name after the namespace, its kind, its unit and its description.
    fn parts(self) -> (&'static str, Kind, &'static str, &'static str) {
        use Kind::*;
        match self {
            Metric::Runs => (
                "runs",
                Counter,
                "{run}",
                "Runs ended, by trigger and verdict",
            ),
            Metric::RunDuration => ("run.duration", Histogram, "s", "Run creation to verdict"),
            Metric::StageDuration => ("stage.duration", Histogram, "s", "Time in each stage"),
            Metric::TrainingDuration => (
                "training.duration",
                Histogram,
                "s",
                "Reading, fitting and scoring in the trainer",
            ),
            Metric::Validations => (
                "validation.runs",
                Counter,
                "{validation}",
                "Data validations, by result",
            ),
            Metric::ExpectationsFailed => (
                "validation.expectations.failed",
                Counter,
                "{expectation}",
                "Expectations that failed",
            ),
            Metric::GateDecisions => (
                "gate.decisions",
                Counter,
                "{decision}",
                "Gate decisions, by verdict",
            ),
            Metric::GateChecksFailed => (
                "gate.checks.failed",
                Counter,
                "{check}",
                "Gate checks that failed",
            ),
            Metric::ModelMetric => (
                "model.metric",
                Gauge,
                "",
                "Held-out metrics of each model version",
            ),
            Metric::DeadLettered => (
                "messages.dead_lettered",
                Counter,
                "{message}",
                "Messages moved to the dead-letter stream",
            ),
            Metric::LiveMetric => (
                "model.live",
                Gauge,
                "",
                "Served versions' figures on the labels that arrived",
            ),
        }
    }

    /// The OpenTelemetry name, e.g. `tollgate.run.duration`.
    pub fn name(self) -> String {
        format!("{NAMESPACE}.{}", self.parts().0)
    }

    /// The instrument kind.
    pub fn kind(self) -> Kind {
        self.parts().1
    }

    /// The series a collector's Prometheus exporter makes of it: `.` becomes `_`, a
    /// counter adds `_total`, and a histogram in seconds gives `_seconds_bucket`, `_sum`
    /// and `_count`.
    pub fn prometheus_names(self) -> Vec<String> {
        let base = self.name().replace('.', "_");
        match self.kind() {
            Kind::Counter => vec![format!("{base}_total")],
            Kind::Gauge => vec![base],
            Kind::Histogram => ["bucket", "sum", "count"]
                .iter()
                .map(|suffix| format!("{base}_seconds_{suffix}"))
                .collect(),
        }
    }
}

/// Every series name the metrics become in Prometheus.
pub fn prometheus_names() -> Vec<String> {
    Metric::ALL
        .iter()
        .flat_map(|m| m.prometheus_names())
        .collect()
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
    live_metric: Gauge<f64>,
}

/// The process's instruments. Call it after [`crate::init`], so they bind to the exporter.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter(NAMESPACE);
        let counter = |m: Metric| {
            let (_, _, unit, description) = m.parts();
            meter
                .u64_counter(m.name())
                .with_unit(unit)
                .with_description(description)
                .build()
        };
        let histogram = |m: Metric| {
            let (_, _, unit, description) = m.parts();
            meter
                .f64_histogram(m.name())
                .with_unit(unit)
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        let gauge = |m: Metric| {
            let (_, _, _, description) = m.parts();
            meter
                .f64_gauge(m.name())
                .with_description(description)
                .build()
        };
        Metrics {
            runs: counter(Metric::Runs),
            run_duration: histogram(Metric::RunDuration),
            stage_duration: histogram(Metric::StageDuration),
            training_duration: histogram(Metric::TrainingDuration),
            validations: counter(Metric::Validations),
            expectations_failed: counter(Metric::ExpectationsFailed),
            gate_decisions: counter(Metric::GateDecisions),
            gate_checks_failed: counter(Metric::GateChecksFailed),
            model_metric: gauge(Metric::ModelMetric),
            dead_lettered: counter(Metric::DeadLettered),
            live_metric: gauge(Metric::LiveMetric),
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

    /// Version `version` of `model` stands at `figures` on the labels that arrived.
    pub fn live<'a>(
        &self,
        model: &str,
        version: u32,
        figures: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        for (name, value) in figures {
            self.live_metric.record(
                value,
                &[
                    kv("model", model.to_string()),
                    kv("version", i64::from(version)),
                    kv("metric", name.to_string()),
                ],
            );
        }
    }

    /// A message of `stage` went to the dead-letter stream.
    pub fn dead_lettered(&self, stage: &str) {
        self.dead_lettered.add(1, &[kv("stage", stage.to_string())]);
    }
}

#[cfg(test)]
mod tests;
