//! Progressive delivery with real processes: the six services, nats-server and two
//! `tollgate-server` replicas under a bounded load on loopback. A good candidate walks
//! shadow → 5 → 25 → 50 → 100 and becomes Production, each replica sending it its step's
//! share; a replica killed mid-rollout comes back serving the current split; a candidate
//! that disagrees with Production, and one whose live AUC-ROC falls under the floor once
//! labels arrive, are rolled back at the first failing step.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tollgate_bus::now_ms;
use tollgate_e2e::{free_port, workspace_root};
use tollgate_inference::{
    client::{Client, ClientError, request_for},
    protocol::PROBABILITY,
};
use tollgate_ml::{artifact::Artifact, table::Record};
use tollgate_proto::{
    GetRolloutRequest, GetVersionRequest, LatestByStageRequest, ModelStage, Rollout, RolloutState,
};

use super::processes::{ProcessStack, cli};
use super::serving::{Server, artifact_from, records_of_file};

/// One request of the load: which replica, when it was sent and answered (Unix ms), the
/// version that answered or the error it got, and the answer's id and probability.
#[derive(Debug, Clone)]
struct Sent {
    replica: usize,
    sent: i64,
    done: i64,
    answer: Result<u32, String>,
    id: String,
    probability: f64,
}

/// The six services as processes, with a churn policy that has `rollout_block`.
struct Stack {
    base: ProcessStack,
    spec: PathBuf,
}

impl std::ops::Deref for Stack {
    type Target = ProcessStack;
    fn deref(&self) -> &ProcessStack {
        &self.base
    }
}

impl Stack {
    fn start(rollout_block: &str) -> Stack {
        let base = ProcessStack::start(Vec::new());
        let spec = base.dir.path().join("tollgate.yaml");
        let stack = Stack { base, spec };
        stack.apply(rollout_block);
        stack
    }

    /// Writes the example spec with `rollout_block` and applies it, as an admin does.
    fn apply(&self, rollout_block: &str) {
        let example =
            std::fs::read_to_string(workspace_root().join("examples/churn/tollgate.yaml")).unwrap();
        std::fs::write(&self.spec, format!("{example}\n{rollout_block}\n")).unwrap();
        self.ok(&["apply", self.spec.to_str().unwrap()]);
    }

