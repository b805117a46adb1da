//! Grading an artifact: its metrics on the held-out rows, single-record latency, the
//! integration test of its golden records, and scoring a whole file. The gate, the
//! promoter and `tollgate predict` share it.

use std::{collections::BTreeMap, path::Path, time::Instant};

use crate::{
    artifact::{Artifact, Score},
    data,
    error::ModelError,
    metrics, split,
    table::{Record, Table},
};

/// The gate's own measurement of an artifact on the held-out rows.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Metrics; the threshold ones at the threshold the spec asks for (`threshold`).
    pub metrics: BTreeMap<String, f64>,
    /// Median single-record latency, encoding included, in milliseconds.
    pub latency_p50_ms: f64,
    /// 99th-percentile single-record latency, in milliseconds.
    pub latency_p99_ms: f64,
    /// Rows scored.
    pub test_rows: usize,
    /// The test records the latency was timed on, for timing them through a server too.
    pub latency_records: Vec<Record>,
}

/// Scores `artifact` on the test rows of the dataset at `path` under `split` (the same
/// rows for a challenger and its champion), threshold metrics at `threshold`, and times at least `latency_calls`
/// single-record predictions (raw record in, probability out). The columns read are the
/// ones the artifact's own pipeline was fitted on.
pub fn evaluate(
    artifact: &Artifact,
    path: &Path,
    split: &tollgate_spec::Split,
    threshold: tollgate_spec::Threshold,
    latency_calls: usize,
) -> Result<Evaluation, ModelError> {
    let table = Table::load(&artifact.columns(), path)?;
    let (_, test_rows) = split::stratified(&table.target, split.seed, split.test_fraction);
    if test_rows.is_empty() {
        return Err(ModelError::Train("the test split is empty".into()));
    }
    let scores = artifact.score_rows(&table, &test_rows)?;
    let labels = table.labels(&test_rows);
    let cut = threshold.resolve(artifact.meta.optimal_threshold);
    let mut metrics = metrics::classification(&scores, &labels, cut);
    metrics.insert("threshold".into(), cut);
    let records: Vec<_> = test_rows
        .iter()
        .take(latency_calls)
        .map(|&i| table.record(i))
        .collect();
    let (latency_p50_ms, latency_p99_ms) = latency(artifact, &records, latency_calls)?;
    Ok(Evaluation {
        metrics,
        latency_p50_ms,
        latency_p99_ms,
        test_rows: test_rows.len(),
        latency_records: records,
    })
}

/// Median and 99th-percentile milliseconds of `calls` single-record predictions over
/// `records` (cycled), after a warm-up pass.
pub fn latency(
    artifact: &Artifact,
    records: &[Record],
    calls: usize,
) -> Result<(f64, f64), ModelError> {
    if records.is_empty() || calls == 0 {
        return Ok((f64::NAN, f64::NAN));
    }
    let mut sink = 0.0;
    for r in records.iter().take(10) {
        sink += artifact.score(r)?;
    }
    let mut times = Vec::with_capacity(calls);
    for k in 0..calls {
        let t = Instant::now();
        sink += artifact.score(&records[k % records.len()])?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    std::hint::black_box(sink);
    Ok(percentiles(&mut times))
}

/// The median and 99th percentile of `times` (sorted in place); NaN when empty.
pub fn percentiles(times: &mut [f64]) -> (f64, f64) {
    if times.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    (pct(0.5), pct(0.99))
}

/// What the integration test of a deployed artifact found.
#[derive(Debug, Clone)]
pub struct Integration {
    /// Golden records checked.
    pub golden: usize,
    /// Largest difference from the probability the trainer recorded.
    pub max_difference: f64,
    /// Probabilities outside [0, 1] or not finite.
    pub out_of_range: usize,
    /// 99th-percentile single-record latency in milliseconds.
    pub latency_p99_ms: f64,
}

/// Replays the artifact's golden records in process: predictions, ranges and latency.
pub fn integration(artifact: &Artifact, calls: usize) -> Result<Integration, ModelError> {
    let records = golden_records(artifact);
    let probabilities = artifact.score_records(&records)?;
    Ok(integration_of(
        artifact,
        &probabilities,
        latency(artifact, &records, calls)?.1,
    ))
}

/// The artifact's golden records, in order.
pub fn golden_records(artifact: &Artifact) -> Vec<Record> {
    artifact
        .meta
        .golden
        .iter()
        .map(|g| g.record.clone())
        .collect()
}

/// Grades the probabilities a deployment gave the golden records (in their order)
/// against the trainer's, with the latency measured on the way.
pub fn integration_of(
    artifact: &Artifact,
    probabilities: &[f64],
    latency_p99_ms: f64,
) -> Integration {
    let mut max_difference: f64 = 0.0;
    let mut out_of_range = 0;
    for (g, &p) in artifact.meta.golden.iter().zip(probabilities) {
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            out_of_range += 1;
        }
        max_difference = max_difference.max((p - g.probability).abs());
    }
    if probabilities.len() != artifact.meta.golden.len() {
        max_difference = f64::INFINITY;
    }
    Integration {
        golden: artifact.meta.golden.len(),
        max_difference,
        out_of_range,
        latency_p99_ms,
    }
}

/// P(label = 1) for every row of the dataset at `path` through the artifact's pipeline;
/// the target column need not be there.
pub fn predict_file(artifact: &Artifact, path: &Path) -> Result<Vec<f64>, ModelError> {
    let cols = artifact.columns();
    let mut names = cols.numeric.clone();
    names.extend(cols.categorical.iter().cloned());
    let df = data::read_columns(path, &names)?;
    let numeric = cols
        .numeric
        .iter()
        .map(|c| data::numeric_column(&df, c))
        .collect::<Result<Vec<_>, _>>()?;
    let categorical = cols
        .categorical
        .iter()
        .map(|c| data::text_column(&df, c))
        .collect::<Result<Vec<_>, _>>()?;
    let records: Vec<Record> = (0..df.height())
        .map(|i| Record {
            numeric: numeric.iter().map(|c| c[i]).collect(),
            categorical: categorical.iter().map(|c| c[i].clone()).collect(),
        })
        .collect();
    Ok(artifact.score_records(&records)?)
}
