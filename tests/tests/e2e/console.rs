//! The console in headless Chromium against a registry that checks tokens: the run page
//! of a passed run (its trigger's commit, ref, pull request and actor, its trace, its
//! gate checks) and of a failed validation (failing expectations first, every failing row
//! to download); the approvals page, where a viewer sees no buttons and the registry
//! refuses the viewer's decision anyway, and an approver's click moves the version to
//! Production under the approver's identity; and the model page. Screenshots go to
//! `target/console-*.png`.

use std::time::Duration;

use serde_json::json;
use tollgate_e2e::{Pipeline, example_spec, free_port, workspace_root};
use tollgate_pipeline::{Stores, dataset::file_uri};
use tollgate_proto::{
    CiContext, GetVersionRequest, ModelStage, RunId, Trigger, TriggerKind, Verdict,
};
use tollgate_service::tokens::Role;

use super::browser::Browser;
use super::registry::{is_model_plan, wait_run, wait_stage};
use super::security::tokens;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_runs_and_models_and_only_an_approver_approves_from_it() {
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("tokens.toml");
    let who = [
        ("bob", Role::Approver),
        ("vera", Role::Viewer),
        ("trainer", Role::Trainer),
        ("gate", Role::Gate),
        ("promoter", Role::Promoter),
        ("data-validator", Role::Viewer),
    ];
    let t = tokens(&file, &who);
    let token = |name: &str| t[who.iter().position(|(n, _)| *n == name).unwrap()].clone();
    let console = format!("127.0.0.1:{}", free_port().unwrap());
    let mut p = Pipeline::start_hosted(|h| {
        h.tokens_file = Some(file.clone());
        h.dashboard_addr = console.clone();
        for service in ["trainer", "gate", "promoter", "data-validator"] {
            h.service_tokens.insert(service.into(), token(service));
        }
    })
    .await
    .unwrap();
    p.token = token("bob");

    // A pull request's change, by alice: it passes and v1 waits in Staging for approval.
    let data = p.dataset("churn.parquet", 3_000, 91, false).unwrap();
    let trigger = Trigger {
        trigger_id: ulid::Ulid::new().to_string(),
        kind: TriggerKind::Data as i32,
        model: "churn".into(),
        spec_yaml: example_spec(),
        dataset_uri: file_uri(&data),
        code_commit: "c0ffee1".into(),
        ci: Some(CiContext {
            git_ref: "refs/pull/7/merge".into(),
            pull_request: 7,
            actor: "alice".into(),
            // A publisher chooses this: the page must not make it a link that runs.
            run_url: "javascript:document.title='pwned'".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    p.publish_trigger(&trigger, Some(&trigger.trigger_id))
        .await
        .unwrap();
    let passed = p.verdict(&trigger.trigger_id).await.unwrap();
    assert_eq!(passed.verdict(), Verdict::Passed, "{}", passed.reason);
    wait_run(&p, "model plan of v1", |r| is_model_plan(r, 1)).await;
    let dirty = p.dataset("dirty.parquet", 3_000, 92, true).unwrap();
    let failed = p
        .run_file(TriggerKind::Data, &example_spec(), &dirty)
        .await
        .unwrap();
    assert_eq!(failed.verdict(), Verdict::Failed, "{}", failed.reason);

    let browser = Browser::start();
    let base = format!("http://{console}");
    let shots = workspace_root().join("target");

    // The passed run, read by a viewer.
    let mut page = browser
        .open(&format!(
            "{base}/runs/{}#token={}",
            passed.run_id,
            token("vera")
        ))
        .await;
    let text = |id: &str| format!("document.getElementById('{id}').textContent");
    assert_eq!(page.eval(&text("verdict")).await, "passed");
    assert_eq!(page.eval(&text("commit")).await, "c0ffee1");
    assert_eq!(page.eval(&text("ref")).await, "refs/pull/7/merge");
    assert_eq!(page.eval(&text("pull-request")).await, "#7");
    assert_eq!(page.eval(&text("actor")).await, "alice");
    assert_eq!(page.eval(&text("identity")).await, "vera (viewer)");
    assert_eq!(
        page.eval("[...document.links].filter(a => !/^https?:/.test(a.href)).length")
            .await,
        0,
        "only http(s) links"
    );
    let trace = page.eval(&text("trace-id")).await;
    let trace = trace.as_str().unwrap();
    assert!(
        trace.len() == 32 && trace.chars().all(|c| c.is_ascii_hexdigit()),
        "trace id {trace:?}"
    );
    let stages = page
        .eval("[...document.querySelectorAll('tr.stage')].map(r => r.dataset.stage + ':' + r.dataset.status).join(' ')")
        .await;
    assert_eq!(
        stages,
        "validate:passed train:passed gate:passed promote:passed"
    );
    let checks = page
        .eval("[...document.querySelectorAll('tr.check')].map(r => r.dataset.check + ':' + r.dataset.verdict)")
        .await;
    let gate = passed.gate.as_ref().unwrap();
    let expected: Vec<String> = gate
        .checks
        .iter()
        .map(|c| format!("{}:{}", c.name, c.verdict().name().to_lowercase()))
        .collect();
    assert_eq!(
        checks,
        json!(expected),
        "every gate check, with its verdict"
    );
    page.screenshot(&shots.join("console-run.png")).await;

    // The failed validation: failing expectations first, and every failing row.
    page.load(&format!("{base}/runs/{}", failed.run_id)).await;
    let rows = page
        .eval("[...document.querySelectorAll('tr.expectation')].map(r => r.dataset.success)")
        .await;
    let rows: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let failing = failed
        .validation
        .as_ref()
        .unwrap()
        .results
        .iter()
        .filter(|r| !r.success)
        .count();
    assert!(failing > 0);
    assert!(
        rows[..failing].iter().all(|s| *s == "false")
            && rows[failing..].iter().all(|s| *s == "true"),
        "failing expectations first: {rows:?}"
    );
    let kept = p
        .bus
        .failures()
        .get(&failed.run_id.parse::<RunId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    let downloaded = page
        .eval(
            "fetch(document.getElementById('failures-download').href, { headers: headers() })
               .then(r => r.arrayBuffer()).then(b => b.byteLength)",
        )
        .await;
    assert_eq!(
        downloaded,
        kept.len(),
        "the download is the kept failing rows"
    );

    // A viewer sees what waits, with no buttons; the registry refuses the viewer anyway.
    page.load(&format!("{base}/approvals")).await;
    let waiting = page
        .eval("[...document.querySelectorAll('.card.pending')].map(c => c.dataset.model + ' v' + c.dataset.version)")
        .await;
    assert_eq!(waiting, json!(["churn v1"]));
    assert_eq!(
        page.eval("document.querySelectorAll('button.approve, button.reject').length")
            .await,
        0
    );
    let refused = page
        .eval("send('/api/approvals/churn/1', { approve: true, reason: 'I can see it' }).then(r => [r.status, r.body.error])")
        .await;
    assert_eq!(refused[0], 403, "{refused}");
    assert!(
        refused[1]
            .as_str()
            .unwrap()
            .contains("vera (role viewer) may not approve"),
        "{refused}"
    );

    // An approver signs in, approves with a reason, and the promoter moves v1.
    page.eval(&format!(
        "sessionStorage.setItem('tollgate.token', '{}')",
        token("bob")
    ))
    .await;
    page.load(&format!("{base}/approvals")).await;
    assert_eq!(page.eval(&text("identity")).await, "bob (approver)");
    page.eval(
        "(() => {
           const v1 = document.querySelector('.card.pending[data-model=churn][data-version=\"1\"]');
           v1.querySelector('input.reason').value = 'metrics hold on the holdout';
           v1.querySelector('button.approve').click();
         })()",
    )
    .await;
    let outcome = page
        .wait_for("document.getElementById('outcome').textContent", WAIT)
        .await;
    assert_eq!(outcome, "churn v1 approved by bob");
    wait_stage(&p, 1, ModelStage::Production).await;
    let v1 = p
        .registry()
        .unwrap()
        .get_version(GetVersionRequest {
            model: "churn".into(),
            version: 1,
        })
        .await
        .unwrap()
        .into_inner();
    let approval = v1.audit.iter().find(|a| a.action == "approved").unwrap();
    assert_eq!(
        (approval.actor.as_str(), approval.reason.as_str()),
        ("bob", "metrics hold on the holdout")
    );

    // The same data again: v2 waits, compared with v1 in Production, its drift measured.
    let second = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(second.verdict(), Verdict::Passed, "{}", second.reason);
    wait_run(&p, "model plan of v2", |r| is_model_plan(r, 2)).await;
    page.load(&format!("{base}/approvals")).await;
    let compared = page
        .eval("[...document.querySelectorAll('#against-churn-2 tr[data-metric]')].map(r => r.dataset.metric)")
        .await;
    assert!(
        compared.as_array().unwrap().contains(&json!("auc_roc")),
        "v2 against Production: {compared}"
    );
    page.screenshot(&shots.join("console-approvals.png")).await;

    // The model page: both versions with lineage and audit, a chart per metric, drift.
    page.load(&format!("{base}/models/churn")).await;
    let versions = page
        .eval("[...document.querySelectorAll('tr.version')].map(r => 'v' + r.dataset.version + ' ' + r.dataset.stage)")
        .await;
    assert_eq!(versions, json!(["v2 Staging", "v1 Production"]));
    let drifts = page
        .eval("document.querySelectorAll('tr.drift').length")
        .await;
    assert!(drifts.as_u64().unwrap() > 0, "drift per column shown");
    let charts = page
        .eval("document.querySelectorAll('.metric-chart .uplot').length")
        .await;
    assert!(
        charts.as_u64().unwrap() >= 4,
        "a chart per metric: {charts}"
    );
    let audit = page
        .eval("document.querySelector('tr.version[data-version=\"1\"] details.audit').textContent")
        .await;
    assert!(
        audit.as_str().unwrap().contains("approved by bob"),
        "{audit}"
    );
    page.screenshot(&shots.join("console-model.png")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_an_open_registry_the_console_approver_names_themselves_as_the_policy_lists() {
    let console = format!("127.0.0.1:{}", free_port().unwrap());
    let p = Pipeline::start_hosted(|h| h.dashboard_addr = console.clone())
        .await
        .unwrap();
    let data = p.dataset("churn.parquet", 3_000, 95, false).unwrap();
    let run = p
        .run_file(TriggerKind::Data, &example_spec(), &data)
        .await
        .unwrap();
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    wait_run(&p, "model plan of v1", |r| is_model_plan(r, 1)).await;
    let http = reqwest::Client::new();
    let decide = |body: serde_json::Value| {
        http.post(format!("http://{console}/api/approvals/churn/1"))
            .json(&body)
            .send()
    };
    let me: serde_json::Value = http
        .get(format!("http://{console}/api/whoami"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["open"], true);
    assert_eq!(me["may_approve"], true);
    // No name: refused with the reason; a name not on the policy: refused too.
    let nameless = decide(json!({"approve": true, "reason": "fine"}))
        .await
        .unwrap();
    assert_eq!(nameless.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(
        nameless
            .text()
            .await
            .unwrap()
            .contains("an approver identity is required")
    );
    let stranger = decide(json!({"approve": true, "reason": "fine", "approver": "mallory"}))
        .await
        .unwrap();
    assert_eq!(stranger.status(), reqwest::StatusCode::FORBIDDEN);
    let approved = decide(json!({"approve": true, "reason": "fine", "approver": "bob"}))
        .await
        .unwrap();
    assert_eq!(approved.status(), reqwest::StatusCode::OK);
    let recorded: serde_json::Value = approved.json().await.unwrap();
    assert_eq!(recorded["approver"], "bob");
    wait_stage(&p, 1, ModelStage::Production).await;
}
