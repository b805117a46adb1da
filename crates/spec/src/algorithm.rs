//! The spec's `algorithm:` and `candidates:`: the built-in learners with their
//! hyper-parameters and bounds, or the user's own training command.

use serde::{Deserialize, Serialize};

use crate::{SelectionMetric, TrainCommand};

/// The learning algorithm and its hyper-parameters, chosen by `kind`. Every
/// hyper-parameter has a default, so `{kind: random_forest}` is a whole spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Algorithm {
    /// L2-regularized logistic regression (linfa-logistic).
    LogisticRegression {
        /// L2 regularization strength.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Iteration cap of the optimizer.
        #[serde(default = "default_max_iterations")]
        max_iterations: u64,
    },
    /// One CART decision tree grown on histograms (every feature binned once into at most
    /// 256 bins); a leaf scores the share of positive training rows in it.
    DecisionTree(TreeParams),
    /// Bagged histogram trees on bootstrap samples, each split choosing among a random
    /// share of the features; the probability is the mean over the trees.
    RandomForest(ForestParams),
    /// Gradient-boosted histogram trees on the log loss (Newton steps, L2 on leaf values),
    /// stopped early when a validation fold of the training rows stops improving.
    GradientBoosting(BoostingParams),
    /// Gaussian naive Bayes (linfa-bayes).
    GaussianNaiveBayes {
        /// Share of the largest feature variance added to every variance, for stability.
        #[serde(default = "default_var_smoothing")]
        var_smoothing: f64,
    },
    /// The user's own training code: a command that writes an ONNX model, run in a copy
    /// of the spec's folder on the training rows only.
    Command(TrainCommand),
}

/// Hyper-parameters of one decision tree.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TreeParams {
    /// Deepest level a split may make (the root is level 0).
    pub max_depth: usize,
    /// A node with fewer rows is not split.
    pub min_samples_split: usize,
    /// Each side of a split keeps at least this many rows.
    pub min_samples_leaf: usize,
    /// A split must lower impurity by at least this much.
    pub min_impurity_decrease: f64,
    /// `gini` or `entropy`.
    pub criterion: Criterion,
}

/// Hyper-parameters of a random forest: its own, then those of each tree (as in
/// [`TreeParams`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ForestParams {
    /// Trees in the forest.
    pub trees: usize,
    /// Share of the encoded features each split chooses among (scikit-learn's
    /// `max_features`), in (0, 1].
    pub feature_fraction: f64,
    /// Bootstrap sample size as a share of the training rows, in (0, 1].
    pub sample_fraction: f64,
    /// Deepest level a split may make in each tree.
    pub max_depth: usize,
    /// A node with fewer rows is not split.
    pub min_samples_split: usize,
    /// Each side of a split keeps at least this many rows.
    pub min_samples_leaf: usize,
    /// A split must lower impurity by at least this much.
    pub min_impurity_decrease: f64,
    /// `gini` or `entropy`.
    pub criterion: Criterion,
}

impl Default for ForestParams {
    fn default() -> Self {
        let t = TreeParams::default();
        ForestParams {
            trees: 50,
            feature_fraction: 0.7,
            sample_fraction: 1.0,
            max_depth: t.max_depth,
            min_samples_split: t.min_samples_split,
            min_samples_leaf: t.min_samples_leaf,
            min_impurity_decrease: t.min_impurity_decrease,
            criterion: t.criterion,
        }
    }
}

impl ForestParams {
    /// The parameters each tree is grown with.
    pub fn tree(&self) -> TreeParams {
        TreeParams {
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            min_impurity_decrease: self.min_impurity_decrease,
            criterion: self.criterion,
        }
    }
}

/// Hyper-parameters of gradient boosting (the names of scikit-learn's
/// `HistGradientBoostingClassifier` where they mean the same).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BoostingParams {
    /// Step size: each tree's leaf values are scaled by it, in (0, 1].
    pub learning_rate: f64,
    /// Most trees (boosting rounds); early stopping may keep fewer.
    pub trees: usize,
    /// Deepest level a split may make in each tree.
    pub max_depth: usize,
    /// Most leaves of each tree, grown best gain first (LightGBM's and
    /// HistGradientBoosting's `max_leaf_nodes`); 0: no cap, each tree grown depth-first
    /// to `max_depth`.
    pub max_leaf_nodes: usize,
    /// Each side of a split keeps at least this many rows.
    pub min_samples_leaf: usize,
    /// L2 regularization of the leaf values (`l2_regularization`).
    pub l2: f64,
    /// Share of the training rows held out to decide when to stop, in [0, 1); 0 turns
    /// early stopping off.
    pub validation_fraction: f64,
    /// Stop after this many rounds without a better validation log loss (0: never stop
    /// early).
    pub early_stopping_rounds: usize,
}

