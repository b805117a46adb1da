//! Rollouts: an approved version reaching Production through the policy's `rollout:`
//! plan (shadow, then canary steps), one per model under `<model>.rollout`.
//!
//! The promoter's Production stage starts one; the registry drives it ([`drive`]): at the
//! end of each phase it adds up what every model server replica reported of the candidate
//! (`tollgate.shadow.<model>`) and its live figures (`tollgate.live.<model>`), judges
//! them, and moves the entry on by compare-and-set, so each phase is judged once however
//! many replicas serve and however many registries drive. A pass starts the next step,
//! or makes the candidate Production after the last; a failure rolls it back (traffic
//! returns to Production at once) and fires the `rollout` alert. Every step lands in the
//! candidate's audit trail and in the run the approval started; each change is announced
//! on `tollgate.trigger.model`, which the servers follow.

use std::{collections::BTreeSet, time::Duration};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{
    Bus,
    codec::{read_versioned, write_versioned},
    now_ms,
    subjects::{self, ModelKey},
};
use tollgate_pipeline::rollout::{self, Live, phase_name, phases, plan_of, state_name};
use tollgate_proto::{
    Alert, AlertState, ControlRolloutRequest, LiveMetrics, ModelChange, ModelStage, Rollout,
    RolloutAction, RolloutState, RolloutStep, StartRolloutRequest, TransitionStageRequest,
};
use tracing::{info, warn};

use super::{common::*, runs, stages};
use crate::{auth::Caller, error::RegistryError, policy};

/// How often running rollouts are checked for a phase that ended.
pub const TICK: Duration = Duration::from_secs(1);

/// Who the registry records as acting when a rollout moves by itself.
const ACTOR: &str = "rollout";

/// The model's latest rollout; version 0 when it never had one.
pub async fn get_rollout(bus: &Bus, model: &str) -> Result<Rollout, RegistryError> {
    check_model(model)?;
    Ok(read(bus, model).await?.0)
}

async fn read(bus: &Bus, model: &str) -> Result<(Rollout, Option<u64>), RegistryError> {
    let key = ModelKey::Rollout(model).to_string();
    let (rollout, revision) = read_versioned::<Rollout>(&models(bus), &key, "Rollout")
        .await
        .map_err(unavailable)?;
    Ok((
        Rollout {
            model: model.into(),
            ..rollout
        },
        revision,
    ))
}

/// Writes `rollout` over the revision read; `false` when another change won.
async fn write(bus: &Bus, rollout: &Rollout, revision: Option<u64>) -> Result<bool, RegistryError> {
    let key = ModelKey::Rollout(&rollout.model).to_string();
    write_versioned(&models(bus), &key, rollout, revision)
        .await
        .map_err(unavailable)
}

fn active(r: &Rollout) -> bool {
    matches!(r.state(), RolloutState::Running | RolloutState::Paused)
}

/// What the plan is, in words: `shadow 30s at 100%, then canary 5%, 25%, 100% of 15m each`.
fn describe(plan: &tollgate_proto::RolloutPlan) -> String {
    let ms = |ms: i64| humantime::format_duration(Duration::from_millis(ms.max(0) as u64));
    let steps: Vec<String> = plan.steps.iter().map(|s| format!("{s}%")).collect();
    let canary = format!("canary {} of {} each", steps.join(", "), ms(plan.step_ms));
    if plan.shadow_share > 0.0 {
        format!(
            "shadow {} at {:.0}%, then {canary}",
            ms(plan.shadow_ms),
            plan.shadow_share * 100.0
        )
    } else {
        canary
    }
}

