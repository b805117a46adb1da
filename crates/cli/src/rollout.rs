//! `tollgate rollout status|pause|resume|abort|promote`: the progressive delivery of an
//! approved version (the policy's `rollout:`), as the registry drives it, and an
//! approver's hand on it.

use clap::Subcommand;
use tollgate_bus::now_ms;
use tollgate_pipeline::rollout::{Summary, phase_name, phase_summary, phases, state_name};
use tollgate_proto::{
    ControlRolloutRequest, GetRolloutRequest, Rollout, RolloutAction, RolloutState,
};

use crate::{
    CliError,
    connect::client,
    output::{print_json, table, when},
};

/// `tollgate rollout ...`
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// The model's latest rollout: its plan, the phase it is in and what the servers
    /// saw of the candidate in it, and every phase that ended with its analysis.
    Status {
        /// The model.
        model: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Hold the rollout at its current step (approvers): the split stays, the step's
    /// time stops until `resume`.
    Pause(Act),
    /// Let a paused rollout go on from where it was held (approvers).
    Resume(Act),
    /// Stop the rollout (approvers): traffic returns to Production at once.
    Abort(Act),
    /// Skip the remaining steps (approvers): the candidate becomes Production now.
    Promote(Act),
}

/// The model and the reason, for the audit trail.
#[derive(Debug, clap::Args)]
pub struct Act {
    /// The model.
    model: String,
    /// Why, for the audit trail.
    #[arg(long)]
    reason: String,
}

/// Runs a `tollgate rollout` command.
pub async fn run(
    registry_url: &str,
    nats_url: &str,
    identity: &str,
    command: RolloutCommand,
) -> Result<(), CliError> {
    let mut registry = client(registry_url)?;
    let (act, action) = match command {
        RolloutCommand::Status { model, json } => {
            let rollout = registry
                .get_rollout(GetRolloutRequest {
                    model: model.clone(),
                })
                .await?
                .into_inner();
            let summary = current_summary(nats_url, &rollout).await?;
            if json {
                return print_json(&serde_json::json!({
                    "model": model,
                    "version": rollout.version,
                    "from_version": rollout.from_version,
                    "state": state_name(rollout.state()),
                    "phase": phase_name(&rollout),
                    "phase_index": rollout.phase,
                    "phase_started_unix_ms": rollout.phase_started_unix_ms,
                    "reason": rollout.reason,
                    "history": rollout.history.iter().map(|s| serde_json::json!({
                        "phase": s.phase,
                        "passed": s.passed,
                        "summary": s.summary,
                        "started_unix_ms": s.started_unix_ms,
                        "ended_unix_ms": s.ended_unix_ms,
                    })).collect::<Vec<_>>(),
                    "summary": summary,
                }));
            }
            print_status(&rollout, summary.as_ref());
            return Ok(());
        }
        RolloutCommand::Pause(a) => (a, RolloutAction::Pause),
        RolloutCommand::Resume(a) => (a, RolloutAction::Resume),
        RolloutCommand::Abort(a) => (a, RolloutAction::Abort),
        RolloutCommand::Promote(a) => (a, RolloutAction::Promote),
    };
    let r = registry
        .control_rollout(ControlRolloutRequest {
            model: act.model,
            action: action as i32,
            actor: identity.into(),
            reason: act.reason,
        })
        .await?
        .into_inner();
    say!(
        "{} v{}: rollout {} at {}",
        r.model,
        r.version,
        state_name(r.state()),
        phase_name(&r)
    );
    Ok(())
}

/// What the servers reported of the candidate in the current phase, while one runs.
async fn current_summary(nats_url: &str, r: &Rollout) -> Result<Option<Summary>, CliError> {
    if !matches!(r.state(), RolloutState::Running | RolloutState::Paused) {
        return Ok(None);
    }
    let bus = crate::connect_bus(nats_url).await?;
    Ok(Some(phase_summary(&bus, r).await?))
}

fn print_status(r: &Rollout, summary: Option<&Summary>) {
    if r.version == 0 {
        say!(
            "{}: no rollout yet (the policy's rollout: starts one on approval)",
            r.model
        );
        return;
    }
    let plan = r.plan.clone().unwrap_or_default();
    let all = phases(&plan);
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    say!(
        "{} v{} against Production v{}: {} (started {} by {})",
        r.model,
        r.version,
        r.from_version,
        state_name(r.state()),
        when(r.started_unix_ms),
        r.started_by
    );
    say!("plan: {}", names.join(" → "));
    if matches!(r.state(), RolloutState::Running | RolloutState::Paused) {
        let left = all.get(r.phase as usize).map(|p| {
            let end = r.phase_started_unix_ms + p.duration.as_millis() as i64 + r.held_ms;
            ((end - now_ms()).max(0) / 1000).to_string()
        });
        say!(
            "now: {} since {}{}",
            phase_name(r),
            when(r.phase_started_unix_ms),
            match (r.state(), left) {
                (RolloutState::Paused, _) => format!(", paused: {}", r.reason),
                (_, Some(s)) => format!(", judged in {s} s"),
                _ => String::new(),
            }
        );
    } else if !r.reason.is_empty() {
        say!("ended {}: {}", when(r.ended_unix_ms), r.reason);
    }
    if let Some(s) = summary {
        let or_dash = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".into(), f);
        let mut t = table(&[
            "mirrored",
            "answered by candidate",
            "by Production",
            "agreement",
            "error rate",
            "candidate p99",
            "drift (PSI)",
            "replicas",
        ]);
        t.add_row(vec![
            s.mirrored.to_string(),
            s.served.to_string(),
            s.production_served.to_string(),
            or_dash(s.agreement, &|a| format!("{:.1}%", a * 100.0)),
            or_dash(s.error_rate, &|e| format!("{:.2}%", e * 100.0)),
            or_dash(s.latency_p99_ms, &|ms| format!("≤ {ms} ms")),
            or_dash(s.prediction_drift, &|d| format!("{d:.4}")),
            s.replicas.to_string(),
        ]);
        say!("{t}");
    }
    if !r.history.is_empty() {
        let mut t = table(&["phase", "ended", "result", "analysis"]);
        for s in &r.history {
            t.add_row(vec![
                s.phase.clone(),
                when(s.ended_unix_ms),
                if s.passed { "passed" } else { "stopped" }.into(),
                s.summary.clone(),
            ]);
        }
        say!("{t}");
    }
}
