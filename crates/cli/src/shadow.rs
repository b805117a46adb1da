//! `tollgate shadow start|stop|status`: a blessed version scoring a share of Production's
//! requests beside it, and how the two compare, without changing a single response.

use clap::Subcommand;
use tollgate_bus::subjects;
use tollgate_pipeline::rollout::{Summary, summarize};
use tollgate_proto::{GetShadowRequest, SetShadowRequest, Shadow, ShadowReport};

use crate::{
    CliError,
    connect::client,
    output::{print_json, table, when},
};

/// `tollgate shadow ...`
#[derive(Debug, Subcommand)]
pub enum ShadowCommand {
    /// Mirror a share of Production's requests to a blessed version (approvers): every
    /// model server serving Production scores them with both and reports how they
    /// compare; Production still answers every request.
    Start {
        /// The model.
        model: String,
        /// The blessed version to mirror to.
        version: u32,
        /// Share of Production's requests mirrored, in (0, 1].
        #[arg(long, default_value_t = 0.1)]
        share: f64,
        /// Why, for the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Stop the model's shadow (approvers).
    Stop {
        /// The model.
        model: String,
        /// Why, for the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// The model's shadow and what the servers saw of it: requests mirrored, how often the
    /// two versions predict alike, how far apart their probabilities are, the shadow's
    /// latency, its errors.
    Status {
        /// The model.
        model: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `tollgate shadow` command.
pub async fn run(
    registry_url: &str,
    nats_url: &str,
    identity: &str,
    command: ShadowCommand,
) -> Result<(), CliError> {
    let mut registry = client(registry_url)?;
    match command {
        ShadowCommand::Start {
            model,
            version,
            share,
            reason,
        } => {
            let s = registry
                .set_shadow(SetShadowRequest {
                    model,
                    version,
                    share,
                    actor: identity.into(),
                    reason,
                })
                .await?
                .into_inner();
            say!(
                "{} v{} shadows Production for {:.0}% of its requests; `tollgate shadow status {}` shows how they compare",
                s.model,
                s.version,
                s.share * 100.0,
                s.model
            );
        }
        ShadowCommand::Stop { model, reason } => {
            registry
                .set_shadow(SetShadowRequest {
                    model: model.clone(),
                    version: 0,
                    actor: identity.into(),
                    reason,
                    ..Default::default()
                })
                .await?;
            say!("{model}: shadow stopped");
        }
        ShadowCommand::Status { model, json } => {
            let shadow = registry
                .get_shadow(GetShadowRequest {
                    model: model.clone(),
                })
                .await?
                .into_inner();
            let summary = if shadow.version == 0 {
                Summary::default()
            } else {
                let bus = crate::connect_bus(nats_url).await?;
                let reports: Vec<ShadowReport> = bus
                    .read_all(
                        subjects::SHADOW_STREAM,
                        &subjects::shadow(&model),
                        "ShadowReport",
                    )
                    .await?;
                let of_this: Vec<ShadowReport> = reports
                    .into_iter()
                    .filter(|r| {
                        r.shadow_version == shadow.version
                            && r.shadow_started_unix_ms == shadow.started_unix_ms
                    })
                    .collect();
                summarize(&of_this)
            };
            if json {
                return print_json(&serde_json::json!({
                    "model": model,
                    "version": shadow.version,
                    "share": shadow.share,
                    "started_by": shadow.started_by,
                    "started_unix_ms": shadow.started_unix_ms,
                    "summary": summary,
                }));
            }
            print_status(&shadow, &summary);
        }
    }
    Ok(())
}

fn print_status(shadow: &Shadow, s: &Summary) {
    if shadow.version == 0 {
        say!("{}: no shadow running", shadow.model);
        return;
    }
    say!(
        "{} v{} shadows Production for {:.0}% of its requests, since {} (by {})",
        shadow.model,
        shadow.version,
        shadow.share * 100.0,
        when(shadow.started_unix_ms),
        shadow.started_by
    );
    let or_dash = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".into(), f);
    let mut t = table(&[
        "mirrored",
        "agreement",
        "mean |Δp|",
        "shadow p99",
        "errors",
        "replicas",
    ]);
    t.add_row(vec![
        s.mirrored.to_string(),
        or_dash(s.agreement, &|a| format!("{:.1}%", a * 100.0)),
        or_dash(s.mean_abs_diff, &|d| format!("{d:.4}")),
        or_dash(s.latency_p99_ms, &|ms| format!("≤ {ms} ms")),
        s.errors.to_string(),
        s.replicas.to_string(),
    ]);
    say!("{t}");
}