/// Starts the rollout of an approved Staging version under its model's policy. The same
/// version again (a redelivered stage) returns the rollout as it is. With no Production
/// version to roll out against, the version moves to Production at once and the rollout
/// is returned `promoted`.
pub async fn start_rollout(bus: &Bus, r: StartRolloutRequest) -> Result<Rollout, RegistryError> {
    check_model(&r.model)?;
    let spec = policy::of(bus, &r.model).await?;
    let Some(plan) = spec.rollout.as_ref().map(plan_of) else {
        return Err(RegistryError::FailedPrecondition(format!(
            "the policy of {} has no rollout: section",
            r.model
        )));
    };
    let (current, revision) = read(bus, &r.model).await?;
    if active(&current) {
        if current.version == r.version {
            return Ok(current);
        }
        return Err(RegistryError::FailedPrecondition(format!(
            "the rollout of {} v{} is still {}: abort or finish it first",
            r.model,
            current.version,
            state_name(current.state())
        )));
    }
    let (v, _) = version(bus, &r.model, r.version).await?;
    if v.stage() != ModelStage::Staging {
        return Err(RegistryError::FailedPrecondition(format!(
            "{} v{} is in {}; only a Staging version can be rolled out",
            r.model,
            r.version,
            v.stage().name()
        )));
    }
    stages::approved_for_production(bus, &v).await?;
    let from = latest_by_stage(bus, &r.model, ModelStage::Production)
        .await
        .ok()
        .map_or(0, |p| p.version);
    let now = now_ms();
    let mut rollout = Rollout {
        model: r.model.clone(),
        version: r.version,
        from_version: from,
        state: RolloutState::Running as i32,
        plan: Some(plan.clone()),
        phase: 0,
        phase_started_unix_ms: now,
        run_id: r.run_id.clone(),
        started_by: r.actor.clone(),
        started_unix_ms: now,
        reason: r.reason.clone(),
        ..Default::default()
    };
    if from == 0 {
        rollout.state = RolloutState::Promoted as i32;
        rollout.ended_unix_ms = now;
        rollout.reason = "no Production version to roll out against: moved at once".into();
    }
    if !write(bus, &rollout, revision).await? {
        return Err(RegistryError::FailedPrecondition(format!(
            "the rollout of {} changed meanwhile; try again",
            r.model
        )));
    }
    if from == 0 {
        promote(bus, &rollout, &r.actor, &rollout.reason).await?;
        return Ok(rollout);
    }
    let what = format!(
        "rollout started against Production v{from}: {}",
        describe(&plan)
    );
    let (v, rev) = version(bus, &r.model, r.version).await?;
    annotate(
        bus,
        v,
        rev,
        ModelChange::Rollout,
        &r.actor,
        &what,
        &r.run_id,
    )
    .await?;
    info!(model = %r.model, version = r.version, from, plan = %describe(&plan), "rollout started");
    Ok(rollout)
}

/// An approver pauses, resumes, aborts or promotes the model's running rollout.
pub async fn control(
    bus: &Bus,
    caller: &Caller,
    r: ControlRolloutRequest,
) -> Result<Rollout, RegistryError> {
    check_model(&r.model)?;
    required(&r.reason, "a reason")?;
    let spec = policy::of(bus, &r.model).await?;
    policy::require_approver(caller, &spec, &r.actor, true)?;
    let (mut rollout, revision) = read(bus, &r.model).await?;
    let refuse = |why: String| Err(RegistryError::FailedPrecondition(why));
    if !active(&rollout) {
        return refuse(format!(
            "{} has no rollout running (the latest is {})",
            r.model,
            state_name(rollout.state())
        ));
    }
    let now = now_ms();
    let phase = phase_name(&rollout);
    let action = r.action();
    let what = match (action, rollout.state()) {
        (RolloutAction::Pause, RolloutState::Running) => {
            rollout.state = RolloutState::Paused as i32;
            rollout.paused_unix_ms = now;
            format!("rollout paused at {phase}")
        }
        (RolloutAction::Resume, RolloutState::Paused) => {
            rollout.state = RolloutState::Running as i32;
            rollout.held_ms += (now - rollout.paused_unix_ms).max(0);
            rollout.paused_unix_ms = 0;
            format!("rollout resumed at {phase}")
        }
        (RolloutAction::Pause, _) => {
            return refuse(format!("the rollout of {} is paused already", r.model));
        }
        (RolloutAction::Resume, _) => {
            return refuse(format!("the rollout of {} is not paused", r.model));
        }
        (RolloutAction::Abort, _) => {
            end(
                &mut rollout,
                RolloutState::Aborted,
                now,
                &phase,
                false,
                &r.reason,
            );
            format!("rollout aborted at {phase}")
        }
        (RolloutAction::Promote, _) => {
            end(
                &mut rollout,
                RolloutState::Promoted,
                now,
                &phase,
                true,
                &r.reason,
            );
            format!("rollout promoted at {phase}, skipping the remaining steps")
        }
        (RolloutAction::Unspecified, _) => {
            return Err(RegistryError::InvalidArgument(
                "say pause, resume, abort or promote".into(),
            ));
        }
    };
    rollout.reason = r.reason.clone();
    if !write(bus, &rollout, revision).await? {
        return refuse(format!(
            "the rollout of {} moved meanwhile; read it and try again",
            r.model
        ));
    }
    let line = format!("{what} by {}: {}", r.actor, r.reason);
    info!(model = %r.model, version = rollout.version, actor = %r.actor, %what, "rollout changed");
    after(bus, &rollout, &r.actor, &line).await?;
    Ok(rollout)
}

