//! The model server: serves the registry versions its config names over the Open
//! Inference Protocol, swaps them when the registry moves a stage or alias, and watches
//! what it serves for drift.
//!
//! - Entries such as `churn@Production,churn@Staging` (`TOLLGATE_SERVER_MODELS`) resolve
//!   through the registry; artifacts load through it with their digest checked.
//! - A change announced on `tollgate.trigger.model` (and, as a safety net, a periodic
//!   check) reloads the entries of that model. The new version loads beside the old one
//!   and replaces it in one pointer swap: no request fails or sees a mix. A Production
//!   pointer moved back (a rollback) swaps back the same way.
//! - A share of scored inputs (`sample_share`) goes to `tollgate.served.<model>`
//!   ([`sampler`]); [`monitor`] compares windows of Production traffic with the Production
//!   version's reference profile and publishes `tollgate.trigger.drift` when they drift.
//! - Every scored record is kept for its label, and `POST /v2/models/{name}/feedback`
//!   joins the labels that arrive later ([`feedback`]); [`performance`] judges the
//!   Production version's live AUC-ROC against the spec's `monitor:` section.
//! - A blessed version may shadow Production ([`shadow`]): it scores a share of
//!   Production's requests beside it, and each replica reports how the two compare.

pub mod feedback;
pub mod loader;
pub mod monitor;
pub mod performance;
pub mod sampler;
pub mod shadow;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tollgate_inference::{Catalog, Entry, grpc, http};
use tollgate_service::{
    NatsConfig, RegistryConfig, ServiceError,
    tokens::{BearerError, WatchedTokens},
};
use tracing::info;

/// Address the server listens on by default.
pub const SERVER_ADDR: &str = "127.0.0.1:8000";
/// Address the protocol's gRPC side listens on by default (Triton's).
pub const SERVER_GRPC_ADDR: &str = "127.0.0.1:8001";

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Config, NATS or the registry client could not be set up.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The inference address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The `[server]` section: where the protocol is served, what, and who may call it
/// (`TOLLGATE_SERVER_ADDR`, `TOLLGATE_SERVER_GRPC_ADDR`, `TOLLGATE_SERVER_MODELS`,
/// `TOLLGATE_SERVER_TOKENS_FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address of the HTTP endpoint.
    pub addr: String,
    /// Address of the gRPC endpoint (KServe v2's `GRPCInferenceService`).
    pub grpc_addr: String,
    /// Comma-separated `MODEL@STAGE` or `MODEL@ALIAS`; the first entry of a model is what
    /// `/v2/models/MODEL` reaches.
    pub models: String,
    /// A token file (`tollgate token create` makes its entries; the registry's will do):
    /// when set, every model endpoint needs `Authorization: Bearer` with a token in it,
    /// and the health endpoints stay open for probes. Empty: anyone who reaches the port
    /// may score.
    pub tokens_file: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            addr: SERVER_ADDR.into(),
            grpc_addr: SERVER_GRPC_ADDR.into(),
            models: String::new(),
            tokens_file: String::new(),
        }
    }
}

/// Paths a probe or a load balancer checks: open even when tokens are required.
fn is_health(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/v2" | "/v2/health/live" | "/v2/health/ready"
    )
}

/// `router` answering only requests whose bearer token is in `tokens` (health paths
/// aside); 401 with the reason, in the protocol's error body, otherwise.
pub fn require_bearer(router: axum::Router, tokens: WatchedTokens) -> axum::Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let tokens = tokens.clone();
            async move {
                if is_health(request.uri().path()) {
                    return next.run(request).await;
                }
                let header = request
                    .headers()
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                match tokens.bearer(header) {
                    Ok(_) => next.run(request).await,
                    Err(e) => {
                        if let BearerError::Unreadable(cause) = &e {
                            tracing::warn!(error = %cause, "token file unreadable; refusing calls");
                        }
                        let body = serde_json::json!({ "error": e.to_string() }).to_string();
                        axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::UNAUTHORIZED,
                            [(axum::http::header::CONTENT_TYPE, "application/json")],
                            body,
                        ))
                    }
                }
            }
        },
    ))
}

