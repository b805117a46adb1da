//! `tollgate alerts`: each model's alert rules as the registry last evaluated them.

use tollgate_pipeline::Stores;
use tollgate_proto::AlertState;

use crate::{
    CliError,
    show::{table, when},
};

/// `tollgate alerts [--firing] [--json]`.
pub async fn list(nats_url: &str, firing: bool, json: bool) -> Result<(), CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    let alerts: Vec<_> = bus
        .alerts()
        .list()
        .await?
        .into_iter()
        .filter(|a| !firing || a.state() == AlertState::Firing)
        .collect();
    if json {
        let rows: Vec<_> = alerts
            .iter()
            .map(|a| {
                serde_json::json!({
                    "rule": a.rule,
                    "model": a.model,
                    "state": a.state().name(),
                    "streak": a.streak,
                    "firing_since": (a.firing_since_unix_ms > 0).then(|| when(a.firing_since_unix_ms)),
                    "updated": when(a.at_unix_ms),
                    "runs": a.run_ids,
                    "summary": a.summary,
                })
            })
            .collect();
        say!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if alerts.is_empty() {
        say!(
            "{}",
            if firing {
                "no alert is firing"
            } else {
                "no alert has fired yet"
            }
        );
        return Ok(());
    }
    let mut t = table(&["rule", "model", "state", "since", "runs", "summary"]);
    for a in &alerts {
        let state = match a.state() {
            AlertState::Firing => "FIRING",
            AlertState::Resolved => "resolved",
            AlertState::Unspecified => "ok",
        };
        t.add_row(vec![
            a.rule.clone(),
            a.model.clone(),
            state.into(),
            if a.firing_since_unix_ms > 0 {
                when(a.firing_since_unix_ms)
            } else {
                "-".into()
            },
            a.run_ids.join("\n"),
            a.summary.clone(),
        ]);
    }
    say!("{t}");
    Ok(())
}
