//! Training the spec's algorithm (or the best of its candidates) on the spec's features,
//! and grading an artifact on the held-out rows: the code the trainer and the gate share.

use std::{collections::BTreeMap, path::Path, time::Instant};

use tollgate_spec::{Algorithm, Candidates, ModelSpec};

use crate::{
    artifact::{Artifact, ArtifactMeta, Golden, Selection},
    data::{self, DataError},
    features::{Columns, FeaturePipeline, Table},
    learners::{self, Model, Progress},
    metrics, split,
};

/// Why training or evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The data could not be read or used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The data cannot train a binary classifier.
    #[error("cannot train: {0}")]
    Train(String),
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The artifact to store.
    pub artifact: Artifact,
    /// Held-out metrics.
    pub metrics: BTreeMap<String, f64>,
    /// Rows trained on and held out.
    pub train_rows: usize,
    /// Rows held out.
    pub test_rows: usize,
    /// Numeric columns that arrived as text, with how many values became null.
    pub coerced: Vec<(String, usize)>,
    /// Profile of the training rows: the reference later data is compared with.
    pub profile: crate::profile::Profile,
    /// Wall time of reading, fitting and scoring.
    pub seconds: f64,
    /// Each candidate's validation score and fit time, when the spec listed candidates.
    pub candidates: Vec<CandidateResult>,
}

/// How one candidate did on the validation fold.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateResult {
    /// The algorithm with its hyper-parameters.
    pub algorithm: String,
    /// Its value of the selection metric.
    pub value: f64,
    /// Seconds to fit it.
    pub seconds: f64,
    /// Whether it was kept.
    pub chosen: bool,
}

/// Held-out records stored in the artifact for the integration test.
pub const GOLDEN_RECORDS: usize = 20;

fn load_table(columns: &Columns, path: &Path) -> Result<Table, ModelError> {
    let df = data::read_columns(path, &columns.all())?;
    Ok(Table::from_frame(&df, columns)?)
}

fn score(artifact: &Artifact, table: &Table, rows: &[usize]) -> Vec<f64> {
    let mut buf = vec![0.0; artifact.pipeline.width()];
    rows.iter()
        .map(|&i| {
            artifact.pipeline.encode(&table.record(i), &mut buf);
            artifact.model.predict(&buf)
        })
        .collect()
}

/// Fits the feature pipeline and the model on `rows`.
fn fit(
    spec: &ModelSpec,
    algorithm: &Algorithm,
    table: &Table,
    rows: &[usize],
    progress: &Progress<'_>,
) -> Result<(FeaturePipeline, Model), ModelError> {
    let pipeline = FeaturePipeline::fit(spec, table, rows)?;
    let x = pipeline.transform(table, rows);
    let y = labels_of(table, rows);
    let model = learners::fit(algorithm, x, &y, spec.split.seed, progress)?;
    Ok((pipeline, model))
}

fn labels_of(table: &Table, rows: &[usize]) -> Vec<u8> {
    rows.iter().map(|&i| table.target[i]).collect()
}

/// Fits every candidate on the training rows less a stratified validation fold, scores
/// each on the fold by the named metric and returns the best (the earlier on a tie).
fn select(
    spec: &ModelSpec,
    candidates: &Candidates,
    table: &Table,
    rows: &[usize],
    progress: &Progress<'_>,
) -> Result<(Algorithm, Vec<CandidateResult>), ModelError> {
    let row_labels = labels_of(table, rows);
    let (fit_at, validate_at) = split::stratified(
        &row_labels,
        spec.split.seed.rotate_left(29),
        candidates.validation_fraction,
    );
    let fit_rows: Vec<usize> = fit_at.iter().map(|&k| rows[k]).collect();
    let validation_rows: Vec<usize> = validate_at.iter().map(|&k| rows[k]).collect();
    if fit_rows.len() < 10 || validation_rows.is_empty() {
        return Err(ModelError::Train(format!(
            "too few training rows ({}) to hold out a validation fold of {} for choosing among candidates",
            rows.len(),
            candidates.validation_fraction
        )));
    }
    let pipeline = FeaturePipeline::fit(spec, table, &fit_rows)?;
    let x = pipeline.transform(table, &fit_rows);
    let y = labels_of(table, &fit_rows);
    let validation = pipeline.transform(table, &validation_rows);
    let validation_labels = labels_of(table, &validation_rows);
    let mut results = Vec::new();
    let mut best: Option<(usize, f64)> = None;
    for (k, algorithm) in candidates.algorithms.iter().enumerate() {
        let started = Instant::now();
        let model =
            learners::fit(algorithm, x.clone(), &y, spec.split.seed, progress).map_err(|e| {
                ModelError::Train(format!("candidate {} ({}): {e}", k + 1, algorithm.kind()))
            })?;
        let seconds = started.elapsed().as_secs_f64();
        let scores: Vec<f64> = validation
            .rows()
            .into_iter()
            .map(|r| model.predict(&r.to_vec()))
            .collect();
        let cut = spec
            .threshold
            .resolve(metrics::f1_optimal_threshold(&scores, &validation_labels));
        let value = metrics::classification(&scores, &validation_labels, cut)
            .get(&candidates.metric)
            .copied()
            .unwrap_or(f64::NAN);
        let better = |old: f64| {
            if candidates.higher_is_better() {
                value > old
            } else {
                value < old
            }
        };
        if value.is_finite() && best.is_none_or(|(_, old)| better(old)) {
            best = Some((k, value));
        }
        progress(&format!(
            "candidate {}/{}: {} validation {} {value:.4} ({seconds:.2}s)",
            k + 1,
            candidates.algorithms.len(),
            algorithm.describe(),
            candidates.metric
        ));
        results.push(CandidateResult {
            algorithm: algorithm.describe(),
            value,
            seconds,
            chosen: false,
        });
    }
    let Some((k, _)) = best else {
        return Err(ModelError::Train(format!(
            "no candidate has a finite validation {}",
            candidates.metric
        )));
    };
    results[k].chosen = true;
    Ok((candidates.algorithms[k].clone(), results))
}

