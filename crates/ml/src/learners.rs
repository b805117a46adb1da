//! The learning algorithms a spec can choose, fitted with linfa and kept in Tollgate's
//! own compact form: linfa fits, and the artifact stores plain parameters (weights, flat
//! trees, class means) that score one record in microseconds, serialize the same bytes
//! every time and read back without linfa's internal types.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ShapeBuilder};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use tollgate_spec::{Algorithm, BoostingParams, ForestParams, TreeParams};

pub(crate) use crate::learner_base::sigmoid;
pub use crate::learner_base::{LearnError, Progress, TreeModel, TreeNode};
use crate::{
    hist::{BLOCK_ROWS, Binned, Grower, Limits, Scoring},
    newton,
};

/// A fitted model of any kind; [`Model::predict`] is P(label = 1) for one encoded row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Model {
    /// Logistic regression.
    Logistic(LogisticModel),
    /// One decision tree.
    Tree(TreeModel),
    /// A random forest: the mean of its trees.
    Forest(Vec<TreeModel>),
    /// Gaussian naive Bayes.
    NaiveBayes(NaiveBayesModel),
    /// Gradient-boosted trees.
    Boosted(BoostedModel),
}

impl Model {
    /// P(label = 1) for one encoded row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self {
            Model::Logistic(m) => m.predict(x),
            Model::Tree(t) => t.predict(x),
            Model::Forest(trees) => {
                trees.iter().map(|t| t.predict(x)).sum::<f64>() / trees.len().max(1) as f64
            }
            Model::NaiveBayes(m) => m.predict(x),
            Model::Boosted(m) => m.predict(x),
        }
    }
}

/// Fits `algorithm` on encoded rows `x` with 0/1 labels `y`; `seed` drives anything random.
/// A forest tells `progress` as each tenth of its trees is grown.
pub fn fit(
    algorithm: &Algorithm,
    x: Array2<f64>,
    y: &[u8],
    seed: u64,
    progress: &Progress<'_>,
) -> Result<Model, LearnError> {
    let ones = y.iter().filter(|&&v| v == 1).count();
    if ones == 0 || ones == y.len() {
        return Err(LearnError::OneClass {
            rows: y.len(),
            positive: ones,
        });
    }
    progress.check()?;
    match algorithm {
        Algorithm::LogisticRegression {
            alpha,
            max_iterations,
        } => Ok(Model::Logistic(fit_logistic(
            x,
            y,
            *alpha,
            *max_iterations,
        )?)),
        Algorithm::DecisionTree(params) => Ok(Model::Tree(fit_tree(
            &Binned::new(&x),
            y,
            params,
            progress,
        )?)),
        Algorithm::RandomForest(params) => {
            Ok(Model::Forest(fit_forest(&x, y, params, seed, progress)?))
        }
        Algorithm::GaussianNaiveBayes { var_smoothing } => {
            Ok(Model::NaiveBayes(fit_naive_bayes(x, y, *var_smoothing)?))
        }
        Algorithm::GradientBoosting(params) => {
            Ok(Model::Boosted(fit_boosting(&x, y, params, seed, progress)?))
        }
        Algorithm::Command(_) => Err(LearnError::NotBuiltIn(algorithm.kind())),
    }
}

fn usize_targets(y: &[u8]) -> Array1<usize> {
    y.iter().map(|&v| v as usize).collect()
}

/// Logistic regression parameters, oriented so that `sigmoid(w·x + b)` is P(label = 1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogisticModel {
    /// One weight per encoded feature.
    pub weights: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
}

impl LogisticModel {
    /// P(label = 1) for one encoded row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        sigmoid(self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + self.intercept)
    }
}

/// The optimizer stops when the mean per-row gradient is below this.
pub const GRADIENT_TOLERANCE_PER_ROW: f64 = 1e-4;

/// Fits a logistic regression (L2 strength `alpha`): by Newton's method up to
/// [`newton::MAX_WIDTH`] encoded features, with linfa's L-BFGS beyond.
pub fn fit_logistic(
    x: Array2<f64>,
    y: &[u8],
    alpha: f64,
    max_iterations: u64,
) -> Result<LogisticModel, LearnError> {
    if x.ncols() <= newton::MAX_WIDTH {
        let (weights, intercept) = newton::fit(x.view(), y, alpha, max_iterations);
        return Ok(LogisticModel { weights, intercept });
    }
    fit_logistic_lbfgs(x, y, alpha, max_iterations)
}

