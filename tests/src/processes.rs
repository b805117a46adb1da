//! The workspace's binaries run as separate processes, as `make demo` and Kubernetes
//! run them: found beside the running test or bench binary, started with an environment,
//! stopped with SIGTERM or killed when dropped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use crate::{NatsServer, free_port};

/// Where the workspace's binaries are: `target/<profile>`, from a test binary in its
/// `deps/` or a binary (the bench) beside them.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().map(Path::to_path_buf).unwrap_or(dir),
        _ => dir,
    }
}

/// A binary of the workspace, built next to the test binary.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// Runs `command` to its end and returns its output, failing with its stderr unless it
/// exited 0.
pub fn succeeded(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Service processes started from the built binaries; killed when dropped.
#[derive(Default)]
pub struct Services {
    children: Vec<(String, Child)>,
    /// Where each service's stderr goes as `<name>.log`; discarded when `None`.
    logs: Option<PathBuf>,
}

/// The environment the services and the CLI share: a NATS server, a registry address
/// and a dataset cache under `dir`.
pub fn service_env(nats: &NatsServer, dir: &Path) -> Vec<(&'static str, String)> {
    service_env_at(&nats.url, dir)
}

/// [`service_env`] for the NATS server(s) at `nats_url` (a cluster's nodes,
/// comma-separated).
pub fn service_env_at(nats_url: &str, dir: &Path) -> Vec<(&'static str, String)> {
    let grpc = format!("127.0.0.1:{}", free_port().unwrap());
    let mut env = vec![
        ("TOLLGATE_NATS_URL", nats_url.to_string()),
        ("TOLLGATE_GRPC_ADDR", grpc.clone()),
        ("TOLLGATE_REGISTRY_URL", format!("http://{grpc}")),
        (
            "TOLLGATE_CACHE_DIR",
            dir.join("cache").display().to_string(),
        ),
        ("TOLLGATE_DATA_ROOTS", dir.display().to_string()),
    ];
    // ONNX Runtime's library as this process finds it (the venv `make` installs), for
    // binaries started from a target dir outside the repository.
    if let Ok(library) = tollgate_ml::onnx::runtime::library() {
        env.push(("ORT_DYLIB_PATH", library.display().to_string()));
    }
    env
}

impl Services {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// No services yet; those spawned will write their logs to `dir/<name>.log`.
    pub fn logging_to(dir: &Path) -> Self {
        Services {
            children: Vec::new(),
            logs: Some(dir.to_path_buf()),
        }
    }

    /// Starts `tollgate-<name>` for each name with `env`, each on its own health port;
    /// returns (name, health address).
    pub fn spawn(
        &mut self,
        env: &[(&str, String)],
        names: &[&'static str],
    ) -> Vec<(&'static str, String)> {
        let mut health = Vec::new();
        for &name in names {
            let mut cmd = Command::new(bin(&format!("tollgate-{name}")));
            cmd.stdout(Stdio::null());
            match &self.logs {
                Some(dir) => {
                    // A second replica of a service logs to `<name>-2.log`.
                    let replica = self.pids(name).len() + 1;
                    let log = match replica {
                        1 => format!("{name}.log"),
                        n => format!("{name}-{n}.log"),
                    };
                    let file = std::fs::File::create(dir.join(log)).unwrap();
                    cmd.stderr(file)
                }
                None => cmd.stderr(Stdio::null()),
            };
            for (k, v) in env {
                cmd.env(k, v);
            }
            let health_addr = format!("127.0.0.1:{}", free_port().unwrap());
            cmd.env("TOLLGATE_HEALTH_ADDR", &health_addr);
            health.push((name, health_addr));
            self.children.push((name.into(), cmd.spawn().unwrap()));
        }
        health
    }

    /// The process ids of the replicas of `name`, in the order they were started.
    pub fn pids(&self, name: &str) -> Vec<u32> {
        self.children
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c.id())
            .collect()
    }

    /// Takes the process with `pid` out of the set.
    pub fn take_pid(&mut self, pid: u32) -> Child {
        let i = self
            .children
            .iter()
            .position(|(_, c)| c.id() == pid)
            .unwrap();
        self.children.remove(i).1
    }

    /// Takes one service's process out of the set.
    pub fn take(&mut self, name: &str) -> Child {
        let i = self.children.iter().position(|(n, _)| n == name).unwrap();
        self.children.remove(i).1
    }

    /// Sends each process SIGTERM and asserts it exits cleanly.
    pub fn stop_gracefully(mut self) {
        for (name, child) in &mut self.children {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "{name} did not exit cleanly on SIGTERM: {status}"
            );
        }
        self.children.clear();
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
