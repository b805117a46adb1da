//! Approvals, rejections and overrides: each checked against the model's policy (its
//! approvers, four eyes, how many and how recent), and the Production run they start.

use crate::{auth::Caller, policy};
use prost::Message;
use tollgate_bus::{
    Bus, now_ms,
    subjects::{self, ModelKey},
};
use tollgate_pipeline::runs;
use tollgate_proto::{
    Approval, ApprovalRequest, Approvals, ModelChange, ModelStage, ModelVersion, OverrideRequest,
    Run, RunId, Stage, Trigger, TriggerKind,
};
use tracing::info;

use super::common::*;
use crate::error::RegistryError;

/// Starts a run of one stage for a version: how an approval reaches the promoter.
async fn start_run(
    bus: &Bus,
    v: &ModelVersion,
    stage: Stage,
    actor: &str,
    reason: String,
) -> Result<RunId, RegistryError> {
    let trigger_id = subjects::trigger_ids::registry(stage, &v.model, v.version);
    let trigger = Trigger {
        trigger_id: trigger_id.clone(),
        kind: TriggerKind::Model as i32,
        model: v.model.clone(),
        model_version: v.version,
        reason,
        requested_by: actor.into(),
        ..Default::default()
    };
    let mut id = RunId::new();
    // Claimed like every run id, so no publisher can reuse it.
    if let Ok(parsed) = trigger_id.parse() {
        (id, _) = runs::claim_id(bus, subjects::Origin::System, &parsed, id)
            .await
            .map_err(unavailable)?;
    }
    let run = Run {
        plan: vec![stage as i32],
        ..Run::from_trigger(&id, &trigger, now_ms())
    };
    runs::start(bus, &id, &run).await.map_err(unavailable)?;
    Ok(id)
}

/// Records an approver's decision on a Staging version. The approver must be on the
/// model's applied approvers and not the change's author; each decides once (since the
/// latest gate decision). Once the policy's approvals are there and none rejects, the
/// promoter's move to Production starts.
pub async fn approve(
    bus: &Bus,
    caller: &Caller,
    r: ApprovalRequest,
) -> Result<Approval, RegistryError> {
    required(&r.reason, "a reason")?;
    let (v, rev) = version(bus, &r.model, r.version).await?;
    let spec = policy::of(bus, &r.model).await?;
    policy::require_approver(caller, &spec, &r.approver, false)?;
    let authors = policy::authors(bus, &v).await?;
    let verb = if r.approve { "approve" } else { "reject" };
    policy::not_the_author(&v, &authors, &r.approver, verb)?;
    let since = policy::latest_gate_ms(&v);
    let (mut decisions, revision) = approvals(bus, &r.model, r.version).await?;
    let counted: Vec<&Approval> = decisions.iter().filter(|d| d.at_unix_ms >= since).collect();
    let decided = |d: &Approval| {
        RegistryError::AlreadyExists(format!(
            "{} v{} was already {} by {}",
            r.model,
            r.version,
            if d.approved { "approved" } else { "rejected" },
            d.approver
        ))
    };
    // A rejection stands until a new gate decision; each approver decides once.
    if let Some(rejection) = counted.iter().find(|d| !d.approved) {
        return Err(decided(rejection));
    }
    if let Some(mine) = counted.iter().find(|d| d.approver == r.approver) {
        return Err(decided(mine));
    }
    if v.stage() != ModelStage::Staging {
        if let Some(first) = counted.first() {
            return Err(decided(first));
        }
        return Err(RegistryError::FailedPrecondition(format!(
            "{} v{} is in {}; only a Staging version can be approved for Production",
            r.model,
            r.version,
            v.stage().name()
        )));
    }
    let decision = Approval {
        model: r.model.clone(),
        version: r.version,
        approver: r.approver.clone(),
        reason: r.reason.clone(),
        approved: r.approve,
        at_unix_ms: now_ms(),
    };
    decisions.push(decision.clone());
    let key = ModelKey::Approvals(&r.model, r.version).to_string();
    let bytes = Approvals {
        decisions: decisions.clone(),
    }
    .encode_to_vec()
    .into();
    let written = match revision {
        Some(rev) => models(bus).update(&key, bytes, rev).await.is_ok(),
        None => models(bus).create(&key, bytes).await.is_ok(),
    };
    if !written {
        return Err(RegistryError::FailedPrecondition(format!(
            "another decision on {} v{} was recorded meanwhile; try again",
            r.model, r.version
        )));
    }
    let change = if r.approve {
        ModelChange::Approved
    } else {
        ModelChange::Rejected
    };
    let standing = policy::standing(&decisions, &v, &spec, now_ms());
    let v = annotate(bus, v, rev, change, &r.approver, &r.reason, "").await?;
    info!(model = %r.model, version = r.version, approver = %r.approver, %change, approvals = standing.valid.len(), needed = standing.needed, "approval decision recorded");
    if r.approve && standing.enough() {
        start_run(
            bus,
            &v,
            Stage::Production,
            &r.approver,
            format!("approved by {}: {}", standing.valid.join(", "), r.reason),
        )
        .await?;
    }
    Ok(decision)
}

