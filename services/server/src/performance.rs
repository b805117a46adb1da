//! Live performance of the Production version: the labels joined to its predictions
//! (`tollgate.labels.<model>`), judged over the spec's `monitor.window` latest ones
//! against `monitor.min_auc_roc`. Below it, the `live_auc_roc` alert fires and the drift
//! plan retrains, one trigger per version and cooldown; back above it, the alert
//! resolves. The servers of a model share one durable consumer, so each label is counted
//! once however many replicas watch. Every version's live figures over its kept labels go
//! out as the `tollgate.model.live` gauge and on `tollgate.live.<model>` as they change.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tollgate_bus::{Bus, now_ms, subjects};
use tollgate_pipeline::Stores;
use tollgate_proto::{Alert, AlertState, LiveMetrics, Prediction, RegistryApi};
use tracing::{info, warn};

use crate::monitor::{Follower, follow, production, retrain};

/// Labels between reads of the spec (and updates of the gauges) while it has no
/// `monitor:` section.
const NO_MONITOR_STEP: usize = 200;

/// Labels kept per version at most: the largest window a spec may ask for.
const KEPT: usize = tollgate_spec::monitor::MAX_WINDOW;

/// Watches the labels of `model` until `shutdown`, judging its Production version when
/// the spec has a `monitor:` section.
pub async fn watch(
    bus: Bus,
    registry: RegistryApi,
    model: String,
    cooldown: Duration,
    shutdown: CancellationToken,
) {
    let durable = subjects::labels_monitor(&model);
    let subject = subjects::labels(&model);
    let judge = Judge {
        bus: bus.clone(),
        registry,
        model,
        cooldown,
        windows: BTreeMap::new(),
        thresholds: BTreeMap::new(),
        new_labels: 0,
        step: 1,
        fired: None,
        firing: false,
    };
    follow(
        &bus,
        subjects::LABELS_STREAM,
        &durable,
        &subject,
        judge,
        shutdown,
    )
    .await;
}

struct Judge {
    bus: Bus,
    registry: RegistryApi,
    model: String,
    cooldown: Duration,
    /// The latest labelled predictions of each version: (probability, label).
    windows: BTreeMap<u32, VecDeque<(f64, u8)>>,
    /// Each version's threshold, as its predictions carry it.
    thresholds: BTreeMap<u32, f64>,
    /// Labels since the last judgement.
    new_labels: usize,
    /// Labels between judgements (and updates of the gauges): a tenth of the monitor's
    /// window.
    step: usize,
    /// The (version, cooldown slot) a retrain was last started for.
    fired: Option<(u32, i64)>,
    /// Whether the alert is firing.
    firing: bool,
}

impl Follower for Judge {
    type Message = Prediction;

    fn model(&self) -> &str {
        &self.model
    }

    async fn take(&mut self, label: Prediction) {
        self.label(label).await;
    }
}

impl Judge {
    /// Adds a label; judges the Production version every tenth of a window.
    async fn label(&mut self, p: Prediction) {
        if !p.labeled {
            return;
        }
        self.thresholds.insert(p.version, p.threshold);
        let window = self.windows.entry(p.version).or_default();
        window.push_back((p.probability, u8::from(p.label == 1)));
        if window.len() > KEPT {
            window.pop_front();
        }
        self.new_labels += 1;
        if self.new_labels < self.step {
            return;
        }
        self.new_labels = 0;
        self.record_live().await;
        // The spec is read once a step, so a monitor added or changed takes effect.
        let monitor = match self.bus.specs().current(&self.model).await {
            Ok(current) => current.and_then(|c| c.spec.monitor),
            Err(e) => {
                warn!(model = %self.model, error = %e, "spec not read; labels not judged");
                None
            }
        };
        self.step = monitor.map_or(NO_MONITOR_STEP, |m| (m.window / 10).max(1));
        let Some(monitor) = monitor else {
            return;
        };
        if let Err(reason) = self.judge(&monitor).await {
            warn!(model = %self.model, %reason, "live performance not judged");
        }
    }