/// k-fold cross-validation on the training rows: mean and std of AUC-ROC and F1 at 0.5,
/// as `cv_<metric>_mean` / `cv_<metric>_std`.
fn cross_validate(
    spec: &ModelSpec,
    algorithm: &Algorithm,
    table: &Table,
    rows: &[usize],
    k: usize,
    progress: &Progress<'_>,
) -> Result<BTreeMap<String, f64>, ModelError> {
    if rows.len() < k {
        return Err(ModelError::Train(format!(
            "fewer training rows ({}) than folds ({k})",
            rows.len()
        )));
    }
    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (n, fold) in split::folds(&table.target, rows, k, spec.split.seed)
        .into_iter()
        .enumerate()
    {
        progress(&format!("cross-validation fold {}/{k}", n + 1));
        let fit_rows: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|i| fold.binary_search(i).is_err())
            .collect();
        let (pipeline, model) = fit(spec, algorithm, table, &fit_rows, &|_| {})?;
        let scores: Vec<f64> = fold
            .iter()
            .map(|&i| pipeline.score(&model, &table.record(i)))
            .collect();
        let labels = labels_of(table, &fold);
        let m = metrics::classification(&scores, &labels, 0.5);
        for name in ["auc_roc", "f1"] {
            seen.entry(name.into())
                .or_default()
                .push(m.get(name).copied().unwrap_or(f64::NAN));
        }
    }
    let mut out = BTreeMap::new();
    for (name, values) in seen {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        out.insert(format!("cv_{name}_mean"), mean);
        out.insert(format!("cv_{name}_std"), std);
    }
    Ok(out)
}

/// Trains the spec's model on the dataset at `path`.
pub fn train(
    spec: &ModelSpec,
    spec_text: &str,
    path: &Path,
    code_commit: &str,
) -> Result<Trained, ModelError> {
    train_with_progress(spec, spec_text, path, code_commit, &|_| {})
}

