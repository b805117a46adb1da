//! `tollgate dev` as a person runs it: one command starts the stack, the CLI in the same
//! directory finds it with no environment variables, Ctrl-C stops every child, the state
//! survives a restart, and a second stack on the same directory is refused.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use tollgate_e2e::workspace_root;

use super::processes::bin;

/// `PATH` with the pinned nats-server first: the only thing the commands get from outside.
fn path_with_tools() -> String {
    let tools = workspace_root().join(".tools/venv/bin");
    format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `tollgate ARGS` in `dir` with no environment but `PATH`.
pub(crate) fn tollgate(dir: &Path) -> Command {
    let mut cmd = Command::new(bin("tollgate"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", path_with_tools());
    cmd
}

pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    tollgate(dir).args(args).output().unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Starts `tollgate dev ARGS` in `dir`, its output in `log`; waits for its state file.
pub(crate) fn start_dev(dir: &Path, args: &[&str], log: &Path) -> Child {
    let mut child = tollgate(dir)
        .arg("dev")
        .args(args)
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = dir.join(".tollgate/dev.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    // A killed stack leaves its state file behind: wait for this stack's own.
    let ours = format!("\"pid\": {},", child.id());
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains(&ours)) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "tollgate dev exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "tollgate dev did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

pub(crate) fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
}

/// The pids `tollgate dev` recorded for its children.
fn child_pids(dir: &Path) -> Vec<u32> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(".tollgate/dev.json")).unwrap())
            .unwrap();
    let mut pids = vec![state["nats_pid"].as_u64().unwrap() as u32];
    for pair in state["service_pids"].as_array().unwrap() {
        pids.push(pair[1].as_u64().unwrap() as u32);
    }
    pids
}

fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while PathBuf::from(format!("/proc/{pid}")).exists() {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z ") || Instant::now() > deadline {
            return stat.contains(") Z ");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The first `tg_` followed by 64 hex digits in `text`: what a token looks like.
fn token_in(text: &str) -> Option<&str> {
    text.match_indices("tg_").find_map(|(i, _)| {
        let candidate = text.get(i..i + 67)?;
        candidate[3..]
            .chars()
            .all(|c| c.is_ascii_hexdigit())
            .then_some(candidate)
    })
}

/// A scratch directory holding `churn.parquet` (3,000 generated rows).
pub(crate) fn with_data() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "data",
        "generate",
        "--rows",
        "3000",
        "--out",
        "churn.parquet",
    ];
    let out = run(tmp.path(), &args);
    assert!(out.status.success(), "{}", text(&out));
    tmp
}

