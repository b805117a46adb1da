//! Unit tests of the parent module: real `sh` processes.

use std::time::Duration;

use super::*;

fn invocation(line: &str, timeout: Duration) -> (Invocation, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let invocation = Invocation {
        line: line.into(),
        dir: dir.path().to_path_buf(),
        env: vec![("TOLLGATE_MODEL".into(), "churn".into())],
        timeout,
    };
    (invocation, dir)
}

async fn collect(
    invocation: &Invocation,
    stop: &CancellationToken,
) -> (Result<Finished, CommandError>, Vec<(Stream, String)>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let result = run(invocation, tx, stop).await;
    let mut lines = Vec::new();
    while let Ok(line) = rx.try_recv() {
        lines.push(line);
    }
    (result, lines)
}

#[tokio::test]
async fn lines_stream_and_the_exit_status_is_kept() {
    let (inv, _dir) = invocation(
        "echo one; echo two >&2; echo model=$TOLLGATE_MODEL; exit 3",
        Duration::from_secs(10),
    );
    let (result, lines) = collect(&inv, &CancellationToken::new()).await;
    let finished = result.unwrap();
    assert_eq!(finished.code, Some(3));
    assert_eq!(finished.status(), "exit status 3");
    assert_eq!(finished.stderr_tail, ["two"]);
    assert!(lines.contains(&(Stream::Stdout, "one".into())));
    assert!(lines.contains(&(Stream::Stdout, "model=churn".into())));
    assert_eq!(finished.last_lines(3), "two");
}

#[tokio::test]
async fn the_environment_is_scrubbed() {
    let (inv, _dir) = invocation(
        "env | cut -d= -f1 | sort | tr '\\n' ' '",
        Duration::from_secs(10),
    );
    let (result, lines) = collect(&inv, &CancellationToken::new()).await;
    assert!(result.unwrap().success());
    let names = &lines[0].1;
    assert!(names.contains("TOLLGATE_MODEL"), "{names}");
    assert!(names.contains("PATH"), "{names}");
    for secret in ["TOLLGATE_TOKEN", "TOLLGATE_NATS_CREDS", "CARGO", "RUST"] {
        assert!(
            !names.split(' ').any(|n| n.starts_with(secret)),
            "{secret} reached the command: {names}"
        );
    }
}

#[tokio::test]
async fn a_timeout_stops_the_whole_process_group() {
    let (inv, dir) = invocation(
        "sh -c 'sleep 30; touch child-survived' & echo started; sleep 30",
        Duration::from_millis(500),
    );
    let started = Instant::now();
    let (result, _) = collect(&inv, &CancellationToken::new()).await;
    let err = result.unwrap_err();
    assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
    assert!(err.to_string().contains("started"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!dir.path().join("child-survived").exists());
}

#[tokio::test]
async fn a_stop_request_ends_it_at_once() {
    let (inv, _dir) = invocation("trap '' TERM; sleep 60", Duration::from_secs(60));
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stopper.cancel();
    });
    let started = Instant::now();
    let (result, _) = collect(&inv, &stop).await;
    assert!(matches!(result, Err(CommandError::Stopped { .. })));
    // SIGTERM is ignored: SIGKILL after the grace ends it.
    assert!(started.elapsed() < KILL_GRACE + Duration::from_secs(3));
}

#[tokio::test]
async fn a_missing_folder_is_a_spawn_error() {
    let (mut inv, _dir) = invocation("true", Duration::from_secs(5));
    inv.dir = "/nonexistent/tollgate".into();
    let (result, _) = collect(&inv, &CancellationToken::new()).await;
    assert!(matches!(result, Err(CommandError::Spawn { .. })));
}