impl Default for BoostingParams {
    fn default() -> Self {
        BoostingParams {
            learning_rate: 0.1,
            trees: 100,
            max_depth: 30,
            max_leaf_nodes: 31,
            min_samples_leaf: 20,
            l2: 0.0,
            validation_fraction: 0.1,
            early_stopping_rounds: 10,
        }
    }
}

/// How a tree measures the impurity of a node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Gini impurity.
    #[default]
    Gini,
    /// Shannon entropy.
    Entropy,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            max_depth: 8,
            min_samples_split: 2,
            min_samples_leaf: 5,
            min_impurity_decrease: 1e-5,
            criterion: Criterion::Gini,
        }
    }
}

fn default_alpha() -> f64 {
    1.0
}

fn default_max_iterations() -> u64 {
    100
}

fn default_var_smoothing() -> f64 {
    1e-9
}

impl Default for Algorithm {
    fn default() -> Self {
        Algorithm::LogisticRegression {
            alpha: default_alpha(),
            max_iterations: default_max_iterations(),
        }
    }
}

/// The `kind` names of the built-in algorithms, as a spec writes them.
pub const ALGORITHMS: &[&str] = &[
    "logistic_regression",
    "decision_tree",
    "random_forest",
    "gaussian_naive_bayes",
    "gradient_boosting",
];

/// The `kind` of the user's own training command.
pub const COMMAND: &str = "command";

/// Most leaves a boosted tree may have.
pub const MAX_LEAF_NODES: usize = 4096;

/// Most trees a forest may have.
pub const MAX_TREES: usize = 1000;

impl Algorithm {
    /// The `kind` name, e.g. `random_forest`.
    pub fn kind(&self) -> &'static str {
        match self {
            Algorithm::LogisticRegression { .. } => ALGORITHMS[0],
            Algorithm::DecisionTree(_) => ALGORITHMS[1],
            Algorithm::RandomForest(_) => ALGORITHMS[2],
            Algorithm::GaussianNaiveBayes { .. } => ALGORITHMS[3],
            Algorithm::GradientBoosting(_) => ALGORITHMS[4],
            Algorithm::Command(_) => COMMAND,
        }
    }

    /// How complex the model is, for breaking a tie between candidates' cross-validated
    /// scores in favour of the simpler: linear and naive Bayes models first, then one
    /// tree, then ensembles, the user's own command last.
    pub fn complexity(&self) -> u8 {
        match self {
            Algorithm::LogisticRegression { .. } => 0,
            Algorithm::GaussianNaiveBayes { .. } => 1,
            Algorithm::DecisionTree(_) => 2,
            Algorithm::GradientBoosting(_) => 3,
            Algorithm::RandomForest(_) => 4,
            Algorithm::Command(_) => 5,
        }
    }

    /// The kind with its hyper-parameters, for tables and logs:
    /// `random_forest(trees=50, max_depth=8, ...)`.
    pub fn describe(&self) -> String {
        let tree = |t: &TreeParams| {
            format!(
                "max_depth={}, min_samples_leaf={}, criterion={:?}",
                t.max_depth, t.min_samples_leaf, t.criterion
            )
            .to_lowercase()
        };
        let params = match self {
            Algorithm::LogisticRegression {
                alpha,
                max_iterations,
            } => format!("alpha={alpha}, max_iterations={max_iterations}"),
            Algorithm::DecisionTree(t) => tree(t),
            Algorithm::RandomForest(f) => format!(
                "trees={}, feature_fraction={}, sample_fraction={}, {}",
                f.trees,
                f.feature_fraction,
                f.sample_fraction,
                tree(&f.tree())
            ),
            Algorithm::GaussianNaiveBayes { var_smoothing } => {
                format!("var_smoothing={var_smoothing}")
            }
            Algorithm::GradientBoosting(b) => format!(
                "learning_rate={}, trees={}, max_depth={}, max_leaf_nodes={}, min_samples_leaf={}, l2={}, validation_fraction={}, early_stopping_rounds={}",
                b.learning_rate,
                b.trees,
                b.max_depth,
                b.max_leaf_nodes,
                b.min_samples_leaf,
                b.l2,
                b.validation_fraction,
                b.early_stopping_rounds
            ),
            Algorithm::Command(c) => {
                format!("run={:?}, timeout_minutes={}", c.run, c.timeout_minutes)
            }
        };
        format!("{}({params})", self.kind())
    }

    /// Checks the hyper-parameters; the message names the field and the allowed range.
    pub(crate) fn check(&self) -> Result<(), String> {
        let k = self.kind();
        let fraction = |name: &str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(format!("{k}.{name} must be in (0, 1], got {v}"))
            }
        };
        match self {
            Algorithm::LogisticRegression {
                alpha,
                max_iterations,
            } => {
                if !(alpha.is_finite() && *alpha >= 0.0) {
                    return Err(format!(
                        "{k}.alpha must be a finite number >= 0, got {alpha}"
                    ));
                }
                if *max_iterations == 0 {
                    return Err(format!("{k}.max_iterations must be at least 1"));
                }
            }
            Algorithm::DecisionTree(t) => check_tree(k, t)?,
            Algorithm::RandomForest(f) => {
                if !(1..=MAX_TREES).contains(&f.trees) {
                    return Err(format!(
                        "{k}.trees must be between 1 and {MAX_TREES}, got {}",
                        f.trees
                    ));
                }
                fraction("feature_fraction", f.feature_fraction)?;
                fraction("sample_fraction", f.sample_fraction)?;
                check_tree(k, &f.tree())?;
            }
            Algorithm::GaussianNaiveBayes { var_smoothing } => {
                if !(var_smoothing.is_finite() && *var_smoothing >= 0.0) {
                    return Err(format!(
                        "{k}.var_smoothing must be a finite number >= 0, got {var_smoothing}"
                    ));
                }
            }
            Algorithm::GradientBoosting(b) => {
                if !(1..=MAX_TREES).contains(&b.trees) {
                    return Err(format!(
                        "{k}.trees must be between 1 and {MAX_TREES}, got {}",
                        b.trees
                    ));
                }
                fraction("learning_rate", b.learning_rate)?;
                check_depth(k, b.max_depth)?;
                if b.max_leaf_nodes == 1 || b.max_leaf_nodes > MAX_LEAF_NODES {
                    return Err(format!(
                        "{k}.max_leaf_nodes must be 0 (no cap) or between 2 and {MAX_LEAF_NODES}, got {}",
                        b.max_leaf_nodes
                    ));
                }
                if b.min_samples_leaf < 1 {
                    return Err(format!("{k}.min_samples_leaf must be at least 1"));
                }
                if !(b.l2.is_finite() && b.l2 >= 0.0) {
                    return Err(format!("{k}.l2 must be a finite number >= 0, got {}", b.l2));
                }
                if !(0.0..1.0).contains(&b.validation_fraction) {
                    return Err(format!(
                        "{k}.validation_fraction must be in [0, 1), got {}",
                        b.validation_fraction
                    ));
                }
            }
            Algorithm::Command(c) => c.check(k)?,
        }
        Ok(())
    }
}

