//! The spec's `rollout:` section: how an approved version reaches Production on live
//! traffic instead of all at once. An optional shadow phase (mirrored requests scored by
//! both versions, Production answering), then canary steps (that share of requests
//! answered by the candidate), each ended by the analysis. A policy key: only
//! `tollgate apply` changes it.

use serde::{Deserialize, Serialize};

use crate::schedule::Window;

/// The spec's `rollout:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// A first phase that mirrors requests to the candidate without changing answers.
    #[serde(default)]
    pub shadow: Option<ShadowPhase>,
    /// The canary steps.
    pub canary: Canary,
    /// The checks at the end of every phase and step.
    #[serde(default)]
    pub analysis: Analysis,
}

/// `rollout.shadow`: mirror a share of Production's requests for a while.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShadowPhase {
    /// Share of Production's requests mirrored, in (0, 1]; 1 by default.
    #[serde(default = "one")]
    pub share: f64,
    /// How long the phase lasts (`30m`, `30s`).
    pub duration: Window,
}

fn one() -> f64 {
    1.0
}

/// `rollout.canary`: the shares of requests the candidate answers, one step each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// Percentages, rising, ending at 100 (e.g. `[5, 25, 50, 100]`).
    pub steps: Vec<u32>,
    /// How long each step lasts (`15m`).
    pub step: Window,
}

/// `rollout.analysis`: what the candidate must show at the end of each phase and step.
/// Each check is optional; with none, a step passes when its time is up.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    /// Largest share of the candidate's records that fail (5xx and model errors).
    #[serde(default)]
    pub max_error_rate: Option<f64>,
    /// Largest 99th-percentile scoring time of the candidate, in milliseconds.
    #[serde(default)]
    pub max_latency_p99_ms: Option<f64>,
    /// Smallest share of mirrored records both versions predict alike (shadow phase).
    #[serde(default)]
    pub min_agreement: Option<f64>,
    /// Largest PSI of the candidate's scores against Production's.
    #[serde(default)]
    pub max_prediction_drift: Option<f64>,
    /// Smallest live AUC-ROC of the candidate, judged once `min_labels` labels arrived.
    #[serde(default)]
    pub min_auc_roc: Option<f64>,
    /// Labels the candidate needs before `min_auc_roc` is judged (200 by default).
    #[serde(default = "default_min_labels")]
    pub min_labels: u64,
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            max_error_rate: None,
            max_latency_p99_ms: None,
            min_agreement: None,
            max_prediction_drift: None,
            min_auc_roc: None,
            min_labels: default_min_labels(),
        }
    }
}

fn default_min_labels() -> u64 {
    200
}

/// Shortest phase or step: shorter ones see too little traffic to judge.
pub const MIN_PHASE: std::time::Duration = std::time::Duration::from_secs(1);

impl Rollout {
    /// Checks the bounds; the message names the key.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = &self.shadow {
            if !(s.share > 0.0 && s.share <= 1.0) {
                return Err(format!(
                    "rollout.shadow.share must be in (0, 1], got {}",
                    s.share
                ));
            }
            if s.duration.0 < MIN_PHASE {
                return Err("rollout.shadow.duration must be at least 1s".into());
            }
        }
        let steps = &self.canary.steps;
        if steps.last() != Some(&100) {
            return Err(format!(
                "rollout.canary.steps must end at 100 (the candidate answering every request), got {steps:?}"
            ));
        }
        if steps.first() == Some(&0) || steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "rollout.canary.steps must rise from above 0 to 100, got {steps:?}"
            ));
        }
        if self.canary.step.0 < MIN_PHASE {
            return Err("rollout.canary.step must be at least 1s".into());
        }
        let a = &self.analysis;
        let share = |name: &str, v: Option<f64>| match v {
            Some(v) if !(0.0..=1.0).contains(&v) => Err(format!(
                "rollout.analysis.{name} must be between 0 and 1, got {v}"
            )),
            _ => Ok(()),
        };
        share("max_error_rate", a.max_error_rate)?;
        share("min_agreement", a.min_agreement)?;
        share("min_auc_roc", a.min_auc_roc)?;
        for (name, v) in [
            ("max_latency_p99_ms", a.max_latency_p99_ms),
            ("max_prediction_drift", a.max_prediction_drift),
        ] {
            if let Some(v) = v.filter(|v| !(*v >= 0.0 && v.is_finite())) {
                return Err(format!(
                    "rollout.analysis.{name} must be a number of at least 0, got {v}"
                ));
            }
        }
        if a.min_auc_roc.is_some() && a.min_labels == 0 {
            return Err("rollout.analysis.min_labels must be at least 1".into());
        }
        Ok(())
    }
}
