//! Tollgate's data and model code, shared by the data-validator, trainer, gate and CLI so
//! that `tollgate validate` / `train` on a laptop and the services in the cluster run the
//! very same engine.
//!
//! # Layout
//! From the ground up; a module imports only from the layers below it.
//! 1. [`data`] (scanning Parquet and CSV with polars, typed columns), [`table`] (a
//!    dataset's feature and target columns as vectors), [`metrics`] (AUC-ROC, F1 and
//!    friends), [`split`] (the seeded split the trainer and gate share), [`synth`] (the
//!    seeded synthetic churn dataset).
//! 2. [`learners`] (the algorithms, fitted with linfa and stored as plain parameters,
//!    with their own error), [`features`] (the fitted feature pipeline: impute,
//!    standardize, one-hot), [`profile`] (column profiles, the reference for drift),
//!    [`drift`] (drift scores against a reference profile), [`validate`] (the expectation
//!    suite as polars aggregations).
//! 3. [`artifact`]: the versioned binary artifact format, and the only scoring path.
//! 4. [`train`] (training the spec's algorithm or the best candidate, cross-validation)
//!    and [`grade`] (evaluation, latency, integration, scoring a file), with their shared
//!    [`error`].

pub mod artifact;
pub mod data;
pub mod drift;
pub mod error;
pub mod features;
pub mod grade;
pub mod hist;
pub mod learner_base;
pub mod learners;
pub mod metrics;
pub mod newton;
pub mod onnx;
pub mod profile;
pub mod split;
pub mod synth;
pub mod table;
pub mod train;
pub mod validate;

pub use data::DataError;
pub use error::ModelError;
