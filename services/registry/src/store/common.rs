//! What the store's parts share: the models bucket, reading and saving a version with
//! its audit trail, numbered keys, announcing changes, and the reads (list, resolve).

use async_nats::jetstream::kv::Store;
use prost::Message;
use tollgate_bus::{
    Bus, now_ms,
    subjects::{self, Bucket, ModelKey},
};
use tollgate_proto::{
    Approval, Approvals, AuditEntry, ModelChange, ModelStage, ModelVersion, Trigger, TriggerId,
    TriggerKind,
};
use tracing::warn;

pub use crate::error::RegistryError;

pub(super) fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> RegistryError {
    RegistryError::Unavailable(e.into())
}

/// The models bucket.
pub(super) fn models(bus: &Bus) -> Store {
    bus.key_value(Bucket::Models)
}

pub(super) fn check_model(model: &str) -> Result<(), RegistryError> {
    if tollgate_spec::valid_model_name(model) {
        Ok(())
    } else {
        Err(RegistryError::InvalidArgument(format!(
            "model name {model:?} must be 1-64 lower-case letters, digits, '-' or '_'"
        )))
    }
}

pub(super) fn required(value: &str, what: &str) -> Result<(), RegistryError> {
    if value.trim().is_empty() {
        Err(RegistryError::InvalidArgument(format!(
            "{what} is required"
        )))
    } else {
        Ok(())
    }
}

pub(super) async fn get_u32(
    bus: &Bus,
    key: ModelKey<'_>,
) -> Result<Option<(u32, u64)>, RegistryError> {
    let key = key.to_string();
    match models(bus).entry(&key).await.map_err(unavailable)? {
        Some(e) if !e.value.is_empty() => {
            let n = std::str::from_utf8(&e.value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| RegistryError::Internal(format!("corrupt registry entry {key}")))?;
            Ok(Some((n, e.revision)))
        }
        _ => Ok(None),
    }
}

/// Writes a number under `key` by compare-and-set against the entry read as `current`
/// (create when there was none); false when another change won.
pub(super) async fn put_u32(
    bus: &Bus,
    key: ModelKey<'_>,
    value: u32,
    current: Option<(u32, u64)>,
) -> bool {
    let (key, value) = (key.to_string(), value.to_string().into_bytes().into());
    match current {
        Some((_, rev)) => models(bus).update(&key, value, rev).await.is_ok(),
        None => models(bus).create(&key, value).await.is_ok(),
    }
}

/// Reads a version and its entry revision.
pub async fn version(
    bus: &Bus,
    model: &str,
    version: u32,
) -> Result<(ModelVersion, u64), RegistryError> {
    check_model(model)?;
    let key = ModelKey::Version(model, version).to_string();
    match models(bus).entry(&key).await.map_err(unavailable)? {
        Some(e) if !e.value.is_empty() => {
            let v = ModelVersion::decode(e.value.as_ref()).map_err(|err| {
                RegistryError::Internal(format!("corrupt version record {key}: {err}"))
            })?;
            Ok((v, e.revision))
        }
        _ => Err(RegistryError::NotFound(format!(
            "model {model} has no version {version}"
        ))),
    }
}

/// Appends an audit entry to a version; `to` moves it to that stage, and only then does
/// the entry record a stage change.
pub(super) fn audit(
    v: &mut ModelVersion,
    action: &str,
    actor: &str,
    to: Option<ModelStage>,
    reason: &str,
    run_id: &str,
) {
    let now = now_ms();
    v.audit.push(AuditEntry {
        action: action.into(),
        actor: actor.into(),
        at_unix_ms: now,
        from: to.map(|_| v.stage),
        to: to.map(|s| s as i32),
        reason: reason.into(),
        run_id: run_id.into(),
    });
    if let Some(to) = to {
        v.stage = to as i32;
    }
    v.updated_unix_ms = now;
}

/// Writes a version back by compare-and-set on `revision`.
pub(super) async fn save(bus: &Bus, v: &ModelVersion, revision: u64) -> Result<u64, RegistryError> {
    models(bus)
        .update(
            ModelKey::Version(&v.model, v.version).to_string(),
            v.encode_to_vec().into(),
            revision,
        )
        .await
        .map_err(|_| {
            RegistryError::FailedPrecondition(format!(
                "{} v{} changed meanwhile; read it and try again",
                v.model, v.version
            ))
        })
}

/// Records an action that leaves the stage as it is (an approval, an override, new tags):
/// an audit entry, the compare-and-set write, the announcement.
pub(super) async fn annotate(
    bus: &Bus,
    mut v: ModelVersion,
    revision: u64,
    change: ModelChange,
    actor: &str,
    reason: &str,
    run_id: &str,
) -> Result<ModelVersion, RegistryError> {
    audit(&mut v, change.name(), actor, None, reason, run_id);
    save(bus, &v, revision).await?;
    announce_change(bus, &v, change).await;
    Ok(v)
}

