//! Training the spec's algorithm (or the best of its candidates, chosen on a validation
//! fold, or by k-fold cross-validation when the spec has `split.folds`) on the spec's
//! features: the trainer's and `tollgate train`'s code.

use std::{collections::BTreeMap, path::Path, time::Instant};

use tollgate_spec::{Algorithm, Candidates, ModelSpec};

use crate::{
    artifact::{
        Artifact, ArtifactMeta, Builtin, Golden, Lineage, Origin, Score, Scorer, Selection,
        score_rows,
    },
    data,
    error::ModelError,
    features::FeaturePipeline,
    learners::{self, Model, Progress},
    metrics,
    onnx::{Classes, OnnxModel},
    split,
    table::{Columns, Table},
};

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
    /// Seconds of the final fit alone (feature pipeline and model, on every training
    /// row); 0 for a model made outside Tollgate.
    pub fit_seconds: f64,
    /// Each candidate's validation score and fit time, when the spec listed candidates.
    pub candidates: Vec<CandidateResult>,
}

/// How one candidate did on the validation fold, or across the cross-validation folds.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateResult {
    /// The algorithm with its hyper-parameters.
    pub algorithm: String,
    /// Its value of the selection metric (the mean over the folds, under cross-validation).
    pub value: f64,
    /// The standard deviation over the folds; `None` when one validation fold chose.
    pub std: Option<f64>,
    /// The folds it was scored on: 1 for the validation fold, `split.folds` under
    /// cross-validation.
    pub folds: usize,
    /// Seconds to fit it (summed over the folds).
    pub seconds: f64,
    /// Whether it was kept.
    pub chosen: bool,
}

/// Held-out records stored in the artifact for the integration test.
pub const GOLDEN_RECORDS: usize = 20;

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
    let y = table.labels(rows);
    let model = learners::fit(algorithm, x, &y, spec.split.seed, progress)?;
    Ok((pipeline, model))
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
    let row_labels = table.labels(rows);
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
    let y = table.labels(&fit_rows);
    let validation_labels = table.labels(&validation_rows);
    let mut results = Vec::new();
    for (k, algorithm) in candidates.algorithms.iter().enumerate() {
        progress.check()?;
        let started = Instant::now();
        let model = learners::fit(algorithm, x.clone(), &y, spec.split.seed, progress).map_err(
            |e| match e {
                learners::LearnError::Interrupted => ModelError::from(e),
                e => ModelError::Train(format!("candidate {} ({}): {e}", k + 1, algorithm.kind())),
            },
        )?;
        let seconds = started.elapsed().as_secs_f64();
        let scores = score_rows(&pipeline, &model, table, &validation_rows);
        let value = selection_value(spec, candidates, &scores, &validation_labels);
        progress.say(&format!(
            "candidate {}/{}: {} validation {} {value:.4} ({seconds:.2}s)",
            k + 1,
            candidates.algorithms.len(),
            algorithm.describe(),
            candidates.metric
        ));
        results.push(CandidateResult {
            algorithm: algorithm.describe(),
            value,
            std: None,
            folds: 1,
            seconds,
            chosen: false,
        });
    }
    let values: Vec<f64> = results.iter().map(|r| r.value).collect();
    // One fold: a tie keeps the earlier candidate, whatever its complexity.
    let same = vec![0; values.len()];
    let Some(k) = best_of(&values, &same, candidates.higher_is_better()) else {
        return Err(ModelError::Train(format!(
            "no candidate has a finite validation {}",
            candidates.metric
        )));
    };
    results[k].chosen = true;
    Ok((candidates.algorithms[k].clone(), results))
}

/// What one algorithm scored on each cross-validation fold.
#[derive(Debug, Default)]
struct FoldScores {
    /// The selection metric per fold (at the spec's threshold), when choosing.
    selection: Vec<f64>,
    /// AUC-ROC and F1 at 0.5 per fold: the run's `cv_*` metrics.
    reported: BTreeMap<String, Vec<f64>>,
    /// Seconds of fitting, summed over the folds.
    seconds: f64,
}

