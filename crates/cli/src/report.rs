//! A run as Markdown: what `publish --wait` appends to `$GITHUB_STEP_SUMMARY` and what
//! `tollgate report RUN --format markdown` prints for a pull-request comment. Verdict,
//! each stage with its duration, the failing expectations, the gate's checks and the
//! metrics against the Production version.

use clap::ValueEnum;
use std::fmt::Write as _;

use tollgate_proto::{
    GetVersionRequest, LatestByStageRequest, ModelStage, ModelVersion, RunSummary, Stage,
};

use crate::{CliError, show::seconds};

/// Formats of `tollgate report`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// GitHub-flavoured Markdown.
    Markdown,
}

/// The metrics compared with Production, in this order.
const COMPARED: [&str; 5] = ["auc_roc", "f1", "precision", "recall", "accuracy"];

/// Escapes a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The run as Markdown; `candidate` and `production` add the metric deltas.
pub fn markdown(
    run: &RunSummary,
    candidate: Option<&ModelVersion>,
    production: Option<&ModelVersion>,
) -> String {
    let mut md = String::new();
    let verdict = run.verdict().name().to_uppercase();
    let total = (run.finished_unix_ms - run.created_unix_ms).max(0) as u64;
    let _ = writeln!(md, "## Tollgate: {} {verdict}\n", run.model);
    let mut facts = vec![
        format!("run `{}`", run.run_id),
        format!("{} trigger", run.trigger().name()),
        format!("{} in total", seconds(total)),
    ];
    if !run.code_commit.is_empty() {
        facts.push(format!("commit `{}`", run.code_commit));
    }
    if let Some(ci) = &run.ci {
        if ci.pull_request > 0 {
            facts.push(format!("PR #{}", ci.pull_request));
        }
        if !ci.run_url.is_empty() {
            facts.push(format!("[CI run]({})", ci.run_url));
        }
    }
    let _ = writeln!(md, "{}\n", facts.join(" · "));
    if !run.reason.is_empty() {
        let _ = writeln!(md, "**{verdict}**: {}\n", cell(&run.reason));
    }
    if !run.policy_changes.is_empty() {
        let _ = writeln!(
            md,
            "**Report-only**: this change's `tollgate.yaml` proposes policy changes, which only `tollgate apply` makes. It ran under the applied policy and does not promote:\n"
        );
        for change in &run.policy_changes {
            let _ = writeln!(md, "- {}", change.replace('|', "\\|"));
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(
        md,
        "| stage | status | duration | message |\n|---|---|---|---|"
    );
    for &code in &run.plan {
        let stage = Stage::try_from(code).unwrap_or_default();
        match run.stages.iter().find(|s| s.stage == code) {
            Some(s) => {
                let _ = writeln!(
                    md,
                    "| {stage} | {} | {} | {} |",
                    s.status().name(),
                    seconds(s.duration_ms),
                    cell(&s.message)
                );
            }
            None => {
                let _ = writeln!(md, "| {stage} | not run | - | |");
            }
        }
    }
    if let Some(v) = &run.validation {
        let failing: Vec<_> = v.results.iter().filter(|r| !r.success).collect();
        if !failing.is_empty() {
            let _ = writeln!(
                md,
                "\n### Failing expectations\n\n| expectation | column | unexpected | observed |\n|---|---|---|---|"
            );
            for r in failing {
                let unexpected = if r.error.is_empty() {
                    format!("{} of {}", r.unexpected_count, r.element_count)
                } else {
                    cell(&r.error)
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {unexpected} | {} |",
                    r.expectation_type,
                    cell(&r.column),
                    cell(&r.observed_value)
                );
            }
        }
    }
    if let Some(g) = &run.gate {
        let _ = writeln!(
            md,
            "\n### Gate checks\n\n| check | observed | threshold | verdict | note |\n|---|---|---|---|---|"
        );
        for c in &g.checks {
            let (observed, threshold) = crate::show::check_figures(c);
            let _ = writeln!(
                md,
                "| {} | {observed} | {threshold} | {} | {} |",
                cell(&c.name),
                c.verdict().name(),
                cell(&c.note)
            );
        }
    }
    if let (Some(new), Some(prod)) = (candidate, production)
        && new.version != prod.version
    {
        let _ = writeln!(
            md,
            "\n### Metrics against Production\n\n| metric | v{} (this run) | v{} (Production) | change |\n|---|---|---|---|",
            new.version, prod.version
        );
        for name in COMPARED {
            if let (Some(a), Some(b)) = (new.metrics.get(name), prod.metrics.get(name)) {
                let _ = writeln!(md, "| {name} | {a:.4} | {b:.4} | {:+.4} |", a - b);
            }
        }
    } else if candidate.is_some() && production.is_none() {
        let _ = writeln!(md, "\nNo Production version to compare with yet.");
    }
    md
}

/// The run's version and the model's Production version, when the registry has them.
pub async fn versions(
    registry: &mut tollgate_proto::RegistryApi,
    run: &RunSummary,
) -> (Option<ModelVersion>, Option<ModelVersion>) {
    if run.model_version == 0 {
        return (None, None);
    }
    let candidate = registry
        .get_version(GetVersionRequest {
            model: run.model.clone(),
            version: run.model_version,
        })
        .await
        .ok()
        .map(|r| r.into_inner());
    let production = registry
        .latest_by_stage(LatestByStageRequest {
            model: run.model.clone(),
            stage: ModelStage::Production as i32,
        })
        .await
        .ok()
        .map(|r| r.into_inner());
    (candidate, production)
}

/// `tollgate report RUN --format markdown`.
pub async fn report(registry_url: &str, run_id: &str) -> Result<(), CliError> {
    let mut registry = crate::show::client(registry_url)?;
    let run = crate::connect::get_run(&mut registry, run_id).await?;
    let (candidate, production) = versions(&mut registry, &run).await;
    say!(
        "{}",
        markdown(&run, candidate.as_ref(), production.as_ref())
    );
    Ok(())
}

/// Appends the run's Markdown to the file `$GITHUB_STEP_SUMMARY` names, when it is set.
pub async fn step_summary(registry_url: &str, run: &RunSummary) -> Result<(), CliError> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return Ok(());
    };
    let path = std::path::PathBuf::from(path);
    let (candidate, production) = match crate::show::client(registry_url) {
        Ok(mut registry) => versions(&mut registry, run).await,
        Err(_) => (None, None),
    };
    let md = markdown(run, candidate.as_ref(), production.as_ref());
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{md}\n").as_bytes()))
        .map_err(|e| CliError::file(&path, e))
}

#[cfg(test)]
mod tests;
