//! Concurrency groups in the `tollgate_groups` bucket, which this module owns.
//!
//! A group is one model's runs of one plan. In a `queue` group one run is active and at
//! most one waits; a newer waiting run replaces the older one, as GitHub Actions'
//! concurrency groups do. In a `cancel-in-progress` group a new run also asks the active
//! one to stop. Every change is a compare-and-set on the group's key, so any number of
//! trigger-watchers and stage replicas agree on who holds it. A cancel request is a key of
//! its own: a stage reads it before it starts a run, and watches it while it works.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use async_nats::jetstream::kv::{Operation, Store};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_proto::{Concurrency, ConcurrencyGroup, Run, RunId, RunSummary};
use tracing::info;

use crate::events;
use tollgate_bus::{
    Bus, BusError,
    subjects::{Bucket, group_keys},
};

/// How many times a compare-and-set is retried against other writers before giving up.
const CAS_ATTEMPTS: usize = 50;

/// What joining its group means for a new run.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// The group was free (or already held by this run): start the run now.
    Start,
    /// The run waits until `active` ends. `replaced` is the older waiting run it
    /// displaced, which the caller ends `cancelled`.
    Queued {
        /// The run holding the group.
        active: RunId,
        /// The run that waited before this one, if any.
        replaced: Option<Box<Run>>,
    },
}

/// The concurrency groups and cancel requests.
pub struct Groups<'a>(pub(crate) &'a Bus);

/// Whether `run` belongs to a concurrency group at all.
pub fn grouped(run: &Run) -> bool {
    run.concurrency() != Concurrency::Parallel
}