/// Ends `rollout` in `state`, closing its current phase in the history.
fn end(rollout: &mut Rollout, state: RolloutState, now: i64, phase: &str, passed: bool, why: &str) {
    rollout.history.push(RolloutStep {
        phase: phase.into(),
        started_unix_ms: rollout.phase_started_unix_ms,
        ended_unix_ms: now,
        passed,
        summary: why.into(),
    });
    rollout.state = state as i32;
    rollout.ended_unix_ms = now;
}

/// What follows a change to a rollout that won its compare-and-set: the audit entry and
/// announcement (the servers follow it), the step in the run, and at the end the move to
/// Production or the alert.
async fn after(bus: &Bus, rollout: &Rollout, actor: &str, line: &str) -> Result<(), RegistryError> {
    if let Some(step) = rollout
        .history
        .last()
        .filter(|_| !rollout.run_id.is_empty())
        && let Err(e) = runs::add_rollout_step(bus, &rollout.run_id, step.clone()).await
    {
        warn!(run = %rollout.run_id, error = %e, "rollout step not added to the run");
    }
    match rollout.state() {
        RolloutState::Promoted => promote(bus, rollout, actor, line).await,
        state => {
            let (v, rev) = version(bus, &rollout.model, rollout.version).await?;
            let change = if state == RolloutState::RolledBack {
                ModelChange::RolledBack
            } else {
                ModelChange::Rollout
            };
            annotate(bus, v, rev, change, actor, line, &rollout.run_id).await?;
            if state == RolloutState::RolledBack {
                alert(bus, rollout, line).await;
            }
            Ok(())
        }
    }
}

/// Makes the candidate Production (the previous holder archived).
async fn promote(
    bus: &Bus,
    rollout: &Rollout,
    actor: &str,
    line: &str,
) -> Result<(), RegistryError> {
    let request = TransitionStageRequest {
        model: rollout.model.clone(),
        version: rollout.version,
        to: ModelStage::Production as i32,
        archive_existing: true,
        actor: actor.into(),
        reason: line.into(),
        run_id: rollout.run_id.clone(),
        ..Default::default()
    };
    stages::transition_with(bus, request, false).await?;
    info!(model = %rollout.model, version = rollout.version, "rollout complete: the candidate is Production");
    Ok(())
}

/// Fires the `rollout` alert for a rolled-back candidate.
async fn alert(bus: &Bus, rollout: &Rollout, line: &str) {
    let rule = subjects::Alert::Rollout;
    let alert = Alert {
        rule: rule.name().into(),
        model: rollout.model.clone(),
        state: AlertState::Firing as i32,
        summary: format!("{} v{}: {line}", rollout.model, rollout.version),
        at_unix_ms: now_ms(),
        run_ids: vec![rollout.run_id.clone()],
        ..Default::default()
    };
    if let Err(e) = bus.publish(subjects::alert(rule), &alert, None).await {
        warn!(model = %rollout.model, error = %e, "rollout alert not published");
    }
}

/// When the current phase of a running rollout ends.
fn phase_ends(r: &Rollout) -> Option<i64> {
    let plan = r.plan.as_ref()?;
    let phase = phases(plan).into_iter().nth(r.phase as usize)?;
    Some(r.phase_started_unix_ms + phase.duration.as_millis() as i64 + r.held_ms)
}

