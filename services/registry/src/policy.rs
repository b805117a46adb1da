//! What a model's applied policy lets a caller do to its versions: the applied spec
//! (`tollgate apply`) names the approvers, how many distinct ones Production needs and how
//! long an approval counts; the version's run names the change's author, who may not
//! approve it (four eyes). Staging needs a blessed gate decision of the version or a
//! recorded override; Production needs enough valid approvals of the version recorded
//! after its latest gate decision, and no rejection.

use prost::Message;
use tollgate_bus::{Bus, subjects::Bucket};
use tollgate_pipeline::Stores;
use tollgate_proto::{Approval, ModelChange, ModelVersion, RunSummary};
use tollgate_spec::ModelSpec;

use crate::{auth::Caller, error::RegistryError};

/// The model's applied spec: its policy.
pub async fn of(bus: &Bus, model: &str) -> Result<ModelSpec, RegistryError> {
    use tollgate_pipeline::specs::SpecStoreError;
    match bus.specs().current(model).await {
        Ok(Some(applied)) => Ok(applied.spec),
        Ok(None) => Err(RegistryError::FailedPrecondition(format!(
            "model {model} has no applied spec, so no approvers: an admin applies one with `tollgate apply tollgate.yaml`"
        ))),
        Err(SpecStoreError::Bus(e)) => Err(RegistryError::Unavailable(Box::new(e))),
        Err(e @ SpecStoreError::Invalid { .. }) => Err(RegistryError::Internal(e.to_string())),
    }
}

/// Refuses `who` unless it is on the policy's approvers (an admin's token passes too,
/// where `admin_may`).
pub fn require_approver(
    caller: &Caller,
    policy: &ModelSpec,
    who: &str,
    admin_may: bool,
) -> Result<(), RegistryError> {
    if admin_may && caller.role == Some(tollgate_service::tokens::Role::Admin) {
        return Ok(());
    }
    if who.trim().is_empty() {
        return Err(RegistryError::InvalidArgument(
            "an approver identity is required".into(),
        ));
    }
    if policy.approvers.iter().any(|a| a == who) {
        return Ok(());
    }
    Err(RegistryError::PermissionDenied(format!(
        "{who} is not an approver of {} (approvers: {})",
        policy.model,
        if policy.approvers.is_empty() {
            "none".to_string()
        } else {
            policy.approvers.join(", ")
        }
    )))
}

/// Who made the change a version came from: its run's requester, CI actor and commit
/// author.
pub async fn authors(bus: &Bus, v: &ModelVersion) -> Result<Vec<String>, RegistryError> {
    if v.run_id.is_empty() {
        return Ok(Vec::new());
    }
    let entry = bus
        .key_value(Bucket::Runs)
        .get(&v.run_id)
        .await
        .map_err(|e| RegistryError::Unavailable(Box::new(e)))?;
    let Some(bytes) = entry else {
        return Ok(Vec::new());
    };
    let run = RunSummary::decode(bytes.as_ref())
        .map_err(|e| RegistryError::Internal(format!("corrupt run record {}: {e}", v.run_id)))?;
    let ci = run.ci.unwrap_or_default();
    let mut out: Vec<String> = [run.requested_by, ci.actor, ci.commit_author]
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Refuses `who` when it authored the change the version came from.
pub fn not_the_author(
    v: &ModelVersion,
    authors: &[String],
    who: &str,
    what: &str,
) -> Result<(), RegistryError> {
    if authors.iter().any(|a| a == who) {
        return Err(RegistryError::PermissionDenied(format!(
            "{who} made the change {} v{} came from (run {}), so may not {what} it: another approver must",
            v.model, v.version, v.run_id
        )));
    }
    Ok(())
}

/// When the gate last decided on the version (ms), from its audit trail; 0: never.
pub fn latest_gate_ms(v: &ModelVersion) -> i64 {
    let gate = [
        ModelChange::GateBlessed.name(),
        ModelChange::GateBlocked.name(),
    ];
    v.audit
        .iter()
        .filter(|a| gate.contains(&a.action.as_str()))
        .map(|a| a.at_unix_ms)
        .max()
        .unwrap_or(0)
}

/// Whether the version may enter Staging: the gate blessed it, or an approver overrode
/// its latest decision.
pub fn staging_allowed(v: &ModelVersion) -> Result<(), RegistryError> {
    let blessed = v.last_gate.as_ref().is_some_and(|g| g.blessed);
    let gated = latest_gate_ms(v);
    let overridden = v
        .audit
        .iter()
        .any(|a| a.action == ModelChange::Overridden.name() && a.at_unix_ms >= gated && gated > 0);
    if blessed || overridden {
        return Ok(());
    }
    Err(RegistryError::FailedPrecondition(format!(
        "{} v{} has {}: Staging needs a blessed gate decision or an approver's override (tollgate override)",
        v.model,
        v.version,
        if v.last_gate.is_some() {
            "a blocked gate decision"
        } else {
            "no gate decision"
        }
    )))
}

/// Where a version's approvals stand under the policy, at `now_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// Approvals that count: after the latest gate decision, not expired, by distinct
    /// approvers still on the list.
    pub valid: Vec<String>,
    /// A rejection that counts, if any.
    pub rejected: Option<Approval>,
    /// How many the policy needs.
    pub needed: u32,
}

impl Standing {
    /// Whether Production may take the version.
    pub fn enough(&self) -> bool {
        self.rejected.is_none() && self.valid.len() as u32 >= self.needed
    }

    /// Why it may not yet, for a person.
    pub fn shortfall(&self, v: &ModelVersion) -> String {
        if let Some(r) = &self.rejected {
            return format!(
                "{} v{} was rejected by {}: {}",
                v.model, v.version, r.approver, r.reason
            );
        }
        format!(
            "{} v{} has {} of the {} approvals it needs for Production{} (tollgate approve {} {} --reason ...)",
            v.model,
            v.version,
            self.valid.len(),
            self.needed,
            if self.valid.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.valid.join(", "))
            },
            v.model,
            v.version
        )
    }
}

/// The standing of `decisions` on `v` under `policy`.
pub fn standing(
    decisions: &[Approval],
    v: &ModelVersion,
    policy: &ModelSpec,
    now_ms: i64,
) -> Standing {
    let since = latest_gate_ms(v);
    let expiry = policy.approval_expires_hours as i64 * 3_600_000;
    let counts = |d: &&Approval| {
        d.at_unix_ms >= since
            && now_ms - d.at_unix_ms <= expiry
            && policy.approvers.contains(&d.approver)
    };
    let mut valid: Vec<String> = decisions
        .iter()
        .filter(counts)
        .filter(|d| d.approved)
        .map(|d| d.approver.clone())
        .collect();
    valid.sort();
    valid.dedup();
    Standing {
        valid,
        rejected: decisions
            .iter()
            .filter(counts)
            .find(|d| !d.approved)
            .cloned(),
        needed: policy.approvals_required,
    }
}

#[cfg(test)]
mod tests;
