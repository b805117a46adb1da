//! Registering versions (once per run, numbered without gaps), their gate decisions,
//! descriptions and tags, and their artifacts.

use crate::{auth::Caller, policy};
use prost::Message;
use tollgate_bus::{Bus, now_ms, subjects::ModelKey};
use tollgate_pipeline::Stores;
use tollgate_proto::{
    Artifact, ModelChange, ModelStage, ModelVersion, RecordGateRequest, RegisterVersionRequest,
    RunId, UpdateVersionRequest,
};
use tracing::info;

use super::common::*;
use crate::error::RegistryError;

/// Registers the artifact of a run as a new version; registering the same run again
/// returns the version it already made.
pub async fn register(bus: &Bus, r: RegisterVersionRequest) -> Result<ModelVersion, RegistryError> {
    check_model(&r.model)?;
    if r.run_id.is_empty() || r.artifact_name.is_empty() || r.artifact_digest.is_empty() {
        return Err(RegistryError::InvalidArgument(
            "run_id, artifact_name and artifact_digest are required".into(),
        ));
    }
    let run_id: RunId = r
        .run_id
        .parse()
        .map_err(|e: tollgate_proto::IdError| RegistryError::InvalidArgument(e.to_string()))?;
    let run_key = ModelKey::Run(&r.model, &run_id);
    if get_u32(bus, run_key.clone()).await?.is_some() {
        info!(model = %r.model, run_id = %r.run_id, "run already registered a version");
        return claimed(bus, &r.model, run_key).await;
    }
    let size = bus
        .artifacts()
        .size(&r.artifact_name)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            RegistryError::FailedPrecondition(format!(
                "artifact {} is not in the artifact store",
                r.artifact_name
            ))
        })?;
    if size as u64 != r.artifact_size {
        return Err(RegistryError::InvalidArgument(format!(
            "artifact {} has {size} bytes, the request says {}",
            r.artifact_name, r.artifact_size
        )));
    }
    // Claim the run before taking a number, so a registration of the same run racing this
    // one (a redelivered run trained twice) takes none and leaves no gap in the numbers.
    let Ok(claim) = models(bus)
        .create(run_key.to_string(), PENDING.to_string().into_bytes().into())
        .await
    else {
        return claimed(bus, &r.model, run_key).await;
    };
    // Allocate the next version number by compare-and-set.
    let next_key = ModelKey::Next(&r.model);
    let number = loop {
        let current = get_u32(bus, next_key.clone()).await?;
        let n = current.map(|(n, _)| n).unwrap_or(1);
        let won = put_u32(bus, next_key.clone(), n + 1, current).await;
        if won {
            break n;
        }
    };
    if !put_u32(bus, run_key, number, Some((PENDING, claim))).await {
        return Err(unavailable(format!(
            "cannot record registration of run {}",
            r.run_id
        )));
    }
    let now = now_ms();
    let mut v = ModelVersion {
        model: r.model.clone(),
        version: number,
        stage: ModelStage::None as i32,
        run_id: r.run_id.clone(),
        artifact_name: r.artifact_name,
        artifact_digest: r.artifact_digest,
        artifact_size: r.artifact_size,
        metrics: r.metrics,
        code_commit: r.code_commit,
        dataset_uri: r.dataset_uri,
        spec_digest: r.spec_digest,
        reference_profile_json: r.reference_profile_json,
        algorithm: r.algorithm,
        training_seconds: r.training_seconds,
        origin: r.origin,
        model_format: r.model_format,
        code_digest: r.code_digest,
        created_unix_ms: now,
        updated_unix_ms: now,
        ..Default::default()
    };
    audit(
        &mut v,
        ModelChange::Registered.name(),
        "trainer",
        Some(ModelStage::None),
        "trained",
        &r.run_id,
    );
    models(bus)
        .create(
            ModelKey::Version(&r.model, number).to_string(),
            v.encode_to_vec().into(),
        )
        .await
        .map_err(unavailable)?;
    info!(model = %v.model, version = number, "version registered");
    announce_change(bus, &v, ModelChange::Registered).await;
    Ok(v)
}

/// A run's claim before its registration has a version number.
const PENDING: u32 = 0;

