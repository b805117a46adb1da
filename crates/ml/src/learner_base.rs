//! What every learner shares, below the learners themselves so the histogram grower and
//! the Newton solver need not import them: the fit error, progress and stop requests,
//! flat decision trees and the logistic function.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// Why a learner could not fit.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// The labels hold one class only.
    #[error("the training rows hold one class only ({rows} rows, {positive} positive)")]
    OneClass {
        /// Rows given.
        rows: usize,
        /// Positive rows among them.
        positive: usize,
    },
    /// linfa refused or failed the fit.
    #[error("{what}: {source}")]
    Linfa {
        /// Which fit.
        what: &'static str,
        /// What linfa said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The fitted parameters could not be read back.
    #[error("{what}: {reason}")]
    Parameters {
        /// Which model.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The fit was asked to stop (the service is shutting down).
    #[error("training interrupted")]
    Interrupted,
    /// The algorithm is the user's own command, which no built-in learner fits.
    #[error("{0} is not a built-in learner: the trainer runs it as a command")]
    NotBuiltIn(&'static str),
}

/// Where long training reports progress, and learns that it should stop: the learners
/// and the training loop check between candidates, folds and forest trees.
pub struct Progress<'a> {
    report: &'a (dyn Fn(&str) + Sync),
    stop: Option<&'a AtomicBool>,
}

impl<'a> Progress<'a> {
    /// Progress told to `report`, never stopped.
    pub fn new(report: &'a (dyn Fn(&str) + Sync)) -> Self {
        Progress { report, stop: None }
    }

    /// Progress told to `report`, stopped when `stop` is set.
    pub fn stoppable(report: &'a (dyn Fn(&str) + Sync), stop: &'a AtomicBool) -> Self {
        Progress {
            report,
            stop: Some(stop),
        }
    }

    /// Progress that reports nothing and never stops.
    pub fn silent() -> Progress<'static> {
        Progress {
            report: &|_| {},
            stop: None,
        }
    }

    /// The same stop signal, with nothing reported.
    pub fn quiet(&self) -> Progress<'a> {
        Progress {
            report: &|_| {},
            stop: self.stop,
        }
    }

    /// Reports a line.
    pub fn say(&self, line: &str) {
        (self.report)(line);
    }

    /// `Err(Interrupted)` once a stop was asked.
    pub fn check(&self) -> Result<(), LearnError> {
        match self.stop {
            Some(stop) if stop.load(Ordering::Relaxed) => Err(LearnError::Interrupted),
            _ => Ok(()),
        }
    }
}

/// Marks a [`TreeNode`] as a leaf in its `left` field.
pub(crate) const LEAF: u32 = u32::MAX;

/// One node of a flat tree: a split (`x[feature] < threshold` goes left) or, when `left`
/// is [`LEAF`], a leaf scoring `probability`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TreeNode {
    /// Encoded feature the split reads.
    pub feature: u32,
    /// Rows below this go left.
    pub threshold: f64,
    /// Index of the left child, or [`u32::MAX`] for a leaf.
    pub left: u32,
    /// Index of the right child.
    pub right: u32,
    /// The node's value: the share of positive training rows that reached it (a
    /// classifier tree), or its step on the log-odds (a boosted tree). A leaf's is its score.
    pub probability: f64,
}

/// A decision tree flattened into an array, root first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TreeModel {
    /// The nodes; children always come after their parent.
    pub nodes: Vec<TreeNode>,
}

impl TreeModel {
    fn leaf(&self, x: &[f64]) -> usize {
        let mut i = 0;
        loop {
            let Some(n) = self.nodes.get(i) else {
                return 0;
            };
            if n.left == LEAF {
                return i;
            }
            let value = x.get(n.feature as usize).copied().unwrap_or(f64::NAN);
            let next = if value < n.threshold { n.left } else { n.right } as usize;
            // Children come after their parent; a link backwards (a damaged artifact)
            // would loop forever, so it ends the walk here.
            if next <= i {
                return i;
            }
            i = next;
        }
    }

    /// P(label = 1) for one encoded row: the positive share of its leaf.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.nodes.get(self.leaf(x)).map_or(0.5, |n| n.probability)
    }
}

/// The logistic function: log-odds to probability.
pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}
