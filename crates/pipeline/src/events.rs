//! Run events on `tollgate.run.<id>.<event>`: what `publish --wait`, `runs --watch` and
//! the registry's run records read. Each is published with a message id, so a
//! redelivered stage never announces twice.

use crate::Stores;
use futures::{Stream, StreamExt};
use tollgate_proto::{
    Run, RunEvent, RunEventKind, RunId, RunSummary, StageResult, StageStatus, Verdict,
};
use tracing::{info, warn};

use tollgate_bus::{Bus, BusError, now_ms, subjects};

/// What a run event carries besides its run and kind.
#[derive(Default)]
struct Body {
    stage: Option<StageResult>,
    summary: Option<RunSummary>,
    message: String,
    /// When it happened; now when `None`.
    at_unix_ms: Option<i64>,
}

/// The one place a run event is built and published; `msg_id` dedupes it (`None` for
/// progress lines, which may repeat).
async fn emit(
    bus: &Bus,
    run: &RunId,
    kind: RunEventKind,
    body: Body,
    msg_id: Option<&str>,
) -> Result<(), BusError> {
    let ev = RunEvent {
        run_id: run.to_string(),
        kind: kind as i32,
        at_unix_ms: body.at_unix_ms.unwrap_or_else(now_ms),
        stage: body.stage,
        summary: body.summary,
        message: body.message,
    };
    bus.publish(subjects::run_event(run, kind), &ev, msg_id)
        .await
}

/// Publishes a stage's `started` or `finished` event.
pub async fn stage_event(
    bus: &Bus,
    run: &RunId,
    kind: RunEventKind,
    stage: &StageResult,
) -> Result<(), BusError> {
    let id = subjects::msg_id::event(run, kind, Some((stage.stage(), stage.started_unix_ms)));
    let body = Body {
        stage: Some(stage.clone()),
        ..Default::default()
    };
    emit(bus, run, kind, body, Some(&id)).await
}

/// Publishes a progress line of a running stage; a failure is logged, never fatal.
pub async fn progress(bus: &Bus, run: &RunId, stage: tollgate_proto::Stage, message: String) {
    let body = Body {
        stage: Some(StageResult {
            stage: stage as i32,
            status: StageStatus::Running as i32,
            ..Default::default()
        }),
        message,
        ..Default::default()
    };
    if let Err(e) = emit(bus, run, RunEventKind::Progress, body, None).await {
        warn!(error = %e, "progress event not published");
    }
}

/// Publishes the run's `created` event: what `--wait` and the registry see first.
pub async fn announce(bus: &Bus, id: &RunId, run: &Run) -> Result<(), BusError> {
    let kind = RunEventKind::Created;
    let body = Body {
        summary: Some(run.summary()),
        ..Default::default()
    };
    let msg_id = subjects::msg_id::event(id, kind, None);
    emit(bus, id, kind, body, Some(&msg_id)).await
}

/// Publishes that a run waits for `active`, the run holding its concurrency group.
pub async fn queued(bus: &Bus, id: &RunId, run: &Run, active: &RunId) -> Result<(), BusError> {
    let kind = RunEventKind::Queued;
    let summary = Run {
        queued_behind: active.to_string(),
        ..run.clone()
    }
    .summary();
    let body = Body {
        summary: Some(summary),
        ..Default::default()
    };
    let msg_id = subjects::msg_id::event(id, kind, None);
    emit(bus, id, kind, body, Some(&msg_id)).await
}

/// Ends a run with a verdict and publishes its `completed` event; a run of a concurrency
/// group then gives the group to its pending run.
pub async fn complete(
    bus: &Bus,
    id: &RunId,
    run: &Run,
    verdict: Verdict,
    reason: &str,
) -> Result<(), BusError> {
    complete_record(bus, id, run.summary(), verdict, reason).await
}

/// [`complete`] for a run known only by its record (the registry ending a run that
/// outlived its plan's timeout).
pub async fn complete_record(
    bus: &Bus,
    id: &RunId,
    mut summary: RunSummary,
    verdict: Verdict,
    reason: &str,
) -> Result<(), BusError> {
    let kind = RunEventKind::Completed;
    summary.verdict = verdict as i32;
    summary.reason = reason.into();
    summary.finished_unix_ms = now_ms();
    info!(run_id = %id, verdict = verdict.name(), %reason, "run completed");
    let trigger = summary.trigger().to_string();
    let seconds = summary
        .finished_unix_ms
        .saturating_sub(summary.created_unix_ms) as f64
        / 1000.0;
    tollgate_telemetry::metrics::get().run_ended(&summary.model, &trigger, verdict.name(), seconds);
    let body = Body {
        at_unix_ms: Some(summary.finished_unix_ms),
        summary: Some(summary.clone()),
        ..Default::default()
    };
    let msg_id = subjects::msg_id::event(id, kind, None);
    emit(bus, id, kind, body, Some(&msg_id)).await?;
    bus.groups().release(&summary).await
}

/// Sends an announced run to the first stage on its plan (a queued run, when its turn
/// comes).
pub async fn dispatch(bus: &Bus, id: &RunId, run: &Run) -> Result<(), BusError> {
    if let Some(first) = run.current_stage() {
        let msg_id = subjects::msg_id::stage(id, first);
        bus.publish(subjects::stage(first), run, Some(&msg_id))
            .await?;
    }
    info!(run_id = %id, plan = %tollgate_proto::plan_text(&run.plan), "run started");
    Ok(())
}

/// Every run event of `kind` from the start of the runs stream, in order, through
/// reconnects (an ordered consumer). A delivery that fails or does not decode is skipped
/// with a warning.
pub async fn of_kind(
    bus: &Bus,
    kind: RunEventKind,
) -> Result<impl Stream<Item = RunEvent> + use<>, BusError> {
    let consumer = bus
        .ordered(subjects::RUNS_STREAM, &subjects::run_events_of_kind(kind))
        .await?;
    let messages = consumer.messages().await.map_err(|e| BusError::Setup {
        what: format!("an ordered consumer of {}", subjects::RUNS_STREAM),
        source: e.into(),
    })?;
    Ok(messages.filter_map(|m| async move {
        let m = m
            .inspect_err(|e| warn!(error = %e, "run events: a delivery failed"))
            .ok()?;
        tollgate_bus::codec::decode_delivery::<RunEvent>(&m.payload, m.headers.as_ref()).ok()
    }))
}

/// Every run's `completed` event from the start of the runs stream ([`of_kind`]): how a
/// waiter learns verdicts without asking the registry. A run may end twice (the first
/// verdict is the record's); both are yielded.
pub async fn completions(bus: &Bus) -> Result<impl Stream<Item = RunSummary> + use<>, BusError> {
    Ok(of_kind(bus, RunEventKind::Completed)
        .await?
        .filter_map(|event| async move { event.summary }))
}
