//! Tables for people (runs, one run in full, model versions with their audit trail) and
//! the registry commands behind them (approve, reject, override, rollback, tag, alias).

use comfy_table::Table;
use tollgate_proto::{
    ApprovalRequest, CheckVerdict, GetVersionRequest, ListRunsRequest, ListVersionsRequest,
    ModelStage, ModelVersion, OverrideRequest, ResolveRequest, RollbackRequest, RunSummary,
    SetAliasRequest, Stage, StageStatus, UpdateVersionRequest,
};

pub use crate::connect::TOKEN_ENV;
pub(crate) use crate::connect::{client, token};
pub use crate::output::seconds;
pub(crate) use crate::output::{print_json, table, when};
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::CliError;

/// A decision on one version.
#[derive(Debug, Args)]
pub struct DecisionArgs {
    /// The model, or a models:/ URI naming the version.
    pub model: String,
    /// The version (omit when MODEL is a URI).
    pub version: Option<u32>,
    /// Why: recorded in the audit trail.
    #[arg(long)]
    pub reason: String,
}

/// `tollgate models ...`
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// show, tag, alias or describe; without one, lists versions.
    #[command(subcommand)]
    pub command: Option<ModelsCommand>,
    /// Only this model.
    pub model: Option<String>,
    /// Only versions in this stage (None, Staging, Production, Archived).
    #[arg(long)]
    pub stage: Option<String>,
    /// Only versions with this tag.
    #[arg(long)]
    pub tag: Option<String>,
}

/// `tollgate models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Versions, stages, aliases, metrics, the last gate decision and the audit trail of a
    /// model, or of one version given as models:/NAME/VERSION, models:/NAME/STAGE or models:/NAME@ALIAS.
    Show {
        /// Model name or models:/ URI.
        target: String,
    },
    /// Add or remove tags of a version.
    Tag {
        /// The model.
        model: String,
        /// The version.
        version: u32,
        /// Tags to add.
        #[arg(long)]
        add: Vec<String>,
        /// Tags to remove.
        #[arg(long)]
        remove: Vec<String>,
    },
    /// Point an alias (e.g. champion) at a version; version 0 removes it.
    Alias {
        /// The model.
        model: String,
        /// The alias.
        alias: String,
        /// The version.
        version: u32,
    },
    /// Download a version's artifact (digest verified) to a file.
    Download {
        /// models:/NAME/VERSION, models:/NAME/STAGE or models:/NAME@ALIAS.
        uri: String,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Set a version's description.
    Describe {
        /// The model.
        model: String,
        /// The version.
        version: u32,
        /// The text.
        description: String,
    },
}

