//! Trigger claims in the `tollgate_triggers` bucket, which this module owns: a trigger id
//! is claimed with the run id it becomes before anything is published, so a trigger
//! delivered twice, to any number of trigger-watchers, starts one run. Each schedule entry
//! keeps here the slot it last fired; a slot's trigger id is the same from every watcher,
//! so the claim above also makes each slot fire once.

use tollgate_proto::{RunId, TriggerId};

use tollgate_bus::{
    Bus, BusError,
    subjects::{Bucket, Origin, trigger_keys},
};

const PENDING: &str = "pending:";
const STARTED: &str = "started:";

/// Where a trigger stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller claimed it, or an earlier delivery claimed it and did not finish
    /// starting the run: start (again, idempotently) the run with this id.
    Start(RunId),
    /// Its run already started.
    Started(RunId),
}

/// The trigger claims.
pub struct TriggerClaims<'a>(pub(crate) &'a Bus);

impl TriggerClaims<'_> {
    /// Claims `trigger` for the run `proposed`, or finds the run an earlier claim made.
    /// `Ok(None)`: another watcher claimed it at the same moment; read again.
    pub async fn claim(
        &self,
        origin: Origin,
        trigger: &TriggerId,
        proposed: RunId,
    ) -> Result<Option<Claim>, BusError> {
        let kv = self.0.key_value(Bucket::Triggers);
        let key = trigger_keys::claim(origin, trigger);
        let err = |e: Box<dyn std::error::Error + Send + Sync>| {
            BusError::store(format!("claiming trigger {trigger}"), e)
        };
        if let Some(value) = kv.get(&key).await.map_err(|e| err(e.into()))? {
            let value = String::from_utf8_lossy(&value);
            let run = |v: &str| v.parse::<RunId>().map_err(|e| err(e.into()));
            return Ok(Some(match value.strip_prefix(STARTED) {
                Some(id) => Claim::Started(run(id)?),
                None => Claim::Start(run(value.trim_start_matches(PENDING))?),
            }));
        }
        let created = kv.create(&key, format!("{PENDING}{proposed}").into()).await;
        Ok(created.ok().map(|_| Claim::Start(proposed)))
    }

    /// Claims run id `run` for `trigger` of `origin`, as every run's id is claimed
    /// before it starts: `false` when another trigger holds it (a reused run id), `true`
    /// when it is free or already this trigger's.
    pub async fn claim_run(
        &self,
        run: &RunId,
        origin: Origin,
        trigger: &TriggerId,
    ) -> Result<bool, BusError> {
        let kv = self.0.key_value(Bucket::Triggers);
        let key = trigger_keys::run(run);
        let holder_of = format!("{}.{trigger}", origin.namespace());
        let err = |e: Box<dyn std::error::Error + Send + Sync>| {
            BusError::store(format!("claiming run id {run}"), e)
        };
        if let Some(holder) = kv.get(&key).await.map_err(|e| err(e.into()))? {
            return Ok(String::from_utf8_lossy(&holder) == holder_of);
        }
        match kv.create(&key, holder_of.clone().into()).await {
            Ok(_) => Ok(true),
            Err(_) => {
                let holder = kv.get(&key).await.map_err(|e| err(e.into()))?;
                Ok(holder.is_some_and(|h| String::from_utf8_lossy(&h) == holder_of))
            }
        }
    }

    /// Marks the trigger's run started.
    pub async fn started(
        &self,
        origin: Origin,
        trigger: &TriggerId,
        run: &RunId,
    ) -> Result<(), BusError> {
        self.0
            .key_value(Bucket::Triggers)
            .put(
                trigger_keys::claim(origin, trigger),
                format!("{STARTED}{run}").into(),
            )
            .await
            .map(|_| ())
            .map_err(|e| BusError::store(format!("marking trigger {trigger} started"), e))
    }
}

impl TriggerClaims<'_> {
    /// When a schedule entry of `model` last fired (or started counting), in ms.
    pub async fn schedule_since(&self, model: &str, entry: &str) -> Result<Option<i64>, BusError> {
        let key = trigger_keys::schedule_since(model, entry);
        let value = self
            .0
            .key_value(Bucket::Triggers)
            .get(&key)
            .await
            .map_err(|e| BusError::store(format!("reading {key}"), e))?;
        Ok(value.and_then(|v| String::from_utf8_lossy(&v).parse().ok()))
    }

    /// Records when a schedule entry last fired, or starts its counting (`apply`).
    pub async fn set_schedule_since(
        &self,
        model: &str,
        entry: &str,
        at_ms: i64,
    ) -> Result<(), BusError> {
        let key = trigger_keys::schedule_since(model, entry);
        self.0
            .key_value(Bucket::Triggers)
            .put(&key, at_ms.to_string().into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::store(format!("writing {key}"), e))
    }
}