/// Mean and population standard deviation.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, std)
}

impl FoldScores {
    /// `cv_<metric>_mean` and `cv_<metric>_std` of AUC-ROC and F1 at 0.5.
    fn cv_metrics(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (name, values) in &self.reported {
            let (mean, std) = mean_std(values);
            out.insert(format!("cv_{name}_mean"), mean);
            out.insert(format!("cv_{name}_std"), std);
        }
        out
    }
}

/// k stratified folds of the training rows: on each, the feature pipeline is fitted on
/// the other folds and every algorithm is fitted and scored on the fold held out. With
/// `choosing`, each fold also records the candidates' selection metric.
fn fold_scores(
    spec: &ModelSpec,
    algorithms: &[Algorithm],
    choosing: Option<&Candidates>,
    table: &Table,
    rows: &[usize],
    k: usize,
    progress: &Progress<'_>,
) -> Result<Vec<FoldScores>, ModelError> {
    if rows.len() < k {
        return Err(ModelError::Train(format!(
            "fewer training rows ({}) than folds ({k})",
            rows.len()
        )));
    }
    let mut scores: Vec<FoldScores> = algorithms.iter().map(|_| FoldScores::default()).collect();
    for (n, fold) in split::folds(&table.target, rows, k, spec.split.seed)
        .into_iter()
        .enumerate()
    {
        progress.check()?;
        let fit_rows: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|i| fold.binary_search(i).is_err())
            .collect();
        let pipeline = FeaturePipeline::fit(spec, table, &fit_rows)?;
        let x = pipeline.transform(table, &fit_rows);
        let y = table.labels(&fit_rows);
        let labels = table.labels(&fold);
        for (j, algorithm) in algorithms.iter().enumerate() {
            progress.check()?;
            let started = Instant::now();
            let model = learners::fit(algorithm, x.clone(), &y, spec.split.seed, &progress.quiet())
                .map_err(|e| match e {
                    learners::LearnError::Interrupted => ModelError::from(e),
                    e if choosing.is_some() => ModelError::Train(format!(
                        "candidate {} ({}) on fold {}: {e}",
                        j + 1,
                        algorithm.kind(),
                        n + 1
                    )),
                    e => ModelError::from(e),
                })?;
            let seconds = started.elapsed().as_secs_f64();
            let predicted = score_rows(&pipeline, &model, table, &fold);
            let at_half = metrics::classification(&predicted, &labels, 0.5);
            let s = &mut scores[j];
            s.seconds += seconds;
            for name in ["auc_roc", "f1"] {
                s.reported
                    .entry(name.into())
                    .or_default()
                    .push(at_half.get(name).copied().unwrap_or(f64::NAN));
            }
            match choosing {
                Some(c) => {
                    let value = selection_value(spec, c, &predicted, &labels);
                    s.selection.push(value);
                    progress.say(&format!(
                        "fold {}/{k}, candidate {}/{}: {} {} {value:.4} ({seconds:.2}s)",
                        n + 1,
                        j + 1,
                        algorithms.len(),
                        algorithm.describe(),
                        c.metric
                    ));
                }
                None => progress.say(&format!(
                    "cross-validation fold {}/{k}: auc_roc {:.4} ({seconds:.2}s)",
                    n + 1,
                    at_half.get("auc_roc").copied().unwrap_or(f64::NAN)
                )),
            }
        }
    }
    Ok(scores)
}

/// k-fold cross-validation of one algorithm on the training rows: mean and std of
/// AUC-ROC and F1 at 0.5, as `cv_<metric>_mean` / `cv_<metric>_std`.
fn cross_validate(
    spec: &ModelSpec,
    algorithm: &Algorithm,
    table: &Table,
    rows: &[usize],
    k: usize,
    progress: &Progress<'_>,
) -> Result<BTreeMap<String, f64>, ModelError> {
    let scores = fold_scores(
        spec,
        std::slice::from_ref(algorithm),
        None,
        table,
        rows,
        k,
        progress,
    )?;
    Ok(scores
        .first()
        .map(FoldScores::cv_metrics)
        .unwrap_or_default())
}