impl Groups<'_> {
    fn kv(&self) -> Store {
        self.0.key_value(Bucket::Groups)
    }

    /// Reads a group and its revision (`None` before its first write).
    async fn read(&self, key: &str) -> Result<(ConcurrencyGroup, Option<u64>), BusError> {
        tollgate_bus::codec::read_versioned(&self.kv(), key, "ConcurrencyGroup").await
    }

    /// Writes a group if nobody wrote it since `revision`; `false` when someone did.
    async fn write(
        &self,
        key: &str,
        group: &ConcurrencyGroup,
        revision: Option<u64>,
    ) -> Result<bool, BusError> {
        tollgate_bus::codec::write_versioned(&self.kv(), key, group, revision).await
    }

    /// Joins `run` to its group: it holds the group when it is free, else it waits as the
    /// group's one pending run. With `cancel-in-progress` the active run is asked to stop.
    /// Admitting the same run again gives the same answer.
    pub async fn admit(&self, run: &Run) -> Result<Admission, BusError> {
        let key = group_keys::group(&run.model, run.plan_kind());
        for _ in 0..CAS_ATTEMPTS {
            let (mut group, revision) = self.read(&key).await?;
            let admission = if group.active_run_id.is_empty() || group.active_run_id == run.run_id {
                group.active_run_id = run.run_id.clone();
                if group
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.run_id == run.run_id)
                {
                    group.pending = None;
                }
                Admission::Start
            } else {
                let active = parse_id(&group.active_run_id)?;
                if group
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.run_id == run.run_id)
                {
                    return self.after_queueing(run, active, None).await;
                }
                let waiting = Run {
                    queued_behind: active.to_string(),
                    ..run.clone()
                };
                let replaced = group.pending.replace(waiting).map(Box::new);
                Admission::Queued { active, replaced }
            };
            if self.write(&key, &group, revision).await? {
                return match admission {
                    Admission::Queued { active, replaced } => {
                        self.after_queueing(run, active, replaced).await
                    }
                    start => Ok(start),
                };
            }
        }
        Err(contended(&key))
    }

    async fn after_queueing(
        &self,
        run: &Run,
        active: RunId,
        replaced: Option<Box<Run>>,
    ) -> Result<Admission, BusError> {
        if run.concurrency() == Concurrency::CancelInProgress {
            let reason = format!(
                "cancelled by the newer run {} (cancel-in-progress)",
                run.run_id
            );
            self.request_cancel(&active, &reason).await?;
        }
        if let Some(old) = &replaced {
            // It never started, unless a release was starting it at this very moment:
            // then the request stops it before its first stage.
            let reason = format!("replaced while queued by the newer run {}", run.run_id);
            self.request_cancel(&parse_id(&old.run_id)?, &reason)
                .await?;
        }
        Ok(Admission::Queued { active, replaced })
    }

    /// Gives up `run`'s hold on its group when it ends: the pending run, if any, takes the
    /// group and is sent to its first stage. A run that only waited leaves the queue.
    /// Releasing twice is harmless.
    pub async fn release(&self, run: &RunSummary) -> Result<(), BusError> {
        if run.concurrency() == Concurrency::Parallel {
            return Ok(());
        }
        let key = group_keys::group(&run.model, run.plan_kind());
        for _ in 0..CAS_ATTEMPTS {
            let (mut group, revision) = self.read(&key).await?;
            let next = if group.active_run_id == run.run_id {
                let next = group.pending.take();
                group.active_run_id = next.as_ref().map(|n| n.run_id.clone()).unwrap_or_default();
                next
            } else if group
                .pending
                .as_ref()
                .is_some_and(|p| p.run_id == run.run_id)
            {
                group.pending = None;
                None
            } else {
                return Ok(());
            };
            // Dispatch before the write: a crash in between leaves the group as it was, and
            // the redelivered completion dispatches again under the same message id.
            if let Some(next) = &next {
                events::dispatch(self.0, &parse_id(&next.run_id)?, next).await?;
            }
            if self.write(&key, &group, revision).await? {
                if let Some(next) = next {
                    info!(run_id = %next.run_id, after = %run.run_id, "queued run starts");
                }
                let _ = self
                    .kv()
                    .delete(group_keys::cancel(&parse_id(&run.run_id)?))
                    .await;
                return Ok(());
            }
        }
        Err(contended(&key))
    }

    /// Asks `run` to stop at its next stage boundary (or between training candidates):
    /// a newer run of its group, or the run's timeout.
    pub async fn request_cancel(&self, run: &RunId, reason: &str) -> Result<(), BusError> {
        let key = group_keys::cancel(run);
        self.kv()
            .put(&key, reason.to_string().into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::store(format!("writing {key}"), e))
    }

    /// Why `run` was asked to stop, if it was.
    pub async fn cancel_reason(&self, run: &RunId) -> Result<Option<String>, BusError> {
        let key = group_keys::cancel(run);
        let value = self
            .kv()
            .get(&key)
            .await
            .map_err(|e| BusError::store(format!("reading {key}"), e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

/// A stop signal for one run's stage, with the reason once it fires.
pub struct CancelSignal {
    /// Cancelled when the run is asked to stop.
    pub token: CancellationToken,
    reason: Arc<OnceLock<String>>,
    run: String,
    watch: CancelWatch,
}

impl CancelSignal {
    /// Why the run was asked to stop, once it was.
    pub fn reason(&self) -> Option<&String> {
        self.reason.get()
    }
}

impl Drop for CancelSignal {
    fn drop(&mut self) {
        self.watch.lock().remove(&self.run);
    }
}

type Waiting = HashMap<String, (CancellationToken, Arc<OnceLock<String>>)>;

/// Cancel requests as they are written, for every stage a service runs: one watch of the
/// bucket per consumer, not one per message.
#[derive(Clone, Default)]
pub struct CancelWatch(Arc<Mutex<Waiting>>);

impl CancelWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches the cancel requests written from now on, until `shutdown`.
    pub async fn start(bus: &Bus, shutdown: CancellationToken) -> Result<Self, BusError> {
        let mut watch = bus
            .key_value(Bucket::Groups)
            .watch(group_keys::CANCEL_ALL)
            .await
            .map_err(|e| BusError::store("watching cancel requests", e))?;
        let this = CancelWatch::default();
        let waiting = this.clone();
        tokio::spawn(async move {
            loop {
                let entry = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    entry = watch.next() => entry,
                };
                match entry {
                    None => return,
                    Some(Ok(e)) if e.operation == Operation::Put => {
                        let Some(run) = group_keys::cancelled_run(&e.key) else {
                            continue;
                        };
                        if let Some((token, reason)) = waiting.lock().get(run) {
                            let _ = reason.set(String::from_utf8_lossy(&e.value).into_owned());
                            token.cancel();
                        }
                    }
                    Some(_) => {}
                }
            }
        });
        Ok(this)
    }

    /// Fires `stop` when `run` is asked to stop from now on; a request written before is
    /// the caller's to read ([`Groups::cancel_reason`]), after registering.
    pub fn register(&self, run: &RunId, stop: CancellationToken) -> CancelSignal {
        let reason = Arc::new(OnceLock::new());
        self.lock()
            .insert(run.to_string(), (stop.clone(), reason.clone()));
        CancelSignal {
            token: stop,
            reason,
            run: run.to_string(),
            watch: self.clone(),
        }
    }
}

fn parse_id(id: &str) -> Result<RunId, BusError> {
    id.parse()
        .map_err(|e| BusError::store("reading a concurrency group", e))
}

fn contended(key: &str) -> BusError {
    BusError::store(
        format!("updating {key}"),
        format!("{CAS_ATTEMPTS} compare-and-set attempts lost to other writers"),
    )
}
