//! Scale-out as Kubernetes runs it, on loopback: a three-node nats-server cluster with
//! every stream, bucket and object store at three replicas, and two trainers and two
//! data-validators as separate processes sharing their work queues. Runs are shared
//! between the replicas without a stage running twice; a node and a trainer killed
//! mid-run lose nothing.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use futures::StreamExt;
use tollgate_bus::subjects;
use tollgate_e2e::NatsCluster;
use tollgate_proto::{RunEventKind, Stage};

use crate::processes::{
    Services, cli, forest_spec, generate, publish, run_id_of, service_env_at, shown_passed,
    watch_runs,
};

/// The stage services with two replicas of the data-validator and the trainer.
const REPLICATED: [&str; 8] = [
    "registry",
    "trigger-watcher",
    "data-validator",
    "data-validator",
    "trainer",
    "trainer",
    "gate",
    "promoter",
];

/// A running cluster with the services on it, a dataset and a spec.
struct Scaled {
    cluster: NatsCluster,
    env: Vec<(&'static str, String)>,
    services: Services,
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    spec: std::path::PathBuf,
}

impl Scaled {
    /// Three nodes, the services with two trainers and two validators, `rows` of churn
    /// data and a forest of `trees`.
    fn start(rows: usize, trees: u32) -> Self {
        let cluster = NatsCluster::start(3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut env = service_env_at(&cluster.url, dir.path());
        env.push(("TOLLGATE_NATS_REPLICAS", "3".into()));
        env.push(("TOLLGATE_NATS__ACK_WAIT_SECS", "2".into()));
        let mut services = Services::logging_to(dir.path());
        services.spawn(&env, &REPLICATED);
        let data = dir.path().join("churn.parquet");
        generate(&data, rows, &[]);
        let spec = forest_spec(dir.path(), trees);
        let scaled = Scaled {
            cluster,
            env,
            services,
            dir,
            data,
            spec,
        };
        scaled.wait_until_pulling();
        scaled
    }

    /// Waits until every replica has a pull request waiting at its consumer's leader.
    fn wait_until_pulling(&self) {
        let pulling = [
            (subjects::TRIGGER_CONSUMER.to_string(), 1),
            (subjects::stage_consumer(Stage::Validate), 2),
            (subjects::stage_consumer(Stage::Train), 2),
            (subjects::stage_consumer(Stage::Gate), 1),
        ];
        Self::runtime().block_on(async {
            let bus = self.bus().await;
            tollgate_e2e::wait_until_pulling(&bus, &pulling, Duration::from_secs(60))
                .await
                .unwrap();
        });
    }

    /// Publishes `n` code changes (commits `{tag}0`, `{tag}1`, …) without waiting; returns
    /// their run ids.
    fn publish(&self, n: usize, tag: &str) -> Vec<String> {
        (0..n)
            .map(|i| {
                let commit = format!("{tag}{i}");
                let out = publish(
                    &self.env,
                    "code",
                    &self.spec,
                    &self.data,
                    &["--commit", &commit],
                );
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                run_id_of(&String::from_utf8_lossy(&out.stdout))
            })
            .collect()
    }

    /// `runs show RUN --json` once the run has passed.
    fn passed(&self, run_id: &str) -> serde_json::Value {
        let _ = shown_passed(&self.env, run_id, Duration::from_secs(240));
        let out = cli(&self.env, &["runs", "show", run_id, "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Runtime::new().unwrap()
    }

    /// A connection to the cluster, as the services make it.
    async fn bus(&self) -> tollgate_bus::Bus {
        let options = tollgate_bus::bus::Options {
            replicas: 3,
            ..Default::default()
        };
        tollgate_bus::Bus::connect_with(&self.cluster.url, &options)
            .await
            .unwrap()
    }

    /// The registry's versions of `churn`: run id -> versions registered for it.
    fn versions_by_run(&self) -> BTreeMap<String, Vec<u32>> {
        let url = self
            .env
            .iter()
            .find(|(k, _)| *k == "TOLLGATE_REGISTRY_URL")
            .map(|(_, v)| v.clone())
            .unwrap();
        let versions = crate::kills::versions(&url);
        let mut by_run: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for v in versions {
            by_run.entry(v.run_id).or_default().push(v.version);
        }
        by_run
    }
}

/// The worker (`host:pid`) that ran `stage` of a run, from its `--json` record.
fn worker_of(run: &serde_json::Value, stage: &str) -> String {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == stage)
        .map(|s| s["worker"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no {stage} stage in {run:#}"))
}

/// Every `stage_started` event on the runs stream: how many times each (run, stage)
/// began. Called once the runs have ended, so the stream holds them all; it is read
/// until it has been quiet for 3 s.
async fn stage_starts(bus: &tollgate_bus::Bus) -> BTreeMap<(String, String), usize> {
    let mut events = Box::pin(
        tollgate_pipeline::events::of_kind(bus, RunEventKind::StageStarted)
            .await
            .unwrap(),
    );
    let mut starts = BTreeMap::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(3), events.next()).await {
        let stage = event.stage.unwrap_or_default().stage().to_string();
        *starts.entry((event.run_id, stage)).or_default() += 1;
    }
    starts
}

#[test]
fn ten_runs_share_two_trainers_and_two_validators_on_a_three_node_cluster_and_survive_a_node_kill()
{
    let mut scaled = Scaled::start(5_000, 30);
    let runtime = Scaled::runtime();

    // Every stream, bucket and object store is replicated on all three nodes.
    runtime.block_on(async {
        let bus = scaled.bus().await;
        for name in tollgate_bus::bus::stream_names() {
            let mut stream = bus.jetstream().get_stream(&name).await.unwrap();
            let info = stream.info().await.unwrap();
            assert_eq!(info.config.num_replicas, 3, "{name}");
            let cluster = info.cluster.as_ref().unwrap();
            assert_eq!(cluster.replicas.len(), 2, "{name}: {cluster:?}");
        }
    });

    // Ten runs, published at once.
    let first = scaled.publish(10, "shared-");
    let runs: Vec<serde_json::Value> = first.iter().map(|id| scaled.passed(id)).collect();
    let validators: BTreeSet<String> = runs.iter().map(|r| worker_of(r, "validate")).collect();
    let trainers: BTreeSet<String> = runs.iter().map(|r| worker_of(r, "train")).collect();
    let pid = |w: &String| w.rsplit(':').next().unwrap().parse::<u32>().unwrap();
    let expected =
        |name: &str| -> BTreeSet<u32> { scaled.services.pids(name).into_iter().collect() };
    assert_eq!(
        validators.iter().map(pid).collect::<BTreeSet<_>>(),
        expected("data-validator"),
        "each validator validated some runs: {validators:?}"
    );
    assert_eq!(
        trainers.iter().map(pid).collect::<BTreeSet<_>>(),
        expected("trainer"),
        "each trainer trained some runs: {trainers:?}"
    );
    let starts = runtime.block_on(async { stage_starts(&scaled.bus().await).await });
    for id in &first {
        for stage in ["validate", "train", "gate"] {
            assert_eq!(
                starts.get(&(id.clone(), stage.to_string())),
                Some(&1),
                "{stage} of run {id} started once"
            );
        }
    }
    let versions = scaled.versions_by_run();
    for id in &first {
        assert_eq!(
            versions.get(id).map(Vec::len),
            Some(1),
            "{id}: {versions:?}"
        );
    }

    // Ten more; the node leading the work queue dies while they run.
    let (mut watch, lines) = watch_runs(&scaled.env);
    let second = scaled.publish(10, "node-kill-");
    let _ = lines.wait_for("random forest: ");
    let leader = runtime.block_on(async {
        let bus = scaled.bus().await;
        let mut work = bus
            .jetstream()
            .get_stream(subjects::WORK_STREAM)
            .await
            .unwrap();
        let info = work.info().await.unwrap();
        info.cluster.as_ref().unwrap().leader.clone().unwrap()
    });
    let node: usize = leader.trim_start_matches('n').parse().unwrap();
    scaled.cluster.kill(node).unwrap();
    for id in &second {
        let run = scaled.passed(id);
        assert!(run["model_version"].as_u64().is_some(), "{run:#}");
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let versions = scaled.versions_by_run();
    for id in first.iter().chain(&second) {
        assert_eq!(
            versions.get(id).map(Vec::len),
            Some(1),
            "one version for run {id} after node {leader} was killed: {versions:?}"
        );
    }
    assert_eq!(versions.values().map(Vec::len).sum::<usize>(), 20);
    scaled.services.stop_gracefully();
    drop(scaled.dir);
}

#[test]
fn a_trainer_killed_mid_training_on_the_cluster_hands_the_run_to_the_other_trainer() {
    let mut scaled = Scaled::start(20_000, 200);
    let (mut watch, lines) = watch_runs(&scaled.env);
    let id = scaled.publish(1, "trainer-kill-").remove(0);
    let _ = lines.wait_for("random forest: ");

    // The trainer holding the run, by its record's running stage.
    let out = cli(&scaled.env, &["runs", "show", &id, "--json"]);
    let running: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let holder = worker_of(&running, "train");
    let pid: u32 = holder.rsplit(':').next().unwrap().parse().unwrap();
    let mut victim = scaled.services.take_pid(pid);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let other = scaled.services.pids("trainer");
    assert_eq!(other.len(), 1);

    let run = scaled.passed(&id);
    let finisher = worker_of(&run, "train");
    assert!(
        finisher.ends_with(&format!(":{}", other[0])),
        "the run was redelivered to the other trainer ({}), not {finisher}",
        other[0]
    );
    let _ = watch.kill();
    let _ = watch.wait();
    let versions = scaled.versions_by_run();
    assert_eq!(versions.get(&id).map(Vec::len), Some(1), "{versions:?}");
    assert_eq!(versions.len(), 1, "{versions:?}");
    scaled.services.stop_gracefully();
}
