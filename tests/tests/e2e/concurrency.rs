//! Concurrency groups against a real nats-server: with `queue` one run of a model's plan
//! is active and one waits, the newest waiting run replacing the older; with
//! `cancel-in-progress` a new run stops the active one mid-training or at its next stage
//! boundary. Cancelled runs end `cancelled` with the reason, register nothing and are
//! never promoted, and `tollgate runs` shows them.

use std::time::Duration;

use tollgate_e2e::{Pipeline, example_spec};
use tollgate_pipeline::dataset::file_uri;
use tollgate_proto::{ModelStage, RunSummary, Stage, StageStatus, TriggerKind, Verdict};

/// The example spec with `concurrency` set, training a forest of `trees` on 20k rows
/// (seconds, so it is still growing when the test acts), or logistic regression.
fn spec(concurrency: &str, trees: Option<u32>) -> String {
    let mut text = format!("{}\nconcurrency: {concurrency}\n", example_spec());
    if let Some(trees) = trees {
        text = text.replace(
            "algorithm:\n  kind: logistic_regression\n  alpha: 1.0\n  max_iterations: 100\n",
            &format!("algorithm: {{kind: random_forest, trees: {trees}}}\n"),
        );
        assert!(text.contains("random_forest"));
    }
    text
}

/// The run a trigger started, once the registry has it.
async fn run_of(p: &Pipeline, trigger_id: &str) -> Option<RunSummary> {
    p.runs("churn")
        .await
        .ok()?
        .into_iter()
        .find(|r| r.trigger_id == trigger_id)
}

