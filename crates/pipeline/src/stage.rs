//! The stage protocol: how a stage takes a run off `tollgate.stage.<stage>`, runs its
//! handler, records the stage on the run, and forwards the run to the next stage on its
//! routing slip or ends it with a verdict. Built on [`tollgate_bus::consume`] and
//! [`crate::events`].

use crate::Stores;
use std::{future::Future, sync::Arc};

use tokio_util::sync::CancellationToken;
use tollgate_proto::{Run, RunEventKind, RunId, Stage, StageResult, StageStatus, Verdict};
use tracing::{Instrument, info, info_span, warn};

use crate::{
    dataset::DatasetError,
    events,
    groups::{CancelSignal, CancelWatch},
};
use tollgate_bus::{
    Bus, BusError,
    bus::Cause,
    codec,
    consume::{Delivery, Disposition, consume},
    now_ms, subjects,
};

/// How a stage ended for a run.
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutcome {
    /// The stage passed; the run moves to the next stage on its slip, or ends `passed`.
    Passed(String),
    /// The run ends `failed` here with this reason.
    Failed(String),
    /// The run ends `blocked` here (a gate check failed) with this reason.
    Blocked(String),
    /// The run was asked to stop while the stage ran (by a newer run of its group, or its
    /// plan's timeout).
    Cancelled(String),
}

/// A stage's result: the run with the stage's findings filled in, and the outcome.
#[derive(Debug, Clone)]
pub struct StageDone {
    /// The run, carrying what this stage found (report, version, decision).
    pub run: Run,
    /// How the stage ended.
    pub outcome: StageOutcome,
}

