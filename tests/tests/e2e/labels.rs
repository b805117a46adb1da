//! Labels that arrive after the fact: a model server process scores 1,000 records, labels
//! come back for them through its feedback endpoint and `tollgate feedback push`, and the
//! version's live AUC-ROC is scikit-learn's on the same ids and scores. Every process signs
//! in to NATS as its own identity (the server as `server`, the push as `operator`, the
//! reads as `viewer`), so their permissions are what is tested. With a `monitor:` floor
//! over the live AUC-ROC that the labels miss, the server fires the `live_auc_roc` alert
//! and starts one performance-triggered retrain.

use std::{
    collections::BTreeMap,
    process::{Command, Output},
};

use futures::StreamExt;
use prost::Message as _;
use tollgate_bus::subjects;
use tollgate_e2e::{Pipeline, free_port};
use tollgate_inference::client::request_for;
use tollgate_inference::protocol::PROBABILITY;

use super::otlp::Received;
use super::registry::wait_run;
use super::security::python;
use super::serving::{Server, v1_served_in_production};

/// A label for a score: 1 with probability `p`, drawn from a fixed hash of `i`, so the
/// labels follow the model's scores as real outcomes would, and repeat run to run.
fn outcome(i: u64, p: f64) -> u8 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    u8::from(((x >> 11) as f64 / (1u64 << 53) as f64) < p)
}

