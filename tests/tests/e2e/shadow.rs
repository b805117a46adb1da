//! Shadow without a rollout: an approver mirrors half of Production's requests to a
//! blessed Staging version; a model server process scores them with both, Production
//! answers every request, and `tollgate shadow status` adds up what the server reported.

use tollgate_e2e::{Pipeline, free_port};
use tollgate_inference::client::request_for;
use tollgate_proto::GetVersionRequest;

use super::poison::tollgate;
use super::serving::{Server, stage, v1_served_in_production};

/// `tollgate shadow status churn --json`.
fn status(p: &Pipeline) -> serde_json::Value {
    let out = tollgate(p, &["shadow", "status", "churn", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shadow_scores_a_share_of_production_requests_and_changes_no_answer() {
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let p = Pipeline::start().await.unwrap();
    // This server keeps no predictions for labels: its answers can take none.
    let log = p.dir.path().join("s.log");
    let server = Server::spawn_with(
        &p,
        &addr,
        "churn@Production",
        &log,
        &[("TOLLGATE_KEEP_PREDICTIONS", "false")],
    );
    let (columns, rows) = v1_served_in_production(&p, &server).await;
    stage(&p, 2, 43).await;

    // Only an approver starts one, and only of a blessed version that is not Production.
    let refused = tollgate(&p, &["--as", "mallory", "shadow", "start", "churn", "2"]);
    assert!(!refused.status.success());
    let refused = tollgate(&p, &["--as", "alice", "shadow", "start", "churn", "1"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("cannot shadow itself"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let started = tollgate(
        &p,
        &[
            "--as", "alice", "shadow", "start", "churn", "2", "--share", "0.5", "--reason",
            "compare",
        ],
    );
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    server.wait_logged("shadowing Production", 1).await;

    // Production answers every request.
    let mut ids = Vec::new();
    for row in &rows {
        let request = request_for(&columns, std::slice::from_ref(row));
        let answer = server.client.infer("churn", None, &request).await.unwrap();
        assert_eq!(answer.model_version.as_deref(), Some("1"));
        ids.push(answer.id.unwrap());
    }
    let labelled = reqwest::Client::new()
        .post(format!("{}/v2/models/churn/feedback", server.url))
        .json(&serde_json::json!([{"id": ids[0], "label": 1}]))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(
        labelled["unknown"],
        serde_json::json!([ids[0]]),
        "{labelled}"
    );
    // Every replica reports every two seconds: wait for the count to hold across more
    // than one report.
    let mut last = -1;
    let mut summary = serde_json::Value::Null;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        summary = status(&p)["summary"].clone();
        let mirrored = summary["mirrored"].as_i64().unwrap();
        if mirrored > 0 && mirrored == last {
            break;
        }
        last = mirrored;
    }
    let mirrored = summary["mirrored"].as_u64().unwrap();
    assert!(
        (400..=600).contains(&mirrored),
        "about half of 1,000: {summary}"
    );
    let agreement = summary["agreement"].as_f64().unwrap();
    assert!(agreement > 0.5 && agreement <= 1.0, "{summary}");
    assert!(
        summary["latency_p99_ms"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["replicas"], 1, "{summary}");
    let shown = tollgate(&p, &["shadow", "status", "churn"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("churn v2 shadows Production for 50%"),
        "{shown}"
    );

    // The audit trail says who started it and why; stopping it stops the mirroring.
    let v2 = p
        .registry()
        .unwrap()
        .get_version(GetVersionRequest {
            model: "churn".into(),
            version: 2,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        v2.audit
            .iter()
            .any(|a| a.actor == "alice" && a.reason.contains("compare")),
        "{:?}",
        v2.audit
    );
    let stopped = tollgate(&p, &["--as", "alice", "shadow", "stop", "churn"]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    server.wait_logged("shadow stopped", 1).await;
    assert_eq!(status(&p)["version"], 0);
}