/// Publishes a change to a version on `tollgate.trigger.model`; failures are logged, the
/// change itself is already stored.
pub(super) async fn announce_change(bus: &Bus, v: &ModelVersion, change: ModelChange) {
    let id = TriggerId::new();
    let trigger = Trigger {
        trigger_id: id.to_string(),
        kind: TriggerKind::Model as i32,
        model: v.model.clone(),
        model_version: v.version,
        change: change as i32,
        stage: v.stage,
        requested_by: "registry".into(),
        created_unix_ms: now_ms(),
        ..Default::default()
    };
    let msg_id = subjects::msg_id::trigger(&id);
    if let Err(e) = bus
        .publish(
            subjects::trigger(TriggerKind::Model),
            &trigger,
            Some(&msg_id),
        )
        .await
    {
        warn!(error = %e, model = %v.model, version = v.version, %change, "model change not published");
    }
}

/// Every key of the models bucket, once each (the listing repeats a key written while it
/// runs).
pub(super) async fn keys(bus: &Bus) -> Result<Vec<String>, RegistryError> {
    use futures::TryStreamExt;
    match models(bus).keys().await {
        Ok(k) => {
            let keys: std::collections::BTreeSet<String> =
                k.try_collect().await.map_err(unavailable)?;
            Ok(keys.into_iter().collect())
        }
        Err(e) => Err(unavailable(e)),
    }
}

/// Versions of `model` (of every model when empty), by model then version, optionally
/// only those in `stage` or carrying `tag`.
pub async fn list_versions(
    bus: &Bus,
    model: &str,
    stage: Option<ModelStage>,
    tag: &str,
) -> Result<Vec<ModelVersion>, RegistryError> {
    if !model.is_empty() {
        check_model(model)?;
    }
    let mut out = Vec::new();
    for key in keys(bus).await? {
        let Some((m, n)) = ModelKey::version_of(&key) else {
            continue;
        };
        if !model.is_empty() && m != model {
            continue;
        }
        let v = version(bus, m, n).await?.0;
        if stage.is_none_or(|s| v.stage() == s)
            && (tag.is_empty() || v.tags.iter().any(|t| t == tag))
        {
            out.push(v);
        }
    }
    out.sort_by(|a, b| (&a.model, a.version).cmp(&(&b.model, b.version)));
    Ok(out)
}

/// The version currently in `stage`.
pub async fn latest_by_stage(
    bus: &Bus,
    model: &str,
    stage: ModelStage,
) -> Result<ModelVersion, RegistryError> {
    check_model(model)?;
    match get_u32(bus, ModelKey::Stage(model, stage)).await? {
        Some((n, _)) => Ok(version(bus, model, n).await?.0),
        None => Err(RegistryError::NotFound(format!(
            "model {model} has no version in {}",
            stage.name()
        ))),
    }
}

/// Resolves `models:/NAME/VERSION`, `models:/NAME/STAGE` or `models:/NAME@ALIAS`.
pub async fn resolve(bus: &Bus, uri: &str) -> Result<ModelVersion, RegistryError> {
    let bad = || {
        RegistryError::InvalidArgument(format!(
            "{uri:?} is not a model URI: use models:/NAME/VERSION, models:/NAME/STAGE or models:/NAME@ALIAS"
        ))
    };
    let rest = uri.strip_prefix("models:/").ok_or_else(bad)?;
    if let Some((model, alias)) = rest.split_once('@') {
        check_model(model)?;
        return match get_u32(bus, ModelKey::Alias(model, alias)).await? {
            Some((n, _)) if n != 0 => Ok(version(bus, model, n).await?.0),
            _ => Err(RegistryError::NotFound(format!(
                "model {model} has no alias {alias}"
            ))),
        };
    }
    let (model, which) = rest.split_once('/').ok_or_else(bad)?;
    if let Ok(n) = which.parse::<u32>() {
        return Ok(version(bus, model, n).await?.0);
    }
    let stage = match which.to_ascii_lowercase().as_str() {
        "staging" => ModelStage::Staging,
        "production" => ModelStage::Production,
        _ => return Err(bad()),
    };
    latest_by_stage(bus, model, stage).await
}

/// Every decision on version `n` of `model`, and the entry's revision (`None`: none yet).
pub(super) async fn approvals(
    bus: &Bus,
    model: &str,
    n: u32,
) -> Result<(Vec<Approval>, Option<u64>), RegistryError> {
    match models(bus)
        .entry(ModelKey::Approvals(model, n).to_string())
        .await
        .map_err(unavailable)?
    {
        Some(e) if !e.value.is_empty() => Approvals::decode(e.value.as_ref())
            .map(|a| (a.decisions, Some(e.revision)))
            .map_err(|e| {
                RegistryError::Internal(format!("corrupt approvals of {model} v{n}: {e}"))
            }),
        Some(e) => Ok((Vec::new(), Some(e.revision))),
        None => Ok((Vec::new(), None)),
    }
}
