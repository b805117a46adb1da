//! `make bench-scale` (`tollgate-bench scale`): 100 small runs (validate, train, gate on
//! 2,000 rows) on a three-node NATS cluster with R3 streams, first with one replica of
//! each stage, then with two trainers and two data-validators, every service a separate
//! process of the release build. Prints runs per minute and publish-to-verdict
//! percentiles for each.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::StreamExt;
use tollgate_bus::{Bus, now_ms, subjects};
use tollgate_e2e::{
    NatsCluster, example_spec,
    processes::{Services, bin, service_env_at},
};
use tollgate_pipeline::dataset::file_uri;
use tollgate_proto::{Stage, Trigger, TriggerKind, Verdict};

use crate::pct;

/// One configuration's figures.
struct Measured {
    label: &'static str,
    runs: usize,
    passed: usize,
    secs: f64,
    latencies_ms: Vec<f64>,
}

/// Runs both configurations and prints the table.
pub async fn bench() -> anyhow::Result<()> {
    let runs: usize = std::env::var("BENCH_SCALE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut measured = Vec::new();
    for (label, replicas) in [
        ("1 validator, 1 trainer", 1),
        ("2 validators, 2 trainers", 2),
    ] {
        eprintln!("{label}: starting a 3-node NATS cluster and the services ...");
        measured.push(one(label, replicas, runs).await?);
    }
    println!(
        "\n{runs} small runs (validate, train, gate on 2,000 rows) on a 3-node NATS cluster, R3 streams"
    );
    println!(
        "{:<26} {:>7} {:>9} {:>10} {:>10} {:>10}",
        "replicas", "passed", "wall s", "runs/min", "p50 ms", "p99 ms"
    );
    for m in &measured {
        println!(
            "{:<26} {:>7} {:>9.1} {:>10.1} {:>10.0} {:>10.0}",
            m.label,
            format!("{}/{}", m.passed, m.runs),
            m.secs,
            m.runs as f64 / m.secs * 60.0,
            pct(&m.latencies_ms, 0.5),
            pct(&m.latencies_ms, 0.99),
        );
    }
    println!(
        "\nThis machine has {} cores: every process shares them, so a second replica adds \
         throughput only where a stage waits (I/O, the bus) rather than computes.",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}

/// `runs` runs with `replicas` data-validators and trainers.
async fn one(label: &'static str, replicas: usize, runs: usize) -> anyhow::Result<Measured> {
    let cluster = NatsCluster::start(3)?;
    let dir = tempfile::tempdir()?;
    let mut env = service_env_at(&cluster.url, dir.path());
    env.push(("TOLLGATE_NATS_REPLICAS", "3".into()));
    env.push(("RUST_LOG", "warn".into()));
    let mut names = vec!["registry", "trigger-watcher", "gate", "promoter"];
    for _ in 0..replicas {
        names.extend(["data-validator", "trainer"]);
    }
    let mut services = Services::new();
    services.spawn(&env, &names);

    let data = dir.path().join("scale.parquet");
    let generated = std::process::Command::new(bin("tollgate"))
        .args(["data", "generate", "--rows", "2000", "--out"])
        .arg(&data)
        .output()?;
    if !generated.status.success() {
        bail!("{}", String::from_utf8_lossy(&generated.stderr));
    }
    let options = tollgate_bus::bus::Options {
        replicas: 3,
        ..Default::default()
    };
    let bus = Bus::connect_with(&cluster.url, &options).await?;
    let pulling = [
        (subjects::TRIGGER_CONSUMER.to_string(), 1),
        (subjects::stage_consumer(Stage::Validate), replicas),
        (subjects::stage_consumer(Stage::Train), replicas),
        (subjects::stage_consumer(Stage::Gate), 1),
    ];
    tollgate_e2e::wait_until_pulling(&bus, &pulling, Duration::from_secs(120)).await?;
    let mut completions = Box::pin(tollgate_pipeline::events::completions(&bus).await?);

    eprintln!("{label}: publishing {runs} code changes ...");
    let spec = example_spec();
    // The model's policy first, as an admin applies it before any run.
    let parsed = tollgate_spec::ModelSpec::parse(&spec)?;
    tollgate_pipeline::specs::apply(&bus, &parsed, &spec, None, now_ms(), "bench-admin").await?;
    let dataset = file_uri(&data);
    let mut sent_at: HashMap<String, i64> = HashMap::new();
    let started = Instant::now();
    for i in 0..runs {
        let trigger = Trigger {
            trigger_id: ulid::Ulid::new().to_string(),
            kind: TriggerKind::Code as i32,
            model: "churn".into(),
            spec_yaml: spec.clone(),
            dataset_uri: dataset.clone(),
            code_commit: format!("scale-{i}"),
            created_unix_ms: now_ms(),
            ..Default::default()
        };
        sent_at.insert(trigger.trigger_id.clone(), now_ms());
        let id = subjects::msg_id::trigger(&trigger.trigger_id.parse()?);
        bus.publish(subjects::trigger(TriggerKind::Code), &trigger, Some(&id))
            .await?;
    }
    let mut latencies_ms = Vec::with_capacity(runs);
    let mut passed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20 * 60);
    while latencies_ms.len() < runs {
        let summary = tokio::time::timeout_at(deadline, completions.next())
            .await
            .with_context(|| format!("{} of {runs} verdicts in 20 min", latencies_ms.len()))?
            .context("the run events ended")?;
        let Some(sent) = sent_at.remove(&summary.trigger_id) else {
            continue;
        };
        latencies_ms.push((summary.finished_unix_ms - sent) as f64);
        if summary.verdict() == Verdict::Passed {
            passed += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    drop(services);
    Ok(Measured {
        label,
        runs,
        passed,
        secs,
        latencies_ms,
    })
}