/// The version another registration of the same run made. That registration claims the
/// run, then takes a number, then writes the record, so a registration racing it (a
/// redelivered run trained twice) can find the claim first: it waits for the number and
/// the record, and if they do not come, answers Unavailable (the trainer retries), never
/// that the version does not exist.
async fn claimed(
    bus: &Bus,
    model: &str,
    run_key: ModelKey<'_>,
) -> Result<ModelVersion, RegistryError> {
    use backon::{ConstantBuilder, Retryable};
    let read = || async {
        match get_u32(bus, run_key.clone()).await? {
            Some((number, _)) if number != PENDING => version(bus, model, number).await,
            _ => Err(RegistryError::NotFound(format!(
                "the run's version of {model} has no number yet"
            ))),
        }
    };
    match read
        .retry(
            ConstantBuilder::default()
                .with_delay(std::time::Duration::from_millis(50))
                .with_max_times(100),
        )
        .when(|e| matches!(e, RegistryError::NotFound(_)))
        .await
    {
        Ok((v, _)) => Ok(v),
        Err(RegistryError::NotFound(_)) => Err(unavailable(format!(
            "a version of {model} is being registered by another registration of the same run; try again"
        ))),
        Err(e) => Err(e),
    }
}

/// Changes a version's description and tags.
pub async fn update(
    bus: &Bus,
    caller: &Caller,
    r: UpdateVersionRequest,
) -> Result<ModelVersion, RegistryError> {
    let (mut v, rev) = version(bus, &r.model, r.version).await?;
    let spec = policy::of(bus, &r.model).await?;
    policy::require_approver(caller, &spec, &r.actor, true)?;
    if let Some(t) = r
        .add_tags
        .iter()
        .chain(&r.remove_tags)
        .find(|t| t.trim().is_empty() || t.len() > 64)
    {
        return Err(RegistryError::InvalidArgument(format!(
            "tag {t:?} must be 1-64 characters"
        )));
    }
    let mut what = Vec::new();
    if r.set_description {
        v.description = r.description.clone();
        what.push("description".to_string());
    }
    for t in &r.add_tags {
        if !v.tags.contains(t) {
            v.tags.push(t.clone());
            what.push(format!("+{t}"));
        }
    }
    for t in &r.remove_tags {
        if let Some(i) = v.tags.iter().position(|x| x == t) {
            v.tags.remove(i);
            what.push(format!("-{t}"));
        }
    }
    annotate(
        bus,
        v,
        rev,
        ModelChange::Updated,
        &r.actor,
        &what.join(" "),
        "",
    )
    .await
}

/// Records the gate's decision on a version, under the caller's identity (`actor`).
pub async fn record_gate(
    bus: &Bus,
    actor: &str,
    r: RecordGateRequest,
) -> Result<ModelVersion, RegistryError> {
    let (mut v, rev) = version(bus, &r.model, r.version).await?;
    let decision = r
        .decision
        .ok_or_else(|| RegistryError::InvalidArgument("a decision is required".into()))?;
    let change = if decision.blessed {
        ModelChange::GateBlessed
    } else {
        ModelChange::GateBlocked
    };
    let summary = decision.summary.clone();
    v.last_gate = Some(decision);
    annotate(bus, v, rev, change, actor, &summary, &r.run_id).await
}

/// A version's artifact, checked against its recorded digest.
pub async fn artifact(bus: &Bus, model: &str, n: u32) -> Result<Artifact, RegistryError> {
    let (v, _) = version(bus, model, n).await?;
    // Checked before a byte is read: an artifact is held whole to answer the call.
    let size = bus
        .artifacts()
        .size(&v.artifact_name)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            RegistryError::NotFound(format!(
                "artifact of {model} v{n} is missing: no {} in the artifact store",
                v.artifact_name
            ))
        })?;
    if size > tollgate_proto::MAX_MESSAGE_BYTES {
        return Err(RegistryError::FailedPrecondition(format!(
            "artifact of {model} v{n} is {size} bytes, over the {}-byte limit of a registry call",
            tollgate_proto::MAX_MESSAGE_BYTES
        )));
    }
    // It exists (its size was just read): a failed read is the store's, not the caller's.
    let data = bus
        .artifacts()
        .get(&v.artifact_name)
        .await
        .map_err(unavailable)?;
    let actual = tollgate_spec::envelope::digest(&data);
    if actual != v.artifact_digest {
        return Err(RegistryError::Internal(format!(
            "artifact of {model} v{n} is corrupt: digest {actual}, recorded {}",
            v.artifact_digest
        )));
    }
    Ok(Artifact {
        version: Some(v),
        data,
    })
}
