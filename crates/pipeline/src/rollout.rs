//! Shadows and rollouts, the parts the model servers, the registry and the CLI share: what
//! a replica tallies of a candidate beside Production ([`Tally`]), how every replica's
//! reports add up ([`summarize`]), a rollout's phases ([`phases`]) and the analysis that
//! ends each one ([`analyze`]).

use std::time::Duration;

use tollgate_proto::{Rollout, RolloutPlan, RolloutState, ShadowReport};

/// Upper bounds of the latency buckets, in microseconds (the last bucket is above them).
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000,
];

/// Equal bins of [0, 1] the probabilities are counted in, for the prediction drift.
pub const SCORE_BINS: usize = 10;

/// Fewest records on each side before the prediction drift is judged.
pub const MIN_DRIFT_RECORDS: u64 = 100;

/// What a replica saw of one candidate since its last report.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Records scored by both.
    pub mirrored: u64,
    /// Of those, predicted alike.
    pub agreed: u64,
    /// Records the candidate failed to score.
    pub errors: u64,
    /// Sum of |p_candidate - p_production| over the mirrored records.
    pub abs_diff_sum: f64,
    /// The candidate's scoring times per request ([`LATENCY_BOUNDS_US`], then one above).
    pub latency_buckets: Vec<u64>,
    /// Records the candidate answered (a canary step).
    pub served: u64,
    /// Records Production answered meanwhile.
    pub production_served: u64,
    /// The candidate's probabilities in [`SCORE_BINS`] bins.
    pub shadow_scores: Vec<u64>,
    /// Production's probabilities in the same bins.
    pub production_scores: Vec<u64>,
}

fn bin(p: f64) -> usize {
    ((p.clamp(0.0, 1.0) * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1)
}

fn count(bins: &mut Vec<u64>, probabilities: &[f64]) {
    if bins.is_empty() {
        *bins = vec![0; SCORE_BINS];
    }
    for &p in probabilities {
        bins[bin(p)] += 1;
    }
}

impl Tally {
    fn time(&mut self, took: Duration) {
        if self.latency_buckets.is_empty() {
            self.latency_buckets = vec![0; LATENCY_BOUNDS_US.len() + 1];
        }
        let us = took.as_micros() as u64;
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.latency_buckets[bucket] += 1;
    }

    /// Adds one mirrored request: the Production and candidate probabilities of its
    /// records (each predicted positive at or above its own version's threshold) and the
    /// candidate's time.
    pub fn add(
        &mut self,
        production: (&[f64], f64),
        shadow: Result<(&[f64], f64), ()>,
        took: Duration,
    ) {
        self.time(took);
        let (p, p_cut) = production;
        match shadow {
            Ok((q, q_cut)) => {
                for (&a, &b) in p.iter().zip(q) {
                    self.mirrored += 1;
                    self.agreed += u64::from((a >= p_cut) == (b >= q_cut));
                    self.abs_diff_sum += (a - b).abs();
                }
                count(&mut self.shadow_scores, q);
                count(&mut self.production_scores, p);
            }
            Err(()) => self.errors += p.len() as u64,
        }
    }

    /// Adds a request the candidate answered itself, in `took`.
    pub fn served(&mut self, probabilities: &[f64], took: Duration) {
        self.time(took);
        self.served += probabilities.len() as u64;
        count(&mut self.shadow_scores, probabilities);
    }

    /// Adds a request of `records` records the candidate failed to answer (5xx).
    pub fn failed(&mut self, records: u64, took: Duration) {
        self.time(took);
        self.errors += records;
    }

    /// Adds a request Production answered while the candidate took a share.
    pub fn production(&mut self, probabilities: &[f64]) {
        self.production_served += probabilities.len() as u64;
        count(&mut self.production_scores, probabilities);
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.mirrored == 0 && self.errors == 0 && self.served == 0 && self.production_served == 0
    }
}

/// What every replica reported of one candidate, added up.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Records scored by both.
    pub mirrored: u64,
    /// Share of them predicted alike; `None` before any.
    pub agreement: Option<f64>,
    /// Mean |p_candidate - p_production|; `None` before any.
    pub mean_abs_diff: Option<f64>,
    /// Records the candidate failed to score.
    pub errors: u64,
    /// The candidate's per-request latency at the 99th percentile, as the upper bound of
    /// its bucket, in milliseconds; `None` before any.
    pub latency_p99_ms: Option<f64>,
    /// Replicas that reported.
    pub replicas: usize,
    /// Records the candidate answered.
    pub served: u64,
    /// Records Production answered meanwhile.
    pub production_served: u64,
    /// Share of the candidate's records that failed; `None` before any.
    pub error_rate: Option<f64>,
    /// PSI of the candidate's probabilities against Production's; `None` before
    /// [`MIN_DRIFT_RECORDS`] on each side.
    pub prediction_drift: Option<f64>,
}

