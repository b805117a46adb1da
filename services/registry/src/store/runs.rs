//! Run records, kept from the run events on `tollgate.run.>`: what `tollgate runs` and the
//! dashboard read. This module owns the `tollgate_runs` bucket: the key is the run id,
//! the value a `RunSummary`. The first verdict a run gets is its verdict.
//!
//! It also ends runs that outlive their plan's timeout (the sum of their stages'), so no
//! run stays `running` for ever: such a run is asked to stop and ends `failed`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tollgate_pipeline::{Stores, events};

use futures::TryStreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    Bus, BusError, codec,
    consume::{Disposition, consume},
    now_ms,
    subjects::{self, Bucket},
};
use tollgate_proto::{
    RunEvent, RunEventKind, RunId, RunSummary, Stage, StageResult, StageStatus, Verdict,
};
use tracing::warn;

use crate::store::RegistryError;

/// Replaces `record` by the run as a stage saw it, keeping what only the registry adds:
/// the rollout's steps and the trace id.
fn replace(record: &mut RunSummary, s: RunSummary) {
    let rollout = std::mem::take(&mut record.rollout);
    let trace_id = std::mem::take(&mut record.trace_id);
    *record = s;
    record.rollout = rollout;
    record.trace_id = trace_id;
}

fn apply(record: &mut RunSummary, event: RunEvent) {
    match event.kind() {
        RunEventKind::Created => {
            if let Some(s) = event.summary
                && record.verdict() == Verdict::Unspecified
                && record.stages.is_empty()
            {
                replace(record, s);
            }
        }
        RunEventKind::Queued => {
            if let Some(s) = event.summary
                && record.verdict() == Verdict::Unspecified
                && record.stages.is_empty()
            {
                record.queued_behind = s.queued_behind;
            }
        }
        RunEventKind::StageStarted | RunEventKind::StageFinished => {
            let Some(stage) = event.stage else { return };
            if record.verdict() != Verdict::Unspecified {
                return;
            }
            upsert(&mut record.stages, stage);
        }
        RunEventKind::Completed => {
            if let Some(s) = event.summary
                && record.verdict() == Verdict::Unspecified
            {
                replace(record, s);
            }
        }
        RunEventKind::Progress | RunEventKind::Unspecified => {}
    }
}

fn upsert(stages: &mut Vec<StageResult>, stage: StageResult) {
    match stages.iter_mut().find(|s| s.stage == stage.stage) {
        Some(existing) => *existing = stage,
        None => stages.push(stage),
    }
}

/// Folds `event` into its run's record; `trace` is the run's trace id, if its event
/// carried one.
async fn record_event(
    bus: &Bus,
    id: &RunId,
    event: RunEvent,
    trace: Option<String>,
) -> Result<RunSummary, String> {
    let key = id.to_string();
    let runs = bus.key_value(Bucket::Runs);
    let entry = runs.entry(&key).await.map_err(|e| e.to_string())?;
    let (mut record, revision) = match entry {
        Some(e) if !e.value.is_empty() => (
            RunSummary::decode(e.value.as_ref()).map_err(|e| e.to_string())?,
            Some(e.revision),
        ),
        _ => (
            RunSummary {
                run_id: key.clone(),
                ..Default::default()
            },
            None,
        ),
    };
    apply(&mut record, event);
    if record.trace_id.is_empty()
        && let Some(trace) = trace
    {
        record.trace_id = trace;
    }
    let value = record.encode_to_vec().into();
    match revision {
        Some(rev) => runs
            .update(&key, value, rev)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => runs
            .create(&key, value)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }?;
    Ok(record)
}

