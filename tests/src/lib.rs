//! The end-to-end harness: a real `nats-server` with JetStream per test (free loopback
//! port, temporary store, killed on drop) and the six services hosted in-process through
//! their `run` functions, the registry on a port-0 gRPC listener.
//!
//! The nats-server binary is `$TOLLGATE_NATS_SERVER`, else the one `make` installs under
//! `.tools/venv/bin/`.

use std::{
    collections::HashMap,
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use tollgate_pipeline::Stores;

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tollgate_bus::{Bus, subjects};
use tollgate_proto::{ListRunsRequest, RunSummary, Trigger, TriggerKind};
use tollgate_service::RegistryConfig;
use tollgate_stack::{Hosted, host_services};

/// Telemetry for the whole test process: dropping the guard would shut the tracer down.
/// A binary that installed its own subscriber first keeps it (the second install is a no-op).
static TELEMETRY: std::sync::OnceLock<tollgate_telemetry::Guard> = std::sync::OnceLock::new();

pub mod load;
pub mod processes;
pub mod servers;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The churn example spec shipped with the project.
pub fn example_spec() -> String {
    std::fs::read_to_string(workspace_root().join("examples/churn/tollgate.yaml"))
        .unwrap_or_default()
}

/// A free TCP port on loopback for a child process to listen on.
///
/// Not `bind(:0)`: that hands out ephemeral ports, which the kernel also gives to outgoing
/// connections and other tests' servers between our release and the child's bind. These
/// come at random from below Linux's ephemeral range, never twice in one test process.
pub fn free_port() -> anyhow::Result<u16> {
    use std::collections::BTreeSet;
    static GIVEN: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    const LOW: u128 = 20_000;
    const SPAN: u128 = 12_000;
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..1000 {
        let port = u16::try_from(LOW + ulid::Ulid::new().random() % SPAN)?;
        if !given.contains(&port) && StdListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    bail!("no free loopback port between {LOW} and {}", LOW + SPAN)
}

/// The pinned nats-server, found as `tollgate dev` finds it: `TOLLGATE_NATS_SERVER`,
/// then `.tools/venv/bin/nats-server` (`make tools`), then `PATH`.
pub fn nats_server_binary() -> anyhow::Result<PathBuf> {
    Ok(tollgate_stack::children::find_nats_server()?)
}

/// A nats-server with JetStream on a free loopback port and a temporary store.
pub struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:<port>`.
    pub url: String,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts the server on a port it picks itself (`-p -1`, so no other test can take it
    /// between choosing and binding) and reads the port from its log.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// [`NatsServer::start`] with a config file (`-c`): users and permissions from
    /// `tollgate nats-config`.
    pub fn start_with(config: Option<&Path>) -> anyhow::Result<Self> {
        let store = tempfile::tempdir()?;
        let (child, port) = spawn_nats(store.path(), None, config)?;
        Ok(NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        })
    }

    /// Kills the server with SIGKILL, then starts it again on the same port and store: a
    /// crash and a restart.
    pub fn kill_and_restart(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        let port: u16 = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("the server's URL has no port")?;
        let (child, _) = spawn_nats(self._store.path(), Some(port), None)?;
        self.child = child;
        Ok(())
    }
}

/// Starts nats-server with JetStream on `store`, on `port` or one it picks; returns the
/// child once it listens, with its port.
fn spawn_nats(
    store: &Path,
    port: Option<u16>,
    config: Option<&Path>,
) -> anyhow::Result<(Child, u16)> {
    use std::io::BufRead;
    let port_arg = port.map_or("-1".to_string(), |p| p.to_string());
    // One config: the JetStream block with its storage limit, then the given one's users.
    let mut text = tollgate_bus::catalog::local_jetstream_config(store);
    if let Some(config) = config {
        text.push_str(&std::fs::read_to_string(config).context("reading the NATS config")?);
    }
    let conf = store.join("nats-server.conf");
    std::fs::write(&conf, text)?;
    let mut command = Command::new(nats_server_binary()?);
    command
        .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-c"])
        .arg(&conf);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting nats-server")?;
    let stderr = child.stderr.take().context("nats-server stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(port) = line
                .split("Listening for client connections on ")
                .nth(1)
                .and_then(|addr| addr.trim().rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(port);
            }
        }
    });
    let port = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(port) => port,
        Err(_) => {
            let _ = child.kill();
            bail!("nats-server did not report its port within 10 s");
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nats-server did not listen on port {port} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, port))
}

/// A cluster of nats-servers with JetStream on loopback: each node its own client port,
/// route port and store, routes to all the others, as three pods of a StatefulSet.
pub struct NatsCluster {
    nodes: Vec<Option<Child>>,
    /// Every node's `nats://127.0.0.1:<port>`, comma-separated: what clients connect to.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until JetStream has a meta leader, so streams with
    /// `size` replicas can be created. A cluster that does not come up (a port another
    /// test's process took between choosing and binding) is stopped and started again on
    /// new ports, up to three times.
    pub fn start(size: usize) -> anyhow::Result<Self> {
        let mut failed = Vec::new();
        for _ in 0..3 {
            match Self::start_once(size) {
                Ok(cluster) => return Ok(cluster),
                Err(e) => failed.push(format!("{e:#}")),
            }
        }
        bail!("no NATS cluster in three tries:\n{}", failed.join("\n"))
    }

    fn start_once(size: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let clients = (0..size)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let routes = (0..size)
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let route_urls = routes
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::with_capacity(size);
        for (i, (client, route)) in clients.iter().zip(&routes).enumerate() {
            let store = dir.path().join(format!("n{i}"));
            let conf = dir.path().join(format!("n{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "server_name: n{i}\nlisten: \"127.0.0.1:{client}\"\n{}\
                     cluster {{ name: tollgate, listen: \"127.0.0.1:{route}\", routes: [{route_urls}] }}\n",
                    tollgate_bus::catalog::local_jetstream_config(&store)
                ),
            )?;
            let log = std::fs::File::create(dir.path().join(format!("n{i}.log")))?;
            let child = Command::new(nats_server_binary()?)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting a cluster node")?;
            nodes.push(Some(child));
        }
        let url = clients
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        let cluster = NatsCluster {
            nodes,
            url,
            _dir: dir,
        };
        cluster.wait_for_jetstream(size)?;
        Ok(cluster)
    }

    /// Waits until a stream with `replicas` replicas can be created (the nodes have found
    /// each other and elected a meta leader), then deletes it.
    fn wait_for_jetstream(&self, replicas: usize) -> anyhow::Result<()> {
        // On a thread of its own, so a caller inside a Tokio runtime (the bench) may wait.
        std::thread::scope(|scope| {
            scope
                .spawn(|| self.probe_jetstream(replicas))
                .join()
                .unwrap_or_else(|_| bail!("the cluster probe panicked"))
        })
    }

    fn probe_jetstream(&self, replicas: usize) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut last = String::new();
            while Instant::now() < deadline {
                let probe = async {
                    let addrs: Vec<async_nats::ServerAddr> = self
                        .url
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?;
                    let client = async_nats::connect(addrs.as_slice()).await?;
                    let js = async_nats::jetstream::new(client);
                    js.get_or_create_stream(async_nats::jetstream::stream::Config {
                        name: "CLUSTER_PROBE".into(),
                        subjects: vec!["cluster.probe".into()],
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await?;
                    js.delete_stream("CLUSTER_PROBE").await?;
                    anyhow::Ok(())
                };
                match tokio::time::timeout(Duration::from_secs(10), probe).await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => last = e.to_string(),
                    Err(_) => last = "no answer within 10 s".into(),
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let logs: String = (0..self.nodes.len())
                .map(|i| {
                    let log = std::fs::read_to_string(self._dir.path().join(format!("n{i}.log")))
                        .unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    format!(
                        "--- n{i}\n{}\n",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            bail!("the NATS cluster's JetStream did not come up within 30 s: {last}\n{logs}")
        })
    }

    /// Kills node `i` with SIGKILL: a node lost mid-run. It stays down.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.nodes.get_mut(i).and_then(Option::take) {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until each work-stream consumer named in `pulling` has at least that many pull
/// requests waiting at its leader: every replica is ready for work. On a fresh cluster a
/// consumer's leader is elected a few seconds after the services start, and until then a
/// replica's pulls go unanswered.
pub async fn wait_until_pulling(
    bus: &Bus,
    pulling: &[(String, usize)],
    within: Duration,
) -> anyhow::Result<()> {
    let work = bus
        .jetstream()
        .get_stream(tollgate_bus::subjects::WORK_STREAM)
        .await?;
    let deadline = Instant::now() + within;
    for (name, replicas) in pulling {
        loop {
            let waiting = match work.consumer_info(name).await {
                Ok(info) => info.num_waiting,
                Err(_) => 0,
            };
            if waiting >= *replicas {
                break;
            }
            if Instant::now() > deadline {
                bail!("{name}: {waiting} of {replicas} replicas pulling after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// An address where nothing listens (port 1), for tests of an unreachable service.
pub const UNREACHABLE: &str = "http://127.0.0.1:1";

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole pipeline: nats-server plus the six services in-process.
pub struct Pipeline {
    /// The NATS server.
    pub nats: NatsServer,
    /// `http://127.0.0.1:<port>` of the registry.
    pub registry_url: String,
    /// Scratch space for datasets.
    pub dir: tempfile::TempDir,
    /// A connection for the test's own publishing and reading.
    pub bus: Bus,
    /// The bearer token [`Pipeline::registry`] calls with (empty: none).
    pub token: String,
    verdicts: Verdicts,
    stop: CancellationToken,
}

/// The first verdict of each trigger's run, by trigger id, as the runs stream announces it:
/// the harness learns verdicts from the run's own events, not by asking the registry.
#[derive(Clone)]
struct Verdicts {
    seen: std::sync::Arc<std::sync::Mutex<HashMap<String, RunSummary>>>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Verdicts {
    /// Follows every run's `completed` event until `stop`.
    async fn follow(bus: &Bus, stop: CancellationToken) -> anyhow::Result<Self> {
        let verdicts = Verdicts {
            seen: Default::default(),
            changed: tokio::sync::watch::Sender::new(0),
        };
        let mut completions = Box::pin(tollgate_pipeline::events::completions(bus).await?);
        let v = verdicts.clone();
        tokio::spawn(async move {
            while let Some(Some(summary)) = stop.run_until_cancelled(completions.next()).await {
                v.lock()
                    .entry(summary.trigger_id.clone())
                    .or_insert(summary);
                v.changed.send_modify(|n| *n += 1);
            }
        });
        Ok(verdicts)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunSummary>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits up to `timeout` for the verdict of the run `trigger_id` started.
    async fn of(&self, trigger_id: &str, timeout: Duration) -> anyhow::Result<RunSummary> {
        let mut changed = self.changed.subscribe();
        let wait = async {
            loop {
                if let Some(run) = self.lock().get(trigger_id) {
                    return Ok(run.clone());
                }
                if changed.changed().await.is_err() {
                    bail!("the runs stream follower stopped");
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| {
            anyhow::anyhow!(
                "no verdict for trigger {trigger_id} within {} s",
                timeout.as_secs()
            )
        })?
    }
}

impl Pipeline {
    /// Starts nats-server and every service.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts nats-server and every service; `trainer_registry_url` points the trainer at
    /// another registry address (tests of an unreachable registry).
    pub async fn start_with(trainer_registry_url: Option<String>) -> anyhow::Result<Self> {
        Self::start_hosted(|hosted| {
            if let Some(elsewhere) = trainer_registry_url {
                hosted.trainer_registry = RegistryConfig::at(elsewhere);
            }
        })
        .await
    }

    /// Starts nats-server and every service, after `adjust` changed how they are hosted
    /// (another clock for schedules, another registry for the trainer).
    pub async fn start_hosted(adjust: impl FnOnce(&mut Hosted)) -> anyhow::Result<Self> {
        Self::start_on(NatsServer::start()?, None, adjust).await
    }

    /// Starts nats-server with the users and permissions `tollgate nats-config` wrote into
    /// `creds_dir`, and every service signed in as itself; the harness signs in as
    /// `admin` (it bootstraps policies as the registry would).
    pub async fn start_secured(
        creds_dir: &Path,
        adjust: impl FnOnce(&mut Hosted),
    ) -> anyhow::Result<Self> {
        tollgate_cli::nats_config(creds_dir)?;
        let nats = NatsServer::start_with(Some(&creds_dir.join("nats-server.conf")))?;
        let dir = creds_dir.to_path_buf();
        Self::start_on(nats, Some(dir.join("admin.creds")), |h| {
            h.nats_creds_dir = Some(dir);
            adjust(h);
        })
        .await
    }

    async fn start_on(
        nats: NatsServer,
        harness_creds: Option<PathBuf>,
        adjust: impl FnOnce(&mut Hosted),
    ) -> anyhow::Result<Self> {
        TELEMETRY.get_or_init(|| tollgate_telemetry::init("e2e"));
        let dir = tempfile::tempdir()?;
        let stop = CancellationToken::new();
        let url = nats.url.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let registry_url = format!("http://{}", listener.local_addr()?);
        let cache_dir = dir.path().join("cache");
        let mut hosted = Hosted::new(&url, &registry_url, cache_dir);
        adjust(&mut hosted);
        host_services(hosted, listener, &stop);
        let auth = tollgate_bus::bus::Options {
            creds: harness_creds,
            ca: None,
            ..Default::default()
        };
        let bus = Bus::connect_with(&url, &auth).await?;
        let verdicts = Verdicts::follow(&bus, stop.clone()).await?;
        // The churn example is the policy of model churn, as an admin would apply it
        // before the first run; tests propose their variants of it.
        let parsed = tollgate_spec::ModelSpec::parse(&example_spec())?;
        tollgate_pipeline::specs::apply(
            &bus,
            &parsed,
            &example_spec(),
            None,
            tollgate_bus::now_ms(),
            "e2e-admin",
        )
        .await?;
        Ok(Pipeline {
            nats,
            registry_url,
            dir,
            bus,
            token: String::new(),
            verdicts,
            stop,
        })
    }

    /// A registry client, calling with [`Pipeline::token`].
    pub fn registry(&self) -> anyhow::Result<tollgate_proto::RegistryApi> {
        self.registry_with(&self.token)
    }

    /// A registry client calling with bearer `token`.
    pub fn registry_with(&self, token: &str) -> anyhow::Result<tollgate_proto::RegistryApi> {
        Ok(tollgate_proto::registry_client_with_token(
            &self.registry_url,
            token,
        )?)
    }

    /// Writes a generated churn dataset into the scratch dir; returns its path.
    pub fn dataset(
        &self,
        name: &str,
        rows: usize,
        seed: u64,
        dirty: bool,
    ) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join(name);
        let mut df =
            tollgate_ml::synth::churn(tollgate_ml::synth::SynthOptions { rows, seed, dirty })?;
        tollgate_ml::data::write(&mut df, &path)?;
        Ok(path)
    }

    /// Makes `spec` its model's policy, as `tollgate apply` by an admin does (through the
    /// bus, with `e2e-admin` recorded as who applied it).
    pub async fn apply(&self, spec: &str) -> anyhow::Result<()> {
        let parsed = tollgate_spec::ModelSpec::parse(spec)?;
        let now = tollgate_bus::now_ms();
        tollgate_pipeline::specs::apply(&self.bus, &parsed, spec, None, now, "e2e-admin").await?;
        Ok(())
    }

    /// Applies `spec` when it parses and its model has no policy yet: the harness plays
    /// the admin who applied it before any run.
    async fn apply_first(&self, spec: &str) -> anyhow::Result<()> {
        let Ok(parsed) = tollgate_spec::ModelSpec::parse(spec) else {
            return Ok(());
        };
        if self.bus.specs().current(&parsed.model).await?.is_none() {
            self.apply(spec).await?;
        }
        Ok(())
    }

    /// Publishes a trigger; returns its id (applying `spec` first, as above).
    pub async fn trigger(
        &self,
        kind: TriggerKind,
        model: &str,
        spec: &str,
        dataset_uri: &str,
    ) -> anyhow::Result<String> {
        self.apply_first(spec).await?;
        let trigger = Trigger {
            trigger_id: ulid::Ulid::new().to_string(),
            kind: kind as i32,
            model: model.into(),
            spec_yaml: spec.into(),
            dataset_uri: dataset_uri.into(),
            code_commit: "e2e".into(),
            ..Default::default()
        };
        self.publish_trigger(&trigger, Some(&trigger.trigger_id))
            .await?;
        Ok(trigger.trigger_id)
    }

    /// Publishes a trigger message as is (`msg_id` `None` disables JetStream's dedupe),
    /// after applying its spec when its model has no policy yet.
    pub async fn publish_trigger(
        &self,
        trigger: &Trigger,
        msg_id: Option<&str>,
    ) -> anyhow::Result<()> {
        self.apply_first(&trigger.spec_yaml).await?;
        let kind = TriggerKind::try_from(trigger.kind).unwrap_or(TriggerKind::Data);
        self.bus
            .publish(subjects::trigger(kind), trigger, msg_id)
            .await?;
        Ok(())
    }

    /// Triggers a run of the churn model on the file at `path` and waits for its verdict.
    pub async fn run_file(
        &self,
        kind: TriggerKind,
        spec: &str,
        path: &Path,
    ) -> anyhow::Result<RunSummary> {
        let trigger_id = self
            .trigger(
                kind,
                "churn",
                spec,
                &tollgate_pipeline::dataset::file_uri(path),
            )
            .await?;
        self.verdict(&trigger_id).await
    }

    /// Every run of `model` the registry has recorded, newest first.
    pub async fn runs(&self, model: &str) -> anyhow::Result<Vec<RunSummary>> {
        let request = ListRunsRequest {
            model: model.into(),
            limit: 100_000,
        };
        Ok(self.registry()?.list_runs(request).await?.into_inner().runs)
    }

    /// Waits (up to 120 s) for the run started by `trigger_id` to end; returns the run as
    /// its `completed` event carried it (the registry records the same event).
    pub async fn verdict(&self, trigger_id: &str) -> anyhow::Result<RunSummary> {
        self.verdicts.of(trigger_id, Duration::from_secs(120)).await
    }
}

impl Pipeline {
    /// A token cancelled when the pipeline is dropped, for services a test adds.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