fn add_bins(total: &mut Vec<u64>, more: &[u64]) {
    if total.len() < more.len() {
        total.resize(more.len(), 0);
    }
    for (t, n) in total.iter_mut().zip(more) {
        *t += n;
    }
}

/// Adds up `reports` of one candidate.
pub fn summarize(reports: &[ShadowReport]) -> Summary {
    let mut total = Tally::default();
    let mut replicas: Vec<&str> = Vec::new();
    for r in reports {
        total.mirrored += r.mirrored;
        total.agreed += r.agreed;
        total.errors += r.errors;
        total.abs_diff_sum += r.abs_diff_sum;
        total.served += r.served;
        total.production_served += r.production_served;
        add_bins(&mut total.latency_buckets, &r.latency_buckets);
        add_bins(&mut total.shadow_scores, &r.shadow_scores);
        add_bins(&mut total.production_scores, &r.production_scores);
        if !replicas.contains(&r.replica.as_str()) {
            replicas.push(&r.replica);
        }
    }
    let requests: u64 = total.latency_buckets.iter().sum();
    let p99 = (requests > 0).then(|| {
        let wanted = (requests as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        let bucket = total
            .latency_buckets
            .iter()
            .position(|n| {
                seen += n;
                seen >= wanted
            })
            .unwrap_or(LATENCY_BOUNDS_US.len());
        LATENCY_BOUNDS_US
            .get(bucket)
            .map_or(f64::INFINITY, |&us| us as f64 / 1000.0)
    });
    let mirrored = total.mirrored as f64;
    let attempted = total.mirrored + total.served + total.errors;
    Summary {
        mirrored: total.mirrored,
        agreement: (total.mirrored > 0).then(|| total.agreed as f64 / mirrored),
        mean_abs_diff: (total.mirrored > 0).then(|| total.abs_diff_sum / mirrored),
        errors: total.errors,
        latency_p99_ms: p99,
        replicas: replicas.len(),
        served: total.served,
        production_served: total.production_served,
        error_rate: (attempted > 0).then(|| total.errors as f64 / attempted as f64),
        prediction_drift: psi(&total.production_scores, &total.shadow_scores),
    }
}

/// The population stability index of `actual` counts against `expected` counts in the
/// same bins; `None` while either side has fewer than [`MIN_DRIFT_RECORDS`].
pub fn psi(expected: &[u64], actual: &[u64]) -> Option<f64> {
    const FLOOR: f64 = 1e-4;
    let (e_total, a_total) = (expected.iter().sum::<u64>(), actual.iter().sum::<u64>());
    if e_total < MIN_DRIFT_RECORDS || a_total < MIN_DRIFT_RECORDS {
        return None;
    }
    let share = |n: u64, total: u64| (n as f64 / total as f64).max(FLOOR);
    Some(
        expected
            .iter()
            .zip(actual)
            .map(|(&e, &a)| {
                let (e, a) = (share(e, e_total), share(a, a_total));
                (a - e) * (a / e).ln()
            })
            .sum(),
    )
}

/// What every replica reported of `r`'s current phase (`tollgate.shadow.<model>` since the
/// phase started, of its candidate and start), added up.
pub async fn phase_summary(
    bus: &tollgate_bus::Bus,
    r: &Rollout,
) -> Result<Summary, tollgate_bus::BusError> {
    use tollgate_bus::subjects;
    let reports: Vec<ShadowReport> = bus
        .read_since(
            subjects::SHADOW_STREAM,
            &subjects::shadow(&r.model),
            r.phase_started_unix_ms,
            "ShadowReport",
        )
        .await?;
    let of_phase: Vec<ShadowReport> = reports
        .into_iter()
        .filter(|s| {
            s.shadow_version == r.version && s.shadow_started_unix_ms == r.phase_started_unix_ms
        })
        .collect();
    Ok(summarize(&of_phase))
}

/// The plan a rollout runs, fixed from the spec's `rollout:` section when it starts.
pub fn plan_of(spec: &tollgate_spec::rollout::Rollout) -> RolloutPlan {
    let a = &spec.analysis;
    let limit = |v: Option<f64>| v.unwrap_or(-1.0);
    RolloutPlan {
        shadow_share: spec.shadow.map_or(0.0, |s| s.share),
        shadow_ms: spec.shadow.map_or(0, |s| s.duration.0.as_millis() as i64),
        steps: spec.canary.steps.clone(),
        step_ms: spec.canary.step.0.as_millis() as i64,
        max_error_rate: limit(a.max_error_rate),
        max_latency_p99_ms: limit(a.max_latency_p99_ms),
        min_agreement: limit(a.min_agreement),
        max_prediction_drift: limit(a.max_prediction_drift),
        min_auc_roc: limit(a.min_auc_roc),
        min_labels: a.min_labels,
    }
}

/// One phase of a rollout: how the replicas split traffic during it, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// `shadow` or `canary 25%`.
    pub name: String,
    /// Share of Production's requests mirrored to the candidate.
    pub mirror: f64,
    /// Share of Production's requests the candidate answers.
    pub canary: f64,
    /// How long it lasts.
    pub duration: Duration,
}