/// Why a stage could not produce an outcome. Input errors fail the run; the others may
/// pass and are retried, then fail the run; an interrupted stage goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The run's input is wrong (spec, data, model): the run fails with this reason.
    #[error("{0}")]
    Input(String),
    /// The run's input is wrong, as this error says.
    #[error(transparent)]
    Invalid(Cause),
    /// The run's spec is not valid.
    #[error(transparent)]
    Spec(#[from] tollgate_spec::SpecError),
    /// The run's dataset could not be had.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The registry refused or failed a call.
    #[error("registry: {}", .0.message())]
    Registry(#[from] tonic::Status),
    /// A blocking task (training, evaluation) panicked or was cancelled.
    #[error("{what} task failed: {source}")]
    Task {
        /// What the task did.
        what: &'static str,
        /// What tokio said.
        source: tokio::task::JoinError,
    },
    /// Something that may pass, as this message says.
    #[error("{0}")]
    Transient(String),
    /// The stage ran past its timeout (the spec's `timeouts:`); it is tried again.
    #[error("timed out in stage {stage} after {}", humantime::format_duration(*.after))]
    TimedOut {
        /// The stage.
        stage: Stage,
        /// Its timeout.
        after: std::time::Duration,
    },
    /// The stage stopped early ([`StageContext::stop`]): on shutdown the run goes back to
    /// the queue for another replica; when the run was cancelled it ends `cancelled`.
    #[error("interrupted")]
    Interrupted,
}

impl StageError {
    /// An input error with its cause.
    pub fn invalid(e: impl Into<Cause>) -> Self {
        StageError::Invalid(e.into())
    }

    /// Whether the same message may succeed later.
    pub fn is_transient(&self) -> bool {
        use tonic::Code;
        match self {
            StageError::Input(_) | StageError::Invalid(_) | StageError::Spec(_) => false,
            StageError::Dataset(e) => e.is_transient(),
            StageError::Registry(s) => matches!(
                s.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::Unknown
                    | Code::Internal
            ),
            StageError::Bus(_)
            | StageError::Task { .. }
            | StageError::Transient(_)
            | StageError::TimedOut { .. }
            | StageError::Interrupted => true,
        }
    }
}

/// What a stage handler gets besides the run: the bus, progress reporting on
/// `tollgate.run.<id>.progress`, and the stop signal for long work.
#[derive(Clone)]
pub struct StageContext {
    bus: Bus,
    run: RunId,
    stage: Stage,
    stop: CancellationToken,
}

impl StageContext {
    /// The bus the stage runs on, for the stage's own effects.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The run's id.
    pub fn run_id(&self) -> &RunId {
        &self.run
    }

    /// Fires when the service is asked to shut down or the run is cancelled: long work
    /// stops at its next checkpoint and returns [`StageError::Interrupted`].
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Runs `wait`, work that only waits (on a server, a timeout, another service) and
    /// computes nothing, until it ends or the stage is stopped: on shutdown (or a cancel)
    /// it ends at once with [`StageError::Interrupted`], so the message goes back to the
    /// queue without waiting out the shutdown grace.
    pub async fn waiting<T>(&self, wait: impl Future<Output = T>) -> Result<T, StageError> {
        tokio::select! {
            done = wait => Ok(done),
            _ = self.stop.cancelled() => Err(StageError::Interrupted),
        }
    }

    /// The run's dataset as a local file, downloaded into `cache_dir` when it was pushed.
    pub async fn dataset(
        &self,
        run: &Run,
        access: &crate::dataset::DataAccess,
    ) -> Result<std::path::PathBuf, StageError> {
        Ok(self
            .bus
            .datasets()
            .materialize(&run.dataset_uri, access)
            .await?)
    }

    /// Publishes a progress line; a failure is logged, never fatal.
    pub async fn progress(&self, message: impl Into<String>) {
        events::progress(&self.bus, &self.run, self.stage, message.into()).await;
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
    stage: Stage,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let name = subjects::stage_consumer(stage);
    let consumer = bus.work_consumer(&name, &subjects::stage(stage)).await?;
    let cancels = CancelWatch::start(&bus, shutdown.clone()).await?;
    consume(
        &bus.clone(),
        consumer,
        &name,
        shutdown,
        |delivery, shutdown| {
            let (bus, handler, cancels) = (bus.clone(), handler.clone(), cancels.clone());
            async move {
                handle_stage(&bus, stage, handler.as_ref(), &cancels, delivery, shutdown).await
            }
        },
    )
    .await
}

async fn handle_stage<H: StageHandler>(
    bus: &Bus,
    stage: Stage,
    handler: &H,
    cancels: &CancelWatch,
    delivery: Delivery,
    shutdown: CancellationToken,
) -> Disposition {
    let run: Run = match codec::decode_delivery(&delivery.payload, delivery.headers.as_ref()) {
        Ok(run) => run,
        Err(e) => return Disposition::DeadLetter(e.to_string()),
    };
    let id = match run.id() {
        Ok(id) => id,
        Err(e) => return Disposition::DeadLetter(e.to_string()),
    };
    if run.current_stage() != Some(stage) {
        return Disposition::DeadLetter(format!(
            "run {id} is addressed to stage {}, not {stage}",
            run.current_stage()
                .map_or("(none)".to_string(), |s| s.to_string())
        ));
    }
    // The stage's span: what it ran on, and the key figure its handler records
    // (`rows`, `expectations_failed`, `auc_roc`, `gate_verdict`) with [`record`].
    let span = info_span!(
        "stage",
        stage = %stage,
        run_id = %id,
        model = %run.model,
        version = run.model_version,
        trigger = %run.trigger(),
        status = tracing::field::Empty,
        rows = tracing::field::Empty,
        expectations_failed = tracing::field::Empty,
        auc_roc = tracing::field::Empty,
        gate_verdict = tracing::field::Empty,
    );
    codec::adopt_trace(&span, delivery.headers.as_ref());
    // Registered before the boundary check, so no request falls between the two.
    let cancel = cancels.register(&id, shutdown.child_token());
    let ctx = StageContext {
        bus: bus.clone(),
        run: id,
        stage,
        stop: cancel.token.clone(),
    };
    async move {
        match cancelled_before(&ctx, &run).await {
            Ok(false) => {}
            Ok(true) => return Disposition::Ack,
            Err(e) => return Disposition::Retry(e.to_string()),
        }
        match process(ctx, handler, run, &cancel, &delivery).await {
            Ok(d) => d,
            Err(e) => Disposition::Retry(e.to_string()),
        }
    }
    .instrument(span)
    .await
}

/// A stage boundary: a run that was asked to stop (by a newer run of its concurrency
/// group, or its timeout) ends `cancelled` here instead of starting the stage. `true`
/// when it did.
async fn cancelled_before(ctx: &StageContext, run: &Run) -> Result<bool, BusError> {
    let Some(reason) = ctx.bus.groups().cancel_reason(&ctx.run).await? else {
        return Ok(false);
    };
    let reason = format!("cancelled before {}: {reason}", ctx.stage);
    events::complete(&ctx.bus, &ctx.run, run, Verdict::Cancelled, &reason).await?;
    Ok(true)
}

/// This process as a stage replica: `host:pid`. The host is `HOSTNAME` (a pod's name in
/// Kubernetes) or the kernel's host name.
pub fn worker() -> &'static str {
    static WORKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    WORKER.get_or_init(|| {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{}", std::process::id())
    })
}

async fn process<H: StageHandler>(
    ctx: StageContext,
    handler: &H,
    run: Run,
    cancel: &CancelSignal,
    delivery: &Delivery,
) -> Result<Disposition, BusError> {
    let (bus, id, stage) = (ctx.bus.clone(), ctx.run.clone(), ctx.stage);
    let started = now_ms();
    let started_at = std::time::Instant::now();
    let mut result = StageResult {
        stage: stage as i32,
        status: StageStatus::Running as i32,
        started_unix_ms: started,
        worker: worker().into(),
        ..Default::default()
    };
    events::stage_event(&bus, &id, RunEventKind::StageStarted, &result).await?;
    info!(attempt = delivery.attempt, "stage started");
    let stop = ctx.stop.clone();
    let handling = handler.handle(run.clone(), ctx);
    let outcome = match run.stage_timeout() {
        Some(after) => match tokio::time::timeout(after, handling).await {
            Ok(outcome) => outcome,
            Err(_) => {
                // Long work on a blocking thread stops at its next checkpoint.
                stop.cancel();
                Err(StageError::TimedOut { stage, after })
            }
        },
        None => handling.await,
    };
    result.duration_ms = started_at.elapsed().as_millis() as u64;
    let (mut run, outcome, disposition) = match outcome {
        Ok(done) => (done.run, done.outcome, Disposition::Ack),
        Err(StageError::Interrupted) if cancel.reason().is_some() => {
            let reason = cancel.reason().cloned().unwrap_or_default();
            info!(%reason, "run cancelled mid-stage");
            (run, StageOutcome::Cancelled(reason), Disposition::Ack)
        }
        Err(StageError::Interrupted) => {
            info!("stage interrupted by shutdown; the run goes back to the queue");
            return Ok(Disposition::Release("interrupted by shutdown".into()));
        }
        Err(e) if !e.is_transient() => (run, StageOutcome::Failed(e.to_string()), Disposition::Ack),
        Err(e) if !delivery.is_last_attempt() => {
            warn!(reason = %e, attempt = delivery.attempt, "stage failed; will retry");
            return Ok(Disposition::Retry(e.to_string()));
        }
        Err(e) => {
            let why = format!("{stage} gave up after {} attempts: {e}", delivery.attempt);
            (
                run,
                StageOutcome::Failed(why.clone()),
                Disposition::DeadLetter(why),
            )
        }
    };
    let (status, message, verdict) = match &outcome {
        StageOutcome::Passed(m) => (StageStatus::Passed, m.clone(), Verdict::Passed),
        StageOutcome::Failed(m) => (StageStatus::Failed, m.clone(), Verdict::Failed),
        StageOutcome::Blocked(m) => (StageStatus::Blocked, m.clone(), Verdict::Blocked),
        StageOutcome::Cancelled(m) => (StageStatus::Cancelled, m.clone(), Verdict::Cancelled),
    };
    result.status = status as i32;
    result.message = message.clone();
    run.stages.push(result.clone());
    tracing::Span::current().record("status", status.name());
    info!(status = status.name(), duration_ms = result.duration_ms, outcome = %message, "stage finished");
    tollgate_telemetry::metrics::get().stage_ended(
        &stage.to_string(),
        status.name(),
        result.duration_ms as f64 / 1000.0,
    );
    let next = run.next_stage().filter(|_| verdict == Verdict::Passed);
    if let Some(next) = next {
        run.position += 1;
        let msg_id = subjects::msg_id::stage(&id, next);
        bus.publish(subjects::stage(next), &run, Some(&msg_id))
            .await?;
    }
    events::stage_event(&bus, &id, RunEventKind::StageFinished, &result).await?;
    if next.is_none() {
        let reason = match verdict {
            Verdict::Passed => String::new(),
            _ => format!("{stage}: {message}"),
        };
        events::complete(&bus, &id, &run, verdict, &reason).await?;
    }
    Ok(disposition)
}

/// Records one of the stage span's key figures (`rows`, `expectations_failed`,
/// `auc_roc`, `gate_verdict`, or the `version` training made) on the span of the stage in
/// hand.
pub fn record(field: &'static str, value: impl tracing::Value) {
    tracing::Span::current().record(field, value);
}