/// POSTs `labels` to the server's feedback endpoint; the status and the JSON answer.
async fn post_labels(url: &str, labels: &[(String, u8)]) -> (u16, serde_json::Value) {
    let body: Vec<_> = labels
        .iter()
        .map(|(id, label)| serde_json::json!({"id": id, "label": label}))
        .collect();
    let response = reqwest::Client::new()
        .post(format!("{url}/v2/models/churn/feedback"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The CLI against `p`, signed in to NATS as `identity`.
fn tollgate(p: &Pipeline, creds: &std::path::Path, identity: &str, args: &[&str]) -> Output {
    Command::new(super::processes::bin("tollgate"))
        .args(args)
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env(
            "TOLLGATE_NATS_CREDS",
            creds.join(format!("{identity}.creds")),
        )
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn labels_pushed_for_scored_requests_give_scikit_learns_auc_per_version() {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let creds = tempfile::tempdir().unwrap();
    let dashboard = format!("127.0.0.1:{}", free_port().unwrap());
    let p = Pipeline::start_secured(creds.path(), |h| h.dashboard_addr = dashboard.clone())
        .await
        .unwrap();
    let server_creds = creds.path().join("server.creds");
    let (otlp, endpoint) = Received::start().await;
    let mut server = Server::spawn_with(
        &p,
        &addr,
        "churn@Production",
        &p.dir.path().join("s.log"),
        &[
            ("TOLLGATE_NATS_CREDS", server_creds.to_str().unwrap()),
            // One cooldown slot a day: the test never straddles two, so one retrain.
            ("TOLLGATE_DRIFT_COOLDOWN_SECS", "86400"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ],
    );
    let (columns, rows) = v1_served_in_production(&p, &server).await;
    // The policy asks more of live traffic than the labels will show.
    let monitored = format!(
        "{}\nmonitor: {{min_auc_roc: 0.99, window: 200}}\n",
        tollgate_e2e::example_spec()
    );
    p.apply(&monitored).await.unwrap();
    let mut alerts = p
        .bus
        .client()
        .subscribe(subjects::alert(subjects::Alert::LiveAucRoc))
        .await
        .unwrap();

    // 600 single-row requests with the caller's ids, 400 rows in batches of 50 with ids
    // the server makes: each scored record's id and probability.
    let mut scored: Vec<(String, f64)> = Vec::new();
    for (i, row) in rows[..600].iter().enumerate() {
        let mut request = request_for(&columns, std::slice::from_ref(row));
        request.id = Some(format!("req-{i}"));
        let answer = server.client.infer("churn", None, &request).await.unwrap();
        assert_eq!(answer.id.as_deref(), Some(format!("req-{i}").as_str()));
        scored.push((format!("req-{i}"), answer.numbers(PROBABILITY).unwrap()[0]));
    }
    for batch in rows[600..].chunks(50) {
        let answer = server
            .client
            .infer("churn", None, &request_for(&columns, batch))
            .await
            .unwrap();
        let id = answer
            .id
            .clone()
            .expect("the server gives every answer an id");
        for (k, p) in answer.numbers(PROBABILITY).unwrap().into_iter().enumerate() {
            scored.push((format!("{id}:{k}"), p));
        }
    }
    let labels: Vec<(String, u8)> = (scored.iter().enumerate())
        .map(|(i, (id, p))| (id.clone(), outcome(i as u64, *p)))
        .collect();

    // The first half through the endpoint. Predictions are kept off the request path, so
    // an id may not be kept yet: sent again until none is unknown.
    let (http_half, cli_half) = labels.split_at(500);
    let mut accepted = 0;
    for _ in 0..100 {
        let (status, joined) = post_labels(&server.url, http_half).await;
        assert_eq!(status, 200, "{joined}");
        accepted += joined["accepted"].as_u64().unwrap();
        if joined["unknown"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(accepted, 500, "every label of the first half joined once");
    // Sent again: duplicates, never counted twice.
    let (_, again) = post_labels(&server.url, &http_half[..10]).await;
    assert_eq!(again["duplicate"], 10, "{again}");
    assert_eq!(again["accepted"], 0, "{again}");
    // An id never scored, and a label that is not 0 or 1.
    let (_, unknown) = post_labels(&server.url, &[("never-scored".into(), 1)]).await;
    assert_eq!(
        unknown["unknown"],
        serde_json::json!(["never-scored"]),
        "{unknown}"
    );
    let (status, refused) = post_labels(&server.url, &[("req-1".into(), 7)]).await;
    assert_eq!(status, 400, "{refused}");

    // The second half with the CLI, from a CSV file.
    let csv = p.dir.path().join("labels.csv");
    let mut text = String::from("id,label\n");
    for (id, label) in cli_half {
        text.push_str(&format!("{id},{label}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let pushed = tollgate(
        &p,
        creds.path(),
        "operator",
        &["feedback", "push", "churn", csv.to_str().unwrap(), "--json"],
    );
    let said = String::from_utf8_lossy(&pushed.stdout);
    assert!(
        pushed.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let joined: serde_json::Value = serde_json::from_str(&said).unwrap();
    assert_eq!(joined["accepted"], 500, "{joined}");

    // Live metrics against scikit-learn's on the same ids, scores and labels.
    let status = tollgate(
        &p,
        creds.path(),
        "viewer",
        &["feedback", "status", "churn", "--json"],
    );
    let live: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(live[0]["version"], 1, "{live}");
    assert_eq!(live[0]["labels"], 1_000, "{live}");
    let ours = live[0]["auc_roc"].as_f64().unwrap();
    let by_id: BTreeMap<&str, f64> = scored.iter().map(|(id, p)| (id.as_str(), *p)).collect();
    let pairs: Vec<(u8, f64)> = labels
        .iter()
        .map(|(id, l)| (*l, by_id[id.as_str()]))
        .collect();
    let sklearn = std::process::Command::new(python())
        .args([
            "-c",
            "import json, sys\nfrom sklearn.metrics import roc_auc_score\npairs = json.load(sys.stdin)\nprint(roc_auc_score([l for l, _ in pairs], [p for _, p in pairs]))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = sklearn.stdin.as_ref().unwrap();
        stdin
            .write_all(serde_json::to_string(&pairs).unwrap().as_bytes())
            .unwrap();
    }
    let out = sklearn.wait_with_output().unwrap();
    let theirs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        (ours - theirs).abs() < 1e-9,
        "live AUC-ROC {ours} against scikit-learn's {theirs}"
    );
    assert!(ours > 0.6, "labels drawn from the scores: {ours}");

    // Under the monitor's floor: the alert fires once, and one retrain starts.
    let alert = tokio::time::timeout(std::time::Duration::from_secs(30), alerts.next())
        .await
        .expect("the live AUC-ROC alert fires")
        .unwrap();
    let alert = tollgate_proto::Alert::decode(alert.payload).unwrap();
    assert_eq!(
        alert.state(),
        tollgate_proto::AlertState::Firing,
        "{alert:?}"
    );
    assert!(
        alert.summary.contains("Production v1") && alert.summary.contains("min_auc_roc 0.99"),
        "{}",
        alert.summary
    );
    let retrain = wait_run(&p, "the performance retrain", |r| {
        r.trigger_id.starts_with("live-auc-churn-v1-")
    })
    .await;
    assert_eq!(retrain.trigger(), tollgate_proto::TriggerKind::Drift);
    assert!(
        retrain.requested_reason.contains("live AUC-ROC"),
        "{}",
        retrain.requested_reason
    );
    let retrains = p.runs("churn").await.unwrap();
    let started = retrains
        .iter()
        .filter(|r| r.trigger_id.starts_with("live-auc-"));
    assert_eq!(started.count(), 1, "one retrain per version and cooldown");

    // `models show` carries the same figures.
    let shown = tollgate(&p, creds.path(), "viewer", &["models", "show", "churn"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("live metrics"), "{shown}");
    assert!(shown.contains(&format!("{ours:.4}")), "{shown}");

    // The dashboard charts the live figures the server published as they changed.
    let mut snapshots = serde_json::Value::Null;
    for _ in 0..50 {
        snapshots = reqwest::get(format!("http://{dashboard}/api/live"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if snapshots.as_array().is_some_and(|a| {
            a.last()
                .is_some_and(|m| m["labels"].as_u64().unwrap_or(0) >= 900)
        }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let latest = snapshots.as_array().unwrap().last().unwrap().clone();
    assert_eq!(latest["version"], 1, "{latest}");
    let charted = latest["auc_roc"].as_f64().unwrap();
    assert!((charted - ours).abs() < 0.05, "{charted} against {ours}");
    let dom = super::browser::chromium(&["--dump-dom", &format!("http://{dashboard}/?live=0")]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains(r#"class="live" data-model="churn" data-version="1""#),
        "{dom}"
    );
    assert!(dom.contains(&format!("{charted:.4}")), "{dom}");

    // The live figures went out as OpenTelemetry gauges (flushed as the server stops).
    server.stop();
    let names = otlp.metrics.lock().unwrap().clone();
    let live = tollgate_telemetry::metrics::Metric::LiveMetric.name();
    assert!(names.contains(&live), "{live} not received: {names:?}");
}
