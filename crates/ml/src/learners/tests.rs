//! Unit tests of the parent module.

use super::*;
use crate::learner_base::LEAF;
use ndarray::array;

/// One classifier tree on `rows` of `x` (repeats allowed), `pick` offering the features.
fn fit_tree(
    x: &Array2<f64>,
    y: &[u8],
    rows: Vec<u32>,
    params: &TreeParams,
    pick: &mut dyn FnMut() -> Vec<usize>,
) -> Result<TreeModel, LearnError> {
    let binned = Binned::new(x);
    let stats = class_stats(y);
    class_grower(&binned, &stats, params).grow(rows, pick, &Progress::silent())
}

/// 2,000 rows whose label follows x0 + x1 > 1 with 10% of the labels flipped.
fn noisy_diagonal() -> (Array2<f64>, Vec<u8>) {
    let n = 2000;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| {
        ((i * (j * 7 + 13) * 2_654_435_761) % 1000) as f64 / 1000.0
    });
    let y = (0..n)
        .map(|i| u8::from((x[[i, 0]] + x[[i, 1]] > 1.0) != (i % 10 == 0)))
        .collect();
    (x, y)
}

fn accuracy(model: &Model, x: &Array2<f64>, y: &[u8]) -> f64 {
    let right = x
        .rows()
        .into_iter()
        .zip(y)
        .filter(|(row, label)| u8::from(model.predict(&row.to_vec()) >= 0.5) == **label)
        .count();
    right as f64 / y.len() as f64
}

#[test]
fn gradient_boosting_learns_a_diagonal_a_single_split_cannot() {
    let (x, y) = noisy_diagonal();
    let model = fit(
        &Algorithm::GradientBoosting(BoostingParams {
            max_depth: 3,
            ..BoostingParams::default()
        }),
        x.clone(),
        &y,
        7,
        &Progress::silent(),
    )
    .unwrap();
    let Model::Boosted(boosted) = &model else {
        panic!("{model:?}")
    };
    assert!(boosted.trees.len() > 5, "{}", boosted.trees.len());
    let acc = accuracy(&model, &x, &y);
    assert!(acc > 0.85, "{acc}");
}

#[test]
fn gradient_boosting_stops_when_the_validation_fold_stops_improving() {
    let (x, y) = noisy_diagonal();
    let lines = std::sync::Mutex::new(Vec::new());
    let report = |line: &str| lines.lock().unwrap().push(line.to_string());
    let params = BoostingParams {
        learning_rate: 1.0,
        trees: 1000,
        max_depth: 6,
        max_leaf_nodes: 0,
        min_samples_leaf: 1,
        early_stopping_rounds: 5,
        ..BoostingParams::default()
    };
    let Model::Boosted(boosted) = fit(
        &Algorithm::GradientBoosting(params),
        x,
        &y,
        7,
        &Progress::new(&report),
    )
    .unwrap() else {
        panic!("not boosted")
    };
    let lines = lines.into_inner().unwrap();
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("gradient boosting: stopped early at "),
        "{lines:?}"
    );
    assert!(
        last.ends_with(&format!("keeping the best {}", boosted.trees.len())),
        "{last}"
    );
    assert!(boosted.trees.len() < 100, "{}", boosted.trees.len());
}

