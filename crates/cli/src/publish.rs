//! `tollgate publish`: sends a trigger and, with `--wait`, follows the run's events live
//! until its verdict, which becomes the exit code.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tollgate_bus::{Bus, codec, dataset, subjects};
use tollgate_proto::{
    RunEvent, RunEventKind, RunSummary, StageStatus, Trigger, TriggerKind, Verdict,
};
use tollgate_spec::ModelSpec;

use crate::{EXIT_ERROR, EXIT_OK, EXIT_VERDICT, PublishArgs, PublishKind, show};

/// Publishes the trigger; returns the exit code.
pub async fn publish(nats_url: &str, args: PublishArgs) -> u8 {
    match publish_inner(nats_url, args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_ERROR
        }
    }
}

async fn publish_inner(nats_url: &str, args: PublishArgs) -> Result<u8, String> {
    let kind = match args.kind {
        PublishKind::Code => TriggerKind::Code,
        PublishKind::Data => TriggerKind::Data,
        PublishKind::Manual => TriggerKind::Manual,
    };
    let (spec_yaml, model) = match (&args.spec, &args.model) {
        (Some(path), _) => {
            let (spec, text) = ModelSpec::load(path).map_err(|e| e.to_string())?;
            if let Some(m) = args.model.as_ref().filter(|m| **m != spec.model) {
                return Err(format!(
                    "--model {m} does not match the spec's model {}",
                    spec.model
                ));
            }
            (text, spec.model)
        }
        (None, Some(model)) => (String::new(), model.clone()),
        (None, None) => {
            return Err(
                "give --spec FILE (or --model NAME to reuse its last published spec)".into(),
            );
        }
    };
    if matches!(args.kind, PublishKind::Manual) && args.reason.trim().is_empty() {
        return Err("a manual dispatch needs --reason".into());
    }
    let dataset_uri = match &args.dataset {
        None => String::new(),
        Some(d) => match dataset::local_path(d) {
            Some(path) if !path.exists() => {
                return Err(format!("dataset file {} does not exist", path.display()));
            }
            Some(path) => dataset::file_uri(&path),
            None => d.clone(),
        },
    };
    let trigger_id = args
        .trigger_id
        .clone()
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let trigger = Trigger {
        trigger_id: trigger_id.clone(),
        kind: kind as i32,
        model: model.clone(),
        spec_yaml,
        dataset_uri,
        code_commit: args.commit.clone(),
        reason: args.reason.clone(),
        requested_by: std::env::var("USER").unwrap_or_else(|_| "cli".into()),
        created_unix_ms: tollgate_bus::now_ms(),
        ..Default::default()
    };
    let bus = Bus::connect(nats_url).await.map_err(|e| e.to_string())?;
    // Listen before publishing so no event of the run can be missed.
    let events = if args.wait {
        let sub = bus
            .client
            .subscribe(subjects::RUN_ALL)
            .await
            .map_err(|e| e.to_string())?;
        bus.client.flush().await.map_err(|e| e.to_string())?;
        Some(sub)
    } else {
        None
    };
    bus.publish(subjects::trigger(kind.name()), &trigger, Some(&trigger_id))
        .await
        .map_err(|e| e.to_string())?;
    say!(
        "published {} trigger {trigger_id} for model {model}",
        kind.name()
    );
    let Some(events) = events else {
        return Ok(EXIT_OK);
    };
    follow(events, &trigger_id, Duration::from_secs(args.timeout)).await
}

async fn follow(
    mut events: async_nats::Subscriber,
    trigger_id: &str,
    timeout: Duration,
) -> Result<u8, String> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut run_id: Option<String> = None;
    let mut early: Vec<RunEvent> = Vec::new();
    loop {
        let msg = tokio::select! {
            m = events.next() => m.ok_or("the NATS connection closed")?,
            _ = tokio::time::sleep_until(deadline) => {
                return Err(format!("no verdict within {}s (is the pipeline running? see `tollgate runs`)", timeout.as_secs()));
            }
        };
        let Ok(event) = codec::decode::<RunEvent>("RunEvent", &msg.payload) else {
            continue;
        };
        match &run_id {
            None => {
                let is_ours = event.kind() == RunEventKind::Created
                    && event
                        .summary
                        .as_ref()
                        .is_some_and(|s| s.trigger_id == trigger_id);
                if !is_ours {
                    early.push(event);
                    continue;
                }
                let id = event.run_id.clone();
                print_event(&event);
                for e in early.drain(..).filter(|e| e.run_id == id) {
                    if let Some(code) = print_event(&e) {
                        return Ok(code);
                    }
                }
                run_id = Some(id);
            }
            Some(id) if *id == event.run_id => {
                if let Some(code) = print_event(&event) {
                    say!("(waited {:.1}s)", started.elapsed().as_secs_f64());
                    return Ok(code);
                }
            }
            Some(_) => {}
        }
    }
}

/// `tollgate runs --watch`: prints every run's events as they happen, until Ctrl-C.
pub async fn watch(nats_url: &str) -> Result<(), String> {
    let bus = Bus::connect(nats_url).await.map_err(|e| e.to_string())?;
    let mut events = bus
        .client
        .subscribe(subjects::RUN_ALL)
        .await
        .map_err(|e| e.to_string())?;
    say!("watching every run on {nats_url} (Ctrl-C to stop)");
    loop {
        let msg = tokio::select! {
            m = events.next() => m.ok_or("the NATS connection closed")?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        if let Ok(event) = codec::decode::<RunEvent>("RunEvent", &msg.payload) {
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

/// Prints one event; returns the exit code when it ends the run.
fn print_event(event: &RunEvent) -> Option<u8> {
    match event.kind() {
        RunEventKind::Created => {
            if let Some(s) = &event.summary {
                say!(
                    "run {} started: model {}, {} trigger, plan {}",
                    s.run_id,
                    s.model,
                    s.trigger().name(),
                    if s.plan.is_empty() {
                        "(none)".to_string()
                    } else {
                        s.plan.join(" → ")
                    }
                );
            }
            None
        }
        RunEventKind::StageStarted => {
            if let Some(st) = &event.stage {
                say!("  ▸ {:<9} running", st.stage);
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
                    "  {mark} {:<9} {:<8} {:>7}  {}",
                    st.stage,
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

fn print_verdict(s: &RunSummary) -> u8 {
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
        EXIT_OK
    } else {
        EXIT_VERDICT
    }
}
