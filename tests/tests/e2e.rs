//! End-to-end tests: each starts its own nats-server and the six services, publishes
//! triggers and asserts what the run and the registry hold afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tollgate_pipeline::{Stores, dataset::file_uri};

use futures::StreamExt;
use tollgate_bus::subjects;
use tollgate_e2e::{Pipeline, example_spec};
use tollgate_proto::{
    GetVersionRequest, ListVersionsRequest, ModelStage, Run, RunEventKind, Stage, StageStatus,
    Trigger, TriggerKind, Verdict,
};

#[path = "e2e/alerts.rs"]
mod alerts;
#[path = "e2e/browser.rs"]
mod browser;
#[path = "e2e/concurrency.rs"]
mod concurrency;
#[path = "e2e/console.rs"]
mod console;
#[path = "e2e/corpus.rs"]
mod corpus;
#[path = "e2e/dashboard.rs"]
mod dashboard;
#[path = "e2e/deploy.rs"]
mod deploy;
#[path = "e2e/dev.rs"]
mod dev;
#[path = "e2e/docs.rs"]
mod docs;
#[path = "e2e/failures.rs"]
mod failures;
#[path = "e2e/governance.rs"]
mod governance;
#[path = "e2e/kills.rs"]
mod kills;
#[path = "e2e/labels.rs"]
mod labels;
#[path = "e2e/layout.rs"]
mod layout;
#[path = "e2e/load.rs"]
mod load;
#[path = "e2e/otlp.rs"]
mod otlp;
#[path = "e2e/poison.rs"]
mod poison;
#[path = "e2e/processes.rs"]
mod processes;
#[path = "e2e/props.rs"]
mod props;
#[path = "e2e/registry.rs"]
mod registry;
#[path = "e2e/rollout.rs"]
mod rollout;
#[path = "e2e/scale.rs"]
mod scale;
#[path = "e2e/schedules.rs"]
mod schedules;
#[path = "e2e/security.rs"]
mod security;
#[path = "e2e/serving.rs"]
mod serving;
#[path = "e2e/shadow.rs"]
mod shadow;
#[path = "e2e/shutdown.rs"]
mod shutdown;
#[path = "e2e/sources.rs"]
mod sources;
#[path = "e2e/templates.rs"]
mod templates;
#[path = "e2e/timeouts.rs"]
mod timeouts;
#[path = "e2e/triton.rs"]
mod triton;
#[path = "e2e/usercode.rs"]
mod usercode;

