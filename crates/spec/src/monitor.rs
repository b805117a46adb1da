//! The spec's `monitor:` section: how a Production version must do on live traffic once
//! labels arrive. Below `min_auc_roc` over the last `window` labels, the model server
//! raises the `live_auc_roc` alert and starts the drift plan (a performance-triggered
//! retrain, one per cooldown). A policy key: only `tollgate apply` changes it.

use serde::{Deserialize, Serialize};

/// Fewest labels a monitor window may hold: fewer make AUC-ROC too noisy to act on.
pub const MIN_WINDOW: usize = 50;
/// Most labels a monitor window may hold.
pub const MAX_WINDOW: usize = 100_000;

/// The spec's `monitor:` section.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// The live AUC-ROC the Production version must keep, in (0, 1].
    pub min_auc_roc: f64,
    /// How many of the latest labels it is judged over (500 by default).
    #[serde(default = "default_window")]
    pub window: usize,
}

fn default_window() -> usize {
    500
}

impl Monitor {
    /// Checks the bounds; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if !(self.min_auc_roc > 0.0 && self.min_auc_roc <= 1.0) {
            return Err(format!(
                "monitor.min_auc_roc must be in (0, 1], got {}",
                self.min_auc_roc
            ));
        }
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&self.window) {
            return Err(format!(
                "monitor.window must be {MIN_WINDOW} to {MAX_WINDOW} labels, got {}",
                self.window
            ));
        }
        Ok(())
    }
}
