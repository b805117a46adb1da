//! Webhooks against a real receiver on loopback: a run's end and a stage change arrive as
//! signed JSON (the signature checked with Python's own hmac), a 500 is retried, a dead
//! endpoint delays nobody, and the delivery log says what happened to each. Through a
//! minute of 500s every event type still arrives, once per event id, while a second
//! endpoint that never answers slows no run; a registry killed with a delivery pending
//! delivers it once it is back.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use tollgate_e2e::{Pipeline, example_spec, free_port};
use tollgate_proto::{TriggerKind, Verdict};

use super::poison::tollgate;
use super::processes::cli;

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Hit {
    /// The `X-Tollgate-Event` header.
    event: String,
    /// The body's event id.
    id: String,
    /// The `X-Tollgate-Signature` header.
    signature: String,
    body: String,
    /// Whether the receiver took it (200) rather than refused it (500).
    taken: bool,
}

/// Every request a receiver got.
type Got = Arc<Mutex<Vec<Hit>>>;

/// A receiver on `port` that keeps every request, and takes it when `takes`, given when
/// its first request came, says so (otherwise it answers 500).
async fn receiver(port: u16, takes: impl Fn(Instant) -> bool + Send + Sync + 'static) -> Got {
    let got: Got = Arc::default();
    let seen = got.clone();
    let first: Arc<Mutex<Option<Instant>>> = Arc::default();
    let takes = Arc::new(takes);
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (seen, first, takes) = (seen.clone(), first.clone(), takes.clone());
            async move {
                let started = *first.lock().unwrap().get_or_insert_with(Instant::now);
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let body = String::from_utf8_lossy(&body).to_string();
                let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let taken = takes(started);
                seen.lock().unwrap().push(Hit {
                    event: header("x-tollgate-event"),
                    id: event["id"].as_str().unwrap_or_default().to_string(),
                    signature: header("x-tollgate-signature"),
                    body,
                    taken,
                });
                if taken {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}

/// What a GitHub-like API got: the path, the authorization header and the body.
type Statuses = Arc<Mutex<Vec<(String, String, String)>>>;

/// A stand-in for GitHub's API on `port`: records every commit status posted.
async fn github(port: u16) -> Statuses {
    let got: Statuses = Arc::default();
    let seen = got.clone();
    let app = Router::new().route(
        "/repos/{owner}/{repo}/statuses/{sha}",
        post(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock().unwrap().push((
                        uri.path().to_string(),
                        auth,
                        String::from_utf8_lossy(&body).to_string(),
                    ));
                    axum::http::StatusCode::CREATED
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    got
}

/// The HMAC-SHA256 of `body` under `secret`, by Python's hmac module.
fn python_hmac(secret: &str, body: &str, dir: &std::path::Path) -> String {
    let file = dir.join("body.json");
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new(tollgate_e2e::servers::python())
        .args([
            "-c",
            "import hmac, hashlib, sys\nprint('sha256=' + hmac.new(sys.argv[1].encode(), open(sys.argv[2], 'rb').read(), hashlib.sha256).hexdigest())",
            secret,
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_signed_a_500_is_retried_and_a_dead_endpoint_delays_nobody() {
    let p = Pipeline::start().await.unwrap();
    let port = free_port().unwrap();
    // Its first request is refused: whichever event came first arrives twice.
    let got = receiver(port, |first| first.elapsed() > Duration::from_millis(1)).await;
    let secret = "s3cret-for-the-hook";
    let secret_file = p.dir.path().join("secret");
    std::fs::write(&secret_file, secret).unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    ok(tollgate(
        &p,
        &[
            "webhook",
            "add",
            "--url",
            &url,
            "--events",
            "run.completed,model.stage_changed",
            "--secret-file",
            secret_file.to_str().unwrap(),
        ],
    ));
    let dead = format!("http://127.0.0.1:{}/gone", free_port().unwrap());
    ok(tollgate(
        &p,
        &[
            "webhook",
            "add",
            "--url",
            &dead,
            "--events",
            "run.completed",
        ],
    ));
    let api_port = free_port().unwrap();
    let statuses = github(api_port).await;
    let token_file = p.dir.path().join("gh-token");
    std::fs::write(&token_file, "ghp_e2e_token").unwrap();
    ok(tollgate(
        &p,
        &[
            "webhook",
            "add",
            "--format",
            "github",
            "--url",
            &format!("http://127.0.0.1:{api_port}"),
            "--repository",
            "acme/churn",
            "--token-file",
            token_file.to_str().unwrap(),
            "--events",
            "run.completed",
        ],
    ));
    let refused = tollgate(
        &p,
        &["webhook", "add", "--url", &url, "--events", "run.finished"],
    );
    assert!(!refused.status.success());
    let listed = ok(tollgate(&p, &["webhook", "list", "--json"]));
    assert!(
        !listed.contains(secret),
        "the secret is never shown: {listed}"
    );

    let data = p.dataset("churn.parquet", 3_000, 41, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);

    // The run's end arrives signed; the stage change too. The receiver's first answer is
    // a 500, so whichever event came first arrives twice.
    let event_id = format!("run.completed:{}", run.run_id);
    let of_run = |got: &Got| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|h| h.id == event_id)
            .cloned()
            .collect::<Vec<_>>()
    };
    for _ in 0..150 {
        if !of_run(&got).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Hit {
        signature, body, ..
    } = of_run(&got)
        .pop()
        .unwrap_or_else(|| panic!("no run.completed: {:?}", got.lock().unwrap()));
    assert_eq!(signature, python_hmac(secret, &body, p.dir.path()));
    let event: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "run.completed");
    assert_eq!(event["id"], event_id);
    assert_eq!(event["model"], "churn");
    assert_eq!(event["details"]["verdict"], "passed");
    // Links to the console's pages about it.
    let run_page = event["links"]["run"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        run_page.starts_with("http://") && run_page.ends_with(&format!("/runs/{}", run.run_id)),
        "{event}"
    );
    assert!(
        event["links"]["model"]
            .as_str()
            .is_some_and(|m| m.ends_with("/models/churn")),
        "{event}"
    );
    for _ in 0..100 {
        if got
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.event == "model.stage_changed" && h.body.contains("Staging"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        got.lock()
            .unwrap()
            .iter()
            .any(|h| h.event == "model.stage_changed" && h.body.contains("Staging")),
        "no stage change: {:?}",
        got.lock().unwrap()
    );

    // The pull request's check: a commit status on the run's commit, with the token.
    for _ in 0..100 {
        if !statuses.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (path, auth, status) = statuses
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("a commit status");
    assert_eq!(
        path,
        format!("/repos/acme/churn/statuses/{}", run.code_commit)
    );
    assert_eq!(auth, "Bearer ghp_e2e_token");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "success", "{status}");
    assert_eq!(status["context"], "tollgate/churn", "{status}");
    assert_eq!(
        status["target_url"],
        run_page.as_str(),
        "the check links the run page"
    );

    // The log: the event that met the 500 delivered on its second attempt (the retry
    // waits 2 s); the dead endpoint's still pending, tried, with the error.
    let mut log = serde_json::Value::Null;
    for _ in 0..100 {
        log =
            serde_json::from_str(&ok(tollgate(&p, &["webhook", "deliveries", "--json"]))).unwrap();
        if log
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["attempts"] == 2 && d["status"] == "delivered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = log.as_array().unwrap();
    let retried = rows
        .iter()
        .find(|d| d["attempts"] == 2 && d["status"] == "delivered")
        .unwrap_or_else(|| panic!("{log:#}"));
    assert_eq!(retried["last_status"], 200, "{retried}");
    let good = rows
        .iter()
        .find(|d| {
            d["event_id"] == event_id.as_str()
                && d["status"] == "delivered"
                && d["url"] == url.as_str()
        })
        .unwrap_or_else(|| panic!("{log:#}"));
    let stuck = rows
        .iter()
        .find(|d| d["event"] == "run.completed" && d["status"] == "pending")
        .unwrap_or_else(|| panic!("{log:#}"));
    assert!(stuck["attempts"].as_u64().unwrap() >= 1, "{stuck}");
    assert!(!stuck["last_error"].as_str().unwrap().is_empty(), "{stuck}");

    // A redelivery carries the same event id, so the receiver can drop it.
    let id = good["id"].as_str().unwrap().to_string();
    let before = of_run(&got).len();
    ok(tollgate(&p, &["webhook", "redeliver", &id]));
    for _ in 0..100 {
        if of_run(&got).len() > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no redelivery: {:?}", got.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_pending_when_the_registry_is_killed_is_delivered_after_it_restarts() {
    use super::processes::{ProcessStack, cli_ok};
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut stack = ProcessStack::start(Vec::new());
    let env = stack.env.clone();
    let dir = stack.dir.path().to_path_buf();
    // A receiver that refuses everything until it is told to take it.
    let up = Arc::new(AtomicBool::new(false));
    let open = up.clone();
    let port = free_port().unwrap();
    let got = receiver(port, move |_| open.load(Ordering::SeqCst)).await;
    let url = format!("http://127.0.0.1:{port}/hook");
    cli_ok(
        &env,
        &["webhook", "add", "--url", &url, "--events", "run.completed"],
    );
    let spec = dir.join("tollgate.yaml");
    std::fs::write(&spec, example_spec()).unwrap();
    let data = dir.join("churn.parquet");
    super::processes::generate(&data, 3000, &[]);
    let published = super::processes::publish(&env, "code", &spec, &data, &["--wait"]);
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    // Refused at least once, and the log says so: the delivery is pending there.
    let mut pending = serde_json::Value::Null;
    for _ in 0..100 {
        let out = cli(&env, &["webhook", "deliveries", "--json"]);
        if out.status.success() {
            pending = serde_json::from_slice(&out.stdout).unwrap();
            if pending[0]["status"] == "pending" && pending[0]["attempts"].as_u64() >= Some(1) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pending[0]["status"], "pending", "{pending:#}");
    assert!(!got.lock().unwrap().is_empty(), "never tried");
    let mut registry = stack.services.take("registry");
    registry.kill().unwrap();
    registry.wait().unwrap();
    up.store(true, Ordering::SeqCst);
    let tried = got.lock().unwrap().len();
    stack.services.spawn(&env, &["registry"]);
    // Started again, it picks the pending delivery up and delivers it.
    let mut log = serde_json::Value::Null;
    for _ in 0..300 {
        let out = cli(&env, &["webhook", "deliveries", "--json"]);
        if out.status.success() {
            log = serde_json::from_slice(&out.stdout).unwrap();
            if log[0]["status"] == "delivered" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(log[0]["status"], "delivered", "{log:#}");
    assert!(log[0]["attempts"].as_u64().unwrap() >= 2, "{log:#}");
    assert!(got.lock().unwrap().len() > tried);
}

/// A receiver on `port` that takes every connection and never answers; how many it took.
async fn hanging(port: u16) -> Arc<Mutex<usize>> {
    let taken = Arc::new(Mutex::new(0));
    let count = taken.clone();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            held.push(socket);
        }
    });
    taken
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_type_arrives_once_per_id_through_a_minute_of_500s_and_a_hang_slows_nothing() {
    let p = Pipeline::start().await.unwrap();
    let (good_port, hung_port) = (free_port().unwrap(), free_port().unwrap());
    let seen = receiver(good_port, |first| {
        first.elapsed() >= Duration::from_secs(60)
    })
    .await;
    let hung = hanging(hung_port).await;
    let secret = "a-minute-of-500s";
    let secret_file = p.dir.path().join("secret");
    std::fs::write(&secret_file, secret).unwrap();
    let every = tollgate_stack::services::registry::webhooks::EVENTS.join(",");
    for (port, signed) in [(good_port, true), (hung_port, false)] {
        let url = format!("http://127.0.0.1:{port}/hook");
        let mut args = vec!["webhook", "add", "--url", &url, "--events", &every];
        if signed {
            args.extend(["--secret-file", secret_file.to_str().unwrap()]);
        }
        ok(tollgate(&p, &args));
    }

    // A failed validation fires its alert; the next run passes, resolves it and puts v1 in
    // Staging, where it waits for approval. Neither run waits on the hanging endpoint.
    let dirty = p.dataset("dirty.parquet", 3_000, 51, true).unwrap();
    let failed = p
        .run_file(TriggerKind::Data, &example_spec(), &dirty)
        .await
        .unwrap();
    assert_eq!(failed.verdict(), Verdict::Failed, "{}", failed.reason);
    let clean = p.dataset("churn.parquet", 3_000, 52, false).unwrap();
    let passed = p
        .run_file(TriggerKind::Data, &example_spec(), &clean)
        .await
        .unwrap();
    assert_eq!(passed.verdict(), Verdict::Passed, "{}", passed.reason);
    for run in [&failed, &passed] {
        let took = run.finished_unix_ms - run.created_unix_ms;
        assert!(took < 30_000, "run {} took {took} ms", run.run_id);
    }

    // Through the minute of 500s every event is retried until the receiver takes it.
    let accepted = |seen: &Got| {
        let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
        for h in seen.lock().unwrap().iter().filter(|h| h.taken) {
            *kinds.entry(h.event.clone()).or_default() += 1;
        }
        kinds
    };
    // Ids refused and not (yet) taken.
    let waiting = |seen: &Got| {
        let requests = seen.lock().unwrap().clone();
        requests
            .iter()
            .filter(|r| !requests.iter().any(|x| x.id == r.id && x.taken))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    while accepted(&seen).len() < tollgate_stack::services::registry::webhooks::EVENTS.len()
        || waiting(&seen) > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "not every event delivered: {:?}",
            accepted(&seen)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| !r.taken),
        "the receiver refused some first"
    );
    // Each event id taken once: a 200 ends its delivery.
    let mut taken: std::collections::BTreeMap<&str, usize> = Default::default();
    for h in &requests {
        assert!(!h.id.is_empty());
        if h.taken {
            *taken.entry(&h.id).or_default() += 1;
        }
    }
    assert!(taken.values().all(|&n| n == 1), "{taken:?}");
    // None lost: every event id the receiver refused, it took later.
    for h in &requests {
        assert!(
            h.taken || taken.contains_key(h.id.as_str()),
            "{} {} was lost",
            h.event,
            h.id
        );
    }
    for h in requests.iter().filter(|h| h.taken) {
        assert_eq!(
            h.signature,
            python_hmac(secret, &h.body, p.dir.path()),
            "{}: signature",
            h.event
        );
    }
    assert!(*hung.lock().unwrap() > 0, "the hanging endpoint was tried");
}
