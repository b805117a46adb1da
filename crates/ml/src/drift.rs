//! Drift of a dataset against the reference profile of the Production version, computed
//! from the two profiles alone (the reference data is never re-read). Distances decide,
//! not p-values: numeric columns get the Wasserstein distance normed by the reference
//! standard deviation, PSI over the reference deciles and the Kolmogorov-Smirnov
//! statistic; text columns get the Jensen-Shannon distance and PSI over categories.

use serde::{Deserialize, Serialize};
use tollgate_spec::DriftSettings;

use crate::profile::{ColumnProfile, NumericProfile, Profile};

/// One column's drift scores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnDrift {
    /// Column name.
    pub column: String,
    /// Wasserstein distance / reference stdev (numeric columns).
    pub wasserstein: Option<f64>,
    /// Kolmogorov-Smirnov statistic (numeric columns).
    pub ks: Option<f64>,
    /// Jensen-Shannon distance, base 2 (text columns).
    pub jensen_shannon: Option<f64>,
    /// Population stability index.
    pub psi: f64,
    /// Whether a score passed its threshold.
    pub drifted: bool,
}

/// Drift of a dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriftReport {
    /// Per monitored column.
    pub columns: Vec<ColumnDrift>,
    /// Whether at least the configured share of columns drifted.
    pub drifted: bool,
}

const EPS: f64 = 1e-4;

/// The CDF of a piecewise-linear quantile function at `x`.
fn cdf(q: &[f64], x: f64) -> f64 {
    let n = q.len() - 1;
    if x < q[0] {
        return 0.0;
    }
    if x >= q[n] {
        return 1.0;
    }
    let k = q.partition_point(|v| *v <= x).saturating_sub(1).min(n - 1);
    let (lo, hi) = (q[k], q[k + 1]);
    let within = if hi > lo { (x - lo) / (hi - lo) } else { 1.0 };
    (k as f64 + within) / n as f64
}

fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(EPS), a.max(EPS));
            (a - e) * (a / e).ln()
        })
        .sum()
}

fn numeric(name: &str, r: &NumericProfile, c: &NumericProfile, s: &DriftSettings) -> ColumnDrift {
    let n = r.quantiles.len() - 1;
    let scale = if r.std > 0.0 { r.std } else { 1.0 };
    let w1 = r
        .quantiles
        .iter()
        .zip(&c.quantiles)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / (n + 1) as f64
        / scale;
    // The reference deciles as bin edges; on discrete data several coincide, so the edges
    // are deduplicated and both sides' shares come from the same CDF interpolation.
    let step = n / 10;
    let mut edges: Vec<f64> = (1..10).map(|d| r.quantiles[d * step]).collect();
    edges.dedup();
    let shares = |q: &[f64]| -> Vec<f64> {
        let mut out = Vec::with_capacity(edges.len() + 1);
        let mut prev = 0.0;
        for &e in &edges {
            let f = cdf(q, e);
            out.push(f - prev);
            prev = f;
        }
        out.push(1.0 - prev);
        out
    };
    let population = psi(&shares(&r.quantiles), &shares(&c.quantiles));
    let ks = r
        .quantiles
        .iter()
        .chain(&c.quantiles)
        .map(|&x| (cdf(&r.quantiles, x) - cdf(&c.quantiles, x)).abs())
        .fold(0.0, f64::max);
    ColumnDrift {
        column: name.into(),
        wasserstein: Some(w1),
        ks: Some(ks),
        jensen_shannon: None,
        psi: population,
        drifted: w1 > s.wasserstein || population > s.psi,
    }
}

fn categorical(name: &str, r: &ColumnProfile, c: &ColumnProfile, s: &DriftSettings) -> ColumnDrift {
    let mut keys: Vec<&str> = r
        .top
        .iter()
        .chain(&c.top)
        .map(|(k, _)| k.as_str())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let share = |p: &ColumnProfile| -> Vec<f64> {
        let total = p.count.max(1) as f64;
        let mut v: Vec<f64> = keys
            .iter()
            .map(|k| {
                p.top
                    .iter()
                    .find(|(t, _)| t == k)
                    .map_or(0.0, |(_, n)| *n as f64 / total)
            })
            .collect();
        let other = 1.0 - v.iter().sum::<f64>();
        v.push(other.max(0.0));
        v
    };
    let (p, q) = (share(r), share(c));
    let kl = |a: &[f64], m: &[f64]| -> f64 {
        a.iter()
            .zip(m)
            .filter(|(x, _)| **x > 0.0)
            .map(|(x, y)| x * (x / y).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(&q).map(|(a, b)| (a + b) / 2.0).collect();
    let js = ((kl(&p, &m) + kl(&q, &m)) / 2.0).max(0.0).sqrt();
    let population = psi(&p, &q);
    ColumnDrift {
        column: name.into(),
        wasserstein: None,
        ks: None,
        jensen_shannon: Some(js),
        psi: population,
        drifted: js > s.jensen_shannon || population > s.psi,
    }
}

/// Scores every column present in both profiles; the dataset drifted when at least
/// `settings.share` of them did.
pub fn drift(reference: &Profile, current: &Profile, settings: &DriftSettings) -> DriftReport {
    let columns: Vec<ColumnDrift> = reference
        .columns
        .iter()
        .filter_map(|r| {
            let c = current.columns.iter().find(|c| c.name == r.name)?;
            Some(match (&r.numeric, &c.numeric) {
                (Some(rn), Some(cn)) => numeric(&r.name, rn, cn, settings),
                (None, None) => categorical(&r.name, r, c, settings),
                _ => return None,
            })
        })
        .collect();
    let drifted_columns = columns.iter().filter(|c| c.drifted).count();
    let drifted =
        !columns.is_empty() && drifted_columns as f64 >= settings.share * columns.len() as f64;
    DriftReport { columns, drifted }
}

#[cfg(test)]
mod tests;
