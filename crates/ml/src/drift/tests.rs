//! Unit tests of the parent module.

use super::*;
use crate::{profile::of_table, table::Table};

fn profile(shift: f64, scale: f64, categories: &[&str]) -> Profile {
    let n = 5_000;
    let table = Table {
        numeric: vec![
            (0..n)
                .map(|i| Some(shift + scale * ((i * 7919) % n) as f64 / n as f64))
                .collect(),
        ],
        categorical: vec![
            (0..n)
                .map(|i| Some(categories[i % categories.len()].to_string()))
                .collect(),
        ],
        target: Vec::new(),
        coerced: Vec::new(),
    };
    of_table(
        &table,
        &["x".into()],
        &["c".into()],
        &(0..n).collect::<Vec<_>>(),
    )
}

#[test]
fn the_same_distribution_does_not_drift() {
    let s = DriftSettings::default();
    let r = drift(
        &profile(0.0, 1.0, &["a", "b"]),
        &profile(0.0, 1.0, &["a", "b"]),
        &s,
    );
    assert!(!r.drifted, "{r:?}");
    assert!(r.columns[0].wasserstein.unwrap() < 1e-9 && r.columns[0].psi.abs() < 1e-9);
    assert!(r.columns[0].ks.unwrap() < 1e-9);
    assert!(r.columns[1].jensen_shannon.unwrap() < 1e-9);
}

#[test]
fn shifted_numbers_and_new_categories_drift() {
    let s = DriftSettings::default();
    let r = drift(
        &profile(0.0, 1.0, &["a", "b"]),
        &profile(0.5, 1.0, &["a", "c", "c"]),
        &s,
    );
    let x = &r.columns[0];
    // Uniform(0,1) shifted by 0.5: W1 = 0.5, / std 0.2887 = 1.73; KS = 0.5.
    assert!(
        (x.wasserstein.unwrap() - 0.5 / (1.0f64 / 12.0).sqrt()).abs() < 0.02,
        "{x:?}"
    );
    assert!((x.ks.unwrap() - 0.5).abs() < 0.02, "{x:?}");
    assert!(x.psi > 0.2 && x.drifted);
    let c = &r.columns[1];
    assert!(c.jensen_shannon.unwrap() > 0.1 && c.drifted, "{c:?}");
    assert!(r.drifted);
}

#[test]
fn half_the_columns_must_drift() {
    let s = DriftSettings::default();
    let r = drift(
        &profile(0.0, 1.0, &["a", "b"]),
        &profile(0.5, 1.0, &["a", "b"]),
        &s,
    );
    assert!(r.columns[0].drifted && !r.columns[1].drifted);
    assert!(r.drifted, "1 of 2 columns is half");
    let strict = DriftSettings {
        share: 0.75,
        ..DriftSettings::default()
    };
    assert!(
        !drift(
            &profile(0.0, 1.0, &["a", "b"]),
            &profile(0.5, 1.0, &["a", "b"]),
            &strict
        )
        .drifted
    );
}

#[test]
fn discrete_columns_with_tied_deciles_do_not_drift_against_themselves() {
    let s = DriftSettings::default();
    let counts = |seed: usize| {
        let n = 3_000;
        let table = Table {
            // Mostly 0 and 1, a tail to 9: many deciles coincide.
            numeric: vec![
                (0..n)
                    .map(|i| {
                        Some(
                            (((i * 7919 + seed) % 100) as f64 / 100.0)
                                .powi(3)
                                .mul_add(9.0, 0.0)
                                .round(),
                        )
                    })
                    .collect(),
            ],
            categorical: vec![],
            target: Vec::new(),
            coerced: Vec::new(),
        };
        of_table(&table, &["calls".into()], &[], &(0..n).collect::<Vec<_>>())
    };
    let r = drift(&counts(0), &counts(13), &s);
    assert!(!r.columns[0].drifted, "{:?}", r.columns[0]);
}
