//! `tollgate runs failures RUN --out FILE`: every failing row of a run's failed
//! validation, as the data-validator kept them beside the run, uncapped.

use std::path::PathBuf;

use clap::Args;
use tollgate_pipeline::Stores;
use tollgate_proto::RunId;

use crate::{
    CliError,
    connect::{client, get_run},
};

/// `tollgate runs failures ...`
#[derive(Debug, Args)]
pub struct FailuresArgs {
    /// The run id.
    pub run_id: String,
    /// Only the rows of this expectation (its position in the suite, from 1).
    #[arg(long)]
    pub expectation: Option<u32>,
    /// Where to write them: .parquet or .csv. Columns: expectation, type, column, row
    /// (the row's position in the data, from 0) and the spec's id columns.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the run's failing rows to `--out`.
pub async fn run(registry_url: &str, nats_url: &str, args: FailuresArgs) -> Result<(), CliError> {
    let mut registry = client(registry_url)?;
    let summary = get_run(&mut registry, &args.run_id).await?;
    let kept = summary
        .validation
        .as_ref()
        .map(|v| (v.failing_rows, v.failures_object.clone()));
    match kept {
        Some((_, object)) if !object.is_empty() => {}
        Some(_) => {
            return Err(CliError::Usage(format!(
                "run {} kept no failing rows: its validation passed, or it ran before they were kept",
                args.run_id
            )));
        }
        None => {
            return Err(CliError::Usage(format!(
                "run {} has no validation report",
                args.run_id
            )));
        }
    }
    let id: RunId = args
        .run_id
        .parse()
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.run_id)))?;
    let bus = crate::connect_bus(nats_url).await?;
    let bytes = bus.failures().get(&id).await?.ok_or_else(|| {
        CliError::Usage(format!(
            "run {}'s failing rows are no longer kept",
            args.run_id
        ))
    })?;
    let written = tollgate_ml::validate::export_failing_rows(&bytes, args.expectation, &args.out)?;
    say!("{written} failing rows written to {}", args.out.display());
    Ok(())
}
