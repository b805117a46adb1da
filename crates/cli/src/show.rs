//! Tables for people: runs, one run in full, model versions.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tollgate_proto::{
    CheckVerdict, GetRunRequest, ListRunsRequest, ListVersionsRequest, RunSummary, StageStatus,
};

use crate::{RunsArgs, RunsCommand};

/// Milliseconds as seconds for tables: `0.21s`.
pub fn seconds(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

fn client(url: &str) -> Result<tollgate_proto::RegistryClient<tonic::transport::Channel>, String> {
    tollgate_proto::registry_client(url).map_err(|e| format!("registry URL {url:?}: {e}"))
}

fn status(e: tonic::Status) -> String {
    match e.code() {
        tonic::Code::Unavailable => format!("the registry is not reachable: {}", e.message()),
        _ => e.message().to_string(),
    }
}

/// `tollgate runs` and `tollgate runs show RUN`.
pub async fn runs(registry_url: &str, args: RunsArgs) -> Result<(), String> {
    let mut registry = client(registry_url)?;
    if let Some(RunsCommand::Show { run_id }) = args.show {
        let run = registry
            .get_run(GetRunRequest { run_id })
            .await
            .map_err(status)?
            .into_inner();
        println!(
            "run {}  model {}  {} trigger  verdict {}",
            run.run_id,
            run.model,
            run.trigger().name(),
            run.verdict().name()
        );
        if !run.reason.is_empty() {
            println!("reason: {}", run.reason);
        }
        println!("dataset: {}", run.dataset_uri);
        let mut t = table(&["stage", "status", "duration", "message"]);
        for s in &run.stages {
            t.add_row(vec![
                s.stage.clone(),
                s.status().name().into(),
                seconds(s.duration_ms),
                s.message.clone(),
            ]);
        }
        println!("{t}");
        print_details(&run);
        return Ok(());
    }
    let runs = registry
        .list_runs(ListRunsRequest {
            model: args.model.unwrap_or_default(),
            limit: args.limit,
        })
        .await
        .map_err(status)?
        .into_inner()
        .runs;
    if runs.is_empty() {
        println!("no runs yet");
        return Ok(());
    }
    let mut t = table(&[
        "run", "model", "trigger", "stages", "verdict", "version", "reason",
    ]);
    for r in &runs {
        let stages = r
            .plan
            .iter()
            .map(|name| match r.stages.iter().find(|s| &s.stage == name) {
                Some(s) if s.status() == StageStatus::Running => format!("{name} running"),
                Some(s) => format!("{name} {} {}", s.status().name(), seconds(s.duration_ms)),
                None => format!("{name} -"),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut reason = r.reason.clone();
        if reason.chars().count() > 80 {
            reason = reason.chars().take(77).collect::<String>() + "...";
        }
        t.add_row(vec![
            r.run_id.clone(),
            r.model.clone(),
            r.trigger().name().into(),
            stages,
            r.verdict().name().into(),
            if r.model_version == 0 {
                "-".into()
            } else {
                format!("v{}", r.model_version)
            },
            reason,
        ]);
    }
    println!("{t}");
    Ok(())
}

/// The validation report's failures and the gate's checks, when the run has them.
pub fn print_details(run: &RunSummary) {
    if let Some(v) = run.validation.as_ref().filter(|v| !v.success) {
        let mut t = table(&[
            "expectation",
            "column",
            "observed",
            "unexpected",
            "missing",
            "error",
        ]);
        for r in v.results.iter().filter(|r| !r.success) {
            t.add_row(vec![
                r.expectation_type.clone(),
                r.column.clone(),
                r.observed_value.clone(),
                format!("{} ({:.2}%)", r.unexpected_count, r.unexpected_percent),
                r.missing_count.to_string(),
                r.error.clone(),
            ]);
        }
        println!("failing expectations ({} rows):\n{t}", v.row_count);
    }
    if let Some(g) = &run.gate {
        let mut t = table(&["check", "observed", "threshold", "verdict", "note"]);
        for c in &g.checks {
            let skipped = c.verdict() == CheckVerdict::Skipped;
            t.add_row(vec![
                c.name.clone(),
                if skipped {
                    "-".into()
                } else {
                    format!("{:.4}", c.observed)
                },
                if skipped {
                    "-".into()
                } else {
                    format!("{} {}", c.comparison, c.threshold)
                },
                c.verdict().name().into(),
                c.note.clone(),
            ]);
        }
        println!("gate checks for v{}:\n{t}", g.model_version);
    }
}

/// `tollgate models [NAME]`.
pub async fn models(registry_url: &str, model: Option<&str>) -> Result<(), String> {
    let versions = client(registry_url)?
        .list_versions(ListVersionsRequest {
            model: model.unwrap_or_default().into(),
        })
        .await
        .map_err(status)?
        .into_inner()
        .versions;
    if versions.is_empty() {
        println!("no model versions yet");
        return Ok(());
    }
    let mut t = table(&[
        "model", "version", "stage", "auc_roc", "f1", "size", "run", "commit",
    ]);
    for v in &versions {
        let metric = |k: &str| {
            v.metrics
                .get(k)
                .map(|x| format!("{x:.4}"))
                .unwrap_or_else(|| "-".into())
        };
        t.add_row(vec![
            v.model.clone(),
            format!("v{}", v.version),
            v.stage().name().into(),
            metric("auc_roc"),
            metric("f1"),
            format!("{:.1} KiB", v.artifact_size as f64 / 1024.0),
            v.run_id.clone(),
            v.code_commit.chars().take(10).collect(),
        ]);
    }
    println!("{t}");
    Ok(())
}