/// A consumer of the dead letters of `stage`'s consumer.
async fn dead_letters(p: &Pipeline, stage: Stage) -> async_nats::jetstream::consumer::PullConsumer {
    p.bus
        .jetstream()
        .get_stream(subjects::DEADLETTER_STREAM)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: subjects::deadletter(&subjects::stage_consumer(stage)),
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn versions(p: &Pipeline, model: &str) -> Vec<tollgate_proto::ModelVersion> {
    p.registry()
        .unwrap()
        .list_versions(ListVersionsRequest {
            model: model.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .versions
}

/// The artifact bytes of a version, as the registry serves them.
async fn artifact_bytes(p: &Pipeline, model: &str, version: u32) -> Vec<u8> {
    p.registry()
        .unwrap()
        .get_artifact(GetVersionRequest {
            model: model.into(),
            version,
        })
        .await
        .unwrap()
        .into_inner()
        .data
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_change_reaches_staging_and_the_next_one_archives_it() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 4_000, 1, false).unwrap();
    // Push into the object store, as `tollgate data push` does.
    let uri = p
        .bus
        .datasets()
        .push(&data, "churn-1.parquet")
        .await
        .unwrap();
    let t = p
        .trigger(TriggerKind::Data, "churn", &example_spec(), &uri)
        .await
        .unwrap();
    let run = p.verdict(&t).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let stages: Vec<_> = run
        .stages
        .iter()
        .map(|s| (s.stage().name(), s.status()))
        .collect();
    assert_eq!(
        stages,
        [
            ("validate", StageStatus::Passed),
            ("train", StageStatus::Passed),
            ("gate", StageStatus::Passed),
            ("promote", StageStatus::Passed)
        ]
    );
    let v = versions(&p, "churn").await;
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].stage(), ModelStage::Staging);
    assert!(v[0].metrics["auc_roc"] >= 0.80, "{:?}", v[0].metrics);
    assert!(v[0].metrics["f1"] >= 0.70, "{:?}", v[0].metrics);
    assert_eq!(v[0].run_id, run.run_id);
    // The training rows' profile is stored with the version as the drift reference.
    let profile: serde_json::Value = serde_json::from_str(&v[0].reference_profile_json).unwrap();
    let age = profile["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "age")
        .unwrap();
    assert!(
        age["numeric"]["min"].as_f64().unwrap() >= 18.0
            && age["numeric"]["max"].as_f64().unwrap() <= 85.0
    );
    assert_eq!(
        profile["rows"].as_u64().unwrap()
            + v[0].metrics["tp"] as u64
            + v[0].metrics["fp"] as u64
            + v[0].metrics["tn"] as u64
            + v[0].metrics["fn"] as u64,
        4_000
    );
    let gate = run.gate.unwrap();
    assert!(gate.blessed);
    assert!(gate.checks.iter().any(|c| c.name == "latency_p99_ms"));

    let other = p.dataset("churn2.csv", 3_000, 2, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &other)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let v = versions(&p, "churn").await;
    assert_eq!(
        v.iter().map(|v| (v.version, v.stage())).collect::<Vec<_>>(),
        [(1, ModelStage::Archived), (2, ModelStage::Staging)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn candidates_are_compared_and_the_chosen_algorithm_is_recorded_with_the_version() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, 21, false).unwrap();
    let spec = std::fs::read_to_string(
        tollgate_e2e::workspace_root().join("examples/churn/candidates.yaml"),
    )
    .unwrap();
    p.apply(&spec).await.unwrap();
    let run = p.run_file(TriggerKind::Data, &spec, &data).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let train = run
        .stages
        .iter()
        .find(|s| s.stage() == Stage::Train)
        .unwrap();
    assert!(
        train.message.contains("chosen by validation auc_roc")
            && train.message.contains("random_forest(trees=30")
            && train.message.contains("gaussian_naive_bayes"),
        "{}",
        train.message
    );
    // The trainer reported each candidate as it finished.
    let mut progress = p
        .bus
        .jetstream()
        .get_stream(subjects::RUNS_STREAM)
        .await
        .unwrap()
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: subjects::run_event(
                &run.run_id.parse().unwrap(),
                RunEventKind::Progress,
            ),
            ..Default::default()
        })
        .await
        .unwrap()
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    let mut lines = Vec::new();
    while let Some(Ok(m)) = progress.next().await {
        let event: tollgate_proto::RunEvent =
            tollgate_bus::codec::decode("run event", &m.payload).unwrap();
        lines.push(event.message);
    }
    for k in 1..=5 {
        let prefix = format!("candidate {k}/5: ");
        assert!(lines.iter().any(|l| l.starts_with(&prefix)), "{lines:?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("fitting ")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == "random forest: 30/30 trees"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("gradient boosting: ") && l.contains("/100 trees")),
        "{lines:?}"
    );
    let v = versions(&p, "churn").await;
    assert_eq!(v[0].stage(), ModelStage::Staging);
    assert!(v[0].training_seconds > 0.0);
    let artifact = artifact_bytes(&p, "churn", v[0].version).await;
    let artifact =
        tollgate_ml::artifact::Artifact::decode_verified(&artifact, &v[0].artifact_digest).unwrap();
    assert_eq!(artifact.meta.algorithm, v[0].algorithm);
    assert_eq!(artifact.meta.training_seconds, v[0].training_seconds);
    let selection = artifact.meta.selection.unwrap();
    assert_eq!(selection.scores.len(), 5);
    // The version holds the candidate with the best validation AUC-ROC.
    let best = selection
        .scores
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(best.0, v[0].algorithm);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dirty_dataset_fails_at_validation_and_registers_nothing() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("dirty.parquet", 4_000, 3, true).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Failed);
    assert_eq!(run.stages.len(), 1);
    assert_eq!(run.stages[0].status(), StageStatus::Failed);
    assert!(
        run.reason
            .contains("expect_column_values_to_not_be_null(customer_id)"),
        "{}",
        run.reason
    );
    assert!(
        run.reason
            .contains("expect_column_values_to_be_between(age)"),
        "{}",
        run.reason
    );
    let report = run.validation.unwrap();
    let nulls = report
        .results
        .iter()
        .find(|r| r.expectation_type == "expect_column_values_to_not_be_null")
        .unwrap();
    assert!(nulls.unexpected_count > 0 && !nulls.success);
    assert!(versions(&p, "churn").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strict_gate_blocks_and_the_version_stays_out_of_staging() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, 4, false).unwrap();
    let strict = example_spec().replace("auc_roc: {min: 0.80}", "auc_roc: {min: 0.999}");
    let run = p.run_file(TriggerKind::Data, &strict, &data).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Blocked, "{}", run.reason);
    assert!(run.reason.contains("auc_roc"), "{}", run.reason);
    assert_eq!(run.stages.last().unwrap().stage(), Stage::Gate);
    let v = versions(&p, "churn").await;
    assert_eq!(v.len(), 1, "the trained version is registered");
    assert_eq!(v[0].stage(), ModelStage::None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_trigger_delivered_twice_registers_one_version() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, 5, false).unwrap();
    let trigger = Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        kind: TriggerKind::Code as i32,
        model: "churn".into(),
        spec_yaml: example_spec(),
        dataset_uri: file_uri(&data),
        ..Default::default()
    };
    // No Nats-Msg-Id: JetStream keeps both copies; the trigger-watcher must dedupe.
    p.publish_trigger(&trigger, None).await.unwrap();
    p.publish_trigger(&trigger, None).await.unwrap();
    let run = p.verdict(&trigger.trigger_id).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    // A stage message redelivered (published twice) must not register a second version.
    let mut train = Run {
        run_id: ulid::Ulid::new().to_string(),
        trigger_id: "manual-redelivery".into(),
        model: "churn".into(),
        spec_yaml: example_spec(),
        dataset_uri: file_uri(&data),
        plan: vec![Stage::Train as i32],
        ..Default::default()
    };
    train.trigger = TriggerKind::Manual as i32;
    p.bus
        .publish(subjects::stage(Stage::Train), &train, None)
        .await
        .unwrap();
    p.bus
        .publish(subjects::stage(Stage::Train), &train, None)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = versions(&p, "churn").await;
        if v.len() >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "second run never registered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the duplicate stage message be processed too, then count.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let runs: Vec<_> = versions(&p, "churn")
        .await
        .into_iter()
        .map(|v| v.run_id)
        .collect();
    assert_eq!(runs.len(), 2, "one version per run: {runs:?}");
    assert_eq!(runs.iter().filter(|r| **r == run.run_id).count(), 1);
    assert_eq!(runs.iter().filter(|r| **r == train.run_id).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_ends_runs_failed_with_a_clear_reason() {
    let p = Pipeline::start().await.unwrap();
    let good = p.dataset("churn.parquet", 3_000, 6, false).unwrap();

    let unknown = p
        .trigger(TriggerKind::Data, "nope", "", &file_uri(&good))
        .await
        .unwrap();
    let run = p.verdict(&unknown).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.reason.contains("unknown model \"nope\""),
        "{}",
        run.reason
    );

    let missing = p
        .trigger(
            TriggerKind::Data,
            "churn",
            &example_spec(),
            "file:///no/such/file.parquet",
        )
        .await
        .unwrap();
    let run = p.verdict(&missing).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.reason.contains("/no/such/file.parquet does not exist"),
        "{}",
        run.reason
    );

    let corrupt = p.dir.path().join("corrupt.parquet");
    std::fs::write(&corrupt, b"PAR1 definitely not parquet").unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &corrupt)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(run.reason.contains("unreadable"), "{}", run.reason);

    let lacking = example_spec().replace(
        "kwargs: {column: age, min_value: 0, max_value: 120}",
        "kwargs: {column: height, min_value: 0, max_value: 120}",
    );
    let run = p
        .run_file(TriggerKind::Data, &lacking, &good)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.reason
            .contains("column \"height\" is not in the dataset"),
        "{}",
        run.reason
    );

    // A malformed message on a stage subject is dead-lettered with the reason ...
    let dlq = dead_letters(&p, Stage::Validate).await;
    p.bus
        .publish_raw(
            subjects::stage(Stage::Validate),
            Default::default(),
            vec![0xff, 0x01, 0x02].into(),
        )
        .await
        .unwrap();
    let mut letters = dlq.messages().await.unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(30), letters.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reason = letter
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::HEADER_REASON))
        .map(|v| v.to_string())
        .unwrap();
    assert!(reason.contains("malformed Run"), "{reason}");
    assert_eq!(letter.payload.as_ref(), &[0xff, 0x01, 0x02]);

    // ... and the services go on serving.
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &good)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let v = versions(&p, "churn").await;
    let artifact = artifact_bytes(&p, "churn", v[0].version).await;
    assert_eq!(
        tollgate_ml::artifact::digest(&artifact),
        v[0].artifact_digest
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_run_is_one_trace_across_every_service() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, 8, false).unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut events = p.bus.client().subscribe(subjects::RUN_ALL).await.unwrap();
    let mut work = p.bus.client().subscribe(subjects::STAGE_ALL).await.unwrap();
    p.bus.client().flush().await.unwrap();
    let trigger = Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        kind: TriggerKind::Data as i32,
        model: "churn".into(),
        spec_yaml: example_spec(),
        dataset_uri: file_uri(&data),
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01").as_str(),
    );
    p.bus
        .publish_raw(
            subjects::trigger(TriggerKind::Data),
            headers,
            prost::Message::encode_to_vec(&trigger).into(),
        )
        .await
        .unwrap();
    let run = p.verdict(&trigger.trigger_id).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let trace_of = |m: &async_nats::Message| {
        m.headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().split('-').nth(1).unwrap_or_default().to_string())
    };
    // Every stage hand-off (validate, train, gate, promote) and every run event carries it.
    let mut stages_seen = 0;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), work.next()).await {
        // The Staging version's own model-change run is another run, with its own trace.
        let staged: Run = prost::Message::decode(m.payload.as_ref()).unwrap();
        if staged.run_id != run.run_id {
            continue;
        }
        assert_eq!(
            trace_of(&m).as_deref(),
            Some(trace_id),
            "stage message on {}",
            m.subject
        );
        stages_seen += 1;
    }
    assert_eq!(stages_seen, 4);
    let mut events_seen = 0;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), events.next()).await {
        if m.subject.as_str().contains(&run.run_id) {
            assert_eq!(
                trace_of(&m).as_deref(),
                Some(trace_id),
                "run event on {}",
                m.subject
            );
            events_seen += 1;
        }
    }
    assert!(
        events_seen >= 10,
        "created, started/finished per stage, completed: saw {events_seen}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stage_that_keeps_failing_is_retried_then_dead_lettered_and_the_run_fails() {
    // The trainer's registry is unreachable: a failure that may pass, so it is retried.
    let p = Pipeline::start_with(Some(tollgate_e2e::UNREACHABLE.into()))
        .await
        .unwrap();
    let data = p.dataset("churn.parquet", 2_000, 31, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.reason.contains("train gave up after 5 attempts"),
        "{}",
        run.reason
    );
    assert!(run.reason.contains("registry"), "{}", run.reason);
    let dlq = dead_letters(&p, Stage::Train).await;
    let mut letters = dlq.messages().await.unwrap();
    let letter = tokio::time::timeout(Duration::from_secs(10), letters.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let headers = letter.headers.clone().unwrap();
    assert_eq!(
        headers.get(subjects::HEADER_DELIVERIES).unwrap().as_str(),
        "5"
    );
    assert!(
        headers
            .get(subjects::HEADER_REASON)
            .unwrap()
            .as_str()
            .contains("gave up after 5 attempts")
    );
    let dead_run: Run = prost::Message::decode(letter.payload.as_ref()).unwrap();
    assert_eq!(
        dead_run.run_id, run.run_id,
        "the message itself is kept, not dropped"
    );
    assert!(versions(&p, "churn").await.is_empty());
}
#[path = "e2e/webhooks.rs"]
mod webhooks;
