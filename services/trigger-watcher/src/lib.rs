//! The trigger-watcher turns changes into pipeline runs.
//!
//! Consumes `tollgate.trigger.>` (durable `trigger-watcher`): code, data and manual
//! triggers from CI and the CLI, and the registry's model changes (a version entering
//! Staging starts the spec's `model` plan: integration test, then approval request). For each it resolves the model spec (the one the trigger
//! carries, or the last one seen for the model), picks the plan for the trigger kind from
//! the spec's `triggers:` section, gives the run a ULID and publishes it on
//! `tollgate.stage.<first stage>`, announcing it on `tollgate.run.<id>.created`.
//!
//! A trigger delivered twice starts one run: its id is claimed in the `tollgate_triggers`
//! bucket before anything is published. A trigger that cannot become a real run (unknown
//! model, bad spec, no plan) still gets a run that ends `failed` with the reason, so the
//! person waiting on it is told.

use serde::{Deserialize, Serialize};
use tollgate_bus::{
    Bus, codec, defaults, now_ms, service, subjects,
    worker::{Disposition, announce, complete, consume},
};
use tollgate_proto::{Run, Trigger, TriggerKind, Verdict};
use tollgate_spec::ModelSpec;
use tracing::{Instrument, info, info_span, warn};

/// Errors that stop the trigger-watcher.
pub type Error = tollgate_bus::service::ServiceError;

/// Trigger-watcher configuration (file, then `TOLLGATE_*` environment variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// NATS server URL.
    pub nats_url: String,
    /// Address of the health endpoint (`/healthz`).
    pub health_addr: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats_url: defaults::NATS_URL.into(),
            health_addr: defaults::HEALTH_ADDR.into(),
        }
    }
}

/// Runs the trigger-watcher until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = service::token_from(shutdown);
    let bus = Bus::connect(&config.nats_url).await?;
    service::serve_health(&config.health_addr, "trigger-watcher", token.clone()).await?;
    let consumer = bus
        .work_consumer(subjects::TRIGGER_CONSUMER, subjects::TRIGGER_ALL)
        .await?;
    Ok(consume(
        &bus.clone(),
        consumer,
        subjects::TRIGGER_CONSUMER,
        token,
        |delivery| {
            let bus = bus.clone();
            async move {
                let trigger: Trigger = match codec::decode("Trigger", &delivery.payload) {
                    Ok(t) => t,
                    Err(e) => return Disposition::DeadLetter(e.to_string()),
                };
                let span =
                    info_span!("trigger", trigger_id = %trigger.trigger_id, model = %trigger.model);
                codec::adopt_trace(&span, delivery.headers.as_ref());
                let kind_from_subject = delivery
                    .subject
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                handle(&bus, trigger, &kind_from_subject)
                    .instrument(span)
                    .await
            }
        },
    )
    .await?)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The model change that starts the spec's `model` plan: a version entered Staging.
pub const MODEL_PLAN_CHANGE: &str = "staged";

const PENDING: &str = "pending:";
const STARTED: &str = "started:";

