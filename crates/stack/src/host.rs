//! The services hosted in one process (what `tollgate dev` runs by default, and what the
//! end-to-end tests host): each with its own config, signed in as itself, stopped by one
//! token.

use std::{path::PathBuf, sync::Arc};

use tokio_util::sync::CancellationToken;
use tollgate_service::{NatsConfig, RegistryConfig};
use tollgate_trigger_watcher::{Clock, SystemClock};

/// Each service's registry token, by service name.
pub type ServiceTokens = std::collections::BTreeMap<String, String>;

/// Where services hosted in one process find NATS, the registry and their cache.
#[derive(Clone)]
pub struct Hosted {
    /// The NATS server.
    pub nats: NatsConfig,
    /// The registry, as the data-validator, gate and promoter call it.
    pub registry: RegistryConfig,
    /// The registry as the trainer calls it (tests point it elsewhere).
    pub trainer_registry: RegistryConfig,
    /// Where pushed datasets are downloaded.
    pub cache_dir: PathBuf,
    /// The directories stages may read `file://` datasets from, `PATH`-style.
    pub data_roots: String,
    /// The buckets (or prefixes) stages may read `s3://`, `gs://`, `az://` datasets from,
    /// comma-separated.
    pub data_buckets: String,
    /// The clock the trigger-watcher's schedules read (tests set the time).
    pub clock: Arc<dyn Clock>,
    /// How often the trigger-watcher checks schedules, in milliseconds.
    pub schedule_tick_ms: u64,
    /// Services left out (tests host their own stand-in, or none).
    pub without: Vec<&'static str>,
    /// The model server, if one is hosted.
    pub server: Option<ServerHosting>,
    /// The Staging server the promoter tests against when it is not the hosted one
    /// (tests run `tollgate-server` as a process); empty: the hosted server's, if any.
    pub staging_server_url: String,
    /// Where the registry serves its health endpoint and dashboard.
    pub dashboard_addr: String,
    /// The registry's token file; `None`: the registry is open.
    pub tokens_file: Option<PathBuf>,
    /// Where `tollgate nats-config` wrote each identity's `.creds`; `None`: NATS is open.
    pub nats_creds_dir: Option<PathBuf>,
    /// Each service's own registry token, by service name; a service without one calls
    /// with its registry section's token.
    pub service_tokens: ServiceTokens,
    /// Seconds each service gives the work in hand on shutdown.
    pub shutdown_grace_secs: u64,
}

/// A model server to host: what it serves and where.
#[derive(Debug, Clone)]
pub struct ServerHosting {
    /// `MODEL@STAGE` entries, comma-separated.
    pub models: String,
    /// Its address, `127.0.0.1:PORT`.
    pub addr: String,
    /// The address of its gRPC side, `127.0.0.1:PORT`.
    pub grpc_addr: String,
}

impl ServerHosting {
    /// The URL the promoter's integration test calls when the server has a Staging
    /// entry; empty otherwise.
    pub fn staging_url(&self) -> String {
        if self.models.to_ascii_lowercase().contains("@staging") {
            format!("http://{}", self.addr)
        } else {
            String::new()
        }
    }
}

impl std::fmt::Debug for Hosted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosted")
            .field("nats", &self.nats)
            .field("registry", &self.registry)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Hosted {
    /// Every service on the same NATS and registry.
    pub fn new(nats_url: &str, registry_url: &str, cache_dir: PathBuf) -> Self {
        Hosted {
            nats: NatsConfig::at(nats_url),
            registry: RegistryConfig::at(registry_url),
            trainer_registry: RegistryConfig::at(registry_url),
            cache_dir,
            data_roots: std::env::temp_dir().display().to_string(),
            data_buckets: String::new(),
            clock: Arc::new(SystemClock),
            schedule_tick_ms: tollgate_trigger_watcher::Config::default().schedule_tick_ms,
            without: Vec::new(),
            server: None,
            staging_server_url: String::new(),
            dashboard_addr: tollgate_service::HEALTH_ADDR.into(),
            tokens_file: None,
            nats_creds_dir: None,
            service_tokens: ServiceTokens::new(),
            shutdown_grace_secs: tollgate_service::SHUTDOWN_GRACE_SECS,
        }
    }
}

