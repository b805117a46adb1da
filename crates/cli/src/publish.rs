//! `tollgate publish`: sends a trigger and, with `--wait`, follows the run's events live
//! until its verdict, which becomes the exit code.

use std::time::{Duration, Instant};
use tracing::Instrument as _;

use futures::StreamExt;
use tollgate_bus::{codec, subjects};
use tollgate_pipeline::dataset;
use tollgate_proto::{
    CiContext, RunEvent, RunEventKind, RunId, RunSummary, StageStatus, Trigger, TriggerId,
    TriggerKind, Verdict,
};
use tollgate_spec::ModelSpec;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::{CliError, show};

/// Kinds of trigger a person or CI publishes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PublishKind {
    /// New code (spec) from CI: validate, train, gate; report only.
    Code,
    /// New data arrived.
    Data,
    /// A person asks for a run, with a reason.
    Manual,
}

/// `tollgate publish ...`
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// What changed.
    pub kind: PublishKind,
    /// The model spec (tollgate.yaml); without it the last published spec of --model is used.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Model name (taken from the spec when omitted), or a model trained elsewhere
    /// (`FILE.onnx`, with --spec): the run's train stage registers that file instead of
    /// training, and the gate grades it on the spec's test split like any other.
    #[arg(long, value_name = "NAME|FILE.onnx")]
    pub model: Option<String>,
    /// Dataset: a local path, file:///abs/path, or objstore://NAME from `data push`.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Code commit the spec comes from.
    #[arg(long, env = "GITHUB_SHA", default_value = "")]
    pub commit: String,
    /// Git ref of the change (refs/heads/main, refs/pull/12/merge).
    #[arg(long = "ref", env = "GITHUB_REF", default_value = "")]
    pub git_ref: String,
    /// Pull request number [default: read from a refs/pull/N/... ref].
    #[arg(long)]
    pub pr: Option<u32>,
    /// Who pushed or opened the pull request.
    #[arg(long, env = "GITHUB_ACTOR", default_value = "")]
    pub actor: String,
    /// The Tollgate identity of the commit's author (when it differs from the actor):
    /// like the actor, they may not approve what the run produces.
    #[arg(long, env = "TOLLGATE_COMMIT_AUTHOR", default_value = "")]
    pub commit_author: String,
    /// The CI run's web page [default: from GITHUB_SERVER_URL, GITHUB_REPOSITORY and
    /// GITHUB_RUN_ID].
    #[arg(long)]
    pub ci_run_url: Option<String>,
    /// Why (for manual runs).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Wait for the verdict, showing each stage live; the exit code follows the verdict.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait for the verdict.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Trigger id (default: a new ULID); publishing the same id twice starts one run.
    #[arg(long)]
    pub trigger_id: Option<String>,
}