/// Adds a rollout's `step` to the record of the run that started it (compare-and-set,
/// retried against the run's own events).
pub async fn add_rollout_step(
    bus: &Bus,
    run_id: &str,
    step: tollgate_proto::RolloutStep,
) -> Result<(), String> {
    let runs = bus.key_value(Bucket::Runs);
    for _ in 0..20 {
        let Some(entry) = runs.entry(run_id).await.map_err(|e| e.to_string())? else {
            return Err(format!("run {run_id} has no record"));
        };
        let mut record = RunSummary::decode(entry.value.as_ref()).map_err(|e| e.to_string())?;
        if record
            .rollout
            .iter()
            .any(|s| s.phase == step.phase && s.started_unix_ms == step.started_unix_ms)
        {
            return Ok(());
        }
        record.rollout.push(step.clone());
        if runs
            .update(run_id, record.encode_to_vec().into(), entry.revision)
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(format!("run {run_id} kept changing"))
}

/// Runs without a verdict, by id, with the time (ms) by which each must have one.
#[derive(Clone, Default)]
struct Open(Arc<Mutex<HashMap<String, i64>>>);

impl Open {
    /// Tracks `record` while it has no verdict and a timeout; forgets it after.
    fn note(&self, record: &RunSummary) {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match deadline(record) {
            Some(at) => open.insert(record.run_id.clone(), at),
            None => open.remove(&record.run_id),
        };
    }

    fn due(&self, now: i64) -> Vec<String> {
        let open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        open.iter()
            .filter(|&(_, &at)| at <= now)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// When a run without a verdict must have one: its plan's timeout after its first stage
/// started (or it was created). A queued run waits without a clock.
fn deadline(record: &RunSummary) -> Option<i64> {
    if record.verdict() != Verdict::Unspecified
        || record.plan_timeout_ms == 0
        || record.status() == "queued"
    {
        return None;
    }
    let start = record
        .stages
        .iter()
        .map(|s| s.started_unix_ms)
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(record.created_unix_ms);
    Some(start + record.plan_timeout_ms as i64)
}

/// The stage a run is in or waits for: the one running, else the first on its plan
/// that has not finished.
fn current_stage(record: &RunSummary) -> Option<Stage> {
    record
        .stages
        .iter()
        .find(|s| s.status() == StageStatus::Running)
        .map(StageResult::stage)
        .or_else(|| {
            record
                .plan
                .iter()
                .find(|&&p| !record.stages.iter().any(|s| s.stage == p))
                .and_then(|&p| Stage::try_from(p).ok())
        })
}

/// Ends the runs in `open` whose deadline has passed, every second until `shutdown`.
async fn end_overdue_runs(bus: Bus, open: Open, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        for id in open.due(now_ms()) {
            if let Err(e) = end_overdue(&bus, &open, &id).await {
                warn!(run_id = %id, error = %e, "overdue run not ended; trying again");
            }
        }
    }
}

async fn end_overdue(bus: &Bus, open: &Open, id: &str) -> Result<(), String> {
    let record = get(bus, id).await.map_err(|e| e.to_string())?;
    let run_id: RunId = id
        .parse()
        .map_err(|e: tollgate_proto::IdError| e.to_string())?;
    if deadline(&record).is_none_or(|at| at > now_ms()) {
        open.note(&record);
        return Ok(());
    }
    let limit = Duration::from_millis(record.plan_timeout_ms);
    let stage = current_stage(&record).map_or("(none)".to_string(), |s| s.to_string());
    let reason = format!(
        "timed out in stage {stage}: no verdict within the plan's timeout of {}",
        humantime::format_duration(limit)
    );
    warn!(run_id = %id, %reason, "ending an overdue run");
    bus.groups()
        .request_cancel(&run_id, &reason)
        .await
        .map_err(|e| e.to_string())?;
    events::complete_record(bus, &run_id, record.clone(), Verdict::Failed, &reason)
        .await
        .map_err(|e| e.to_string())?;
    let mut ended = record;
    ended.verdict = Verdict::Failed as i32;
    open.note(&ended);
    Ok(())
}

/// Consumes run events until `shutdown`, folding each into its run record, and ends the
/// runs that outlive their plan's timeout.
pub async fn keep_run_records(bus: Bus, shutdown: CancellationToken) -> Result<(), BusError> {
    let open = Open::default();
    match list(&bus, "", u32::MAX).await {
        Ok(records) => records.iter().for_each(|r| open.note(r)),
        Err(e) => {
            warn!(error = %e, "run records not read at start; overdue runs among them are not ended")
        }
    }
    let reaper = tokio::spawn(end_overdue_runs(
        bus.clone(),
        open.clone(),
        shutdown.clone(),
    ));
    let consumer = bus
        .durable(
            subjects::RUNS_STREAM,
            subjects::REGISTRY_RUNS_CONSUMER,
            subjects::RUN_ALL,
        )
        .await?;
    let consumed = consume(
        &bus.clone(),
        consumer,
        subjects::REGISTRY_RUNS_CONSUMER,
        shutdown,
        |delivery, _| {
            let (bus, open) = (bus.clone(), open.clone());
            async move {
                let event: RunEvent =
                    match codec::decode_delivery(&delivery.payload, delivery.headers.as_ref()) {
                        Ok(e) => e,
                        Err(e) => return Disposition::DeadLetter(e.to_string()),
                    };
                let id: RunId = match event.run_id.parse() {
                    Ok(id) => id,
                    Err(e) => return Disposition::DeadLetter(format!("run event: {e}")),
                };
                let completed = event.kind() == RunEventKind::Completed;
                let trace = codec::trace_id(delivery.headers.as_ref());
                match record_event(&bus, &id, event, trace).await {
                    Ok(record) => {
                        open.note(&record);
                        relay(&bus, &record, &delivery).await;
                        // The alert rules move on as each run ends; a redelivery is
                        // recognised there and counts once.
                        if completed && let Err(e) = bus.alerts().run_ended(&record).await {
                            return Disposition::Retry(e.to_string());
                        }
                        Disposition::Ack
                    }
                    // A lost compare-and-set or a NATS hiccup: redeliver and fold again.
                    Err(e) => Disposition::Retry(e),
                }
            }
        },
    )
    .await;
    reaper.abort();
    consumed
}

/// Relays a run event to the inbox its publisher listens on (`notify_subject`), as it
/// came: how a publisher that may read only its own runs follows one.
async fn relay(bus: &Bus, record: &RunSummary, delivery: &tollgate_bus::consume::Delivery) {
    let to = &record.notify_subject;
    if to.is_empty() || !tollgate_proto::is_notify_subject(to) {
        return;
    }
    let headers = delivery.headers.clone().unwrap_or_default();
    let sent = bus
        .client()
        .publish_with_headers(to.clone(), headers, delivery.payload.clone())
        .await;
    if let Err(e) = sent {
        warn!(run_id = %record.run_id, error = %e, "run event not relayed to its publisher");
    }
}

/// One run's record.
pub async fn get(bus: &Bus, run_id: &str) -> Result<RunSummary, RegistryError> {
    let id: RunId = run_id
        .parse()
        .map_err(|e: tollgate_proto::IdError| RegistryError::InvalidArgument(e.to_string()))?;
    match bus
        .key_value(Bucket::Runs)
        .get(id.as_str())
        .await
        .map_err(|e| RegistryError::Unavailable(e.into()))?
    {
        Some(v) if !v.is_empty() => RunSummary::decode(v.as_ref())
            .map_err(|e| RegistryError::Internal(format!("corrupt run record {run_id}: {e}"))),
        _ => Err(RegistryError::NotFound(format!("no run {run_id}"))),
    }
}

/// The newest `limit` runs (50 when 0), of `model` when given.
pub async fn list(bus: &Bus, model: &str, limit: u32) -> Result<Vec<RunSummary>, RegistryError> {
    // A set: the key listing keeps delivering keys written while it runs, so a run
    // updated meanwhile would be listed twice.
    let keys: std::collections::BTreeSet<String> = match bus.key_value(Bucket::Runs).keys().await {
        Ok(k) => k
            .try_collect()
            .await
            .map_err(|e| RegistryError::Unavailable(e.into()))?,
        Err(e) => return Err(RegistryError::Unavailable(e.into())),
    };
    let mut runs = Vec::with_capacity(keys.len());
    for key in keys {
        let run = get(bus, &key).await?;
        if model.is_empty() || run.model == model {
            runs.push(run);
        }
    }
    // ULIDs sort by creation time.
    runs.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    runs.truncate(if limit == 0 { 50 } else { limit as usize });
    Ok(runs)
}
