//! The model artifact: one versioned binary holding what scores (the fitted feature
//! pipeline and a built-in model, or an ONNX model bound to the spec's features) and its
//! lineage. In the envelope of [`tollgate_spec::envelope`] (magic, format version, body
//! length) the body is the postcard encoding of [`Artifact`] and the trailer that of
//! [`Timing`]: the digest covers the body, not the training time, so the same data, spec
//! and seed give the same digest. Version 2 files (built-in models, before ONNX) still
//! read.
//!
//! [`Score`] is the one way from raw records to probabilities: the trainer, the gate, the
//! promoter, `tollgate predict` and the model server all score through it, whatever made
//! the model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    features::FeaturePipeline,
    learners::Model,
    onnx::{OnnxError, OnnxModel, Records, Rows, TableRows},
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
    /// The body decoded, but its ONNX model does not load or fit the spec.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
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

/// What made a version's model.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum Origin {
    /// One of Tollgate's built-in learners.
    #[default]
    Trained,
    /// The spec's training command (`algorithm: {kind: command}`).
    Command,
    /// A model trained elsewhere and uploaded with the trigger (`publish --model FILE`).
    Uploaded,
}

impl Origin {
    /// The word lineage shows: `trained`, `command` or `uploaded`.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Trained => "trained",
            Origin::Command => "command",
            Origin::Uploaded => "uploaded",
        }
    }
}

/// Where a version's code came from, beside [`ArtifactMeta`]'s data and spec digests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lineage {
    /// What made the model.
    pub origin: Origin,
    /// The sha256 of the snapshot of the spec's folder the run carried; empty without one.
    pub code_digest: String,
    /// The sha256 of the uploaded ONNX file, for an uploaded model.
    pub model_digest: String,
}

/// Why a model could not score.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// The ONNX model failed or refused a value.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
}

/// Raw records in, P(label = 1) out: the trait every stage and the server score through.
pub trait Score {
    /// P(label = 1) for each of `rows`.
    fn score_all(&self, rows: &dyn Rows) -> Result<Vec<f64>, ScoreError>;

    /// P(label = 1) for `records`.
    fn score_records(&self, records: &[Record]) -> Result<Vec<f64>, ScoreError> {
        self.score_all(&Records(records))
    }

    /// P(label = 1) for rows `rows` of `table`.
    fn score_rows(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, ScoreError> {
        self.score_all(&TableRows { table, rows })
    }

    /// P(label = 1) for one record.
    fn score(&self, record: &Record) -> Result<f64, ScoreError> {
        let p = self.score_records(std::slice::from_ref(record))?;
        Ok(p.first().copied().unwrap_or(f64::NAN))
    }
}

/// A built-in model: the fitted feature pipeline and a Tollgate learner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Builtin {
    /// The fitted feature pipeline.
    pub pipeline: FeaturePipeline,
    /// The fitted model.
    pub model: Model,
}

impl Builtin {
    /// P(label = 1) for one record, infallibly.
    pub fn predict(&self, record: &Record) -> f64 {
        let mut buf = vec![0.0; self.pipeline.width()];
        self.pipeline.encode(record, &mut buf);
        self.model.predict(&buf)
    }
}

impl Score for Builtin {
    fn score_all(&self, rows: &dyn Rows) -> Result<Vec<f64>, ScoreError> {
        let mut buf = vec![0.0; self.pipeline.width()];
        Ok((0..rows.len())
            .map(|r| {
                self.pipeline.encode_values(
                    (0..self.pipeline.numeric.len()).map(|f| rows.number(f, r)),
                    (0..self.pipeline.categorical.len()).map(|f| rows.text(f, r)),
                    &mut buf,
                );
                self.model.predict(&buf)
            })
            .collect())
    }

