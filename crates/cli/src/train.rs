//! `tollgate train` and `tollgate predict`: the trainer's own code on a laptop, so data
//! scientists iterate with exactly what the pipeline will run: a built-in learner, the
//! spec's training command in a copy of its folder, or an ONNX model trained elsewhere.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use tokio_util::sync::CancellationToken;
use tollgate_ml::{
    artifact::{Artifact, Lineage, Origin},
    train::Trained,
};
use tollgate_spec::ModelSpec;
use tollgate_stack::services::trainer::command::{self, CommandTrainError, Job, Workspace};
use tollgate_usercode::snapshot;

use std::path::PathBuf;

use clap::Args;

use crate::CliError;

/// `tollgate train ...`
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The dataset: .parquet or .csv.
    pub data: PathBuf,
    /// The model spec (tollgate.yaml).
    #[arg(long)]
    pub spec: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Save the model artifact here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Grade an ONNX model trained elsewhere (FILE.onnx) on the spec's split instead of
    /// training, as `publish --model` makes the pipeline do.
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
}

/// `tollgate predict ...`
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model artifact file.
    pub model: PathBuf,
    /// The dataset to score: .parquet or .csv (the target column may be absent).
    pub data: PathBuf,
    /// Write the CSV here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Probability at or above which a row is predicted positive (default: 0.5).
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
}

/// Trains (or imports `--model`) as the trainer would.
async fn trained(args: &TrainArgs, spec: &ModelSpec, text: &str) -> Result<Trained, CliError> {
    if let Some(model) = &args.model {
        let bytes = std::fs::read(model).map_err(|e| CliError::file(model, e))?;
        let lineage = Lineage {
            origin: Origin::Uploaded,
            code_digest: String::new(),
            model_digest: tollgate_spec::sha256_hex(&bytes),
        };
        return Ok(tollgate_ml::train::from_onnx(
            spec, text, &args.data, "", bytes, lineage,
        )?);
    }
    let Some(train) = spec.train_command() else {
        // Progress (each fold and candidate) on stderr: `--json` keeps stdout to itself.
        let report = |line: &str| eprintln!("{line}");
        let progress = tollgate_ml::learners::Progress::new(&report);
        return Ok(tollgate_ml::train::train_with_progress(
            spec, text, &args.data, "", &progress,
        )?);
    };
    // The command runs in a copy of the folder, holding what a published run would carry.
    let packed = snapshot::pack(&crate::upload::folder_of(&args.spec))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let root = tempfile::Builder::new()
        .prefix("tollgate-train-")
        .tempdir()
        .map_err(|e| CliError::Usage(format!("no temp dir: {e}")))?;
    let workspace = Workspace::under(root.path());
    snapshot::unpack(&packed.bytes, &packed.digest, &workspace.code)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let job = Job {
        spec,
        spec_text: text,
        command: train,
        data: &args.data,
        run_id: "local",
        commit: "",
        code_digest: &packed.digest,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let printer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            eprintln!("{line}");
        }
    });
    let stop = CancellationToken::new();
    let on_ctrl_c = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.cancel();
            }
        })
    };
    let trained = command::train(&job, &workspace, tx, &stop).await;
    on_ctrl_c.abort();
    let _ = printer.await;
    trained.map_err(|e| match e {
        CommandTrainError::Model(e) => CliError::from(e),
        other => CliError::Failed(other.to_string()),
    })
}