/// The phases of `plan`, in order: the shadow phase when it has one, then each step.
pub fn phases(plan: &RolloutPlan) -> Vec<Phase> {
    let ms = |ms: i64| Duration::from_millis(ms.max(0) as u64);
    let shadow = (plan.shadow_share > 0.0).then(|| Phase {
        name: "shadow".into(),
        mirror: plan.shadow_share,
        canary: 0.0,
        duration: ms(plan.shadow_ms),
    });
    shadow
        .into_iter()
        .chain(plan.steps.iter().map(|&percent| Phase {
            name: format!("canary {percent}%"),
            mirror: 0.0,
            canary: f64::from(percent.min(100)) / 100.0,
            duration: ms(plan.step_ms),
        }))
        .collect()
}

/// A rollout state's name, as people read it.
pub fn state_name(state: RolloutState) -> &'static str {
    match state {
        RolloutState::Unspecified => "none",
        RolloutState::Running => "running",
        RolloutState::Paused => "paused",
        RolloutState::Promoted => "promoted",
        RolloutState::RolledBack => "rolled back",
        RolloutState::Aborted => "aborted",
    }
}

/// The name of `r`'s current phase (`canary 25%`), or `the end` past its last.
pub fn phase_name(r: &Rollout) -> String {
    let plan = r.plan.clone().unwrap_or_default();
    phases(&plan)
        .get(r.phase as usize)
        .map_or_else(|| "the end".into(), |p| p.name.clone())
}

/// The candidate's live figures from its labels: how many, and the AUC-ROC when both
/// classes arrived.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Live {
    /// Labels joined to its predictions.
    pub labels: u64,
    /// AUC-ROC over them, when both classes arrived.
    pub auc_roc: Option<f64>,
}

/// The analysis of one phase: whether it passed, and what it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// No check failed.
    pub passed: bool,
    /// The checks that failed, each with the measured value and the limit.
    pub failures: Vec<String>,
    /// Every check, passed, failed or not judged, for the audit trail.
    pub measured: Vec<String>,
}

impl Analysis {
    /// One line for the audit trail and the run: the failures when there are any,
    /// every measurement otherwise.
    pub fn line(&self) -> String {
        if self.passed {
            self.measured.join("; ")
        } else {
            self.failures.join("; ")
        }
    }
}

/// Judges a phase's `summary` (and the candidate's `live` figures) against `plan`'s
/// limits. A check the plan does not ask for, or that has nothing to measure yet (the
/// agreement outside a shadow phase, the AUC before `min_labels` labels), is not judged.
pub fn analyze(plan: &RolloutPlan, summary: &Summary, live: Live) -> Analysis {
    let mut failures = Vec::new();
    let mut measured = Vec::new();
    let mut check = |name: &str, value: Option<f64>, limit: f64, at_most: bool, unit: &str| {
        if limit < 0.0 {
            return;
        }
        let Some(value) = value else {
            measured.push(format!("{name}: nothing to measure yet"));
            return;
        };
        let ok = if at_most {
            value <= limit
        } else {
            value >= limit
        };
        let line = format!(
            "{name} {value:.4}{unit} ({} {limit}{unit})",
            if at_most { "max" } else { "min" }
        );
        if !ok {
            failures.push(line.clone());
        }
        measured.push(line);
    };
    check(
        "error rate",
        summary.error_rate,
        plan.max_error_rate,
        true,
        "",
    );
    check(
        "latency p99",
        summary.latency_p99_ms,
        plan.max_latency_p99_ms,
        true,
        " ms",
    );
    check(
        "agreement",
        summary.agreement,
        plan.min_agreement,
        false,
        "",
    );
    check(
        "prediction drift (PSI)",
        summary.prediction_drift,
        plan.max_prediction_drift,
        true,
        "",
    );
    if plan.min_auc_roc >= 0.0 {
        if live.labels < plan.min_labels {
            measured.push(format!(
                "live AUC-ROC: {} of {} labels so far",
                live.labels, plan.min_labels
            ));
        } else {
            check("live AUC-ROC", live.auc_roc, plan.min_auc_roc, false, "");
        }
    }
    measured.insert(
        0,
        format!(
            "{} mirrored, {} answered by the candidate, {} by Production, {} errors, from {} replicas",
            summary.mirrored,
            summary.served,
            summary.production_served,
            summary.errors,
            summary.replicas
        ),
    );
    Analysis {
        passed: failures.is_empty(),
        failures,
        measured,
    }
}

#[cfg(test)]
mod tests;
