//! The real binaries as separate processes, as `make demo` and Kubernetes run them: the
//! six services, then the `tollgate` CLI publishing code changes with `--wait`.

use std::{
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

pub(crate) use tollgate_e2e::processes::{Services, bin, service_env, service_env_at};
use tollgate_e2e::{NatsServer, workspace_root};

/// The six services, in the order they are started.
use tollgate_stack::SERVICES;

pub(crate) fn cli(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("tollgate"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// The six services as processes with `extra` in their environment, each answering its
/// health check, and a registry client: what the process-level e2e tests start from.
pub(crate) struct ProcessStack {
    /// The NATS server they share (stopped when the stack is dropped).
    pub _nats: NatsServer,
    /// Scratch space, and where the services log.
    pub dir: tempfile::TempDir,
    /// Their environment (and the CLI's).
    pub env: Vec<(&'static str, String)>,
    /// The processes.
    pub services: Services,
    /// A client of the registry, with no token.
    pub registry: tollgate_proto::RegistryApi,
}

impl ProcessStack {
    pub(crate) fn start(extra: Vec<(&'static str, String)>) -> Self {
        let nats = NatsServer::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut env = service_env(&nats, dir.path());
        env.extend(extra);
        let mut services = Services::logging_to(dir.path());
        for (name, addr) in services.spawn(&env, &SERVICES) {
            let body = get_healthz(&addr);
            assert!(body.starts_with("HTTP/1.1 200"), "{name}: {body}");
        }
        let url = env
            .iter()
            .find(|(k, _)| *k == "TOLLGATE_REGISTRY_URL")
            .unwrap()
            .1
            .clone();
        ProcessStack {
            registry: tollgate_proto::registry_client_with_token(&url, "").unwrap(),
            _nats: nats,
            dir,
            env,
            services,
        }
    }

    /// The value of `key` in the services' environment.
    pub(crate) fn var(&self, key: &str) -> &str {
        &self.env.iter().find(|(k, _)| *k == key).unwrap().1
    }

    /// The CLI with `args`, which must succeed.
    pub(crate) fn ok(&self, args: &[&str]) -> Output {
        cli_ok(&self.env, args)
    }
}

/// The CLI with `args` against `env`, which must succeed.
pub(crate) fn cli_ok(env: &[(&str, String)], args: &[&str]) -> Output {
    let out = cli(env, args);
    assert!(
        out.status.success(),
        "tollgate {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `tollgate publish KIND --spec SPEC --dataset DATA [extra...]`, after `tollgate apply
/// SPEC` when its model has no policy yet (the admin's first act).
pub(crate) fn publish(
    env: &[(&str, String)],
    kind: &str,
    spec: &std::path::Path,
    data: &std::path::Path,
    extra: &[&str],
) -> Output {
    if let Ok((parsed, _)) = tollgate_spec::ModelSpec::load(spec) {
        let applied = cli(env, &["specs"]);
        let listed = String::from_utf8_lossy(&applied.stdout).lines().any(|l| {
            l.split('┆')
                .next()
                .is_some_and(|m| m.trim_matches(['│', ' ']) == parsed.model)
        });
        if !listed {
            apply(env, spec);
        }
    }
    let mut args = vec![
        "publish",
        kind,
        "--spec",
        spec.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
    ];
    args.extend(extra);
    cli(env, &args)
}

/// `tollgate apply SPEC` against `env`, which must succeed: the admin's policy, before
/// any run.
pub(crate) fn apply(env: &[(&str, String)], spec: &std::path::Path) {
    let out = cli(env, &["apply", spec.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "tollgate apply: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tollgate publish code --spec SPEC --dataset DATA [extra...]`.
fn publish_code(
    env: &[(&str, String)],
    spec: &std::path::Path,
    data: &std::path::Path,
    extra: &[&str],
) -> Output {
    publish(env, "code", spec, data, extra)
}

/// `tollgate data generate --rows ROWS --out PATH [extra...]`, which must succeed.
pub(crate) fn generate(path: &std::path::Path, rows: usize, extra: &[&str]) {
    let rows = rows.to_string();
    let mut args = vec!["data", "generate", "--rows", &rows, "--out"];
    args.push(path.to_str().unwrap());
    args.extend(extra);
    let out = cli(&[], &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tollgate train DATA --spec SPEC [extra...]`.
fn train(data: &std::path::Path, spec: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "--spec",
        spec.to_str().unwrap(),
    ];
    args.extend(extra);
    cli(&[], &args)
}

/// GETs /healthz, retrying while the service starts.
pub(crate) fn get_healthz(addr: &str) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if !out.is_empty() {
                return out;
            }
        }
        assert!(Instant::now() < deadline, "no health endpoint on {addr}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn code_changes_through_the_real_binaries_exit_by_the_verdict() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = service_env(&nats, dir.path());
    let mut services = Services::new();
    let health = services.spawn(&env, &SERVICES);
    for (name, addr) in &health {
        let body = get_healthz(addr);
        assert!(
            body.starts_with("HTTP/1.1 200") && body.contains("ok"),
            "{name} /healthz: {body}"
        );
    }
    let data = dir.path().join("churn.parquet");
    let out = cli(
        &env,
        &[
            "data",
            "generate",
            "--rows",
            "3000",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let spec = workspace_root().join("examples/churn/tollgate.yaml");
    apply(&env, &spec);
    let mut as_ci = env.clone();
    as_ci.push(("TOLLGATE_USER", "ci-bot".into()));
    let out = publish_code(
        &as_ci,
        &spec,
        &data,
        &["--commit", "abc123", "--wait", "--timeout", "120"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = cli(&env, &["runs", "show", &run_id_of(&stdout)]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("requested by: ci-bot"), "{shown}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("verdict: PASSED"), "{stdout}");
    assert!(stdout.contains("✓ gate"), "{stdout}");
    assert!(
        !stdout.contains("promote"),
        "a code change stops after the gate: {stdout}"
    );

    let strict = dir.path().join("strict.yaml");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("f1: {min: 0.70}", "f1: {min: 0.999}");
    std::fs::write(&strict, text).unwrap();
    let out = publish_code(&env, &strict, &data, &["--wait", "--timeout", "120"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("verdict: BLOCKED") && stdout.contains("f1"),
        "{stdout}"
    );

    let out = cli(&env, &["models", "churn"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("v2") && !stdout.contains("Staging"),
        "{stdout}"
    );
    let out = cli(&env, &["runs"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("blocked") && stdout.contains("passed"),
        "{stdout}"
    );
    // The same runs as `pipeline_metrics` records, newest (the blocked one) first.
    let out = cli(&env, &["runs", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let [blocked, passed] = runs.as_array().unwrap().as_slice() else {
        panic!("two runs expected: {runs:#}");
    };
    assert_eq!(blocked["verdict"], "blocked", "{runs:#}");
    assert_eq!(passed["verdict"], "passed", "{runs:#}");
    assert_eq!(blocked["trigger"], "code");
    assert!(blocked["auc_roc"].as_f64().unwrap() > 0.8, "{blocked:#}");
    let (ok, total) = (
        blocked["gate_checks_passed"].as_u64().unwrap(),
        blocked["gate_checks_total"].as_u64().unwrap(),
    );
    assert!(ok < total && total >= 5, "{blocked:#}");
    let stages: Vec<&str> = blocked["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["validate", "train", "gate"]);
    assert!(blocked["total_duration_s"].as_f64().unwrap() > 0.0);
    let id = blocked["run_id"].as_str().unwrap();
    let out = cli(&env, &["runs", "show", id, "--json"]);
    let one: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(&one, blocked);
    // One block is a streak of one: the gate rule (two in a row) is not firing.
    let out = cli(&env, &["alerts"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("gate_blocks") && !stdout.contains("FIRING"),
        "{stdout}"
    );
    let out = cli(&env, &["alerts", "--firing"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no alert is firing"));

    // A CLI that cannot reach anything exits 2.
    let out = cli(
        &[(
            "TOLLGATE_REGISTRY_URL",
            tollgate_e2e::UNREACHABLE.to_string(),
        )],
        &["models"],
    );
    assert_eq!(out.status.code(), Some(2));

    services.stop_gracefully();
}

#[test]
fn validate_runs_the_engine_without_nats_and_exits_by_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let suite = workspace_root().join("tests/fixtures/gx/churn_suite.json");
    assert!(suite.exists(), "{} is missing", suite.display());
    let (clean, dirty) = (
        dir.path().join("clean.parquet"),
        dir.path().join("dirty.csv"),
    );
    generate(&clean, 5000, &[]);
    generate(&dirty, 5000, &["--dirty"]);
    let out = cli(
        &[],
        &[
            "validate",
            clean.to_str().unwrap(),
            "--suite",
            suite.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("PASSED: 9/9 expectations met on 5000 rows"),
        "{stdout}"
    );

    let out = cli(
        &[],
        &[
            "validate",
            dirty.to_str().unwrap(),
            "--suite",
            suite.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["success"], false);
    assert_eq!(json["statistics"]["unsuccessful_expectations"], 2);
    let ages = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["expectation_config"]["kwargs"]["column"] == "age")
        .unwrap();
    assert!(ages["result"]["unexpected_count"].as_u64().unwrap() > 0);
    let sample = ages["result"]["partial_unexpected_list"]
        .as_array()
        .unwrap();
    assert!(!sample.is_empty() && sample.len() <= 20);
    assert!(sample.iter().all(|v| v == "150" || v == "-3"), "{sample:?}");

    let spec = workspace_root().join("examples/churn/tollgate.yaml");
    let out = cli(
        &[],
        &[
            "validate",
            "/no/such.parquet",
            "--spec",
            spec.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn train_and_predict_run_standalone_without_nats() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("churn.parquet");
    let model = dir.path().join("churn.tgm");
    let preds = dir.path().join("preds.csv");
    let spec = workspace_root().join("examples/churn/tollgate.yaml");
    generate(&data, 3000, &[]);
    let out = train(&data, &spec, &["--json", "--out", model.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["metrics"]["auc_roc"].as_f64().unwrap() >= 0.8,
        "{json}"
    );
    let threshold = json["f1_optimal_threshold"].as_f64().unwrap();
    assert!(threshold > 0.0 && threshold < 1.0);
    assert!(json["training_seconds"].as_f64().unwrap() > 0.0);
    let bytes = std::fs::read(&model).unwrap();
    assert_eq!(
        json["artifact_digest"],
        tollgate_ml::artifact::digest(&bytes)
    );

    let out = cli(
        &[],
        &[
            "predict",
            model.to_str().unwrap(),
            data.to_str().unwrap(),
            "--out",
            preds.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&preds).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("row,probability,prediction"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 3000);
    assert!(
        rows.iter()
            .all(|r| (0.0..=1.0).contains(&r[1].parse::<f64>().unwrap()))
    );

    let out = cli(
        &[],
        &["predict", spec.to_str().unwrap(), data.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Tollgate model artifact"));
}

#[test]
fn train_prints_the_candidates_comparison_and_saves_the_winner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("churn.csv");
    let model = dir.path().join("churn.tgm");
    let spec = workspace_root().join("examples/churn/candidates.yaml");
    generate(&data, 3000, &[]);
    let out = train(&data, &spec, &["--out", model.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("validation auc_roc"), "{stdout}");
    for kind in tollgate_spec::ALGORITHMS {
        assert!(stdout.contains(kind), "{kind} missing from\n{stdout}");
    }
    let artifact =
        tollgate_ml::artifact::Artifact::decode(&std::fs::read(&model).unwrap()).unwrap();
    let chosen_row = stdout.lines().find(|l| l.contains('✔')).unwrap_or_default();
    assert!(
        chosen_row.contains(&artifact.meta.algorithm),
        "{chosen_row} vs {}",
        artifact.meta.algorithm
    );
    assert!(artifact.meta.training_seconds > 0.0);

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("trees: 30", "trees: 0"),
    )
    .unwrap();
    let out = train(&data, &bad, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "candidates.algorithms[2]: random_forest.trees must be between 1 and 1000, got 0"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The run id `tollgate publish` printed: "... (run <id>)".
pub(crate) fn run_id_of(publish_stdout: &str) -> String {
    publish_stdout
        .split("(run ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no run id in {publish_stdout:?}"))
        .to_string()
}

/// The lines `tollgate runs --watch` prints, read on a thread so a wait can time out.
pub(crate) struct WatchLines(std::sync::mpsc::Receiver<String>);

impl WatchLines {
    pub(crate) fn new(stdout: std::process::ChildStdout) -> Self {
        use std::io::BufRead;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        WatchLines(rx)
    }

    /// The next line that contains `needle`, within two minutes.
    pub(crate) fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {needle:?} from `runs --watch`: {e}"),
            }
        }
    }
}

/// `tollgate runs show RUN` once the registry's record has a verdict, within `within`.
/// The record follows the run events a moment behind `runs --watch`, so a watcher's
/// verdict line is not yet proof that the record has it. Panics on any verdict but
/// `passed`, or on none in time.
pub(crate) fn shown_passed(env: &[(&str, String)], run_id: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let out = cli(env, &["runs", "show", run_id]);
        let shown = String::from_utf8_lossy(&out.stdout).to_string();
        if shown.contains("verdict passed") {
            return shown;
        }
        assert!(
            !shown.contains("verdict failed") && !shown.contains("verdict blocked"),
            "{shown}"
        );
        assert!(
            Instant::now() < deadline,
            "no verdict in {within:?}:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The churn example spec with a forest of `trees` (seconds of training on 20k rows),
/// written into `dir`.
pub(crate) fn forest_spec(dir: &std::path::Path, trees: u32) -> PathBuf {
    let spec = dir.join("forest.yaml");
    let text = std::fs::read_to_string(workspace_root().join("examples/churn/tollgate.yaml"))
        .unwrap()
        .replace(
            "algorithm:\n  kind: logistic_regression\n  alpha: 1.0\n  max_iterations: 100\n",
            &format!("algorithm: {{kind: random_forest, trees: {trees}}}\n"),
        );
    assert!(text.contains("random_forest"));
    std::fs::write(&spec, text).unwrap();
    spec
}

/// A forest of `trees` on 20,000 generated rows in `dir`, published as a data change on
/// `env` while `tollgate runs --watch` follows: the watcher, its lines and the run id.
pub(crate) fn publish_forest(
    env: &[(&str, String)],
    dir: &std::path::Path,
    trees: u32,
) -> (Child, WatchLines, String) {
    let data = dir.join("churn.parquet");
    generate(&data, 20_000, &[]);
    let spec = forest_spec(dir, trees);
    let (watch, lines) = watch_runs(env);
    let out = publish(env, "data", &spec, &data, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = run_id_of(&String::from_utf8_lossy(&out.stdout));
    (watch, lines, run_id)
}

/// `tollgate runs --watch` with `env`, once it is listening.
pub(crate) fn watch_runs(env: &[(&str, String)]) -> (Child, WatchLines) {
    let mut watch = Command::new(bin("tollgate"));
    watch.args(["runs", "--watch"]).stdout(Stdio::piped());
    for (k, v) in env {
        watch.env(k, v);
    }
    let mut watch = watch.spawn().unwrap();
    let lines = WatchLines::new(watch.stdout.take().unwrap());
    let _ = lines.wait_for("watching every run");
    (watch, lines)
}

#[test]
fn sigterm_mid_training_releases_the_run_to_another_trainer_and_registers_one_version() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = service_env(&nats, dir.path());
    let mut services = Services::new();
    services.spawn(&env, &SERVICES);
    let data = dir.path().join("churn.parquet");
    generate(&data, 20_000, &[]);
    // A forest long enough (seconds) that SIGTERM lands mid-training.
    let spec = forest_spec(dir.path(), 200);
    apply(&env, &spec);
    let (mut watch, lines) = watch_runs(&env);
    let out = publish_code(&env, &spec, &data, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id = run_id_of(&stdout);

    // The forest is growing: stop the trainer.
    let _ = lines.wait_for("random forest: ");
    let mut trainer = services.take("trainer");
    let stopping = Instant::now();
    Command::new("kill")
        .args(["-TERM", &trainer.id().to_string()])
        .status()
        .unwrap();
    let status = trainer.wait().unwrap();
    let took = stopping.elapsed();
    assert!(status.success(), "trainer exit on SIGTERM: {status}");
    assert!(
        took < Duration::from_secs(10),
        "the trainer stopped at a checkpoint, not after the grace period: {took:?}"
    );
    let out = cli(&env, &["models", "churn"]);
    let models = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !models.contains("v1"),
        "nothing was registered by the interrupted trainer: {models}"
    );

    // Another replica picks the released run up and finishes it.
    services.spawn(&env, &["trainer"]);
    let verdict = lines.wait_for("verdict:");
    assert!(verdict.contains("PASSED"), "{verdict}");
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = shown_passed(&env, &run_id, Duration::from_secs(30));
    let out = cli(&env, &["models", "churn"]);
    let models = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        models.contains("v1") && !models.contains("v2"),
        "one version for the run: {models}"
    );
    services.stop_gracefully();
}

#[test]
fn a_manual_dispatch_without_a_reason_is_refused_before_anything_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("churn.parquet");
    generate(&data, 500, &[]);
    let args = [
        "publish",
        "manual",
        "--model",
        "churn",
        "--dataset",
        data.to_str().unwrap(),
    ];
    // No NATS anywhere: the refusal comes first, so nothing could have been published.
    let env = [(
        "TOLLGATE_NATS_URL",
        tollgate_e2e::UNREACHABLE.replace("http", "nats"),
    )];
    let out = cli(&env, &args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a manual dispatch needs --reason"),
        "{stderr}"
    );
}