/// [`fit_logistic`] by linfa's L-BFGS, at any width.
pub fn fit_logistic_lbfgs(
    x: Array2<f64>,
    y: &[u8],
    alpha: f64,
    max_iterations: u64,
) -> Result<LogisticModel, LearnError> {
    // The gradient is `xᵀ·r`: with x column-major, each row of xᵀ is contiguous and
    // ndarray takes its unrolled dot product instead of a strided loop (2x faster at 1M
    // rows). The loss's `x·w` goes through matrixmultiply, which takes either layout.
    let mut columns = Array2::<f64>::zeros(x.raw_dim().f());
    columns.assign(&x);
    drop(x);
    let dataset = Dataset::new(columns, usize_targets(y));
    // linfa's loss is a sum over rows, so its gradient grows with the row count: a fixed
    // tolerance gets ten times stricter for ten times the data (and the fit 65 times
    // slower). Scale it to the same per-row gradient, 1e-4, at any size.
    let tolerance = GRADIENT_TOLERANCE_PER_ROW * y.len() as f64;
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(max_iterations)
        .gradient_tolerance(tolerance)
        .fit(&dataset)
        .map_err(|e| LearnError::Linfa {
            what: "logistic regression",
            source: e.into(),
        })?;
    // linfa's probabilities refer to its "positive" class, the larger one; flip the sign
    // when that is class 0 so the stored model always scores P(label = 1).
    let sign = if fitted.labels().pos.class == 1 {
        1.0
    } else {
        -1.0
    };
    Ok(LogisticModel {
        weights: fitted.params().iter().map(|w| sign * w).collect(),
        intercept: sign * fitted.intercept(),
    })
}

/// Per-row sums of a classifier: one row, and whether it is positive.
fn class_stats(y: &[u8]) -> Vec<[f64; 2]> {
    y.iter().map(|&v| [1.0, f64::from(v)]).collect()
}

/// A histogram grower for a classifier tree with `params` over `stats` of [`class_stats`].
fn class_grower<'a>(binned: &'a Binned, stats: &'a [[f64; 2]], params: &TreeParams) -> Grower<'a> {
    let limits = Limits {
        max_depth: params.max_depth,
        min_samples_split: params.min_samples_split,
        min_samples_leaf: params.min_samples_leaf,
        min_gain: params.min_impurity_decrease,
        max_leaves: 0,
    };
    Grower::new(binned, stats, Scoring::Impurity(params.criterion), limits)
}

/// Grows one CART tree on every row of `binned`, each split choosing among all features.
fn fit_tree(
    binned: &Binned,
    y: &[u8],
    params: &TreeParams,
    progress: &Progress<'_>,
) -> Result<TreeModel, LearnError> {
    let stats = class_stats(y);
    let all: Vec<usize> = (0..binned.features()).collect();
    class_grower(binned, &stats, params).grow(
        (0..binned.rows() as u32).collect(),
        &mut || all.clone(),
        progress,
    )
}

/// Grows `params.trees` trees in parallel on one binning of `x`, each on its own bootstrap
/// sample, each split choosing among a random `feature_fraction` of the features. Every
/// tree draws from `seed` and its index, so the forest is the same whatever the thread
/// count.
fn fit_forest(
    x: &Array2<f64>,
    y: &[u8],
    params: &ForestParams,
    seed: u64,
    progress: &Progress<'_>,
) -> Result<Vec<TreeModel>, LearnError> {
    let grown = std::sync::atomic::AtomicUsize::new(0);
    let step = params.trees.div_ceil(10);
    let (n, width) = x.dim();
    let sample = ((n as f64 * params.sample_fraction).round() as usize).max(1);
    let keep = ((width as f64 * params.feature_fraction).round() as usize).clamp(1, width.max(1));
    let tree = params.tree();
    let binned = Binned::new(x);
    let stats = class_stats(y);
    (0..params.trees)
        .into_par_iter()
        .map(|t| {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let rows: Vec<u32> = (0..sample).map(|_| rng.random_range(0..n) as u32).collect();
            let mut pick = || {
                let mut features = rand::seq::index::sample(&mut rng, width, keep).into_vec();
                features.sort_unstable();
                features
            };
            let tree = class_grower(&binned, &stats, &tree).grow(rows, &mut pick, progress)?;
            let done = grown.fetch_add(1, Ordering::Relaxed) + 1;
            if done.is_multiple_of(step) || done == params.trees {
                progress.say(&format!("random forest: {done}/{} trees", params.trees));
            }
            Ok(tree)
        })
        .collect()
}

