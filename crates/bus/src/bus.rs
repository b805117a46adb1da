//! Connecting to NATS and opening every stream, consumer, KV bucket and object store the
//! pipeline uses. The registry (and `admin`, or a connection without credentials)
//! creates a missing one, bounded by `max_bytes`, and checks one that exists is
//! Tollgate's; every other service waits for it, so any service can start first.

use std::time::Duration;

use async_nats::jetstream::{
    self, consumer,
    kv::Store,
    object_store::ObjectStore,
    stream::{self, RetentionPolicy, StorageType},
};

use backon::{ExponentialBuilder, Retryable};
use tracing::warn;

use crate::catalog::{OBJECT_STORES, STREAMS};
pub use crate::catalog::{default_max_bytes, stream_names};
pub use crate::error::{BusError, Cause};
use crate::subjects::{self, Bucket};

/// Attempts a connection that does not create streams makes before giving up on the
/// registry creating them: about two and a half minutes, since the registry may start
/// after it, or be placing three replicas on a busy cluster.
const WAIT_FOR_STREAMS_TRIES: usize = 35;

/// How long a stage may hold a message before JetStream redelivers it, unless the
/// worker sends progress acks (it does, every third of this); the default of
/// [`Bus::with_ack_wait`].
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// How long the message in hand may keep working after shutdown is asked before it is
/// nak'ed, by default; below Kubernetes' default 30 s termination grace period.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);
/// Deliveries of a message before it is dead-lettered.
pub const MAX_DELIVER: i64 = 5;
/// JetStream's publish dedupe window (`Nats-Msg-Id`).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A connection to NATS with every Tollgate stream, bucket and store opened. The buckets
/// and stores are reached through their owning modules, not from here.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    buckets: Vec<Store>,
    artifacts: ObjectStore,
    datasets: ObjectStore,
    code: ObjectStore,
    failures: ObjectStore,
    ack_wait: Duration,
    shutdown_grace: Duration,
}

/// How a connection signs in to NATS, which servers it trusts, and how many copies of
/// each stream, bucket and store it asks for when it creates them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// A `.creds` file from `tollgate nats-config`; `None`: no credentials.
    pub creds: Option<std::path::PathBuf>,
    /// A CA certificate (PEM) that signs the server's TLS certificate; `None`: plain TCP.
    pub ca: Option<std::path::PathBuf>,
    /// Replicas of every stream, bucket and object store this connection creates (3 on
    /// a three-node cluster); 0 or 1: one. Ones that exist are opened as they are.
    pub replicas: usize,
    /// Byte caps by stream, bucket or store name over [`default_max_bytes`], for the ones
    /// this connection creates (`TOLLGATE_NATS_MAX_BYTES`).
    pub max_bytes: Vec<(String, u64)>,
}

impl Options {
    /// The variables [`Options::from_env`] reads: credentials, CA, replicas, byte caps.
    pub const ENV_VARS: [&str; 4] = [
        "TOLLGATE_NATS_CREDS",
        "TOLLGATE_NATS_CA",
        "TOLLGATE_NATS_REPLICAS",
        "TOLLGATE_NATS_MAX_BYTES",
    ];

    /// `TOLLGATE_NATS_CREDS`, `TOLLGATE_NATS_CA`, `TOLLGATE_NATS_REPLICAS` and
    /// `TOLLGATE_NATS_MAX_BYTES` (`tollgate_datasets=20GiB,TOLLGATE_RUNS=2GiB`), where set:
    /// what the services and the CLI connect with. A cap that does not parse is skipped
    /// with a warning.
    pub fn from_env() -> Self {
        let [creds, ca, replicas, max_bytes] = Self::ENV_VARS;
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from)
        };
        Options {
            creds: path(creds),
            ca: path(ca),
            replicas: std::env::var(replicas)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(1),
            max_bytes: std::env::var(max_bytes)
                .map(|v| parse_max_bytes(&v))
                .unwrap_or_default(),
        }
    }
}

