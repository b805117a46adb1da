//! Binary-classification metrics on held-out data.

use std::collections::BTreeMap;

/// Area under the ROC curve by the rank-sum formula (ties share their average rank).
/// `None` when only one class is present.
pub fn auc_roc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l == 1).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * order[i..=j].iter().filter(|&&k| labels[k] == 1).count() as f64;
        i = j + 1;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// AUC-ROC, F1, precision, recall and accuracy at `threshold`, keyed by the names gates use.
pub fn classification(scores: &[f64], labels: &[u8], threshold: f64) -> BTreeMap<String, f64> {
    let (mut tp, mut fp, mut tn, mut fn_) = (0.0, 0.0, 0.0, 0.0);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l == 1) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, false) => tn += 1.0,
            (false, true) => fn_ += 1.0,
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    let mut m = BTreeMap::new();
    if let Some(auc) = auc_roc(scores, labels) {
        m.insert("auc_roc".into(), auc);
    }
    m.insert(
        "f1".into(),
        ratio(2.0 * precision * recall, precision + recall),
    );
    m.insert("precision".into(), precision);
    m.insert("recall".into(), recall);
    m.insert("accuracy".into(), ratio(tp + tn, tp + tn + fp + fn_));
    m
}

#[cfg(test)]
mod tests;