/// Gradient-boosted trees: P(label = 1) is `sigmoid(base + sum of the trees' leaves)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BoostedModel {
    /// The log-odds every row starts from (the training rows' positive rate).
    pub base: f64,
    /// The trees; a leaf's value is its step, learning rate included.
    pub trees: Vec<TreeModel>,
}

impl BoostedModel {
    /// P(label = 1) for one encoded row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        sigmoid(self.base + self.trees.iter().map(|t| t.predict(x)).sum::<f64>())
    }
}

/// Gradient boosting on the log loss with histogram trees. With early stopping, a seeded
/// `validation_fraction` of the rows is held out, and the trees are cut back to the round
/// with the best validation log loss once `early_stopping_rounds` rounds bring none better.
fn fit_boosting(
    x: &Array2<f64>,
    y: &[u8],
    params: &BoostingParams,
    seed: u64,
    progress: &Progress<'_>,
) -> Result<BoostedModel, LearnError> {
    let n = y.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let stopping = params.early_stopping_rounds > 0 && params.validation_fraction > 0.0;
    // At least one row held out and two kept; too few rows to spare any: no early stopping.
    let held = if stopping && n >= 4 {
        ((n as f64 * params.validation_fraction).round() as usize)
            .max(1)
            .min(n - 2)
    } else {
        0
    };
    if held > 0 {
        use rand::seq::SliceRandom;
        order.shuffle(&mut StdRng::seed_from_u64(seed ^ 0xB005_7ED0));
    }
    let (validation, fit) = order.split_at(held);
    let mut fit = fit.to_vec();
    fit.sort_unstable();
    let positives = fit.iter().filter(|&&r| y[r as usize] == 1).count() as f64;
    let rate = (positives / fit.len().max(1) as f64).clamp(1e-6, 1.0 - 1e-6);
    let base = (rate / (1.0 - rate)).ln();
    let binned = Binned::new(x);
    let limits = Limits {
        max_depth: params.max_depth,
        min_samples_split: 2 * params.min_samples_leaf,
        min_samples_leaf: params.min_samples_leaf,
        min_gain: 1e-12,
        max_leaves: params.max_leaf_nodes,
    };
    let scoring = Scoring::Newton {
        l2: params.l2,
        shrink: params.learning_rate,
    };
    let mut scores = vec![base; n];
    let mut stats = vec![[0.0; 2]; n];
    // The held-out rows side by side, read by every round's validation, with their
    // running scores and labels.
    let width = x.ncols();
    let held_rows: Vec<f64> = validation
        .iter()
        .flat_map(|&r| x.row(r as usize).to_vec())
        .collect();
    let mut held_scores = vec![base; validation.len()];
    let held_labels: Vec<u8> = validation.iter().map(|&r| y[r as usize]).collect();
    let mut held_losses = vec![0.0; validation.len()];
    let mut trees = Vec::new();
    let (mut best_loss, mut best_trees) = (f64::INFINITY, 0);
    let step = params.trees.div_ceil(10);
    for round in 1..=params.trees {
        progress.check()?;
        // Every row's gradient and hessian, on every core (the held-out rows' go unused).
        stats
            .par_iter_mut()
            .zip(scores.par_iter().zip(y.par_iter()))
            .with_min_len(BLOCK_ROWS)
            .for_each(|(s, (&score, &label))| {
                let p = sigmoid(score);
                *s = [p - f64::from(label), (p * (1.0 - p)).max(1e-16)];
            });
        let tree = Grower::new(&binned, &stats, scoring, limits)
            .adding_to(&mut scores)
            .grow(
                fit.clone(),
                &mut || (0..binned.features()).collect(),
                progress,
            )?;
        if held > 0 {
            // Scored on every core; the losses summed in row order, the same on any
            // number of threads.
            held_scores
                .par_iter_mut()
                .zip(held_losses.par_iter_mut())
                .zip(held_rows.par_chunks(width).zip(held_labels.par_iter()))
                .with_min_len(BLOCK_ROWS)
                .for_each(|((score, loss), (row, &label))| {
                    *score += tree.predict(row);
                    let p = sigmoid(*score).clamp(1e-15, 1.0 - 1e-15);
                    *loss = -if label == 1 { p.ln() } else { (1.0 - p).ln() };
                });
            let loss: f64 = held_losses.iter().sum();
            if loss < best_loss - 1e-9 * loss.abs() {
                (best_loss, best_trees) = (loss, round);
            }
        }
        trees.push(tree);
        if round.is_multiple_of(step) || round == params.trees {
            progress.say(&format!(
                "gradient boosting: {round}/{} trees",
                params.trees
            ));
        }
        if held > 0 && round - best_trees >= params.early_stopping_rounds {
            progress.say(&format!(
                "gradient boosting: stopped early at {round} trees, keeping the best {best_trees}"
            ));
            break;
        }
    }
    if held > 0 {
        trees.truncate(best_trees.max(1));
    }
    Ok(BoostedModel { base, trees })
}

