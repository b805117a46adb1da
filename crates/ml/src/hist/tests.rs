use super::*;
use crate::learners::Progress;
use ndarray::Array2;

fn gini() -> Scoring {
    Scoring::Impurity(Criterion::Gini)
}

fn limits(max_depth: usize) -> Limits {
    Limits {
        max_depth,
        min_samples_split: 2,
        min_samples_leaf: 1,
        min_gain: 1e-9,
        max_leaves: 0,
    }
}

#[test]
fn few_distinct_values_cut_at_their_midpoints() {
    let cuts = cut_points([3.0, 1.0, 2.0, 2.0, f64::NAN].into_iter(), 5);
    assert_eq!(cuts, vec![1.5, 2.5]);
    assert_eq!(bin_of(&cuts, 1.0), 0);
    assert_eq!(bin_of(&cuts, 2.0), 1);
    assert_eq!(bin_of(&cuts, 9.0), 2);
    assert_eq!(
        bin_of(&cuts, f64::NAN),
        2,
        "NaN goes right, as in a flat tree"
    );
}

#[test]
fn many_distinct_values_get_at_most_256_bins_in_order() {
    let n = 10_000;
    let cuts = cut_points((0..n).map(|i| (i as f64).sqrt()), n);
    assert!(cuts.len() < MAX_BINS, "{}", cuts.len());
    assert!(cuts.len() > 200, "{}", cuts.len());
    assert!(cuts.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_threshold_on_one_feature_is_found_exactly() {
    // Feature 1 decides the label at 0.3; feature 0 is noise.
    let n = 1000;
    let x = Array2::from_shape_fn((n, 2), |(i, j)| {
        if j == 0 {
            ((i * 7919) % 101) as f64
        } else {
            i as f64 / n as f64
        }
    });
    let y: Vec<[f64; 2]> = (0..n)
        .map(|i| [1.0, f64::from(u8::from(i as f64 / n as f64 >= 0.3))])
        .collect();
    let binned = Binned::new(&x);
    let tree = Grower::new(&binned, &y, gini(), limits(3))
        .grow(
            (0..n as u32).collect(),
            &mut || vec![0, 1],
            &Progress::silent(),
        )
        .unwrap();
    let root = &tree.nodes[0];
    assert_eq!(root.feature, 1);
    assert!((root.threshold - 0.3).abs() < 0.01, "{}", root.threshold);
    assert_eq!(tree.predict(&[5.0, 0.1]), 0.0);
    assert_eq!(tree.predict(&[5.0, 0.9]), 1.0);
}

#[test]
fn the_same_tree_on_one_thread_and_on_many() {
    let n = 20_000;
    let x = Array2::from_shape_fn((n, 6), |(i, j)| ((i * (j + 3) * 2654435761) % 1000) as f64);
    let y: Vec<[f64; 2]> = (0..n)
        .map(|i| [1.0, f64::from(u8::from((i * 31) % 7 < 3))])
        .collect();
    let grow = || {
        let binned = Binned::new(&x);
        Grower::new(&binned, &y, gini(), limits(6))
            .grow(
                (0..n as u32).collect(),
                &mut || (0..6).collect(),
                &Progress::silent(),
            )
            .unwrap()
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(grow);
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap()
        .install(grow);
    assert_eq!(one, four);
}

#[test]
fn boosting_leaves_step_against_the_gradient_and_add_to_the_scores() {
    // Gradient -1 on the right half (scores should rise), +1 on the left.
    let n = 100;
    let x = Array2::from_shape_fn((n, 1), |(i, _)| i as f64);
    let stats: Vec<[f64; 2]> = (0..n)
        .map(|i| [if i < 50 { 1.0 } else { -1.0 }, 1.0])
        .collect();
    let binned = Binned::new(&x);
    let mut scores = vec![0.0; n];
    let tree = Grower::new(
        &binned,
        &stats,
        Scoring::Newton {
            l2: 0.0,
            shrink: 0.5,
        },
        limits(1),
    )
    .adding_to(&mut scores)
    .grow(
        (0..n as u32).collect(),
        &mut || vec![0],
        &Progress::silent(),
    )
    .unwrap();
    assert_eq!(tree.nodes.len(), 3);
    assert_eq!(scores[0], -0.5);
    assert_eq!(scores[99], 0.5);
    assert_eq!(tree.predict(&[10.0]), -0.5);
}

#[test]
fn leaf_wise_growth_stops_at_max_leaves_and_splits_the_best_gain_first() {
    // The gradient steps at x = 30 (large) and at x = 80 (small, within the right side):
    // with two leaves only the large step is split; with three, the small one too.
    let n = 100;
    let x = Array2::from_shape_fn((n, 1), |(i, _)| i as f64);
    let stats: Vec<[f64; 2]> = (0..n)
        .map(|i| {
            let g = if i < 30 {
                3.0
            } else if i < 80 {
                -1.0
            } else {
                -2.0
            };
            [g, 1.0]
        })
        .collect();
    let binned = Binned::new(&x);
    let grow = |max_leaves: usize, scores: &mut [f64]| {
        let newton = Scoring::Newton {
            l2: 0.0,
            shrink: 1.0,
        };
        let limits = Limits {
            max_leaves,
            min_samples_leaf: 5,
            ..limits(30)
        };
        Grower::new(&binned, &stats, newton, limits)
            .adding_to(scores)
            .grow(
                (0..n as u32).collect(),
                &mut || vec![0],
                &Progress::silent(),
            )
            .unwrap()
    };
    let leaves = |t: &TreeModel| t.nodes.iter().filter(|n| n.left == LEAF).count();
    let mut scores = vec![0.0; n];
    let two = grow(2, &mut scores);
    assert_eq!(leaves(&two), 2);
    assert!(
        (two.nodes[0].threshold - 29.5).abs() < 1e-9,
        "{:?}",
        two.nodes[0]
    );
    assert_eq!(scores[0], -3.0);
    let three = grow(3, &mut vec![0.0; n]);
    assert_eq!(leaves(&three), 3);
    let thresholds: Vec<f64> = three
        .nodes
        .iter()
        .filter(|n| n.left != LEAF)
        .map(|n| n.threshold)
        .collect();
    assert_eq!(thresholds, vec![29.5, 79.5]);
    assert_eq!(three.predict(&[90.0]), 2.0);
    // With room for more, it stops where no split gains: the three steps.
    let many = grow(64, &mut vec![0.0; n]);
    assert_eq!(leaves(&many), 3);
}
