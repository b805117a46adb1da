//! The user's own code in Tollgate: what lets a team bring its `train.py` and its pytest
//! gates instead of the built-in learners.
//!
//! # Layout
//! - [`snapshot`]: the spec's folder packed into one content-addressed archive (minus
//!   `.git/` and what `.gitignore` and `.tollgateignore` exclude), which travels with a
//!   run and unpacks into a temp dir for the stage that runs the code.
//! - [`command`]: running a command line there in a scrubbed environment (only the
//!   documented `TOLLGATE_*` variables and `PATH`/`HOME`-style basics), its own process
//!   group, lines streamed as they come, stopped on timeout or shutdown.
//! - [`junit`]: JUnit XML (pytest's `--junitxml`) read into one row per test case.
//! - [`suite`]: the spec's `tests:` run against a served version.
//! - [`throttle`]: how many of a command's lines become run progress.
//! - [`vars`]: the names of the variables a command gets.

pub mod command;
pub mod junit;
pub mod snapshot;
pub mod suite;
pub mod throttle;
pub mod vars;

pub use command::{CommandError, Finished, Invocation, Stream};
pub use snapshot::{Snapshot, SnapshotError};
