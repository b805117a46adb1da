//! Run records, kept from the run events on `tollgate.run.>`: what `tollgate runs` and the
//! dashboard read. This module owns the `tollgate_runs` bucket: the key is the run id,
//! the value a `RunSummary`.

use futures::TryStreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    Bus, BusError, codec,
    consume::{Disposition, consume},
    subjects::{self, Bucket},
};
use tollgate_proto::{RunEvent, RunEventKind, RunId, RunSummary, StageResult, Verdict};

use crate::store::RegistryError;

fn apply(record: &mut RunSummary, event: RunEvent) {
    match event.kind() {
        RunEventKind::Created => {
            if let Some(s) = event.summary
                && record.verdict() == Verdict::Unspecified
                && record.stages.is_empty()
            {
                *record = s;
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
            if let Some(s) = event.summary {
                *record = s;
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

async fn record_event(bus: &Bus, id: &RunId, event: RunEvent) -> Result<(), String> {
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
    }
}

/// Consumes run events until `shutdown`, folding each into its run record.
pub async fn keep_run_records(bus: Bus, shutdown: CancellationToken) -> Result<(), BusError> {
    let consumer = bus
        .durable(
            subjects::RUNS_STREAM,
            subjects::REGISTRY_RUNS_CONSUMER,
            subjects::RUN_ALL,
        )
        .await?;
    consume(
        &bus.clone(),
        consumer,
        subjects::REGISTRY_RUNS_CONSUMER,
        shutdown,
        |delivery, _| {
            let bus = bus.clone();
            async move {
                let event: RunEvent = match codec::decode("RunEvent", &delivery.payload) {
                    Ok(e) => e,
                    Err(e) => return Disposition::DeadLetter(e.to_string()),
                };
                let id: RunId = match event.run_id.parse() {
                    Ok(id) => id,
                    Err(e) => return Disposition::DeadLetter(format!("run event: {e}")),
                };
                match record_event(&bus, &id, event).await {
                    Ok(()) => Disposition::Ack,
                    // A lost compare-and-set or a NATS hiccup: redeliver and fold again.
                    Err(e) => Disposition::Retry(e),
                }
            }
        },
    )
    .await
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
    let keys: Vec<String> = match bus.key_value(Bucket::Runs).keys().await {
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
