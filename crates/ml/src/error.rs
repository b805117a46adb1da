//! The error of training and grading, shared by [`crate::train`] and [`crate::grade`].

use crate::{data::DataError, learners::LearnError};

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
}

impl ModelError {
    /// Whether training stopped because it was asked to (shutdown), not because it failed.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, ModelError::Learn(LearnError::Interrupted))
    }
}
