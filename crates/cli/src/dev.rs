//! `tollgate dev`: the whole stack on a laptop in one command, kept running until Ctrl-C.
//!
//! It starts a JetStream nats-server as a child process with its store under the data
//! directory (`.tollgate/` by default), hosts the six services in this process (or, with
//! `--processes`, runs their binaries as Kubernetes does), writes the stack's addresses to
//! `<data dir>/dev.json` and holds a lock on `<data dir>/dev.lock` while it runs. The
//! CLI reads `dev.json` when no address is given, so `tollgate runs` in another terminal
//! just works. A second `tollgate dev` on the same directory finds the lock held and
//! prints the running stack's addresses instead; a lock left by a killed stack is free
//! again (the kernel released it), and its leftover children are stopped.

use std::{
    fs::{File, TryLockError},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use clap::Args;
use tokio_util::sync::CancellationToken;
use tollgate_stack::{
    DEFAULT_DATA_DIR, DevState, Hosted, ServerHosting, ServiceTokens,
    children::{
        find_nats_server, free_port, kill_now, log_file, stop_all, stop_leftover, wait_listening,
    },
    discover::{LOCK_FILE, STATE_FILE, read_state},
    host_services,
    processes::{self, Layout},
};

use crate::CliError;

/// `tollgate dev ...`
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the stack keeps its NATS store, logs, dataset cache and lock.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Run the services as separate processes (their binaries beside this one), the way
    /// Kubernetes runs them, instead of in this process.
    #[arg(long)]
    pub processes: bool,
    /// NATS client port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub nats_port: u16,
    /// Registry gRPC port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub grpc_port: u16,
    /// What the model server serves, as `MODEL@STAGE` or `MODEL@ALIAS` entries; its
    /// Staging entry is where the promoter's integration test runs. Empty: no server.
    #[arg(
        long,
        env = "TOLLGATE_SERVER_MODELS",
        default_value = "churn@Production,churn@Staging"
    )]
    pub serve: String,
    /// Model server port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub server_port: u16,
    /// The model server's gRPC port, KServe v2's `GRPCInferenceService` (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub server_grpc_port: u16,
    /// The directories stages may read `file://` datasets from, `PATH`-style
    /// (`/data:/mnt/shared`) [default: the current directory]. Pushed datasets
    /// (`tollgate data push`) are always readable.
    #[arg(long, env = "TOLLGATE_DATA_ROOTS")]
    pub data_roots: Option<String>,
    /// The buckets, or prefixes in them, stages may read `s3://`, `gs://` and `az://`
    /// datasets from, comma-separated (`s3://churn-data,gs://features/daily/`); credentials
    /// and endpoints come from each cloud's standard variables [default: none]
    #[arg(long, env = "TOLLGATE_DATA_BUCKETS", default_value = "")]
    pub data_buckets: String,
    /// Run the registry without tokens: anyone on this machine may approve. By default the
    /// stack makes a token file in the data directory, a token for each service (its own
    /// role) and an admin token for the CLI, which finds it by itself.
    #[arg(long)]
    pub open: bool,
    /// Apply these specs (`tollgate apply`) once the stack is up: each becomes its model's
    /// policy, as an admin would make it.
    #[arg(long, value_name = "SPEC")]
    pub apply: Vec<PathBuf>,
    /// Seconds the stages in hand get to finish on Ctrl-C before they are released (and
    /// the services stopped anyway); a second Ctrl-C stops everything at once.
    #[arg(long, env = "TOLLGATE_SHUTDOWN_GRACE_SECS", default_value_t = tollgate_service::SHUTDOWN_GRACE_SECS)]
    pub shutdown_grace_secs: u64,
}

/// The children and tasks of a running stack.
struct Stack {
    nats: Child,
    services: Vec<(String, Child)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: CancellationToken,
}

