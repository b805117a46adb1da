//! The service runtime: what every service needs around its stage handlers or gRPC
//! server. Config from defaults, a file and `TOLLGATE_*` environment variables, with the
//! `[nats]` and `[registry]` sections every service shares; the health endpoint; the
//! shutdown signal; [`serve_stage`], which hosts stage handlers on the bus; and [`code`],
//! the run's code snapshot unpacked for a stage that runs the user's commands.
//!
//! It sits above `tollgate-bus` (which is only the bus) and below the services.

pub mod code;
pub mod tokens;

use std::{net::SocketAddr, path::Path, path::PathBuf, sync::Arc};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;
use tollgate_bus::Bus;
use tollgate_pipeline::{StageHandler, stage::run_stage};
use tollgate_proto::Stage;
use tracing::{info, warn};

/// NATS server of a local install.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";
/// Address the registry's gRPC server listens on by default.
pub const GRPC_ADDR: &str = "127.0.0.1:50051";
/// URL at which clients reach the registry by default.
pub const REGISTRY_URL: &str = "http://127.0.0.1:50051";
/// Health endpoint address: an ephemeral loopback port, so several services can run on
/// one machine; Kubernetes sets `TOLLGATE_HEALTH_ADDR=0.0.0.0:8080`.
pub const HEALTH_ADDR: &str = "127.0.0.1:0";

/// Seconds the work in hand gets to finish on SIGTERM or Ctrl-C when a service's config
/// does not set `shutdown_grace_secs` (`TOLLGATE_SHUTDOWN_GRACE_SECS`).
pub const SHUTDOWN_GRACE_SECS: u64 = tollgate_bus::bus::SHUTDOWN_GRACE.as_secs();

/// Where stages download pushed datasets.
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("tollgate-cache")
}

/// The `[nats]` section every service's config has (`TOLLGATE_NATS_URL`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// NATS server URL; a cluster's nodes may be listed, comma-separated.
    pub url: String,
    /// How long a message a worker holds without acking (a killed worker's) waits before
    /// JetStream delivers it again, in seconds; set when the consumers are created.
    pub ack_wait_secs: u64,
    /// The service's `.creds` file from `tollgate nats-config` (`TOLLGATE_NATS_CREDS`);
    /// empty: no credentials.
    pub creds: String,
    /// A CA certificate that signs nats-server's TLS certificate (`TOLLGATE_NATS_CA`);
    /// empty: plain TCP.
    pub ca: String,
    /// Replicas of the streams, buckets and stores the service creates
    /// (`TOLLGATE_NATS_REPLICAS`): 3 on a three-node cluster, 1 on one server.
    pub replicas: usize,
    /// Byte caps over the defaults of the streams, buckets and stores the registry
    /// creates, `name=SIZE` comma-separated (`TOLLGATE_NATS_MAX_BYTES`:
    /// `tollgate_datasets=20GiB`); empty: the defaults.
    pub max_bytes: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: NATS_URL.into(),
            ack_wait_secs: tollgate_bus::bus::ACK_WAIT.as_secs(),
            creds: String::new(),
            ca: String::new(),
            replicas: 1,
            max_bytes: String::new(),
        }
    }
}

impl NatsConfig {
    /// The section for a server at `url`.
    pub fn at(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    /// Connects and opens every stream, bucket and store.
    pub async fn connect(&self) -> Result<Bus, ServiceError> {
        let ack_wait = std::time::Duration::from_secs(self.ack_wait_secs.max(1));
        let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        let options = tollgate_bus::bus::Options {
            creds: path(&self.creds),
            ca: path(&self.ca),
            replicas: self.replicas,
            max_bytes: tollgate_bus::bus::parse_max_bytes(&self.max_bytes),
        };
        Ok(Bus::connect_with(&self.url, &options)
            .await?
            .with_ack_wait(ack_wait))
    }

    /// [`NatsConfig::connect`], given up when `shutdown` comes first: `None` then. A
    /// service asked to stop while nats-server is unreachable has nothing in hand, and
    /// exits instead of retrying.
    pub async fn connect_or_stop(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<Bus>, ServiceError> {
        tokio::select! {
            bus = self.connect() => bus.map(Some),
            _ = shutdown.cancelled() => {
                info!("stopped before nats-server answered");
                Ok(None)
            }
        }
    }
}

/// The `[registry]` section of the services that call the registry
/// (`TOLLGATE_REGISTRY_URL`, and `TOLLGATE_TOKEN` for the service's bearer token).
#[derive(Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// URL of the registry's gRPC API.
    pub url: String,
    /// The bearer token the service calls with (a `service` role token); empty when the
    /// registry does not check tokens.
    pub token: String,
    /// A PEM certificate that signs the registry's TLS certificate
    /// (`TOLLGATE_REGISTRY_CA`), for an `https://` URL; empty: as the URL says.
    pub ca: String,
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.token.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("token", &token)
            .field("ca", &self.ca)
            .finish()
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: REGISTRY_URL.into(),
            token: String::new(),
            ca: String::new(),
        }
    }
}

