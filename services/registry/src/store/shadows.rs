//! A model's shadow of Production: a blessed version that scores a share of Production's
//! requests beside it, for comparison only. One per model under `<model>.shadow`; starting
//! and stopping one is an approver's act, recorded on the version's audit trail and
//! announced so the servers pick it up at once.

use crate::{auth::Caller, policy};
use tollgate_bus::{
    Bus,
    codec::{read_versioned, write_versioned},
    now_ms,
    subjects::ModelKey,
};
use tollgate_proto::{ModelChange, SetShadowRequest, Shadow};
use tracing::info;

use super::common::*;
use crate::error::RegistryError;

/// The model's shadow; version 0 when none runs.
pub async fn get_shadow(bus: &Bus, model: &str) -> Result<Shadow, RegistryError> {
    check_model(model)?;
    let key = ModelKey::Shadow(model).to_string();
    let (shadow, _) = read_versioned::<Shadow>(&models(bus), &key, "Shadow")
        .await
        .map_err(unavailable)?;
    Ok(Shadow {
        model: model.into(),
        ..shadow
    })
}

/// Starts (a version) or stops (version 0) the model's shadow. The caller must be one of
/// the model's approvers; the version must have a blessed gate decision and must not be
/// the Production version; the share is in (0, 1].
pub async fn set_shadow(
    bus: &Bus,
    caller: &Caller,
    r: SetShadowRequest,
) -> Result<Shadow, RegistryError> {
    check_model(&r.model)?;
    let spec = policy::of(bus, &r.model).await?;
    policy::require_approver(caller, &spec, &r.actor, true)?;
    let key = ModelKey::Shadow(&r.model).to_string();
    let (current, revision) = read_versioned::<Shadow>(&models(bus), &key, "Shadow")
        .await
        .map_err(unavailable)?;
    let shadow = if r.version == 0 {
        if current.version == 0 {
            return Err(RegistryError::FailedPrecondition(format!(
                "model {} has no shadow running",
                r.model
            )));
        }
        Shadow {
            model: r.model.clone(),
            ..Default::default()
        }
    } else {
        if !(r.share > 0.0 && r.share <= 1.0) {
            return Err(RegistryError::InvalidArgument(format!(
                "share must be in (0, 1], got {}",
                r.share
            )));
        }
        let (v, _) = version(bus, &r.model, r.version).await?;
        policy::staging_allowed(&v).map_err(|_| {
            RegistryError::FailedPrecondition(format!(
                "{} v{} has no blessed gate decision: only a blessed version may shadow Production",
                r.model, r.version
            ))
        })?;
        if v.stage() == tollgate_proto::ModelStage::Production {
            return Err(RegistryError::FailedPrecondition(format!(
                "{} v{} is the Production version: it cannot shadow itself",
                r.model, r.version
            )));
        }
        Shadow {
            model: r.model.clone(),
            version: r.version,
            share: r.share,
            started_by: r.actor.clone(),
            started_unix_ms: now_ms(),
            reason: r.reason.clone(),
        }
    };
    if !write_versioned(&models(bus), &key, &shadow, revision)
        .await
        .map_err(unavailable)?
    {
        return Err(RegistryError::FailedPrecondition(format!(
            "the shadow of {} changed meanwhile; try again",
            r.model
        )));
    }
    // The audit trail of the version that starts or stops shadowing, and the
    // announcement the servers reload on.
    let audited = if shadow.version != 0 {
        shadow.version
    } else {
        current.version
    };
    let what = if shadow.version != 0 {
        format!(
            "shadow of Production for {:.0}% of requests",
            shadow.share * 100.0
        )
    } else {
        "shadow stopped".to_string()
    };
    let reason = match r.reason.as_str() {
        "" => what,
        given => format!("{what}: {given}"),
    };
    let (v, rev) = version(bus, &r.model, audited).await?;
    annotate(bus, v, rev, ModelChange::Shadowed, &r.actor, &reason, "").await?;
    info!(model = %r.model, version = shadow.version, share = shadow.share, actor = %r.actor, "shadow set");
    Ok(shadow)
}
