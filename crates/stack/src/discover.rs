//! Finding the running `tollgate dev` stack: its data directory (`TOLLGATE_DATA_DIR`, or
//! the nearest `.tollgate/`), the state file it writes and the lock it holds. The CLI's
//! commands and a second `tollgate dev` read it; only `tollgate dev` writes it.

use std::{
    fs::{File, TryLockError},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The data directory when none is given.
pub const DEFAULT_DATA_DIR: &str = ".tollgate";

/// The file a running stack writes its addresses and pids to, in its data directory.
pub const STATE_FILE: &str = "dev.json";

/// The file a running stack holds a lock on, in its data directory.
pub const LOCK_FILE: &str = "dev.lock";

/// What a running dev stack writes for the CLI and for a second `tollgate dev`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DevState {
    /// The `tollgate dev` process.
    pub pid: u32,
    /// Where clients reach NATS.
    pub nats_url: String,
    /// Where clients reach the registry's gRPC API.
    pub registry_url: String,
    /// Where the model server answers the Open Inference Protocol; empty: no server.
    #[serde(default)]
    pub server_url: String,
    /// Where the model server answers the protocol's gRPC side (`host:port`); empty: no
    /// server.
    #[serde(default)]
    pub server_grpc_addr: String,
    /// The registry's dashboard.
    #[serde(default)]
    pub dashboard_url: String,
    /// The registry's token file; empty when the stack runs open (`--open`).
    #[serde(default)]
    pub tokens_file: String,
    /// The file holding the token the CLI calls the stack's registry with.
    #[serde(default)]
    pub cli_token_file: String,
    /// The `.creds` file the CLI signs in to the stack's NATS with (the `operator`
    /// identity); empty when NATS is open.
    #[serde(default)]
    pub nats_creds: String,
    /// The nats-server child.
    pub nats_pid: u32,
    /// The service children (`--processes` only): name and pid.
    pub service_pids: Vec<(String, u32)>,
    /// Whether the services run as separate processes.
    pub processes: bool,
}

/// The running dev stack whose data directory is `TOLLGATE_DATA_DIR`, or the nearest
/// `.tollgate/` from the current directory up; `None` when no stack holds its lock.
pub fn discover() -> Option<DevState> {
    let dir = match std::env::var_os("TOLLGATE_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_dir()
            .ok()?
            .ancestors()
            .map(|d| d.join(DEFAULT_DATA_DIR))
            .find(|d| d.join(STATE_FILE).exists())?,
    };
    running(&dir)
}

/// The state of the stack that holds `dir`'s lock, if one does.
pub fn running(dir: &Path) -> Option<DevState> {
    let lock = File::open(dir.join(LOCK_FILE)).ok()?;
    match lock.try_lock() {
        Err(TryLockError::WouldBlock) => read_state(dir),
        _ => None,
    }
}

/// The state file in `dir`, whether or not a stack still holds its lock.
pub fn read_state(dir: &Path) -> Option<DevState> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}
