//! The user's tests (`tests.gate`, `tests.integration` in the spec), run one after the
//! other against a served version: each command in the copy of the spec's folder with the
//! server's URL, the model and version (and, at the gate, the held-out rows), and where to
//! write JUnit XML. A command that writes it reports one result per test case; one that
//! does not, one result for itself.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tollgate_spec::TestCommand;

use crate::{
    CommandError, Invocation,
    command::{self, Finished},
    junit::{self, Case, Outcome},
    vars,
};

/// What a suite runs against.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Open Inference Protocol base URL serving the version (`http://host:port`).
    pub server_url: String,
    /// The model.
    pub model: String,
    /// The version.
    pub version: u32,
    /// The held-out test rows as Parquet (the gate's tests only).
    pub test_data: Option<PathBuf>,
}

/// How one test command went.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The spec's name for it.
    pub name: String,
    /// How the command ended (`None` when it could not start or ran past its timeout).
    pub finished: Option<Finished>,
    /// Why it has no [`Finished`], when it has none.
    pub error: Option<String>,
    /// Its JUnit cases, when it wrote the file.
    pub cases: Vec<Case>,
    /// The JUnit file could not be read, and why.
    pub junit_error: Option<String>,
}

impl TestRun {
    /// Whether it passed: exit 0, and no failed or errored case.
    pub fn passed(&self) -> bool {
        self.finished.as_ref().is_some_and(Finished::success)
            && self
                .cases
                .iter()
                .all(|c| matches!(c.outcome, Outcome::Passed | Outcome::Skipped))
    }

    /// The failed and errored cases' names.
    pub fn failed_cases(&self) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed | Outcome::Error))
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Why it failed, for a person: the failing test names, the exit status, the last
    /// lines of output.
    pub fn failure(&self) -> String {
        let mut parts = Vec::new();
        let failed = self.failed_cases();
        if !failed.is_empty() {
            parts.push(format!("failing tests: {}", failed.join(", ")));
        }
        match (&self.finished, &self.error) {
            (Some(f), _) => {
                parts.push(f.status());
                let last = f.last_lines_of_both(6);
                if !last.is_empty() {
                    parts.push(format!("last lines: {last}"));
                }
            }
            (None, Some(e)) => parts.push(e.clone()),
            (None, None) => {}
        }
        format!("test {} failed: {}", self.name, parts.join("; "))
    }
}

/// Runs `tests` in `dir` against `target`, in order; each line they print goes to
/// `progress`. A stop request ends the suite at once with [`CommandError::Stopped`].
pub async fn run(
    tests: &[TestCommand],
    dir: &Path,
    target: &Target,
    progress: &mpsc::UnboundedSender<String>,
    stop: &CancellationToken,
) -> Result<Vec<TestRun>, CommandError> {
    let scratch = dir.join(".tollgate");
    let _ = tokio::fs::create_dir_all(&scratch).await;
    let mut runs = Vec::new();
    for (i, test) in tests.iter().enumerate() {
        let junit = scratch.join(format!("junit-{i}.xml"));
        let _ = tokio::fs::remove_file(&junit).await;
        let junit_path = junit.display().to_string();
        let mut env = vec![
            (vars::SERVER_URL.to_string(), target.server_url.clone()),
            (vars::MODEL.to_string(), target.model.clone()),
            (vars::VERSION.to_string(), target.version.to_string()),
            (vars::JUNIT_XML.to_string(), junit_path.clone()),
            (
                vars::PYTEST_ADDOPTS.to_string(),
                format!("--junitxml={junit_path}"),
            ),
        ];
        if let Some(data) = &target.test_data {
            env.push((vars::TEST_DATA.to_string(), data.display().to_string()));
        }
        let invocation = Invocation {
            line: test.run.clone(),
            dir: dir.to_path_buf(),
            env,
            timeout: test.timeout(),
        };
        let _ = progress.send(format!(
            "test {}: `{}` against {} v{} at {}",
            test.name, test.run, target.model, target.version, target.server_url
        ));
        let (finished, error) = match command::run_to_progress(&invocation, progress, stop).await {
            Ok(f) => (Some(f), None),
            Err(e @ CommandError::Stopped { .. }) => return Err(e),
            Err(e) => (None, Some(e.to_string())),
        };
        let (cases, junit_error) = match tokio::fs::read_to_string(&junit).await {
            Ok(text) => match junit::parse(&text) {
                Ok(cases) => (cases, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            },
            Err(_) => (Vec::new(), None),
        };
        let run = TestRun {
            name: test.name.clone(),
            finished,
            error,
            cases,
            junit_error,
        };
        let _ = progress.send(if run.passed() {
            format!(
                "test {} passed{}",
                run.name,
                if run.cases.is_empty() {
                    String::new()
                } else {
                    format!(" ({} cases)", run.cases.len())
                }
            )
        } else {
            run.failure()
        });
        runs.push(run);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests;
