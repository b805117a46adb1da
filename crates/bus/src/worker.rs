//! The consume loop every service shares, and the stage worker built on it.
//!
//! A message is acked only after its effects (the next stage's message, the run events)
//! are stored in JetStream. A failure that may pass (NATS or the registry unreachable) is
//! nak'ed with a growing delay; after [`MAX_DELIVER`] deliveries, or at once for a
//! malformed message, it is dead-lettered on `tollgate.deadletter.<consumer>` with the
//! reason in a header, then acked. Nothing is dropped silently.

use std::{future::Future, sync::Arc, time::Duration};

use async_nats::{HeaderMap, jetstream::AckKind, jetstream::consumer::PullConsumer};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_proto::{Run, RunEvent, RunEventKind, StageResult, StageStatus, Verdict};
use tracing::{Instrument, info, info_span, warn};

use crate::{
    Bus, BusError,
    bus::{ACK_WAIT, MAX_DELIVER},
    codec, now_ms, subjects,
};

/// A message handed to a consumer, with its delivery count.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The subject it arrived on.
    pub subject: String,
    /// The raw payload.
    pub payload: bytes::Bytes,
    /// Its headers (trace context, message id).
    pub headers: Option<HeaderMap>,
    /// 1 for the first delivery.
    pub attempt: i64,
}

impl Delivery {
    /// Whether a failure now exhausts the redelivery budget.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= MAX_DELIVER
    }
}

/// What the consume loop does with a message after its handler ran.
#[derive(Debug)]
pub enum Disposition {
    /// Done: acknowledge.
    Ack,
    /// Failed in a way that may pass: redeliver later, or dead-letter on the last attempt.
    Retry(String),
    /// Cannot ever be handled: dead-letter with this reason, then acknowledge.
    DeadLetter(String),
}

/// Pulls from `consumer` one message at a time until `shutdown`, handing each to `handle`.
/// The message in hand is always finished (acked, nak'ed or dead-lettered) before
/// returning; progress acks keep it from being redelivered while the handler works.
pub async fn consume<F, Fut>(
    bus: &Bus,
    consumer: PullConsumer,
    name: &str,
    shutdown: CancellationToken,
    mut handle: F,
) -> Result<(), BusError>
where
    F: FnMut(Delivery) -> Fut,
    Fut: Future<Output = Disposition>,
{
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .messages()
        .await
        .map_err(|e| BusError::Setup {
            what: format!("message stream of consumer {name}"),
            reason: e.to_string(),
        })?;
    info!(consumer = name, "consuming");
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            next = messages.next() => next,
        };
        let msg = match next {
            None => break,
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                warn!(consumer = name, error = %e, "pull failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let delivery = Delivery {
            subject: msg.subject.to_string(),
            payload: msg.payload.clone(),
            headers: msg.headers.clone(),
            attempt: msg.info().map(|i| i.delivered).unwrap_or(1),
        };
        let work = handle(delivery.clone());
        tokio::pin!(work);
        let mut ticker = tokio::time::interval(ACK_WAIT / 3);
        ticker.tick().await;
        let disposition = loop {
            tokio::select! {
                d = &mut work => break d,
                _ = ticker.tick() => {
                    if let Err(e) = msg.ack_with(AckKind::Progress).await {
                        warn!(consumer = name, error = %e, "progress ack failed");
                    }
                }
            }
        };
        let settled = match disposition {
            Disposition::Ack => msg.ack().await.map_err(|e| e.to_string()),
            Disposition::Retry(reason) if !delivery.is_last_attempt() => {
                warn!(consumer = name, attempt = delivery.attempt, %reason, "will retry");
                let delay = Duration::from_secs(delivery.attempt.clamp(1, 30) as u64);
                msg.ack_with(AckKind::Nak(Some(delay)))
                    .await
                    .map_err(|e| e.to_string())
            }
            Disposition::Retry(reason) | Disposition::DeadLetter(reason) => {
                match dead_letter(bus, name, &delivery, &reason).await {
                    Ok(()) => msg.ack().await.map_err(|e| e.to_string()),
                    Err(e) => {
                        warn!(consumer = name, error = %e, "dead-letter publish failed; nak");
                        msg.ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                            .await
                            .map_err(|e| e.to_string())
                    }
                }
            }
        };
        if let Err(e) = settled {
            warn!(consumer = name, error = %e, "could not settle message; JetStream will redeliver it");
        }
    }
    info!(consumer = name, "stopped consuming");
    Ok(())
}

