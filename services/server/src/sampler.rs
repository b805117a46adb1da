//! Sampling what the server scores: a share of records goes, off the request path, to
//! `tollgate.served.<model>` for the drift monitors. A full queue drops the sample, never
//! delays a request.

use tokio::sync::mpsc;
use tollgate_bus::{Bus, subjects};
use tollgate_inference::ServedModel;
use tollgate_ml::table::Record;
use tollgate_proto::{ServedRecord, ServedSample};
use tracing::warn;

/// Samples queued for publishing at most; more are dropped.
const QUEUE: usize = 1024;

/// Records one sample carries at most, so a large batch's sample stays well under NATS'
/// message size (the monitor's windows fill from many requests anyway).
pub const MAX_SAMPLE_RECORDS: usize = 256;

/// Picks scored records at random with probability `share` for the drift monitors.
#[derive(Debug, Clone)]
pub struct Sampler {
    queue: mpsc::Sender<ServedSample>,
    share: f64,
}

impl Sampler {
    /// A sampler of `share` of the records, and the task that publishes its samples on
    /// `bus` (it ends when the sampler is dropped).
    pub fn start(bus: Bus, share: f64) -> (Sampler, tokio::task::JoinHandle<()>) {
        let (queue, mut samples) = mpsc::channel::<ServedSample>(QUEUE);
        let publisher = tokio::spawn(async move {
            while let Some(sample) = samples.recv().await {
                let subject = subjects::served(&sample.model);
                if let Err(e) = bus.publish(subject, &sample, None).await {
                    warn!(model = %sample.model, error = %e, "served sample not published");
                }
            }
        });
        (Sampler { queue, share }, publisher)
    }
}

/// The sample message of `records` scored by `model`.
pub fn sample_of(model: &ServedModel, records: &[&Record]) -> ServedSample {
    let columns = model.columns();
    ServedSample {
        model: model.name.clone(),
        version: model.version,
        served_as: model.served_as.clone(),
        at_unix_ms: tollgate_bus::now_ms(),
        numeric_names: columns.numeric.clone(),
        categorical_names: columns.categorical.clone(),
        records: records
            .iter()
            .map(|r| ServedRecord {
                numeric: r.numeric.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
                categorical: r
                    .categorical
                    .iter()
                    .map(|v| v.clone().unwrap_or_default())
                    .collect(),
                missing_categorical: (r.categorical.iter().enumerate())
                    .filter(|(_, v)| v.is_none())
                    .map(|(j, _)| j as u32)
                    .collect(),
            })
            .collect(),
    }
}

/// The records of a sample, as the pipeline reads them.
pub fn records_of(sample: &ServedSample) -> Vec<Record> {
    sample
        .records
        .iter()
        .map(|r| Record {
            numeric: r
                .numeric
                .iter()
                .map(|&x| Some(x).filter(|x| !x.is_nan()))
                .collect(),
            categorical: (r.categorical.iter().enumerate())
                .map(|(j, v)| (!r.missing_categorical.contains(&(j as u32))).then(|| v.clone()))
                .collect(),
        })
        .collect()
}

impl Sampler {
    /// Samples `records`, scored by `model`, off the request path.
    pub fn sample(&self, model: &ServedModel, records: &[Record]) {
        if self.share <= 0.0 {
            return;
        }
        let picked: Vec<&Record> = records
            .iter()
            .filter(|_| self.share >= 1.0 || rand::random::<f64>() < self.share)
            .take(MAX_SAMPLE_RECORDS)
            .collect();
        if picked.is_empty() {
            return;
        }
        if self.queue.try_send(sample_of(model, &picked)).is_err() {
            tracing::debug!(model = %model.name, "sample queue full; sample dropped");
        }
    }
}
