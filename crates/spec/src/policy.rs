//! A model's policy against a proposal: the applied spec (`tollgate apply`, an admin's
//! act) says who approves, what must pass and what runs when; a spec a trigger carries
//! (a pull request's `tollgate.yaml`) is a proposal. A proposal may change what is
//! trained and tested, and make gates stricter; every other difference from the policy is
//! listed as a policy change that needs `tollgate apply`, and the run made of it is
//! report-only.
//!
//! [`effective`] is the spec a run of a proposal uses: the proposal's features, target,
//! split, algorithm, expectations, tests, threshold, drift settings and timeouts, with the
//! policy's approvers, plans, schedules, data source, concurrency, alerts, champion checks,
//! live monitor, rollout and approval rules, and each gate the stricter of the two.

use std::collections::BTreeMap;

use crate::{Bound, Gate, ModelSpec};

/// The spec a run of `proposal` uses under `policy`, and each policy change the proposal
/// asks for (empty when it asks for none).
pub fn effective(policy: &ModelSpec, proposal: &ModelSpec) -> (ModelSpec, Vec<String>) {
    let mut changes = Vec::new();
    let mut gates: BTreeMap<Gate, Bound> = proposal.gates.clone();
    for (gate, floor) in &policy.gates {
        let asked = proposal.gates.get(gate);
        let merged = match asked {
            None => {
                changes.push(format!(
                    "gates.{gate} {} is dropped: needs `tollgate apply`",
                    describe(floor)
                ));
                *floor
            }
            Some(asked) => {
                if let (Some(old), Some(new)) = (floor.min, asked.min)
                    && new < old
                {
                    changes.push(format!(
                        "gates.{gate} min {old} → {new}: needs `tollgate apply`"
                    ));
                }
                if let (Some(old), Some(new)) = (floor.max, asked.max)
                    && new > old
                {
                    changes.push(format!(
                        "gates.{gate} max {old} → {new}: needs `tollgate apply`"
                    ));
                }
                if floor.min.is_some() && asked.min.is_none() {
                    changes.push(format!(
                        "gates.{gate} min {} is dropped: needs `tollgate apply`",
                        floor.min.unwrap_or_default()
                    ));
                }
                if floor.max.is_some() && asked.max.is_none() {
                    changes.push(format!(
                        "gates.{gate} max {} is dropped: needs `tollgate apply`",
                        floor.max.unwrap_or_default()
                    ));
                }
                stricter(floor, asked)
            }
        };
        gates.insert(*gate, merged);
    }
    let mut differs = |what: &str, old: String, new: String| {
        if old != new {
            changes.push(format!("{what} {old} → {new}: needs `tollgate apply`"));
        }
    };
    differs(
        "approvers",
        format!("{:?}", policy.approvers),
        format!("{:?}", proposal.approvers),
    );
    differs(
        "approvals_required",
        policy.approvals_required.to_string(),
        proposal.approvals_required.to_string(),
    );
    differs(
        "approval_expires_hours",
        policy.approval_expires_hours.to_string(),
        proposal.approval_expires_hours.to_string(),
    );
    let kinds: std::collections::BTreeSet<_> = policy
        .triggers
        .keys()
        .chain(proposal.triggers.keys())
        .collect();
    for kind in kinds {
        let plan = |s: &ModelSpec| {
            s.triggers.get(kind).map_or_else(
                || "none".to_string(),
                |p| {
                    let stages: Vec<String> = p.iter().map(ToString::to_string).collect();
                    format!("[{}]", stages.join(", "))
                },
            )
        };
        if policy.triggers.get(kind) != proposal.triggers.get(kind) {
            differs(&format!("triggers.{kind}"), plan(policy), plan(proposal));
        }
    }
    differs("schedule", json(&policy.schedule), json(&proposal.schedule));
    differs("data", json(&policy.data), json(&proposal.data));
    differs(
        "concurrency",
        json(&policy.concurrency),
        json(&proposal.concurrency),
    );
    differs("alerts", json(&policy.alerts), json(&proposal.alerts));
    differs("champion", json(&policy.champion), json(&proposal.champion));
    differs("monitor", json(&policy.monitor), json(&proposal.monitor));
    differs("rollout", json(&policy.rollout), json(&proposal.rollout));
    changes.dedup();
    let spec = ModelSpec {
        gates,
        approvers: policy.approvers.clone(),
        approvals_required: policy.approvals_required,
        approval_expires_hours: policy.approval_expires_hours,
        triggers: policy.triggers.clone(),
        schedule: policy.schedule.clone(),
        data: policy.data.clone(),
        concurrency: policy.concurrency.clone(),
        alerts: policy.alerts,
        champion: policy.champion.clone(),
        monitor: policy.monitor,
        rollout: policy.rollout.clone(),
        ..proposal.clone()
    };
    (spec, changes)
}

/// The stricter of two bounds on a gate: the larger minimum, the smaller maximum.
fn stricter(floor: &Bound, asked: &Bound) -> Bound {
    let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    };
    Bound {
        min: pick(floor.min, asked.min, f64::max),
        max: pick(floor.max, asked.max, f64::min),
    }
}

fn describe(b: &Bound) -> String {
    match (b.min, b.max) {
        (Some(min), Some(max)) => format!("(min {min}, max {max})"),
        (Some(min), None) => format!("(min {min})"),
        (None, Some(max)) => format!("(max {max})"),
        (None, None) => String::new(),
    }
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests;