fn check_depth(kind: &str, max_depth: usize) -> Result<(), String> {
    if (1..=64).contains(&max_depth) {
        Ok(())
    } else {
        Err(format!(
            "{kind}.max_depth must be between 1 and 64, got {max_depth}"
        ))
    }
}

fn check_tree(kind: &str, t: &TreeParams) -> Result<(), String> {
    check_depth(kind, t.max_depth)?;
    if t.min_samples_split < 2 {
        return Err(format!(
            "{kind}.min_samples_split must be at least 2, got {}",
            t.min_samples_split
        ));
    }
    if t.min_samples_leaf < 1 {
        return Err(format!("{kind}.min_samples_leaf must be at least 1"));
    }
    // A minimum of 0 would split on no gain at all.
    if !(t.min_impurity_decrease.is_finite() && t.min_impurity_decrease >= f64::EPSILON) {
        return Err(format!(
            "{kind}.min_impurity_decrease must be a number above 0 (e.g. 1e-7), got {}",
            t.min_impurity_decrease
        ));
    }
    Ok(())
}

/// Several algorithms to try: each is fitted on the training rows less a validation
/// fold and scored on that fold by `metric`; the best is refitted on all training rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Candidates {
    /// The metric that picks the winner (`log_loss` is minimized, the others maximized).
    #[serde(default)]
    pub metric: SelectionMetric,
    /// Share of the training rows held out as the validation fold, in (0, 1).
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// The algorithms, in order. Chosen on the validation fold, a tie keeps the earlier
    /// one; chosen by cross-validation (`split.folds`), a tie keeps the simpler one.
    pub algorithms: Vec<Algorithm>,
}

fn default_validation_fraction() -> f64 {
    0.2
}

impl Candidates {
    /// Whether a larger value of the selection metric is better.
    pub fn higher_is_better(&self) -> bool {
        self.metric.higher_is_better()
    }
}
