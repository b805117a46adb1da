//! The trigger-watcher turns changes into pipeline runs.
//!
//! Consumes `tollgate.trigger.>` (durable `trigger-watcher`): code, data and manual
//! triggers from CI and the CLI, drift from the data-validator, and the registry's model
//! changes (a version entering Staging starts the spec's `model` plan: integration test,
//! then approval request). For each it resolves the model spec (the one the trigger
//! carries, published by digest, or the model's current published spec), picks the plan
//! for the trigger kind from the spec's `triggers:` section, and publishes the run on
//! `tollgate.stage.<first stage>`, announcing it on `tollgate.run.<id>.created`. The run
//! id is the one the publisher chose (so it can follow the run), or a new ULID.
//!
//! It also fires schedules: every tick it reads the current specs, and for each
//! `schedule:` entry whose slot is due publishes a `schedule` trigger named by the model,
//! entry and slot, so any number of watchers fire each slot once (JetStream dedupe on the
//! id, then the trigger claim). After downtime the missed slots fire once in total, and
//! only within the entry's catch-up window. A trigger that names no dataset takes the
//! newest one from the spec's `data.source`.
//!
//! A trigger delivered twice starts one run: its id is claimed before anything is
//! published. A trigger that cannot become a real run (unknown model, bad spec, no plan)
//! still gets a run that ends `failed` with the reason, so the person waiting on it is
//! told.

use std::{sync::Arc, time::Duration};
use tollgate_pipeline::{Stores, claims::Claim, runs, specs::SpecStoreError};

use chrono::{DateTime, Utc};
mod arrivals;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    Bus, BusError, codec,
    consume::{Disposition, consume},
    now_ms, subjects,
};
use tollgate_proto::{ModelChange, Run, RunId, Trigger, TriggerId, TriggerKind};
use tollgate_service::{HEALTH_ADDR, NatsConfig, ServiceError};
use tollgate_spec::ModelSpec;
use tracing::{Instrument, info, info_span, warn};

/// Errors that stop the trigger-watcher.
pub type Error = ServiceError;

/// Trigger-watcher configuration (file, then `TOLLGATE_*` environment variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The NATS server.
    pub nats: NatsConfig,
    /// Address of the health endpoint (`/healthz`).
    pub health_addr: String,
    /// How often schedules are checked, in milliseconds.
    pub schedule_tick_ms: u64,
    /// Seconds the work in hand gets to finish on SIGTERM or Ctrl-C; the process ends
    /// within this and a second more.
    pub shutdown_grace_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: NatsConfig::default(),
            health_addr: HEALTH_ADDR.into(),
            schedule_tick_ms: 1000,
            shutdown_grace_secs: tollgate_service::SHUTDOWN_GRACE_SECS,
        }
    }
}

impl Config {
    /// How long the work in hand gets on shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// Where the scheduler reads the time: the system clock, or a test's.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Runs the trigger-watcher until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    run_with_clock(config, Arc::new(SystemClock), shutdown).await
}

/// [`run`], with schedules read against `clock`.
pub async fn run_with_clock<F>(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: F,
) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = tollgate_service::token_from(shutdown);
    let Some(bus) = config.nats.connect_or_stop(&token).await? else {
        return Ok(());
    };
    let bus = bus.with_shutdown_grace(config.shutdown_grace());
    tollgate_service::serve_health(&config.health_addr, "trigger-watcher", token.clone()).await?;
    let consumer = bus
        .work_consumer(subjects::TRIGGER_CONSUMER, subjects::TRIGGER_ALL)
        .await?;
    let tick = Duration::from_millis(config.schedule_tick_ms.max(10));
    let scheduler = tokio::spawn(schedule_loop(bus.clone(), clock, tick, token.clone()));
    let consumed = consume(
        &bus.clone(),
        consumer,
        subjects::TRIGGER_CONSUMER,
        token,
        |delivery, _| {
            let bus = bus.clone();
            async move {
                let trigger: Trigger =
                    match codec::decode_delivery(&delivery.payload, delivery.headers.as_ref()) {
                        Ok(t) => t,
                        Err(e) => return Disposition::DeadLetter(e.to_string()),
                    };
                let span =
                    info_span!("trigger", trigger_id = %trigger.trigger_id, model = %trigger.model);
                codec::adopt_trace(&span, delivery.headers.as_ref());
                // What a trigger is comes from the subject it was allowed to publish on.
                let kind = subjects::trigger_origin(&delivery.subject);
                handle(&bus, trigger, kind).instrument(span).await
            }
        },
    )
    .await;
    scheduler.abort();
    Ok(consumed?)
}

