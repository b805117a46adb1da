//! `make bench`: one 100k-row data run from publish to verdict with each stage's share,
//! and the bus's per-hop overhead (publish, persist, deliver, ack) over 1,000 messages.
//! `make bench-load` (`tollgate-bench load`): a burst of 1,000 triggers for 10 models with
//! 100 duplicates: triggers accepted per second, runs completed per minute, and
//! publish-to-verdict percentiles. `make bench-serve` (`tollgate-bench serve DATA
//! MLFLOW_URL [HGB.onnx MLFLOW_HGB_URL]`): single-record latency and throughput of
//! `tollgate-server` against `mlflow models serve` at 1, 8 and 64 clients, for the
//! built-in logistic regression and for a scikit-learn HistGradientBoosting pipeline as
//! ONNX. `make bench-scale` (`tollgate-bench
//! scale`): 100 small runs on a three-node NATS cluster, one replica of each stage against
//! two trainers and two validators. Prints tables; timing lives here, never in tests.

#[path = "tollgate-bench/scale.rs"]
mod scale;
#[path = "tollgate-bench/serve.rs"]
mod serve;

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use tollgate_e2e::{Pipeline, example_spec};
use tollgate_proto::TriggerKind;

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let hops: usize = std::env::var("BENCH_HOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    // The services' own logs would drown the tables: warnings only unless RUST_LOG says.
    let _telemetry = tollgate_telemetry::init_with_level("bench", "warn");
    if std::env::args().nth(1).as_deref() == Some("scale") {
        return scale::bench().await;
    }
    let p = Pipeline::start()
        .await
        .context("starting nats-server and the services")?;
    if std::env::args().nth(1).as_deref() == Some("load") {
        return load(&p).await;
    }
    if std::env::args().nth(1).as_deref() == Some("serve") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        let (data, mlflow, hgb) = match args.as_slice() {
            [data, mlflow] => (data, mlflow, None),
            [data, mlflow, onnx, hgb_url] => (
                data,
                mlflow,
                Some((std::path::Path::new(onnx), hgb_url.as_str())),
            ),
            _ => anyhow::bail!(
                "usage: tollgate-bench serve DATA.parquet MLFLOW_URL [HGB.onnx MLFLOW_HGB_URL]"
            ),
        };
        return serve::bench(&p, std::path::Path::new(data), mlflow, hgb).await;
    }
    eprintln!("generating {rows} rows ...");
    let data = p.dataset("bench.parquet", rows, 11, false)?;

    eprintln!("running one data-change pipeline ...");
    let started = Instant::now();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await?;
    let total = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "\nPipeline run on {rows} rows: verdict {}",
        run.verdict().name()
    );
    println!("{:<22} {:>10} {:>8}", "stage", "ms", "share");
    let mut staged = 0.0;
    for s in &run.stages {
        staged += s.duration_ms as f64;
        println!(
            "{:<22} {:>10} {:>7.1}%",
            s.stage().to_string(),
            s.duration_ms,
            100.0 * s.duration_ms as f64 / total
        );
    }
    let other = total - staged;
    println!(
        "{:<22} {:>10.0} {:>7.1}%",
        "bus and queueing",
        other,
        100.0 * other / total
    );
    println!(
        "{:<22} {:>10.0} {:>7.1}%",
        "publish to verdict", total, 100.0
    );

    eprintln!("measuring {hops} bus hops ...");
    let js = jetstream::new(p.bus.client().clone());
    let s = js
        .get_or_create_stream(stream::Config {
            name: "BENCH_HOP".into(),
            subjects: vec!["bench.hop".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await?;
    let consumer = s
        .get_or_create_consumer(
            "hop",
            pull::Config {
                durable_name: Some("hop".into()),
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1)
        .messages()
        .await?;
    let mut lat = Vec::with_capacity(hops);
    for i in 0..hops {
        let t0 = Instant::now();
        js.publish("bench.hop", format!("{i}").into())
            .await?
            .await?;
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .context("hop timed out")?
            .context("stream ended")?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        msg.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!("\nBus per hop (JetStream publish + ack, pull, ack), {hops} messages");
    println!("{:<8} {:>10}", "p50 ms", format!("{:.3}", pct(&lat, 0.5)));
    println!("{:<8} {:>10}", "p99 ms", format!("{:.3}", pct(&lat, 0.99)));
    println!(
        "{:<8} {:>10}",
        "max ms",
        format!("{:.3}", lat[lat.len() - 1])
    );
    Ok(())
}

/// `tollgate-bench load`: the burst the load test asserts, timed.
async fn load(p: &Pipeline) -> anyhow::Result<()> {
    let (triggers, models, duplicates) = (1000, 10, 100);
    eprintln!("publishing {triggers} triggers for {models} models, {duplicates} of them twice ...");
    let b = tollgate_e2e::load::burst(p, triggers, models, duplicates, Duration::from_secs(1800))
        .await?;
    let per = b.runs_per_trigger();
    let doubled = per.values().filter(|&&n| n != 1).count();
    for (trigger, _) in per.iter().filter(|&(_, &n)| n != 1) {
        for r in b.runs.iter().filter(|r| r.trigger_id == *trigger) {
            eprintln!(
                "trigger {trigger} ran more than once: run {} created {} verdict {} {}",
                r.run_id,
                r.created_unix_ms,
                r.verdict().name(),
                r.reason
            );
        }
    }
    println!(
        "\nBurst of {} triggers ({} messages with the duplicates), each validating 1,000 rows",
        b.unique, b.published
    );
    println!(
        "{:<34} {:>10}",
        "runs (one per trigger)",
        format!(
            "{}{}",
            b.runs.len(),
            if doubled > 0 { " DOUBLED" } else { "" }
        )
    );
    println!(
        "{:<34} {:>10.0}",
        "triggers accepted per second",
        b.published as f64 / b.publish_secs
    );
    println!(
        "{:<34} {:>10.0}",
        "runs completed per minute",
        b.unique as f64 / b.done_secs * 60.0
    );
    println!(
        "{:<34} {:>10.0}",
        "publish to verdict p50 ms",
        b.latency_ms(0.5)
    );
    println!(
        "{:<34} {:>10.0}",
        "publish to verdict p99 ms",
        b.latency_ms(0.99)
    );
    println!("{:<34} {:>10.1}", "burst to last verdict s", b.done_secs);
    Ok(())
}
