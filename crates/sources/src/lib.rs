//! Datasets where teams keep them, read for the pipeline's stages: objects in S3 (and
//! S3-compatible stores), Google Cloud Storage and Azure Blob Storage ([`cloud`]), and
//! PostgreSQL tables and queries ([`postgres`]). Each is brought to a local Parquet or CSV
//! file by streaming (memory stays at one chunk or one batch of rows), so validation and
//! training read it as they read a local file. `tollgate_pipeline::dataset` decides
//! where a run's dataset comes from and calls these.

pub mod cloud;
pub mod postgres;

/// Why a dataset could not be read from where it is kept. Each message says what to
/// change.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URI is not one Tollgate reads.
    #[error("{0}")]
    BadUri(String),
    /// The client could not be configured (credentials, region, endpoint).
    #[error("{uri}: cannot configure the client: {reason}")]
    Config {
        /// The dataset.
        uri: String,
        /// What the client library said.
        reason: String,
    },
    /// The object, bucket, table or database does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The credentials were refused.
    #[error("{uri}: access denied: {reason}")]
    Denied {
        /// The dataset.
        uri: String,
        /// What the server said.
        reason: String,
    },
    /// The query failed on the server.
    #[error("{uri}: the query failed: {reason}")]
    Query {
        /// The database.
        uri: String,
        /// What the server said.
        reason: String,
    },
    /// The store or database could not be reached, or the connection dropped.
    #[error("{uri}: unreachable: {reason}")]
    Unavailable {
        /// The dataset.
        uri: String,
        /// What the client said.
        reason: String,
    },
    /// More than the configured limit (bytes of an object, rows of a table).
    #[error("{uri} is over the {limit} limit (max_dataset_bytes)")]
    TooLarge {
        /// The dataset.
        uri: String,
        /// The limit it went over.
        limit: u64,
    },
    /// Writing the local copy failed.
    #[error("cannot write the local copy of the dataset: {0}")]
    Io(#[from] std::io::Error),
}

impl SourceError {
    /// Whether trying again may help (the store, the database or the disk failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Unavailable { .. } | SourceError::Io(_))
    }
}
