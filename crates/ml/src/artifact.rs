//! The model artifact: one versioned binary holding the fitted feature pipeline, the model
//! and its lineage. In the envelope of [`tollgate_spec::envelope`] (magic, format version,
//! body length) the body is the postcard encoding of [`Artifact`] and the trailer that of
//! [`Timing`]: the digest covers the body, not the training time, so the same data, spec
//! and seed give the same digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    features::FeaturePipeline,
    learners::Model,
    table::{Columns, Record, Table},
};

use tollgate_spec::envelope::{self, EnvelopeError};
pub use tollgate_spec::envelope::{FORMAT_VERSION, MAGIC, digest};

/// Why an artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Not an artifact, another format version, or truncated.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The body did not decode.
    #[error("artifact is corrupt: {0}")]
    Corrupt(#[source] postcard::Error),
    /// The bytes do not hash to the digest the registry recorded.
    #[error("artifact digest mismatch: expected {expected}, got {actual}")]
    Digest {
        /// The recorded digest.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
}

/// Where a version came from and how it scored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactMeta {
    /// Model name.
    pub model: String,
    /// sha256 of the spec text.
    pub spec_digest: String,
    /// sha256 of the dataset file.
    pub dataset_digest: String,
    /// Code commit the spec came from.
    pub code_commit: String,
    /// Held-out metrics at training.
    pub metrics: BTreeMap<String, f64>,
    /// The split seed, so the gate can rebuild the test set.
    pub split_seed: u64,
    /// The held-out share.
    pub test_fraction: f64,
    /// Rows the model was fitted on.
    pub train_rows: u64,
    /// The target column.
    pub target: String,
    /// For a text target, the value that means 1.
    pub positive_label: Option<String>,
    /// The F1-optimal threshold on the held-out rows (used when the spec says `optimal`).
    pub optimal_threshold: f64,
    /// Held-out records with the probabilities the trainer computed: the integration
    /// test checks that the deployed model reproduces them.
    pub golden: Vec<Golden>,
    /// The algorithm with its hyper-parameters, e.g. `random_forest(trees=50, ...)`.
    pub algorithm: String,
    /// How the algorithm was chosen, when the spec listed candidates.
    pub selection: Option<Selection>,
    /// Wall time of training in seconds. Kept in the trailer, outside the digest.
    #[serde(skip)]
    pub training_seconds: f64,
}

/// The candidates a version was chosen among.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Selection {
    /// The metric that chose, measured on the validation fold.
    pub metric: String,
    /// Each candidate and its value of the metric, in the spec's order.
    pub scores: Vec<(String, f64)>,
}

/// What varies between two trainings of the same data, spec and seed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    /// Wall time of training in seconds.
    pub training_seconds: f64,
}

/// A raw record and the probability the trainer's model gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Golden {
    /// The raw record.
    pub record: Record,
    /// P(label = 1) at training.
    pub probability: f64,
}

/// P(label = 1) for rows of `table` through `pipeline` and `model`: the one path from
/// raw values to a probability, which the trainer, the gate and inference all take.
pub fn score_rows(
    pipeline: &FeaturePipeline,
    model: &Model,
    table: &Table,
    rows: &[usize],
) -> Vec<f64> {
    let mut buf = vec![0.0; pipeline.width()];
    rows.iter()
        .map(|&i| {
            pipeline.encode_row(table, i, &mut buf);
            model.predict(&buf)
        })
        .collect()
}

impl Artifact {
    /// The columns the model reads and its target.
    pub fn columns(&self) -> Columns {
        self.pipeline
            .columns(&self.meta.target, self.meta.positive_label.clone())
    }

    /// P(label = 1) for one raw record.
    pub fn score(&self, record: &Record) -> f64 {
        let mut buf = vec![0.0; self.pipeline.width()];
        self.pipeline.encode(record, &mut buf);
        self.model.predict(&buf)
    }

    /// P(label = 1) for rows of `table`.
    pub fn score_rows(&self, table: &Table, rows: &[usize]) -> Vec<f64> {
        score_rows(&self.pipeline, &self.model, table, rows)
    }
}

/// A trained model with everything needed to score raw records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    /// The fitted feature pipeline.
    pub pipeline: FeaturePipeline,
    /// The fitted model.
    pub model: Model,
    /// Lineage and metrics.
    pub meta: ArtifactMeta,
}

impl Artifact {
    /// Serializes the artifact in the current format.
    pub fn encode(&self) -> Result<Vec<u8>, ArtifactError> {
        let corrupt = ArtifactError::Corrupt;
        let body = postcard::to_stdvec(self).map_err(corrupt)?;
        let trailer = postcard::to_stdvec(&Timing {
            training_seconds: self.meta.training_seconds,
        })
        .map_err(corrupt)?;
        Ok(envelope::seal(&body, &trailer)?)
    }

    /// Reads an artifact, refusing other format versions.
    pub fn decode(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let (body, trailer) = envelope::open(bytes)?;
        let mut artifact: Artifact = postcard::from_bytes(body).map_err(ArtifactError::Corrupt)?;
        let timing: Timing = postcard::from_bytes(trailer).map_err(ArtifactError::Corrupt)?;
        artifact.meta.training_seconds = timing.training_seconds;
        Ok(artifact)
    }

    /// Reads an artifact after checking its bytes against `expected_digest`.
    pub fn decode_verified(bytes: &[u8], expected_digest: &str) -> Result<Self, ArtifactError> {
        let actual = digest(bytes);
        if actual != expected_digest {
            return Err(ArtifactError::Digest {
                expected: expected_digest.into(),
                actual,
            });
        }
        Self::decode(bytes)
    }
}
