//! Shutdown always ends: every service exits within its `shutdown_grace_secs` (and a
//! second more) on SIGTERM even with nats-server gone, and `tollgate dev` stops within
//! 2 s when nothing is computing, within the grace mid-run, and at once on a second Ctrl-C.

use std::{
    process::Child,
    time::{Duration, Instant},
};

use tollgate_e2e::{NatsServer, free_port};

use super::dev::{run, signal, start_dev, text, with_data};
use super::processes::{Services, forest_spec, get_healthz, publish_forest, service_env};

/// How long a process took to exit and whether it exited cleanly; `None`: it did not.
type Exit = Option<(Duration, bool)>;

/// The grace the tests give: short, so a wait past it shows.
const GRACE_SECS: u64 = 3;

/// How long each process took to exit after SIGTERM, sent to all at once, and whether it
/// exited cleanly; a process still running after `limit` is killed and reported as `None`.
fn terminate_all(children: Vec<(String, Child)>, limit: Duration) -> Vec<(String, Exit)> {
    let sent = Instant::now();
    for (_, child) in &children {
        signal(child, "-TERM");
    }
    let mut children: Vec<(String, Child, Exit)> =
        children.into_iter().map(|(n, c)| (n, c, None)).collect();
    while sent.elapsed() < limit && children.iter().any(|(_, _, took)| took.is_none()) {
        for (_, child, took) in &mut children {
            if took.is_none()
                && let Ok(Some(status)) = child.try_wait()
            {
                *took = Some((sent.elapsed(), status.success()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    children
        .into_iter()
        .map(|(name, mut child, took)| {
            if took.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            (name, took)
        })
        .collect()
}

/// Every pipeline service and the model server as processes on `env`, with the short grace.
fn spawn_all(
    services: &mut Services,
    env: &mut Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    env.push(("TOLLGATE_SHUTDOWN_GRACE_SECS", GRACE_SECS.to_string()));
    env.push(("TOLLGATE_SERVER_MODELS", "churn@Production".into()));
    for key in ["TOLLGATE_SERVER_ADDR", "TOLLGATE_SERVER_GRPC_ADDR"] {
        env.push((key, format!("127.0.0.1:{}", free_port().unwrap())));
    }
    let mut names: Vec<&'static str> = tollgate_stack::SERVICES.to_vec();
    names.push("server");
    services.spawn(env, &names)
}

/// Every process exited cleanly within `limit`.
fn assert_all_within(took: &[(String, Exit)], limit: Duration, when: &str) {
    let late: Vec<_> = took
        .iter()
        .filter(|(_, t)| t.is_none_or(|(t, clean)| t > limit || !clean))
        .collect();
    assert!(
        late.is_empty(),
        "{when}: not exited within {limit:?}: {late:?} (all: {took:?})"
    );
}

#[test]
fn every_service_exits_within_its_grace_on_sigterm_with_nats_server_gone() {
    let limit = Duration::from_secs(GRACE_SECS + 2);
    let dir = tempfile::tempdir().unwrap();

    // Connected and consuming (the trainer training), then nats-server dies under them.
    let nats = NatsServer::start().unwrap();
    let mut env = service_env(&nats, dir.path());
    let mut services = Services::logging_to(dir.path());
    for (name, addr) in spawn_all(&mut services, &mut env) {
        if name != "server" {
            assert!(get_healthz(&addr).contains("ok"), "{name} on {addr}");
        }
    }
    // A forest is growing in the trainer when nats-server dies under them all.
    let (mut watch, lines, _) = publish_forest(&env, dir.path(), 400);
    let _ = lines.wait_for("random forest: ");
    let _ = watch.kill();
    let _ = watch.wait();
    drop(nats);
    std::thread::sleep(Duration::from_secs(1));
    stop_within(services, limit, "nats-server gone");

    // Never connected: nats-server was never there to begin with.
    let mut env = service_env_at_nowhere(dir.path());
    let mut services = Services::logging_to(dir.path());
    spawn_all(&mut services, &mut env);
    std::thread::sleep(Duration::from_secs(2));
    stop_within(services, limit, "nats-server never there");
}

/// Sends SIGTERM to every service at once and asserts each exits cleanly within `limit`.
fn stop_within(mut services: Services, limit: Duration, when: &str) {
    let children = tollgate_stack::SERVICES
        .iter()
        .chain(&["server"])
        .map(|&n| (n.to_string(), services.take(n)))
        .collect();
    assert_all_within(
        &terminate_all(children, limit + Duration::from_secs(10)),
        limit,
        when,
    );
}

/// The services' environment with NATS on a port nothing listens on.
fn service_env_at_nowhere(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let url = format!("nats://127.0.0.1:{}", free_port().unwrap());
    super::processes::service_env_at(&url, dir)
}

/// `tollgate publish data --spec SPEC --dataset churn.parquet --wait`.
fn publish_and_wait(spec: &str) -> [&str; 9] {
    let data = "churn.parquet";
    [
        "publish",
        "data",
        "--spec",
        spec,
        "--dataset",
        data,
        "--wait",
        "--timeout",
        "120",
    ]
}

/// [`publish_and_wait`] against the dev stack in `dir`, once the forest it trains is
/// growing.
fn training_under_dev(dir: &std::path::Path, spec: &str) -> Child {
    let mut training = super::dev::tollgate(dir)
        .args(publish_and_wait(spec))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = super::processes::WatchLines::new(training.stdout.take().unwrap());
    let _ = lines.wait_for("random forest: ");
    training
}

/// Seconds from Ctrl-C to `tollgate dev`'s exit, and its exit status.
fn ctrl_c(dev: &mut Child, times: usize, limit: Duration) -> (Duration, Option<i32>) {
    let sent = Instant::now();
    for _ in 0..times {
        signal(dev, "-INT");
        std::thread::sleep(Duration::from_millis(100));
    }
    while sent.elapsed() < limit {
        if let Ok(Some(status)) = dev.try_wait() {
            eprintln!(
                "tollgate dev exited {status} {:?} after {times} Ctrl-C",
                sent.elapsed()
            );
            return (sent.elapsed(), status.code());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = dev.kill();
    let _ = dev.wait();
    (sent.elapsed(), None)
}

#[test]
fn tollgate_dev_stops_in_two_seconds_idle_within_the_grace_mid_run_and_at_once_on_a_second_ctrl_c()
{
    let tmp = with_data();
    let dir = tmp.path();
    let grace = GRACE_SECS.to_string();
    let args = ["--shutdown-grace-secs", grace.as_str()];
    let spec = tollgate_e2e::workspace_root().join("examples/churn/tollgate.yaml");
    let spec = spec.to_str().unwrap();

    // After a run reached Staging (its integration stage done), nothing is computing.
    let mut dev = start_dev(dir, &args, &dir.join("dev-1.out"));
    let applied = run(dir, &["apply", spec]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let out = run(dir, &publish_and_wait(spec));
    assert!(text(&out).contains("verdict: PASSED"), "{}", text(&out));
    let (took, code) = ctrl_c(&mut dev, 1, Duration::from_secs(30));
    assert_eq!(code, Some(0), "after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "idle stack stopped in {took:?}"
    );

    // Mid-training: the trainer stops at a checkpoint and the run goes back to the queue.
    let mut dev = start_dev(dir, &args, &dir.join("dev-2.out"));
    let forest = forest_spec(dir, 400);
    let forest = forest.to_str().unwrap();
    let applied = run(dir, &["apply", forest]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let mut training = training_under_dev(dir, forest);
    let (took, code) = ctrl_c(&mut dev, 1, Duration::from_secs(60));
    assert_eq!(code, Some(0), "after {took:?}");
    assert!(
        took < Duration::from_secs(GRACE_SECS + 2),
        "mid-run stack stopped in {took:?}"
    );
    let _ = training.kill();
    let _ = training.wait();

    // Mid-training again, and Ctrl-C twice: everything stops at once.
    let mut dev = start_dev(dir, &args, &dir.join("dev-3.out"));
    let mut training = training_under_dev(dir, forest);
    let (took, code) = ctrl_c(&mut dev, 2, Duration::from_secs(60));
    assert_eq!(code, Some(130), "after {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "two Ctrl-C stopped in {took:?}"
    );
    let _ = training.kill();
    let _ = training.wait();
    let screen = std::fs::read_to_string(dir.join("dev-3.out")).unwrap();
    assert!(screen.contains("stopping at once"), "{screen}");
}