    /// A data run on `data` that must pass and stage `version`.
    fn stage(&self, version: u32, data: &Path) {
        let out = self.ok(&[
            "publish",
            "data",
            "--spec",
            self.spec.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--wait",
            "--timeout",
            "180",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("verdict: PASSED"), "{stdout}");
        assert!(stdout.contains(&format!("v{version}")), "{stdout}");
    }

    /// Alice approves `version` for Production.
    fn approve(&self, version: u32) {
        self.ok(&[
            "--as",
            "alice",
            "approve",
            "churn",
            &version.to_string(),
            "--reason",
            "ready",
        ]);
    }

    fn dataset(&self, name: &str, rows: usize, seed: u64) -> PathBuf {
        let path = self.dir.path().join(name);
        self.ok(&[
            "data",
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
            "--out",
            path.to_str().unwrap(),
        ]);
        path
    }

    async fn rollout(&self) -> Rollout {
        self.registry
            .clone()
            .get_rollout(GetRolloutRequest {
                model: "churn".into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn production(&self) -> u32 {
        self.registry
            .clone()
            .latest_by_stage(LatestByStageRequest {
                model: "churn".into(),
                stage: ModelStage::Production as i32,
            })
            .await
            .map_or(0, |v| v.into_inner().version)
    }

    async fn wait_production(&self, version: u32) {
        for _ in 0..600 {
            if self.production().await == version {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("v{version} never reached Production");
    }

    async fn wait_rollout_started(&self, version: u32) -> Rollout {
        for _ in 0..600 {
            let r = self.rollout().await;
            if r.version == version {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the rollout of v{version} never started");
    }

    async fn stage_of(&self, version: u32) -> tollgate_proto::ModelVersion {
        self.registry
            .clone()
            .get_version(GetVersionRequest {
                model: "churn".into(),
                version,
            })
            .await
            .unwrap()
            .into_inner()
    }

    async fn artifact(&self, version: u32) -> Artifact {
        artifact_from(self.registry.clone(), version).await
    }

    fn server(&self, addr: &str, log: &str, env: &[(&str, &str)]) -> Server {
        Server::spawn_at(
            self.var("TOLLGATE_NATS_URL"),
            self.var("TOLLGATE_REGISTRY_URL"),
            addr,
            "churn@Production",
            &self.dir.path().join(log),
            env,
        )
    }
}

/// Sends single-record requests without ids to each of `clients` from `workers` tasks
/// per replica until `stop`, recording every answer.
fn load(
    clients: &[Client],
    columns: &tollgate_ml::table::Columns,
    rows: &[Record],
    workers: usize,
    stop: CancellationToken,
) -> (Arc<Mutex<Vec<Sent>>>, Vec<tokio::task::JoinHandle<()>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let requests: Arc<Vec<_>> = Arc::new(
        rows.iter()
            .map(|r| request_for(columns, std::slice::from_ref(r)))
            .collect(),
    );
    let mut tasks = Vec::new();
    for (replica, client) in clients.iter().enumerate() {
        for w in 0..workers {
            let (client, sent, requests, stop) =
                (client.clone(), sent.clone(), requests.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while !stop.is_cancelled() {
                    let request = &requests[i % requests.len()];
                    i += workers;
                    let at = now_ms();
                    let (mut id, mut probability) = (String::new(), f64::NAN);
                    let answer = match client.infer("churn", None, request).await {
                        Ok(r) => {
                            id = r.id.clone().unwrap_or_default();
                            probability = r
                                .numbers(PROBABILITY)
                                .and_then(|p| p.first().copied())
                                .unwrap_or(f64::NAN);
                            Ok(r.model_version
                                .and_then(|v| v.parse().ok())
                                .unwrap_or_default())
                        }
                        // The replica is down (killed on purpose): not a request it took.
                        Err(ClientError::Unreachable { .. }) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    sent.lock().unwrap().push(Sent {
                        replica,
                        sent: at,
                        done: now_ms(),
                        answer,
                        id,
                        probability,
                    });
                }
            }));
        }
    }
    (sent, tasks)
}

/// Of `replica`'s requests sent at or after `from` and answered before `to`: how many,
/// and the share `candidate` answered.
fn share(sent: &[Sent], replica: usize, from: i64, to: i64, candidate: u32) -> (usize, f64) {
    let window: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.replica == replica && s.sent >= from && s.done < to)
        .collect();
    let by_candidate = window.iter().filter(|s| s.answer == Ok(candidate)).count();
    (
        window.len(),
        by_candidate as f64 / window.len().max(1) as f64,
    )
}

/// Seconds each canary step lasts in the good rollout: long enough for 2,000 requests a
/// replica in a debug build on two cores.
const STEP_S: u64 = 8;

#[tokio::test(flavor = "multi_thread")]
async fn a_good_candidate_walks_every_step_on_two_replicas_and_a_restarted_replica_serves_the_split()
 {
    let stack = Stack::start(&format!(
        "rollout:\n  shadow: {{share: 1.0, duration: 6s}}\n  canary: {{steps: [5, 25, 50, 100], step: {STEP_S}s}}\n  analysis:\n    max_error_rate: 0.01\n    max_latency_p99_ms: 50\n    min_agreement: 0.8\n    max_prediction_drift: 0.25\n"
    ));
    // v1: no Production to roll out against, so the approval moves it at once.
    stack.stage(1, &stack.dataset("v1.parquet", 3_000, 41));
    stack.approve(1);
    stack.wait_production(1).await;
    assert_eq!(stack.rollout().await.state(), RolloutState::Promoted);

    let addrs: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port().unwrap()))
        .collect();
    let quiet = [
        ("TOLLGATE_KEEP_PREDICTIONS", "false"),
        ("TOLLGATE_SAMPLE_SHARE", "0"),
    ];
    let mut replicas: Vec<Server> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| stack.server(a, &format!("server-{i}.log"), &quiet))
        .collect();
    let v1 = stack.artifact(1).await;
    let columns = v1.columns();
    let rows = records_of_file(&stack.dataset("served.parquet", 1_000, 42), &v1);
    for r in &replicas {
        r.wait_live().await;
        r.wait_serving(1, &rows, &columns).await;
    }

    stack.stage(2, &stack.dataset("v2.parquet", 3_000, 43));
    let stop = CancellationToken::new();
    let clients: Vec<Client> = replicas.iter().map(|r| r.client.clone()).collect();
    let (sent, workers) = load(&clients, &columns, &rows, 4, stop.clone());
    stack.approve(2);
    let started = stack.wait_rollout_started(2).await;
    assert_eq!(started.from_version, 1);

    // At canary 25%: pause, kill replica 1 and start it again; it must come back on the
    // current split. Its share is measured from then until the rollout resumes.
    let mut restarted: Option<(i64, i64)> = None;
    let done = loop {
        let r = stack.rollout().await;
        if !matches!(r.state(), RolloutState::Running | RolloutState::Paused) {
            break r;
        }
        if r.phase == 2 && restarted.is_none() && now_ms() > r.phase_started_unix_ms + 1_000 {
            stack.ok(&[
                "--as",
                "bob",
                "rollout",
                "pause",
                "churn",
                "--reason",
                "restart a replica",
            ]);
            drop(replicas.remove(1));
            replicas.push(stack.server(&addrs[1], "server-1-again.log", &quiet));
            replicas[1].wait_live().await;
            replicas[1].wait_logged("shadowing Production", 1).await;
            let back = now_ms() + 500;
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let seen = share(&sent.lock().unwrap(), 1, back, now_ms(), 2).0;
                if seen >= 2_000 {
                    break;
                }
            }
            let status = String::from_utf8_lossy(&stack.ok(&["rollout", "status", "churn"]).stdout)
                .to_string();
            assert!(status.contains("paused: restart a replica"), "{status}");
            let resumed = now_ms();
            stack.ok(&[
                "--as",
                "bob",
                "rollout",
                "resume",
                "churn",
                "--reason",
                "replica is back",
            ]);
            restarted = Some((back, resumed));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let sent = sent.lock().unwrap().clone();

    assert_eq!(done.state(), RolloutState::Promoted, "{done:?}");
    let phases: Vec<&str> = done.history.iter().map(|s| s.phase.as_str()).collect();
    assert_eq!(
        phases,
        [
            "shadow",
            "canary 5%",
            "canary 25%",
            "canary 50%",
            "canary 100%"
        ]
    );
    assert!(done.history.iter().all(|s| s.passed), "{:?}", done.history);
    assert!(
        done.history[0].summary.contains("agreement"),
        "{}",
        done.history[0].summary
    );
    stack.wait_production(2).await;
    assert_eq!(stack.stage_of(1).await.stage(), ModelStage::Archived);

    // Every request was answered once, by one version, and none failed.
    let failed: Vec<&Sent> = sent.iter().filter(|s| s.answer.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    // The shadow phase changed no answer.
    let shadow = &done.history[0];
    assert!(
        sent.iter()
            .filter(|s| s.sent >= shadow.started_unix_ms && s.done < shadow.ended_unix_ms)
            .all(|s| s.answer == Ok(1))
    );
    // Each step's share, on each replica, over at least 2,000 requests.
    let (back, resumed) = restarted.expect("the replica was restarted at canary 25%");
    for (step, want) in done.history[1..].iter().zip([0.05, 0.25, 0.5, 1.0]) {
        for replica in 0..2 {
            let (from, to) = if replica == 1 && step.phase == "canary 25%" {
                (back, resumed)
            } else {
                (step.started_unix_ms + 1_000, step.ended_unix_ms)
            };
            let (n, got) = share(&sent, replica, from, to, 2);
            eprintln!(
                "{}: replica {replica} sent {got:.4} of {n} to v2",
                step.phase
            );
            assert!(
                n >= 2_000,
                "{}: replica {replica} took {n} requests",
                step.phase
            );
            assert!(
                (got - want).abs() <= 0.03,
                "{}: replica {replica} sent {got:.4} of {n} to v2",
                step.phase
            );
        }
    }
    // The run the approval started holds every step; the audit trail too.
    let v2 = stack.stage_of(2).await;
    let trail: Vec<&str> = v2.audit.iter().map(|a| a.reason.as_str()).collect();
    for needle in [
        "rollout started",
        "shadow passed",
        "canary 50% passed",
        "paused",
        "resumed",
    ] {
        assert!(
            trail.iter().any(|r| r.contains(needle)),
            "{needle}: {trail:?}"
        );
    }
    let run = stack
        .registry
        .clone()
        .get_run(tollgate_proto::GetRunRequest {
            run_id: done.run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.rollout.len(), 5, "{:?}", run.rollout);
    let shown =
        String::from_utf8_lossy(&stack.ok(&["runs", "show", &done.run_id]).stdout).to_string();
    assert!(shown.contains("rollout: canary 100%"), "{shown}");
}

/// `data` with every label flipped: a model trained on it learns the opposite of
/// Production's and still passes its own gates, on its own (flipped) test data.
fn flipped(data: &Path, out: &Path) {
    let text = std::fs::read_to_string(data).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let at = header.split(',').position(|c| c == "label").unwrap();
    let mut flipped = vec![header.to_string()];
    for line in lines {
        let mut cells: Vec<String> = line.split(',').map(str::to_string).collect();
        cells[at] = if cells[at] == "1" { "0" } else { "1" }.into();
        flipped.push(cells.join(","));
    }
    std::fs::write(out, flipped.join("\n") + "\n").unwrap();
}

/// Runs the load against `server` until the rollout of `version` ends; returns the
/// rollout and every answer.
async fn load_until_ended(
    stack: &Stack,
    server: &Server,
    columns: &tollgate_ml::table::Columns,
    rows: &[Record],
    version: u32,
    during: impl AsyncFn(&Rollout, &[Sent]),
) -> (Rollout, Vec<Sent>) {
    let stop = CancellationToken::new();
    let (sent, workers) = load(
        std::slice::from_ref(&server.client),
        columns,
        rows,
        4,
        stop.clone(),
    );
    stack.approve(version);
    stack.wait_rollout_started(version).await;
    let done = loop {
        let r = stack.rollout().await;
        if !matches!(r.state(), RolloutState::Running | RolloutState::Paused) {
            break r;
        }
        let seen = sent.lock().unwrap().clone();
        during(&r, &seen).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    (done, sent)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disagreeing_candidate_and_one_with_a_low_live_auc_are_rolled_back_at_the_first_failing_step()
 {
    let stack = Stack::start(
        "rollout:\n  shadow: {share: 1.0, duration: 4s}\n  canary: {steps: [50, 100], step: 4s}\n  analysis: {min_agreement: 0.9}\n",
    );
    stack.stage(1, &stack.dataset("v1.parquet", 3_000, 41));
    stack.approve(1);
    stack.wait_production(1).await;
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let server = stack.server(&addr, "server.log", &[("TOLLGATE_SAMPLE_SHARE", "0")]);
    let v1 = stack.artifact(1).await;
    let columns = v1.columns();
    let rows = records_of_file(&stack.dataset("served.parquet", 1_000, 42), &v1);
    server.wait_live().await;
    server.wait_serving(1, &rows, &columns).await;

    // v2 learnt the opposite: the shadow phase sees them disagree and stops it there.
    let bad = stack.dir.path().join("flipped.csv");
    flipped(&stack.dataset("v2.csv", 3_000, 43), &bad);
    stack.stage(2, &bad);
    let (done, sent) = load_until_ended(&stack, &server, &columns, &rows, 2, async |_, _| {}).await;
    assert_eq!(done.state(), RolloutState::RolledBack, "{done:?}");
    let [shadow] = done.history.as_slice() else {
        panic!("stopped at the first step: {:?}", done.history);
    };
    eprintln!("v2 at {}: {}", shadow.phase, shadow.summary);
    assert_eq!(shadow.phase, "shadow");
    assert!(!shadow.passed);
    assert!(
        shadow.summary.starts_with("agreement "),
        "{}",
        shadow.summary
    );
    // Within one analysis interval of the phase's end.
    let late = shadow.ended_unix_ms - (shadow.started_unix_ms + 4_000);
    assert!(
        (0..3_000).contains(&late),
        "judged {late} ms after the phase ended"
    );
    assert!(
        sent.iter().all(|s| s.answer == Ok(1)),
        "Production answered everything"
    );
    assert_eq!(stack.production().await, 1);
    let v2 = stack.stage_of(2).await;
    assert!(
        v2.audit
            .iter()
            .any(|a| a.reason.contains("rolled back at shadow: agreement")),
        "{:?}",
        v2.audit
    );
    let status =
        String::from_utf8_lossy(&stack.ok(&["rollout", "status", "churn"]).stdout).to_string();
    assert!(status.contains("rolled back"), "{status}");
    let bus = tollgate_bus::Bus::connect(stack.var("TOLLGATE_NATS_URL"))
        .await
        .unwrap();
    let alerts: Vec<tollgate_proto::Alert> = bus
        .read_all(
            tollgate_bus::subjects::ALERTS_STREAM,
            &tollgate_bus::subjects::alert(tollgate_bus::subjects::Alert::Rollout),
            "Alert",
        )
        .await
        .unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a.model == "churn" && a.summary.contains("agreement")),
        "{alerts:?}"
    );

    // v3 agrees with Production, but the labels that come back say it ranks the
    // customers backwards: the live AUC-ROC stops it at canary 50%.
    stack.apply(
        "rollout:\n  canary: {steps: [50, 100], step: 6s}\n  analysis: {min_auc_roc: 0.8, min_labels: 100}\n",
    );
    stack.stage(3, &stack.dataset("v3.parquet", 3_000, 44));
    let labelled = Mutex::new(0_usize);
    let feedback = format!("{}/v2/models/churn/feedback", server.url);
    let (done, sent) = load_until_ended(&stack, &server, &columns, &rows, 3, async |r, seen| {
        if r.phase != 0
            || *labelled.lock().unwrap() > 0
            || now_ms() < r.phase_started_unix_ms + 2_000
        {
            return;
        }
        // Labels for 300 of v3's answers, each the opposite of what v3 predicted.
        let labels: Vec<serde_json::Value> = seen
            .iter()
            .filter(|s| s.answer == Ok(3))
            .take(300)
            .map(|s| serde_json::json!({"id": s.id, "label": u8::from(s.probability < 0.5)}))
            .collect();
        let joined: serde_json::Value = reqwest::Client::new()
            .post(&feedback)
            .json(&labels)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        *labelled.lock().unwrap() = labels.len();
        assert_eq!(joined["accepted"], labels.len(), "{joined}");
    })
    .await;
    assert_eq!(
        *labelled.lock().unwrap(),
        300,
        "labels were sent during canary 50%"
    );
    assert_eq!(done.state(), RolloutState::RolledBack, "{done:?}");
    let [step] = done.history.as_slice() else {
        panic!("stopped at the first step: {:?}", done.history);
    };
    eprintln!("v3 at {}: {}", step.phase, step.summary);
    assert_eq!(step.phase, "canary 50%");
    assert!(
        step.summary.starts_with("live AUC-ROC 0.0000 (min 0.8)"),
        "{}",
        step.summary
    );
    assert_eq!(stack.production().await, 1);
    // Half the requests went to v3 during the step; after the rollback, none.
    let after: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.sent > step.ended_unix_ms + 1_000)
        .collect();
    assert!(
        after.iter().all(|s| s.answer == Ok(1)),
        "back on Production"
    );
    assert!(sent.iter().all(|s| s.answer.is_ok()), "no request failed");

    // An approver's hand: only an approver acts; abort sends traffic back; a new
    // approval starts it again; promote skips the remaining steps.
    stack.stage(4, &stack.dataset("v4.parquet", 3_000, 45));
    stack.approve(4);
    stack.wait_rollout_started(4).await;
    let refused = cli(
        &stack.env,
        &[
            "--as", "mallory", "rollout", "abort", "churn", "--reason", "no",
        ],
    );
    assert!(!refused.status.success());
    stack.ok(&[
        "--as",
        "bob",
        "rollout",
        "abort",
        "churn",
        "--reason",
        "not today",
    ]);
    let aborted = stack.rollout().await;
    assert_eq!(aborted.state(), RolloutState::Aborted);
    assert_eq!(stack.production().await, 1);
    server.wait_logged("shadow stopped", 3).await;
    stack.ok(&[
        "--as",
        "bob",
        "approve",
        "churn",
        "4",
        "--reason",
        "today after all",
    ]);
    for _ in 0..100 {
        if stack.rollout().await.state() == RolloutState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.ok(&[
        "--as",
        "bob",
        "rollout",
        "promote",
        "churn",
        "--reason",
        "seen enough",
    ]);
    stack.wait_production(4).await;
    let promoted = stack.rollout().await;
    assert_eq!(promoted.state(), RolloutState::Promoted);
    assert_eq!(promoted.history.last().unwrap().summary, "seen enough");
    server.wait_serving(4, &rows, &columns).await;
}
