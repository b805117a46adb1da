//! `tollgate dlq list` and `tollgate dlq replay ID`: the messages the services gave up on,
//! with why, and sending one back once the cause is fixed.

use clap::Subcommand;
use tollgate_bus::deadletters::DeadLetterError;

use crate::{
    CliError,
    show::{table, when},
};

/// `tollgate dlq ...`
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List the dead letters, oldest first: id, when, consumer, subject, reason.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish a dead letter again on its original subject and remove it from the list.
    Replay {
        /// The dead letter's id, from `tollgate dlq list`.
        id: u64,
    },
}

/// `tollgate dlq list`: every dead letter, oldest first.
pub async fn list(nats_url: &str, json: bool) -> Result<(), CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    let letters = bus.dead_letters().list().await?;
    if json {
        let rows: Vec<_> = letters
            .iter()
            .map(|l| {
                serde_json::json!({
                    "id": l.id,
                    "at": when(l.at_unix_ms),
                    "consumer": l.consumer,
                    "subject": l.subject,
                    "deliveries": l.deliveries,
                    "reason": l.reason,
                    "bytes": l.payload.len(),
                })
            })
            .collect();
        say!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if letters.is_empty() {
        say!("no dead letters");
        return Ok(());
    }
    let mut t = table(&[
        "id",
        "dead-lettered",
        "consumer",
        "subject",
        "deliveries",
        "bytes",
        "reason",
    ]);
    for l in &letters {
        let mut reason = l.reason.clone();
        if reason.chars().count() > 100 {
            reason = reason.chars().take(97).collect::<String>() + "...";
        }
        t.add_row(vec![
            l.id.to_string(),
            when(l.at_unix_ms),
            l.consumer.clone(),
            l.subject.clone(),
            l.deliveries.to_string(),
            l.payload.len().to_string(),
            reason,
        ]);
    }
    say!("{t}");
    say!("`tollgate dlq replay ID` publishes one again on its subject once the cause is fixed");
    Ok(())
}

/// `tollgate dlq replay ID`: publishes the dead letter again on its original subject.
pub async fn replay(nats_url: &str, id: u64) -> Result<(), CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    match bus.dead_letters().replay(id).await {
        Ok(subject) => {
            say!("replayed dead letter {id} on {subject}");
            Ok(())
        }
        Err(DeadLetterError::NotFound(_)) => Err(CliError::Usage(format!(
            "no dead letter {id} (see `tollgate dlq list`)"
        ))),
        Err(DeadLetterError::Bus(e)) => Err(e.into()),
    }
}
