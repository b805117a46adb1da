//! Drift of served traffic: windows of the inputs the Production version scored, profiled
//! and compared with that version's reference profile by the same code validation uses.
//! A drifted window publishes `tollgate.trigger.drift`, and the spec's drift plan
//! retrains; one trigger per Production version and cooldown, however many replicas
//! watch.

use std::time::Duration;
use tollgate_pipeline::Stores;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Bus, codec::decode_delivery, subjects};
use tollgate_ml::{
    drift::{DriftReport, drift},
    profile::{Profile, of_table},
    table::{Record, Table},
};
use tollgate_proto::{
    LatestByStageRequest, ModelStage, RegistryApi, ServedSample, Trigger, TriggerKind,
};
use tracing::{info, warn};

use crate::sampler::records_of;

/// How a monitor judges served traffic.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Records per compared window.
    pub window: usize,
    /// How long after a drift trigger the same Production version may raise another.
    pub cooldown: Duration,
}

/// Sampled Production records of one version, in arrival order.
#[derive(Debug, Default)]
struct Window {
    version: u32,
    numeric_names: Vec<String>,
    categorical_names: Vec<String>,
    records: Vec<Record>,
}

impl Window {
    /// Adds a sample; a sample of another version or feature set starts a new window.
    fn push(&mut self, sample: &ServedSample) {
        if sample.version != self.version
            || sample.numeric_names != self.numeric_names
            || sample.categorical_names != self.categorical_names
        {
            *self = Window {
                version: sample.version,
                numeric_names: sample.numeric_names.clone(),
                categorical_names: sample.categorical_names.clone(),
                records: Vec::new(),
            };
        }
        self.records.extend(records_of(sample));
    }

    /// The profile of the window's records.
    fn profile(&self) -> Profile {
        let n = self.records.len();
        let table = Table {
            numeric: (0..self.numeric_names.len())
                .map(|j| self.records.iter().map(|r| r.numeric[j]).collect())
                .collect(),
            categorical: (0..self.categorical_names.len())
                .map(|j| {
                    self.records
                        .iter()
                        .map(|r| r.categorical[j].as_deref())
                        .collect()
                })
                .collect(),
            target: Vec::new(),
            coerced: Vec::new(),
        };
        let rows: Vec<usize> = (0..n).collect();
        of_table(&table, &self.numeric_names, &self.categorical_names, &rows)
    }
}

/// What one of a model's shared durable consumers feeds: its decoded messages, one at a
/// time.
pub(crate) trait Follower {
    /// The message type on the followed subject.
    type Message: tollgate_proto::prost::Message + Default;
    /// The model followed, for logs.
    fn model(&self) -> &str;
    /// Takes one message (acked already: a message is judged at most once).
    fn take(&mut self, message: Self::Message) -> impl std::future::Future<Output = ()> + Send;
}