/// A candidate's selection metric on rows it did not fit: at the spec's threshold (the
/// F1-optimal one on these rows when the spec says `optimal`); NaN when undefined.
fn selection_value(
    spec: &ModelSpec,
    candidates: &Candidates,
    scores: &[f64],
    labels: &[u8],
) -> f64 {
    let cut = spec
        .threshold
        .resolve(metrics::f1_optimal_threshold(scores, labels));
    metrics::classification(scores, labels, cut)
        .get(candidates.metric.name())
        .copied()
        .unwrap_or(f64::NAN)
}

/// The index of the best finite value (the higher, or with `higher` false the lower); a
/// tie goes to the lower complexity, then to the earlier.
fn best_of(means: &[f64], complexity: &[u8], higher: bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (j, &mean) in means.iter().enumerate() {
        if !mean.is_finite() {
            continue;
        }
        let Some(b) = best else {
            best = Some(j);
            continue;
        };
        let tied = (means[b] - mean).abs() <= 1e-12;
        let better = if higher {
            mean > means[b]
        } else {
            mean < means[b]
        };
        if (better && !tied) || (tied && complexity[j] < complexity[b]) {
            best = Some(j);
        }
    }
    best
}

/// The algorithm training fits on all training rows, how the candidates did, and its
/// cross-validated `cv_*` metrics (empty without `split.folds`).
struct Chosen {
    algorithm: Algorithm,
    candidates: Vec<CandidateResult>,
    cv: BTreeMap<String, f64>,
}

/// Chooses among the candidates by their mean selection metric over k cross-validation
/// folds (a tie goes to the simpler model, then the earlier); the chosen one's `cv_*`
/// metrics come from the same folds.
fn select_by_cv(
    spec: &ModelSpec,
    candidates: &Candidates,
    table: &Table,
    rows: &[usize],
    k: usize,
    progress: &Progress<'_>,
) -> Result<Chosen, ModelError> {
    let algorithms = &candidates.algorithms;
    let scores = fold_scores(spec, algorithms, Some(candidates), table, rows, k, progress)?;
    let mut results: Vec<CandidateResult> = algorithms
        .iter()
        .zip(&scores)
        .map(|(algorithm, s)| {
            let (value, std) = mean_std(&s.selection);
            CandidateResult {
                algorithm: algorithm.describe(),
                value,
                std: Some(std),
                folds: k,
                seconds: s.seconds,
                chosen: false,
            }
        })
        .collect();
    let means: Vec<f64> = results.iter().map(|r| r.value).collect();
    let complexity: Vec<u8> = algorithms.iter().map(Algorithm::complexity).collect();
    let best = best_of(&means, &complexity, candidates.higher_is_better());
    let Some(b) = best else {
        return Err(ModelError::Train(format!(
            "no candidate has a finite cross-validated {}",
            candidates.metric
        )));
    };
    results[b].chosen = true;
    progress.say(&format!(
        "chose {} by mean {} over {k} folds: {:.4} ± {:.4}",
        results[b].algorithm,
        candidates.metric,
        results[b].value,
        results[b].std.unwrap_or(0.0)
    ));
    Ok(Chosen {
        algorithm: algorithms[b].clone(),
        candidates: results,
        cv: scores[b].cv_metrics(),
    })
}

/// Trains the spec's model on the dataset at `path`.
pub fn train(
    spec: &ModelSpec,
    spec_text: &str,
    path: &Path,
    code_commit: &str,
) -> Result<Trained, ModelError> {
    train_with_progress(spec, spec_text, path, code_commit, &Progress::silent())
}