/// `tollgate dev`: runs the stack until Ctrl-C or SIGTERM.
pub async fn dev(args: DevArgs) -> Result<(), CliError> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| CliError::file(dir, e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| CliError::file(dir, e))?;
    // Tokens, nkey seeds and the state live here: `git add -A` must never pick them up.
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            &ignore,
            "# Written by tollgate dev: secrets and state, never to be committed.\n*\n",
        )
        .map_err(|e| CliError::file(&ignore, e))?;
    }
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CliError::file(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            if let Some(state) = read_state(&dir) {
                print_screen(&state, &dir);
            }
            return Err(CliError::Usage(format!(
                "a Tollgate dev stack is already running on {} (see above); stop it with Ctrl-C in its terminal",
                dir.display()
            )));
        }
        Err(TryLockError::Error(e)) => return Err(CliError::file(&lock_path, e)),
    }
    if let Some(stale) = read_state(&dir) {
        stop_leftover(stale.nats_pid, "nats-server");
        for (name, pid) in &stale.service_pids {
            stop_leftover(*pid, &format!("tollgate-{name}"));
        }
        say!(
            "cleared a stale lock left by tollgate dev (pid {}), which did not stop cleanly",
            stale.pid
        );
    }
    let mut stack = start(&args, &dir).await?;
    let state = DevState {
        pid: std::process::id(),
        nats_url: stack.nats_url.clone(),
        registry_url: stack.registry_url.clone(),
        server_url: stack.server_url.clone(),
        server_grpc_addr: stack.server_grpc_addr.clone(),
        dashboard_url: stack.dashboard_url.clone(),
        tokens_file: stack
            .tokens
            .as_ref()
            .map(|t| t.file.display().to_string())
            .unwrap_or_default(),
        cli_token_file: stack
            .tokens
            .as_ref()
            .map(|t| t.cli_file.display().to_string())
            .unwrap_or_default(),
        nats_creds: stack
            .nats_auth
            .as_ref()
            .map(|d| d.join("operator.creds").display().to_string())
            .unwrap_or_default(),
        nats_pid: stack.inner.nats.id(),
        service_pids: stack
            .inner
            .services
            .iter()
            .map(|(n, c)| (n.clone(), c.id()))
            .collect(),
        processes: args.processes,
    };
    let state_path = dir.join(STATE_FILE);
    let json = serde_json::to_string_pretty(&state)?;
    std::fs::write(&state_path, json).map_err(|e| CliError::file(&state_path, e))?;
    print_screen(&state, &dir);
    for spec in &args.apply {
        // With the stack's own admin token (in its data directory), as `tollgate apply`.
        let token = std::fs::read_to_string(&state.cli_token_file).unwrap_or_default();
        let how = crate::specs::Apply {
            token: token.trim().to_string(),
            identity: DEV_CLI.into(),
            allow_frequent_schedule: false,
        };
        if let Err(e) = crate::specs::apply(&state.nats_url, &state.registry_url, &how, spec).await
        {
            say!("could not apply {}: {e}", spec.display());
        }
    }
    tollgate_service::shutdown_signal().await;
    say!(
        "stopping: services finish or release the stages in hand, then nats-server stops (Ctrl-C again: stop at once)"
    );
    let mut pids: Vec<u32> = stack.inner.services.iter().map(|(_, c)| c.id()).collect();
    pids.push(stack.inner.nats.id());
    let second = tokio::spawn({
        let state_path = state_path.clone();
        async move {
            tollgate_service::shutdown_signal().await;
            say!("stopping at once");
            kill_now(&pids);
            let _ = std::fs::remove_file(&state_path);
            std::process::exit(130);
        }
    });
    // One grace for everything: the hosted services and the children stop together.
    let grace = Duration::from_secs(args.shutdown_grace_secs) + Duration::from_secs(1);
    stack.inner.stop.cancel();
    let tasks = std::mem::take(&mut stack.inner.tasks);
    if tokio::time::timeout(grace, futures::future::join_all(tasks))
        .await
        .is_err()
    {
        say!("services still busy after {grace:?}; stopping them anyway");
    }
    let mut children: Vec<Child> = std::mem::take(&mut stack.inner.services)
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let mut nats = stack.inner.nats;
    tokio::task::spawn_blocking(move || {
        stop_all(&mut children, grace);
        stop_all(std::slice::from_mut(&mut nats), NATS_STOP);
    })
    .await
    .map_err(|e| CliError::Usage(format!("stopping the stack: {e}")))?;
    second.abort();
    let _ = std::fs::remove_file(&state_path);
    say!("stopped; the data stays in {}", dir.display());
    drop(lock);
    Ok(())
}

/// A started stack and its addresses.
struct Started {
    inner: Stack,
    nats_url: String,
    registry_url: String,
    server_url: String,
    server_grpc_addr: String,
    dashboard_url: String,
    tokens: Option<DevTokens>,
    nats_auth: Option<PathBuf>,
}

