//! Labels joined to what a model server scored: the `tollgate_predictions` bucket, which
//! this module owns, keeps each scored record under its model and id for the retention
//! window; a label naming that id marks the record labelled (once: a second label for it
//! is a duplicate) and publishes it on `tollgate.labels.<model>`, the stream live metrics
//! are read from. The model server's feedback endpoint and `tollgate feedback push` both
//! come here.

use futures::StreamExt;
use tollgate_bus::{
    Bus, BusError,
    codec::{read_versioned, write_versioned},
    now_ms,
    subjects::{self, Bucket},
};
use tollgate_proto::Prediction;

/// Labels one call takes at most.
pub const MAX_LABELS: usize = 100_000;

/// Labels joined at once.
const JOINS_IN_FLIGHT: usize = 64;

/// One label: the id of a scored record (the response's `id`, or `<id>:<row>` within a
/// batch) and its true class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The scored record's id.
    pub id: String,
    /// 0 or 1.
    pub label: u8,
}

/// What became of a batch of labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Joined {
    /// Labels joined to their prediction and recorded.
    pub accepted: usize,
    /// Labels for a prediction already labelled: not counted again.
    pub duplicate: usize,
    /// Ids no kept prediction has (never scored here, or older than the retention window).
    pub unknown: Vec<String>,
}

/// Why labels were refused before any was recorded.
#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// The labels are not acceptable, as this says.
    #[error("{0}")]
    Invalid(String),
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// The predictions bucket.
pub struct Predictions<'a>(pub(crate) &'a Bus);

impl Predictions<'_> {
    /// Keeps a scored record for its label (a record with the same id replaces it).
    pub async fn record(&self, prediction: &Prediction) -> Result<(), BusError> {
        let key = subjects::prediction_key(&prediction.model, &prediction.id)
            .map_err(|e| BusError::store("keeping a prediction", e))?;
        let kv = self.0.key_value(Bucket::Predictions);
        kv.put(&key, prost::Message::encode_to_vec(prediction).into())
            .await
            .map_err(|e| BusError::store(format!("keeping prediction {key}"), e))?;
        Ok(())
    }

    /// Joins each label to `model`'s prediction of that id and publishes the labelled
    /// prediction. The batch is checked whole first: a bad label refuses all.
    pub async fn label(&self, model: &str, labels: &[Label]) -> Result<Joined, FeedbackError> {
        if labels.len() > MAX_LABELS {
            return Err(FeedbackError::Invalid(format!(
                "{} labels in one call; at most {MAX_LABELS}",
                labels.len()
            )));
        }
        let mut keys = Vec::with_capacity(labels.len());
        for l in labels {
            if l.label > 1 {
                return Err(FeedbackError::Invalid(format!(
                    "label of {:?} is {}: a label is 0 or 1",
                    l.id, l.label
                )));
            }
            keys.push(
                subjects::prediction_key(model, &l.id)
                    .map_err(|e| FeedbackError::Invalid(format!("id {:?}: {e}", l.id)))?,
            );
        }
        // Each label is its own read, publish and compare-and-set: many at once, their
        // outcomes taken in the labels' order.
        let mut pending = Vec::with_capacity(labels.len());
        for (l, key) in labels.iter().zip(&keys) {
            pending.push(async move { (l, self.join(key, l.label).await) });
        }
        let mut outcomes = futures::stream::iter(pending).buffered(JOINS_IN_FLIGHT);
        let mut joined = Joined::default();
        while let Some((l, outcome)) = outcomes.next().await {
            match outcome? {
                Some(true) => joined.accepted += 1,
                Some(false) => joined.duplicate += 1,
                None => joined.unknown.push(l.id.clone()),
            }
        }
        Ok(joined)
    }

    /// Labels the prediction at `key`: `None` when there is none, `Some(false)` when it
    /// was labelled already.
    async fn join(&self, key: &str, label: u8) -> Result<Option<bool>, BusError> {
        let kv = self.0.key_value(Bucket::Predictions);
        loop {
            let (mut p, revision) = read_versioned::<Prediction>(&kv, key, "Prediction").await?;
            let Some(revision) = revision.filter(|_| !p.model.is_empty()) else {
                return Ok(None);
            };
            if p.labeled {
                return Ok(Some(false));
            }
            p.labeled = true;
            p.label = u32::from(label);
            p.labeled_unix_ms = now_ms();
            // Published first: a label recorded in the bucket is always in the stream
            // (a retry after a failure here finds it unlabelled and publishes again,
            // deduplicated by its message id).
            self.0
                .publish(
                    subjects::labels(&p.model),
                    &p,
                    Some(&subjects::msg_id::label(key)),
                )
                .await?;
            if write_versioned(&kv, key, &p, Some(revision)).await? {
                return Ok(Some(true));
            }
        }
    }
}

/// Every labelled prediction of `model` the labels stream keeps, oldest first.
pub async fn labelled(bus: &Bus, model: &str) -> Result<Vec<Prediction>, BusError> {
    bus.read_all(
        subjects::LABELS_STREAM,
        &subjects::labels(model),
        "Prediction",
    )
    .await
}
