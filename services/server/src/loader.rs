//! Keeping each served entry on the version the registry points it at: resolve, load
//! beside the old version (digest checked), swap.

use std::{sync::Arc, time::Duration};
use tollgate_pipeline::Stores;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Bus, codec::decode_delivery, subjects};
use tollgate_inference::{Catalog, Entry, ServedModel};
use tollgate_ml::artifact::Artifact;
use tollgate_pipeline::rollout;
use tollgate_proto::{
    GetRolloutRequest, GetShadowRequest, GetVersionRequest, ModelVersion, RegistryApi,
    ResolveRequest, RolloutState, Trigger, TriggerKind,
};

use crate::shadow::{CANDIDATE, Shadows, Split};
use tracing::{info, warn};

/// Loads versions into a catalog, and the shadows of its Production entries.
pub struct Loader {
    bus: Bus,
    registry: RegistryApi,
    catalog: Arc<Catalog>,
    shadows: Arc<Shadows>,
    /// One reconcile at a time: two announcements in a row load each version once.
    busy: tokio::sync::Mutex<()>,
}

impl Loader {
    /// A loader of `catalog`'s entries (and their models' `shadows`) through
    /// `registry`; specs come from `bus`.
    pub fn new(
        bus: Bus,
        registry: RegistryApi,
        catalog: Arc<Catalog>,
        shadows: Arc<Shadows>,
    ) -> Self {
        Loader {
            bus,
            registry,
            catalog,
            shadows,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// Brings the entries of `model` (every entry when `None`) to the versions the
    /// registry points them at. A failure is logged and the entry keeps what it serves.
    pub async fn reconcile(&self, model: Option<&str>) {
        let _one_at_a_time = self.busy.lock().await;
        for (i, entry) in self.catalog.entries().iter().enumerate() {
            if model.is_some_and(|m| m != entry.model) {
                continue;
            }
            let serving = self.catalog.current(i).map(|m| m.version);
            match self.resolve(entry).await {
                Ok(Some(v)) if Some(v.version) == serving => {}
                Ok(Some(v)) => match self.load(entry.label(), &v).await {
                    Ok(loaded) => {
                        self.catalog.set(i, Arc::new(loaded));
                        info!(
                            model = %entry.model,
                            version = v.version,
                            served_as = entry.label(),
                            previous = ?serving,
                            "now serving"
                        );
                    }
                    Err(reason) => warn!(
                        model = %entry.model,
                        version = v.version,
                        served_as = entry.label(),
                        %reason,
                        "version not loaded; the entry keeps what it served"
                    ),
                },
                Ok(None) => {
                    if let Some(old) = self.catalog.clear(i) {
                        info!(
                            model = %entry.model,
                            version = old.version,
                            served_as = entry.label(),
                            "no version holds the stage or alias any more; stopped serving it"
                        );
                    }
                }
                Err(reason) => warn!(
                    model = %entry.model,
                    served_as = entry.label(),
                    %reason,
                    "registry not reached; the entry keeps what it served"
                ),
            }
        }
        self.reconcile_shadows(model).await;
    }

    /// Brings the candidate of each model served from Production to what the registry
    /// has: a running (or paused) rollout's current phase first, otherwise the shadow;
    /// loads a new candidate, retunes or stops one.
    async fn reconcile_shadows(&self, model: Option<&str>) {
        let mut seen: Vec<&str> = Vec::new();
        for entry in self.catalog.entries().iter().filter(|e| e.is_production()) {
            if model.is_some_and(|m| m != entry.model) || seen.contains(&entry.model.as_str()) {
                continue;
            }
            seen.push(&entry.model);
            let split = match self.split(&entry.model).await {
                Ok(s) => s,
                Err(reason) => {
                    warn!(model = %entry.model, %reason, "rollout and shadow not read; the split stays as it was");
                    continue;
                }
            };
            let Some(split) = split else {
                self.shadows.stop(&entry.model);
                continue;
            };
            let running = self.shadows.get(&entry.model);
            if running.as_ref().is_some_and(|m| m.split == split) {
                continue;
            }
            // A new phase of the same candidate keeps the version it loaded.
            let loaded = match running.filter(|m| m.split.version == split.version) {
                Some(m) => m.model.clone(),
                None => {
                    let v = match version_of(&self.registry, &entry.model, split.version).await {
                        Ok(v) => v,
                        Err(reason) => {
                            warn!(model = %entry.model, version = split.version, %reason, "candidate not loaded");
                            continue;
                        }
                    };
                    match self.load(CANDIDATE, &v).await {
                        Ok(loaded) => Arc::new(loaded),
                        Err(reason) => {
                            warn!(model = %entry.model, version = split.version, %reason, "candidate not loaded");
                            continue;
                        }
                    }
                }
            };
            self.shadows.start(&entry.model, split, loaded);
        }
    }

    /// How `model`'s Production traffic is split now: by its rollout while one runs or is
    /// paused, by its shadow otherwise; `None` when it is not.
    async fn split(&self, model: &str) -> Result<Option<Split>, String> {
        let mut registry = self.registry.clone();
        let rollout = registry
            .get_rollout(GetRolloutRequest {
                model: model.into(),
            })
            .await
            .map_err(|s| format!("rollout: {}", s.message()))?
            .into_inner();
        if matches!(
            rollout.state(),
            RolloutState::Running | RolloutState::Paused
        ) {
            let phases = rollout::phases(&rollout.plan.unwrap_or_default());
            let Some(phase) = phases.get(rollout.phase as usize) else {
                return Ok(None);
            };
            return Ok(Some(Split {
                version: rollout.version,
                mirror: phase.mirror,
                canary: phase.canary,
                started_unix_ms: rollout.phase_started_unix_ms,
            }));
        }
        let shadow = registry
            .get_shadow(GetShadowRequest {
                model: model.into(),
            })
            .await
            .map_err(|s| format!("shadow: {}", s.message()))?
            .into_inner();
        Ok((shadow.version != 0).then_some(Split {
            version: shadow.version,
            mirror: shadow.share,
            canary: 0.0,
            started_unix_ms: shadow.started_unix_ms,
        }))
    }

    /// The version an entry points at, or `None` when nothing holds its stage or alias.
    async fn resolve(&self, entry: &Entry) -> Result<Option<ModelVersion>, String> {
        let request = ResolveRequest { uri: entry.uri() };
        match self.registry.clone().resolve(request).await {
            Ok(v) => Ok(Some(v.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(format!("resolving {}: {}", entry.uri(), s.message())),
        }
    }

    /// Fetches, verifies and prepares `v`, served as `served_as`.
    async fn load(&self, served_as: &str, v: &ModelVersion) -> Result<ServedModel, String> {
        let fetched = self
            .registry
            .clone()
            .get_artifact(GetVersionRequest {
                model: v.model.clone(),
                version: v.version,
            })
            .await
            .map_err(|s| format!("fetching the artifact: {}", s.message()))?
            .into_inner();
        let digest = fetched.version.unwrap_or_default().artifact_digest;
        let data = fetched.data;
        let artifact =
            tokio::task::spawn_blocking(move || Artifact::decode_verified(&data, &digest))
                .await
                .map_err(|e| format!("decoding stopped: {e}"))?
                .map_err(|e| format!("artifact refused: {e}"))?;
        let optimal = artifact.meta.optimal_threshold;
        let threshold = match self.bus.specs().get(&v.spec_digest).await {
            Ok(Some(published)) => published.spec.threshold.resolve(optimal),
            other => {
                let why = match other {
                    Err(e) => e.to_string(),
                    _ => format!("spec {} not found", v.spec_digest),
                };
                warn!(model = %v.model, version = v.version, reason = %why, "predictions use threshold 0.5");
                0.5
            }
        };
        Ok(ServedModel::new(
            &v.model, v.version, served_as, artifact, threshold,
        ))
    }
}

/// Version `version` of `model`, from the registry.
async fn version_of(
    registry: &RegistryApi,
    model: &str,
    version: u32,
) -> Result<ModelVersion, String> {
    let asked = GetVersionRequest {
        model: model.into(),
        version,
    };
    match registry.clone().get_version(asked).await {
        Ok(v) => Ok(v.into_inner()),
        Err(s) => Err(format!("{model} v{version}: {}", s.message())),
    }
}

/// Reloads a model's entries when `tollgate.trigger.model` announces a change to it, and
/// every entry each `every`, until `shutdown`.
pub async fn follow(loader: Arc<Loader>, every: Duration, shutdown: CancellationToken) {
    let subject = subjects::trigger(TriggerKind::Model);
    let mut announcements = match loader.bus.client().subscribe(subject.clone()).await {
        Ok(s) => Some(s),
        Err(e) => {
            warn!(%subject, error = %e, "not subscribed; entries follow the registry every {every:?} only");
            None
        }
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        let next = async {
            match announcements.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            message = next => {
                let Some(message) = message else {
                    announcements = None;
                    continue;
                };
                match decode_delivery::<Trigger>(&message.payload, message.headers.as_ref()) {
                    Ok(t) if loader.catalog.entries().iter().any(|e| e.model == t.model) => {
                        loader.reconcile(Some(&t.model)).await;
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "unreadable model announcement ignored"),
                }
            }
            _ = tick.tick() => loader.reconcile(None).await,
        }
    }
}
