//! `tollgate webhook add|list|remove|test|deliveries|redeliver`: events delivered to
//! where people are (admin or operator), and the log of every delivery.

use std::path::PathBuf;

use clap::Subcommand;
use tollgate_proto::{ListDeliveriesRequest, ListWebhooksRequest, Webhook, WebhookId};

use crate::{
    CliError,
    connect::client,
    output::{print_json, table, when},
};

/// `tollgate webhook ...`
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribe a URL to events. Each is a signed JSON body (or Slack's `text` and
    /// `blocks`), delivered at least once, retried with backoff for 24 h.
    Add {
        /// Where the events go.
        #[arg(long)]
        url: String,
        /// Comma-separated: run.completed, approval.requested, alert.firing,
        /// alert.resolved, model.stage_changed.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Only this model's events.
        #[arg(long, default_value = "")]
        model: String,
        /// A file holding the secret bodies are signed with (HMAC-SHA256 in
        /// `X-Tollgate-Signature: sha256=<hex>`).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// `json` (Tollgate's event), `slack` (an incoming webhook's `text` and `blocks`)
        /// or `github` (a commit status per run: `--url` is the API base, e.g.
        /// https://api.github.com).
        #[arg(long, default_value = "json")]
        format: String,
        /// For github: OWNER/REPO.
        #[arg(long, default_value = "")]
        repository: String,
        /// For github: a file holding a token that may write commit statuses.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// The webhooks (secrets not shown).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a webhook.
    Remove {
        /// Its id (`wh-…`).
        id: String,
    },
    /// Send a `ping` event to a webhook now.
    Test {
        /// Its id.
        id: String,
    },
    /// The delivery log: each event sent to each webhook, its status, attempts and latency.
    Deliveries {
        /// Only the deliveries given up on.
        #[arg(long)]
        failed: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send a delivery again (the same event id, so a receiver can drop a repeat).
    Redeliver {
        /// The delivery's id (`dl-…`).
        id: String,
    },
}

/// Runs a `tollgate webhook` command.
pub async fn run(registry_url: &str, command: WebhookCommand) -> Result<(), CliError> {
    let mut registry = client(registry_url)?;
    match command {
        WebhookCommand::Add {
            url,
            events,
            model,
            secret_file,
            format,
            repository,
            token_file,
        } => {
            let read = |file: Option<PathBuf>| -> Result<String, CliError> {
                match file {
                    Some(path) => Ok(std::fs::read_to_string(&path)
                        .map_err(|source| CliError::File {
                            path: path.display().to_string(),
                            source,
                        })?
                        .trim()
                        .to_string()),
                    None => Ok(String::new()),
                }
            };
            let (secret, token) = (read(secret_file)?, read(token_file)?);
            let hook = registry
                .add_webhook(Webhook {
                    url,
                    events,
                    model,
                    format,
                    secret,
                    repository,
                    token,
                    ..Default::default()
                })
                .await?
                .into_inner();
            say!("{} → {} ({})", hook.id, hook.url, hook.events.join(", "));
        }
        WebhookCommand::List { json } => {
            let hooks = registry
                .list_webhooks(ListWebhooksRequest {})
                .await?
                .into_inner()
                .webhooks;
            if json {
                let rows: Vec<_> = hooks
                    .iter()
                    .map(|h| {
                        serde_json::json!({"id": h.id, "url": h.url, "events": h.events,
                            "model": h.model, "format": h.format, "signed": !h.secret.is_empty()})
                    })
                    .collect();
                return print_json(&rows);
            }
            let mut t = table(&["id", "url", "events", "model", "format", "signed"]);
            for h in &hooks {
                t.add_row(vec![
                    h.id.clone(),
                    h.url.clone(),
                    h.events.join(", "),
                    h.model.clone(),
                    h.format.clone(),
                    (!h.secret.is_empty()).to_string(),
                ]);
            }
            say!("{t}");
        }
        WebhookCommand::Remove { id } => {
            let hook = registry
                .remove_webhook(WebhookId { id })
                .await?
                .into_inner();
            say!("removed {} ({})", hook.id, hook.url);
        }
        WebhookCommand::Test { id } => {
            let d = registry.test_webhook(WebhookId { id }).await?.into_inner();
            say!(
                "ping sent as delivery {}; `tollgate webhook deliveries` shows how it went",
                d.id
            );
        }
        WebhookCommand::Deliveries { failed, json } => {
            let deliveries = registry
                .list_deliveries(ListDeliveriesRequest { failed, limit: 100 })
                .await?
                .into_inner()
                .deliveries;
            if json {
                let rows: Vec<_> = deliveries
                    .iter()
                    .map(|d| {
                        serde_json::json!({"id": d.id, "webhook": d.webhook_id, "url": d.url, "event": d.event_type,
                            "event_id": d.event_id, "status": d.status, "attempts": d.attempts,
                            "last_status": d.last_status, "last_latency_ms": d.last_latency_ms,
                            "last_error": d.last_error, "created": when(d.created_unix_ms)})
                    })
                    .collect();
                return print_json(&rows);
            }
            let mut t = table(&[
                "delivery", "event", "status", "attempts", "last", "latency", "when",
            ]);
            for d in &deliveries {
                t.add_row(vec![
                    d.id.clone(),
                    d.event_type.clone(),
                    d.status.clone(),
                    d.attempts.to_string(),
                    if d.last_error.is_empty() {
                        d.last_status.to_string()
                    } else {
                        d.last_error.clone()
                    },
                    format!("{:.1} ms", d.last_latency_ms),
                    when(d.created_unix_ms),
                ]);
            }
            say!("{t}");
        }
        WebhookCommand::Redeliver { id } => {
            let d = registry.redeliver(WebhookId { id }).await?.into_inner();
            say!("{} sent again ({} to {})", d.id, d.event_type, d.url);
        }
    }
    Ok(())
}