/// The dataset read per the spec and split into training and test rows.
pub struct Prepared {
    /// The spec's columns of the dataset.
    pub table: Table,
    /// The training rows, in file order.
    pub train_rows: Vec<usize>,
    /// The held-out test rows, in file order.
    pub test_rows: Vec<usize>,
    started: Instant,
}

/// Reads the dataset at `path` per the spec and splits it as the trainer and the gate do.
pub fn prepare(spec: &ModelSpec, path: &Path) -> Result<Prepared, ModelError> {
    let started = Instant::now();
    let table = Table::load(&Columns::of_spec(spec), path)?;
    let (train_rows, test_rows) =
        split::stratified(&table.target, spec.split.seed, spec.split.test_fraction);
    if train_rows.len() < 10 || test_rows.is_empty() {
        return Err(ModelError::Train(format!(
            "too few rows to train and test ({} rows)",
            table.rows()
        )));
    }
    Ok(Prepared {
        table,
        train_rows,
        test_rows,
        started,
    })
}

/// [`train`], telling `progress` as each candidate, fold and the final fit finishes, and
/// stopping with [`learners::LearnError::Interrupted`] when `progress` is stopped.
pub fn train_with_progress(
    spec: &ModelSpec,
    spec_text: &str,
    path: &Path,
    code_commit: &str,
    progress: &Progress<'_>,
) -> Result<Trained, ModelError> {
    let prepared = prepare(spec, path)?;
    let (table, train_rows) = (&prepared.table, &prepared.train_rows);
    let Chosen {
        algorithm,
        candidates,
        cv,
    } = match (&spec.candidates, spec.split.folds) {
        (Some(c), Some(k)) => select_by_cv(spec, c, table, train_rows, k, progress)?,
        (Some(c), None) => {
            let (algorithm, candidates) = select(spec, c, table, train_rows, progress)?;
            Chosen {
                algorithm,
                candidates,
                cv: BTreeMap::new(),
            }
        }
        (None, folds) => {
            let algorithm = spec.algorithms().remove(0);
            let cv = match folds {
                Some(k) => cross_validate(spec, &algorithm, table, train_rows, k, progress)?,
                None => BTreeMap::new(),
            };
            Chosen {
                algorithm,
                candidates: Vec::new(),
                cv,
            }
        }
    };
    progress.check()?;
    progress.say(&format!(
        "fitting {} on {} rows",
        algorithm.describe(),
        train_rows.len()
    ));
    let fitting = Instant::now();
    let (pipeline, model) = fit(spec, &algorithm, table, train_rows, progress)?;
    let fit_seconds = fitting.elapsed().as_secs_f64();
    let selection = spec.candidates.as_ref().map(|c| Selection {
        metric: c.metric.to_string(),
        scores: candidates
            .iter()
            .map(|r| (r.algorithm.clone(), r.value))
            .collect(),
    });
    let made = Made {
        scorer: Scorer::Builtin(Builtin { pipeline, model }),
        algorithm: algorithm.describe(),
        selection,
        lineage: Lineage::default(),
    };
    let mut trained = finish(spec, spec_text, path, code_commit, prepared, made)?;
    trained.artifact.meta.metrics.extend(cv.clone());
    trained.metrics.extend(cv);
    trained.candidates = candidates;
    trained.fit_seconds = fit_seconds;
    Ok(trained)
}

/// An ONNX model made outside Tollgate (by the spec's training command, or uploaded),
/// imported against the spec's features and graded on the held-out rows as a trained one
/// would be. `lineage` says where it came from.
pub fn from_onnx(
    spec: &ModelSpec,
    spec_text: &str,
    path: &Path,
    code_commit: &str,
    bytes: Vec<u8>,
    lineage: Lineage,
) -> Result<Trained, ModelError> {
    let prepared = prepare(spec, path)?;
    from_onnx_prepared(spec, spec_text, path, code_commit, prepared, bytes, lineage)
}

