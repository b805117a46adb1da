//! The spec's `tests.gate`: the user's own tests run against the candidate, served on
//! loopback, with the held-out test rows beside it. Each JUnit test case becomes a check
//! row (its message in the note); a command that writes no JUnit is one row. Any failure
//! blocks the version with the failing test names and the output's last lines.

use tollgate_ml::train::prepare;
use tollgate_pipeline::{StageContext, StageError};
use tollgate_proto::{CheckVerdict, Comparison, GateCheck, Run};
use tollgate_spec::ModelSpec;
use tollgate_usercode::{
    CommandError,
    junit::Outcome,
    suite::{self, TestRun},
};

/// Runs the gate tests against the server at `server_url`; returns their check rows.
pub async fn run(
    ctx: &StageContext,
    run: &Run,
    spec: &ModelSpec,
    data: &std::path::Path,
    server_url: &str,
) -> Result<Vec<GateCheck>, StageError> {
    let code = tollgate_service::code::unpack(ctx, run, "the spec lists tests.gate").await?;
    let test_data = code.root().join("test.parquet");
    let (spec_copy, data_copy, out) = (spec.clone(), data.to_path_buf(), test_data.clone());
    tokio::task::spawn_blocking(move || {
        let prepared = prepare(&spec_copy, &data_copy)?;
        tollgate_ml::data::write_rows(&data_copy, &prepared.test_rows, &out)?;
        Ok::<_, tollgate_ml::ModelError>(())
    })
    .await
    .map_err(|source| StageError::Task {
        what: "writing the test rows",
        source,
    })?
    .map_err(StageError::invalid)?;
    let target = suite::Target {
        server_url: server_url.into(),
        model: run.model.clone(),
        version: run.model_version,
        test_data: Some(test_data),
    };
    let (tx, relay) = tollgate_service::code::relay(ctx);
    let runs = suite::run(&spec.tests.gate, &code.code, &target, &tx, ctx.stop()).await;
    drop(tx);
    let _ = relay.await;
    match runs {
        Ok(runs) => Ok(runs.iter().flat_map(checks_of).collect()),
        Err(CommandError::Stopped { .. }) => Err(StageError::Interrupted),
        Err(e) => Err(StageError::Input(e.to_string())),
    }
}

/// One test check row: observed 1 when it passed, required at least 1.
fn row(name: String, verdict: CheckVerdict, note: String) -> GateCheck {
    GateCheck {
        name,
        observed: f64::from(u8::from(verdict == CheckVerdict::Pass)),
        threshold: 1.0,
        comparison: Comparison::AtLeast as i32,
        verdict: verdict as i32,
        note,
        test: true,
    }
}

/// The check rows of one test command: a row per JUnit case, and a row for the command
/// itself when it failed beyond its cases (or wrote none).
pub fn checks_of(t: &TestRun) -> Vec<GateCheck> {
    let mut rows: Vec<GateCheck> = t
        .cases
        .iter()
        .map(|c| {
            let verdict = match c.outcome {
                Outcome::Passed => CheckVerdict::Pass,
                Outcome::Skipped => CheckVerdict::Skipped,
                Outcome::Failed | Outcome::Error => CheckVerdict::Fail,
            };
            row(
                format!("{}: {}", t.name, c.name),
                verdict,
                c.message.clone(),
            )
        })
        .collect();
    let cases_failed = rows.iter().any(|r| r.verdict() == CheckVerdict::Fail);
    if t.cases.is_empty() || (!t.passed() && !cases_failed) {
        let (verdict, note) = if t.passed() {
            (CheckVerdict::Pass, String::new())
        } else {
            (CheckVerdict::Fail, t.failure())
        };
        rows.push(row(t.name.clone(), verdict, note));
    } else if cases_failed
        && let Some(last) = rows
            .iter_mut()
            .rev()
            .find(|r| r.verdict() == CheckVerdict::Fail)
    {
        // The command's own output says what the cases' messages do not.
        let tail = t
            .finished
            .as_ref()
            .map(|f| f.last_lines_of_both(4))
            .unwrap_or_default();
        if !tail.is_empty() {
            last.note = format!("{}; last lines: {tail}", last.note);
        }
    }
    if let Some(e) = &t.junit_error {
        rows.push(row(
            format!("{}: JUnit XML", t.name),
            CheckVerdict::Fail,
            e.clone(),
        ));
    }
    rows
}