    fn score_rows(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, ScoreError> {
        Ok(score_rows(&self.pipeline, &self.model, table, rows))
    }

    fn score(&self, record: &Record) -> Result<f64, ScoreError> {
        Ok(self.predict(record))
    }
}

impl Score for OnnxModel {
    fn score_all(&self, rows: &dyn Rows) -> Result<Vec<f64>, ScoreError> {
        Ok(OnnxModel::score(self, rows)?)
    }
}

/// What scores: a built-in model or an ONNX model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Scorer {
    /// The feature pipeline and a built-in learner.
    Builtin(Builtin),
    /// An ONNX model bound to the spec's features.
    Onnx(OnnxModel),
}

impl Scorer {
    fn as_score(&self) -> &dyn Score {
        match self {
            Scorer::Builtin(b) => b,
            Scorer::Onnx(o) => o,
        }
    }
}

/// A trained model with everything needed to score raw records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    /// What scores.
    pub scorer: Scorer,
    /// Lineage and metrics.
    pub meta: ArtifactMeta,
    /// What made the model, and from which code.
    pub lineage: Lineage,
}

/// A version 2 artifact: a built-in model, before ONNX.
#[derive(Deserialize)]
struct ArtifactV2 {
    pipeline: FeaturePipeline,
    model: Model,
    meta: ArtifactMeta,
}

/// P(label = 1) for rows of `table` through `pipeline` and `model`: the built-in path
/// from raw values to a probability, without copying rows out.
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

impl Score for Artifact {
    fn score_all(&self, rows: &dyn Rows) -> Result<Vec<f64>, ScoreError> {
        self.scorer.as_score().score_all(rows)
    }

    fn score_rows(&self, table: &Table, rows: &[usize]) -> Result<Vec<f64>, ScoreError> {
        self.scorer.as_score().score_rows(table, rows)
    }

    fn score(&self, record: &Record) -> Result<f64, ScoreError> {
        self.scorer.as_score().score(record)
    }
}

impl Artifact {
    /// The columns the model reads and its target.
    pub fn columns(&self) -> Columns {
        let (target, positive) = (&self.meta.target, self.meta.positive_label.clone());
        match &self.scorer {
            Scorer::Builtin(b) => b.pipeline.columns(target, positive),
            Scorer::Onnx(o) => Columns {
                numeric: o.binding().numeric.clone(),
                categorical: o.binding().categorical.clone(),
                target: target.clone(),
                positive_label: positive,
            },
        }
    }

    /// Each feature's datatype in the Open Inference Protocol's words, numeric features
    /// first: FP64 and BYTES for a built-in model, what an ONNX model declares.
    pub fn datatypes(&self) -> Vec<(String, &'static str)> {
        match &self.scorer {
            Scorer::Builtin(b) => (b.pipeline.numeric.iter().map(|f| (f.name.clone(), "FP64")))
                .chain(
                    b.pipeline
                        .categorical
                        .iter()
                        .map(|f| (f.name.clone(), "BYTES")),
                )
                .collect(),
            Scorer::Onnx(o) => o.binding().datatypes(),
        }
    }

    /// The model's format, for tables: `tollgate` or `onnx`.
    pub fn format(&self) -> &'static str {
        match self.scorer {
            Scorer::Builtin(_) => "tollgate",
            Scorer::Onnx(_) => "onnx",
        }
    }

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

    /// Reads an artifact of a format this build reads.
    pub fn decode(bytes: &[u8]) -> Result<Self, ArtifactError> {
        let (version, body, trailer) = envelope::open(bytes)?;
        let mut artifact: Artifact = if version == 2 {
            let old: ArtifactV2 = postcard::from_bytes(body).map_err(ArtifactError::Corrupt)?;
            Artifact {
                scorer: Scorer::Builtin(Builtin {
                    pipeline: old.pipeline,
                    model: old.model,
                }),
                meta: old.meta,
                lineage: Lineage::default(),
            }
        } else {
            postcard::from_bytes(body).map_err(ArtifactError::Corrupt)?
        };
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
