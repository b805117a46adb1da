//! `make bench-serve`: the same single-record requests, from the same client, against
//! `tollgate-server` (the Open Inference Protocol, Production version of a pipeline run
//! on the data) and `mlflow models serve` (scikit-learn's logistic regression trained on
//! the same rows by `scripts/bench_serve.py`), and tollgate-server's gRPC side
//! (`GRPCInferenceService`). Latency percentiles and throughput at 1, 8 and 64 concurrent
//! clients. With an ONNX file, the same again for one fitted scikit-learn
//! pipeline (ColumnTransformer and HistGradientBoostingClassifier): uploaded to Tollgate
//! as ONNX (`churn-hgb`, through a run to Production) and served by MLflow as it is.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tollgate_pipeline::{Stores, code::CodeObject, dataset::file_uri};

use anyhow::Context;
use tollgate_bus::subjects;
use tollgate_e2e::{Pipeline, example_spec, free_port};
use tollgate_inference::client::{Client, request_for};
use tollgate_ml::table::{Record, Table};
use tollgate_proto::{
    ApprovalRequest, LatestByStageRequest, ModelStage, RunSummary, Trigger, TriggerKind,
    inference::{ModelInferRequest, grpc_inference_service_client::GrpcInferenceServiceClient},
};

use super::pct;

/// Concurrent clients measured.
const CLIENTS: [usize; 3] = [1, 8, 64];

/// One server under test: what it is called and how a record reaches it.
struct Target {
    name: &'static str,
    via: Via,
}

/// How requests reach a server under test.
enum Via {
    /// `POST url` with the record's JSON body.
    Http { url: String, bodies: Vec<Vec<u8>> },
    /// `ModelInfer` on the protocol's gRPC side, one request per record.
    Grpc {
        client: GrpcInferenceServiceClient<tonic::transport::Channel>,
        requests: Vec<ModelInferRequest>,
    },
}

/// What one (server, clients) measurement found.
struct Measured {
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// The model name the HistGradientBoosting pipeline is served as.
const HGB: &str = "churn-hgb";

pub async fn bench(
    p: &Pipeline,
    data: &Path,
    mlflow: &str,
    hgb: Option<(&Path, &str)>,
) -> anyhow::Result<()> {
    let seconds: f64 = std::env::var("BENCH_SERVE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    eprintln!(
        "running the pipeline on {} and approving v1 ...",
        data.display()
    );
    let run = p.run_file(TriggerKind::Data, &example_spec(), data).await?;
    to_production(p, "churn", &run).await?;
    let mut models = "churn@Production".to_string();
    if let Some((onnx, _)) = hgb {
        eprintln!("uploading {} as {HGB} and approving v1 ...", onnx.display());
        let run = upload(p, onnx, data).await?;
        to_production(p, HGB, &run).await?;
        models += &format!(",{HGB}@Production");
    }

    let addr = format!("127.0.0.1:{}", free_port()?);
    let grpc_addr = format!("127.0.0.1:{}", free_port()?);
    let exe = std::env::current_exe()?;
    let server_bin = exe
        .parent()
        .context("the bench binary has no directory")?
        .join("tollgate-server");
    let mut server = Command::new(&server_bin)
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_SERVER_ADDR", &addr)
        .env("TOLLGATE_SERVER_GRPC_ADDR", &grpc_addr)
        .env("TOLLGATE_SERVER_MODELS", &models)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", server_bin.display()))?;
    let measured = measure_both(
        (&addr, &grpc_addr),
        data,
        mlflow,
        hgb.map(|(_, url)| url),
        seconds,
    )
    .await;
    let _ = server.kill();
    let _ = server.wait();
    print(&measured?);
    Ok(())
}

/// Publishes a manual run of the example spec renamed `churn-hgb` carrying the ONNX file
/// at `onnx` (put into the code store, as `publish --model` does); returns its verdict.
async fn upload(p: &Pipeline, onnx: &Path, data: &Path) -> anyhow::Result<RunSummary> {
    let bytes = std::fs::read(onnx).with_context(|| format!("reading {}", onnx.display()))?;
    let digest = p.bus.code().put(CodeObject::Model, &bytes).await?;
    let spec = example_spec().replace("model: churn\n", &format!("model: {HGB}\n"));
    // Its policy first, as an admin applies it: a trigger's spec is only a proposal.
    p.apply(&spec).await?;
    let trigger = Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        kind: TriggerKind::Manual as i32,
        model: HGB.into(),
        spec_yaml: spec,
        dataset_uri: file_uri(data),
        reason: "bench: the HistGradientBoosting pipeline as ONNX".into(),
        model_upload: digest,
        ..Default::default()
    };
    p.bus
        .publish(
            subjects::trigger(TriggerKind::Manual),
            &trigger,
            Some(&trigger.trigger_id),
        )
        .await?;
    p.verdict(&trigger.trigger_id).await
}

