//! `tollgate validate`: the data-validator's own engine on a local file (or a bucket's
//! object or a PostgreSQL table, brought to one first), without NATS, exiting by the
//! result.

use std::path::PathBuf;

use clap::Args;

use crate::{CliError, show::validation_table};

/// `tollgate validate ...`
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The dataset: a .parquet or .csv file, or `s3://`, `gs://`, `az://` object or a
    /// `postgres://…?table=` / `?query=` (read with the standard credentials).
    pub data: PathBuf,
    /// Take the expectations from this model spec (tollgate.yaml).
    #[arg(long, conflicts_with = "suite", required_unless_present = "suite")]
    pub spec: Option<PathBuf>,
    /// Take the expectations from a Great Expectations suite JSON file, as it is.
    #[arg(long)]
    pub suite: Option<PathBuf>,
    /// Print Great Expectations' SUMMARY-shaped JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write every failing row of the failed per-row expectations to this file (.parquet
    /// or .csv): the expectation's position and type, the column, the row's position in
    /// the data (from 0) and, with --spec, its id columns. Not capped, unlike the sample.
    #[arg(long, value_name = "FILE")]
    pub failures: Option<PathBuf>,
}

/// [`validate`], after bringing a dataset kept elsewhere to a local file.
pub async fn run(args: ValidateArgs) -> Result<(), CliError> {
    let uri = args.data.to_string_lossy().to_string();
    if !tollgate_pipeline::dataset::is_remote(&uri) {
        return validate(&args);
    }
    let (_cache, local) = crate::remote::fetch(&uri).await?;
    validate(&ValidateArgs {
        data: local,
        ..args
    })
}

/// `tollgate validate DATA --spec FILE | --suite FILE [--json] [--failures FILE]`: a failed
/// expectation is a [`CliError::Verdict`].
pub fn validate(args: &ValidateArgs) -> Result<(), CliError> {
    let (name, suite, ids) = match (&args.spec, &args.suite) {
        (Some(spec), _) => {
            let (s, _) = tollgate_spec::ModelSpec::load(spec)?;
            (s.model.clone(), s.expectations, s.features.id_columns)
        }
        (None, Some(suite)) => {
            let text = std::fs::read_to_string(suite).map_err(|source| {
                tollgate_spec::SpecError::Read {
                    path: suite.display().to_string(),
                    source,
                }
            })?;
            let (name, suite) = tollgate_spec::read_gx_suite(&text)?;
            (name, suite, Vec::new())
        }
        (None, None) => return Err(CliError::usage("give --spec FILE or --suite FILE")),
    };
    let report = tollgate_ml::validate::validate(&args.data, &suite)?;
    if let Some(out) = &args.failures {
        let mut rows = tollgate_ml::validate::failing_rows(&args.data, &suite, &report, &ids)?;
        tollgate_ml::data::write(&mut rows, out)?;
        // Beside the JSON on stderr, so stdout stays one document.
        eprintln!(
            "{} failing rows written to {}",
            rows.height(),
            out.display()
        );
    }
    if args.json {
        say!("{:#}", tollgate_ml::validate::summary_json(&report, &name));
    } else {
        say!("{}", validation_table(&report, false));
        let ok = report.results.iter().filter(|r| r.success).count();
        say!(
            "{}: {ok}/{} expectations met on {} rows in {} ms",
            if report.success { "PASSED" } else { "FAILED" },
            report.results.len(),
            report.row_count,
            report.duration_ms
        );
    }
    if report.success {
        Ok(())
    } else {
        Err(CliError::Verdict("some expectations failed".into()))
    }
}
