//! Timeouts against a real nats-server: a stage that never returns is tried again after
//! its timeout and then fails the run; a run whose stage nobody serves ends `failed` when
//! its plan's timeout has passed. Either way the run gets one verdict and never stays
//! `running`.

use std::{future::Future, sync::Arc, time::Duration};

use tollgate_e2e::{Pipeline, example_spec};
use tollgate_pipeline::{
    StageContext, StageDone, StageError, StageHandler, dataset::file_uri, stage::run_stage,
};
use tollgate_proto::{Run, Stage, TriggerKind, Verdict};

/// A gate that never answers.
struct Hang;

impl StageHandler for Hang {
    fn handle(
        &self,
        _run: Run,
        _ctx: StageContext,
    ) -> impl Future<Output = Result<StageDone, StageError>> + Send {
        std::future::pending()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_stage_times_out_and_a_run_never_outlives_its_plan() {
    let p = Pipeline::start_hosted(|h| h.without = vec!["gate"])
        .await
        .unwrap();
    let data = file_uri(&p.dataset("churn.parquet", 2000, 5, false).unwrap());

    // Nothing serves the gate: the run ends when its plan's 11 s have passed.
    let short = format!(
        "{}\ntimeouts: {{validate: 5s, train: 5s, gate: 1s}}\n",
        example_spec()
    );
    let first = p
        .trigger(TriggerKind::Code, "churn", &short, &data)
        .await
        .unwrap();
    let a = p.verdict(&first).await.unwrap();
    assert_eq!(a.verdict(), Verdict::Failed, "{}", a.reason);
    assert_eq!(
        a.reason,
        "timed out in stage gate: no verdict within the plan's timeout of 11s"
    );
    let started = a.stages.iter().map(|s| s.started_unix_ms).min().unwrap();
    let lived = Duration::from_millis((a.finished_unix_ms - started) as u64);
    assert!(
        lived >= Duration::from_secs(11) && lived < Duration::from_secs(14),
        "ended {lived:?} after its first stage started"
    );

    // A gate that hangs: each attempt times out after 1 s, then the run fails.
    tokio::spawn(run_stage(
        p.bus.clone(),
        Stage::Gate,
        Arc::new(Hang),
        p.stop_token(),
    ));
    let hangs = format!("{}\ntimeouts: {{gate: 1s}}\n", example_spec());
    let second = p
        .trigger(TriggerKind::Code, "churn", &hangs, &data)
        .await
        .unwrap();
    let b = p.verdict(&second).await.unwrap();
    assert_eq!(b.verdict(), Verdict::Failed, "{}", b.reason);
    assert_eq!(
        b.reason,
        "gate: gate gave up after 5 attempts: timed out in stage gate after 1s"
    );

    // The first run's gate message reached the hanging gate only after the run had
    // ended: it was stopped at the boundary, and the first verdict stands.
    let a_again = p
        .runs("churn")
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.run_id == a.run_id)
        .unwrap();
    assert_eq!(a_again.verdict(), Verdict::Failed);
    assert_eq!(a_again.reason, a.reason);
}
