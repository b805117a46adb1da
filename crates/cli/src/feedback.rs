//! `tollgate feedback push MODEL FILE` and `tollgate feedback status MODEL`: labels that
//! arrive after the fact, joined to what the model server scored, and how each version
//! does on them.

use std::path::PathBuf;

use clap::Subcommand;
use tollgate_ml::metrics::{Live, live_by_version};
use tollgate_pipeline::{
    Stores,
    feedback::{self, FeedbackError, Label},
};

use crate::{CliError, output::table};

/// `tollgate feedback ...`
#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Join labels to the model server's earlier answers: a Parquet or CSV file with the
    /// columns `id` (the response's id; `<id>:<row>` for a row of a batch) and `label` (0
    /// or 1). Prints how many were accepted, already labelled, or name no kept prediction.
    Push {
        /// The model the answers came from.
        model: String,
        /// The labels: .parquet or .csv.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// How each version does on the labels that arrived: count, positive rate, AUC-ROC,
    /// F1 at the version's threshold, log loss.
    Status {
        /// The model.
        model: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `tollgate feedback` command against NATS at `nats_url`.
pub async fn run(nats_url: &str, command: FeedbackCommand) -> Result<(), CliError> {
    match command {
        FeedbackCommand::Push { model, file, json } => push(nats_url, &model, &file, json).await,
        FeedbackCommand::Status { model, json } => {
            let live = live(nats_url, &model).await?;
            if json {
                return crate::output::print_json(&live);
            }
            if live.is_empty() {
                say!("no labels for {model} yet");
            } else {
                say!("{}", live_table(&live));
            }
            Ok(())
        }
    }
}

/// The labels in `file`, checked: an `id` per row and a `label` of 0 or 1.
fn read_labels(file: &std::path::Path) -> Result<Vec<Label>, CliError> {
    let columns = ["id".to_string(), "label".to_string()];
    let df = tollgate_ml::data::read_columns(file, &columns)?;
    let ids = tollgate_ml::data::text_column(&df, "id")?;
    let labels = tollgate_ml::data::numeric_column(&df, "label")?;
    ids.into_iter()
        .zip(labels)
        .enumerate()
        .map(|(row, (id, label))| match (id, label) {
            (Some(id), Some(l)) if l == 0.0 || l == 1.0 => Ok(Label { id, label: l as u8 }),
            (None, _) => Err(CliError::Usage(format!(
                "{}: row {} has no id",
                file.display(),
                row + 1
            ))),
            (Some(id), l) => Err(CliError::Usage(format!(
                "{}: row {} (id {id}) has label {l:?}: a label is 0 or 1",
                file.display(),
                row + 1
            ))),
        })
        .collect()
}

async fn push(
    nats_url: &str,
    model: &str,
    file: &std::path::Path,
    json: bool,
) -> Result<(), CliError> {
    let labels = read_labels(file)?;
    let bus = crate::connect_bus(nats_url).await?;
    let mut total = feedback::Joined::default();
    for chunk in labels.chunks(feedback::MAX_LABELS) {
        let joined = bus
            .predictions()
            .label(model, chunk)
            .await
            .map_err(|e| match e {
                FeedbackError::Invalid(m) => CliError::Usage(m),
                FeedbackError::Bus(e) => CliError::Bus(e),
            })?;
        total.accepted += joined.accepted;
        total.duplicate += joined.duplicate;
        total.unknown.extend(joined.unknown);
    }
    if json {
        return crate::output::print_json(&total);
    }
    say!(
        "{model}: {} labels accepted, {} already labelled, {} name no kept prediction",
        total.accepted,
        total.duplicate,
        total.unknown.len()
    );
    if let Some(first) = total.unknown.first() {
        say!(
            "  unknown ids (first: {first}): never scored by a server of {model}, or older than the retention window"
        );
    }
    Ok(())
}

/// Each version's live metrics from the labels of `model` that arrived.
pub(crate) async fn live(nats_url: &str, model: &str) -> Result<Vec<Live>, CliError> {
    let bus = crate::connect_bus(nats_url).await?;
    let labelled = feedback::labelled(&bus, model).await?;
    Ok(live_by_version(&labelled))
}

/// The live metrics as a table, one row a version.
pub(crate) fn live_table(live: &[Live]) -> comfy_table::Table {
    let mut t = table(&[
        "version",
        "labels",
        "positive rate",
        "live AUC-ROC",
        "F1",
        "log loss",
    ]);
    for l in live {
        t.add_row(vec![
            format!("v{}", l.version),
            l.labels.to_string(),
            format!("{:.3}", l.positive_rate),
            l.auc_roc.map_or("-".into(), |a| format!("{a:.4}")),
            format!("{:.4}", l.f1),
            format!("{:.4}", l.log_loss),
        ]);
    }
    t
}

/// How long `models show` waits for NATS before leaving live metrics out.
const SHOW_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The live metrics section of `tollgate models show MODEL`: a table when labels have
/// arrived, a line saying why not otherwise.
pub(crate) async fn print_live(nats_url: &str, model: &str) {
    match tokio::time::timeout(SHOW_WAIT, live(nats_url, model)).await {
        Ok(Ok(live)) if !live.is_empty() => {
            say!(
                "live metrics (labels joined to served predictions):\n{}",
                live_table(&live)
            )
        }
        Ok(Ok(_)) => say!("live metrics: no labels yet (`tollgate feedback push {model} FILE`)"),
        Ok(Err(e)) => say!("live metrics: not read: {e}"),
        Err(_) => {
            say!("live metrics: not read: NATS at {nats_url} did not answer in {SHOW_WAIT:?}")
        }
    }
}