/// [`from_onnx`] on a dataset already [`prepare`]d (the training command was given its
/// training rows).
pub fn from_onnx_prepared(
    spec: &ModelSpec,
    spec_text: &str,
    path: &Path,
    code_commit: &str,
    prepared: Prepared,
    bytes: Vec<u8>,
    lineage: Lineage,
) -> Result<Trained, ModelError> {
    let classes = classes_of(spec, path, &prepared.train_rows)?;
    let model = OnnxModel::import(
        bytes,
        &spec.features.numeric,
        &spec.features.categorical,
        &classes,
    )?;
    let producer = model.binding().producer.clone();
    let algorithm = match (lineage.origin, producer.is_empty()) {
        (Origin::Uploaded, true) => "onnx(uploaded)".to_string(),
        (Origin::Uploaded, false) => format!("onnx(uploaded, by {producer})"),
        (_, true) => "onnx(command)".to_string(),
        (_, false) => format!("onnx(command, by {producer})"),
    };
    let made = Made {
        scorer: Scorer::Onnx(model),
        algorithm,
        selection: None,
        lineage,
    };
    finish(spec, spec_text, path, code_commit, prepared, made)
}

/// The target's classes as a model trained on the training rows saw them.
fn classes_of(spec: &ModelSpec, path: &Path, rows: &[usize]) -> Result<Classes, ModelError> {
    let Some(positive) = &spec.positive_label else {
        return Ok(Classes::Binary);
    };
    let df = data::read_columns(path, std::slice::from_ref(&spec.target))?;
    let is_text = df
        .column(&spec.target)
        .is_ok_and(|c| c.dtype() == &polars::prelude::DataType::String);
    if !is_text {
        return Ok(Classes::Binary);
    }
    let labels = data::text_column(&df, &spec.target)?;
    let mut sorted: Vec<String> = rows
        .iter()
        .filter_map(|&i| labels.get(i).cloned().flatten())
        .map(|v| v.trim().to_string())
        .collect();
    sorted.sort();
    sorted.dedup();
    Ok(Classes::Text {
        positive: positive.clone(),
        sorted,
    })
}

/// What made a model, before it is graded.
struct Made {
    scorer: Scorer,
    algorithm: String,
    selection: Option<Selection>,
    lineage: Lineage,
}

/// Grades a made model on the held-out rows: metrics, the F1-optimal threshold, the golden
/// records and the training profile, into an artifact.
fn finish(
    spec: &ModelSpec,
    spec_text: &str,
    path: &Path,
    code_commit: &str,
    prepared: Prepared,
    made: Made,
) -> Result<Trained, ModelError> {
    let Prepared {
        table,
        train_rows,
        test_rows,
        started,
    } = prepared;
    let mut artifact = Artifact {
        scorer: made.scorer,
        meta: ArtifactMeta {
            model: spec.model.clone(),
            spec_digest: tollgate_spec::digest(spec_text),
            dataset_digest: data::file_digest(path)?,
            code_commit: code_commit.into(),
            metrics: BTreeMap::new(),
            split_seed: spec.split.seed,
            test_fraction: spec.split.test_fraction,
            train_rows: train_rows.len() as u64,
            target: spec.target.clone(),
            positive_label: spec.positive_label.clone(),
            optimal_threshold: 0.5,
            golden: Vec::new(),
            algorithm: made.algorithm,
            selection: made.selection,
            training_seconds: 0.0,
        },
        lineage: made.lineage,
    };
    let scores = artifact.score_rows(&table, &test_rows)?;
    let labels = table.labels(&test_rows);
    let optimal = metrics::f1_optimal_threshold(&scores, &labels);
    let mut metrics = metrics::classification(&scores, &labels, spec.threshold.resolve(optimal));
    metrics.insert("f1_optimal_threshold".into(), optimal);
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
        fit_seconds: 0.0,
        candidates: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