/// Republishes a message on the consumer's dead-letter subject with the reason.
pub async fn dead_letter(
    bus: &Bus,
    consumer: &str,
    delivery: &Delivery,
    reason: &str,
) -> Result<(), BusError> {
    warn!(consumer, subject = %delivery.subject, %reason, "dead-lettering message");
    let mut headers = delivery.headers.clone().unwrap_or_default();
    headers.insert(subjects::HEADER_REASON, one_line(reason).as_str());
    headers.insert(subjects::HEADER_ORIGINAL_SUBJECT, delivery.subject.as_str());
    headers.insert(
        subjects::HEADER_DELIVERIES,
        delivery.attempt.to_string().as_str(),
    );
    // A dead letter is its own message: it must not be deduped against the original.
    headers.insert("Nats-Msg-Id", ulid::Ulid::new().to_string().as_str());
    bus.publish_raw(
        subjects::deadletter(consumer),
        headers,
        delivery.payload.clone(),
    )
    .await
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// How a stage ended for a run.
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutcome {
    /// The stage passed; the run moves to the next stage on its slip, or ends `passed`.
    Passed(String),
    /// The run ends `failed` here with this reason.
    Failed(String),
    /// The run ends `blocked` here (a gate check failed) with this reason.
    Blocked(String),
}

/// A stage's result: the run with the stage's findings filled in, and the outcome.
#[derive(Debug, Clone)]
pub struct StageDone {
    /// The run, carrying what this stage found (report, version, decision).
    pub run: Run,
    /// How the stage ended.
    pub outcome: StageOutcome,
}

/// Why a stage could not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The run's input is wrong (spec, data, model): the run fails with this reason.
    #[error("{0}")]
    Input(String),
    /// Something that may pass (NATS, the registry): retried, then the run fails.
    #[error("{0}")]
    Transient(String),
}

/// What a stage handler gets besides the run: the bus, and progress reporting on
/// `tollgate.run.<id>.progress` for long work.
#[derive(Clone)]
pub struct StageContext {
    bus: Bus,
    run_id: String,
    stage: String,
}

impl StageContext {
    /// The bus the stage runs on, for the stage's own effects.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Publishes a progress line; a failure is logged, never fatal.
    pub async fn progress(&self, message: impl Into<String>) {
        let event = RunEvent {
            run_id: self.run_id.clone(),
            kind: RunEventKind::Progress as i32,
            at_unix_ms: now_ms(),
            stage: Some(StageResult {
                stage: self.stage.clone(),
                status: StageStatus::Running as i32,
                ..Default::default()
            }),
            message: message.into(),
            ..Default::default()
        };
        let subject = subjects::run_event(&self.run_id, "progress");
        if let Err(e) = self.bus.publish(subject, &event, None).await {
            warn!(error = %e, "progress event not published");
        }
    }
}

/// One stage of the pipeline: what the data-validator, trainer, gate and promoter implement.
pub trait StageHandler: Send + Sync + 'static {
    /// Runs the stage for `run`.
    fn handle(
        &self,
        run: Run,
        ctx: StageContext,
    ) -> impl Future<Output = Result<StageDone, StageError>> + Send;
}

/// Consumes `tollgate.stage.<stage>` until `shutdown`, running `handler` for each run.
pub async fn run_stage<H: StageHandler>(
    bus: Bus,
    stage: &str,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let name = subjects::stage_consumer(stage);
    let consumer = bus.work_consumer(&name, &subjects::stage(stage)).await?;
    consume(&bus.clone(), consumer, &name, shutdown, |delivery| {
        let bus = bus.clone();
        let handler = handler.clone();
        let stage = stage.to_string();
        async move { handle_stage(&bus, &stage, handler.as_ref(), delivery).await }
    })
    .await
}

