//! The CLI's error, and the one place errors become exit codes: 1 when a run or a
//! validation ended without passing, 2 when the command could not run.

use crate::{EXIT_ERROR, EXIT_VERDICT};

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The arguments or input are wrong, as this says.
    #[error("{0}")]
    Usage(String),
    /// The registry refused or failed the call.
    #[error("{}", registry_message(.0))]
    Registry(#[from] tonic::Status),
    /// The registry URL is not one.
    #[error("registry URL {url:?}: {source}")]
    RegistryUrl {
        /// The URL given.
        url: String,
        /// What tonic said.
        source: tonic::transport::Error,
    },
    /// NATS failed.
    #[error(transparent)]
    Bus(#[from] tollgate_bus::BusError),
    /// A dataset could not be had.
    #[error(transparent)]
    Dataset(#[from] tollgate_pipeline::dataset::DatasetError),
    /// The spec or suite is not valid.
    #[error(transparent)]
    Spec(#[from] tollgate_spec::SpecError),
    /// Data could not be read or written.
    #[error(transparent)]
    Data(#[from] tollgate_ml::DataError),
    /// Training or scoring failed.
    #[error(transparent)]
    Model(#[from] tollgate_ml::ModelError),
    /// An artifact could not be encoded or read.
    #[error(transparent)]
    Artifact(#[from] tollgate_ml::artifact::ArtifactError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The dev stack could not start.
    #[error(transparent)]
    Stack(#[from] tollgate_stack::StackError),
    /// JSON output failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The run or validation ended without passing (already reported): exit 1.
    #[error("{0}")]
    Verdict(String),
    /// The user's command ran and failed, as this says: exit 1.
    #[error("{0}")]
    Failed(String),
}

fn registry_message(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unavailable => format!("the registry is not reachable: {}", status.message()),
        _ => status.message().to_string(),
    }
}

impl CliError {
    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    /// A file error naming the file.
    pub fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        CliError::File {
            path: path.display().to_string(),
            source,
        }
    }

    /// The process exit code this error ends with.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Verdict(_) | CliError::Failed(_) => EXIT_VERDICT,
            _ => EXIT_ERROR,
        }
    }
}