impl RegistryConfig {
    /// The section for a registry at `url`.
    pub fn at(url: impl Into<String>) -> Self {
        RegistryConfig {
            url: url.into(),
            ..Default::default()
        }
    }

    /// The same section, calling with `token`.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// A client that connects on first use; a malformed URL is a config error.
    pub fn client(&self) -> Result<tollgate_proto::RegistryApi, ServiceError> {
        let ca = if self.ca.is_empty() {
            None
        } else {
            Some(
                std::fs::read(&self.ca)
                    .map_err(|e| ServiceError::Invalid(format!("registry.ca {}: {e}", self.ca)))?,
            )
        };
        tollgate_proto::registry_client_tls(&self.url, &self.token, ca).map_err(|source| {
            ServiceError::RegistryUrl {
                url: self.url.clone(),
                source,
            }
        })
    }
}

/// Why a config or endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The config file or environment had a bad value or an unknown field.
    #[error("invalid configuration: {0}")]
    Config(#[from] Box<figment::Error>),
    /// The config file does not exist.
    #[error("config file {0} does not exist")]
    NoConfigFile(PathBuf),
    /// A setting is out of its range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The registry URL is not one.
    #[error("invalid configuration: registry url {url:?}: {source}")]
    RegistryUrl {
        /// The URL given.
        url: String,
        /// What tonic said.
        source: tonic::transport::Error,
    },
    /// The command line could not be parsed.
    #[error(transparent)]
    Args(#[from] clap::Error),
    /// NATS could not be reached or set up.
    #[error(transparent)]
    Bus(#[from] tollgate_bus::BusError),
    /// The health endpoint's address could not be bound.
    #[error("cannot bind health endpoint on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The documented variables of the sections (`TOLLGATE_NATS_URL`, the model server's
/// `TOLLGATE_SERVER_ADDR`), as keys.
const SECTION_ALIASES: [(&str, &str); 12] = [
    ("registry_ca", "registry.ca"),
    ("nats_replicas", "nats.replicas"),
    ("nats_max_bytes", "nats.max_bytes"),
    ("nats_url", "nats.url"),
    ("nats_creds", "nats.creds"),
    ("nats_ca", "nats.ca"),
    ("registry_url", "registry.url"),
    ("token", "registry.token"),
    ("server_addr", "server.addr"),
    ("server_grpc_addr", "server.grpc_addr"),
    ("server_tokens_file", "server.tokens_file"),
    ("server_models", "server.models"),
];

/// Loads a service config: defaults, then the TOML `file` (if any), then `TOLLGATE_<FIELD>`
/// environment variables (`__` nests; `TOLLGATE_NATS_URL` and `TOLLGATE_REGISTRY_URL` set
/// the `[nats]` and `[registry]` sections). Only variables naming a field of `T` are read,
/// so one environment can configure several services; unknown fields in the file are
/// refused.
pub fn load_config<T>(file: Option<&Path>) -> Result<T, ServiceError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let defaults = T::default();
    let known: Vec<String> = match serde_json::to_value(&defaults) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(file) = file {
        if !file.exists() {
            return Err(ServiceError::NoConfigFile(file.to_path_buf()));
        }
        figment = figment.merge(Toml::file(file));
    }
    // A variable is read when its first segment is a field of `T` (`TOLLGATE_NATS__URL`,
    // `TOLLGATE_CACHE_DIR`), or it is the documented name of a shared section's URL; any
    // other `TOLLGATE_*` variable (`TOLLGATE_NATS_SERVER`, another service's field) is not
    // this service's business.
    let env = Env::prefixed("TOLLGATE_")
        .map(|k| env_key(k.as_str()).into())
        .filter(move |k| {
            let first = k.as_str().split('.').next().unwrap_or_default();
            known.iter().any(|f| f == first)
        });
    figment = figment.merge(env);
    figment
        .extract()
        .map_err(|e| ServiceError::Config(Box::new(e)))
}

/// The config key the variable `TOLLGATE_<name>` sets, given `name` (`NATS_URL` sets
/// `nats.url`, `NATS__ACK_WAIT_SECS` sets `nats.ack_wait_secs`), as [`load_config`] maps it.
fn env_key(name: &str) -> String {
    let k = name.to_ascii_lowercase();
    match SECTION_ALIASES.iter().find(|(alias, _)| *alias == k) {
        Some((_, key)) => (*key).into(),
        None => k.replace("__", "."),
    }
}

/// Whether a service whose config is `T` reads the environment variable `var`: a
/// `TOLLGATE_*` variable naming one of its settings, or `TOLLGATE_CONFIG` (its file).
/// What a deployment's manifests are checked against.
pub fn reads_env<T: Serialize + Default>(var: &str) -> bool {
    let Some(name) = var.strip_prefix("TOLLGATE_") else {
        return false;
    };
    if var == CONFIG_VAR {
        return true;
    }
    let Ok(mut value) = serde_json::to_value(T::default()) else {
        return false;
    };
    for part in env_key(name).split('.') {
        match value {
            serde_json::Value::Object(mut map) => match map.remove(part) {
                Some(v) => value = v,
                None => return false,
            },
            _ => return false,
        }
    }
    true
}

/// The variable that names a service's config file.
pub const CONFIG_VAR: &str = "TOLLGATE_CONFIG";

/// Serves `GET /healthz` (and `/readyz`) on `addr` until `shutdown`; returns the bound
/// address (useful with port 0).
pub async fn serve_health(
    addr: &str,
    service: &'static str,
    shutdown: CancellationToken,
) -> Result<SocketAddr, ServiceError> {
    serve_http(addr, service, axum::Router::new(), shutdown).await
}

/// [`serve_health`] with the service's own `routes` on the same port (the registry's
/// dashboard).
pub async fn serve_http(
    addr: &str,
    service: &'static str,
    routes: axum::Router,
    shutdown: CancellationToken,
) -> Result<SocketAddr, ServiceError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: addr.into(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| ServiceError::Bind {
        addr: addr.into(),
        source,
    })?;
    let app = routes
        .route(
            "/healthz",
            axum::routing::get(move || async move { format!("{service} ok\n") }),
        )
        .route("/readyz", axum::routing::get(|| async { "ready\n" }));
    info!(%bound, "health endpoint listening");
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            warn!(error = %e, "health endpoint stopped");
        }
    });
    Ok(bound)
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("Ctrl-C received; shutting down"),
        _ = term => info!("SIGTERM received; shutting down"),
    }
}

