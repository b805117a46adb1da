//! Model versions, stage pointers, aliases and approvals in the `tollgate_models` KV bucket,
//! which this module owns.
//!
//! Keys ([`ModelKey`]): a version (with its audit trail); the next version number; the
//! version a run registered (idempotency); the version in a stage; the version an alias
//! names; the approval decision on a version. Every change is a compare-and-set on the
//! entry's revision, and every change to a version is published on
//! `tollgate.trigger.model`.

use crate::{auth::Caller, policy};
use async_nats::jetstream::kv::Store;
use prost::Message;
use tollgate_bus::{
    Bus, events, now_ms,
    subjects::{self, Bucket, ModelKey},
};
use tollgate_proto::{
    Approval, ApprovalRequest, Approvals, Artifact, AuditEntry, ModelChange, ModelStage,
    ModelVersion, OverrideRequest, RecordGateRequest, RegisterVersionRequest, RollbackRequest, Run,
    RunId, SetAliasRequest, Stage, TransitionStageRequest, Trigger, TriggerId, TriggerKind,
    UpdateVersionRequest,
};
use tonic::Status;
use tracing::{info, warn};

/// Registry errors; each maps to the gRPC status code that says what it means.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The model, version, stage holder, alias or run does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already (a decided approval).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request conflicts with the current state (a racing change won, no approval).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The identity may not do this (not on the spec's approvers list).
    #[error("{0}")]
    PermissionDenied(String),
    /// NATS is not answering as it should.
    #[error("registry storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
    /// The gRPC address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// The health endpoint could not start.
    #[error(transparent)]
    Service(Box<tollgate_service::ServiceError>),
}

impl From<RegistryError> for Status {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::NotFound(m) => Status::not_found(m.clone()),
            RegistryError::AlreadyExists(m) => Status::already_exists(m.clone()),
            RegistryError::InvalidArgument(m) => Status::invalid_argument(m.clone()),
            RegistryError::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
            RegistryError::PermissionDenied(m) => Status::permission_denied(m.clone()),
            RegistryError::Unavailable(_) => Status::unavailable(e.to_string()),
            RegistryError::Internal(m) => Status::internal(m.clone()),
            RegistryError::Listen { .. } | RegistryError::Serve(_) | RegistryError::Service(_) => {
                Status::internal(e.to_string())
            }
        }
    }
}

fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> RegistryError {
    RegistryError::Unavailable(e.into())
}

/// The models bucket.
fn models(bus: &Bus) -> Store {
    bus.key_value(Bucket::Models)
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

fn required(value: &str, what: &str) -> Result<(), RegistryError> {
    if value.trim().is_empty() {
        Err(RegistryError::InvalidArgument(format!(
            "{what} is required"
        )))
    } else {
        Ok(())
    }
}

async fn get_u32(bus: &Bus, key: ModelKey<'_>) -> Result<Option<(u32, u64)>, RegistryError> {
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
async fn put_u32(bus: &Bus, key: ModelKey<'_>, value: u32, current: Option<(u32, u64)>) -> bool {
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
fn audit(
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
async fn save(bus: &Bus, v: &ModelVersion, revision: u64) -> Result<u64, RegistryError> {
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
async fn annotate(
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
async fn announce_change(bus: &Bus, v: &ModelVersion, change: ModelChange) {
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

/// Every key of the models bucket, once each (the listing repeats a key written while it
/// runs).
async fn keys(bus: &Bus) -> Result<Vec<String>, RegistryError> {
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

/// Every decision on version `n` of `model`, and the entry's revision (`None`: none yet).
async fn approvals(
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
            let spec = policy::of(bus, &r.model).await?;
            let (decisions, _) = approvals(bus, &r.model, r.version).await?;
            let standing = policy::standing(&decisions, &v, &spec, now_ms());
            if !standing.enough() {
                return Err(RegistryError::FailedPrecondition(format!(
                    "moving to Production refused: {}",
                    standing.shortfall(&v)
                )));
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

/// Starts a run of one stage for a version: how an approval reaches the promoter.
async fn start_run(
    bus: &Bus,
    v: &ModelVersion,
    stage: Stage,
    actor: &str,
    reason: String,
) -> Result<RunId, RegistryError> {
    let id = RunId::new();
    let trigger_id = subjects::trigger_ids::registry(stage, &v.model, v.version);
    // Claimed like every run id, so no publisher can reuse it.
    if let Ok(parsed) = trigger_id.parse() {
        bus.trigger_claims()
            .claim_run(&id, subjects::Origin::System, &parsed)
            .await
            .map_err(unavailable)?;
    }
    let run = Run {
        run_id: id.to_string(),
        trigger_id,
        trigger: TriggerKind::Model as i32,
        model: v.model.clone(),
        plan: vec![stage as i32],
        model_version: v.version,
        reason,
        requested_by: actor.into(),
        created_unix_ms: now_ms(),
        ..Default::default()
    };
    events::start(bus, &id, &run).await.map_err(unavailable)?;
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