/// Checks the schedules and the watched data sources every `tick` until `shutdown`.
async fn schedule_loop(
    bus: Bus,
    clock: Arc<dyn Clock>,
    tick: Duration,
    shutdown: CancellationToken,
) {
    let mut arrivals = arrivals::Arrivals::default();
    let woken = arrivals::follow_bucket_events(&bus, shutdown.clone()).await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let specs = match current_specs(&bus).await {
            Ok(specs) => specs,
            Err(e) => {
                warn!(error = %e, "specs not read this tick");
                continue;
            }
        };
        let now = clock.now();
        if let Err(e) = fire_due(&bus, &specs, now).await {
            warn!(error = %e, "schedules not checked this tick");
        }
        arrivals.wake(&woken);
        arrivals.check(&bus, &specs, now).await;
    }
}

/// Every model's current spec; one that no longer parses is skipped with a warning.
async fn current_specs(bus: &Bus) -> Result<Vec<ModelSpec>, BusError> {
    let mut specs = Vec::new();
    for model in bus.specs().models().await? {
        match bus.specs().current(&model).await {
            Ok(Some(published)) => specs.push(published.spec),
            Ok(None) => {}
            Err(SpecStoreError::Bus(e)) => return Err(e),
            Err(e) => warn!(%model, error = %e, "current spec unreadable; skipped"),
        }
    }
    Ok(specs)
}

/// Publishes a `schedule` trigger for every due slot of `specs`.
async fn fire_due(bus: &Bus, specs: &[ModelSpec], now: DateTime<Utc>) -> Result<(), BusError> {
    use tollgate_spec::schedule::Due;
    let now_ms = now.timestamp_millis();
    for spec in specs {
        let model = spec.model.clone();
        for entry in &spec.schedule.0 {
            let id = entry.id();
            let claims = bus.trigger_claims();
            let Some(since) = claims.schedule_since(&model, &id).await? else {
                claims.set_schedule_since(&model, &id, now_ms).await?;
                continue;
            };
            let since = DateTime::from_timestamp_millis(since).unwrap_or(now);
            match entry.due(since, now) {
                Due::NotYet(_) => {}
                Due::TooLate(slot) => {
                    info!(%model, cron = %entry.cron, %slot, "missed slot is past its catch-up window; not fired");
                    claims
                        .set_schedule_since(&model, &id, slot.timestamp_millis())
                        .await?;
                }
                Due::Fire { slot, missed } => {
                    let slot_ms = slot.timestamp_millis();
                    let trigger_id = subjects::trigger_ids::schedule(&model, &id, slot_ms);
                    let local = slot.with_timezone(&entry.timezone.0);
                    let mut reason = format!(
                        "schedule {} ({}): slot {}",
                        entry.cron,
                        entry.timezone,
                        local.to_rfc3339()
                    );
                    if missed > 0 {
                        reason += &format!(", standing for {missed} missed earlier slots");
                    }
                    let trigger = Trigger {
                        trigger_id: trigger_id.clone(),
                        kind: TriggerKind::Schedule as i32,
                        model: model.clone(),
                        reason,
                        requested_by: "schedule".into(),
                        created_unix_ms: now_ms,
                        scheduled_for_unix_ms: slot_ms,
                        ..Default::default()
                    };
                    bus.publish(
                        subjects::trigger(TriggerKind::Schedule),
                        &trigger,
                        Some(&trigger_id),
                    )
                    .await?;
                    info!(%model, cron = %entry.cron, %slot, missed, "schedule slot fired");
                    claims.set_schedule_since(&model, &id, slot_ms).await?;
                }
            }
        }
    }
    Ok(())
}