/// [`shutdown_signal`] for a service binary: resolves on the first SIGTERM or Ctrl-C, then
/// makes sure the process ends. A second signal exits at once, and a process still
/// running `grace` and a second later exits anyway, so no retry, flush or drain (a
/// nats-server or registry that is gone) holds a pod past its grace.
pub async fn shutdown_signal_within(grace: std::time::Duration) {
    shutdown_signal().await;
    tokio::spawn(async {
        shutdown_signal().await;
        warn!("second signal: exiting now");
        std::process::exit(130);
    });
    let deadline = grace + std::time::Duration::from_secs(1);
    // A thread of its own: it fires even when every runtime worker is busy.
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        warn!(
            ?deadline,
            "still stopping after the shutdown grace: exiting now"
        );
        std::process::exit(1);
    });
}

/// A token cancelled when `shutdown` resolves: how `run(config, shutdown)` fans the
/// signal out to its tasks.
pub fn token_from<F>(shutdown: F) -> CancellationToken
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        child.cancel();
    });
    token
}

/// The flags every service binary takes.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// Config file (TOML); `TOLLGATE_*` environment variables override its fields.
    #[arg(long, env = CONFIG_VAR)]
    pub config: Option<std::path::PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    pub dump_config: bool,
}

/// Parses a service binary's flags and loads its config. `None` means the binary was
/// asked to print its config (`--dump-config`) and should exit.
pub fn start<C>(name: &'static str, about: &'static str) -> Result<Option<C>, ServiceError>
where
    C: Serialize + DeserializeOwned + Default + std::fmt::Debug,
{
    use clap::{CommandFactory, FromArgMatches};
    let matches = ServiceArgs::command()
        .name(name)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .get_matches();
    let args = ServiceArgs::from_arg_matches(&matches)?;
    let config: C = load_config(args.config.as_deref())?;
    if args.dump_config {
        println!("{config:#?}");
        return Ok(None);
    }
    Ok(Some(config))
}

