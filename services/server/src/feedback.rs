//! Labels for what the server scored: every scored record is kept, off the request path,
//! under its model and id in the predictions bucket (`tollgate_pipeline::feedback`), and
//! `POST /v2/models/{name}/feedback` joins the labels sent to them. A full queue drops a
//! prediction (its label then finds nothing), never delays a request.

use futures::StreamExt;
use tokio::sync::mpsc;
use tollgate_bus::{Bus, now_ms};
use tollgate_inference::{
    Scored, ServedModel,
    http::{FeedbackReply, LabelIn, Observer},
};
use tollgate_pipeline::{
    Stores,
    feedback::{FeedbackError, Label},
};
use tollgate_proto::Prediction;
use tracing::warn;

use crate::{sampler::Sampler, shadow::Shadows};

/// Predictions queued for keeping at most; more are dropped.
const QUEUE: usize = 16_384;
/// Predictions written to the bucket at once.
const WRITES_IN_FLIGHT: usize = 64;

/// Keeps scored records for their labels.
#[derive(Debug, Clone)]
pub struct Keeper {
    queue: mpsc::Sender<Prediction>,
}

impl Keeper {
    /// A keeper, and the task that writes what it is given to `bus` (it ends when the
    /// keeper is dropped).
    pub fn start(bus: Bus) -> (Keeper, tokio::task::JoinHandle<()>) {
        let (queue, mut predictions) = mpsc::channel::<Prediction>(QUEUE);
        let writer = tokio::spawn(async move {
            futures::stream::poll_fn(move |cx| predictions.poll_recv(cx))
                .map(|p| {
                    let bus = bus.clone();
                    async move {
                        if let Err(e) = bus.predictions().record(&p).await {
                            warn!(model = %p.model, error = %e, "prediction not kept for its label");
                        }
                    }
                })
                .buffer_unordered(WRITES_IN_FLIGHT)
                .for_each(|()| async {})
                .await;
        });
        (Keeper { queue }, writer)
    }

    /// Queues each record of `scored` by `model`.
    pub fn keep(&self, model: &ServedModel, scored: &Scored) {
        let at = now_ms();
        for (id, &probability) in scored.record_ids().into_iter().zip(&scored.probabilities) {
            let prediction = Prediction {
                model: model.name.clone(),
                version: model.version,
                id,
                probability,
                threshold: model.threshold,
                scored_unix_ms: at,
                ..Default::default()
            };
            if self.queue.try_send(prediction).is_err() {
                tracing::debug!(model = %model.name, "prediction queue full; prediction dropped");
                return;
            }
        }
    }
}

/// The server's [`Observer`]: samples for drift, keeps predictions, mirrors to shadows,
/// joins labels.
#[derive(Clone)]
pub struct Observed {
    /// The drift sampler.
    pub sampler: Sampler,
    /// The predictions keeper; `None` when the server keeps none (`keep_predictions`).
    pub keeper: Option<Keeper>,
    /// The shadows of Production.
    pub shadows: std::sync::Arc<Shadows>,
    /// Where labels are joined.
    pub bus: Bus,
}

impl Observer for Observed {
    fn scored(&self, model: &ServedModel, scored: &Scored, took: std::time::Duration) {
        self.sampler.sample(model, &scored.records);
        if let Some(keeper) = &self.keeper {
            keeper.keep(model, scored);
        }
        self.shadows.scored(model, scored, took);
    }

    fn route(
        &self,
        chosen: std::sync::Arc<ServedModel>,
        key: Option<&str>,
    ) -> std::sync::Arc<ServedModel> {
        self.shadows.route(chosen, key)
    }

    fn failed(&self, model: &ServedModel, records: u64, took: std::time::Duration) {
        self.shadows.failed(model, records, took);
    }

    fn feedback(
        &self,
        model: &ServedModel,
        labels: Vec<LabelIn>,
    ) -> std::pin::Pin<Box<dyn Future<Output = FeedbackReply> + Send + 'static>> {
        let bus = self.bus.clone();
        let name = model.name.clone();
        Box::pin(async move {
            use axum::http::StatusCode;
            let labels: Vec<Label> = labels
                .into_iter()
                .map(|l| Label {
                    id: l.id,
                    label: l.label,
                })
                .collect();
            match bus.predictions().label(&name, &labels).await {
                Ok(joined) => (
                    StatusCode::OK,
                    serde_json::to_value(joined).unwrap_or_default(),
                ),
                Err(FeedbackError::Invalid(e)) => {
                    (StatusCode::BAD_REQUEST, serde_json::json!({ "error": e }))
                }
                Err(FeedbackError::Bus(e)) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "error": format!("labels not recorded: {e}") }),
                ),
            }
        })
    }
}
