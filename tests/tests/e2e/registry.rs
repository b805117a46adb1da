//! Gate, registry and promotion: champion/challenger, approvals, rollback, races and the
//! model-change trigger, against a real nats-server.

use std::time::Duration;

use tollgate_bus::subjects;
use tollgate_e2e::{Pipeline, example_spec};
use tollgate_pipeline::dataset::file_uri;
use tollgate_proto::{
    ApprovalRequest, LatestByStageRequest, ListVersionsRequest, ModelStage, ModelVersion,
    OverrideRequest, RegisterVersionRequest, ResolveRequest, RunId, RunSummary, SetAliasRequest,
    Stage, TransitionStageRequest, TriggerKind, UpdateVersionRequest, Verdict,
};
use tonic::Code;

/// Waits for a finished run matching `pred`.
pub(crate) async fn wait_run(
    p: &Pipeline,
    what: &str,
    pred: impl Fn(&RunSummary) -> bool,
) -> RunSummary {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let runs = p.runs("churn").await.unwrap();
        if let Some(r) = runs
            .into_iter()
            .find(|r| r.verdict() != Verdict::Unspecified && pred(r))
        {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no finished run: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `model` has `version` in `stage`.
pub(crate) async fn wait_stage(p: &Pipeline, version: u32, stage: ModelStage) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = p
            .registry()
            .unwrap()
            .latest_by_stage(LatestByStageRequest {
                model: "churn".into(),
                stage: stage as i32,
            })
            .await;
        if got.is_ok_and(|v| v.into_inner().version == version) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "v{version} never reached {}",
            stage.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn version(p: &Pipeline, n: u32) -> ModelVersion {
    let uri = format!("models:/churn/{n}");
    p.registry()
        .unwrap()
        .resolve(ResolveRequest { uri })
        .await
        .unwrap()
        .into_inner()
}

pub(crate) fn approve(model_version: u32, approver: &str) -> ApprovalRequest {
    ApprovalRequest {
        model: "churn".into(),
        version: model_version,
        approver: approver.into(),
        reason: "looks good".into(),
        approve: true,
    }
}

/// Runs the real `tollgate` CLI against this pipeline.
fn cli(p: &Pipeline, args: &[&str]) -> std::process::Output {
    std::process::Command::new(super::processes::bin("tollgate"))
        .args(args)
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .output()
        .unwrap()
}

pub(crate) fn is_model_plan(r: &RunSummary, version: u32) -> bool {
    r.trigger() == TriggerKind::Model
        && r.model_version == version
        && r.plan == [Stage::Integration as i32, Stage::Approval as i32]
}

/// A pipeline whose first data run, on generated data (`seed`), passed and put v1 in
/// Staging; and that data.
async fn staged_v1(seed: u64) -> (Pipeline, std::path::PathBuf) {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, seed, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    (p, data)
}

#[tokio::test(flavor = "multi_thread")]
async fn staging_is_tested_then_approved_to_production_and_rolled_back() {
    let (p, data) = staged_v1(21).await;

    // Entering Staging published a model change; the model plan tested v1 and asked for approval.
    let model_run = wait_run(&p, "model plan of v1", |r| is_model_plan(r, 1)).await;
    assert_eq!(model_run.verdict(), Verdict::Passed, "{}", model_run.reason);
    assert!(
        model_run.stages[0]
            .message
            .contains("golden records reproduced"),
        "{}",
        model_run.stages[0].message
    );
    assert!(
        model_run.stages[1]
            .message
            .contains("requested from alice, bob"),
        "{}",
        model_run.stages[1].message
    );

    let mut registry = p.registry().unwrap();
    let direct = TransitionStageRequest {
        model: "churn".into(),
        version: 1,
        to: ModelStage::Production as i32,
        actor: "someone".into(),
        ..Default::default()
    };
    let refused = registry.transition_stage(direct.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("churn v1 has 0 of the 1 approvals it needs for Production"),
        "{}",
        refused.message()
    );
    let stranger = registry.approve(approve(1, "mallory")).await.unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied, "{stranger:?}");
    let no_reason = ApprovalRequest {
        reason: String::new(),
        ..approve(1, "alice")
    };
    assert_eq!(
        registry.approve(no_reason).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    registry.approve(approve(1, "alice")).await.unwrap();
    wait_stage(&p, 1, ModelStage::Production).await;
    let again = registry.approve(approve(1, "bob")).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);

    // A second version on the same data: the gate compares it with Production v1.
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let drop = run
        .gate
        .unwrap()
        .checks
        .into_iter()
        .find(|c| c.name == "auc_roc_drop_vs_production")
        .unwrap();
    assert_eq!(drop.verdict(), tollgate_proto::CheckVerdict::Pass);
    assert!(drop.note.contains("champion v1"), "{}", drop.note);
    wait_run(&p, "model plan of v2", |r| is_model_plan(r, 2)).await;
    // The CLI this time: `tollgate approve` by an approver, by URI, and `tollgate rollback`.
    let out = cli(
        &p,
        &[
            "approve",
            "models:/churn/Staging",
            "--reason",
            "better recall",
            "--as",
            "bob",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_stage(&p, 2, ModelStage::Production).await;
    // The promotion archives the previous holder right after it moves v2, in the same
    // call; a lookup can fall between the two writes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while version(&p, 1).await.stage() != ModelStage::Archived {
        assert!(
            tokio::time::Instant::now() < deadline,
            "v1 was not archived when v2 reached Production"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let out = cli(
        &p,
        &[
            "rollback",
            "churn",
            "--reason",
            "v2 misbehaves",
            "--as",
            "alice",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("churn v1 is back in Production"));
    assert_eq!(version(&p, 1).await.stage(), ModelStage::Production);
    assert_eq!(version(&p, 2).await.stage(), ModelStage::Archived);
    let audit = version(&p, 1).await.audit;
    let approved = audit.iter().find(|a| a.action == "approved").unwrap();
    assert_eq!(
        (approved.from, approved.to),
        (None, None),
        "an approval records no stage change"
    );
    let promoted = audit
        .iter()
        .find(|a| a.action == "transition" && a.to() == ModelStage::Production)
        .unwrap();
    assert_eq!(promoted.from(), ModelStage::Staging);
    let trail: Vec<(String, String)> = audit.into_iter().map(|a| (a.action, a.actor)).collect();
    for expected in [
        ("registered", "trainer"),
        ("approved", "alice"),
        ("transition", "promoter"),
        ("rollback", "alice"),
    ] {
        assert!(
            trail.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {trail:?}"
        );
    }

    // `tollgate models show` prints versions, stages, the last gate decision and the trail.
    let out = cli(&p, &["models", "show", "churn"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for needle in [
        "Production",
        "Archived",
        "last gate decision, v2",
        "auc_roc_drop_vs_production",
        "rollback",
        "approved",
        "v2 misbehaves",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worse_challenger_is_blocked_and_only_an_approver_can_override() {
    let (p, data) = staged_v1(22).await;
    wait_run(&p, "model plan of v1", |r| is_model_plan(r, 1)).await;
    p.registry()
        .unwrap()
        .approve(approve(1, "alice"))
        .await
        .unwrap();
    wait_stage(&p, 1, ModelStage::Production).await;

    // A challenger that sees only age: it passes the lowered absolute gates, but not the
    // comparison with the champion on the same test rows.
    let weak = example_spec()
        .replace(
            "numeric: [age, tenure_months, monthly_charges, total_charges, support_calls]",
            "numeric: [age]",
        )
        .replace("categorical: [contract, payment_method]", "categorical: []")
        .replace("auc_roc: {min: 0.80}", "auc_roc: {min: 0.30}")
        .replace("f1: {min: 0.70}", "f1: {min: 0.0}");
    let run = p.run_file(TriggerKind::Data, &weak, &data).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Blocked, "{}", run.reason);
    assert!(
        run.reason.contains("auc_roc_drop_vs_production"),
        "{}",
        run.reason
    );
    let v2 = version(&p, 2).await;
    assert_eq!(v2.stage(), ModelStage::None);
    assert!(!v2.last_gate.unwrap().blessed);

    let mut registry = p.registry().unwrap();
    let by = |who: &str| OverrideRequest {
        model: "churn".into(),
        version: 2,
        approver: who.into(),
        reason: "known trade-off".into(),
    };
    assert_eq!(
        registry.r#override(by("mallory")).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        registry
            .r#override(OverrideRequest {
                version: 1,
                ..by("alice")
            })
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    registry.r#override(by("alice")).await.unwrap();
    wait_stage(&p, 2, ModelStage::Staging).await;
    let v2 = version(&p, 2).await;
    assert!(
        v2.audit
            .iter()
            .any(|a| a.action == "override" && a.actor == "alice" && a.reason == "known trade-off")
    );
    assert_eq!(
        version(&p, 1).await.stage(),
        ModelStage::Production,
        "an override reaches Staging, not Production"
    );

    // The overridden version is tested in Staging and an approver rejects it.
    wait_run(&p, "model plan of v2", |r| is_model_plan(r, 2)).await;
    let out = cli(
        &p,
        &[
            "reject",
            "churn",
            "2",
            "--reason",
            "too weak after all",
            "--as",
            "bob",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(
        &p,
        &[
            "approve",
            "churn",
            "2",
            "--reason",
            "changed my mind",
            "--as",
            "alice",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already rejected by bob"));
    let v2 = version(&p, 2).await;
    assert_eq!(v2.stage(), ModelStage::Staging);
    assert!(
        v2.audit
            .iter()
            .any(|a| a.action == "rejected" && a.actor == "bob")
    );

    // The Production artifact downloads with its digest checked.
    let file = p.dir.path().join("v1.tgm");
    let out = cli(
        &p,
        &[
            "models",
            "download",
            "models:/churn/Production",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        tollgate_ml::artifact::digest(&bytes),
        version(&p, 1).await.artifact_digest
    );
    assert!(tollgate_ml::artifact::Artifact::decode(&bytes).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_promotions_have_one_winner_and_metadata_resolves() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, 23, false).unwrap();
    let mut changes = p
        .bus
        .client()
        .subscribe(subjects::trigger(TriggerKind::Model))
        .await
        .unwrap();
    p.bus.client().flush().await.unwrap();
    for _ in 0..2 {
        let run = p
            .run_file(TriggerKind::Code, &example_spec(), &data)
            .await
            .unwrap();
        assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    }
    let race = |n: u32| {
        let mut registry = p.registry().unwrap();
        async move {
            registry
                .transition_stage(TransitionStageRequest {
                    model: "churn".into(),
                    version: n,
                    to: ModelStage::Staging as i32,
                    actor: format!("racer-{n}"),
                    check_current: true,
                    expected_current: 0,
                    ..Default::default()
                })
                .await
        }
    };
    let (a, b) = tokio::join!(race(1), race(2));
    let winners: Vec<u32> = [(1, &a), (2, &b)]
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one wins: {a:?} {b:?}");
    let loser = match (a, b) {
        (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
        other => panic!("exactly one must win: {other:?}"),
    };
    assert_eq!(loser.code(), Code::FailedPrecondition, "{loser:?}");
    let staged = winners[0];

    let mut registry = p.registry().unwrap();
    registry
        .update_version(UpdateVersionRequest {
            model: "churn".into(),
            version: 1,
            add_tags: vec!["baseline".into()],
            set_description: true,
            description: "first cut".into(),
            actor: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let alias = |n: u32| SetAliasRequest {
        model: "churn".into(),
        alias: "champion".into(),
        version: n,
        actor: "alice".into(),
    };
    registry.set_alias(alias(1)).await.unwrap();
    registry.set_alias(alias(2)).await.unwrap();
    assert!(
        version(&p, 1).await.aliases.is_empty(),
        "the alias moved off v1"
    );
    let resolve = |uri: &str| {
        let mut registry = p.registry().unwrap();
        let uri = uri.to_string();
        async move { registry.resolve(ResolveRequest { uri }).await }
    };
    assert_eq!(
        resolve("models:/churn@champion")
            .await
            .unwrap()
            .into_inner()
            .version,
        2
    );
    assert_eq!(
        resolve("models:/churn/Staging")
            .await
            .unwrap()
            .into_inner()
            .version,
        staged
    );
    let v1 = resolve("models:/churn/1").await.unwrap().into_inner();
    assert_eq!(
        (v1.description.as_str(), v1.tags.as_slice()),
        ("first cut", &["baseline".to_string()][..])
    );
    assert_eq!(
        resolve("models:/churn/9").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        resolve("models:/churn/Nope").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        resolve("churn").await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let tagged = registry
        .list_versions(ListVersionsRequest {
            model: "churn".into(),
            tag: "baseline".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(tagged.iter().map(|v| v.version).collect::<Vec<_>>(), [1]);
    let in_staging = registry
        .list_versions(ListVersionsRequest {
            model: "churn".into(),
            stage: ModelStage::Staging as i32,
            filter_stage: true,
            tag: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(
        in_staging.iter().map(|v| v.version).collect::<Vec<_>>(),
        [staged]
    );

    // Every change above was announced on tollgate.trigger.model.
    let mut seen = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(
        Duration::from_millis(500),
        futures::StreamExt::next(&mut changes),
    )
    .await
    {
        let t: tollgate_proto::Trigger = prost::Message::decode(m.payload.as_ref()).unwrap();
        assert_eq!((t.kind(), t.model.as_str()), (TriggerKind::Model, "churn"));
        seen.push((t.model_version, t.change().to_string()));
    }
    for expected in [
        (1, "registered"),
        (2, "registered"),
        (1, "gate blessed"),
        (staged, "staged"),
        (1, "update"),
        (1, "alias"),
        (2, "alias"),
    ] {
        assert!(
            seen.contains(&(expected.0, expected.1.to_string())),
            "{expected:?} not announced: {seen:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn drifted_data_is_scored_against_production_and_starts_the_drift_plan() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, 24, false).unwrap();
    let first = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert!(
        first
            .validation
            .unwrap()
            .drift_note
            .contains("no Production version")
    );
    wait_run(&p, "model plan of v1", |r| is_model_plan(r, 1)).await;
    p.registry()
        .unwrap()
        .approve(approve(1, "alice"))
        .await
        .unwrap();
    wait_stage(&p, 1, ModelStage::Production).await;

    // Same generator, other seed: no drift.
    let same = p.dataset("same.parquet", 3_000, 25, false).unwrap();
    let report = p
        .run_file(TriggerKind::Code, &example_spec(), &same)
        .await
        .unwrap()
        .validation
        .unwrap();
    assert!(!report.drifted, "{}", report.drift_note);
    assert!(
        report.drift_note.starts_with("no drift"),
        "{}",
        report.drift_note
    );
    assert_eq!(report.drift.len(), 7, "every feature column is scored");

    // Older, longer-standing customers paying more: 4 of the 7 columns move.
    let csv = p.dataset("base.csv", 3_000, 26, false).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let mut shifted = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let mut c: Vec<String> = line.split(',').map(str::to_string).collect();
        c[1] = (c[1].parse::<i64>().unwrap() + 25).to_string();
        c[2] = (c[2].parse::<i64>().unwrap() + 30).to_string();
        c[3] = format!("{:.2}", c[3].parse::<f64>().unwrap() * 1.6);
        c[4] = format!("{:.2}", c[4].parse::<f64>().unwrap() * 2.5);
        shifted += &c.join(",");
        shifted.push('\n');
    }
    let path = p.dir.path().join("shifted.csv");
    std::fs::write(&path, shifted).unwrap();
    let shifted_uri = file_uri(&path);
    let run = p
        .run_file(TriggerKind::Code, &example_spec(), &path)
        .await
        .unwrap();
    let report = run.validation.unwrap();
    assert!(report.success, "the data is valid, just different");
    assert!(report.drifted, "{}", report.drift_note);
    let age = report.drift.iter().find(|d| d.column == "age").unwrap();
    assert!(
        age.drifted && age.wasserstein.unwrap() > 0.1 && age.ks.unwrap() > 0.1 && age.psi > 0.2,
        "{age:?}"
    );
    let contract = report
        .drift
        .iter()
        .find(|d| d.column == "contract")
        .unwrap();
    assert!(
        !contract.drifted && contract.jensen_shannon.unwrap() < 0.1,
        "{contract:?}"
    );
    assert!(
        report
            .drift_note
            .contains("published tollgate.trigger.drift"),
        "{}",
        report.drift_note
    );

    // The spec's drift plan retrains on that data, once: its own drift starts nothing.
    let retrain = wait_run(&p, "drift plan", |r| r.trigger() == TriggerKind::Drift).await;
    assert_eq!(retrain.dataset_uri, shifted_uri);
    assert_eq!(
        retrain.plan,
        [Stage::Validate, Stage::Train, Stage::Gate, Stage::Promote].map(|s| s as i32)
    );
    assert!(
        retrain
            .validation
            .unwrap()
            .drift_note
            .contains("started by drift, so no new trigger")
    );

    // A spec with no drift plan: the run says nothing was retrained, and nothing is.
    let no_plan = example_spec().replace("  drift: [validate, train, gate, promote]\n", "");
    assert_ne!(no_plan, example_spec());
    // Plans are policy: an admin applies the change.
    p.apply(&no_plan).await.unwrap();
    let run = p
        .run_file(TriggerKind::Code, &no_plan, &path)
        .await
        .unwrap();
    let note = run.validation.unwrap().drift_note;
    assert!(
        note.contains("drift detected")
            && note.contains("the spec has no drift plan, so nothing was retrained"),
        "{note}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let runs = p.runs("churn").await.unwrap();
    assert_eq!(
        runs.iter()
            .filter(|r| r.trigger() == TriggerKind::Drift)
            .count(),
        1
    );
}

/// A run registered twice at once (a redelivered run trained by two trainers) gets one
/// version, and every registration answers with it: none sees the run's claim before
/// the version's record and reports the version missing.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_registrations_of_one_run_all_answer_with_its_one_version() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3_000, 29, false).unwrap();
    let run = p
        .run_file(TriggerKind::Code, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let v1 = version(&p, 1).await;
    let request = RegisterVersionRequest {
        model: "churn".into(),
        run_id: RunId::new().to_string(),
        artifact_name: v1.artifact_name.clone(),
        artifact_digest: v1.artifact_digest.clone(),
        artifact_size: v1.artifact_size,
        ..Default::default()
    };
    let mut last = request.clone();
    for round in 0..3 {
        last = RegisterVersionRequest {
            run_id: RunId::new().to_string(),
            ..request.clone()
        };
        let answers = futures::future::join_all((0..8).map(|_| {
            let (mut registry, request) = (p.registry().unwrap(), last.clone());
            async move { registry.register_version(request).await }
        }))
        .await;
        let numbers: Vec<u32> = answers
            .into_iter()
            .map(|a| a.map(|v| v.into_inner().version))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("round {round}: a registration failed: {e:?}"));
        assert!(
            numbers.iter().all(|n| *n == numbers[0]),
            "round {round}: one version for the run: {numbers:?}"
        );
        assert_eq!(numbers[0], 2 + round, "one new version per run");
    }
    // The last run again, later: its version, and no new one.
    let mut registry = p.registry().unwrap();
    let again = registry.register_version(last).await.unwrap().into_inner();
    assert_eq!(again.version, 4);
}