/// Publishes the trigger as `requested_by`; with `--wait`, follows the run to its verdict,
/// which a non-passing run turns into [`CliError::Verdict`].
pub async fn publish(
    nats_url: &str,
    registry_url: &str,
    requested_by: &str,
    args: PublishArgs,
) -> Result<(), CliError> {
    let kind = match args.kind {
        PublishKind::Code => TriggerKind::Code,
        PublishKind::Data => TriggerKind::Data,
        PublishKind::Manual => TriggerKind::Manual,
    };
    let model_file = args
        .model
        .as_ref()
        .filter(|m| crate::upload::is_model_file(m))
        .map(std::path::PathBuf::from);
    let model_name = args.model.clone().filter(|_| model_file.is_none());
    if let Some(file) = &model_file {
        if args.spec.is_none() {
            return Err(CliError::Usage(format!(
                "--model {} needs --spec: the spec says which features the model takes and how the gate grades it",
                file.display()
            )));
        }
        if !file.is_file() {
            return Err(CliError::Usage(format!(
                "model file {} does not exist",
                file.display()
            )));
        }
    }
    let mut loaded = None;
    let (spec_yaml, model) = match (&args.spec, &model_name) {
        (Some(path), _) => {
            let (spec, text) = ModelSpec::load(path)?;
            if let Some(m) = model_name.as_ref().filter(|m| **m != spec.model) {
                return Err(CliError::Usage(format!(
                    "--model {m} does not match the spec's model {}",
                    spec.model
                )));
            }
            let model = spec.model.clone();
            loaded = Some((spec, path.clone()));
            (text, model)
        }
        (None, Some(model)) => (String::new(), model.clone()),
        (None, None) => {
            return Err(CliError::usage(
                "give --spec FILE (or --model NAME to reuse its last published spec)",
            ));
        }
    };
    if kind == TriggerKind::Manual && args.reason.trim().is_empty() {
        return Err(CliError::usage("a manual dispatch needs --reason"));
    }
    let dataset_uri = match &args.dataset {
        None => String::new(),
        Some(d) => match dataset::local_path(d) {
            Some(path) if !path.exists() => {
                return Err(CliError::Usage(format!(
                    "dataset file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => dataset::file_uri(&path),
            None => d.clone(),
        },
    };
    let trigger_id: TriggerId = match &args.trigger_id {
        Some(id) => id
            .parse()
            .map_err(|e: tollgate_proto::IdError| CliError::Usage(e.to_string()))?,
        None => TriggerId::new(),
    };
    // The run id is chosen here, so `--wait` follows only this run's subject.
    let run_id = RunId::new();
    let mut trigger = Trigger {
        trigger_id: trigger_id.to_string(),
        kind: kind as i32,
        model: model.clone(),
        spec_yaml,
        dataset_uri,
        code_commit: args.commit.clone(),
        reason: args.reason.clone(),
        requested_by: requested_by.into(),
        created_unix_ms: tollgate_bus::now_ms(),
        run_id: run_id.to_string(),
        ci: ci_context(&args),
        ..Default::default()
    };
    let bus = crate::connect_bus(nats_url).await?;
    if let Some((spec, path)) = &loaded {
        trigger.code_digest = crate::upload::code(&bus, spec, path)
            .await?
            .unwrap_or_default();
    }
    if let Some(file) = &model_file {
        trigger.model_upload = crate::upload::model(&bus, file).await?;
    }
    // Listen before publishing so no event of the run can be missed: on an inbox of our
    // own, where the registry relays the run's events (a `ci` identity may read nothing
    // else).
    let events = if args.wait {
        let subject = bus.client().new_inbox();
        trigger.notify_subject = subject.clone();
        let sub = bus
            .client()
            .subscribe(subject.clone())
            .await
            .map_err(|e| CliError::Usage(format!("cannot subscribe to {subject}: {e}")))?;
        bus.client()
            .flush()
            .await
            .map_err(|e| CliError::Usage(format!("cannot reach NATS: {e}")))?;
        Some(sub)
    } else {
        None
    };
    let msg_id = subjects::msg_id::trigger(&trigger_id);
    // The run's trace starts here: the trigger carries this span's context, and every
    // stage of the run descends from it.
    let span =
        tracing::info_span!("publish", %trigger_id, %model, trigger = %kind, run_id = %run_id);
    bus.publish(subjects::trigger(kind), &trigger, Some(&msg_id))
        .instrument(span)
        .await?;
    say!("published {kind} trigger {trigger_id} for model {model} (run {run_id})");
    let Some(events) = events else {
        return Ok(());
    };
    let summary = follow(events, Duration::from_secs(args.timeout)).await?;
    if let Err(e) = crate::report::step_summary(registry_url, &summary).await {
        eprintln!("warning: step summary not written: {e}");
    }
    match summary.verdict() {
        Verdict::Passed => Ok(()),
        v => Err(CliError::Verdict(format!("run ended {}", v.name()))),
    }
}

/// The CI context from the flags, else GitHub Actions' `GITHUB_*` variables; `None`
/// outside CI.
fn ci_context(args: &PublishArgs) -> Option<CiContext> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let pull_request = args.pr.unwrap_or_else(|| {
        args.git_ref
            .strip_prefix("refs/pull/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    });
    let run_url = args.ci_run_url.clone().or_else(|| {
        Some(format!(
            "{}/{}/actions/runs/{}",
            env("GITHUB_SERVER_URL")?,
            env("GITHUB_REPOSITORY")?,
            env("GITHUB_RUN_ID")?
        ))
    });
    let ci = CiContext {
        git_ref: args.git_ref.clone(),
        pull_request,
        actor: args.actor.clone(),
        run_url: run_url.unwrap_or_default(),
        commit_author: args.commit_author.clone(),
    };
    (ci != CiContext::default()).then_some(ci)
}

/// Prints the run's events until its verdict; returns the run as it ended.
async fn follow(
    mut events: async_nats::Subscriber,
    timeout: Duration,
) -> Result<RunSummary, CliError> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let msg = tokio::select! {
            m = events.next() => m.ok_or_else(|| CliError::usage("the NATS connection closed"))?,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(CliError::Usage(format!("no verdict within {}s (is the pipeline running? see `tollgate runs`)", timeout.as_secs())));
            }
        };
        let Ok(event) = codec::decode_delivery::<RunEvent>(&msg.payload, msg.headers.as_ref())
        else {
            continue;
        };
        if print_event(&event).is_some() {
            say!("(waited {:.1}s)", started.elapsed().as_secs_f64());
            return Ok(event.summary.unwrap_or_default());
        }
    }
}

/// `tollgate runs --watch`: prints every run's events as they happen, until Ctrl-C.
pub async fn watch(nats_url: &str) -> Result<(), CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    let mut events = bus
        .client()
        .subscribe(subjects::RUN_ALL)
        .await
        .map_err(|e| CliError::Usage(format!("cannot subscribe to run events: {e}")))?;
    say!("watching every run on {nats_url} (Ctrl-C to stop)");
    loop {
        let msg = tokio::select! {
            m = events.next() => m.ok_or_else(|| CliError::usage("the NATS connection closed"))?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        if let Ok(event) = codec::decode_delivery::<RunEvent>(&msg.payload, msg.headers.as_ref()) {
            let short: String = event
                .run_id
                .chars()
                .rev()
                .take(6)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            use std::io::Write as _;
            let _ = write!(std::io::stdout(), "[…{short}] ");
            print_event(&event);
        }
    }
}

/// Prints one event; returns the run's outcome when it ends the run.
fn print_event(event: &RunEvent) -> Option<Result<(), CliError>> {
    match event.kind() {
        RunEventKind::Created => {
            if let Some(s) = &event.summary {
                say!(
                    "run {} started: model {}, {} trigger, plan {}",
                    s.run_id,
                    s.model,
                    s.trigger().name(),
                    tollgate_proto::plan_text(&s.plan)
                );
            }
            None
        }
        RunEventKind::Queued => {
            if let Some(s) = &event.summary {
                say!(
                    "  … queued behind run {} ({} group {}/{}); a newer run replaces it while it waits",
                    s.queued_behind,
                    s.concurrency().name(),
                    s.model,
                    s.plan_kind().name()
                );
            }
            None
        }
        RunEventKind::StageStarted => {
            if let Some(st) = &event.stage {
                say!("  ▸ {:<11} running", st.stage().to_string());
            }
            None
        }
        RunEventKind::Progress => {
            say!("      {}", event.message);
            None
        }
        RunEventKind::StageFinished => {
            if let Some(st) = &event.stage {
                let mark = if st.status() == StageStatus::Passed {
                    "✓"
                } else {
                    "✗"
                };
                say!(
                    "  {mark} {:<11} {:<8} {:>7}  {}",
                    st.stage().to_string(),
                    st.status().name(),
                    show::seconds(st.duration_ms),
                    st.message
                );
            }
            None
        }
        RunEventKind::Completed => {
            let summary = event.summary.clone().unwrap_or_default();
            Some(print_verdict(&summary))
        }
        RunEventKind::Unspecified => None,
    }
}

fn print_verdict(s: &RunSummary) -> Result<(), CliError> {
    show::print_details(s, false);
    let total = (s.finished_unix_ms - s.created_unix_ms).max(0) as u64;
    let verdict = s.verdict();
    match verdict {
        Verdict::Passed => say!("verdict: PASSED in {}", show::seconds(total)),
        _ => say!(
            "verdict: {} in {}: {}",
            verdict.name().to_uppercase(),
            show::seconds(total),
            s.reason
        ),
    }
    if verdict == Verdict::Passed {
        Ok(())
    } else {
        Err(CliError::Verdict(format!("run ended {}", verdict.name())))
    }
}
