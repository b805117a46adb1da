//! Unit tests of the parent module.

use super::*;
use ndarray::{Array2, array};

#[test]
fn cholesky_solves_a_positive_definite_system_and_refuses_an_indefinite_one() {
    let a = array![[4.0, 2.0], [2.0, 3.0]];
    let x = cholesky_solve(&a, &array![2.0, 5.0]).expect("positive definite");
    assert!(
        (x[0] + 0.5).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12,
        "{x}"
    );
    assert!(cholesky_solve(&array![[1.0, 2.0], [2.0, 1.0]], &array![1.0, 1.0]).is_none());
}

#[test]
fn the_gradient_vanishes_at_the_fit() {
    // One feature, overlapping classes: a finite optimum.
    let x = array![[-2.0], [-1.0], [-0.5], [0.0], [0.5], [1.0], [2.0], [0.2]];
    let y = [0, 0, 1, 0, 1, 1, 1, 0];
    let alpha = 0.5;
    let (w, b) = fit(x.view(), &y, alpha, 100);
    let (mut gw, mut gb) = (alpha * w[0], 0.0);
    for (row, &label) in x.rows().into_iter().zip(&y) {
        let r = crate::learner_base::sigmoid(w[0] * row[0] + b) - f64::from(label);
        gw += r * row[0];
        gb += r;
    }
    assert!(gw.abs() < 1e-6 && gb.abs() < 1e-6, "gradient ({gw}, {gb})");
    assert!(w[0] > 0.0);
}

#[test]
fn the_fit_is_the_same_on_one_thread_and_on_many() {
    // More rows than a block, so the sums cross blocks.
    let n = 3 * BLOCK + 17;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| ((i * (j + 3) * 7919) % 997) as f64 / 997.0);
    let y: Vec<u8> = (0..n)
        .map(|i| u8::from(x[[i, 0]] + 0.5 * x[[i, 1]] > 0.7 || i % 9 == 0))
        .collect();
    let on = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| fit(x.view(), &y, 1.0, 100))
    };
    let one = on(1);
    assert_eq!(one, on(4));
    assert!(one.0.iter().all(|w| w.is_finite()), "{one:?}");
}