/// Hosts the six services in this process until `stop`, the registry's gRPC on
/// `listener`: what `tollgate dev` and the end-to-end harness run.
pub fn host_services(
    hosted: Hosted,
    listener: tokio::net::TcpListener,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Hosted {
        nats,
        registry,
        trainer_registry,
        cache_dir,
        data_roots,
        data_buckets,
        clock,
        schedule_tick_ms,
        without,
        server,
        staging_server_url,
        dashboard_addr,
        tokens_file,
        nats_creds_dir,
        service_tokens,
        shutdown_grace_secs,
    } = hosted;
    // Each service calls the registry with its own token, and signs in to NATS as itself.
    let calls = |service: &str, config: &RegistryConfig| match service_tokens.get(service) {
        Some(token) => config.clone().with_token(token),
        None => config.clone(),
    };
    let signed_in = |identity: &str| {
        let mut n = nats.clone();
        if let Some(dir) = &nats_creds_dir {
            n.creds = dir.join(format!("{identity}.creds")).display().to_string();
        }
        n
    };
    let staging_server_url = match &server {
        Some(s) if staging_server_url.is_empty() => s.staging_url(),
        _ => staging_server_url,
    };
    // The stages that read data share how they reach it.
    let reads_data = |service: &str, registry: &RegistryConfig| tollgate_service::StageConfig {
        nats: signed_in(service),
        shutdown_grace_secs,
        registry: calls(service, registry),
        cache_dir: cache_dir.clone(),
        data_roots: data_roots.clone(),
        data_buckets: data_buckets.clone(),
        ..Default::default()
    };
    let stop = || stop.clone().cancelled_owned();
    let services = [
        task(
            "registry",
            tollgate_registry::serve(
                tollgate_registry::Config {
                    nats: signed_in("registry"),
                    shutdown_grace_secs,
                    health_addr: dashboard_addr,
                    tokens_file,
                    ..Default::default()
                },
                listener,
                stop(),
            ),
        ),
        task(
            "trigger-watcher",
            tollgate_trigger_watcher::run_with_clock(
                tollgate_trigger_watcher::Config {
                    nats: signed_in("trigger-watcher"),
                    shutdown_grace_secs,
                    schedule_tick_ms,
                    ..Default::default()
                },
                clock,
                stop(),
            ),
        ),
        task(
            "data-validator",
            tollgate_data_validator::run(reads_data("data-validator", &registry), stop()),
        ),
        task(
            "trainer",
            tollgate_trainer::run(reads_data("trainer", &trainer_registry), stop()),
        ),
        task(
            "gate",
            tollgate_gate::run(reads_data("gate", &registry), stop()),
        ),
        task(
            "promoter",
            tollgate_promoter::run(
                tollgate_promoter::Config {
                    nats: signed_in("promoter"),
                    shutdown_grace_secs,
                    registry: calls("promoter", &registry),
                    staging_server_url,
                    ..Default::default()
                },
                stop(),
            ),
        ),
    ];
    let server = server.map(|s| {
        task(
            "server",
            tollgate_server::run(
                tollgate_server::Config {
                    nats: signed_in("server"),
                    shutdown_grace_secs,
                    registry: calls("server", &registry),
                    server: tollgate_server::ServerSection {
                        addr: s.addr,
                        grpc_addr: s.grpc_addr,
                        models: s.models,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                stop(),
            ),
        )
    });
    services
        .into_iter()
        .chain(server)
        .filter(|(name, _)| !without.contains(name))
        .map(|(_, service)| tokio::spawn(service))
        .collect()
}

/// A hosted service by name, logging its error if it stops with one.
type HostedService = (
    &'static str,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
);

fn task<E: std::fmt::Display + Send + 'static>(
    name: &'static str,
    service: impl std::future::Future<Output = Result<(), E>> + Send + 'static,
) -> HostedService {
    let logged = async move {
        if let Err(e) = service.await {
            tracing::error!(service = name, error = %e, "service stopped with an error");
        }
    };
    (name, Box::pin(logged))
}
