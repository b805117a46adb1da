//! Tollgate's data and model code, shared by the data-validator, trainer, gate and CLI so
//! that `tollgate validate` / `train` on a laptop and the services in the cluster run the
//! very same engine.
//!
//! # Layout
//! - [`data`]: scanning Parquet and CSV with polars, extracting typed columns.
//! - [`validate`]: the expectation suite as polars aggregations.
//! - [`synth`]: the seeded synthetic churn dataset.
//! - [`split`]: the seeded train/test split the trainer and gate share.
//! - [`features`]: the fitted feature pipeline (impute, standardize, one-hot).
//! - [`learners`]: the algorithms (logistic regression, trees, forests, naive Bayes),
//!   fitted with linfa and stored as plain parameters.
//! - [`model`]: training the spec's algorithm or the best candidate, and grading.
//! - [`metrics`]: AUC-ROC, F1 and friends.
//! - [`artifact`]: the versioned binary artifact format.
//! - [`profile`]: column profiles, the reference for drift.
//! - [`drift`]: drift scores of a profile against a reference profile.

pub mod artifact;
pub mod data;
pub mod drift;
pub mod features;
pub mod learners;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod split;
pub mod synth;
pub mod validate;

pub use data::DataError;
