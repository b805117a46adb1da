//! Shadows and canaries: a blessed version scoring a share of Production's requests beside
//! it (`tollgate shadow start MODEL VERSION --share S`, or a rollout's shadow phase), or
//! answering a share of them itself (a rollout's canary step). Each replica tallies how
//! often the two predict alike, how far apart their probabilities are, how long the
//! candidate took and how often it failed ([`Tally`]), and reports its tally on
//! `tollgate.shadow.<model>` every [`REPORT_EVERY`]: what `tollgate shadow status` and the
//! registry's rollout analysis add up.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;
use tollgate_bus::{Bus, now_ms, subjects};
use tollgate_inference::{Scored, ServedModel};
use tollgate_pipeline::rollout::Tally;
use tollgate_proto::ShadowReport;
use tracing::{info, warn};

/// How often each replica reports what it saw of its shadows.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// The label a candidate is served under: its answers and samples say so.
pub const CANDIDATE: &str = "candidate";

/// How a replica splits a model's Production traffic with a candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// The candidate version.
    pub version: u32,
    /// Share of Production's requests mirrored to it.
    pub mirror: f64,
    /// Share of Production's requests it answers itself.
    pub canary: f64,
    /// When this split started (its reports carry it, so each phase is told apart).
    pub started_unix_ms: i64,
}

/// A candidate loaded on this replica, and how it shares traffic.
pub struct Mirror {
    /// The candidate version.
    pub model: Arc<ServedModel>,
    /// How it shares traffic.
    pub split: Split,
    /// Requests routed so far: the routing's low-discrepancy sequence.
    routed: AtomicU64,
    tally: Mutex<Tally>,
}

impl Mirror {
    fn tally(&self, f: impl FnOnce(&mut Tally)) {
        if let Ok(mut t) = self.tally.lock() {
            f(&mut t);
        }
    }
}

/// Whether a request goes to a candidate that answers `share` of them: by a hash of its
/// `key` when it has one (the same key always goes the same way), otherwise by the
/// golden-ratio sequence over `routed`, which hands the candidate its share of any run of
/// requests to within one or two.
fn takes(share: f64, key: Option<&str>, routed: &AtomicU64) -> bool {
    if share <= 0.0 {
        return false;
    }
    if share >= 1.0 {
        return true;
    }
    let point = match key {
        Some(k) => {
            // FNV-1a, then MurmurHash3's finalizer so near keys (`req-1`, `req-2`) spread.
            let mut h = k.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            h ^= h >> 33;
            (h >> 11) as f64 / (1u64 << 53) as f64
        }
        None => {
            const PHI: f64 = 0.618_033_988_749_894_9;
            let n = routed.fetch_add(1, Ordering::Relaxed);
            (n as f64 * PHI).fract()
        }
    };
    point < share
}

/// The candidates of every model this replica serves from Production.
#[derive(Default)]
pub struct Shadows {
    by_model: RwLock<HashMap<String, Arc<Mirror>>>,
}

impl Shadows {
    /// The candidate of `model`, if one is loaded.
    pub fn get(&self, model: &str) -> Option<Arc<Mirror>> {
        self.by_model.read().ok()?.get(model).cloned()
    }

    /// How `model` splits traffic now, if it does.
    pub fn running(&self, model: &str) -> Option<Split> {
        self.get(model).map(|m| m.split)
    }

    /// Splits `model`'s traffic with `loaded` as `split` says.
    pub fn start(&self, model: &str, split: Split, loaded: Arc<ServedModel>) {
        let mirror = Arc::new(Mirror {
            model: loaded,
            split,
            routed: AtomicU64::new(0),
            tally: Mutex::new(Tally::default()),
        });
        if let Ok(mut map) = self.by_model.write() {
            map.insert(model.into(), mirror);
        }
        info!(%model, version = split.version, mirror = split.mirror, canary = split.canary, "shadowing Production");
    }

    /// Stops splitting `model`'s traffic.
    pub fn stop(&self, model: &str) {
        let stopped = self.by_model.write().ok().and_then(|mut m| m.remove(model));
        if let Some(m) = stopped {
            info!(%model, version = m.model.version, "shadow stopped");
        }
    }