    /// Each version's live figures over the labels kept of it: as OpenTelemetry gauges,
    /// and on `tollgate.live.<model>`, the history the dashboard charts.
    async fn record_live(&self) {
        let metrics = tollgate_telemetry::metrics::get();
        for (&version, window) in &self.windows {
            let (scores, labels): (Vec<f64>, Vec<u8>) = window.iter().copied().unzip();
            let threshold = self.thresholds.get(&version).copied().unwrap_or(0.5);
            let live = tollgate_ml::metrics::live(version, &scores, &labels, threshold);
            let mut figures = vec![
                ("labels", live.labels as f64),
                ("positive_rate", live.positive_rate),
                ("f1", live.f1),
                ("log_loss", live.log_loss),
            ];
            if let Some(auc) = live.auc_roc {
                figures.push(("auc_roc", auc));
            }
            metrics.live(&self.model, version, figures);
            let snapshot = LiveMetrics {
                model: self.model.clone(),
                version,
                labels: live.labels as u64,
                positive_rate: live.positive_rate,
                has_auc_roc: live.auc_roc.is_some(),
                auc_roc: live.auc_roc.unwrap_or_default(),
                f1: live.f1,
                log_loss: live.log_loss,
                at_unix_ms: now_ms(),
            };
            let sent = self
                .bus
                .publish(subjects::live(&self.model), &snapshot, None)
                .await;
            if let Err(e) = sent {
                warn!(model = %self.model, version, error = %e, "live figures not published");
            }
        }
    }

    /// Judges the Production version's latest labels against the monitor's floor.
    async fn judge(&mut self, monitor: &tollgate_spec::monitor::Monitor) -> Result<(), String> {
        let production = production(&self.registry, &self.model).await?;
        let Some(window) = self.windows.get(&production.version) else {
            return Ok(());
        };
        if window.len() < monitor.window {
            return Ok(());
        }
        let latest = window.iter().skip(window.len() - monitor.window);
        let (scores, labels): (Vec<f64>, Vec<u8>) = latest.copied().unzip();
        let Some(auc) = tollgate_ml::metrics::auc_roc(&scores, &labels) else {
            info!(model = %self.model, "the latest labels hold one class; live AUC-ROC not judged");
            return Ok(());
        };
        let summary = format!(
            "live AUC-ROC {auc:.4} of Production v{} over its latest {} labels, monitor.min_auc_roc {}",
            production.version, monitor.window, monitor.min_auc_roc
        );
        if auc >= monitor.min_auc_roc {
            info!(model = %self.model, %summary, "live performance within the monitor's floor");
            if self.firing {
                self.firing = false;
                self.alert(AlertState::Resolved, &summary).await?;
            }
            return Ok(());
        }
        if !self.firing {
            self.firing = true;
            self.alert(AlertState::Firing, &summary).await?;
        }
        let slot = now_ms() / self.cooldown.as_millis().max(1) as i64;
        if self.fired == Some((production.version, slot)) {
            info!(model = %self.model, %summary, "live performance still low; retraining already started");
            return Ok(());
        }
        self.fired = Some((production.version, slot));
        let spec = self
            .bus
            .specs()
            .current(&self.model)
            .await
            .map_err(|e| e.to_string())?
            .map(|c| c.spec)
            .ok_or("no spec applied for the model")?;
        let id = subjects::trigger_ids::live_performance(&self.model, production.version, slot);
        let reason = format!("live performance fell: {summary}");
        match retrain(&self.bus, &spec, &production, id, reason).await? {
            Some(id) => {
                warn!(model = %self.model, %summary, trigger = %id, "live performance fell under the monitor's floor; retraining")
            }
            None => {
                warn!(model = %self.model, %summary, "live performance low; the spec has no drift plan, so nothing retrains (add triggers.drift to tollgate.yaml)")
            }
        }
        Ok(())
    }

    /// Publishes the `live_auc_roc` alert's change of state.
    async fn alert(&self, state: AlertState, summary: &str) -> Result<(), String> {
        let rule = subjects::Alert::LiveAucRoc;
        let alert = Alert {
            rule: rule.name().into(),
            model: self.model.clone(),
            state: state as i32,
            summary: format!("{}: {summary}", self.model),
            at_unix_ms: now_ms(),
            ..Default::default()
        };
        self.bus
            .publish(subjects::alert(rule), &alert, None)
            .await
            .map_err(|e| format!("{} alert not published: {e}", rule.name()))
    }
}