/// [`train`], telling `progress` as each candidate, fold and the final fit finishes.
pub fn train_with_progress(
    spec: &ModelSpec,
    spec_text: &str,
    path: &Path,
    code_commit: &str,
    progress: &Progress<'_>,
) -> Result<Trained, ModelError> {
    let started = Instant::now();
    let table = load_table(&Columns::of_spec(spec), path)?;
    let (train_rows, test_rows) =
        split::stratified(&table.target, spec.split.seed, spec.split.test_fraction);
    if train_rows.len() < 10 || test_rows.is_empty() {
        return Err(ModelError::Train(format!(
            "too few rows to train and test ({} rows)",
            table.rows()
        )));
    }
    let (algorithm, candidates) = match &spec.candidates {
        Some(c) => select(spec, c, &table, &train_rows, progress)?,
        None => (spec.algorithms().remove(0), Vec::new()),
    };
    let cv = match spec.split.folds {
        Some(k) => cross_validate(spec, &algorithm, &table, &train_rows, k, progress)?,
        None => BTreeMap::new(),
    };
    progress(&format!(
        "fitting {} on {} rows",
        algorithm.describe(),
        train_rows.len()
    ));
    let (pipeline, model) = fit(spec, &algorithm, &table, &train_rows, progress)?;
    let mut artifact = Artifact {
        pipeline,
        model,
        meta: ArtifactMeta {
            model: spec.model.clone(),
            spec_digest: tollgate_spec::digest(spec_text),
            dataset_digest: file_digest(path)?,
            code_commit: code_commit.into(),
            metrics: BTreeMap::new(),
            split_seed: spec.split.seed,
            test_fraction: spec.split.test_fraction,
            train_rows: train_rows.len() as u64,
            target: spec.target.clone(),
            positive_label: spec.positive_label.clone(),
            optimal_threshold: 0.5,
            golden: Vec::new(),
            algorithm: algorithm.describe(),
            selection: spec.candidates.as_ref().map(|c| Selection {
                metric: c.metric.clone(),
                scores: candidates
                    .iter()
                    .map(|r| (r.algorithm.clone(), r.value))
                    .collect(),
            }),
            training_seconds: 0.0,
        },
    };
    let scores = score(&artifact, &table, &test_rows);
    let labels = labels_of(&table, &test_rows);
    let optimal = metrics::f1_optimal_threshold(&scores, &labels);
    let mut metrics = metrics::classification(&scores, &labels, spec.threshold.resolve(optimal));
    metrics.insert("f1_optimal_threshold".into(), optimal);
    metrics.extend(cv);
    artifact.meta.optimal_threshold = optimal;
    artifact.meta.metrics = metrics.clone();
    artifact.meta.golden = test_rows
        .iter()
        .zip(&scores)
        .take(GOLDEN_RECORDS)
        .map(|(&i, &probability)| Golden {
            record: table.record(i),
            probability,
        })
        .collect();
    let profile = crate::profile::of_table(
        &table,
        &spec.features.numeric,
        &spec.features.categorical,
        &train_rows,
    );
    let seconds = started.elapsed().as_secs_f64();
    artifact.meta.training_seconds = seconds;
    Ok(Trained {
        artifact,
        metrics,
        train_rows: train_rows.len(),
        test_rows: test_rows.len(),
        coerced: table.coerced.clone(),
        profile,
        seconds,
        candidates,
    })
}

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
    let table = load_table(&artifact.columns(), path)?;
    let (_, test_rows) = split::stratified(&table.target, split.seed, split.test_fraction);
    if test_rows.is_empty() {
        return Err(ModelError::Train("the test split is empty".into()));
    }
    let scores = score(artifact, &table, &test_rows);
    let labels = labels_of(&table, &test_rows);
    let cut = threshold.resolve(artifact.meta.optimal_threshold);
    let mut metrics = metrics::classification(&scores, &labels, cut);
    metrics.insert("threshold".into(), cut);
    let records: Vec<_> = test_rows
        .iter()
        .take(latency_calls)
        .map(|&i| table.record(i))
        .collect();
    let (latency_p50_ms, latency_p99_ms) = latency(artifact, &records, latency_calls);
    Ok(Evaluation {
        metrics,
        latency_p50_ms,
        latency_p99_ms,
        test_rows: test_rows.len(),
    })
}

/// Median and 99th-percentile milliseconds of `calls` single-record predictions over
/// `records` (cycled), after a warm-up pass.
pub fn latency(
    artifact: &Artifact,
    records: &[crate::features::Record],
    calls: usize,
) -> (f64, f64) {
    if records.is_empty() || calls == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut sink = 0.0;
    for r in records.iter().take(10) {
        sink += artifact.score(r);
    }
    let mut times = Vec::with_capacity(calls);
    for k in 0..calls {
        let t = Instant::now();
        sink += artifact.score(&records[k % records.len()]);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    std::hint::black_box(sink);
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

/// Replays the artifact's golden records: predictions, ranges and latency.
pub fn integration(artifact: &Artifact, calls: usize) -> Integration {
    let mut max_difference: f64 = 0.0;
    let mut out_of_range = 0;
    for g in &artifact.meta.golden {
        let p = artifact.score(&g.record);
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            out_of_range += 1;
        }
        max_difference = max_difference.max((p - g.probability).abs());
    }
    let records: Vec<_> = artifact
        .meta
        .golden
        .iter()
        .map(|g| g.record.clone())
        .collect();
    Integration {
        golden: records.len(),
        max_difference,
        out_of_range,
        latency_p99_ms: latency(artifact, &records, calls).1,
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
    Ok((0..df.height())
        .map(|i| {
            artifact.score(&crate::features::Record {
                numeric: numeric.iter().map(|c| c[i]).collect(),
                categorical: categorical.iter().map(|c| c[i].clone()).collect(),
            })
        })
        .collect())
}

/// sha256 of a file's bytes.
pub fn file_digest(path: &Path) -> Result<String, DataError> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).map_err(|e| data::unreadable(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| data::unreadable(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests;