/// The registry tokens of a dev stack: its token file, each service's token and the file
/// holding the CLI's.
struct DevTokens {
    file: PathBuf,
    services: ServiceTokens,
    cli_file: PathBuf,
}

/// Makes the stack's tokens afresh (each start revokes the last start's): one per service
/// with its own role (`dev-trainer` as trainer, ...) and an `admin` token for the CLI in
/// `dir/cli.token` (the person running the stack administers it).
fn dev_tokens(dir: &Path) -> Result<DevTokens, CliError> {
    use tollgate_service::tokens::{Role, TokenFile};
    let file = dir.join("tokens.toml");
    let usage = |e: tollgate_service::tokens::TokenError| CliError::Usage(e.to_string());
    let mut tokens = TokenFile::load(&file).map_err(usage)?;
    let identity = |service: &str| format!("dev-{service}");
    let names: Vec<&str> = tollgate_stack::SERVICES
        .into_iter()
        .chain(["server"])
        .collect();
    for name in &names {
        tokens.revoke(&identity(name), false);
    }
    tokens.revoke(DEV_CLI, false);
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut services = ServiceTokens::new();
    for name in names {
        let token = tokens
            .add(&identity(name), Role::of_service(name), created.clone())
            .map_err(usage)?;
        services.insert(name.to_string(), token);
    }
    let cli = tokens.add(DEV_CLI, Role::Admin, created).map_err(usage)?;
    tokens.save(&file).map_err(usage)?;
    let cli_file = dir.join("cli.token");
    crate::tokens::write_secret(&cli_file, &cli)?;
    Ok(DevTokens {
        file,
        services,
        cli_file,
    })
}

/// How long nats-server gets to stop, once the services have.
const NATS_STOP: Duration = Duration::from_secs(5);

/// The identity of a dev stack's CLI token.
const DEV_CLI: &str = "dev-cli";

async fn start(args: &DevArgs, dir: &Path) -> Result<Started, CliError> {
    let logs = dir.join("logs");
    let nats_bin = find_nats_server()?;
    let nats_port = match args.nats_port {
        0 => free_port()?,
        p => p,
    };
    let nats_log = logs.join("nats-server.log");
    // Unless --open: nats-server with a user and permissions per identity, each service
    // signing in with its own credentials.
    let nats_auth = if args.open {
        None
    } else {
        let auth_dir = dir.join("nats-auth");
        crate::tokens::nats_config(&auth_dir)?;
        Some(auth_dir)
    };
    // One config: the JetStream block with its storage limit, then the users, if any.
    let mut nats_conf = tollgate_bus::catalog::local_jetstream_config(&dir.join("nats"));
    if let Some(auth_dir) = &nats_auth {
        let auth = auth_dir.join("nats-server.conf");
        nats_conf.push_str(&std::fs::read_to_string(&auth).map_err(|e| CliError::file(&auth, e))?);
    }
    let nats_conf_path = dir.join("nats-server.conf");
    std::fs::write(&nats_conf_path, nats_conf).map_err(|e| CliError::file(&nats_conf_path, e))?;
    let mut nats_command = Command::new(&nats_bin);
    nats_command
        .args(["-a", "127.0.0.1", "-p", &nats_port.to_string(), "-js", "-c"])
        .arg(&nats_conf_path);
    let mut nats = nats_command
        .stdout(Stdio::null())
        .stderr(log_file(&logs, "nats-server")?)
        .spawn()
        .map_err(|e| CliError::file(&nats_bin, e))?;
    if let Err(e) = wait_listening(nats_port, &mut nats, "nats-server", &nats_log) {
        let _ = nats.kill();
        return Err(e.into());
    }
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.grpc_port))
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen for the registry: {e}")))?;
    let grpc_addr = listener
        .local_addr()
        .map_err(|e| CliError::Usage(format!("registry address: {e}")))?;
    let registry_url = format!("http://{grpc_addr}");
    let cache_dir = dir.join("cache");
    let server = if args.serve.trim().is_empty() {
        None
    } else {
        let port = match args.server_port {
            0 => free_port()?,
            p => p,
        };
        let grpc_port = match args.server_grpc_port {
            0 => free_port()?,
            p => p,
        };
        Some(ServerHosting {
            models: args.serve.clone(),
            addr: format!("127.0.0.1:{port}"),
            grpc_addr: format!("127.0.0.1:{grpc_port}"),
        })
    };
    let server_url = server
        .as_ref()
        .map(|s| format!("http://{}", s.addr))
        .unwrap_or_default();
    let server_grpc_addr = server
        .as_ref()
        .map(|s| s.grpc_addr.clone())
        .unwrap_or_default();
    let dashboard_addr = format!("127.0.0.1:{}", free_port()?);
    let tokens = if args.open {
        None
    } else {
        Some(dev_tokens(dir)?)
    };
    let data_roots = match &args.data_roots {
        Some(roots) => roots.clone(),
        None => std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
    };
    let mut stack = Stack {
        nats,
        services: Vec::new(),
        tasks: Vec::new(),
        stop: CancellationToken::new(),
    };
    let started = if args.processes {
        drop(listener);
        processes::spawn(&Layout {
            nats_url: &nats_url,
            grpc_addr: &grpc_addr.to_string(),
            cache_dir: &cache_dir,
            logs: &logs,
            server: server.as_ref(),
            dashboard_addr: &dashboard_addr,
            tokens: tokens.as_ref().map(|t| (t.file.as_path(), &t.services)),
            data_roots: &data_roots,
            data_buckets: &args.data_buckets,
            nats_auth: nats_auth.as_deref(),
            shutdown_grace_secs: args.shutdown_grace_secs,
        })
        .map(|children| stack.services = children)
        .map_err(CliError::from)
    } else {
        let mut hosted = Hosted::new(&nats_url, &registry_url, cache_dir);
        hosted.shutdown_grace_secs = args.shutdown_grace_secs;
        hosted.data_roots = data_roots.clone();
        hosted.data_buckets = args.data_buckets.clone();
        hosted.server = server.clone();
        hosted.dashboard_addr = dashboard_addr.clone();
        if let Some(t) = &tokens {
            hosted.tokens_file = Some(t.file.clone());
            hosted.nats_creds_dir = nats_auth.clone();
            hosted.service_tokens = t.services.clone();
        }
        stack.tasks = host_services(hosted, listener, &stack.stop);
        Ok(())
    };
    if let Err(e) = started {
        stack.stop.cancel();
        for (_, mut child) in stack.services {
            let _ = child.kill();
        }
        let _ = stack.nats.kill();
        return Err(e);
    }
    Ok(Started {
        inner: stack,
        nats_url,
        registry_url,
        server_url,
        server_grpc_addr,
        dashboard_url: format!("http://{dashboard_addr}/"),
        tokens,
        nats_auth,
    })
}

