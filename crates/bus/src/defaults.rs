//! Defaults every service and the CLI share, in one place.

use std::path::PathBuf;

/// NATS server of a local install.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";
/// Address the registry's gRPC server listens on by default.
pub const GRPC_ADDR: &str = "127.0.0.1:50051";
/// URL at which clients reach the registry by default.
pub const REGISTRY_URL: &str = "http://127.0.0.1:50051";
/// Health endpoint address: an ephemeral loopback port, so several services can run on
/// one machine; Kubernetes sets `TOLLGATE_HEALTH_ADDR=0.0.0.0:8080`.
pub const HEALTH_ADDR: &str = "127.0.0.1:0";

/// Where stages download pushed datasets.
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("tollgate-cache")
}

/// A registry client for a service's config, with the config field named in the error.
pub fn registry_client(
    url: &str,
) -> Result<tollgate_proto::RegistryClient<tonic::transport::Channel>, crate::service::ServiceError>
{
    tollgate_proto::registry_client(url)
        .map_err(|e| crate::service::ServiceError::Config(format!("registry_url {url:?}: {e}")))
}
