//! Unit tests of the parent module.

use super::*;

#[test]
fn auc_of_perfect_random_and_inverted_rankings() {
    assert_eq!(auc_roc(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]), Some(1.0));
    assert_eq!(auc_roc(&[0.9, 0.8, 0.2, 0.1], &[0, 0, 1, 1]), Some(0.0));
    assert_eq!(auc_roc(&[0.5, 0.5, 0.5, 0.5], &[0, 1, 0, 1]), Some(0.5));
    assert_eq!(auc_roc(&[0.1, 0.2], &[1, 1]), None);
}

#[test]
fn f1_precision_recall_at_threshold() {
    // tp=2, fp=1, fn=1, tn=1
    let m = classification(&[0.9, 0.8, 0.7, 0.3, 0.1], &[1, 1, 0, 1, 0], 0.5);
    assert!((m["precision"] - 2.0 / 3.0).abs() < 1e-12);
    assert!((m["recall"] - 2.0 / 3.0).abs() < 1e-12);
    assert!((m["f1"] - 2.0 / 3.0).abs() < 1e-12);
    assert!((m["accuracy"] - 0.6).abs() < 1e-12);
}