/// `name=SIZE` pairs, comma-separated (`tollgate_datasets=20GiB`); a pair that does not
/// parse is skipped with a warning.
pub fn parse_max_bytes(text: &str) -> Vec<(String, u64)> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let parsed = pair.split_once('=').and_then(|(name, size)| {
                let size: bytesize::ByteSize = size.trim().parse().ok()?;
                Some((name.trim().to_string(), size.as_u64()))
            });
            if parsed.is_none() {
                warn!(
                    pair,
                    "TOLLGATE_NATS_MAX_BYTES: not NAME=SIZE (tollgate_datasets=20GiB); skipped"
                );
            }
            parsed
        })
        .collect()
}

/// What a connection does about the streams, buckets and stores: create missing ones (or
/// wait for them), with how many replicas and which byte caps.
struct Setup {
    create: bool,
    replicas: usize,
    max_bytes: Vec<(String, u64)>,
}

impl Setup {
    /// The cap on `name`: the configured one, else its default.
    fn max_bytes(&self, name: &str) -> i64 {
        let bytes = self
            .max_bytes
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| default_max_bytes(name), |(_, b)| *b);
        i64::try_from(bytes).unwrap_or(i64::MAX)
    }
}

/// The servers of a NATS URL: one, or several separated by commas (the nodes of a
/// cluster, any of which will do).
fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| u.parse().map_err(|e| format!("{u}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|addrs| {
            if addrs.is_empty() {
                Err("no server in the URL".into())
            } else {
                Ok(addrs)
            }
        })
}