/// Server configuration (file, then `TOLLGATE_*` environment variables).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The NATS server.
    pub nats: NatsConfig,
    /// The registry's gRPC API.
    pub registry: RegistryConfig,
    /// Where and what to serve.
    pub server: ServerSection,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Share of scored records sampled for drift monitoring, 0 to 1.
    pub sample_share: f64,
    /// Sampled Production records compared with the reference profile at a time.
    pub drift_window: usize,
    /// After served traffic starts a retraining, how long before it may start another
    /// for the same Production version, in seconds.
    pub drift_cooldown_secs: u64,
    /// How often every entry is checked against the registry, in seconds, besides the
    /// announcements on `tollgate.trigger.model`.
    pub refresh_secs: u64,
    /// Seconds the work in hand gets to finish on SIGTERM or Ctrl-C; the process ends
    /// within this and a second more.
    pub shutdown_grace_secs: u64,
    /// Keep every scored record for the labels that may arrive later (one key-value
    /// write per record, off the request path); `false` for a model whose outcomes never
    /// come back. The feedback endpoint then finds nothing to join.
    pub keep_predictions: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: NatsConfig::default(),
            registry: RegistryConfig::default(),
            server: ServerSection::default(),
            max_body_bytes: http::MAX_BODY_BYTES,
            sample_share: 0.1,
            drift_window: 500,
            drift_cooldown_secs: 3600,
            refresh_secs: 30,
            shutdown_grace_secs: tollgate_service::SHUTDOWN_GRACE_SECS,
            keep_predictions: true,
        }
    }
}

impl Config {
    /// How long the requests and work in hand get on shutdown.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The served entries, checked.
    pub fn entries(&self) -> Result<Vec<Entry>, ServiceError> {
        let entries = self
            .server
            .models
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Entry>, String>>()
            .map_err(|e| ServiceError::Invalid(format!("server.models: {e}")))?;
        if entries.is_empty() {
            return Err(ServiceError::Invalid(
                "server.models is empty: name what to serve, e.g. TOLLGATE_SERVER_MODELS=churn@Production,churn@Staging".into(),
            ));
        }
        Ok(entries)
    }

    /// Checks the settings once, at start-up; returns the entries.
    pub fn validate(&self) -> Result<Vec<Entry>, ServiceError> {
        if !(0.0..=1.0).contains(&self.sample_share) {
            return Err(ServiceError::Invalid(format!(
                "sample_share must be between 0 and 1, got {}",
                self.sample_share
            )));
        }
        if self.drift_window < 50 {
            return Err(ServiceError::Invalid(format!(
                "drift_window must be at least 50 records, got {}",
                self.drift_window
            )));
        }
        if self.max_body_bytes < 1024 {
            return Err(ServiceError::Invalid(format!(
                "max_body_bytes must be at least 1024, got {}",
                self.max_body_bytes
            )));
        }
        self.entries()
    }
}

/// A server started by [`start`].
pub struct Running {
    /// Where the protocol is served (the real port when the config said 0).
    pub addr: SocketAddr,
    /// Where its gRPC side is served.
    pub grpc_addr: SocketAddr,
    /// What it serves.
    pub catalog: Arc<Catalog>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits until every task stopped (after the shutdown token was cancelled).
    pub async fn stopped(self) {
        futures::future::join_all(self.tasks).await;
    }
}

/// Runs the server until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = tollgate_service::token_from(shutdown);
    // Asked to stop while still starting (nats-server or the registry unreachable): there
    // is nothing in hand, so it stops at once.
    tokio::select! {
        started = start(config, token.clone()) => started?.stopped().await,
        _ = token.cancelled() => tracing::info!("stopped before the server started"),
    }
    Ok(())
}

