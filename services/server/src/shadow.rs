//! Shadows: a blessed version scoring a share of Production's requests beside it, for
//! comparison only (`tollgate shadow start MODEL VERSION --share S`). Production answers
//! every request; the shadow scores the same records off the request path, and each
//! replica tallies how often the two predict alike, how far apart their probabilities
//! are and how long the shadow took, and reports its tally on `tollgate.shadow.<model>`
//! every [`REPORT_EVERY`] (what `tollgate shadow status` adds up).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;
use tollgate_bus::{Bus, now_ms, subjects};
use tollgate_inference::{Scored, ServedModel};
use tollgate_proto::{Shadow, ShadowReport};
use tracing::{info, warn};

/// How often each replica reports what it saw of its shadows.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// Upper bounds of the latency buckets, in microseconds (the last bucket is above them).
pub const LATENCY_BOUNDS_US: [u64; 14] = [
    50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000,
];

/// What a replica saw of one shadow since its last report.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    /// Records scored by both.
    pub mirrored: u64,
    /// Of those, predicted alike.
    pub agreed: u64,
    /// Records the shadow failed to score.
    pub errors: u64,
    /// Sum of |p_shadow - p_production|.
    pub abs_diff_sum: f64,
    /// Requests per latency bucket ([`LATENCY_BOUNDS_US`], then one above them).
    pub latency_buckets: Vec<u64>,
}

impl Tally {
    /// Adds one request: the Production and shadow probabilities of its records (each
    /// predicted positive at or above its own version's threshold) and the shadow's time.
    pub fn add(
        &mut self,
        production: (&[f64], f64),
        shadow: Result<(&[f64], f64), ()>,
        took: Duration,
    ) {
        if self.latency_buckets.is_empty() {
            self.latency_buckets = vec![0; LATENCY_BOUNDS_US.len() + 1];
        }
        let us = took.as_micros() as u64;
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.latency_buckets[bucket] += 1;
        let (p, p_cut) = production;
        match shadow {
            Ok((q, q_cut)) => {
                for (&a, &b) in p.iter().zip(q) {
                    self.mirrored += 1;
                    self.agreed += u64::from((a >= p_cut) == (b >= q_cut));
                    self.abs_diff_sum += (a - b).abs();
                }
            }
            Err(()) => self.errors += p.len() as u64,
        }
    }
}

/// A shadow loaded on this replica.
pub struct Mirror {
    /// The shadow version.
    pub model: Arc<ServedModel>,
    /// Share of Production's requests mirrored.
    pub share: f64,
    /// When the shadow started (its reports carry it).
    pub started_unix_ms: i64,
    tally: Mutex<Tally>,
}

/// The shadows of every model this replica serves from Production.
#[derive(Default)]
pub struct Shadows {
    by_model: RwLock<HashMap<String, Arc<Mirror>>>,
}

impl Shadows {
    /// The shadow of `model`, if one is loaded.
    pub fn get(&self, model: &str) -> Option<Arc<Mirror>> {
        self.by_model.read().ok()?.get(model).cloned()
    }

    /// The shadow `model` runs now, as the registry has it: the version and start it is
    /// mirroring, if any.
    pub fn running(&self, model: &str) -> Option<(u32, i64)> {
        self.get(model)
            .map(|m| (m.model.version, m.started_unix_ms))
    }

    /// Starts mirroring `model` to `loaded` as `shadow` says.
    pub fn start(&self, shadow: &Shadow, loaded: ServedModel) {
        let mirror = Arc::new(Mirror {
            model: Arc::new(loaded),
            share: shadow.share,
            started_unix_ms: shadow.started_unix_ms,
            tally: Mutex::new(Tally::default()),
        });
        if let Ok(mut map) = self.by_model.write() {
            map.insert(shadow.model.clone(), mirror);
        }
        info!(model = %shadow.model, version = shadow.version, share = shadow.share, "shadowing Production");
    }

    /// Stops mirroring `model`.
    pub fn stop(&self, model: &str) {
        let stopped = self.by_model.write().ok().and_then(|mut m| m.remove(model));
        if let Some(m) = stopped {
            info!(%model, version = m.model.version, "shadow stopped");
        }
    }

    /// Mirrors a share of `model`'s Production requests to its shadow, off the request
    /// path: `scored` is what Production answered.
    pub fn mirror(&self, model: &ServedModel, scored: &Scored) {
        if model.served_as != "Production" {
            return;
        }
        let Some(mirror) = self.get(&model.name) else {
            return;
        };
        if mirror.share < 1.0 && rand::random::<f64>() >= mirror.share {
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
            if let Ok(mut tally) = mirror.tally.lock() {
                let shadow = shadow.as_deref().map(|q| (q, q_cut)).map_err(|_| ());
                tally.add((&production, cut), shadow, took);
            }
        });
    }

    /// Each loaded shadow's tally since the last call, with what it compares.
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
            if tally.mirrored == 0 && tally.errors == 0 {
                continue;
            }
            let message = ShadowReport {
                production_version: production(&model).unwrap_or_default(),
                shadow_version: mirror.model.version,
                shadow_started_unix_ms: mirror.started_unix_ms,
                mirrored: tally.mirrored,
                agreed: tally.agreed,
                errors: tally.errors,
                abs_diff_sum: tally.abs_diff_sum,
                latency_buckets: tally.latency_buckets,
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

/// What every replica reported of one shadow, added up.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Records scored by both.
    pub mirrored: u64,
    /// Share of them predicted alike; `None` before any.
    pub agreement: Option<f64>,
    /// Mean |p_shadow - p_production|; `None` before any.
    pub mean_abs_diff: Option<f64>,
    /// Records the shadow failed to score.
    pub errors: u64,
    /// The shadow's per-request latency at the 99th percentile, as the upper bound of its
    /// bucket, in milliseconds; `None` before any.
    pub latency_p99_ms: Option<f64>,
    /// Replicas that reported.
    pub replicas: usize,
}

/// Adds up `reports` of one shadow.
pub fn summarize(reports: &[ShadowReport]) -> Summary {
    let mut total = Tally::default();
    let mut replicas: Vec<&str> = Vec::new();
    for r in reports {
        total.mirrored += r.mirrored;
        total.agreed += r.agreed;
        total.errors += r.errors;
        total.abs_diff_sum += r.abs_diff_sum;
        if total.latency_buckets.len() < r.latency_buckets.len() {
            total.latency_buckets.resize(r.latency_buckets.len(), 0);
        }
        for (t, n) in total.latency_buckets.iter_mut().zip(&r.latency_buckets) {
            *t += n;
        }
        if !replicas.contains(&r.replica.as_str()) {
            replicas.push(&r.replica);
        }
    }
    let requests: u64 = total.latency_buckets.iter().sum();
    let p99 = (requests > 0).then(|| {
        let wanted = (requests as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        let bucket = total
            .latency_buckets
            .iter()
            .position(|n| {
                seen += n;
                seen >= wanted
            })
            .unwrap_or(LATENCY_BOUNDS_US.len());
        LATENCY_BOUNDS_US
            .get(bucket)
            .map_or(f64::INFINITY, |&us| us as f64 / 1000.0)
    });
    let mirrored = total.mirrored as f64;
    Summary {
        mirrored: total.mirrored,
        agreement: (total.mirrored > 0).then(|| total.agreed as f64 / mirrored),
        mean_abs_diff: (total.mirrored > 0).then(|| total.abs_diff_sum / mirrored),
        errors: total.errors,
        latency_p99_ms: p99,
        replicas: replicas.len(),
    }
}

#[cfg(test)]
mod tests;