/// Gaussian naive Bayes parameters: per class, its log prior and the mean and variance of
/// every encoded feature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NaiveBayesModel {
    /// Class 0, then class 1.
    pub classes: Vec<ClassStats>,
}

/// What Gaussian naive Bayes knows of one class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassStats {
    /// ln P(class).
    pub log_prior: f64,
    /// Mean of each feature within the class.
    pub mean: Vec<f64>,
    /// Variance of each feature within the class, smoothing included.
    pub variance: Vec<f64>,
}

impl ClassStats {
    /// The unnormalized log posterior of a row.
    fn joint_log_likelihood(&self, x: &[f64]) -> f64 {
        let mut sum = self.log_prior;
        for ((v, m), s) in x.iter().zip(&self.mean).zip(&self.variance) {
            sum -= 0.5 * ((2.0 * std::f64::consts::PI * s).ln() + (v - m).powi(2) / s);
        }
        sum
    }
}

impl NaiveBayesModel {
    /// P(label = 1) for one encoded row.
    pub fn predict(&self, x: &[f64]) -> f64 {
        match self.classes.as_slice() {
            [zero, one] => {
                let d = zero.joint_log_likelihood(x) - one.joint_log_likelihood(x);
                1.0 / (1.0 + d.exp())
            }
            _ => 0.5,
        }
    }
}

/// The serde form of linfa-bayes' fitted model: its parameters are private, and its serde
/// encoding is the supported way to read them out.
#[derive(Deserialize)]
struct LinfaGaussianNb {
    class_info: std::collections::BTreeMap<usize, LinfaClassInfo>,
}

#[derive(Deserialize)]
struct LinfaClassInfo {
    prior: f64,
    theta: Array1<f64>,
    sigma: Array1<f64>,
}

fn fit_naive_bayes(
    x: Array2<f64>,
    y: &[u8],
    var_smoothing: f64,
) -> Result<NaiveBayesModel, LearnError> {
    let dataset = Dataset::new(x, usize_targets(y));
    let fitted: linfa_bayes::GaussianNb<f64, usize> = linfa_bayes::GaussianNb::params()
        .var_smoothing(var_smoothing)
        .fit(&dataset)
        .map_err(|e| LearnError::Linfa {
            what: "gaussian naive Bayes",
            source: e.into(),
        })?;
    let bridge = serde_json::to_value(&fitted)
        .and_then(serde_json::from_value::<LinfaGaussianNb>)
        .map_err(|e| LearnError::Parameters {
            what: "gaussian naive Bayes",
            reason: e.to_string(),
        })?;
    let classes = [0usize, 1]
        .iter()
        .map(|c| {
            bridge.class_info.get(c).map(|info| ClassStats {
                log_prior: info.prior.ln(),
                mean: info.theta.to_vec(),
                variance: info.sigma.to_vec(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| LearnError::Parameters {
            what: "gaussian naive Bayes",
            reason: "a class is missing".into(),
        })?;
    if classes
        .iter()
        .flat_map(|c| &c.variance)
        .any(|&s| s.is_nan() || s <= 0.0)
    {
        return Err(LearnError::Parameters {
            what: "gaussian naive Bayes",
            reason: "a feature has zero variance within a class; raise var_smoothing".into(),
        });
    }
    Ok(NaiveBayesModel { classes })
}

#[cfg(test)]
mod tests;