/// `tollgate runs ...`
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// `show RUN_ID` prints one run in full.
    #[command(subcommand)]
    pub show: Option<RunsCommand>,
    /// Only runs of this model.
    #[arg(long)]
    pub model: Option<String>,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Follow every run live (stages, progress, verdicts) until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Print the brief's `pipeline_metrics` records as JSON instead of tables: an array
    /// of runs, or one object with `runs show RUN --json` (shape in the book's Observability page).
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tollgate runs show`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: stages, validation report, gate checks.
    Show {
        /// The run id.
        run_id: String,
    },
    /// Every failing row of a run's failed validation, uncapped, to a file.
    Failures(crate::failing::FailuresArgs),
}

/// Where the run's change came from, as its trigger recorded it: commit, ref, pull
/// request, actor and CI run; `None` when it recorded none.
fn provenance(run: &tollgate_proto::RunSummary) -> Option<String> {
    let mut facts = Vec::new();
    if !run.code_commit.is_empty() {
        facts.push(format!("commit {}", run.code_commit));
    }
    if let Some(ci) = &run.ci {
        if !ci.git_ref.is_empty() {
            facts.push(format!("ref {}", ci.git_ref));
        }
        if ci.pull_request > 0 {
            facts.push(format!("PR #{}", ci.pull_request));
        }
        if !ci.actor.is_empty() {
            facts.push(format!("actor {}", ci.actor));
        }
        if !ci.run_url.is_empty() {
            facts.push(format!("CI run {}", ci.run_url));
        }
    }
    (!facts.is_empty()).then(|| facts.join(" · "))
}

/// `tollgate runs` and `tollgate runs show RUN`.
pub async fn runs(registry_url: &str, args: RunsArgs) -> Result<(), CliError> {
    let mut registry = client(registry_url)?;
    if let Some(RunsCommand::Show { run_id }) = args.show {
        let run = crate::connect::get_run(&mut registry, &run_id).await?;
        if args.json {
            return print_json(
                &tollgate_stack::services::registry::pipeline_metrics::PipelineMetrics::of(&run),
            );
        }
        say!(
            "run {}  model {}  {} trigger  verdict {}",
            run.run_id,
            run.model,
            run.trigger().name(),
            run.status()
        );
        if !run.reason.is_empty() {
            say!("reason: {}", run.reason);
        }
        if run.concurrency() != tollgate_proto::Concurrency::Parallel {
            say!(
                "concurrency group: {}/{} ({}){}",
                run.model,
                run.plan_kind().name(),
                run.concurrency().name(),
                if run.queued_behind.is_empty() {
                    String::new()
                } else {
                    format!(", queued behind run {}", run.queued_behind)
                }
            );
        }
        if !run.requested_by.is_empty() || !run.requested_reason.is_empty() {
            say!(
                "requested by: {}{}",
                if run.requested_by.is_empty() {
                    "-"
                } else {
                    &run.requested_by
                },
                if run.requested_reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", run.requested_reason)
                }
            );
        }
        if let Some(line) = provenance(&run) {
            say!("provenance: {line}");
        }
        if run.scheduled_for_unix_ms > 0 {
            say!("scheduled slot: {}", when(run.scheduled_for_unix_ms));
        }
        say!("dataset: {}", run.dataset_uri);
        if !run.code_digest.is_empty() {
            say!("code: snapshot {} of the spec's folder", &run.code_digest);
        }
        if !run.model_upload.is_empty() {
            say!("model: uploaded ONNX file {}", &run.model_upload);
        }
        let mut t = table(&["stage", "status", "duration", "message"]);
        for s in &run.stages {
            t.add_row(vec![
                s.stage().to_string(),
                s.status().name().into(),
                seconds(s.duration_ms),
                s.message.clone(),
            ]);
        }
        // The rollout the approval started, phase by phase.
        for s in &run.rollout {
            t.add_row(vec![
                format!("rollout: {}", s.phase),
                if s.passed { "passed" } else { "stopped" }.into(),
                seconds(u64::try_from(s.ended_unix_ms - s.started_unix_ms).unwrap_or(0)),
                s.summary.clone(),
            ]);
        }
        say!("{t}");
        print_details(&run, true);
        return Ok(());
    }
    let runs = registry
        .list_runs(ListRunsRequest {
            model: args.model.unwrap_or_default(),
            limit: args.limit,
        })
        .await?
        .into_inner()
        .runs;
    if args.json {
        let records: Vec<_> = runs
            .iter()
            .map(tollgate_stack::services::registry::pipeline_metrics::PipelineMetrics::of)
            .collect();
        return print_json(&records);
    }
    if runs.is_empty() {
        say!("no runs yet");
        return Ok(());
    }
    let mut t = table(&[
        "run", "model", "trigger", "stages", "verdict", "version", "reason",
    ]);
    for r in &runs {
        let stages = r
            .plan
            .iter()
            .map(|&code| {
                let name = Stage::try_from(code).unwrap_or_default();
                match r.stages.iter().find(|s| s.stage == code) {
                    Some(s) if s.status() == StageStatus::Running => format!("{name} running"),
                    Some(s) => format!("{name} {} {}", s.status().name(), seconds(s.duration_ms)),
                    None => format!("{name} -"),
                }
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
            match (r.requested_by.is_empty(), r.trigger()) {
                (true, kind) => kind.name().to_string(),
                (false, tollgate_proto::TriggerKind::Manual) => format!(
                    "manual\nby {}: {}",
                    r.requested_by,
                    r.requested_reason.chars().take(40).collect::<String>()
                ),
                (false, kind) => format!("{kind}\nby {}", r.requested_by),
            },
            stages,
            r.status().into(),
            if r.model_version == 0 {
                "-".into()
            } else {
                format!("v{}", r.model_version)
            },
            reason,
        ]);
    }
    say!("{t}");
    Ok(())
}

/// The validation report (every expectation, or only the failing ones) and the gate's
/// checks, when the run has them.
pub fn print_details(run: &RunSummary, every_expectation: bool) {
    if !run.policy_changes.is_empty() {
        say!(
            "report-only: this run's spec proposes policy changes, which only `tollgate apply` (an admin) makes; it ran under the applied policy and does not promote:"
        );
        for change in &run.policy_changes {
            say!("  - {change}");
        }
    }
    match &run.validation {
        Some(v) if every_expectation => say!(
            "validation ({} rows):\n{}",
            v.row_count,
            validation_table(v, false)
        ),
        Some(v) if !v.success => say!(
            "failing expectations ({} rows):\n{}",
            v.row_count,
            validation_table(v, true)
        ),
        _ => {}
    }
    crate::output::print_kept_failures(run);
    if let Some(g) = &run.gate {
        say!("gate checks for v{}:\n{}", g.model_version, gate_table(g));
    }
}

/// A table of expectation results (only the failing ones when `only_failures`).
pub fn validation_table(v: &tollgate_proto::ValidationReport, only_failures: bool) -> Table {
    let mut t = table(&[
        "expectation",
        "column",
        "ok",
        "observed",
        "unexpected",
        "missing",
        "sample of unexpected / error",
    ]);
    for r in v.results.iter().filter(|r| !(only_failures && r.success)) {
        let detail = if r.error.is_empty() {
            let mut sample = r
                .partial_unexpected_list
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if r.partial_unexpected_list.len() > 5 {
                sample += ", ...";
            }
            sample
        } else {
            r.error.clone()
        };
        t.add_row(vec![
            r.expectation_type.clone(),
            r.column.clone(),
            if r.success {
                "✓".into()
            } else {
                "✗".into()
            },
            r.observed_value.clone(),
            format!("{} ({:.2}%)", r.unexpected_count, r.unexpected_percent),
            r.missing_count.to_string(),
            detail,
        ]);
    }
    t
}

/// Drift scores per column.
pub fn drift_table(v: &tollgate_proto::ValidationReport) -> Table {
    let mut t = table(&[
        "column",
        "wasserstein",
        "ks",
        "jensen-shannon",
        "psi",
        "drifted",
    ]);
    let num = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    for d in &v.drift {
        t.add_row(vec![
            d.column.clone(),
            num(d.wasserstein),
            num(d.ks),
            num(d.jensen_shannon),
            format!("{:.4}", d.psi),
            if d.drifted { "yes".into() } else { "no".into() },
        ]);
    }
    t
}

fn parse_stage(name: &str) -> Result<ModelStage, CliError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "none" => ModelStage::None,
        "staging" => ModelStage::Staging,
        "production" => ModelStage::Production,
        "archived" => ModelStage::Archived,
        _ => {
            return Err(CliError::Usage(format!(
                "unknown stage {name:?}: use None, Staging, Production or Archived"
            )));
        }
    })
}

fn versions_table(versions: &[ModelVersion]) -> Table {
    let mut t = table(&[
        "model",
        "version",
        "stage",
        "aliases",
        "tags",
        "auc_roc",
        "f1",
        "size",
        "last gate",
        "run",
    ]);
    for v in versions {
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
            v.aliases.join(", "),
            v.tags.join(", "),
            metric("auc_roc"),
            metric("f1"),
            format!("{:.1} KiB", v.artifact_size as f64 / 1024.0),
            v.last_gate
                .as_ref()
                .map(|g| g.summary.clone())
                .unwrap_or_else(|| "-".into()),
            v.run_id.clone(),
        ]);
    }
    t
}

/// Renders versions with their last gate decision and audit trail: `tollgate models show`.
pub fn render_versions(versions: &[ModelVersion]) -> String {
    let mut out = format!("{}\n", versions_table(versions));
    if let Some(g) = versions.iter().rev().find_map(|v| v.last_gate.as_ref()) {
        out += &format!(
            "last gate decision, v{}: {}\n{}\n",
            g.model_version,
            g.summary,
            gate_table(g)
        );
    }
    let mut lineage = table(&[
        "version",
        "origin",
        "algorithm",
        "trained in",
        "code commit",
        "code sha256",
        "dataset",
        "spec sha256",
        "artifact sha256",
    ]);
    let short = |d: &str| d.chars().take(12).collect::<String>();
    let or_dash = |d: String| if d.is_empty() { "-".to_string() } else { d };
    for v in versions {
        lineage.add_row(vec![
            format!("v{}", v.version),
            // Versions registered before ONNX came from a built-in learner.
            if v.origin.is_empty() {
                "trained".into()
            } else {
                v.origin.clone()
            },
            v.algorithm.clone(),
            format!("{:.2}s", v.training_seconds),
            if v.code_commit.is_empty() {
                "-".into()
            } else {
                v.code_commit.clone()
            },
            or_dash(short(&v.code_digest)),
            v.dataset_uri.clone(),
            short(&v.spec_digest),
            short(&v.artifact_digest),
        ]);
    }
    out += &format!("lineage:\n{lineage}\n");
    let mut t = table(&[
        "version", "when", "action", "actor", "from", "to", "reason", "run",
    ]);
    let mut entries: Vec<_> = versions
        .iter()
        .flat_map(|v| v.audit.iter().map(move |a| (v.version, a)))
        .collect();
    entries.sort_by_key(|(_, a)| a.at_unix_ms);
    for (version, a) in entries {
        t.add_row(vec![
            format!("v{version}"),
            when(a.at_unix_ms),
            a.action.clone(),
            a.actor.clone(),
            a.from.map_or("-".into(), |_| a.from().name().into()),
            a.to.map_or("-".into(), |_| a.to().name().into()),
            a.reason.clone(),
            a.run_id.clone(),
        ]);
    }
    out += &format!("audit trail:\n{t}");
    out
}

fn gate_table(g: &tollgate_proto::GateDecision) -> Table {
    let mut t = table(&["check", "observed", "threshold", "verdict", "note"]);
    for c in &g.checks {
        let (observed, threshold) = check_figures(c);
        t.add_row(vec![
            c.name.clone(),
            observed,
            threshold,
            c.verdict().name().into(),
            c.note.clone(),
        ]);
    }
    t
}

/// A check's observed value and threshold as the tables show them: the figures, `-`
/// for a skipped check, and `passed`/`failed` against `test` for one of the user's tests.
pub fn check_figures(c: &tollgate_proto::GateCheck) -> (String, String) {
    if c.test {
        let observed = match c.verdict() {
            CheckVerdict::Pass => "passed",
            CheckVerdict::Skipped => "skipped",
            _ => "failed",
        };
        return (observed.into(), "test".into());
    }
    let observed = if c.verdict() == CheckVerdict::Skipped {
        "-".into()
    } else {
        format!("{:.4}", c.observed)
    };
    (observed, format!("{} {}", c.comparison(), c.threshold))
}

/// `tollgate models ...`.
pub async fn models_command(
    registry_url: &str,
    nats_url: &str,
    identity: &str,
    args: ModelsArgs,
) -> Result<(), CliError> {
    let mut registry = client(registry_url)?;
    match args.command {
        None => {
            let filter = args.stage.as_deref().map(parse_stage).transpose()?;
            let versions = registry
                .list_versions(ListVersionsRequest {
                    model: args.model.unwrap_or_default(),
                    stage: filter.unwrap_or(ModelStage::None) as i32,
                    filter_stage: filter.is_some(),
                    tag: args.tag.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .versions;
            if versions.is_empty() {
                say!("no model versions");
            } else {
                say!("{}", versions_table(&versions));
            }
        }
        Some(ModelsCommand::Show { target }) => {
            let by_uri = target.starts_with("models:/");
            let versions = if by_uri {
                vec![
                    registry
                        .resolve(ResolveRequest { uri: target })
                        .await?
                        .into_inner(),
                ]
            } else {
                let request = ListVersionsRequest {
                    model: target.clone(),
                    ..Default::default()
                };
                let v = registry.list_versions(request).await?.into_inner().versions;
                if v.is_empty() {
                    return Err(CliError::Usage(format!("model {target} has no versions")));
                }
                v
            };
            say!("{}", render_versions(&versions));
            if let Some(v) = versions.first().filter(|_| !by_uri) {
                crate::feedback::print_live(nats_url, &v.model).await;
            }
        }
        Some(ModelsCommand::Tag {
            model,
            version,
            add,
            remove,
        }) => {
            let request = UpdateVersionRequest {
                model,
                version,
                add_tags: add,
                remove_tags: remove,
                actor: identity.into(),
                ..Default::default()
            };
            let v = registry.update_version(request).await?.into_inner();
            say!("{} v{} tags: {}", v.model, v.version, v.tags.join(", "));
        }
        Some(ModelsCommand::Describe {
            model,
            version,
            description,
        }) => {
            let request = UpdateVersionRequest {
                model,
                version,
                set_description: true,
                description,
                actor: identity.into(),
                ..Default::default()
            };
            let v = registry.update_version(request).await?.into_inner();
            say!("{} v{}: {}", v.model, v.version, v.description);
        }
        Some(ModelsCommand::Download { uri, out }) => {
            let v = registry.resolve(ResolveRequest { uri }).await?.into_inner();
            let request = GetVersionRequest {
                model: v.model.clone(),
                version: v.version,
            };
            let artifact = registry.get_artifact(request).await?.into_inner();
            // Checks the digest the registry recorded and that the bytes are an artifact.
            tollgate_ml::artifact::Artifact::decode_verified(&artifact.data, &v.artifact_digest)
                .map_err(|e| CliError::Usage(format!("{} v{}: {e}", v.model, v.version)))?;
            let digest = &v.artifact_digest;
            std::fs::write(&out, &artifact.data).map_err(|e| CliError::file(&out, e))?;
            say!(
                "{} v{} ({} bytes, sha256 {digest}) -> {}",
                v.model,
                v.version,
                artifact.data.len(),
                out.display()
            );
        }
        Some(ModelsCommand::Alias {
            model,
            alias,
            version,
        }) => {
            let request = SetAliasRequest {
                model,
                alias: alias.clone(),
                version,
                actor: identity.into(),
            };
            let v = registry.set_alias(request).await?.into_inner();
            if version == 0 {
                say!("alias {alias} removed from {} v{}", v.model, v.version);
            } else {
                say!("{}@{alias} -> v{}", v.model, v.version);
            }
        }
    }
    Ok(())
}

/// What an approver decides.
#[derive(Debug, Clone, Copy)]
pub enum Decision {
    /// Approve for Production.
    Approve,
    /// Reject for Production.
    Reject,
    /// Override a blocked gate.
    Override,
}

async fn version_of(
    registry: &mut tollgate_proto::RegistryApi,
    model: &str,
    version: Option<u32>,
) -> Result<(String, u32), CliError> {
    match (model.starts_with("models:/"), version) {
        (true, _) => {
            let v = registry
                .resolve(ResolveRequest { uri: model.into() })
                .await?
                .into_inner();
            Ok((v.model, v.version))
        }
        (false, Some(n)) => Ok((model.into(), n)),
        (false, None) => Err(CliError::usage("give the version, or a models:/ URI")),
    }
}

/// `tollgate approve|reject|override`.
pub async fn decide(
    registry_url: &str,
    identity: &str,
    d: DecisionArgs,
    decision: Decision,
) -> Result<(), CliError> {
    let mut registry = client(registry_url)?;
    let (model, version) = version_of(&mut registry, &d.model, d.version).await?;
    match decision {
        Decision::Approve | Decision::Reject => {
            let approve = matches!(decision, Decision::Approve);
            let request = ApprovalRequest {
                model: model.clone(),
                version,
                approver: identity.into(),
                reason: d.reason,
                approve,
            };
            let recorded = registry.approve(request).await?.into_inner();
            let by = recorded.approver;
            if approve {
                say!("{model} v{version} approved by {by}; the promoter moves it to Production");
            } else {
                say!("{model} v{version} rejected by {by}");
            }
        }
        Decision::Override => {
            let request = OverrideRequest {
                model: model.clone(),
                version,
                approver: identity.into(),
                reason: d.reason,
            };
            let v = registry.r#override(request).await?.into_inner();
            let by = v
                .audit
                .last()
                .map_or(identity.to_string(), |a| a.actor.clone());
            say!(
                "gate decision on {model} v{version} overridden by {by}; the promoter moves it to Staging"
            );
        }
    }
    Ok(())
}

/// `tollgate rollback NAME`.
pub async fn rollback(
    registry_url: &str,
    identity: &str,
    model: &str,
    reason: &str,
) -> Result<(), CliError> {
    let request = RollbackRequest {
        model: model.into(),
        actor: identity.into(),
        reason: reason.into(),
    };
    let v = client(registry_url)?.rollback(request).await?.into_inner();
    say!("{} v{} is back in Production", v.model, v.version);
    Ok(())
}
