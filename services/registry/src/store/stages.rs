//! Stage pointers and aliases: transitions (each checked against the policy and the role
//! that owns it), rollbacks and aliases.

use crate::{auth::Caller, policy};
use tollgate_bus::{Bus, now_ms, subjects::ModelKey};
use tollgate_proto::{
    ModelChange, ModelStage, ModelVersion, RollbackRequest, SetAliasRequest, TransitionStageRequest,
};
use tracing::info;

use super::common::*;
use crate::error::RegistryError;

fn change_to(to: ModelStage) -> ModelChange {
    match to {
        ModelStage::Staging => ModelChange::Staged,
        ModelStage::Production => ModelChange::Promoted,
        ModelStage::Archived => ModelChange::Archived,
        ModelStage::None => ModelChange::Unstaged,
    }
}

/// Moves a version to a stage by compare-and-set on the stage pointer; the previous
/// holder is archived when asked. Staging needs a blessed gate decision of the version
/// (or an override); Production needs the version in Staging with the approvals its
/// model's policy asks for, recorded after its latest gate decision.
pub async fn transition(
    bus: &Bus,
    r: TransitionStageRequest,
) -> Result<ModelVersion, RegistryError> {
    transition_with(bus, r, true).await
}

/// [`transition`], with the approvals checked already (by the rollout that ends with it)
/// when `check_approvals` is false: a rollout longer than the approvals' expiry still
/// completes.
pub(super) async fn transition_with(
    bus: &Bus,
    r: TransitionStageRequest,
    check_approvals: bool,
) -> Result<ModelVersion, RegistryError> {
    let to = r.to();
    let (mut v, rev) = version(bus, &r.model, r.version).await?;
    match to {
        ModelStage::Archived => {}
        ModelStage::Staging => policy::staging_allowed(&v)?,
        ModelStage::Production => {
            if v.stage() != ModelStage::Staging && v.stage() != ModelStage::Production {
                return Err(RegistryError::FailedPrecondition(format!(
                    "{} v{} is in {}; only a Staging version can go to Production",
                    r.model,
                    r.version,
                    v.stage().name()
                )));
            }
            if check_approvals {
                approved_for_production(bus, &v).await?;
            }
        }
        ModelStage::None => {
            return Err(RegistryError::InvalidArgument("give a target stage".into()));
        }
    }
    if v.stage() == to {
        return Ok(v);
    }
    let previous = if to == ModelStage::Archived {
        None
    } else {
        swap_pointer(
            bus,
            &r.model,
            to,
            r.version,
            r.check_current.then_some(r.expected_current),
        )
        .await?
    };
    audit(
        &mut v,
        "transition",
        &r.actor,
        Some(to),
        &r.reason,
        &r.run_id,
    );
    save(bus, &v, rev).await?;
    info!(model = %r.model, version = r.version, stage = to.name(), actor = %r.actor, "stage changed");
    announce_change(bus, &v, change_to(to)).await;
    if let (Some(prev), true) = (previous, r.archive_existing) {
        archive(
            bus,
            &r.model,
            prev,
            to,
            &r.actor,
            &format!("replaced by v{}", r.version),
            &r.run_id,
        )
        .await?;
    }
    Ok(v)
}

/// Refuses unless `v` has the approvals its model's policy asks for Production.
pub(super) async fn approved_for_production(
    bus: &Bus,
    v: &ModelVersion,
) -> Result<(), RegistryError> {
    let spec = policy::of(bus, &v.model).await?;
    let (decisions, _) = approvals(bus, &v.model, v.version).await?;
    let standing = policy::standing(&decisions, v, &spec, now_ms());
    if standing.enough() {
        Ok(())
    } else {
        Err(RegistryError::FailedPrecondition(format!(
            "moving to Production refused: {}",
            standing.shortfall(v)
        )))
    }
}

/// Points `stage` at `version` by compare-and-set; returns the version it pointed at
/// before. With `expected`, refuses unless the pointer holds that version (0: none).
async fn swap_pointer(
    bus: &Bus,
    model: &str,
    stage: ModelStage,
    version: u32,
    expected: Option<u32>,
) -> Result<Option<u32>, RegistryError> {
    let key = ModelKey::Stage(model, stage);
    let current = get_u32(bus, key.clone()).await?;
    if let Some(expected) = expected {
        let holder = current.map(|(n, _)| n).unwrap_or(0);
        if holder != expected {
            return Err(RegistryError::FailedPrecondition(format!(
                "{model} {} is held by v{holder}, not v{expected}: another change won",
                stage.name()
            )));
        }
    }
    if !put_u32(bus, key, version, current).await {
        return Err(RegistryError::FailedPrecondition(format!(
            "another change to {model} {} won the race; read it and try again",
            stage.name()
        )));
    }
    Ok(current.map(|(n, _)| n).filter(|&n| n != version))
}

