//! The environment variables a user command gets, by name: the contract train.py and the
//! user's tests are written against. Nothing else of Tollgate's reaches them.

/// The training rows of the seeded split, every column of the dataset, as Parquet.
pub const TRAIN_DATA: &str = "TOLLGATE_TRAIN_DATA";
/// Where a training command must write its ONNX model.
pub const MODEL_OUT: &str = "TOLLGATE_MODEL_OUT";
/// A copy of the run's spec (tollgate.yaml).
pub const SPEC: &str = "TOLLGATE_SPEC";
/// The run's id.
pub const RUN_ID: &str = "TOLLGATE_RUN_ID";
/// The model's name.
pub const MODEL: &str = "TOLLGATE_MODEL";
/// The spec's split seed, for the command's own randomness.
pub const SEED: &str = "TOLLGATE_SEED";
/// The target column.
pub const TARGET: &str = "TOLLGATE_TARGET";
/// An Open Inference Protocol base URL serving the version under test.
pub const SERVER_URL: &str = "TOLLGATE_SERVER_URL";
/// The version under test.
pub const VERSION: &str = "TOLLGATE_VERSION";
/// The held-out test rows, every column, as Parquet (gate tests only).
pub const TEST_DATA: &str = "TOLLGATE_TEST_DATA";
/// Where a test command may write JUnit XML; each test case becomes a check row.
pub const JUNIT_XML: &str = "TOLLGATE_JUNIT_XML";
/// pytest's own variable for extra options: Tollgate sets `--junitxml=$TOLLGATE_JUNIT_XML`
/// in it, so `pytest` writes the cases without being told.
pub const PYTEST_ADDOPTS: &str = "PYTEST_ADDOPTS";
