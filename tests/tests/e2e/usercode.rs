//! The user's own code through the pipeline: `examples/sklearn` (a `train.py` exporting a
//! scikit-learn pipeline to ONNX, and pytest gates) published with the real CLI, which
//! packs the folder; variants whose command fails, whose pytest gate fails and whose model
//! lacks an input; a model trained in CI and uploaded; the command's process group stopped
//! by SIGTERM and by cancel-in-progress. Python comes from the venv `make test` puts on
//! PATH.

use std::{
    path::{Path, PathBuf},
    process::Output,
    time::{Duration, Instant},
};

use tollgate_e2e::{
    NatsServer, Pipeline, free_port,
    processes::{Services, service_env},
    workspace_root,
};
use tollgate_proto::{
    CheckVerdict, LatestByStageRequest, ListVersionsRequest, ModelStage, ModelVersion, RunSummary,
    TriggerKind, Verdict,
};
use tollgate_stack::ServerHosting;

use super::processes::{cli, run_id_of};

const MODEL: &str = "churn-sklearn";

/// Fails at once, and says how to fix it, when `python3` on PATH lacks the libraries.
fn python_ready() {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sklearn, skl2onnx, pandas, pyarrow, pytest"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 on PATH lacks scikit-learn, skl2onnx, pandas, pyarrow or pytest: run the tests through `make test`, which puts .tools/venv/bin first on PATH ({})",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A copy of `examples/sklearn` in `dir`, with `edit` applied to its tollgate.yaml.
fn example_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let from = workspace_root().join("examples/sklearn");
    let to = dir.join("sklearn");
    for entry in walk(&from) {
        let relative = entry.strip_prefix(&from).unwrap();
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
    let spec = to.join("tollgate.yaml");
    let text = edit(std::fs::read_to_string(&spec).unwrap());
    std::fs::write(&spec, text).unwrap();
    spec
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "__pycache__") {
                continue;
            }
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn env_of(p: &Pipeline) -> Vec<(&'static str, String)> {
    vec![
        ("TOLLGATE_NATS_URL", p.nats.url.clone()),
        ("TOLLGATE_REGISTRY_URL", p.registry_url.clone()),
    ]
}

/// `tollgate publish KIND --spec SPEC --dataset DATA --wait [extra...]` against `env`,
/// after `tollgate apply SPEC` when the model has no policy yet (an admin's first act).
fn publish(env: &[(&str, String)], kind: &str, spec: &Path, data: &Path, extra: &[&str]) -> Output {
    let specs = cli(env, &["specs"]);
    if !String::from_utf8_lossy(&specs.stdout).contains(MODEL) {
        super::processes::apply(env, spec);
    }
    let mut args = vec![
        "publish",
        kind,
        "--spec",
        spec.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--wait",
        "--timeout",
        "240",
    ];
    args.extend(extra);
    cli(env, &args)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The run `tollgate publish` started, as the registry recorded its end.
async fn recorded(p: &Pipeline, out: &Output) -> RunSummary {
    let run_id = run_id_of(&String::from_utf8_lossy(&out.stdout));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = p
            .runs(MODEL)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.run_id == run_id && r.verdict() != Verdict::Unspecified)
        {
            return r;
        }
        assert!(Instant::now() < deadline, "run {run_id} not recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn versions(p: &Pipeline) -> Vec<ModelVersion> {
    p.registry()
        .unwrap()
        .list_versions(ListVersionsRequest {
            model: MODEL.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .versions
}

/// Waits for a finished run of the model matching `pred`.
async fn wait_run(p: &Pipeline, what: &str, pred: impl Fn(&RunSummary) -> bool) -> RunSummary {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(r) = p
            .runs(MODEL)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.verdict() != Verdict::Unspecified && pred(r))
        {
            return r;
        }
        assert!(Instant::now() < deadline, "no finished run: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sklearn_example_trains_with_its_command_passes_its_pytest_gate_and_reaches_staging() {
    python_ready();
    let addr = format!("127.0.0.1:{}", free_port().unwrap());
    let server_url = format!("http://{addr}");
    let p = Pipeline::start_hosted(|h| {
        h.server = Some(ServerHosting {
            models: format!("{MODEL}@Staging"),
            addr: addr.clone(),
            grpc_addr: format!("127.0.0.1:{}", free_port().unwrap()),
        });
    })
    .await
    .unwrap();
    let data = p.dataset("churn.parquet", 4000, 5, false).unwrap();
    let spec = example_copy(p.dir.path(), |s| s);
    let out = publish(&env_of(&p), "data", &spec, &data, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("packed"), "{shown}");
    assert!(
        shown.contains("| fitted 100 boosting iterations"),
        "the command's lines stream into the run: {shown}"
    );
    let run = recorded(&p, &out).await;
    assert_eq!(run.verdict(), Verdict::Passed, "{}", run.reason);
    assert_eq!(run.code_digest.len(), 64);

    // The version: made by the command, an ONNX model, from the packed folder.
    let v = &versions(&p).await[0];
    assert_eq!(v.origin, "command");
    assert_eq!(v.model_format, "onnx");
    assert_eq!(v.code_digest, run.code_digest);
    assert!(v.algorithm.starts_with("onnx(command"), "{}", v.algorithm);
    assert!(v.metrics["auc_roc"] > 0.8, "{:?}", v.metrics);

    // The pytest gate's cases are check rows of their own, and passed.
    let gate = run.gate.clone().unwrap();
    let tests: Vec<_> = gate.checks.iter().filter(|c| c.test).collect();
    assert_eq!(tests.len(), 3, "{:?}", gate.checks);
    assert!(
        tests.iter().all(|c| c.verdict() == CheckVerdict::Pass),
        "{tests:?}"
    );
    assert!(
        tests
            .iter()
            .any(|c| c.name.ends_with("test_auc_on_the_held_out_rows")),
        "{tests:?}"
    );
    assert!(gate.blessed);

    // In Staging, the model plan runs its integration tests against the hosted server.
    let integration = wait_run(&p, "the model plan", |r| {
        r.trigger() == TriggerKind::Model && r.model_version == v.version
    })
    .await;
    assert_eq!(
        integration.verdict(),
        Verdict::Passed,
        "{}",
        integration.reason
    );
    let said = &integration.stages[0].message;
    assert!(said.contains("tests passed: smoke"), "{said}");

    // The model server answers with the ONNX version, declaring the model's own types.
    let client = tollgate_inference::client::Client::new(&server_url);
    client
        .wait_ready(MODEL, Some(v.version), Duration::from_secs(30))
        .await
        .unwrap();
    let meta: serde_json::Value = reqwest::get(format!("{server_url}/v2/models/{MODEL}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<(String, String)> = meta["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().into(),
                i["datatype"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(types.contains(&("age".into(), "FP32".into())), "{types:?}");
    assert!(
        types.contains(&("contract".into(), "BYTES".into())),
        "{types:?}"
    );
    assert_eq!(meta["platform"], "onnxruntime_onnx");
    // Any numeric datatype for a numeric input, null for a missing value.
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{server_url}/v2/models/{MODEL}/infer"))
        .json(&serde_json::json!({"inputs": [
            {"name": "age", "shape": [1], "datatype": "INT64", "data": [41]},
            {"name": "tenure_months", "shape": [1], "datatype": "FP64", "data": [3.0]},
            {"name": "monthly_charges", "shape": [1], "datatype": "FP32", "data": [80.5]},
            {"name": "total_charges", "shape": [1], "datatype": "FP64", "data": [null]},
            {"name": "support_calls", "shape": [1], "datatype": "INT32", "data": [4]},
            {"name": "contract", "shape": [1], "datatype": "BYTES", "data": ["month-to-month"]},
            {"name": "payment_method", "shape": [1], "datatype": "BYTES", "data": [null]}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p1 = answer["outputs"][0]["data"][0].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p1), "{answer}");

    // In Production, v1 is the champion the next candidate is graded against, on the same
    // rows: the same data and code make the same model, so nothing dropped.
    p.registry()
        .unwrap()
        .approve(tollgate_proto::ApprovalRequest {
            model: MODEL.into(),
            version: v.version,
            approver: "alice".into(),
            reason: "e2e".into(),
            approve: true,
        })
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while p
        .registry()
        .unwrap()
        .latest_by_stage(LatestByStageRequest {
            model: MODEL.into(),
            stage: ModelStage::Production as i32,
        })
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "v1 never reached Production");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = publish(&env_of(&p), "code", &spec, &data, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let second = recorded(&p, &out).await;
    let champion = second
        .gate
        .unwrap()
        .checks
        .into_iter()
        .find(|c| c.name == "auc_roc_drop_vs_production")
        .unwrap();
    assert_eq!(champion.verdict(), CheckVerdict::Pass, "{champion:?}");
    assert!(
        champion.note.contains("vs champion v1"),
        "{}",
        champion.note
    );
    assert!(champion.observed.abs() < 1e-9, "{champion:?}");
}

/// A published variant of the example: the pipeline, the CLI's exit code and output,
/// and the run as the registry recorded it.
struct Published {
    p: Pipeline,
    code: Option<i32>,
    shown: String,
    run: RunSummary,
}

/// Starts a pipeline, copies the example with `edit` applied to its spec and `files`
/// added, and publishes it as `kind` on 2,000 generated rows with `--wait`.
async fn publish_variant(
    kind: &str,
    edit: impl Fn(String) -> String,
    files: &[(&str, &str)],
) -> Published {
    python_ready();
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 2000, 5, false).unwrap();
    let spec = example_copy(p.dir.path(), edit);
    for (path, body) in files {
        std::fs::write(spec.parent().unwrap().join(path), body).unwrap();
    }
    let out = publish(&env_of(&p), kind, &spec, &data, &[]);
    let run = recorded(&p, &out).await;
    Published {
        code: out.status.code(),
        shown: text(&out),
        p,
        run,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_training_command_that_exits_1_fails_the_run_with_its_status_and_stderr() {
    let Published {
        p,
        code,
        shown,
        run,
    } = publish_variant("data", |s| s.replace("--max-depth 6", "--max-depth 0"), &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(run.reason.starts_with("train:"), "{}", run.reason);
    assert!(
        run.reason
            .contains("`python3 train.py --max-depth 0` failed with exit status 1"),
        "{}",
        run.reason
    );
    assert!(
        run.reason.contains("max_depth"),
        "the reason holds stderr: {}",
        run.reason
    );
    assert!(versions(&p).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_pytest_gate_blocks_the_version_naming_the_test() {
    let failing = "def test_precision_floor_for_two_year_contracts():\n    precision = 0.42\n    assert precision >= 0.9, f'precision {precision} is below 0.9'\n";
    let Published {
        p,
        code,
        shown,
        run,
    } = publish_variant("data", |s| s, &[("tests/model/test_floor.py", failing)]).await;
    assert_eq!(code, Some(1), "{shown}");
    assert_eq!(run.verdict(), Verdict::Blocked, "{}", run.reason);
    assert!(
        run.reason
            .contains("test_precision_floor_for_two_year_contracts"),
        "{}",
        run.reason
    );
    assert!(
        run.reason.contains("precision 0.42 is below 0.9"),
        "{}",
        run.reason
    );
    let gate = run.gate.unwrap();
    let failed: Vec<_> = gate
        .checks
        .iter()
        .filter(|c| c.test && c.verdict() == CheckVerdict::Fail)
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", gate.checks);
    assert!(
        failed[0].name.starts_with("model-quality: "),
        "{}",
        failed[0].name
    );
    // The other cases passed, each in its own row; the step summary shows them too.
    let passed = gate
        .checks
        .iter()
        .filter(|c| c.test && c.verdict() == CheckVerdict::Pass)
        .count();
    assert_eq!(passed, 3);
    let report = cli(
        &env_of(&p),
        &["report", &run.run_id, "--format", "markdown"],
    );
    let md = String::from_utf8_lossy(&report.stdout);
    assert!(
        md.contains("test_precision_floor_for_two_year_contracts | failed | test | FAIL"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_lacks_a_feature_of_the_spec_fails_naming_the_input() {
    // The spec gains a feature that train.py does not feed its model.
    let add_feature = |s: String| {
        s.replace(
            "categorical: [contract, payment_method]",
            "categorical: [contract, payment_method, customer_id]",
        )
    };
    let Published {
        code, shown, run, ..
    } = publish_variant("data", add_feature, &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.reason
            .contains("no input for feature customer_id of the spec"),
        "{}",
        run.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_trained_in_ci_is_uploaded_graded_and_registered_as_uploaded() {
    python_ready();
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 3000, 5, false).unwrap();
    let spec = example_copy(p.dir.path(), |s| s);
    // CI's own training job: train.py run by hand, as the docs say.
    let model = p.dir.path().join("model.onnx");
    let trained = std::process::Command::new("python3")
        .arg(spec.parent().unwrap().join("train.py"))
        .env("TOLLGATE_TRAIN_DATA", &data)
        .env("TOLLGATE_MODEL_OUT", &model)
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", text(&trained));
    let out = publish(
        &env_of(&p),
        "code",
        &spec,
        &data,
        &["--model", model.to_str().unwrap()],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(shown.contains("uploaded model"), "{shown}");
    let run = recorded(&p, &out).await;
    assert_eq!(run.model_upload.len(), 64);
    let v = &versions(&p).await[0];
    assert_eq!(v.origin, "uploaded");
    assert!(v.algorithm.starts_with("onnx(uploaded"), "{}", v.algorithm);
    assert!(run.gate.unwrap().blessed);
    // No command ran: the train stage says it registered the upload.
    let train = run
        .stages
        .iter()
        .find(|s| s.stage() == tollgate_proto::Stage::Train)
        .unwrap();
    assert!(
        train.message.contains("registered churn-sklearn v1"),
        "{}",
        train.message
    );
    // `--model` without a spec is refused before anything is published.
    let out = cli(
        &env_of(&p),
        &["publish", "code", "--model", model.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("needs --spec"), "{}", text(&out));
}

#[test]
fn tollgate_train_runs_the_command_locally_on_the_training_rows() {
    python_ready();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("churn.parquet");
    super::processes::generate(&data, 3000, &[]);
    let spec = example_copy(dir.path(), |s| s);
    let artifact = dir.path().join("model.tgm");
    let out = cli(
        &[],
        &[
            "train",
            data.to_str().unwrap(),
            "--spec",
            spec.to_str().unwrap(),
            "--out",
            artifact.to_str().unwrap(),
        ],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("on the 2400 training rows (600 test rows withheld)"),
        "{shown}"
    );
    assert!(shown.contains("auc_roc"), "{shown}");
    let a = tollgate_ml::artifact::Artifact::decode(&std::fs::read(&artifact).unwrap()).unwrap();
    assert_eq!(a.format(), "onnx");
    let scores = cli(
        &[],
        &[
            "predict",
            artifact.to_str().unwrap(),
            data.to_str().unwrap(),
        ],
    );
    assert_eq!(scores.status.code(), Some(0), "{}", text(&scores));
}

/// A spec whose command waits the first time it runs (writing its shell's pid to `pids`)
/// and trains the second time.
fn slow_first_spec(dir: &Path, pids: &Path, extra: &str) -> PathBuf {
    let marker = dir.join("first-run-done");
    let line = format!(
        "run: sh -c 'if [ -f {marker} ]; then exec python3 train.py; fi; touch {marker}; echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; wait'",
        marker = marker.display(),
        pids = pids.display()
    );
    example_copy(dir, |s| {
        s.replace("run: python3 train.py --max-depth 6", &line) + extra
    })
}

fn wait_for_pids(path: &Path, n: usize) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pids: Vec<i32> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.len() >= n {
            return pids;
        }
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn sigterm_to_the_trainer_stops_the_command_and_puts_the_run_back_for_another() {
    python_ready();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = service_env(&nats, dir.path());
    let mut services = Services::new();
    services.spawn(&env, &tollgate_stack::SERVICES);
    let data = dir.path().join("churn.parquet");
    super::processes::generate(&data, 3000, &[]);
    let pids = dir.path().join("pids");
    let spec = slow_first_spec(dir.path(), &pids, "");
    super::processes::apply(&env, &spec);
    let out = cli(
        &env,
        &[
            "publish",
            "code",
            "--spec",
            spec.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let run_id = run_id_of(&String::from_utf8_lossy(&out.stdout));
    let started = wait_for_pids(&pids, 2);
    let mut trainer = services.take("trainer");
    let stopping = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &trainer.id().to_string()])
        .status()
        .unwrap();
    let status = trainer.wait().unwrap();
    assert!(status.success(), "trainer exit on SIGTERM: {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopping.elapsed()
    );
    std::thread::sleep(Duration::from_millis(300));
    for pid in &started {
        assert!(
            !alive(*pid),
            "process {pid} of the command's group outlived the trainer"
        );
    }
    // Another replica gets the run back and trains it.
    services.spawn(&env, &["trainer"]);
    let shown = super::processes::shown_passed(&env, &run_id, Duration::from_secs(120));
    assert!(shown.contains("verdict passed"), "{shown}");
    services.stop_gracefully();
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_in_progress_stops_a_running_training_command() {
    python_ready();
    let p = Pipeline::start().await.unwrap();
    let data = p.dataset("churn.parquet", 2000, 5, false).unwrap();
    let pids = p.dir.path().join("pids");
    let spec = slow_first_spec(p.dir.path(), &pids, "\nconcurrency: cancel-in-progress\n");
    let env = env_of(&p);
    super::processes::apply(&env, &spec);
    let first = cli(
        &env,
        &[
            "publish",
            "data",
            "--spec",
            spec.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
        ],
    );
    assert!(first.status.success(), "{}", text(&first));
    let first_id = run_id_of(&String::from_utf8_lossy(&first.stdout));
    let started = wait_for_pids(&pids, 2);
    let second = publish(&env, "data", &spec, &data, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let cancelled = wait_run(&p, "the first run", |r| r.run_id == first_id).await;
    assert_eq!(
        cancelled.verdict(),
        Verdict::Cancelled,
        "{}",
        cancelled.reason
    );
    for pid in &started {
        assert!(
            !alive(*pid),
            "process {pid} of the cancelled command is still running"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pytest_gate_works_on_a_built_in_model_too() {
    let built_in = |s: String| {
        s.replace(
            "algorithm:\n  kind: command\n  run: python3 train.py --max-depth 6\n  timeout_minutes: 30\n",
            "algorithm: {kind: logistic_regression}\n",
        )
    };
    let Published {
        p,
        code,
        shown,
        run,
    } = publish_variant("code", built_in, &[]).await;
    assert_eq!(code, Some(0), "{shown}");
    let v = &versions(&p).await[0];
    assert_eq!(
        (v.origin.as_str(), v.model_format.as_str()),
        ("trained", "tollgate")
    );
    let tests: Vec<_> = run
        .gate
        .unwrap()
        .checks
        .into_iter()
        .filter(|c| c.test)
        .collect();
    assert_eq!(tests.len(), 3, "{tests:?}");
    assert!(
        tests.iter().all(|c| c.verdict() == CheckVerdict::Pass),
        "{tests:?}"
    );
    let shown = cli(&env_of(&p), &["runs", "show", &run.run_id]);
    assert!(
        text(&shown).contains(&format!("code: snapshot {}", run.code_digest)),
        "{}",
        text(&shown)
    );
}