/// Trains and reports; `Err` is a message for the person at the terminal.
pub async fn train(args: &TrainArgs) -> Result<(), CliError> {
    let (spec, text) = ModelSpec::load(&args.spec)?;
    let trained = trained(args, &spec, &text).await?;
    let bytes = trained.artifact.encode()?;
    let digest = tollgate_ml::artifact::digest(&bytes);
    if let Some(out) = &args.out {
        std::fs::write(out, &bytes).map_err(|e| CliError::file(out, e))?;
    }
    if args.json {
        let json = serde_json::json!({
            "model": spec.model,
            "algorithm": trained.artifact.meta.algorithm,
            "candidates": trained.candidates.iter().map(|c| serde_json::json!({
                "algorithm": c.algorithm,
                "value": c.value,
                "std": c.std,
                "folds": c.folds,
                "seconds": c.seconds,
                "chosen": c.chosen,
            })).collect::<Vec<_>>(),
            "selection_metric": spec.candidates.as_ref().map(|c| c.metric),
            "metrics": trained.metrics,
            "f1_optimal_threshold": trained.artifact.meta.optimal_threshold,
            "train_rows": trained.train_rows,
            "test_rows": trained.test_rows,
            "training_seconds": trained.seconds,
            "fit_seconds": trained.fit_seconds,
            "coerced_to_missing": trained.coerced.iter().map(|(c, n)| (c.clone(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
            "artifact_digest": digest,
            "artifact_bytes": bytes.len(),
        });
        say!("{json:#}");
        return Ok(());
    }
    if let Some(c) = &spec.candidates {
        let folds = spec.split.folds;
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "candidate".to_string(),
            match folds {
                Some(k) => format!("CV {} (mean ± std, {k} folds)", c.metric),
                None => format!("validation {}", c.metric),
            },
            "fit s".into(),
            "chosen".into(),
        ]);
        for r in &trained.candidates {
            t.add_row(vec![
                r.algorithm.clone(),
                match r.std {
                    Some(std) => format!("{:.4} ± {std:.4}", r.value),
                    None => format!("{:.4}", r.value),
                },
                format!("{:.2}", r.seconds),
                if r.chosen {
                    "✔".into()
                } else {
                    String::new()
                },
            ]);
        }
        say!("{t}");
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(vec!["held-out metric", "value"]);
    for (k, v) in &trained.metrics {
        t.add_row(vec![k.clone(), format!("{v:.4}")]);
    }
    say!("{t}");
    say!(
        "{} ({}) on {} rows, tested on {}: {:.2}s; F1-optimal threshold {:.4}",
        spec.model,
        trained.artifact.meta.algorithm,
        trained.train_rows,
        trained.test_rows,
        trained.seconds,
        trained.artifact.meta.optimal_threshold
    );
    for (column, n) in &trained.coerced {
        say!(
            "note: {n} values of {column} were NA, n/a, null or blank and count as missing (median-imputed)"
        );
    }
    match &args.out {
        Some(out) => say!(
            "artifact ({} bytes, sha256 {digest}) -> {}",
            bytes.len(),
            out.display()
        ),
        None => say!("artifact sha256 {digest} (save it with --out FILE)"),
    }
    Ok(())
}

/// `tollgate profile DATA --spec FILE [--json]`.
pub fn profile(data: &std::path::Path, spec: &std::path::Path, json: bool) -> Result<(), CliError> {
    let (spec, _) = ModelSpec::load(spec)?;
    let p = tollgate_ml::profile::of_file(data, &spec)?;
    if json {
        say!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "column",
        "count",
        "nulls",
        "distinct",
        "min",
        "p25",
        "median",
        "p75",
        "max",
        "mean",
        "stdev",
        "top categories",
    ]);
    let q = tollgate_ml::profile::QUANTILES - 1;
    for c in &p.columns {
        let mut row = vec![
            c.name.clone(),
            c.count.to_string(),
            c.nulls.to_string(),
            c.distinct.to_string(),
        ];
        match &c.numeric {
            Some(n) => {
                for v in [
                    n.min,
                    n.quantiles[q / 4],
                    n.quantiles[q / 2],
                    n.quantiles[3 * q / 4],
                    n.max,
                    n.mean,
                    n.std,
                ] {
                    row.push(format!("{v:.4}"));
                }
                row.push(String::new());
            }
            None => {
                row.extend(std::iter::repeat_n(String::new(), 7));
                let top: Vec<String> = c
                    .top
                    .iter()
                    .take(5)
                    .map(|(k, v)| format!("{k} ({v})"))
                    .collect();
                row.push(top.join(", "));
            }
        }
        t.add_row(row);
    }
    say!("{t}");
    say!("{} rows", p.rows);
    Ok(())
}

/// Scores a dataset with a saved artifact and writes `row,probability,prediction` CSV.
pub fn predict(args: &PredictArgs) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&args.threshold) {
        return Err(CliError::Usage(format!(
            "--threshold {} must be between 0 and 1",
            args.threshold
        )));
    }
    let bytes = std::fs::read(&args.model).map_err(|e| CliError::file(&args.model, e))?;
    let artifact = Artifact::decode(&bytes)
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.model.display())))?;
    let scores = tollgate_ml::grade::predict_file(&artifact, &args.data)?;
    let mut csv = String::with_capacity(scores.len() * 24 + 32);
    csv.push_str("row,probability,prediction\n");
    for (i, p) in scores.iter().enumerate() {
        csv.push_str(&format!("{i},{p:.6},{}\n", u8::from(*p >= args.threshold)));
    }
    match &args.out {
        Some(out) => {
            std::fs::write(out, csv).map_err(|e| CliError::file(out, e))?;
            eprintln!(
                "scored {} rows with {} -> {}",
                scores.len(),
                artifact.meta.model,
                out.display()
            );
        }
        None => {
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(csv.as_bytes());
        }
    }
    Ok(())
}