/// Feeds `follower` the messages on `subject` of `stream` through the durable consumer
/// `durable` until `shutdown`: the servers of a model share it, so each message is taken
/// once.
pub(crate) async fn follow<F: Follower>(
    bus: &Bus,
    stream: &str,
    durable: &str,
    subject: &str,
    mut follower: F,
    shutdown: CancellationToken,
) {
    let consumer = bus.durable(stream, durable, subject).await;
    let messages = match consumer {
        Ok(c) => c.messages().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut messages = match messages {
        Ok(m) => m,
        Err(e) => {
            warn!(model = follower.model(), %subject, error = %e, "not followed");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            next = messages.next() => match next {
                None => break,
                Some(Err(e)) => {
                    warn!(model = follower.model(), %subject, error = %e, "not read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Some(Ok(message)) => {
                    let decoded = decode_delivery::<F::Message>(&message.payload, message.headers.as_ref());
                    if let Err(e) = message.ack().await {
                        warn!(model = follower.model(), %subject, error = %e, "not acked");
                    }
                    match decoded {
                        Ok(m) => follower.take(m).await,
                        Err(e) => warn!(model = follower.model(), %subject, error = %e, "unreadable message skipped"),
                    }
                }
            }
        }
    }
}

/// Watches the served inputs of `model` until `shutdown`: the servers of a model share
/// one durable consumer, so each sample is judged once.
pub async fn watch(
    bus: Bus,
    registry: RegistryApi,
    model: String,
    settings: Settings,
    shutdown: CancellationToken,
) {
    let durable = subjects::served_monitor(&model);
    let subject = subjects::served(&model);
    let monitor = Monitor {
        bus: bus.clone(),
        registry,
        model,
        settings,
        window: Window::default(),
        fired: None,
    };
    follow(
        &bus,
        subjects::SERVED_STREAM,
        &durable,
        &subject,
        monitor,
        shutdown,
    )
    .await;
}

struct Monitor {
    bus: Bus,
    registry: RegistryApi,
    model: String,
    settings: Settings,
    window: Window,
    /// The (version, cooldown slot) a trigger was last published for.
    fired: Option<(u32, i64)>,
}

impl Follower for Monitor {
    type Message = ServedSample;

    fn model(&self) -> &str {
        &self.model
    }

    async fn take(&mut self, sample: ServedSample) {
        self.sample(&sample).await;
    }
}

impl Monitor {
    /// Adds a Production sample; judges the window once it is full.
    async fn sample(&mut self, sample: &ServedSample) {
        if sample.served_as != "Production" {
            return;
        }
        self.window.push(sample);
        if self.window.records.len() >= self.settings.window {
            let full = std::mem::take(&mut self.window);
            self.window = Window {
                version: full.version,
                numeric_names: full.numeric_names.clone(),
                categorical_names: full.categorical_names.clone(),
                records: Vec::new(),
            };
            if let Err(reason) = self.judge(full).await {
                warn!(model = %self.model, %reason, "served window not judged");
            }
        }
    }

    /// Compares a full window with the Production version's reference profile, and
    /// publishes a drift trigger when it drifted.
    async fn judge(&mut self, window: Window) -> Result<(), String> {
        let production = production(&self.registry, &self.model).await?;
        if production.version != window.version {
            info!(model = %self.model, window_version = window.version, production = production.version, "window scored by a version no longer in Production; not compared");
            return Ok(());
        }
        let reference: Profile =
            serde_json::from_str(&production.reference_profile_json).map_err(|_| {
                format!(
                    "Production v{} has no reference profile",
                    production.version
                )
            })?;
        let spec = match self.bus.specs().current(&self.model).await {
            Ok(Some(p)) => p.spec,
            Ok(None) => return Err("no spec published for the model".into()),
            Err(e) => return Err(e.to_string()),
        };
        let rows = window.records.len();
        let current = tokio::task::spawn_blocking(move || window.profile())
            .await
            .map_err(|e| format!("profiling stopped: {e}"))?;
        let report = drift(&reference, &current, &spec.drift);
        let summary = summary(&report, production.version, rows);
        if !report.drifted {
            info!(model = %self.model, %summary, "served traffic within drift thresholds");
            return Ok(());
        }
        let cooldown_ms = self.settings.cooldown.as_millis().max(1) as i64;
        let slot = tollgate_bus::now_ms() / cooldown_ms;
        if self.fired == Some((production.version, slot)) {
            info!(model = %self.model, %summary, "served traffic still drifted; retraining already started");
            return Ok(());
        }
        self.fired = Some((production.version, slot));
        let id = subjects::trigger_ids::served_drift(&self.model, production.version, slot);
        let reason = format!("served traffic drifted: {summary}");
        match retrain(&self.bus, &spec, &production, id, reason).await? {
            Some(id) => {
                warn!(model = %self.model, %summary, trigger = %id, "served traffic drifted; retraining")
            }
            None => {
                warn!(model = %self.model, %summary, "served traffic drifted; the spec has no drift plan, so nothing retrains (add triggers.drift to tollgate.yaml)")
            }
        }
        Ok(())
    }
}

/// The Production version of `model`, as the registry has it now.
pub(crate) async fn production(
    registry: &RegistryApi,
    model: &str,
) -> Result<tollgate_proto::ModelVersion, String> {
    let asked = LatestByStageRequest {
        model: model.into(),
        stage: ModelStage::Production as i32,
    };
    match registry.clone().latest_by_stage(asked).await {
        Ok(v) => Ok(v.into_inner()),
        Err(s) => Err(format!("Production version not found: {}", s.message())),
    }
}

/// Starts `spec`'s drift plan on the Production version `production` with the trigger
/// `trigger_id` (one per version and cooldown slot, whichever replica sends it) and
/// `reason`; `None` when the spec has no drift plan.
pub(crate) async fn retrain(
    bus: &Bus,
    spec: &tollgate_spec::ModelSpec,
    production: &tollgate_proto::ModelVersion,
    trigger_id: String,
    reason: String,
) -> Result<Option<String>, String> {
    if spec.plan(TriggerKind::Drift).is_none() {
        return Ok(None);
    }
    let trigger = Trigger {
        trigger_id,
        kind: TriggerKind::Drift as i32,
        model: production.model.clone(),
        // With a data source the trigger-watcher takes its newest dataset; without one,
        // the retrain reads the data the Production version was trained on.
        dataset_uri: if spec.data.is_some() {
            String::new()
        } else {
            production.dataset_uri.clone()
        },
        reason,
        requested_by: "server".into(),
        created_unix_ms: tollgate_bus::now_ms(),
        ..Default::default()
    };
    let id = trigger.trigger_id.clone();
    bus.publish(subjects::trigger(TriggerKind::Drift), &trigger, Some(&id))
        .await
        .map_err(|e| format!("retrain trigger not published: {e}"))?;
    Ok(Some(id))
}

/// "2 of 7 columns drifted from Production v3 over 500 served records (tenure, age)".
fn summary(report: &DriftReport, version: u32, rows: usize) -> String {
    let drifted: Vec<&str> = report
        .columns
        .iter()
        .filter(|c| c.drifted)
        .map(|c| c.column.as_str())
        .collect();
    format!(
        "{} of {} columns drifted from Production v{version} over {rows} served records{}",
        drifted.len(),
        report.columns.len(),
        if drifted.is_empty() {
            String::new()
        } else {
            format!(" ({})", drifted.join(", "))
        }
    )
}
