//! The model server as its own process against a real nats-server and registry: Staging
//! tested over HTTP, stage changes swapped atomically under load, a rollback followed,
//! and served traffic that drifts starting one retraining.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tollgate_e2e::{Pipeline, example_spec, free_port};
use tollgate_inference::client::{Client, request_for};
use tollgate_ml::{
    artifact::{Artifact, Score},
    table::{Record, Table},
};
use tollgate_proto::{GetVersionRequest, ModelStage, RollbackRequest, TriggerKind, Verdict};

use super::registry::{approve, is_model_plan, wait_run, wait_stage};

/// A response during the swap: the version that answered, its probabilities, and where
/// in `rows` its batch started.
type Answer = (String, Vec<f64>, usize);

/// `tollgate-server` serving `models`, logging to `log`; killed when dropped.
pub(super) struct Server {
    child: Child,
    pub(super) client: Client,
    pub(super) url: String,
    /// Where its gRPC side listens, `127.0.0.1:PORT`.
    pub(super) grpc_addr: String,
    log: PathBuf,
}

impl Server {
    pub(super) fn spawn(p: &Pipeline, addr: &str, models: &str, log: &Path) -> Server {
        Self::spawn_with(p, addr, models, log, &[])
    }

    /// [`Server::spawn`] with more variables set.
    pub(super) fn spawn_with(
        p: &Pipeline,
        addr: &str,
        models: &str,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Server {
        Self::spawn_at(&p.nats.url, &p.registry_url, addr, models, log, env)
    }

    /// [`Server::spawn_with`] against the NATS server and registry at these URLs; `env`
    /// comes last, so it may change the defaults set here.
    pub(super) fn spawn_at(
        nats_url: &str,
        registry_url: &str,
        addr: &str,
        models: &str,
        log: &Path,
        env: &[(&str, &str)],
    ) -> Server {
        let grpc_addr = format!("127.0.0.1:{}", free_port().unwrap());
        let child = Command::new(super::processes::bin("tollgate-server"))
            .env("TOLLGATE_NATS_URL", nats_url)
            .env("TOLLGATE_REGISTRY_URL", registry_url)
            .env("TOLLGATE_SERVER_ADDR", addr)
            .env("TOLLGATE_SERVER_GRPC_ADDR", &grpc_addr)
            .env("TOLLGATE_SERVER_MODELS", models)
            .env("TOLLGATE_SAMPLE_SHARE", "1")
            .env("TOLLGATE_DRIFT_WINDOW", "200")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://{addr}");
        Server {
            child,
            client: Client::new(&url),
            url,
            grpc_addr,
            log: log.to_path_buf(),
        }
    }

    pub(super) async fn wait_live(&self) {
        for _ in 0..300 {
            if let Ok(true) = self.client.server_live().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server never answered /v2/health/live: {}", self.logs());
    }

    /// Waits until `/v2/models/churn` is answered by `version`.
    pub(super) async fn wait_serving(
        &self,
        version: u32,
        records: &[Record],
        columns: &tollgate_ml::table::Columns,
    ) {
        let request = request_for(columns, &records[..1]);
        for _ in 0..300 {
            if let Ok(r) = self.client.infer("churn", None, &request).await
                && r.model_version == Some(version.to_string())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server never served v{version}: {}", self.logs());
    }

    pub(super) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `needle` at least `times` times.
    pub(super) async fn wait_logged(&self, needle: &str, times: usize) {
        for _ in 0..600 {
            if self.logs().matches(needle).count() >= times {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{needle:?} not logged {times} times: {}", self.logs());
    }
}

impl Server {
    /// SIGTERM: the server finishes what it holds and exits 0.
    pub(super) fn stop(&mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the server on SIGTERM: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn artifact(p: &Pipeline, version: u32) -> Artifact {
    artifact_from(p.registry().unwrap(), version).await
}

/// Version `version` of churn's artifact, from `registry`.
pub(super) async fn artifact_from(
    mut registry: tollgate_proto::RegistryApi,
    version: u32,
) -> Artifact {
    let fetched = registry
        .get_artifact(GetVersionRequest {
            model: "churn".into(),
            version,
        })
        .await
        .unwrap()
        .into_inner();
    Artifact::decode(&fetched.data).unwrap()
}

/// The records of the file at `path`, read as `artifact`'s model reads them.
pub(super) fn records_of_file(path: &Path, artifact: &Artifact) -> Vec<Record> {
    let table = Table::load(&artifact.columns(), path).unwrap();
    (0..table.rows()).map(|i| table.record(i)).collect()
}

/// Records of a generated dataset, read as the model reads them.
fn records(p: &Pipeline, name: &str, rows: usize, seed: u64, artifact: &Artifact) -> Vec<Record> {
    let path = p.dataset(name, rows, seed, false).unwrap();
    records_of_file(&path, artifact)
}

/// A data run on `seed`'s data, then its model plan (integration and approval) passed.
pub(super) async fn stage(p: &Pipeline, version: u32, seed: u64) -> tollgate_proto::RunSummary {
    let data = p
        .dataset(&format!("v{version}.parquet"), 3_000, seed, false)
        .unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    assert_eq!(run.model_version, version);
    let model_run = wait_run(p, "model plan", |r| is_model_plan(r, version)).await;
    assert_eq!(model_run.verdict(), Verdict::Passed, "{}", model_run.reason);
    model_run
}

async fn to_production(p: &Pipeline, version: u32) {
    p.registry()
        .unwrap()
        .approve(approve(version, "alice"))
        .await
        .unwrap();
    wait_stage(p, version, ModelStage::Production).await;
}

/// v1 trained, staged, approved and served by `server` from Production; its columns and
/// 1,000 records like its training data to send.
pub(super) async fn v1_served_in_production(
    p: &Pipeline,
    server: &Server,
) -> (tollgate_ml::table::Columns, Vec<Record>) {
    server.wait_live().await;
    stage(p, 1, 41).await;
    to_production(p, 1).await;
    let v1 = artifact(p, 1).await;
    let columns = v1.columns();
    let rows = records(p, "served.parquet", 1_000, 42, &v1);
    server.wait_serving(1, &rows, &columns).await;
    (columns, rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn staging_is_tested_through_the_server_and_swaps_are_atomic_under_load() {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let p = Pipeline::start_hosted(|h| h.staging_server_url = format!("http://{addr}"))
        .await
        .unwrap();
    let server = Server::spawn(
        &p,
        &addr,
        "churn@Production,churn@Staging",
        &p.dir.path().join("server.log"),
    );
    server.wait_live().await;
    assert!(
        !server.client.server_ready().await.unwrap(),
        "nothing is loaded yet"
    );

    // v1 enters Staging; the model plan's integration test ran against the server.
    let model_run = stage(&p, 1, 31).await;
    let integration = &model_run.stages[0].message;
    assert!(
        integration.contains(&format!("served by the Staging server at {}", server.url))
            && integration.contains("golden records reproduced over HTTP"),
        "{integration}"
    );
    let v1 = artifact(&p, 1).await;
    let columns = v1.columns();
    let rows = records(&p, "requests.parquet", 500, 32, &v1);
    to_production(&p, 1).await;
    server.wait_serving(1, &rows, &columns).await;

    // v2 in Staging: reached by its version; the model's first entry is still Production.
    stage(&p, 2, 33).await;
    assert!(server.client.model_ready("churn", Some(2)).await.unwrap());
    assert!(server.client.server_ready().await.unwrap());
    let v2 = artifact(&p, 2).await;

    // Requests run while v2 is approved to Production: every one is answered, by one
    // version whole, and once v2 answers v1 never does again.
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let load = {
        let (client, answers, stop, rows, columns) = (
            server.client.clone(),
            answers.clone(),
            stop.clone(),
            rows.clone(),
            columns.clone(),
        );
        tokio::spawn(async move {
            let mut k = 0;
            while !stop.is_cancelled() {
                let start = (k * 7) % (rows.len() - 8);
                let batch = &rows[start..start + 8];
                let response = client
                    .infer("churn", None, &request_for(&columns, batch))
                    .await
                    .unwrap_or_else(|e| panic!("request {k} failed during the swap: {e}"));
                let p = response.numbers("probability").unwrap();
                answers
                    .lock()
                    .unwrap()
                    .push((response.model_version.unwrap(), p, start));
                k += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    to_production(&p, 2).await;
    server.wait_serving(2, &rows, &columns).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    load.await.unwrap();
    let answers = answers.lock().unwrap().clone();
    let versions: Vec<&str> = answers.iter().map(|a| a.0.as_str()).collect();
    let first_v2 = versions.iter().position(|v| *v == "2").unwrap();
    assert!(first_v2 > 0, "v1 answered before the swap");
    assert!(
        versions[first_v2..].iter().all(|v| *v == "2"),
        "v1 answered after v2 did: {versions:?}"
    );
    for (version, probabilities, start) in &answers {
        let model = if version == "1" { &v1 } else { &v2 };
        for (j, p) in probabilities.iter().enumerate() {
            let want = model.score(&rows[start + j]).unwrap();
            assert!(
                (p - want).abs() < 1e-9,
                "a v{version} answer holds a probability v{version} did not give"
            );
        }
    }

    // A rollback moves the Production pointer back; the server follows.
    p.registry()
        .unwrap()
        .rollback(RollbackRequest {
            model: "churn".into(),
            actor: "alice".into(),
            reason: "e2e rollback".into(),
        })
        .await
        .unwrap();
    server.wait_serving(1, &rows, &columns).await;
    assert!(server.logs().contains("now serving"));
    let mut server = server;
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn shifted_served_traffic_starts_one_retraining_and_unshifted_traffic_none() {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let p = Pipeline::start().await.unwrap();
    let server = Server::spawn(
        &p,
        &addr,
        "churn@Production",
        &p.dir.path().join("server.log"),
    );
    let (columns, rows) = v1_served_in_production(&p, &server).await;
    let drift_runs = || async {
        p.runs("churn")
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.trigger() == TriggerKind::Drift)
            .collect::<Vec<_>>()
    };

    let send = |records: Vec<Record>| {
        let (client, columns) = (server.client.clone(), columns.clone());
        async move {
            for batch in records.chunks(50) {
                let request = request_for(&columns, batch);
                client.infer("churn", None, &request).await.unwrap();
            }
        }
    };

    // Two windows of traffic like the training data: judged, and nothing retrains.
    send(rows[..400].to_vec()).await;
    server
        .wait_logged("served traffic within drift thresholds", 2)
        .await;
    assert!(drift_runs().await.is_empty());

    // Three windows of older, longer-standing customers paying more: one retraining.
    let shifted: Vec<Record> = rows[400..1_000]
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let n = &mut r.numeric;
            n[0] = n[0].map(|x| x + 25.0);
            n[1] = n[1].map(|x| x + 30.0);
            n[2] = n[2].map(|x| x * 1.6);
            n[3] = n[3].map(|x| x * 2.5);
            r
        })
        .collect();
    send(shifted).await;
    server
        .wait_logged("served traffic drifted; retraining", 1)
        .await;
    server.wait_logged("retraining already started", 2).await;
    let runs = drift_runs().await;
    let started = match runs.as_slice() {
        [] => {
            wait_run(&p, "drift run", |r| r.trigger() == TriggerKind::Drift).await;
            drift_runs().await
        }
        _ => runs,
    };
    assert_eq!(started.len(), 1, "one retraining: {started:?}");
    assert!(
        started[0].trigger_id.starts_with("served-drift-churn-v1-"),
        "{}",
        started[0].trigger_id
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_a_token_file_scores_only_for_a_valid_bearer_and_keeps_health_open() {
    let p = Pipeline::start().await.unwrap();
    stage(&p, 1, 91).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server-tokens.toml");
    let token = super::security::tokens(&file, &[("app", tollgate_service::tokens::Role::Viewer)])
        .remove(0);
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let log = dir.path().join("server.log");
    let tokens_file = file.to_str().unwrap();
    let server = Server::spawn_with(
        &p,
        &addr,
        "churn@Staging",
        &log,
        &[("TOLLGATE_SERVER_TOKENS_FILE", tokens_file)],
    );
    // Probes need no token.
    server.wait_live().await;
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/v2/health/ready", server.url))
        .send()
        .await
        .unwrap();
    assert_ne!(ready.status(), reqwest::StatusCode::UNAUTHORIZED);

    // No token, a wrong one: 401 with the reason; the model's endpoints are closed.
    let v1 = artifact(&p, 1).await;
    let rows = records(&p, "requests.parquet", 5, 92, &v1);
    let request = request_for(&v1.columns(), &rows[..1]);
    for (bearer, says) in [("", "no bearer token"), ("tg_wrong", "not valid")] {
        let e = Client::with_bearer(&server.url, bearer)
            .infer("churn", None, &request)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("401") && e.contains(says), "{e}");
    }
    let metadata = http
        .get(format!("{}/v2/models/churn", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), reqwest::StatusCode::UNAUTHORIZED);

    // The token in the file scores.
    let client = Client::with_bearer(&server.url, &token);
    let mut answered = None;
    for _ in 0..300 {
        if let Ok(r) = client.infer("churn", None, &request).await {
            answered = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answered = answered.unwrap_or_else(|| panic!("never scored: {}", server.logs()));
    assert_eq!(answered.model_version.as_deref(), Some("1"));

    // The gRPC side the same: its health open, its model calls only with the token.
    use tollgate_proto::inference::{
        ServerLiveRequest, grpc_inference_service_client::GrpcInferenceServiceClient,
    };
    let mut grpc = GrpcInferenceServiceClient::connect(format!("http://{}", server.grpc_addr))
        .await
        .unwrap();
    assert!(
        grpc.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    let asked = tollgate_inference::grpc::to_grpc("churn", &request);
    let refused = grpc.model_infer(asked.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused}");
    assert!(refused.message().contains("no bearer token"), "{refused}");
    let mut call = tonic::Request::new(asked);
    call.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let scored = grpc.model_infer(call).await.unwrap().into_inner();
    assert_eq!(scored.model_version, "1");
    let probability = f64::from_le_bytes(scored.raw_output_contents[0][..8].try_into().unwrap());
    assert_eq!(
        Some(probability),
        answered.numbers("probability").map(|p| p[0]),
        "gRPC and HTTP answer alike"
    );
}
