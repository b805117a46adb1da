//! The registry's error type, below the modules that return it (the store, the policy
//! checks, applying specs).

use tonic::Status;

/// Registry errors; each maps to the gRPC status code that says what it means.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The model, version, stage holder, alias or run does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already (a decided approval).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request conflicts with the current state (a racing change won, no approval).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The identity may not do this (not on the spec's approvers list).
    #[error("{0}")]
    PermissionDenied(String),
    /// NATS is not answering as it should.
    #[error("registry storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
    /// The gRPC address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// The health endpoint could not start.
    #[error(transparent)]
    Service(Box<tollgate_service::ServiceError>),
}

impl From<RegistryError> for Status {
    fn from(e: RegistryError) -> Self {
        match &e {
            RegistryError::NotFound(m) => Status::not_found(m.clone()),
            RegistryError::AlreadyExists(m) => Status::already_exists(m.clone()),
            RegistryError::InvalidArgument(m) => Status::invalid_argument(m.clone()),
            RegistryError::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
            RegistryError::PermissionDenied(m) => Status::permission_denied(m.clone()),
            RegistryError::Unavailable(_) => Status::unavailable(e.to_string()),
            RegistryError::Internal(m) => Status::internal(m.clone()),
            RegistryError::Listen { .. } | RegistryError::Serve(_) | RegistryError::Service(_) => {
                Status::internal(e.to_string())
            }
        }
    }
}