/// The one screen: where everything is, and what to type in another terminal.
fn print_screen(state: &DevState, dir: &Path) {
    let how = if state.processes {
        "as separate processes"
    } else {
        "in this process"
    };
    say!(
        "Tollgate dev stack (pid {}), services {how}; data in {}",
        state.pid,
        dir.display()
    );
    say!("  NATS       {}", state.nats_url);
    say!("  registry   {}", state.registry_url);
    if !state.dashboard_url.is_empty() {
        say!("  dashboard  {}", state.dashboard_url);
        say!(
            "  approvals  {}approvals (the console: also runs/RUN and models/MODEL; sign in with a registry token)",
            state.dashboard_url
        );
    }
    if !state.nats_creds.is_empty() {
        say!(
            "  NATS users {} (each service signs in as itself)",
            Path::new(&state.nats_creds)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    if state.tokens_file.is_empty() {
        say!("  tokens     none: the registry is open (--open)");
    } else {
        say!(
            "  tokens     {} (tollgate token create --identity NAME --role approver)",
            state.tokens_file
        );
    }
    if !state.server_url.is_empty() {
        say!(
            "  server     {}/v2 (Open Inference Protocol)",
            state.server_url
        );
    }
    if !state.server_grpc_addr.is_empty() {
        say!(
            "  server gRPC {} (GRPCInferenceService)",
            state.server_grpc_addr
        );
    }
    say!("  logs       {}", dir.join("logs").display());
    say!("In another terminal (in this directory `tollgate` finds the stack by itself):");
    say!("  export TOLLGATE_NATS_URL={}", state.nats_url);
    say!("  export TOLLGATE_REGISTRY_URL={}", state.registry_url);
    say!("  export TOLLGATE_DATA_DIR={}", dir.display());
    say!(
        "  tollgate publish data --spec examples/churn/tollgate.yaml --dataset churn.parquet --wait"
    );
    say!(
        "Ctrl-C stops everything; runs, versions, approvals and specs stay in the data directory."
    );
}
