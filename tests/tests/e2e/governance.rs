//! Governance against a real nats-server and registry: a pull request's `tollgate.yaml`
//! is a proposal that never becomes policy, and every registry mutation checks the applied
//! policy: who approves, the author's four eyes, the service role that owns a transition,
//! how many approvals Production needs and that they came after the latest gate.

use std::time::Duration;
use tollgate_pipeline::Stores;

use tollgate_e2e::{Pipeline, example_spec};
use tollgate_proto::{
    ApplySpecRequest, CiContext, GateDecision, GetVersionRequest, ListVersionsRequest, ModelStage,
    ModelVersion, OverrideRequest, RecordGateRequest, RollbackRequest, SetAliasRequest,
    TransitionStageRequest, Trigger, TriggerKind, Verdict,
};
use tollgate_service::tokens::Role;
use tonic::Code;

use super::registry::{approve, is_model_plan, wait_run};
use super::security::{refusal, tokens};

/// The example spec as a pull request by an attacker would rewrite it: their own
/// approver, no gates, a code plan that promotes and a schedule firing every second.
fn hostile_spec() -> String {
    let example = example_spec();
    let gates_start = example.find("gates:\n").unwrap();
    let gates_end = gates_start + example[gates_start..].find("\n\n").unwrap();
    let text = format!(
        "{}gates: {{}}{}\nschedule:\n  - {{cron: \"* * * * * *\", timezone: UTC}}\n",
        &example[..gates_start],
        &example[gates_end..]
    )
    .replace("approvers: [alice, bob]", "approvers: [mallory]")
    .replace(
        "  code: [validate, train, gate]\n",
        "  code: [validate, train, gate, promote]\n",
    );
    assert!(text.contains("approvers: [mallory]") && text.contains("gate, promote]\n"));
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_pull_request_runs_report_only_and_changes_no_policy() {
    let creds = tempfile::tempdir().unwrap();
    let file = creds.path().join("tokens.toml");
    let who = identities();
    let t = tokens(
        &file,
        &[
            who.as_slice(),
            &[("github", Role::Ci), ("vera", Role::Viewer)],
        ]
        .concat(),
    );
    let (ci, viewer) = (&t[who.len()], &t[who.len() + 1]);
    let mut p = Pipeline::start_secured(creds.path(), |h| {
        h.tokens_file = Some(file.clone());
        for (i, (name, _)) in who.iter().enumerate() {
            if ["trainer", "gate", "promoter", "data-validator"].contains(name) {
                h.service_tokens.insert(name.to_string(), t[i].clone());
            }
        }
    })
    .await
    .unwrap();
    p.token = viewer.clone();
    let before = p.bus.specs().current("churn").await.unwrap().unwrap();
    let data = p.dataset("churn.parquet", 3_000, 71, false).unwrap();
    let spec = creds.path().join("tollgate.yaml");
    std::fs::write(&spec, hostile_spec()).unwrap();
    let summary = creds.path().join("step-summary.md");

    // CI publishes the pull request's code trigger with its own credentials.
    let out = std::process::Command::new(super::processes::bin("tollgate"))
        .args(["publish", "code", "--spec"])
        .arg(&spec)
        .arg("--dataset")
        .arg(&data)
        .args(["--wait", "--timeout", "90"])
        // What GitHub Actions sets: the actor becomes the run's requester.
        .env("GITHUB_ACTOR", "mallory")
        .env("GITHUB_SHA", "5eed5eed")
        .env("GITHUB_REF", "refs/pull/12/merge")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "acme/churn")
        .env("GITHUB_RUN_ID", "7")
        .env_remove("TOLLGATE_USER")
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_NATS_CREDS", creds.path().join("ci.creds"))
        .env("TOLLGATE_DATA_DIR", creds.path())
        .env("TOLLGATE_TOKEN", ci)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");

    // The run was judged under the applied policy and lists what the spec proposed.
    let runs = p.runs("churn").await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    let changes = run.policy_changes.join("\n");
    for proposed in [
        "approvers [\"alice\", \"bob\"] → [\"mallory\"]: needs `tollgate apply`",
        "gates.auc_roc (min 0.8) is dropped: needs `tollgate apply`",
        "gates.f1 (min 0.7) is dropped: needs `tollgate apply`",
        "triggers.code [validate, train, gate] → [validate, train, gate, promote]: needs `tollgate apply`",
        "schedule ",
    ] {
        assert!(changes.contains(proposed), "{proposed} not in:\n{changes}");
    }
    assert_eq!(
        run.plan,
        [
            tollgate_proto::Stage::Validate as i32,
            tollgate_proto::Stage::Train as i32,
            tollgate_proto::Stage::Gate as i32
        ]
    );
    let gate = run.gate.as_ref().unwrap();
    assert!(
        gate.checks.iter().any(|c| c.name == "auc_roc"),
        "the applied gates graded it: {gate:?}"
    );
    // The CI summary and `runs show` say the same.
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("**Report-only**"), "{md}");
    assert!(md.contains("[\"mallory\"]: needs `tollgate apply`"), "{md}");
    let shown = std::process::Command::new(super::processes::bin("tollgate"))
        .args(["runs", "show", &run.run_id])
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_TOKEN", viewer)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("gates.f1 (min 0.7) is dropped: needs `tollgate apply`"),
        "{shown}"
    );
    assert!(shown.contains("requested by: mallory"), "{shown}");
    assert!(
        shown.contains("provenance: commit 5eed5eed · ref refs/pull/12/merge · PR #12 · actor mallory · CI run https://github.com/acme/churn/actions/runs/7"),
        "{shown}"
    );
    // And `--json` carries the same provenance for scripts.
    let json = std::process::Command::new(super::processes::bin("tollgate"))
        .args(["runs", "show", &run.run_id, "--json"])
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_TOKEN", viewer)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["commit"], "5eed5eed", "{json}");
    assert_eq!(json["ref"], "refs/pull/12/merge", "{json}");
    assert_eq!(json["pull_request"], 12, "{json}");
    assert_eq!(json["actor"], "mallory", "{json}");
    assert_eq!(
        json["ci_run_url"], "https://github.com/acme/churn/actions/runs/7",
        "{json}"
    );
    assert_eq!(json["requested_by"], "mallory", "{json}");

    // Nothing reached Staging, the policy is the one applied, and the per-second schedule
    // fired nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let versions = p
        .registry()
        .unwrap()
        .list_versions(ListVersionsRequest {
            model: "churn".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].stage(), ModelStage::None, "{:?}", versions[0]);
    let after = p.bus.specs().current("churn").await.unwrap().unwrap();
    assert_eq!(after.digest, before.digest);
    assert_eq!(after.spec.approvers, ["alice", "bob"]);
    assert_eq!(p.runs("churn").await.unwrap().len(), 1, "a schedule fired");

    // CI cannot apply it either: that is the registry's, for an admin.
    let out = std::process::Command::new(super::processes::bin("tollgate"))
        .arg("apply")
        .arg(&spec)
        .env("TOLLGATE_NATS_URL", &p.nats.url)
        .env("TOLLGATE_REGISTRY_URL", &p.registry_url)
        .env("TOLLGATE_NATS_CREDS", creds.path().join("ci.creds"))
        .env("TOLLGATE_TOKEN", ci)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("may not"), "{said}");
    assert_eq!(
        p.bus
            .specs()
            .current("churn")
            .await
            .unwrap()
            .unwrap()
            .digest,
        before.digest
    );
}