impl Bus {
    /// Connects to `url` as [`Options::from_env`] says (`TOLLGATE_NATS_CREDS`,
    /// `TOLLGATE_NATS_CA`, `TOLLGATE_NATS_REPLICAS`) and creates (or opens) every stream,
    /// bucket and store.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with(url, &Options::from_env()).await
    }

    /// Connects to `url` (one server, or a cluster's, comma-separated) with `options`
    /// and creates (or opens) every stream, bucket and store.
    pub async fn connect_with(url: &str, options: &Options) -> Result<Self, BusError> {
        let refused = |source: String| BusError::Connect {
            url: url.into(),
            source: source.into(),
        };
        let mut connect = async_nats::ConnectOptions::new()
            .name("tollgate")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5));
        if let Some(path) = &options.creds {
            let text = std::fs::read_to_string(path)
                .map_err(|e| refused(format!("credentials file {}: {e}", path.display())))?;
            let (identity, seed) = crate::access::parse_creds(&text)
                .map_err(|e| refused(format!("credentials file {}: {e}", path.display())))?;
            connect = connect
                .nkey(seed)
                .custom_inbox_prefix(identity.inbox_prefix());
        }
        if let Some(ca) = &options.ca {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        let addrs = server_addrs(url).map_err(refused)?;
        let client = connect.connect(addrs.as_slice());
        let client = tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .map_err(|_| BusError::Connect {
                url: url.into(),
                source: "no answer within 30 s".into(),
            })?
            .map_err(|e| BusError::Connect {
                url: url.into(),
                source: e.into(),
            })?;
        let js = jetstream::new(client.clone());
        let identity = match &options.creds {
            Some(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|t| crate::access::parse_creds(&t).ok())
                .map(|(identity, _)| identity),
            None => None,
        };
        let setup = Setup {
            create: identity.is_none_or(crate::access::Identity::creates_streams),
            replicas: options.replicas.max(1),
            max_bytes: options.max_bytes.clone(),
        };
        // A cluster that is still electing leaders, or busy placing replicas for services
        // that all start at once, times requests out for a while: try again before
        // giving up.
        let Opened {
            buckets,
            artifacts,
            datasets,
            code,
            failures,
        } = (|| open_all(&js, &setup))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(250))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(if setup.create {
                        8
                    } else {
                        WAIT_FOR_STREAMS_TRIES
                    }),
            )
            .notify(|e, after| warn!(error = %e, ?after, "NATS JetStream not ready (or the registry has not created its streams yet); trying again"))
            .await?;
        Ok(Bus {
            client,
            js,
            buckets,
            artifacts,
            datasets,
            code,
            failures,
            ack_wait: ACK_WAIT,
            shutdown_grace: SHUTDOWN_GRACE,
        })
    }

    /// The same connection, creating consumers with `ack_wait` instead of [`ACK_WAIT`].
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// How long a held message waits before it is delivered again.
    pub fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// The same connection, giving the message in hand `grace` to finish on shutdown
    /// (a service's `shutdown_grace_secs`) instead of [`SHUTDOWN_GRACE`].
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// How long the message in hand may keep working once shutdown is asked.
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// The core NATS client (plain subscriptions and publishes).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (streams and consumers; the tests read dead letters here).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// The model artifacts object store, for its owning module in `tollgate-pipeline`.
    pub fn artifacts_store(&self) -> &ObjectStore {
        &self.artifacts
    }

    /// The pushed datasets object store, for its owning module in `tollgate-pipeline`.
    pub fn datasets_store(&self) -> &ObjectStore {
        &self.datasets
    }

    /// The code and uploaded models object store, for its owning module in `tollgate-pipeline`.
    pub fn code_store(&self) -> &ObjectStore {
        &self.code
    }

    /// The failing rows object store, for its owning module in `tollgate-pipeline`.
    pub fn failures_store(&self) -> &ObjectStore {
        &self.failures
    }

    /// A key-value bucket, for the module that owns it (see [`Bucket`]).
    pub fn key_value(&self, bucket: Bucket) -> Store {
        // `Bucket::ALL` lists every variant in declaration order, as `connect` created them.
        self.buckets[bucket as usize].clone()
    }

    /// Opens (creating if needed) a durable pull consumer on the work stream.
    pub async fn work_consumer(
        &self,
        durable: &str,
        filter: &str,
    ) -> Result<consumer::PullConsumer, BusError> {
        self.durable(subjects::WORK_STREAM, durable, filter).await
    }

    /// Opens (creating if needed) a durable pull consumer on `stream` filtered to `filter`.
    pub async fn durable(
        &self,
        stream: &str,
        durable: &str,
        filter: &str,
    ) -> Result<consumer::PullConsumer, BusError> {
        let setup = |e: Cause| BusError::Setup {
            what: format!("consumer {durable} on {stream}"),
            source: e,
        };
        let stream = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| setup(e.into()))?;
        stream
            .get_or_create_consumer(
                durable,
                consumer::pull::Config {
                    durable_name: Some(durable.into()),
                    filter_subject: filter.into(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    max_deliver: MAX_DELIVER,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| setup(e.into()))
    }
}

/// What [`open_all`] opened.
struct Opened {
    buckets: Vec<Store>,
    artifacts: ObjectStore,
    datasets: ObjectStore,
    code: ObjectStore,
    failures: ObjectStore,
}