async fn handle_stage<H: StageHandler>(
    bus: &Bus,
    stage: &str,
    handler: &H,
    delivery: Delivery,
) -> Disposition {
    let run: Run = match codec::decode("Run", &delivery.payload) {
        Ok(run) => run,
        Err(e) => return Disposition::DeadLetter(e.to_string()),
    };
    if run.current_stage() != Some(stage) {
        return Disposition::DeadLetter(format!(
            "run {} is addressed to stage {:?}, not {stage:?}",
            run.run_id,
            run.current_stage()
        ));
    }
    let span = info_span!("stage", stage, run_id = %run.run_id, model = %run.model);
    codec::adopt_trace(&span, delivery.headers.as_ref());
    async move {
        match process(bus, stage, handler, run, &delivery).await {
            Ok(d) => d,
            Err(e) => Disposition::Retry(e.to_string()),
        }
    }
    .instrument(span)
    .await
}

async fn process<H: StageHandler>(
    bus: &Bus,
    stage: &str,
    handler: &H,
    run: Run,
    delivery: &Delivery,
) -> Result<Disposition, BusError> {
    let started = now_ms();
    let started_at = std::time::Instant::now();
    let mut result = StageResult {
        stage: stage.into(),
        status: StageStatus::Running as i32,
        started_unix_ms: started,
        ..Default::default()
    };
    publish_stage_event(bus, &run.run_id, RunEventKind::StageStarted, &result).await?;
    info!(attempt = delivery.attempt, "stage started");
    let ctx = StageContext {
        bus: bus.clone(),
        run_id: run.run_id.clone(),
        stage: stage.into(),
    };
    let outcome = handler.handle(run.clone(), ctx).await;
    result.duration_ms = started_at.elapsed().as_millis() as u64;
    let (mut run, outcome, disposition) = match outcome {
        Ok(done) => (done.run, done.outcome, Disposition::Ack),
        Err(StageError::Input(reason)) => (run, StageOutcome::Failed(reason), Disposition::Ack),
        Err(StageError::Transient(reason)) if !delivery.is_last_attempt() => {
            warn!(%reason, attempt = delivery.attempt, "stage failed; will retry");
            return Ok(Disposition::Retry(reason));
        }
        Err(StageError::Transient(reason)) => {
            let why = format!(
                "{stage} gave up after {} attempts: {reason}",
                delivery.attempt
            );
            (
                run,
                StageOutcome::Failed(why.clone()),
                Disposition::DeadLetter(why),
            )
        }
    };
    let (status, message) = match &outcome {
        StageOutcome::Passed(m) => (StageStatus::Passed, m.clone()),
        StageOutcome::Failed(m) => (StageStatus::Failed, m.clone()),
        StageOutcome::Blocked(m) => (StageStatus::Blocked, m.clone()),
    };
    result.status = status as i32;
    result.message = message.clone();
    run.stages.push(result.clone());
    info!(status = status.name(), duration_ms = result.duration_ms, %message, "stage finished");
    match (&outcome, run.next_stage().map(str::to_string)) {
        (StageOutcome::Passed(_), Some(next)) => {
            run.position += 1;
            let id = format!("{}.{next}", run.run_id);
            bus.publish(subjects::stage(&next), &run, Some(&id)).await?;
            publish_stage_event(bus, &run.run_id, RunEventKind::StageFinished, &result).await?;
        }
        (StageOutcome::Passed(_), None) => {
            publish_stage_event(bus, &run.run_id, RunEventKind::StageFinished, &result).await?;
            complete(bus, &run, Verdict::Passed, "").await?;
        }
        (StageOutcome::Failed(reason), _) => {
            publish_stage_event(bus, &run.run_id, RunEventKind::StageFinished, &result).await?;
            complete(bus, &run, Verdict::Failed, &format!("{stage}: {reason}")).await?;
        }
        (StageOutcome::Blocked(reason), _) => {
            publish_stage_event(bus, &run.run_id, RunEventKind::StageFinished, &result).await?;
            complete(bus, &run, Verdict::Blocked, &format!("{stage}: {reason}")).await?;
        }
    }
    Ok(disposition)
}

