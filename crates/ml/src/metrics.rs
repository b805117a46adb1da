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

/// The distinct scores from the highest down, each with the true and false positives
/// counted when it is the threshold (ties form one threshold).
fn sweep(scores: &[f64], labels: &[u8]) -> Vec<(f64, f64, f64)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut out = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] == 1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            j += 1;
        }
        out.push((scores[order[i]], tp, fp));
        i = j;
    }
    out
}

/// Area under the precision-recall curve as average precision (the step-wise sum
/// scikit-learn's `average_precision_score` computes). `None` without positives.
pub fn pr_auc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let mut last_recall = 0.0;
    let mut ap = 0.0;
    for (_, tp, fp) in sweep(scores, labels) {
        let recall = tp / positives;
        ap += (recall - last_recall) * tp / (tp + fp);
        last_recall = recall;
    }
    Some(ap)
}

/// Mean log loss, probabilities clipped to [1e-15, 1 - 1e-15].
pub fn log_loss(scores: &[f64], labels: &[u8]) -> f64 {
    if scores.is_empty() {
        return f64::NAN;
    }
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if y == 1 { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / scores.len() as f64
}

/// The threshold that maximizes F1 on these scores (a score at or above it is positive).
pub fn f1_optimal_threshold(scores: &[f64], labels: &[u8]) -> f64 {
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    let (mut best, mut best_t) = (-1.0, 0.5);
    for (t, tp, fp) in sweep(scores, labels) {
        let f1 = if tp > 0.0 {
            2.0 * tp / (2.0 * tp + fp + (positives - tp))
        } else {
            0.0
        };
        if f1 > best {
            best = f1;
            best_t = t;
        }
    }
    best_t
}

/// AUC-ROC, PR-AUC, log loss, F1, precision, recall, accuracy and the confusion matrix
/// (`tp`, `fp`, `tn`, `fn`) at `threshold`, keyed by the names gates use.
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
    if let Some(ap) = pr_auc(scores, labels) {
        m.insert("pr_auc".into(), ap);
    }
    m.insert("log_loss".into(), log_loss(scores, labels));
    m.insert("tp".into(), tp);
    m.insert("fp".into(), fp);
    m.insert("tn".into(), tn);
    m.insert("fn".into(), fn_);
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

/// How one version does on live traffic, from the labels that arrived for what it scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Live {
    /// The version.
    pub version: u32,
    /// Labels joined to its predictions.
    pub labels: usize,
    /// Share of those labels that are positive.
    pub positive_rate: f64,
    /// AUC-ROC of its probabilities against the labels; `None` until both classes arrived.
    pub auc_roc: Option<f64>,
    /// F1 at the version's threshold.
    pub f1: f64,
    /// Mean log loss.
    pub log_loss: f64,
}

/// [`Live`] metrics of `version` from its labelled predictions: the probabilities it gave,
/// the labels that arrived for them and its threshold.
pub fn live(version: u32, scores: &[f64], labels: &[u8], threshold: f64) -> Live {
    let m = classification(scores, labels, threshold);
    let positives = labels.iter().filter(|&&l| l == 1).count();
    Live {
        version,
        labels: labels.len(),
        positive_rate: if labels.is_empty() {
            0.0
        } else {
            positives as f64 / labels.len() as f64
        },
        auc_roc: m.get("auc_roc").copied(),
        f1: m.get("f1").copied().unwrap_or(0.0),
        log_loss: m.get("log_loss").copied().unwrap_or(f64::NAN),
    }
}

/// [`Live`] metrics of every version among `labelled` predictions (the labels stream of
/// one model), by version, lowest first.
pub fn live_by_version(labelled: &[tollgate_proto::Prediction]) -> Vec<Live> {
    let mut by_version: BTreeMap<u32, (Vec<f64>, Vec<u8>, f64)> = BTreeMap::new();
    for p in labelled.iter().filter(|p| p.labeled) {
        let (scores, labels, threshold) = by_version
            .entry(p.version)
            .or_insert_with(|| (Vec::new(), Vec::new(), p.threshold));
        scores.push(p.probability);
        labels.push(u8::from(p.label == 1));
        *threshold = p.threshold;
    }
    by_version
        .into_iter()
        .map(|(version, (scores, labels, threshold))| live(version, &scores, &labels, threshold))
        .collect()
}
