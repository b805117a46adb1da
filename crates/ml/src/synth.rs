//! The seeded synthetic churn dataset the demo, tests and benchmarks use: the columns of
//! `tests/fixtures/gx/churn_suite.json`, with churn driven by contract, tenure, charges
//! and support calls so a logistic regression meets the default gates on it.

use polars::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Contract values.
pub const CONTRACTS: &[&str] = &["month-to-month", "one-year", "two-year"];
/// Payment method values.
pub const PAYMENT_METHODS: &[&str] = &[
    "electronic-check",
    "mailed-check",
    "bank-transfer",
    "credit-card",
];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SynthOptions {
    /// Number of rows.
    pub rows: usize,
    /// Seed: the same seed gives the same data.
    pub seed: u64,
    /// Inject nulls into customer_id and ages outside 0..120 (about 2% and 1% of rows).
    pub dirty: bool,
}

/// Generates the churn dataset.
pub fn churn(opts: SynthOptions) -> PolarsResult<DataFrame> {
    let n = opts.rows;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut customer_id: Vec<Option<String>> = Vec::with_capacity(n);
    let mut age = Vec::with_capacity(n);
    let mut tenure = Vec::with_capacity(n);
    let mut monthly = Vec::with_capacity(n);
    let mut total = Vec::with_capacity(n);
    let mut contract = Vec::with_capacity(n);
    let mut payment = Vec::with_capacity(n);
    let mut calls = Vec::with_capacity(n);
    let mut label = Vec::with_capacity(n);
    for i in 0..n {
        let c = match rng.random::<f64>() {
            x if x < 0.5 => 0,
            x if x < 0.75 => 1,
            _ => 2,
        };
        let p = rng.random_range(0..PAYMENT_METHODS.len());
        let t: i64 = rng.random_range(0..=72);
        let m = (rng.random_range(20.0..120.0f64) * 100.0).round() / 100.0;
        let s: i64 = (rng.random::<f64>().powi(2) * 9.0).round() as i64;
        let a: i64 = rng.random_range(18..=85);
        let logit = -0.3 + [1.6, -0.6, -1.8][c] - 0.045 * t as f64
            + 0.03 * (m - 70.0)
            + 0.5 * s as f64
            + if p == 0 { 0.6 } else { 0.0 };
        let prob = 1.0 / (1.0 + (-logit).exp());
        let mut id = Some(format!("C{:04x}-{i:08}", opts.seed & 0xffff));
        let mut a = a;
        if opts.dirty {
            if rng.random::<f64>() < 0.02 {
                id = None;
            }
            if rng.random::<f64>() < 0.01 {
                a = if rng.random::<bool>() { 150 } else { -3 };
            }
        }
        customer_id.push(id);
        age.push(a);
        tenure.push(t);
        monthly.push(m);
        total.push((m * (t.max(1) as f64) * rng.random_range(0.95..1.05) * 100.0).round() / 100.0);
        contract.push(CONTRACTS[c]);
        payment.push(PAYMENT_METHODS[p]);
        calls.push(s);
        label.push(i64::from(rng.random::<f64>() < prob));
    }
    DataFrame::new(
        n,
        vec![
            Column::new("customer_id".into(), customer_id),
            Column::new("age".into(), age),
            Column::new("tenure_months".into(), tenure),
            Column::new("monthly_charges".into(), monthly),
            Column::new("total_charges".into(), total),
            Column::new("contract".into(), contract),
            Column::new("payment_method".into(), payment),
            Column::new("support_calls".into(), calls),
            Column::new("label".into(), label),
        ],
    )
}