/// Waits (up to 60 s) until the run of `trigger_id` satisfies `ready`; returns it.
async fn wait_run(
    p: &Pipeline,
    trigger_id: &str,
    what: &str,
    ready: impl Fn(&RunSummary) -> bool,
) -> RunSummary {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let run = run_of(p, trigger_id).await;
        if let Some(run) = run.as_ref().filter(|r| ready(r)) {
            return run.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run of trigger {trigger_id} never {what}: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn training(run: &RunSummary) -> bool {
    run.stages
        .iter()
        .any(|s| s.stage() == Stage::Train && s.status() == StageStatus::Running)
}

fn stage_status(run: &RunSummary, stage: Stage) -> Option<StageStatus> {
    run.stages
        .iter()
        .find(|s| s.stage() == stage)
        .map(|s| s.status())
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_keeps_one_waiting_run_and_the_newest_replaces_it() {
    let p = Pipeline::start().await.unwrap();
    let data = file_uri(&p.dataset("churn.parquet", 20_000, 3, false).unwrap());
    let queued = "{code: queue}";
    // Concurrency is policy: an admin applies it; the runs then propose only algorithms.
    p.apply(&spec(queued, None)).await.unwrap();
    let first = p
        .trigger(TriggerKind::Code, "churn", &spec(queued, Some(120)), &data)
        .await
        .unwrap();
    let a = wait_run(&p, &first, "trained", training).await;

    // Three more while the first trains: each waits, and each replaces the one before.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let t = p
            .trigger(TriggerKind::Code, "churn", &spec(queued, None), &data)
            .await
            .unwrap();
        let run = wait_run(&p, &t, "queued", |r| r.status() == "queued").await;
        assert_eq!(run.queued_behind, a.run_id);
        waiting.push(t);
    }
    let a = p.verdict(&first).await.unwrap();
    assert_eq!(a.verdict(), Verdict::Passed, "{}", a.reason);
    let mut ends = Vec::new();
    for t in &waiting {
        ends.push(p.verdict(t).await.unwrap());
    }
    let (b, c, d) = (&ends[0], &ends[1], &ends[2]);
    for (old, newer) in [(b, c), (c, d)] {
        assert_eq!(old.verdict(), Verdict::Cancelled, "{}", old.reason);
        assert_eq!(
            old.reason,
            format!("replaced while queued by the newer run {}", newer.run_id)
        );
        assert!(old.stages.is_empty(), "a replaced run never ran: {old:?}");
        assert_eq!(old.model_version, 0);
    }
    assert_eq!(d.verdict(), Verdict::Passed, "{}", d.reason);
    let d_started = d.stages.first().map(|s| s.started_unix_ms).unwrap_or(0);
    assert!(
        d_started >= a.finished_unix_ms,
        "the waiting run started only after the active one ended"
    );
    let versions = crate::versions(&p, "churn").await;
    let by: Vec<&str> = versions.iter().map(|v| v.run_id.as_str()).collect();
    assert_eq!(by.len(), 2, "only the first and the last trained: {by:?}");
    assert!(by.contains(&a.run_id.as_str()) && by.contains(&d.run_id.as_str()));

    // The group is free again: the next run starts at once.
    let t = p
        .trigger(TriggerKind::Code, "churn", &spec(queued, None), &data)
        .await
        .unwrap();
    let e = p.verdict(&t).await.unwrap();
    assert_eq!(e.verdict(), Verdict::Passed, "{}", e.reason);
    assert!(e.queued_behind.is_empty());

    let out = std::process::Command::new(crate::processes::bin("tollgate"))
        .args(["runs", "--model", "churn"])
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert_eq!(table.matches("cancelled").count(), 2, "{table}");
    assert!(
        table.contains("replaced while queued by the newer run"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_in_progress_stops_the_active_run_mid_training_or_at_a_stage_boundary() {
    let p = Pipeline::start().await.unwrap();
    let data = file_uri(&p.dataset("churn.parquet", 20_000, 4, false).unwrap());
    let cancel = "{data: cancel-in-progress}";
    p.apply(&spec(cancel, None)).await.unwrap();
    let first = p
        .trigger(TriggerKind::Data, "churn", &spec(cancel, Some(1000)), &data)
        .await
        .unwrap();
    wait_run(&p, &first, "trained", training).await;
    let second = p
        .trigger(TriggerKind::Data, "churn", &spec(cancel, None), &data)
        .await
        .unwrap();
    let a = p.verdict(&first).await.unwrap();
    let b = p.verdict(&second).await.unwrap();
    assert_eq!(a.verdict(), Verdict::Cancelled, "{}", a.reason);
    assert_eq!(
        a.reason,
        format!(
            "train: cancelled by the newer run {} (cancel-in-progress)",
            b.run_id
        )
    );
    assert_eq!(stage_status(&a, Stage::Train), Some(StageStatus::Cancelled));
    assert_eq!(
        a.model_version, 0,
        "nothing registered for the cancelled run"
    );
    assert_eq!(b.verdict(), Verdict::Passed, "{}", b.reason);
    assert_eq!(b.queued_behind, a.run_id);
    let versions = crate::versions(&p, "churn").await;
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0].run_id, b.run_id);
    assert_eq!(versions[0].stage(), ModelStage::Staging);

    // Two at once: the first is stopped before whichever stage comes next, never promoted.
    let third = p
        .trigger(TriggerKind::Data, "churn", &spec(cancel, None), &data)
        .await
        .unwrap();
    let fourth = p
        .trigger(TriggerKind::Data, "churn", &spec(cancel, None), &data)
        .await
        .unwrap();
    let c = p.verdict(&third).await.unwrap();
    let d = p.verdict(&fourth).await.unwrap();
    assert_eq!(c.verdict(), Verdict::Cancelled, "{}", c.reason);
    assert!(
        c.reason.contains(&format!("the newer run {}", d.run_id)),
        "{}",
        c.reason
    );
    assert_eq!(stage_status(&c, Stage::Promote), None, "{c:?}");
    assert_eq!(d.verdict(), Verdict::Passed, "{}", d.reason);
    let staged: Vec<_> = crate::versions(&p, "churn")
        .await
        .into_iter()
        .filter(|v| v.stage() == ModelStage::Staging)
        .map(|v| v.run_id)
        .collect();
    assert_eq!(staged, vec![d.run_id.clone()]);
}
