//! The spec's keys for the user's own code: a training command
//! (`algorithm: {kind: command, run: ...}`) and the user's tests, run as gate and
//! integration checks (`tests: {gate: [...], integration: [...]}`). Both run in a copy of
//! the spec's folder that travels with the run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest a training command or a test may be given, in minutes (a day).
pub const MAX_COMMAND_MINUTES: u64 = 24 * 60;

/// `algorithm: {kind: command}`: the user's training code, which writes an ONNX model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainCommand {
    /// The command line, with its own options (`python3 train.py --max-depth 6`), run by
    /// `sh -c` in a copy of the spec's folder.
    pub run: String,
    /// Minutes the command may take; past them the run ends `failed`.
    #[serde(default = "default_train_minutes")]
    pub timeout_minutes: u64,
}

fn default_train_minutes() -> u64 {
    60
}

fn default_test_minutes() -> u64 {
    10
}

/// One of the user's test commands (pytest, or anything that exits 0 when it passes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestCommand {
    /// The check's name in the gate table and the step summary.
    pub name: String,
    /// The command line, run by `sh -c` in a copy of the spec's folder.
    pub run: String,
    /// Minutes it may take; past them it fails.
    #[serde(default = "default_test_minutes")]
    pub timeout_minutes: u64,
}

/// `tests:`: the user's own tests, against a served version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tests {
    /// Run by the gate against the candidate, served on loopback; a failure blocks it.
    #[serde(default)]
    pub gate: Vec<TestCommand>,
    /// Run by the integration stage against the Staging server; a failure fails the stage.
    #[serde(default)]
    pub integration: Vec<TestCommand>,
}

/// How long a command given `minutes` may run.
pub fn minutes(minutes: u64) -> Duration {
    Duration::from_secs(minutes * 60)
}

fn check_minutes(what: &str, minutes: u64) -> Result<(), String> {
    if (1..=MAX_COMMAND_MINUTES).contains(&minutes) {
        Ok(())
    } else {
        Err(format!(
            "{what}.timeout_minutes must be between 1 and {MAX_COMMAND_MINUTES}, got {minutes}"
        ))
    }
}

fn check_run(what: &str, run: &str) -> Result<(), String> {
    if run.trim().is_empty() {
        return Err(format!("{what}.run: give the command line to run"));
    }
    if run.contains('\0') {
        return Err(format!("{what}.run holds a NUL byte"));
    }
    Ok(())
}

impl TrainCommand {
    /// How long the command may run.
    pub fn timeout(&self) -> Duration {
        minutes(self.timeout_minutes)
    }

    /// Checks the command line and its timeout; the message names the field.
    pub(crate) fn check(&self, what: &str) -> Result<(), String> {
        check_run(what, &self.run)?;
        check_minutes(what, self.timeout_minutes)
    }
}

impl TestCommand {
    /// How long the test may run.
    pub fn timeout(&self) -> Duration {
        minutes(self.timeout_minutes)
    }
}

impl Tests {
    /// Whether the spec lists no tests at all.
    pub fn is_empty(&self) -> bool {
        self.gate.is_empty() && self.integration.is_empty()
    }

    /// The time all of a list's tests may take together.
    pub fn total(list: &[TestCommand]) -> Duration {
        list.iter().map(TestCommand::timeout).sum()
    }

    /// Checks every test: a name unique in its list, a command line, a timeout in bounds.
    pub(crate) fn check(&self) -> Result<(), String> {
        for (list, tests) in [("gate", &self.gate), ("integration", &self.integration)] {
            let mut names = std::collections::BTreeSet::new();
            for (i, t) in tests.iter().enumerate() {
                let what = format!("tests.{list}[{i}]");
                if t.name.trim().is_empty() {
                    return Err(format!("{what}.name: give the check a name"));
                }
                if !names.insert(t.name.as_str()) {
                    return Err(format!(
                        "tests.{list}: two tests are named {:?}; names must differ",
                        t.name
                    ));
                }
                check_run(&what, &t.run)?;
                check_minutes(&what, t.timeout_minutes)?;
            }
        }
        Ok(())
    }
}
