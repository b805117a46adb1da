//! Model versions and stage pointers in the `tollgate_models` KV bucket.
//!
//! Keys: `<model>.v.<version>` holds a version; `<model>.next` the next version number;
//! `<model>.run.<run_id>` the version a run registered (idempotency); `<model>.stage.<stage>`
//! the version in a stage. Every change is a compare-and-set on the entry's revision.

use async_nats::jetstream::kv::Store;
use prost::Message;
use tokio::io::AsyncReadExt;
use tollgate_bus::now_ms;
use tollgate_proto::{
    Artifact, ModelStage, ModelVersion, RegisterVersionRequest, TransitionStageRequest,
};
use tonic::Status;
use tracing::info;

/// Registry errors; each maps to the gRPC status code that says what it means.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The model, version, stage holder or run does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request conflicts with the current state (a racing change won, a refused stage).
    #[error("{0}")]
    FailedPrecondition(String),
    /// NATS is not answering as it should.
    #[error("registry storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl From<RegistryError> for Status {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::NotFound(m) => Status::not_found(m.clone()),
            RegistryError::InvalidArgument(m) => Status::invalid_argument(m.clone()),
            RegistryError::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
            RegistryError::Unavailable(_) => Status::unavailable(e.to_string()),
            RegistryError::Internal(m) => Status::internal(m.clone()),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Unavailable(e.to_string())
}

fn check_model(model: &str) -> Result<(), RegistryError> {
    if tollgate_spec::valid_model_name(model) {
        Ok(())
    } else {
        Err(RegistryError::InvalidArgument(format!(
            "model name {model:?} must be 1-64 lower-case letters, digits, '-' or '_'"
        )))
    }
}

fn stage_key(model: &str, stage: ModelStage) -> String {
    format!("{model}.stage.{}", stage.name().to_ascii_lowercase())
}

fn version_key(model: &str, version: u32) -> String {
    format!("{model}.v.{version}")
}