async fn publish_stage_event(
    bus: &Bus,
    run_id: &str,
    kind: RunEventKind,
    stage: &StageResult,
) -> Result<(), BusError> {
    let (event, name) = match kind {
        RunEventKind::StageStarted => ("started", "started"),
        _ => ("finished", "finished"),
    };
    let ev = RunEvent {
        run_id: run_id.into(),
        kind: kind as i32,
        at_unix_ms: now_ms(),
        stage: Some(stage.clone()),
        ..Default::default()
    };
    let id = format!("{run_id}.{}.{name}.{}", stage.stage, stage.started_unix_ms);
    bus.publish(subjects::run_event(run_id, event), &ev, Some(&id))
        .await
}

/// Publishes the run's `created` event: what `--wait` and the registry see first.
pub async fn announce(bus: &Bus, run: &Run) -> Result<(), BusError> {
    let ev = RunEvent {
        run_id: run.run_id.clone(),
        kind: RunEventKind::Created as i32,
        at_unix_ms: now_ms(),
        summary: Some(run.summary()),
        ..Default::default()
    };
    let id = format!("{}.created", run.run_id);
    bus.publish(subjects::run_event(&run.run_id, "created"), &ev, Some(&id))
        .await
}

/// Ends a run with a verdict and publishes its `completed` event.
pub async fn complete(
    bus: &Bus,
    run: &Run,
    verdict: Verdict,
    reason: &str,
) -> Result<(), BusError> {
    let mut summary = run.summary();
    summary.verdict = verdict as i32;
    summary.reason = reason.into();
    summary.finished_unix_ms = now_ms();
    info!(run_id = %run.run_id, verdict = verdict.name(), %reason, "run completed");
    let ev = RunEvent {
        run_id: run.run_id.clone(),
        kind: RunEventKind::Completed as i32,
        at_unix_ms: summary.finished_unix_ms,
        summary: Some(summary),
        ..Default::default()
    };
    let id = format!("{}.completed", run.run_id);
    bus.publish(
        subjects::run_event(&run.run_id, "completed"),
        &ev,
        Some(&id),
    )
    .await
}

/// The run's model spec, parsed; a bad spec fails the run.
pub fn run_spec(run: &Run) -> Result<tollgate_spec::ModelSpec, StageError> {
    tollgate_spec::ModelSpec::parse(&run.spec_yaml).map_err(|e| StageError::Input(e.to_string()))
}

/// The run's dataset as a local file: a missing file or dataset fails the run, an
/// unreachable object store is retried.
pub async fn run_dataset(
    bus: &Bus,
    run: &Run,
    cache_dir: &std::path::Path,
) -> Result<std::path::PathBuf, StageError> {
    use crate::dataset::DatasetError;
    if run.dataset_uri.is_empty() {
        return Err(StageError::Input("the run names no dataset".into()));
    }
    bus.materialize_dataset(&run.dataset_uri, cache_dir)
        .await
        .map_err(|e| match e {
            DatasetError::Bus(_) | DatasetError::Io(_) => StageError::Transient(e.to_string()),
            DatasetError::Missing(_) | DatasetError::NotPushed(_) => {
                StageError::Input(e.to_string())
            }
        })
}

/// Runs a stage service: connects, serves the health endpoint and consumes each of
/// `stages` (one consumer each, one handler for all) until `shutdown`. What `run` of the
/// data-validator, trainer, gate and promoter do.
pub async fn serve_stage<H: StageHandler>(
    nats_url: &str,
    health_addr: &str,
    service: &'static str,
    stages: &[&'static str],
    handler: H,
    shutdown: CancellationToken,
) -> Result<(), crate::service::ServiceError> {
    let bus = Bus::connect(nats_url).await?;
    crate::service::serve_health(health_addr, service, shutdown.clone()).await?;
    let handler = Arc::new(handler);
    let consumers = stages
        .iter()
        .map(|&stage| run_stage(bus.clone(), stage, handler.clone(), shutdown.clone()));
    for result in futures::future::join_all(consumers).await {
        result?;
    }
    Ok(())
}

/// Maps a registry gRPC error to a stage error: unavailable or overloaded is retried,
/// anything else fails the run with the registry's message.
pub fn grpc_error(status: tonic::Status) -> StageError {
    use tonic::Code;
    let message = format!("registry: {}", status.message());
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Unknown
        | Code::Internal => StageError::Transient(message),
        _ => StageError::Input(message),
    }
}