/// Records an approver's override of a blocked gate decision and sends the version to
/// the promoter for Staging.
pub async fn override_gate(
    bus: &Bus,
    caller: &Caller,
    r: OverrideRequest,
) -> Result<ModelVersion, RegistryError> {
    required(&r.reason, "a reason")?;
    let (mut v, rev) = version(bus, &r.model, r.version).await?;
    let spec = policy::of(bus, &r.model).await?;
    policy::require_approver(caller, &spec, &r.approver, false)?;
    let authors = policy::authors(bus, &v).await?;
    policy::not_the_author(&v, &authors, &r.approver, "override the gate of")?;
    match &v.last_gate {
        Some(g) if !g.blessed => {}
        Some(_) => {
            return Err(RegistryError::FailedPrecondition(format!(
                "the gate blessed {} v{}: nothing to override",
                r.model, r.version
            )));
        }
        None => {
            return Err(RegistryError::FailedPrecondition(format!(
                "{} v{} has no gate decision to override",
                r.model, r.version
            )));
        }
    }
    if let Some(g) = v.last_gate.as_mut() {
        g.summary = format!("{} (overridden by {}: {})", g.summary, r.approver, r.reason);
    }
    let v = annotate(
        bus,
        v,
        rev,
        ModelChange::Overridden,
        &r.approver,
        &r.reason,
        "",
    )
    .await?;
    start_run(
        bus,
        &v,
        Stage::Promote,
        &r.approver,
        format!("gate overridden by {}: {}", r.approver, r.reason),
    )
    .await?;
    Ok(v)
}

/// A Staging version waiting for approvals: what the console's approvals page lists.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The version waiting.
    pub version: ModelVersion,
    /// Where its approvals stand.
    pub standing: policy::Standing,
    /// Every decision recorded on it, oldest first.
    pub decisions: Vec<Approval>,
    /// Who may approve it (the applied policy's approvers).
    pub approvers: Vec<String>,
    /// The model's Production version, to compare with.
    pub production: Option<ModelVersion>,
}

/// The Staging versions whose gate passed and whose approvals are not yet enough, with
/// no rejection standing: the versions waiting for an approver. A model with no applied
/// policy has no approvers, so none of its versions is listed.
pub async fn pending(bus: &Bus) -> Result<Vec<Pending>, RegistryError> {
    let mut out = Vec::new();
    for v in super::list_versions(bus, "", Some(ModelStage::Staging), "").await? {
        if !v.last_gate.as_ref().is_some_and(|g| g.blessed) {
            continue;
        }
        let spec = match policy::of(bus, &v.model).await {
            Ok(spec) => spec,
            Err(RegistryError::FailedPrecondition(_)) => continue,
            Err(e) => return Err(e),
        };
        let (decisions, _) = approvals(bus, &v.model, v.version).await?;
        let standing = policy::standing(&decisions, &v, &spec, now_ms());
        if standing.enough() || standing.rejected.is_some() {
            continue;
        }
        let production = match super::latest_by_stage(bus, &v.model, ModelStage::Production).await {
            Ok(p) => Some(p),
            Err(RegistryError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        out.push(Pending {
            version: v,
            standing,
            decisions,
            approvers: spec.approvers,
            production,
        });
    }
    Ok(out)
}