/// Starts the server: loads what the registry has for each entry, serves the protocol,
/// follows stage changes, samples and monitors, until `shutdown` is cancelled.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, Error> {
    let entries = config.validate()?;
    let bus = config
        .nats
        .connect()
        .await?
        .with_shutdown_grace(config.shutdown_grace());
    let registry = config.registry.client()?;
    let catalog = Arc::new(Catalog::new(entries));
    let shadows = Arc::new(shadow::Shadows::default());
    let loader = Arc::new(loader::Loader::new(
        bus.clone(),
        registry.clone(),
        catalog.clone(),
        shadows.clone(),
    ));
    loader.reconcile(None).await;
    let (sampler, publisher) = sampler::Sampler::start(bus.clone(), config.sample_share);
    let (keeper, writer) = match config.keep_predictions {
        true => {
            let (keeper, writer) = feedback::Keeper::start(bus.clone());
            (Some(keeper), Some(writer))
        }
        false => (None, None),
    };
    let observer = feedback::Observed {
        sampler,
        keeper,
        shadows: shadows.clone(),
        bus: bus.clone(),
    };
    let observer: Arc<dyn http::Observer> = Arc::new(observer);
    let mut router = http::router(catalog.clone(), observer.clone(), config.max_body_bytes);
    let mut authorize: Option<grpc::Authorize> = None;
    if config.server.tokens_file.is_empty() {
        tracing::warn!(
            "model server authentication is OFF: no tokens_file (TOLLGATE_SERVER_TOKENS_FILE), so anyone who reaches this port may score"
        );
    } else {
        let tokens = WatchedTokens::new(&config.server.tokens_file);
        router = require_bearer(router, tokens.clone());
        authorize = Some(Arc::new(move |header: Option<&str>| {
            tokens.bearer(header).map(|_| ()).map_err(|e| e.to_string())
        }));
    }
    let bind = |addr: &str| {
        let addr = addr.to_string();
        move |source| Error::Bind { addr, source }
    };
    let (addr, served) = http::serve(&config.server.addr, router, shutdown.clone())
        .await
        .map_err(bind(&config.server.addr))?;
    let (grpc_addr, served_grpc) = grpc::serve(
        &config.server.grpc_addr,
        grpc::Inference::new(catalog.clone(), observer, authorize),
        config.max_body_bytes,
        shutdown.clone(),
    )
    .await
    .map_err(bind(&config.server.grpc_addr))?;
    info!(%addr, %grpc_addr, entries = %config.server.models, "serving the Open Inference Protocol over HTTP and gRPC");
    let in_production = catalog.clone();
    let reporter = tokio::spawn(shadow::report(
        bus.clone(),
        shadows,
        move |model| {
            let entries = in_production.entries();
            let i = entries
                .iter()
                .position(|e| e.model == model && e.is_production())?;
            in_production.current(i).map(|m| m.version)
        },
        shutdown.clone(),
    ));
    let mut tasks = vec![served, served_grpc, publisher, reporter];
    tasks.extend(writer);
    tasks.push(tokio::spawn(loader::follow(
        loader.clone(),
        Duration::from_secs(config.refresh_secs.max(1)),
        shutdown.clone(),
    )));
    let mut monitored: Vec<&str> = Vec::new();
    for entry in catalog.entries().iter().filter(|e| e.is_production()) {
        if monitored.contains(&entry.model.as_str()) {
            continue;
        }
        monitored.push(&entry.model);
        let settings = monitor::Settings {
            window: config.drift_window,
            cooldown: Duration::from_secs(config.drift_cooldown_secs.max(1)),
        };
        tasks.push(tokio::spawn(monitor::watch(
            bus.clone(),
            registry.clone(),
            entry.model.clone(),
            settings,
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(performance::watch(
            bus.clone(),
            registry.clone(),
            entry.model.clone(),
            settings.cooldown,
            shutdown.clone(),
        )));
    }
    Ok(Running {
        addr,
        grpc_addr,
        catalog,
        tasks,
    })
}