    /// The version that answers a request `chosen` for Production would score: the
    /// candidate for its share of them, `chosen` otherwise. `key` is the request's id.
    pub fn route(&self, chosen: Arc<ServedModel>, key: Option<&str>) -> Arc<ServedModel> {
        if chosen.served_as != "Production" {
            return chosen;
        }
        match self.get(&chosen.name) {
            Some(m) if takes(m.split.canary, key, &m.routed) => m.model.clone(),
            _ => chosen,
        }
    }

    /// Counts what `model` answered in `took`, and mirrors a share of Production's
    /// requests to the candidate, off the request path.
    pub fn scored(&self, model: &ServedModel, scored: &Scored, took: Duration) {
        let Some(mirror) = self.get(&model.name) else {
            return;
        };
        if model.served_as == CANDIDATE {
            mirror.tally(|t| t.served(&scored.probabilities, took));
            return;
        }
        if model.served_as != "Production" {
            return;
        }
        if mirror.split.canary > 0.0 {
            mirror.tally(|t| t.production(&scored.probabilities));
        }
        if mirror.split.mirror <= 0.0
            || (mirror.split.mirror < 1.0 && rand::random::<f64>() >= mirror.split.mirror)
        {
            return;
        }
        let records = scored.records.clone();
        let production = scored.probabilities.clone();
        let cut = model.threshold;
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let shadow = mirror.model.score(&records);
            let took = started.elapsed();
            let q_cut = mirror.model.threshold;
            mirror.tally(|t| {
                let shadow = shadow.as_deref().map(|q| (q, q_cut)).map_err(|_| ());
                t.add((&production, cut), shadow, took);
            });
        });
    }

    /// Counts a request of `records` records the candidate failed to answer (a 5xx).
    pub fn failed(&self, model: &ServedModel, records: u64, took: Duration) {
        if model.served_as != CANDIDATE {
            return;
        }
        if let Some(mirror) = self.get(&model.name) {
            mirror.tally(|t| t.failed(records, took));
        }
    }

    /// Each loaded candidate's tally since the last call, with what it compares.
    fn take(&self) -> Vec<(String, Arc<Mirror>, Tally)> {
        let Ok(map) = self.by_model.read() else {
            return Vec::new();
        };
        map.iter()
            .filter_map(|(model, mirror)| {
                let tally = mirror
                    .tally
                    .lock()
                    .ok()
                    .map(|mut t| std::mem::take(&mut *t))?;
                Some((model.clone(), mirror.clone(), tally))
            })
            .collect()
    }
}

/// Publishes each shadow's tally every [`REPORT_EVERY`] until `shutdown`, then once more.
pub async fn report(
    bus: Bus,
    shadows: Arc<Shadows>,
    production: impl Fn(&str) -> Option<u32> + Send + 'static,
    shutdown: CancellationToken,
) {
    let replica = format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "server".into()),
        std::process::id()
    );
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        for (model, mirror, tally) in shadows.take() {
            if tally.is_empty() {
                continue;
            }
            let message = ShadowReport {
                production_version: production(&model).unwrap_or_default(),
                shadow_version: mirror.model.version,
                shadow_started_unix_ms: mirror.split.started_unix_ms,
                mirrored: tally.mirrored,
                agreed: tally.agreed,
                errors: tally.errors,
                abs_diff_sum: tally.abs_diff_sum,
                latency_buckets: tally.latency_buckets,
                served: tally.served,
                production_served: tally.production_served,
                shadow_scores: tally.shadow_scores,
                production_scores: tally.production_scores,
                replica: replica.clone(),
                at_unix_ms: now_ms(),
                model,
            };
            let sent = tokio::time::timeout(
                Duration::from_secs(1),
                bus.publish(subjects::shadow(&message.model), &message, None),
            )
            .await;
            if !matches!(sent, Ok(Ok(()))) {
                warn!(model = %message.model, "shadow report not published");
            }
        }
        if stopping {
            break;
        }
    }
}

#[cfg(test)]
mod tests;
