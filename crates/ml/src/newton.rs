//! Logistic regression by Newton's method for narrow encodings. linfa's L-BFGS spends
//! hundreds of cost and gradient passes on a dozen features; Newton's method needs about
//! seven passes there, each one matrix product for the exact Hessian, and reaches the
//! same optimum of the same objective: the summed log-loss plus `alpha / 2 · ‖w‖²`, the
//! intercept not penalized.

use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;

/// Widest encoding Newton's method takes: its Hessian costs `rows · width²` a step, so
/// past this linfa's L-BFGS (`rows · width` a pass) is the cheaper road.
pub const MAX_WIDTH: usize = 64;

/// Newton's method stops once the gradient's norm per row is below this (linfa's L-BFGS
/// stops at 1e-4).
const TOLERANCE_PER_ROW: f64 = 1e-7;

/// Rows per block of the parallel passes. Sums are taken per block, then over blocks in
/// order, so the result is the same on any number of threads.
const BLOCK: usize = 4096;

/// `log(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// The objective at linear scores `z`: summed log-loss plus the penalty on `theta`'s
/// weights (every entry but the last, the intercept).
fn objective(z: &Array1<f64>, y: &[f64], theta: &Array1<f64>, alpha: f64) -> f64 {
    let Some(z) = z.as_slice() else {
        return f64::NAN;
    };
    let blocks: Vec<f64> = z
        .par_chunks(BLOCK)
        .zip(y.par_chunks(BLOCK))
        .map(|(z, y)| z.iter().zip(y).map(|(&z, &y)| softplus(z) - y * z).sum())
        .collect();
    let loss: f64 = blocks.iter().sum();
    let weights = theta.iter().take(theta.len() - 1);
    loss + 0.5 * alpha * weights.map(|w| w * w).sum::<f64>()
}

/// Solves `a · x = b` for symmetric positive definite `a` by Cholesky; `None` when `a` is
/// not positive definite.
fn cholesky_solve(a: &Array2<f64>, b: &Array1<f64>) -> Option<Array1<f64>> {
    let n = b.len();
    let mut l = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            let v = a[[i, j]] - dot;
            if i == j {
                if v.is_nan() || v <= 0.0 {
                    return None;
                }
                l[[i, i]] = v.sqrt();
            } else {
                l[[i, j]] = v / l[[j, j]];
            }
        }
    }
    let mut x = b.clone();
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[[i, k]] * x[k]).sum();
        x[i] = (x[i] - dot) / l[[i, i]];
    }
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[[k, i]] * x[k]).sum();
        x[i] = (x[i] - dot) / l[[i, i]];
    }
    Some(x)
}

/// `x·theta` for the rows of row-major `rows`, `theta.len()` values each. ndarray's
/// product walks a 14-wide matrix row by row with per-row overhead; this is 5x faster.
fn scores(rows: &[f64], theta: &Array1<f64>) -> Array1<f64> {
    let scored: Vec<f64> = rows
        .par_chunks_exact(theta.len())
        .map(|row| row.iter().zip(theta).map(|(v, t)| v * t).sum())
        .collect();
    Array1::from(scored)
}

/// The gradient of the log-loss at scores `z`: `Σ (sigmoid(z) − y) · row`, summed per
/// block of rows, then over blocks in order.
fn loss_gradient(rows: &[f64], z: &[f64], y: &[f64], width: usize) -> Array1<f64> {
    let blocks: Vec<Array1<f64>> = rows
        .par_chunks(BLOCK * width)
        .zip(z.par_chunks(BLOCK))
        .zip(y.par_chunks(BLOCK))
        .map(|((rows, z), y)| {
            let mut g = Array1::<f64>::zeros(width);
            for ((row, &z), &y) in rows.chunks_exact(width).zip(z).zip(y) {
                let residual = crate::learner_base::sigmoid(z) - y;
                for (g, v) in g.iter_mut().zip(row) {
                    *g += residual * v;
                }
            }
            g
        })
        .collect();
    blocks
        .into_iter()
        .fold(Array1::zeros(width), |sum, block| sum + block)
}

/// Fits weights and intercept on encoded rows `x` (at most [`MAX_WIDTH`] columns) and 0/1
/// labels `y` in at most `max_iterations` Newton steps, each with a backtracking line
/// search. Returns `(weights, intercept)`.
pub fn fit(x: ArrayView2<'_, f64>, y: &[u8], alpha: f64, max_iterations: u64) -> (Vec<f64>, f64) {
    let (n, p) = x.dim();
    let width = p + 1;
    // Each row with a trailing 1 for the intercept, row-major.
    let mut rows = Vec::with_capacity(n * width);
    for row in x.rows() {
        rows.extend(row.iter().copied());
        rows.push(1.0);
    }
    let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    let mut penalty = Array1::from_elem(width, alpha);
    penalty[p] = 0.0;
    let mut theta = Array1::<f64>::zeros(width);
    let mut z = scores(&rows, &theta);
    let mut current = objective(&z, &y, &theta, alpha);
    let mut weighted = vec![0.0; n * width];
    for _ in 0..max_iterations {
        let Some(zs) = z.as_slice() else { break };
        let gradient = loss_gradient(&rows, zs, &y, width) + &penalty * &theta;
        if gradient.dot(&gradient).sqrt() <= TOLERANCE_PER_ROW * n as f64 {
            break;
        }
        // √(p(1 − p)) times each row, so that the Hessian is one product `wᵀ·w`.
        weighted
            .par_chunks_exact_mut(width)
            .zip(rows.par_chunks_exact(width))
            .zip(zs.par_iter())
            .for_each(|((out, row), &z)| {
                let q = crate::learner_base::sigmoid(z);
                let w = (q * (1.0 - q)).sqrt();
                for (o, v) in out.iter_mut().zip(row) {
                    *o = v * w;
                }
            });
        let Ok(w) = ArrayView2::from_shape((n, width), &weighted) else {
            break;
        };
        let mut hessian = w.t().dot(&w);
        hessian.diag_mut().zip_mut_with(&penalty, |h, &a| *h += a);
        // Without a penalty, one-hot columns that sum to the intercept's make the Hessian
        // singular: a ridge just big enough to factor it keeps the step finite.
        let scale = hessian.diag().iter().fold(0.0_f64, |m, &v| m.max(v.abs()));
        let mut ridge = 0.0;
        let step = loop {
            let mut h = hessian.clone();
            h.diag_mut().mapv_inplace(|v| v + ridge);
            if let Some(step) = cholesky_solve(&h, &gradient) {
                break Some(step);
            }
            ridge = if ridge == 0.0 {
                scale * 1e-12
            } else {
                ridge * 100.0
            };
            if !(ridge.is_finite() && ridge <= scale) {
                break None;
            }
        };
        let Some(step) = step else { break };
        let mut t = 1.0;
        let improved = loop {
            let candidate = &theta - &(&step * t);
            let cz = scores(&rows, &candidate);
            let value = objective(&cz, &y, &candidate, alpha);
            if value <= current {
                break Some((candidate, cz, value));
            }
            t *= 0.5;
            if t < 1e-10 {
                break None;
            }
        };
        let Some((candidate, cz, value)) = improved else {
            break;
        };
        let settled = (current - value).abs() <= f64::EPSILON * current.abs();
        theta = candidate;
        z = cz;
        current = value;
        if settled {
            break;
        }
    }
    (theta.iter().take(p).copied().collect(), theta[p])
}

#[cfg(test)]
mod tests;