#[test]
fn the_same_seed_gives_the_same_boosted_trees() {
    let (x, y) = noisy_diagonal();
    let algorithm = Algorithm::GradientBoosting(BoostingParams::default());
    let a = fit(&algorithm, x.clone(), &y, 3, &Progress::silent()).unwrap();
    let b = fit(&algorithm, x, &y, 3, &Progress::silent()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_tree_leaf_scores_the_share_of_positive_rows_that_reach_it() {
    // x < 5: 1 positive in 10; x >= 5: 8 positives in 10.
    let x = Array2::from_shape_fn((20, 1), |(i, _)| i as f64 * 0.5);
    let y: Vec<u8> = (0..20)
        .map(|i| u8::from(if i < 10 { i == 3 } else { i != 12 && i != 17 }))
        .collect();
    let params = TreeParams {
        max_depth: 1,
        min_samples_leaf: 5,
        ..TreeParams::default()
    };
    let tree = fit_tree(&x, &y, (0..20).collect(), &params, &mut || vec![0]).unwrap();
    assert_eq!(tree.nodes.len(), 3, "{tree:?}");
    assert!((tree.predict(&[1.0]) - 0.1).abs() < 1e-12);
    assert!((tree.predict(&[9.0]) - 0.8).abs() < 1e-12);
}

#[test]
fn a_split_reads_the_full_row_through_the_features_it_was_offered() {
    // Only column 2 carries the label.
    let x = Array2::from_shape_fn((40, 3), |(i, j)| if j == 2 { (i % 2) as f64 } else { 0.0 });
    let y: Vec<u8> = (0..40).map(|i| (i % 2) as u8).collect();
    let tree = fit_tree(
        &x,
        &y,
        (0..40).collect(),
        &TreeParams::default(),
        &mut || vec![1, 2],
    )
    .unwrap();
    assert_eq!(tree.nodes[0].feature, 2);
    assert_eq!(tree.predict(&[0.0, 0.0, 1.0]), 1.0);
    assert_eq!(tree.predict(&[0.0, 0.0, 0.0]), 0.0);
}

#[test]
fn splits_whose_sides_predict_the_same_class_are_kept() {
    // Positive share rises with x: 10%, 30% on the left, 70%, 90% on the right. linfa-trees
    // alone prunes each pair of leaves into one (both sides predict the same class); the
    // tree must keep all four shares.
    let x = Array2::from_shape_fn((40, 1), |(i, _)| i as f64);
    let share = [1, 3, 7, 9];
    let y: Vec<u8> = (0..40).map(|i| u8::from(i % 10 < share[i / 10])).collect();
    let params = TreeParams {
        max_depth: 2,
        min_samples_leaf: 10,
        ..TreeParams::default()
    };
    let tree = fit_tree(&x, &y, (0..40).collect(), &params, &mut || vec![0]).unwrap();
    let scores: Vec<f64> = [5.0, 15.0, 25.0, 35.0]
        .iter()
        .map(|&v| tree.predict(&[v]))
        .collect();
    for (got, want) in scores.iter().zip([0.1, 0.3, 0.7, 0.9]) {
        assert!((got - want).abs() < 1e-12, "{scores:?}");
    }
}

#[test]
fn a_bootstrap_row_counts_as_often_as_it_was_drawn() {
    let x = array![[0.0], [1.0]];
    let tree = fit_tree(
        &x,
        &[0, 1],
        vec![0, 1, 1, 1],
        &TreeParams::default(),
        &mut || vec![0],
    )
    .unwrap();
    // min_samples_leaf 5 forbids a split of 4 rows: one leaf, 3 positives in 4.
    assert_eq!(tree.nodes.len(), 1);
    assert!((tree.predict(&[0.0]) - 0.75).abs() < 1e-12);
}

#[test]
fn naive_bayes_scores_what_linfa_bayes_scores() {
    use linfa_bayes::NaiveBayes;
    let x = array![
        [1.0, 2.0],
        [1.5, 1.8],
        [0.8, 2.2],
        [1.2, 2.1],
        [3.0, 0.5],
        [3.3, 0.2],
        [2.8, 0.9],
        [3.1, 0.4],
        [2.0, 1.0]
    ];
    let y = [0u8, 0, 0, 0, 1, 1, 1, 1, 0];
    let ours = fit_naive_bayes(x.clone(), &y, 1e-9).unwrap();
    let linfa = linfa_bayes::GaussianNb::params()
        .var_smoothing(1e-9)
        .fit(&Dataset::new(x.clone(), usize_targets(&y)))
        .unwrap();
    let (proba, classes) = linfa.predict_proba(x.view());
    assert_eq!(classes, [&0, &1]);
    for (row, p) in x.rows().into_iter().zip(proba.rows()) {
        let mine = ours.predict(&row.to_vec());
        assert!((mine - p[1]).abs() < 1e-9, "{mine} vs {}", p[1]);
    }
}

#[test]
fn a_forest_averages_its_trees() {
    let leaf = |p: f64| TreeModel {
        nodes: vec![TreeNode {
            feature: 0,
            threshold: 0.0,
            left: LEAF,
            right: LEAF,
            probability: p,
        }],
    };
    let forest = Model::Forest(vec![leaf(0.2), leaf(0.6)]);
    assert!((forest.predict(&[0.0]) - 0.4).abs() < 1e-12);
}

#[test]
fn naive_bayes_without_smoothing_on_a_constant_column_is_a_clear_error() {
    let x = array![[1.0, 0.0], [2.0, 0.0], [3.0, 1.0], [4.0, 1.0]];
    let err = fit_naive_bayes(x, &[0, 0, 1, 1], 0.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("raise var_smoothing"), "{err}");
}

#[test]
fn a_damaged_tree_that_links_backwards_ends_its_walk() {
    let tree = TreeModel {
        nodes: vec![TreeNode {
            feature: 7,
            threshold: 0.0,
            left: 0,
            right: 0,
            probability: 0.3,
        }],
    };
    assert_eq!(tree.predict(&[1.0]), 0.3);
}

#[test]
fn a_forest_reports_each_tenth_of_its_trees() {
    let x = Array2::from_shape_fn((60, 2), |(i, j)| ((i * (j + 3)) % 7) as f64);
    let y: Vec<u8> = (0..60).map(|i| u8::from(i % 7 < 3)).collect();
    let lines = std::sync::Mutex::new(Vec::new());
    let params = ForestParams {
        trees: 20,
        ..ForestParams::default()
    };
    let report = |line: &str| lines.lock().unwrap().push(line.to_string());
    fit(
        &Algorithm::RandomForest(params),
        x,
        &y,
        5,
        &Progress::new(&report),
    )
    .unwrap();
    let lines = lines.into_inner().unwrap();
    assert_eq!(lines.len(), 10, "{lines:?}");
    assert!(lines.contains(&"random forest: 20/20 trees".to_string()));
}

#[test]
fn a_stopped_forest_ends_with_interrupted_and_a_running_one_does_not() {
    let x = Array2::from_shape_fn((60, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
    let y: Vec<u8> = (0..60).map(|i| u8::from(i % 7 < 3)).collect();
    let forest = Algorithm::RandomForest(ForestParams {
        trees: 5,
        ..ForestParams::default()
    });
    let stop = std::sync::atomic::AtomicBool::new(true);
    let stopped = fit(
        &forest,
        x.clone(),
        &y,
        5,
        &Progress::stoppable(&|_| {}, &stop),
    );
    assert!(
        matches!(stopped, Err(LearnError::Interrupted)),
        "{stopped:?}"
    );
    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(fit(&forest, x, &y, 5, &Progress::stoppable(&|_| {}, &stop)).is_ok());
}

#[test]
fn gradient_boosting_on_a_handful_of_rows_fits_without_early_stopping() {
    for n in 2..6 {
        let x = Array2::from_shape_fn((n, 1), |(i, _)| i as f64);
        let y: Vec<u8> = (0..n).map(|i| u8::from(i % 2 == 0)).collect();
        let params = BoostingParams {
            min_samples_leaf: 1,
            ..BoostingParams::default()
        };
        let model = fit(
            &Algorithm::GradientBoosting(params),
            x,
            &y,
            1,
            &Progress::silent(),
        );
        assert!(model.is_ok(), "{n} rows: {model:?}");
    }
}

#[test]
fn newtons_logistic_regression_reaches_the_optimum_linfa_approaches() {
    let (x, y) = noisy_diagonal();
    let newton = fit_logistic(x.clone(), &y, 1.0, 100).unwrap();
    let lbfgs = fit_logistic_lbfgs(x.clone(), &y, 1.0, 1000).unwrap();
    for (a, b) in newton.weights.iter().zip(&lbfgs.weights) {
        assert!(
            (a - b).abs() < 0.05 * b.abs().max(1.0),
            "{newton:?} vs {lbfgs:?}"
        );
    }
    assert!((newton.intercept - lbfgs.intercept).abs() < 0.05 * lbfgs.intercept.abs().max(1.0));
    assert!(
        newton.weights[0] > 1.0 && newton.weights[1] > 1.0,
        "{newton:?}"
    );
}
