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

#[test]
fn pr_auc_log_loss_and_the_f1_optimal_threshold() {
    // scikit-learn: average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.8333...
    let ap = pr_auc(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]).unwrap();
    assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
    assert_eq!(pr_auc(&[0.1], &[0]), None);
    // log_loss([1,0], [0.9,0.2]) == (-ln 0.9 - ln 0.8) / 2
    let ll = log_loss(&[0.9, 0.2], &[1, 0]);
    assert!((ll - (-(0.9f64).ln() - (0.8f64).ln()) / 2.0).abs() < 1e-12);
    // Positives score 0.3 and 0.6; the best cut keeps both and drops the 0.2 negative.
    let t = f1_optimal_threshold(&[0.9, 0.6, 0.3, 0.2], &[0, 1, 1, 0]);
    assert_eq!(t, 0.3);
    let m = classification(&[0.9, 0.6, 0.3, 0.2], &[0, 1, 1, 0], t);
    assert_eq!((m["tp"], m["fp"], m["tn"], m["fn"]), (2.0, 1.0, 1.0, 0.0));
    assert!((m["f1"] - 0.8).abs() < 1e-12);
}
