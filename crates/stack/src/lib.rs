//! The Tollgate stack as one thing to start: the services hosted in one process or run
//! as processes, the nats-server child, and the state a running `tollgate dev` leaves for
//! the CLI to find.
//!
//! This is the only crate that depends on the service crates: the CLI (`tollgate dev`,
//! and local training with the trainer's command runner) and the end-to-end tests depend
//! on it, and reach a service's own types through [`services`].
//!
//! # Layout
//! - [`host`]: the services hosted in this process, each signed in as itself.
//! - [`processes`]: the service binaries as separate processes, as Kubernetes runs them.
//! - [`children`]: the pinned nats-server, free ports, log files, stopping children.
//! - [`discover`]: the running dev stack's data directory, state file and lock.

pub mod children;
pub mod discover;
pub mod host;
pub mod processes;

pub use discover::{DEFAULT_DATA_DIR, DevState, discover};
pub use host::{Hosted, ServerHosting, ServiceTokens, host_services};

use std::path::{Path, PathBuf};

/// The service crates, for what the CLI and the tests use of them directly (a service's
/// config, the trainer's command runner, the registry's run metrics).
pub mod services {
    pub use tollgate_data_validator as data_validator;
    pub use tollgate_gate as gate;
    pub use tollgate_promoter as promoter;
    pub use tollgate_registry as registry;
    pub use tollgate_server as server;
    pub use tollgate_trainer as trainer;
    pub use tollgate_trigger_watcher as trigger_watcher;
}

/// The six pipeline services, as a stack starts them (the model server is optional).
pub const SERVICES: [&str; 6] = [
    "registry",
    "trigger-watcher",
    "data-validator",
    "trainer",
    "gate",
    "promoter",
];

/// Why a stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// Something the stack needs is missing or refused, as this says.
    #[error("{0}")]
    Setup(String),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl StackError {
    /// A file error on `path`.
    pub fn file(path: &Path, source: std::io::Error) -> Self {
        StackError::File {
            path: path.to_path_buf(),
            source,
        }
    }
}