/// The policy of the mutation tests: alice and bob approve churn, carol approves fraud.
fn identities() -> Vec<(&'static str, Role)> {
    vec![
        ("alice", Role::Approver),
        ("bob", Role::Approver),
        ("carol", Role::Approver),
        ("dave", Role::Approver),
        ("root", Role::Admin),
        ("trainer", Role::Trainer),
        ("gate", Role::Gate),
        ("promoter", Role::Promoter),
        ("data-validator", Role::Viewer),
    ]
}

/// A version of churn as the registry holds it now.
async fn get(p: &Pipeline, token: &str, version: u32) -> ModelVersion {
    p.registry_with(token)
        .unwrap()
        .get_version(GetVersionRequest {
            model: "churn".into(),
            version,
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mutation_checks_the_applied_policy_and_the_callers_role() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("tokens.toml");
    let who = identities();
    let t = tokens(&file, &who);
    let token = |name: &str| t[who.iter().position(|(n, _)| *n == name).unwrap()].clone();
    let mut p = Pipeline::start_hosted(|h| {
        h.tokens_file = Some(file.clone());
        for service in ["trainer", "gate", "promoter", "data-validator"] {
            h.service_tokens.insert(service.into(), token(service));
        }
    })
    .await
    .unwrap();
    p.token = token("bob");
    let fraud = example_spec()
        .replace("model: churn", "model: fraud")
        .replace("approvers: [alice, bob]", "approvers: [carol]");
    p.apply(&fraud).await.unwrap();

    // Alice pushed the change that v1 comes from; its data plan puts v1 in Staging.
    let data = p.dataset("churn.parquet", 3_000, 81, false).unwrap();
    let trigger = Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        kind: TriggerKind::Data as i32,
        model: "churn".into(),
        spec_yaml: example_spec(),
        dataset_uri: tollgate_pipeline::dataset::file_uri(&data),
        code_commit: "e2e".into(),
        ci: Some(CiContext {
            actor: "alice".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    p.publish_trigger(&trigger, Some(&trigger.trigger_id))
        .await
        .unwrap();
    let run = p.verdict(&trigger.trigger_id).await.unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    wait_run(&p, "model plan of v1", |r| is_model_plan(r, 1)).await;
    assert_eq!(get(&p, &token("bob"), 1).await.stage(), ModelStage::Staging);

    let as_ = |name: &str| p.registry_with(&token(name)).unwrap();
    // An approver of another model approves, overrides, rolls back, aliases nothing here.
    let (code, message) = refusal(as_("carol").approve(approve(1, "")).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(
        message.contains("carol is not an approver of churn"),
        "{message}"
    );
    let reject = tollgate_proto::ApprovalRequest {
        approve: false,
        ..approve(1, "")
    };
    let (code, message) = refusal(as_("carol").approve(reject).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    let (code, message) = refusal(
        as_("carol")
            .r#override(OverrideRequest {
                model: "churn".into(),
                version: 1,
                reason: "mine now".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::PermissionDenied, "{message}");
    let (code, message) = refusal(
        as_("carol")
            .rollback(RollbackRequest {
                model: "churn".into(),
                reason: "mine now".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::PermissionDenied, "{message}");
    let (code, message) = refusal(
        as_("carol")
            .set_alias(SetAliasRequest {
                model: "churn".into(),
                alias: "champion".into(),
                version: 1,
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::PermissionDenied, "{message}");

    // The author may not approve (nor override) their own change.
    let (code, message) = refusal(as_("alice").approve(approve(1, "")).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("alice made the change"), "{message}");
    let (code, message) = refusal(
        as_("alice")
            .r#override(OverrideRequest {
                model: "churn".into(),
                version: 1,
                reason: "trust me".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(code, Code::PermissionDenied, "{message}");

    // A service role that does not own the transition: the gate moving stages, the
    // trainer recording gate decisions, the promoter approving.
    let to_production = TransitionStageRequest {
        model: "churn".into(),
        version: 1,
        to: ModelStage::Production as i32,
        reason: "ship it".into(),
        ..Default::default()
    };
    let (code, message) = refusal(as_("gate").transition_stage(to_production.clone()).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    let blessed = RecordGateRequest {
        model: "churn".into(),
        version: 1,
        decision: Some(GateDecision {
            blessed: true,
            summary: "blessed again".into(),
            model_version: 1,
            ..Default::default()
        }),
        ..Default::default()
    };
    let (code, message) = refusal(as_("trainer").record_gate(blessed.clone()).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    let (code, message) = refusal(as_("promoter").approve(approve(1, "")).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");

    // The promoter owns the move, and Production needs an approval of v1 first.
    let (code, message) = refusal(
        as_("promoter")
            .transition_stage(to_production.clone())
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(message.contains("0 of the 1 approvals"), "{message}");

    // Two approvals now, by an admin's apply (an approver may not apply).
    let two = example_spec().replace(
        "approvers: [alice, bob]",
        "approvers: [alice, bob, dave]\napprovals_required: 2",
    );
    let apply = |by: &str| ApplySpecRequest {
        spec_yaml: two.clone(),
        actor: by.into(),
        ..Default::default()
    };
    let (code, message) = refusal(as_("bob").apply_spec(apply("")).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    // A schedule more often than once a minute only when the admin says so (two slots
    // 30 s apart, on leap days only, so nothing fires during the test).
    let frequent = ApplySpecRequest {
        spec_yaml: format!("{two}\nschedule:\n  - {{cron: \"0,30 0 2 29 2 *\"}}\n"),
        ..Default::default()
    };
    let (code, message) = refusal(as_("root").apply_spec(frequent.clone()).await);
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert!(message.contains("--allow-frequent-schedule"), "{message}");
    let allowed = ApplySpecRequest {
        allow_frequent_schedule: true,
        ..frequent
    };
    as_("root").apply_spec(allowed).await.unwrap();
    let applied = as_("root")
        .apply_spec(apply(""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(applied.applied_by, "root");

    // Bob approves; then the gate grades v1 again, so bob's approval no longer counts.
    as_("bob").approve(approve(1, "")).await.unwrap();
    assert_eq!(get(&p, &token("bob"), 1).await.stage(), ModelStage::Staging);
    as_("gate").record_gate(blessed).await.unwrap();
    let (code, message) = refusal(
        as_("promoter")
            .transition_stage(to_production.clone())
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(message.contains("0 of the 2 approvals"), "{message}");

    // Bob and dave approve after the latest gate: the promoter moves v1 to Production.
    as_("bob").approve(approve(1, "")).await.unwrap();
    let (code, message) = refusal(
        as_("promoter")
            .transition_stage(to_production.clone())
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(message.contains("1 of the 2 approvals"), "{message}");
    let (code, message) = refusal(as_("bob").approve(approve(1, "")).await);
    assert_eq!(
        code,
        Code::AlreadyExists,
        "each approver counts once: {message}"
    );
    as_("dave").approve(approve(1, "")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let v1 = loop {
        let v1 = get(&p, &token("bob"), 1).await;
        if v1.stage() == ModelStage::Production || tokio::time::Instant::now() > deadline {
            break v1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(v1.stage(), ModelStage::Production, "{:?}", v1.audit);
    // The audit names each caller by its credential.
    for (action, actor) in [("approved", "bob"), ("approved", "dave")] {
        assert!(
            v1.audit
                .iter()
                .any(|a| a.action == action && a.actor == actor),
            "{:?}",
            v1.audit
        );
    }
    assert!(
        v1.audit.iter().any(|a| a.actor == "promoter"),
        "the promoter's own identity moved it: {:?}",
        v1.audit
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publisher_picks_neither_the_kind_a_version_nor_another_runs_id() {
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 2_000, 85, false).unwrap();
    let base = Trigger {
        kind: TriggerKind::Data as i32,
        model: "churn".into(),
        spec_yaml: example_spec(),
        dataset_uri: tollgate_pipeline::dataset::file_uri(&data),
        code_commit: "e2e".into(),
        ..Default::default()
    };
    let pipeline = &p;
    let publish = |trigger: Trigger| async move {
        let subject = tollgate_bus::subjects::trigger(TriggerKind::Code);
        pipeline
            .bus
            .publish(subject, &trigger, Some(&trigger.trigger_id))
            .await
            .unwrap();
        pipeline.verdict(&trigger.trigger_id).await.unwrap()
    };

    // The body says schedule, the subject code: a code run (whose plan does not promote).
    let first = publish(Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        kind: TriggerKind::Schedule as i32,
        ..base.clone()
    })
    .await;
    assert_eq!(first.verdict(), Verdict::Passed, "{}", first.reason);
    assert_eq!(first.trigger(), TriggerKind::Code);

    // A version named by a publisher is refused, and so is a run id already in use.
    let versioned = publish(Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        model_version: 1,
        ..base.clone()
    })
    .await;
    assert_eq!(versioned.verdict(), Verdict::Failed);
    assert!(
        versioned.reason.contains("may not name a model_version"),
        "{}",
        versioned.reason
    );
    let reused = publish(Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        run_id: first.run_id.clone(),
        ..base.clone()
    })
    .await;
    assert_eq!(reused.verdict(), Verdict::Failed);
    assert_ne!(reused.run_id, first.run_id);
    assert!(
        reused.reason.contains("is already another trigger's"),
        "{}",
        reused.reason
    );
    // The first run is untouched.
    let runs = p.runs("churn").await.unwrap();
    let kept = runs.iter().find(|r| r.run_id == first.run_id).unwrap();
    assert_eq!(kept.verdict(), Verdict::Passed);

    // Ids live in one namespace per origin: a publisher's id never pre-claims the same
    // id of a schedule slot, an arrival or a drift trigger.
    use tollgate_bus::subjects::Origin;
    use tollgate_pipeline::claims::Claim;
    let id: tollgate_proto::TriggerId = tollgate_bus::subjects::trigger_ids::arrival("churn", "x")
        .parse()
        .unwrap();
    let by_publisher = tollgate_proto::RunId::new();
    let claims = p.bus.trigger_claims();
    let mine = claims
        .claim(Origin::Publisher, &id, by_publisher.clone())
        .await
        .unwrap();
    assert!(matches!(&mine, Some(Claim::Start(r)) if *r == by_publisher));
    let by_system = tollgate_proto::RunId::new();
    let theirs = claims
        .claim(Origin::System, &id, by_system.clone())
        .await
        .unwrap();
    assert!(
        matches!(&theirs, Some(Claim::Start(r)) if *r == by_system),
        "{theirs:?}"
    );
}
