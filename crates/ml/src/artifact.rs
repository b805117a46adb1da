//! The model artifact: one versioned binary holding the fitted feature pipeline, the model
//! and its lineage. Layout: the 8 bytes `TOLLGATE`, a little-endian `u16` format version,
//! then the postcard encoding of [`Artifact`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    features::{FeaturePipeline, Record},
    model::LogisticModel,
};

/// Leading bytes of every artifact.
pub const MAGIC: &[u8; 8] = b"TOLLGATE";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Why an artifact could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Not a Tollgate artifact at all.
    #[error("not a Tollgate model artifact (bad magic bytes)")]
    NotAnArtifact,
    /// Written by another format version.
    #[error(
        "artifact format version {found} is not supported by this build (it reads version {FORMAT_VERSION})"
    )]
    Version {
        /// The version found in the file.
        found: u16,
    },
    /// The body did not decode.
    #[error("artifact is corrupt: {0}")]
    Corrupt(String),
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
}

/// A raw record and the probability the trainer's model gave it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Golden {
    /// The raw record.
    pub record: Record,
    /// P(label = 1) at training.
    pub probability: f64,
}

impl Artifact {
    /// The columns the model reads and its target.
    pub fn columns(&self) -> crate::features::Columns {
        self.pipeline
            .columns(&self.meta.target, self.meta.positive_label.clone())
    }

    /// P(label = 1) for one raw record.
    pub fn score(&self, record: &Record) -> f64 {
        self.pipeline.score(&self.model, record)
    }
}

/// A trained model with everything needed to score raw records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Artifact {
    /// The fitted feature pipeline.
    pub pipeline: FeaturePipeline,
    /// The fitted model.
    pub model: LogisticModel,
    /// Lineage and metrics.
    pub meta: ArtifactMeta,
}

impl Artifact {
    /// Serializes the artifact in the current format.
    pub fn encode(&self) -> Result<Vec<u8>, ArtifactError> {
        let body = postcard::to_stdvec(self).map_err(|e| ArtifactError::Corrupt(e.to_string()))?;
        let mut out = Vec::with_capacity(body.len() + 10);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Reads an artifact, refusing other format versions.
    pub fn decode(bytes: &[u8]) -> Result<Self, ArtifactError> {
        if bytes.len() < 10 || &bytes[..8] != MAGIC {
            return Err(ArtifactError::NotAnArtifact);
        }
        let found = u16::from_le_bytes([bytes[8], bytes[9]]);
        if found != FORMAT_VERSION {
            return Err(ArtifactError::Version { found });
        }
        postcard::from_bytes(&bytes[10..]).map_err(|e| ArtifactError::Corrupt(e.to_string()))
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

/// sha256 of bytes, hex.
pub fn digest(bytes: &[u8]) -> String {
    tollgate_spec::sha256_hex(bytes)
}