/// Archives version `n` if it is still in `from`.
async fn archive(
    bus: &Bus,
    model: &str,
    n: u32,
    from: ModelStage,
    actor: &str,
    reason: &str,
    run_id: &str,
) -> Result<(), RegistryError> {
    let (mut p, rev) = version(bus, model, n).await?;
    if p.stage() == from {
        audit(
            &mut p,
            "transition",
            actor,
            Some(ModelStage::Archived),
            reason,
            run_id,
        );
        save(bus, &p, rev).await?;
        info!(model, version = n, "previous holder archived");
        announce_change(bus, &p, ModelChange::Archived).await;
    }
    Ok(())
}

/// Brings back the version that held Production before the current one.
pub async fn rollback(
    bus: &Bus,
    caller: &Caller,
    r: RollbackRequest,
) -> Result<ModelVersion, RegistryError> {
    required(&r.actor, "an actor")?;
    let spec = policy::of(bus, &r.model).await?;
    policy::require_approver(caller, &spec, &r.actor, false)?;
    let current = latest_by_stage(bus, &r.model, ModelStage::Production)
        .await
        .map_err(|_| {
            RegistryError::FailedPrecondition(format!(
                "{} has no Production version to roll back",
                r.model
            ))
        })?;
    let versions = list_versions(bus, &r.model, None, "").await?;
    let previous = versions
        .iter()
        .filter(|v| v.version != current.version)
        .filter_map(|v| {
            v.audit
                .iter()
                .filter(|a| a.from() == ModelStage::Production && a.to() != ModelStage::Production)
                .map(|a| a.at_unix_ms)
                .max()
                .map(|at| (at, v.version))
        })
        .max()
        .map(|(_, n)| n)
        .ok_or_else(|| {
            RegistryError::FailedPrecondition(format!(
                "{} has had no earlier Production version",
                r.model
            ))
        })?;
    swap_pointer(
        bus,
        &r.model,
        ModelStage::Production,
        previous,
        Some(current.version),
    )
    .await?;
    let reason = if r.reason.is_empty() {
        format!("rollback from v{}", current.version)
    } else {
        r.reason.clone()
    };
    let (mut back, rev) = version(bus, &r.model, previous).await?;
    audit(
        &mut back,
        "rollback",
        &r.actor,
        Some(ModelStage::Production),
        &reason,
        "",
    );
    save(bus, &back, rev).await?;
    announce_change(bus, &back, ModelChange::RolledBack).await;
    let (mut out, rev) = version(bus, &r.model, current.version).await?;
    audit(
        &mut out,
        "rollback",
        &r.actor,
        Some(ModelStage::Archived),
        &reason,
        "",
    );
    save(bus, &out, rev).await?;
    announce_change(bus, &out, ModelChange::Archived).await;
    info!(model = %r.model, from = current.version, to = previous, actor = %r.actor, "rolled back");
    Ok(back)
}

/// Points an alias at a version (0 removes it), moving it off its previous holder.
pub async fn set_alias(
    bus: &Bus,
    caller: &Caller,
    r: SetAliasRequest,
) -> Result<ModelVersion, RegistryError> {
    check_model(&r.model)?;
    let spec = policy::of(bus, &r.model).await?;
    policy::require_approver(caller, &spec, &r.actor, true)?;
    if !tollgate_spec::valid_model_name(&r.alias) {
        return Err(RegistryError::InvalidArgument(format!(
            "alias {:?} must be lower-case letters, digits, '-' or '_'",
            r.alias
        )));
    }
    let key = ModelKey::Alias(&r.model, &r.alias);
    let current = get_u32(bus, key.clone()).await?;
    if r.version != 0 {
        version(bus, &r.model, r.version).await?;
    }
    if !put_u32(bus, key, r.version, current).await {
        return Err(RegistryError::FailedPrecondition(format!(
            "alias {} changed meanwhile; try again",
            r.alias
        )));
    }
    let mut released = None;
    if let Some((old, _)) = current.filter(|(n, _)| *n != r.version && *n != 0) {
        let (mut v, rev) = version(bus, &r.model, old).await?;
        v.aliases.retain(|a| a != &r.alias);
        let reason = format!("-{}", r.alias);
        released = Some(annotate(bus, v, rev, ModelChange::Aliased, &r.actor, &reason, "").await?);
    }
    if r.version == 0 {
        return released.ok_or_else(|| {
            RegistryError::NotFound(format!("model {} has no alias {}", r.model, r.alias))
        });
    }
    let (mut v, rev) = version(bus, &r.model, r.version).await?;
    if !v.aliases.contains(&r.alias) {
        v.aliases.push(r.alias.clone());
        let reason = format!("+{}", r.alias);
        v = annotate(bus, v, rev, ModelChange::Aliased, &r.actor, &reason, "").await?;
    }
    Ok(v)
}