/// Approves v1 of `model`, which `run` registered, and waits until it is in Production.
async fn to_production(p: &Pipeline, model: &str, run: &RunSummary) -> anyhow::Result<()> {
    anyhow::ensure!(
        run.model_version == 1,
        "the run of {model} made no version: {}",
        run.reason
    );
    let mut registry = p.registry()?;
    for _ in 0..600 {
        let approved = registry
            .approve(ApprovalRequest {
                model: model.into(),
                version: 1,
                approver: "alice".into(),
                reason: "bench".into(),
                approve: true,
            })
            .await;
        if approved.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..600 {
        let production = registry
            .latest_by_stage(LatestByStageRequest {
                model: model.into(),
                stage: ModelStage::Production as i32,
            })
            .await;
        if production.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{model} v1 never reached Production")
}

async fn measure_both(
    (addr, grpc_addr): (&str, &str),
    data: &Path,
    mlflow: &str,
    mlflow_hgb: Option<&str>,
    seconds: f64,
) -> anyhow::Result<Vec<(&'static str, usize, Measured)>> {
    let client = Client::new(&format!("http://{addr}"));
    client
        .wait_ready("churn", Some(1), Duration::from_secs(60))
        .await
        .context("tollgate-server did not load v1")?;
    if mlflow_hgb.is_some() {
        client
            .wait_ready(HGB, Some(1), Duration::from_secs(60))
            .await
            .context("tollgate-server did not load the ONNX model")?;
    }
    let spec = tollgate_spec::ModelSpec::parse(&example_spec())?;
    let columns = tollgate_ml::table::Columns::of_spec(&spec);
    let table = Table::load(&columns, data)?;
    let records: Vec<Record> = (0..table.rows().min(1_000))
        .map(|i| table.record(i))
        .collect();
    let requests: Vec<_> = records
        .iter()
        .map(|r| request_for(&columns, std::slice::from_ref(r)))
        .collect();
    let tollgate = Target {
        name: "tollgate-server",
        via: Via::Http {
            url: format!("http://{addr}/v2/models/churn/infer"),
            bodies: requests
                .iter()
                .map(serde_json::to_vec)
                .collect::<Result<_, _>>()?,
        },
    };
    let grpc = Target {
        name: "tollgate-server gRPC",
        via: Via::Grpc {
            client: GrpcInferenceServiceClient::connect(format!("http://{grpc_addr}")).await?,
            requests: requests
                .iter()
                .map(|r| tollgate_inference::grpc::to_grpc("churn", r))
                .collect(),
        },
    };
    let tollgate_bodies = match &tollgate.via {
        Via::Http { bodies, .. } => bodies.clone(),
        Via::Grpc { .. } => Vec::new(),
    };
    let names: Vec<&String> = columns.numeric.iter().chain(&columns.categorical).collect();
    let mlflow_bodies = records
        .iter()
        .map(|r| {
            let row: Vec<serde_json::Value> = (r.numeric.iter().map(|v| serde_json::json!(v)))
                .chain(r.categorical.iter().map(|v| serde_json::json!(v)))
                .collect();
            serde_json::to_vec(&serde_json::json!({
                "dataframe_split": {"columns": names, "data": [row]}
            }))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mlflow = Target {
        name: "mlflow models serve",
        via: Via::Http {
            url: format!("{}/invocations", mlflow.trim_end_matches('/')),
            bodies: mlflow_bodies.clone(),
        },
    };
    let mut targets = vec![tollgate, grpc, mlflow];
    if let Some(url) = mlflow_hgb {
        let onnx = Target {
            name: "tollgate-server HGB",
            via: Via::Http {
                url: format!("http://{addr}/v2/models/{HGB}/infer"),
                bodies: tollgate_bodies,
            },
        };
        let hgb = Target {
            name: "mlflow serve HGB",
            via: Via::Http {
                url: format!("{}/invocations", url.trim_end_matches('/')),
                bodies: mlflow_bodies,
            },
        };
        targets.extend([onnx, hgb]);
    }
    let mut out = Vec::new();
    for target in &targets {
        for clients in CLIENTS {
            eprintln!("{}: {clients} client(s) for {seconds} s ...", target.name);
            let m = measure(target, clients, seconds)
                .await
                .with_context(|| format!("measuring {}", target.name))?;
            out.push((target.name, clients, m));
        }
    }
    Ok(out)
}

/// `clients` tasks sending single-record requests back to back for `seconds`, after a
/// warm-up of 200 requests.
async fn measure(target: &Target, clients: usize, seconds: f64) -> anyhow::Result<Measured> {
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(clients)
        .build()?;
    let send = |k: usize| {
        let call: futures::future::BoxFuture<'_, anyhow::Result<()>> = match &target.via {
            Via::Http { url, bodies } => {
                let request = http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(bodies[k % bodies.len()].clone());
                Box::pin(async move {
                    let response = request.send().await?;
                    let status = response.status();
                    let text = response.bytes().await?;
                    anyhow::ensure!(
                        status.is_success(),
                        "status {status}: {}",
                        String::from_utf8_lossy(&text)
                    );
                    Ok(())
                })
            }
            Via::Grpc { client, requests } => {
                let mut client = client.clone();
                let request = requests[k % requests.len()].clone();
                Box::pin(async move {
                    client.model_infer(request).await?;
                    Ok(())
                })
            }
        };
        call
    };
    for k in 0..200 {
        send(k).await?;
    }
    let times = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let times = times.clone();
            async move {
                let mut mine = Vec::new();
                let mut k = c * 7919;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    send(k).await?;
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    k += 1;
                }
                times
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .extend(mine);
                anyhow::Ok(())
            }
        })
        .collect();
    for r in futures::future::join_all(tasks).await {
        r?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut times = times
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    times.sort_by(|a, b| a.total_cmp(b));
    anyhow::ensure!(!times.is_empty(), "no request finished");
    Ok(Measured {
        requests: times.len(),
        seconds: elapsed,
        p50_ms: pct(&times, 0.5),
        p99_ms: pct(&times, 0.99),
    })
}

fn print(rows: &[(&'static str, usize, Measured)]) {
    println!("\nSingle-record inference, same client, same records (one per request)");
    println!(
        "{:<22} {:>8} {:>10} {:>12} {:>10} {:>10}",
        "server", "clients", "requests", "requests/s", "p50 ms", "p99 ms"
    );
    for (name, clients, m) in rows {
        println!(
            "{:<22} {:>8} {:>10} {:>12.0} {:>10.3} {:>10.3}",
            name,
            clients,
            m.requests,
            m.requests as f64 / m.seconds,
            m.p50_ms,
            m.p99_ms
        );
    }
    let at_one = |name: &str| {
        rows.iter()
            .find(|(n, c, _)| *n == name && *c == 1)
            .map(|(_, _, m)| m.p99_ms)
    };
    if let (Some(t), Some(m)) = (at_one("tollgate-server"), at_one("mlflow models serve")) {
        println!(
            "\np99 at one client: tollgate-server {t:.3} ms, mlflow {m:.3} ms ({:.1}x)",
            m / t
        );
    }
    if let (Some(h), Some(g)) = (at_one("tollgate-server"), at_one("tollgate-server gRPC")) {
        println!("tollgate-server p99 at one client: HTTP/JSON {h:.3} ms, gRPC {g:.3} ms");
    }
    if let (Some(t), Some(m)) = (at_one("tollgate-server HGB"), at_one("mlflow serve HGB")) {
        println!(
            "HistGradientBoosting pipeline, p99 at one client: tollgate-server (ONNX) {t:.3} ms, mlflow {m:.3} ms ({:.1}x)",
            m / t
        );
    }
}
