//! The services as separate processes (`tollgate dev --processes`): each service binary,
//! found beside the running one, started with the environment Kubernetes would give it.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
};

use crate::{
    SERVICES, ServiceTokens, StackError,
    children::{log_file, wait_listening},
    host::ServerHosting,
};

/// Where the processes of a stack find each other, and what they are given.
#[derive(Clone, Copy)]
pub struct Layout<'a> {
    /// The NATS server's URL.
    pub nats_url: &'a str,
    /// Where the registry listens for gRPC, `127.0.0.1:PORT`.
    pub grpc_addr: &'a str,
    /// Where pushed datasets are downloaded.
    pub cache_dir: &'a Path,
    /// Where each child's log goes (`tollgate-<name>.log`).
    pub logs: &'a Path,
    /// The model server, if one runs.
    pub server: Option<&'a ServerHosting>,
    /// Where the registry serves its health endpoint and dashboard.
    pub dashboard_addr: &'a str,
    /// The registry's token file, and each service's own token; `None`: the registry is open.
    pub tokens: Option<(&'a Path, &'a ServiceTokens)>,
    /// The directories stages may read `file://` datasets from, `PATH`-style.
    pub data_roots: &'a str,
    /// The buckets stages may read object-store datasets from, comma-separated.
    pub data_buckets: &'a str,
    /// Where each identity's `.creds` file is; `None`: NATS is open.
    pub nats_auth: Option<&'a Path>,
    /// Seconds each service gives the work in hand on shutdown.
    pub shutdown_grace_secs: u64,
}

/// Starts the six service binaries (and the model server when one is asked for) as
/// processes beside this one, and waits until the registry listens. The children come
/// back by service name, so the caller stops them; on an error, the ones started are
/// killed.
pub fn spawn(layout: &Layout<'_>) -> Result<Vec<(String, Child)>, StackError> {
    let mut children = Vec::new();
    let started = spawn_into(&mut children, layout);
    if let Err(e) = started {
        for (_, mut child) in children {
            let _ = child.kill();
        }
        return Err(e);
    }
    Ok(children)
}

fn spawn_into(children: &mut Vec<(String, Child)>, layout: &Layout<'_>) -> Result<(), StackError> {
    let Layout {
        nats_url,
        grpc_addr,
        cache_dir,
        logs,
        server,
        dashboard_addr,
        tokens,
        data_roots,
        data_buckets,
        nats_auth,
        shutdown_grace_secs,
    } = *layout;
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let with_server = server.map(|_| "server");
    for name in SERVICES.into_iter().chain(with_server) {
        let bin = bin_dir.join(format!("tollgate-{name}"));
        if !bin.exists() {
            return Err(StackError::Setup(format!(
                "{} is not built: run `cargo build --workspace --bins`",
                bin.display()
            )));
        }
        let mut command = Command::new(&bin);
        if let Some((file, services)) = tokens {
            command.env("TOLLGATE_TOKENS_FILE", file);
            if let Some(token) = services.get(name) {
                command.env("TOLLGATE_TOKEN", token);
            }
        }
        if let Some(auth) = nats_auth {
            command.env("TOLLGATE_NATS_CREDS", auth.join(format!("{name}.creds")));
        }
        if let Some(s) = server {
            command
                .env("TOLLGATE_SERVER_ADDR", &s.addr)
                .env("TOLLGATE_SERVER_GRPC_ADDR", &s.grpc_addr)
                .env("TOLLGATE_SERVER_MODELS", &s.models)
                .env("TOLLGATE_STAGING_SERVER_URL", s.staging_url());
        }
        let child = command
            .env("TOLLGATE_NATS_URL", nats_url)
            .env("TOLLGATE_GRPC_ADDR", grpc_addr)
            .env("TOLLGATE_REGISTRY_URL", format!("http://{grpc_addr}"))
            .env("TOLLGATE_CACHE_DIR", cache_dir)
            .env("TOLLGATE_DATA_ROOTS", data_roots)
            .env("TOLLGATE_DATA_BUCKETS", data_buckets)
            .env(
                "TOLLGATE_SHUTDOWN_GRACE_SECS",
                shutdown_grace_secs.to_string(),
            )
            .env(
                "TOLLGATE_HEALTH_ADDR",
                if name == "registry" {
                    dashboard_addr
                } else {
                    "127.0.0.1:0"
                },
            )
            .stdout(Stdio::null())
            .stderr(log_file(logs, &format!("tollgate-{name}"))?)
            .spawn()
            .map_err(|e| StackError::file(&bin, e))?;
        children.push((name.to_string(), child));
    }
    let port = grpc_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_default();
    let log = logs.join("tollgate-registry.log");
    match children.iter_mut().find(|(n, _)| n == "registry") {
        Some((_, registry)) => wait_listening(port, registry, "tollgate-registry", &log),
        None => Ok(()),
    }
}