/// The candidate's latest live figures, when its plan judges them.
async fn live(bus: &Bus, r: &Rollout) -> Result<Live, RegistryError> {
    let plan = r.plan.clone().unwrap_or_default();
    if plan.min_auc_roc < 0.0 {
        return Ok(Live::default());
    }
    let figures: Vec<LiveMetrics> = bus
        .read_since(
            subjects::LIVE_STREAM,
            &subjects::live(&r.model),
            r.started_unix_ms,
            "LiveMetrics",
        )
        .await
        .map_err(unavailable)?;
    Ok(figures
        .iter()
        .rev()
        .find(|m| m.version == r.version)
        .map_or_else(Live::default, |m| Live {
            labels: m.labels,
            auc_roc: m.has_auc_roc.then_some(m.auc_roc),
        }))
}

/// Judges the current phase of a running rollout whose time is up and moves it on: the
/// next phase, Production, or a rollback. `Ok(false)` when there is nothing to do yet
/// (the phase runs, no replica reported any traffic of it, another registry won).
async fn step(bus: &Bus, model: &str) -> Result<bool, RegistryError> {
    let (mut r, revision) = read(bus, model).await?;
    let now = now_ms();
    if r.state() != RolloutState::Running || phase_ends(&r).is_none_or(|end| now < end) {
        return Ok(false);
    }
    let plan = r.plan.clone().unwrap_or_default();
    let summary = rollout::phase_summary(bus, &r).await.map_err(unavailable)?;
    if summary.mirrored + summary.served + summary.errors == 0 {
        // Nothing to judge: the phase lasts until traffic reaches the candidate.
        return Ok(false);
    }
    let analysis = rollout::analyze(&plan, &summary, live(bus, &r).await?);
    let phase = phase_name(&r);
    let last = r.phase as usize + 1 >= phases(&plan).len();
    let line = if analysis.passed {
        format!("{phase} passed: {}", analysis.line())
    } else {
        format!("rolled back at {phase}: {}", analysis.line())
    };
    match (analysis.passed, last) {
        (true, false) => {
            r.history.push(RolloutStep {
                phase: phase.clone(),
                started_unix_ms: r.phase_started_unix_ms,
                ended_unix_ms: now,
                passed: true,
                summary: analysis.line(),
            });
            r.phase += 1;
            r.phase_started_unix_ms = now;
            r.held_ms = 0;
        }
        (true, true) => end(
            &mut r,
            RolloutState::Promoted,
            now,
            &phase,
            true,
            &analysis.line(),
        ),
        (false, _) => {
            end(
                &mut r,
                RolloutState::RolledBack,
                now,
                &phase,
                false,
                &analysis.line(),
            );
            r.reason = line.clone();
        }
    }
    if !write(bus, &r, revision).await? {
        return Ok(false);
    }
    if analysis.passed {
        info!(%model, version = r.version, %line, "rollout phase passed");
    } else {
        warn!(%model, version = r.version, %line, "rollout rolled back");
    }
    after(bus, &r, ACTOR, &line).await?;
    Ok(true)
}

/// Drives every running rollout until `shutdown`: follows the `*.rollout` entries and,
/// each [`TICK`], judges the phases whose time is up.
pub async fn drive(bus: Bus, shutdown: CancellationToken) {
    let kv = models(&bus);
    let mut watch = None;
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        if watch.is_none() {
            match kv.watch_with_history("*.rollout").await {
                Ok(w) => watch = Some(w),
                Err(e) => warn!(error = %e, "rollouts not followed; trying again"),
            }
        }
        let next = async {
            match watch.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            entry = next => match entry {
                Some(Ok(e)) => {
                    let model = e.key.trim_end_matches(".rollout").to_string();
                    match <Rollout as prost::Message>::decode(e.value.as_ref()) {
                        Ok(r) if active(&r) => running.insert(model),
                        _ => running.remove(&model),
                    };
                }
                Some(Err(e)) => warn!(error = %e, "rollout watch error"),
                None => watch = None,
            },
            _ = tick.tick() => {
                for model in running.clone() {
                    if let Err(e) = step(&bus, &model).await {
                        warn!(%model, error = %e, "rollout not moved on; tried again next tick");
                    }
                }
            }
        }
    }
}