/// The config of the four stage services (data-validator, trainer, gate, promoter): one
/// shape, so one file or ConfigMap configures them all.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageConfig {
    /// The NATS server.
    pub nats: NatsConfig,
    /// Address of the health endpoint (`/healthz`).
    pub health_addr: String,
    /// The registry's gRPC API.
    pub registry: RegistryConfig,
    /// Where pushed datasets are downloaded to (data-validator, trainer, gate).
    pub cache_dir: PathBuf,
    /// The directories `file://` datasets may be read from, `PATH`-style
    /// (`/data:/mnt/shared`, `TOLLGATE_DATA_ROOTS`); empty: only pushed datasets.
    pub data_roots: String,
    /// The buckets, or prefixes in them, object-store datasets may be read from,
    /// comma-separated (`s3://churn-data,gs://features/daily/`, `TOLLGATE_DATA_BUCKETS`);
    /// empty: no `s3://`, `gs://` or `az://` dataset is read.
    pub data_buckets: String,
    /// The largest dataset a stage reads, in bytes; larger ones are refused unread.
    pub max_dataset_bytes: u64,
    /// Single-record predictions timed for latency (gate, promoter); at least 100.
    pub latency_calls: usize,
    /// The Staging model server the promoter's integration test calls
    /// (`http://tollgate-server-staging:8000`); empty: the promoter serves the Staging
    /// version on a loopback port of its own and tests it there.
    pub staging_server_url: String,
    /// How long the integration test waits for the Staging server to load the version.
    pub staging_wait_secs: u64,
    /// Seconds the stage in hand gets to finish on SIGTERM or Ctrl-C before it is
    /// released to another replica; the process ends within this and a second more.
    pub shutdown_grace_secs: u64,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            nats: NatsConfig::default(),
            health_addr: HEALTH_ADDR.into(),
            registry: RegistryConfig::default(),
            cache_dir: cache_dir(),
            data_roots: String::new(),
            data_buckets: String::new(),
            max_dataset_bytes: 20 * 1024 * 1024 * 1024,
            latency_calls: 200,
            staging_server_url: String::new(),
            staging_wait_secs: 60,
            shutdown_grace_secs: SHUTDOWN_GRACE_SECS,
        }
    }
}

impl StageConfig {
    /// How long the stage in hand gets on shutdown.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }

    /// Checks the settings once, at start-up.
    pub fn validate(&self) -> Result<(), ServiceError> {
        if self.latency_calls < 100 {
            return Err(ServiceError::Invalid(format!(
                "latency_calls must be at least 100, got {}",
                self.latency_calls
            )));
        }
        Ok(())
    }

    /// Checks the config, makes the handler from what it needs, and runs it for `stages`
    /// as the service `name` until `shutdown`.
    pub async fn serve<H: StageHandler, F>(
        &self,
        name: &'static str,
        stages: &[Stage],
        make: impl FnOnce(StageDeps) -> H,
        shutdown: F,
    ) -> Result<(), ServiceError>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.validate()?;
        let handler = make(StageDeps {
            data: tollgate_pipeline::dataset::DataAccess {
                cache_dir: self.cache_dir.clone(),
                roots: tollgate_pipeline::dataset::DataAccess::parse_roots(&self.data_roots),
                buckets: tollgate_pipeline::dataset::DataAccess::parse_buckets(&self.data_buckets),
                max_bytes: self.max_dataset_bytes,
            },
            registry: self.registry.client()?,
            latency_calls: self.latency_calls,
            staging_server_url: self.staging_server_url.clone(),
            staging_server_token: self.registry.token.clone(),
            staging_wait: std::time::Duration::from_secs(self.staging_wait_secs),
        });
        let token = token_from(shutdown);
        let Some(bus) = self.nats.connect_or_stop(&token).await? else {
            return Ok(());
        };
        let bus = bus.with_shutdown_grace(self.shutdown_grace());
        serve_stage(bus, &self.health_addr, name, stages, handler, token).await
    }
}

/// What a stage handler is made from: its share of [`StageConfig`], ready to use.
#[derive(Debug, Clone)]
pub struct StageDeps {
    /// Where datasets may be read from, where pushed ones are downloaded, and how large.
    pub data: tollgate_pipeline::dataset::DataAccess,
    /// The registry client (connects on first use).
    pub registry: tollgate_proto::RegistryApi,
    /// Single-record predictions timed for latency.
    pub latency_calls: usize,
    /// The Staging model server's URL; empty when none is deployed.
    pub staging_server_url: String,
    /// The bearer token sent to it (the service's registry token, which a server sharing
    /// the registry's token file accepts); empty: none.
    pub staging_server_token: String,
    /// How long to wait for it to load a version.
    pub staging_wait: std::time::Duration,
}

/// Runs a stage service on a connected bus: serves the health endpoint and consumes each of
/// `stages` (one consumer each, one handler for all) until `shutdown`. What `run` of the
/// data-validator, trainer, gate and promoter do.
pub async fn serve_stage<H: StageHandler>(
    bus: Bus,
    health_addr: &str,
    service: &'static str,
    stages: &[Stage],
    handler: H,
    shutdown: CancellationToken,
) -> Result<(), ServiceError> {
    serve_health(health_addr, service, shutdown.clone()).await?;
    let handler = Arc::new(handler);
    let consumers = stages
        .iter()
        .map(|&stage| run_stage(bus.clone(), stage, handler.clone(), shutdown.clone()));
    for result in futures::future::join_all(consumers).await {
        result?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
