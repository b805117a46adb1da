//! What every service binary needs around its `run`: config from defaults, a file and
//! `TOLLGATE_*` environment variables; a health endpoint; the shutdown signal.

use std::{net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Why a config or endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The config file or environment had a bad value or an unknown field.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// NATS could not be reached or set up.
    #[error(transparent)]
    Bus(#[from] crate::BusError),
    /// The health endpoint's address could not be bound.
    #[error("cannot bind health endpoint on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Loads a service config: defaults, then the TOML `file` (if any), then `TOLLGATE_<FIELD>`
/// environment variables (`__` nests). Only variables naming a field of `T` are read, so
/// one environment can configure several services; unknown fields in the file are refused.
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
            return Err(ServiceError::Config(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment = figment.merge(Env::prefixed("TOLLGATE_").split("__").filter(move |k| {
        let k = k.as_str().to_ascii_lowercase();
        known.iter().any(|f| k.starts_with(f.as_str()))
    }));
    figment
        .extract()
        .map_err(|e| ServiceError::Config(e.to_string()))
}

/// Serves `GET /healthz` (and `/readyz`) on `addr` until `shutdown`; returns the bound
/// address (useful with port 0).
pub async fn serve_health(
    addr: &str,
    service: &'static str,
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
    let app = axum::Router::new()
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
struct ServiceArgs {
    /// Config file (TOML); `TOLLGATE_*` environment variables override its fields.
    #[arg(long, env = "TOLLGATE_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    dump_config: bool,
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
    let args =
        ServiceArgs::from_arg_matches(&matches).map_err(|e| ServiceError::Config(e.to_string()))?;
    let config: C = load_config(args.config.as_deref())?;
    if args.dump_config {
        println!("{config:#?}");
        return Ok(None);
    }
    Ok(Some(config))
}