#[test]
fn tollgate_dev_runs_a_pipeline_stops_cleanly_keeps_its_state_and_refuses_a_second_stack() {
    let tmp = with_data();
    let dir = tmp.path();
    let spec = workspace_root().join("examples/churn/tollgate.yaml");

    // The services as separate processes, as Kubernetes runs them.
    let mut dev = start_dev(dir, &["--processes"], &dir.join("dev-1.out"));
    let screen = std::fs::read_to_string(dir.join("dev-1.out")).unwrap();
    assert!(
        screen.contains("NATS       nats://127.0.0.1:")
            && screen.contains("registry   http://127.0.0.1:")
            && screen.contains("export TOLLGATE_NATS_URL="),
        "{screen}"
    );
    // The model server runs beside them, its health endpoint answering.
    let server = screen
        .split("server     http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no server address on the screen: {screen}"));
    assert!(
        super::processes::get_healthz(server).contains("server ok"),
        "the model server's health endpoint"
    );
    // And the registry's dashboard, on the address the screen gives.
    let dashboard = screen
        .split("dashboard  http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no dashboard address on the screen: {screen}"));
    assert!(
        super::processes::get_healthz(dashboard).contains("registry ok"),
        "the registry's HTTP endpoint"
    );
    let applied = run(dir, &["apply", spec.to_str().unwrap()]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(text(&applied).contains("by dev-cli"), "{}", text(&applied));
    let out = run(
        dir,
        &[
            "publish",
            "data",
            "--spec",
            spec.to_str().unwrap(),
            "--dataset",
            "churn.parquet",
            "--wait",
            "--timeout",
            "120",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("verdict: PASSED"), "{}", text(&out));

    // The registry checks tokens: the CLI above used the stack's own, and no token shows
    // in any log, the state file or a service's --dump-config.
    let cli_token = std::fs::read_to_string(dir.join(".tollgate/cli.token")).unwrap();
    // `git add -A` in the project never stages the stack's secrets or state.
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
    };
    assert!(git(&["init", "-q"]).status.success());
    let staged = git(&["add", "-A", "--dry-run"]);
    let staged = String::from_utf8_lossy(&staged.stdout);
    assert!(!staged.contains(".tollgate"), "{staged}");
    assert!(cli_token.starts_with("tg_"), "{cli_token}");
    assert!(screen.contains("tokens     "), "{screen}");
    let mut texts = vec![std::fs::read_to_string(dir.join(".tollgate/dev.json")).unwrap()];
    texts.push(std::fs::read_to_string(dir.join(".tollgate/tokens.toml")).unwrap());
    for log in std::fs::read_dir(dir.join(".tollgate/logs")).unwrap() {
        texts.push(std::fs::read_to_string(log.unwrap().path()).unwrap_or_default());
    }
    let secret = format!("tg_{}", "ab".repeat(32));
    let dumped = Command::new(super::processes::bin("tollgate-gate"))
        .arg("--dump-config")
        .env("TOLLGATE_TOKEN", &secret)
        .output()
        .unwrap();
    let dumped = text(&dumped);
    assert!(dumped.contains("<redacted>"), "{dumped}");
    texts.push(dumped);
    // Nor any NATS credential: the stack's nats-server checks a user per identity.
    let seeds: Vec<String> = std::fs::read_dir(dir.join(".tollgate/nats-auth"))
        .unwrap()
        .filter_map(|f| std::fs::read_to_string(f.unwrap().path()).ok())
        .filter_map(|t| tollgate_bus::access::parse_creds(&t).ok())
        .map(|(_, seed)| seed)
        .collect();
    assert_eq!(
        seeds.len(),
        tollgate_bus::access::Identity::ALL.len(),
        "a .creds file per identity"
    );
    for t in &texts {
        for seed in &seeds {
            assert!(!t.contains(seed.as_str()), "an nkey seed leaked");
        }
        assert!(!t.contains(cli_token.trim()), "the CLI's token leaked");
        assert!(!t.contains(&secret), "a configured token leaked");
        assert!(
            token_in(t).is_none(),
            "a token-shaped secret: {:?}",
            token_in(t)
        );
    }

    // A second stack on the same directory is refused, with the running one's addresses.
    let second = run(dir, &["dev"]);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        text(&second).contains("already running") && text(&second).contains("nats://127.0.0.1:"),
        "{}",
        text(&second)
    );

    // Ctrl-C stops nats-server and every service.
    let children = child_pids(dir);
    assert_eq!(
        children.len(),
        8,
        "nats-server, six services and the model server"
    );
    signal(&dev, "-INT");
    let status = dev.wait().unwrap();
    assert!(status.success(), "tollgate dev on SIGINT: {status}");
    for pid in children {
        assert!(gone(pid), "child {pid} still running after Ctrl-C");
    }
    assert!(!dir.join(".tollgate/dev.json").exists());

    // Started again (services in-process): the version and the run are still there.
    let mut dev = start_dev(dir, &[], &dir.join("dev-2.out"));
    let out = run(dir, &["models", "churn"]);
    assert!(
        out.status.success() && text(&out).contains("v1"),
        "{}",
        text(&out)
    );
    let out = run(dir, &["runs"]);
    assert!(text(&out).contains("passed"), "{}", text(&out));

    // Killed outright, it leaves a stale lock and an orphaned nats-server: the next start
    // clears both and runs.
    signal(&dev, "-KILL");
    let _ = dev.wait();
    let mut dev = start_dev(dir, &[], &dir.join("dev-3.out"));
    let screen = std::fs::read_to_string(dir.join("dev-3.out")).unwrap();
    assert!(screen.contains("cleared a stale lock"), "{screen}");
    let out = run(dir, &["models", "churn"]);
    assert!(text(&out).contains("v1"), "{}", text(&out));
    signal(&dev, "-INT");
    assert!(dev.wait().unwrap().success());
}

/// The CI template's model step, run by `tests/ci/workflow-step.sh` as a runner would.
fn workflow_step(dir: &Path, summary: &Path, spec: &Path) -> Output {
    Command::new("bash")
        .arg(workspace_root().join("tests/ci/workflow-step.sh"))
        .args([summary, spec, &dir.join("churn.parquet")])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path_with_tools())
        .env("TOLLGATE_BIN", bin("tollgate"))
        .env("TOLLGATE_DATA_DIR", dir.join(".tollgate"))
        .output()
        .unwrap()
}

#[test]
fn the_ci_template_step_exits_by_the_verdict_and_writes_the_job_summary() {
    let tmp = with_data();
    let dir = tmp.path();
    let mut dev = start_dev(dir, &[], &dir.join("dev.out"));
    let spec = workspace_root().join("examples/churn/tollgate.yaml");
    let summary = dir.join("summary.md");
    // What `make ci-up` does after starting the stack: the model's policy is applied.
    let applied = run(dir, &["apply", spec.to_str().unwrap()]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));

    let out = workflow_step(dir, &summary, &spec);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("## Tollgate: churn PASSED"), "{md}");
    assert!(
        md.contains("commit `0123abcd` · PR #7 · [CI run](https://github.example/acme/churn/actions/runs/42)"),
        "{md}"
    );
    assert!(
        md.contains("| stage | status | duration | message |"),
        "{md}"
    );
    assert!(md.contains("| gate | passed |"), "{md}");
    assert!(md.contains("| auc_roc | "), "{md}");

    // A pull request that raises a gate the model cannot meet: exit 1, and the summary
    // shows the failing check.
    let strict = dir.join("strict.yaml");
    let raised = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("f1: {min: 0.70}", "f1: {min: 0.999}");
    std::fs::write(&strict, raised).unwrap();
    let out = workflow_step(dir, &summary, &strict);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("## Tollgate: churn BLOCKED"), "{md}");
    assert!(
        md.contains("| f1 | ") && md.contains("| >= 0.999 | FAIL |"),
        "{md}"
    );

    // The same report for a pull-request comment.
    let run_id = text(&out)
        .split("(run ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_string();
    let report = run(dir, &["report", &run_id, "--format", "markdown"]);
    assert!(report.status.success(), "{}", text(&report));
    assert!(
        text(&report).contains("## Tollgate: churn BLOCKED"),
        "{}",
        text(&report)
    );
    signal(&dev, "-INT");
    assert!(dev.wait().unwrap().success());
}
