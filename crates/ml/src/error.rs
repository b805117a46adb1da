//! The error of training and grading, shared by [`crate::train`] and [`crate::grade`].

use crate::{artifact::ScoreError, data::DataError, learners::LearnError, onnx::OnnxError};

/// Why training or evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The data could not be read or used.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The learner could not fit the data.
    #[error(transparent)]
    Learn(#[from] LearnError),
    /// The data cannot train or test a binary classifier.
    #[error("cannot train: {0}")]
    Train(String),
    /// The model could not score.
    #[error(transparent)]
    Score(#[from] ScoreError),
}

impl From<OnnxError> for ModelError {
    fn from(e: OnnxError) -> Self {
        ModelError::Score(e.into())
    }
}

impl ModelError {
    /// Whether training stopped because it was asked to (shutdown), not because it failed.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, ModelError::Learn(LearnError::Interrupted))
    }
}