/// Opens every stream, bucket and store in one attempt, creating missing ones when
/// `setup` may (else a missing one is an error, and the caller tries again).
async fn open_all(js: &jetstream::Context, setup: &Setup) -> Result<Opened, BusError> {
    for spec in &STREAMS {
        let config = stream::Config {
            name: spec.name.into(),
            subjects: spec.subjects.iter().map(|s| s.to_string()).collect(),
            retention: spec.retention,
            max_age: Duration::from_secs(spec.days * 24 * 3600),
            max_bytes: setup.max_bytes(spec.name),
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: setup.replicas,
            // A full work queue refuses new work rather than dropping queued work.
            discard: match spec.retention {
                RetentionPolicy::WorkQueue => stream::DiscardPolicy::New,
                _ => stream::DiscardPolicy::Old,
            },
            ..Default::default()
        };
        ensure_stream(js, config, setup.create, || format!("stream {}", spec.name)).await?;
    }
    let mut buckets = Vec::with_capacity(Bucket::ALL.len());
    for bucket in Bucket::ALL {
        let name = bucket.name();
        let config = stream::Config {
            name: format!("KV_{name}"),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: if bucket.max_age().is_some() { 1 } else { 10 },
            max_age: bucket.max_age().unwrap_or_default(),
            max_bytes: setup.max_bytes(name),
            storage: StorageType::File,
            num_replicas: setup.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: READ_FROM_LEADER,
            // Entries that age out make room by themselves: when full, the oldest go.
            discard: match bucket.max_age() {
                Some(_) => stream::DiscardPolicy::Old,
                None => stream::DiscardPolicy::New,
            },
            ..Default::default()
        };
        let what = || format!("key-value bucket {name}");
        ensure_stream(js, config, setup.create, what).await?;
        let opened = js.get_key_value(name).await;
        buckets.push(opened.map_err(|e| setup_error(what(), e))?);
    }
    let mut stores = Vec::with_capacity(OBJECT_STORES.len());
    for name in OBJECT_STORES {
        let config = stream::Config {
            name: format!("OBJ_{name}"),
            subjects: vec![format!("$O.{name}.C.>"), format!("$O.{name}.M.>")],
            max_bytes: setup.max_bytes(name),
            storage: StorageType::File,
            num_replicas: setup.replicas,
            allow_rollup: true,
            allow_direct: READ_FROM_LEADER,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        };
        let what = || format!("object store {name}");
        ensure_stream(js, config, setup.create, what).await?;
        let opened = js.get_object_store(name).await;
        stores.push(opened.map_err(|e| setup_error(what(), e))?);
    }
    let [artifacts, datasets, code, failures]: [ObjectStore; 4] = stores
        .try_into()
        .map_err(|_| setup_error("object stores".into(), "not four"))?;
    Ok(Opened {
        buckets,
        artifacts,
        datasets,
        code,
        failures,
    })
}

fn setup_error(what: String, source: impl Into<Cause>) -> BusError {
    BusError::Setup {
        what,
        source: source.into(),
    }
}

/// Creates the stream `config` describes when `create` may and it is missing; opens it
/// otherwise. One that exists must carry the subjects and retention Tollgate gives it,
/// or it is someone else's and refused.
async fn ensure_stream(
    js: &jetstream::Context,
    config: stream::Config,
    create: bool,
    what: impl Fn() -> String,
) -> Result<(), BusError> {
    let stream = if create {
        js.get_or_create_stream(config.clone())
            .await
            .map_err(|e| setup_error(what(), e))?
    } else {
        js.get_stream(&config.name).await.map_err(|e| {
            setup_error(
                format!("{} (the registry creates it; is it running?)", what()),
                e,
            )
        })?
    };
    let found = &stream.cached_info().config;
    let mut found_subjects = found.subjects.clone();
    let mut expected_subjects = config.subjects.clone();
    found_subjects.sort();
    expected_subjects.sort();
    if found_subjects != expected_subjects
        || found.retention != config.retention
        || found.deny_delete != config.deny_delete
    {
        return Err(setup_error(
            what(),
            format!(
                "{} exists with subjects {:?}, retention {:?} and deny_delete {}, not Tollgate's {:?}, {:?} and {}: it was made by something else; remove it or use another account",
                config.name,
                found.subjects,
                found.retention,
                found.deny_delete,
                config.subjects,
                config.retention,
                config.deny_delete
            ),
        ));
    }
    Ok(())
}

/// Reads of buckets and stores go to each stream's leader (`allow_direct: false`), so a
/// reader sees every write acknowledged before it, on one server or on a cluster. With
/// direct gets, as the client's own create calls set up, any replica answers, and a
/// follower a moment behind reports a just-written artifact missing.
const READ_FROM_LEADER: bool = false;
