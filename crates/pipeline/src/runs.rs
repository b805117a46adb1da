//! Starting a run: the one way a trigger (a publisher's, a schedule's, an arrival's or
//! the registry's own) becomes a run on the bus. The run id is claimed for its trigger
//! first, so no run id serves two triggers, then the run starts, or queues behind the
//! active run of its concurrency group.

use tollgate_bus::{Bus, BusError, subjects::Origin};
use tollgate_proto::{Run, RunId, TriggerId, Verdict};
use tracing::info;

use crate::{Stores, events};

/// Claims run id `proposed` for `trigger` of `origin`. When another trigger already holds
/// it, a fresh id is claimed instead, and the reason the run must end `failed` comes back
/// beside it (a publisher reused a run id).
pub async fn claim_id(
    bus: &Bus,
    origin: Origin,
    trigger: &TriggerId,
    proposed: RunId,
) -> Result<(RunId, Option<String>), BusError> {
    let claims = bus.trigger_claims();
    if claims.claim_run(&proposed, origin, trigger).await? {
        return Ok((proposed, None));
    }
    let refusal = format!(
        "run id {proposed} is already another trigger's: publish with a new one (`tollgate publish` picks a fresh id)"
    );
    let fresh = RunId::new();
    claims.claim_run(&fresh, origin, trigger).await?;
    Ok((fresh, Some(refusal)))
}

/// Starts a planned run: announces it, then sends it to the first stage on its plan, or,
/// when its concurrency group is held, queues it behind the active run (asking that one
/// to stop under `cancel-in-progress`); the waiting run it replaces ends `cancelled`.
pub async fn start(bus: &Bus, id: &RunId, run: &Run) -> Result<(), BusError> {
    use crate::groups::{Admission, grouped};
    // Announced first, so the run's record exists before a release can dispatch it.
    events::announce(bus, id, run).await?;
    if !grouped(run) {
        return events::dispatch(bus, id, run).await;
    }
    match bus.groups().admit(run).await? {
        Admission::Start => events::dispatch(bus, id, run).await,
        Admission::Queued { active, replaced } => {
            events::queued(bus, id, run, &active).await?;
            info!(run_id = %id, %active, concurrency = %run.concurrency(), "run queued behind the active run of its group");
            if let Some(old) = replaced {
                let reason = format!("replaced while queued by the newer run {id}");
                let old_id: RunId = old
                    .run_id
                    .parse()
                    .map_err(|e| BusError::store("reading the replaced run", e))?;
                events::complete(bus, &old_id, &old, Verdict::Cancelled, &reason).await?;
            }
            Ok(())
        }
    }
}

/// Ends a run that could not start (its trigger was refused, its spec is not valid) with
/// `failed` and the reason, so the publisher waiting on it hears why.
pub async fn refuse(bus: &Bus, id: &RunId, run: &Run, reason: &str) -> Result<(), BusError> {
    events::announce(bus, id, run).await?;
    events::complete(bus, id, run, Verdict::Failed, reason).await
}