async fn get_u32(kv: &Store, key: &str) -> Result<Option<(u32, u64)>, RegistryError> {
    match kv.entry(key).await.map_err(unavailable)? {
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

/// Reads a version and its entry revision.
pub async fn version(
    bus: &tollgate_bus::Bus,
    model: &str,
    version: u32,
) -> Result<(ModelVersion, u64), RegistryError> {
    check_model(model)?;
    let key = version_key(model, version);
    match bus.models.entry(&key).await.map_err(unavailable)? {
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

/// Registers the artifact of a run as a new version; registering the same run again
/// returns the version it already made.
pub async fn register(
    bus: &tollgate_bus::Bus,
    r: RegisterVersionRequest,
) -> Result<ModelVersion, RegistryError> {
    check_model(&r.model)?;
    if r.run_id.is_empty() || r.artifact_name.is_empty() || r.artifact_digest.is_empty() {
        return Err(RegistryError::InvalidArgument(
            "run_id, artifact_name and artifact_digest are required".into(),
        ));
    }
    let run_key = format!("{}.run.{}", r.model, r.run_id);
    if let Some((existing, _)) = get_u32(&bus.models, &run_key).await? {
        info!(model = %r.model, version = existing, run_id = %r.run_id, "run already registered a version");
        return Ok(version(bus, &r.model, existing).await?.0);
    }
    let info = bus.artifacts.info(&r.artifact_name).await.map_err(|_| {
        RegistryError::FailedPrecondition(format!(
            "artifact {} is not in the artifact store",
            r.artifact_name
        ))
    })?;
    if info.size as u64 != r.artifact_size {
        return Err(RegistryError::InvalidArgument(format!(
            "artifact {} has {} bytes, the request says {}",
            r.artifact_name, info.size, r.artifact_size
        )));
    }
    // Allocate the next version number by compare-and-set.
    let next_key = format!("{}.next", r.model);
    let number = loop {
        let current = get_u32(&bus.models, &next_key).await?;
        let n = current.map(|(n, _)| n).unwrap_or(1);
        let value = (n + 1).to_string().into_bytes().into();
        let won = match current {
            Some((_, rev)) => bus.models.update(&next_key, value, rev).await.is_ok(),
            None => bus.models.create(&next_key, value).await.is_ok(),
        };
        if won {
            break n;
        }
    };
    // Claim the run; a concurrent registration of the same run may have won.
    if bus
        .models
        .create(&run_key, number.to_string().into_bytes().into())
        .await
        .is_err()
    {
        if let Some((existing, _)) = get_u32(&bus.models, &run_key).await? {
            return Ok(version(bus, &r.model, existing).await?.0);
        }
        return Err(RegistryError::Unavailable(format!(
            "cannot record registration of run {}",
            r.run_id
        )));
    }
    let now = now_ms();
    let v = ModelVersion {
        model: r.model.clone(),
        version: number,
        stage: ModelStage::None as i32,
        run_id: r.run_id,
        artifact_name: r.artifact_name,
        artifact_digest: r.artifact_digest,
        artifact_size: r.artifact_size,
        metrics: r.metrics,
        code_commit: r.code_commit,
        dataset_uri: r.dataset_uri,
        spec_digest: r.spec_digest,
        created_unix_ms: now,
        updated_unix_ms: now,
    };
    bus.models
        .create(version_key(&r.model, number), v.encode_to_vec().into())
        .await
        .map_err(unavailable)?;
    info!(model = %v.model, version = number, "version registered");
    Ok(v)
}

/// Every version of `model` (of every model when empty), by model then version.
pub async fn list_versions(
    bus: &tollgate_bus::Bus,
    model: &str,
) -> Result<Vec<ModelVersion>, RegistryError> {
    use futures::TryStreamExt;
    if !model.is_empty() {
        check_model(model)?;
    }
    let keys: Vec<String> = match bus.models.keys().await {
        Ok(k) => k.try_collect().await.map_err(unavailable)?,
        Err(e) => return Err(unavailable(e)),
    };
    let mut out = Vec::new();
    for key in keys {
        let mut parts = key.split('.');
        let (Some(m), Some("v"), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !model.is_empty() && m != model {
            continue;
        }
        if let Ok(n) = n.parse() {
            out.push(version(bus, m, n).await?.0);
        }
    }
    out.sort_by(|a, b| (&a.model, a.version).cmp(&(&b.model, b.version)));
    Ok(out)
}

/// The version currently in `stage`.
pub async fn latest_by_stage(
    bus: &tollgate_bus::Bus,
    model: &str,
    stage: ModelStage,
) -> Result<ModelVersion, RegistryError> {
    check_model(model)?;
    match get_u32(&bus.models, &stage_key(model, stage)).await? {
        Some((n, _)) => Ok(version(bus, model, n).await?.0),
        None => Err(RegistryError::NotFound(format!(
            "model {model} has no version in {}",
            stage.name()
        ))),
    }
}

/// Moves a version to a stage by compare-and-set on the stage pointer; the previous
/// holder is archived when asked. Production is refused until approvals exist.
pub async fn transition(
    bus: &tollgate_bus::Bus,
    r: TransitionStageRequest,
) -> Result<ModelVersion, RegistryError> {
    let to = r.to();
    let (mut v, rev) = version(bus, &r.model, r.version).await?;
    match to {
        ModelStage::Staging | ModelStage::Archived => {}
        ModelStage::Production => {
            return Err(RegistryError::FailedPrecondition(format!(
                "moving {} v{} to Production needs a recorded approval",
                r.model, r.version
            )));
        }
        ModelStage::None => {
            return Err(RegistryError::InvalidArgument("give a target stage".into()));
        }
    }
    if v.stage() == to {
        return Ok(v);
    }
    let mut previous = None;
    if to != ModelStage::Archived {
        let key = stage_key(&r.model, to);
        let current = get_u32(&bus.models, &key).await?;
        let value = r.version.to_string().into_bytes().into();
        let swapped = match current {
            Some((_, prev_rev)) => bus.models.update(&key, value, prev_rev).await.is_ok(),
            None => bus.models.create(&key, value).await.is_ok(),
        };
        if !swapped {
            return Err(RegistryError::FailedPrecondition(format!(
                "another change to {} {} won the race; read it and try again",
                r.model,
                to.name()
            )));
        }
        previous = current.map(|(n, _)| n).filter(|&n| n != r.version);
    }
    v.stage = to as i32;
    v.updated_unix_ms = now_ms();
    bus.models
        .update(
            version_key(&r.model, r.version),
            v.encode_to_vec().into(),
            rev,
        )
        .await
        .map_err(|_| {
            RegistryError::FailedPrecondition(format!(
                "{} v{} changed meanwhile; try again",
                r.model, r.version
            ))
        })?;
    info!(model = %r.model, version = r.version, stage = to.name(), actor = %r.actor, "stage changed");
    if let (Some(prev), true) = (previous, r.archive_existing) {
        let (mut p, prev_rev) = version(bus, &r.model, prev).await?;
        if p.stage() == to {
            p.stage = ModelStage::Archived as i32;
            p.updated_unix_ms = now_ms();
            bus.models
                .update(
                    version_key(&r.model, prev),
                    p.encode_to_vec().into(),
                    prev_rev,
                )
                .await
                .map_err(unavailable)?;
            info!(model = %r.model, version = prev, "previous holder archived");
        }
    }
    Ok(v)
}

/// A version's artifact, checked against its recorded digest.
pub async fn artifact(
    bus: &tollgate_bus::Bus,
    model: &str,
    n: u32,
) -> Result<Artifact, RegistryError> {
    let (v, _) = version(bus, model, n).await?;
    let mut object = bus.artifacts.get(&v.artifact_name).await.map_err(|e| {
        RegistryError::NotFound(format!("artifact of {model} v{n} is missing: {e}"))
    })?;
    let mut data = Vec::new();
    object.read_to_end(&mut data).await.map_err(|e| {
        RegistryError::Unavailable(format!("reading artifact of {model} v{n}: {e}"))
    })?;
    let actual = tollgate_spec::sha256_hex(&data);
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