async fn handle(bus: &Bus, trigger: Trigger, kind_from_subject: &str) -> Disposition {
    if !valid_id(&trigger.trigger_id) {
        return Disposition::DeadLetter(format!(
            "trigger id {:?} is not a valid id",
            trigger.trigger_id
        ));
    }
    let kind = match TriggerKind::try_from(trigger.kind) {
        Ok(TriggerKind::Unspecified) | Err(_) => {
            TriggerKind::from_name(kind_from_subject).unwrap_or(TriggerKind::Unspecified)
        }
        Ok(k) => k,
    };
    // The registry announces every change; the model plan runs when a version is staged.
    if kind == TriggerKind::Model && trigger.change != MODEL_PLAN_CHANGE {
        info!(change = %trigger.change, version = trigger.model_version, "model change needs no run");
        return Disposition::Ack;
    }
    let key = format!("t.{}", trigger.trigger_id);
    // Claim the trigger id; a second delivery finds the claim and the run it made.
    let run_id = match bus.triggers.get(&key).await {
        Err(e) => return Disposition::Retry(e.to_string()),
        Ok(Some(value)) => {
            let value = String::from_utf8_lossy(&value).to_string();
            if let Some(run_id) = value.strip_prefix(STARTED) {
                info!(%run_id, "duplicate trigger: its run already started");
                return Disposition::Ack;
            }
            value.trim_start_matches(PENDING).to_string()
        }
        Ok(None) => {
            let run_id = ulid::Ulid::new().to_string();
            if bus
                .triggers
                .create(&key, format!("{PENDING}{run_id}").into())
                .await
                .is_err()
            {
                return Disposition::Retry("trigger claimed concurrently; re-reading".into());
            }
            run_id
        }
    };
    let kind = match TriggerKind::try_from(trigger.kind) {
        Ok(TriggerKind::Unspecified) | Err(_) => {
            TriggerKind::from_name(kind_from_subject).unwrap_or(TriggerKind::Unspecified)
        }
        Ok(k) => k,
    };
    let mut run = Run {
        run_id: run_id.clone(),
        trigger_id: trigger.trigger_id.clone(),
        trigger: kind as i32,
        model: trigger.model.clone(),
        dataset_uri: trigger.dataset_uri.clone(),
        code_commit: trigger.code_commit.clone(),
        reason: trigger.reason.clone(),
        created_unix_ms: now_ms(),
        model_version: trigger.model_version,
        ..Default::default()
    };
    let started = match plan_run(bus, &trigger, kind, &mut run).await {
        Ok(Ok(())) => start(bus, &run).await,
        // Model changes and drift are automatic: a spec without that plan has nothing to do.
        Ok(Err(reason)) if matches!(kind, TriggerKind::Model | TriggerKind::Drift) => {
            info!(%reason, "model change starts no run");
            Ok(())
        }
        Ok(Err(reason)) => {
            warn!(%run_id, %reason, "trigger cannot start a run");
            match announce(bus, &run).await {
                Ok(()) => complete(bus, &run, Verdict::Failed, &reason).await,
                Err(e) => Err(e),
            }
        }
        Err(transient) => return Disposition::Retry(transient),
    };
    if let Err(e) = started {
        return Disposition::Retry(e.to_string());
    }
    if let Err(e) = bus
        .triggers
        .put(&key, format!("{STARTED}{run_id}").into())
        .await
    {
        warn!(error = %e, "could not mark trigger started; a redelivery will republish idempotently");
    }
    Disposition::Ack
}

/// Fills in the run's spec and plan. `Ok(Err(reason))`: the run must fail with `reason`;
/// `Err`: a transient failure to retry.
async fn plan_run(
    bus: &Bus,
    trigger: &Trigger,
    kind: TriggerKind,
    run: &mut Run,
) -> Result<Result<(), String>, String> {
    let spec_text = if trigger.spec_yaml.is_empty() {
        if !tollgate_spec::valid_model_name(&trigger.model) {
            return Ok(Err(format!(
                "unknown model {:?}: the trigger carries no spec and names no valid model",
                trigger.model
            )));
        }
        match bus.triggers.get(format!("spec.{}", trigger.model)).await {
            Err(e) => return Err(e.to_string()),
            Ok(Some(text)) => String::from_utf8_lossy(&text).to_string(),
            Ok(None) => {
                return Ok(Err(format!(
                    "unknown model {:?}: no spec has been published for it; publish a trigger with its tollgate.yaml (--spec)",
                    trigger.model
                )));
            }
        }
    } else {
        trigger.spec_yaml.clone()
    };
    let spec = match ModelSpec::parse(&spec_text) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if !trigger.model.is_empty() && trigger.model != spec.model {
        return Ok(Err(format!(
            "the trigger names model {:?} but its spec is for {:?}",
            trigger.model, spec.model
        )));
    }
    run.model = spec.model.clone();
    run.spec_yaml = spec_text.clone();
    if !trigger.spec_yaml.is_empty() {
        bus.triggers
            .put(
                format!("spec.{}", spec.model),
                spec_text.into_bytes().into(),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let Some(plan) = spec.plan(kind.name()).filter(|p| !p.is_empty()) else {
        return Ok(Err(format!(
            "the spec of {} has no plan for {} triggers (add triggers.{} to tollgate.yaml)",
            spec.model,
            kind.name(),
            kind.name()
        )));
    };
    run.plan = plan.to_vec();
    Ok(Ok(()))
}

async fn start(bus: &Bus, run: &Run) -> Result<(), tollgate_bus::BusError> {
    announce(bus, run).await?;
    let first = run.plan.first().cloned().unwrap_or_default();
    let id = format!("{}.{first}", run.run_id);
    bus.publish(subjects::stage(&first), run, Some(&id)).await?;
    info!(run_id = %run.run_id, plan = ?run.plan, "run started");
    Ok(())
}