/// Why a trigger did not become a run as asked.
#[derive(Debug, thiserror::Error)]
enum TriggerError {
    /// The trigger cannot become a real run: it ends `failed` with this reason.
    #[error("{0}")]
    Refused(String),
    /// The spec it carries or names is not valid.
    #[error(transparent)]
    Spec(#[from] tollgate_spec::SpecError),
    /// NATS failed: try again.
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl From<SpecStoreError> for TriggerError {
    fn from(e: SpecStoreError) -> Self {
        match e {
            SpecStoreError::Bus(e) => TriggerError::Bus(e),
            invalid @ SpecStoreError::Invalid { .. } => TriggerError::Refused(invalid.to_string()),
        }
    }
}

async fn handle(
    bus: &Bus,
    mut trigger: Trigger,
    kind: Option<(TriggerKind, subjects::Origin)>,
) -> Disposition {
    let trigger_id: TriggerId = match trigger.trigger_id.parse() {
        Ok(id) => id,
        Err(e) => return Disposition::DeadLetter(e.to_string()),
    };
    let Some((kind, origin)) = kind else {
        return Disposition::DeadLetter(
            "the trigger's subject names no kind Tollgate knows".into(),
        );
    };
    if trigger.kind() != TriggerKind::Unspecified && trigger.kind() != kind {
        warn!(body = %trigger.kind(), subject = %kind, "the trigger's body names another kind than its subject; the subject's stands");
    }
    trigger.kind = kind as i32;
    // The registry announces every change; the model plan runs when a version is staged.
    if kind == TriggerKind::Model && trigger.change() != ModelChange::Staged {
        info!(change = %trigger.change(), version = trigger.model_version, "model change needs no run");
        return Disposition::Ack;
    }
    let proposed = if trigger.run_id.is_empty() {
        RunId::new()
    } else {
        match trigger.run_id.parse() {
            Ok(id) => id,
            Err(e) => return Disposition::DeadLetter(format!("{e}")),
        }
    };
    let run_id = match bus
        .trigger_claims()
        .claim(origin, &trigger_id, proposed)
        .await
    {
        Err(e) => return Disposition::Retry(e.to_string()),
        Ok(None) => return Disposition::Retry("trigger claimed concurrently; re-reading".into()),
        Ok(Some(Claim::Started(run_id))) => {
            info!(%run_id, "duplicate trigger: its run already started");
            return Disposition::Ack;
        }
        Ok(Some(Claim::Start(run_id))) => run_id,
    };
    // Every run id is claimed before its run starts, so none is used twice; a publisher
    // names neither the version (the registry does) nor a run id in use.
    let (run_id, mut refusal) = match runs::claim_id(bus, origin, &trigger_id, run_id).await {
        Ok(claimed) => claimed,
        Err(e) => return Disposition::Retry(e.to_string()),
    };
    if origin == subjects::Origin::Publisher && trigger.model_version != 0 {
        refusal = Some(format!(
            "a {kind} trigger may not name a model_version (v{}): versions come from the registry",
            trigger.model_version
        ));
        trigger.model_version = 0;
    }
    trigger.trigger_id = trigger_id.to_string();
    let mut run = Run::from_trigger(&run_id, &trigger, now_ms());
    let planned = match refusal {
        Some(reason) => Err(TriggerError::Refused(reason)),
        None => plan_run(bus, &trigger, kind, &mut run).await,
    };
    let started = match planned {
        Ok(()) => runs::start(bus, &run_id, &run).await,
        Err(TriggerError::Bus(e)) => return Disposition::Retry(e.to_string()),
        // Model changes and drift are automatic: a spec without that plan has nothing to do.
        Err(e) if matches!(kind, TriggerKind::Model | TriggerKind::Drift) => {
            info!(reason = %e, "automatic trigger starts no run");
            Ok(())
        }
        Err(e) => {
            let reason = e.to_string();
            warn!(%run_id, %reason, "trigger cannot start a run");
            runs::refuse(bus, &run_id, &run, &reason).await
        }
    };
    if let Err(e) = started {
        return Disposition::Retry(e.to_string());
    }
    if let Err(e) = bus
        .trigger_claims()
        .started(origin, &trigger_id, &run_id)
        .await
    {
        warn!(error = %e, "could not mark trigger started; a redelivery will republish idempotently");
    }
    Disposition::Ack
}

/// Fills in the run's spec and plan, publishing a spec the trigger carries.
async fn plan_run(
    bus: &Bus,
    trigger: &Trigger,
    kind: TriggerKind,
    run: &mut Run,
) -> Result<(), TriggerError> {
    let (spec, text, digest) = if trigger.spec_yaml.is_empty() {
        if !tollgate_spec::valid_model_name(&trigger.model) {
            return Err(TriggerError::Refused(format!(
                "unknown model {:?}: the trigger carries no spec and names no valid model",
                trigger.model
            )));
        }
        let published = bus.specs().current(&trigger.model).await?.ok_or_else(|| {
            TriggerError::Refused(format!(
                "unknown model {:?}: no spec has been published for it; publish a trigger with its tollgate.yaml (--spec)",
                trigger.model
            ))
        })?;
        (published.spec, published.text, published.digest)
    } else {
        // The spec a trigger carries is a proposal against the model's applied policy.
        let proposal = ModelSpec::parse(&trigger.spec_yaml)?;
        if !trigger.model.is_empty() && trigger.model != proposal.model {
            return Err(TriggerError::Refused(format!(
                "the trigger names model {:?} but its spec is for {:?}",
                trigger.model, proposal.model
            )));
        }
        let policy = bus.specs().current(&proposal.model).await?.ok_or_else(|| {
            TriggerError::Refused(format!(
                "model {:?} has no applied spec: a spec a trigger carries is only a proposal, and a model's first policy (approvers, gates, plans) comes from `tollgate apply tollgate.yaml` by an admin (or `tollgate dev --apply tollgate.yaml`)",
                proposal.model
            ))
        })?;
        let (effective, changes) = tollgate_spec::policy::effective(&policy.spec, &proposal);
        if !changes.is_empty() {
            info!(model = %proposal.model, changes = changes.len(), "the trigger's spec proposes policy changes; the run is report-only");
        }
        run.policy_changes = changes;
        let text = if effective == proposal {
            trigger.spec_yaml.clone()
        } else {
            serde_json::to_string_pretty(&effective).map_err(|e| {
                TriggerError::Refused(format!("the effective spec does not serialize: {e}"))
            })?
        };
        let digest = bus.specs().store(&text).await?;
        (effective, text, digest)
    };
    run.model = spec.model.clone();
    run.spec_yaml = text;
    run.spec_digest = digest;
    // A run without code of its own takes the applied spec's (schedules, arrivals, drift,
    // model changes); a trigger's code is for its own run only.
    if run.code_digest.is_empty() {
        run.code_digest = bus.specs().code(&spec.model).await?.unwrap_or_default();
    }
    let rules = spec.alerts;
    run.alerts = Some(tollgate_proto::AlertSettings {
        pipeline_failures: rules.pipeline_failures,
        training_minutes: rules.training_minutes,
        validation_failures: rules.validation_failures,
        gate_blocks: rules.gate_blocks,
    });
    if run.dataset_uri.is_empty()
        && let Some(data) = &spec.data
    {
        run.dataset_uri =
            bus.datasets()
                .resolve_source(&data.source)
                .await
                .map_err(|e| match e {
                    tollgate_pipeline::dataset::DatasetError::Bus(e) => TriggerError::Bus(e),
                    other => TriggerError::Refused(other.to_string()),
                })?;
    }
    // A schedule without a plan of its own runs the data plan.
    let plan_kind = match kind {
        TriggerKind::Schedule if spec.plan(kind).is_none() => TriggerKind::Data,
        _ => kind,
    };
    let plan = spec.plan(plan_kind).ok_or_else(|| {
        TriggerError::Refused(format!(
            "the spec of {} has no plan for {kind} triggers (add triggers.{kind} to tollgate.yaml)",
            spec.model
        ))
    })?;
    // A proposal that changes the policy is judged, never promoted.
    let plan: Vec<tollgate_spec::Stage> = plan
        .iter()
        .copied()
        .take_while(|&s| run.policy_changes.is_empty() || s != tollgate_spec::Stage::Promote)
        .collect();
    if plan.is_empty() {
        return Err(TriggerError::Refused(format!(
            "the {plan_kind} plan of {} promotes at once, and this run's spec proposes policy changes, so it may not: {}",
            spec.model,
            run.policy_changes.join("; ")
        )));
    }
    run.plan = plan.iter().map(|&s| s as i32).collect();
    run.stage_timeouts_ms = plan
        .iter()
        .map(|&s| spec.stage_timeout(s).as_millis() as u64)
        .collect();
    run.plan_kind = plan_kind as i32;
    run.concurrency = spec.concurrency.mode(plan_kind) as i32;
    Ok(())
}
