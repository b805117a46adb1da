//! The `tollgate` CLI as a library: argument definitions and the commands, so tests can
//! drive it in-process and the binary stays thin.
//!
//! Exit codes: 0 the run passed (or the command succeeded), 1 the run ended `blocked` or
//! `failed`, 2 the command could not run (bad arguments, NATS or the registry unreachable,
//! no verdict in time).

/// Prints a line to stdout; a closed pipe (`tollgate ... | head`) ends output quietly
/// instead of panicking as `println!` would.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod alerts;
mod connect;
pub mod dev;
mod dlq;
mod error;
mod failing;
mod feedback;
mod output;
mod publish;
pub mod reference;
mod remote;

pub use dev::DevArgs;
pub use dlq::DlqCommand;
pub use feedback::FeedbackCommand;
pub use publish::{PublishArgs, PublishKind};
pub use report::ReportFormat;
pub use rollout::RolloutCommand;
pub use shadow::ShadowCommand;
pub use show::{DecisionArgs, ModelsArgs, ModelsCommand, RunsArgs, RunsCommand};
pub use tokens::TokenCommand;
pub use train::{PredictArgs, TrainArgs};
pub use validate::ValidateArgs;
pub use webhook::WebhookCommand;
mod report;
mod rollout;
mod shadow;
pub mod show;
mod specs;
mod tokens;

pub use tokens::{NatsWritten, nats_config};
mod train;
mod upload;
mod validate;
mod webhook;

pub use error::CliError;

use std::path::PathBuf;
use tollgate_pipeline::Stores;

use clap::{Parser, Subcommand};
use tollgate_ml::synth::{SynthOptions, churn};

/// Exit code of a passed run or a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of a run that ended `blocked` or `failed`.
pub const EXIT_VERDICT: u8 = 1;
/// Exit code of a command that could not run.
pub const EXIT_ERROR: u8 = 2;

/// Tollgate: continuous integration and delivery for machine-learning models.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, long_about = None)]
pub struct Cli {
    /// NATS server URL [default: the running `tollgate dev` stack's (found through
    /// `TOLLGATE_DATA_DIR` or the nearest `.tollgate/`), else nats://127.0.0.1:4222].
    #[arg(long, global = true, env = "TOLLGATE_NATS_URL")]
    pub nats_url: Option<String>,
    /// URL of the registry's gRPC API [default: the running `tollgate dev` stack's, else
    /// http://127.0.0.1:50051].
    #[arg(long, global = true, env = "TOLLGATE_REGISTRY_URL")]
    pub registry_url: Option<String>,
    /// Who you are: recorded as the requester of published runs. With a registry token
    /// (`TOLLGATE_TOKEN`) approvals and the audit trail record the token's identity, and
    /// this is only a label that must match it [default: the token's identity, else $USER;
    /// a published run's requester: the CI actor (`GITHUB_ACTOR`), else those].
    #[arg(long = "as", global = true, env = "TOLLGATE_USER")]
    pub identity: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

fn default_identity() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

pub use tollgate_stack::SERVICES;

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole stack locally until Ctrl-C: a JetStream nats-server (store in the
    /// data directory) and the six services; state survives restarts.
    #[command(
        after_help = "Then, in another terminal in the same directory, `tollgate runs`, `tollgate publish ...` find the stack by themselves.\nExample:\n  tollgate dev\n  tollgate publish data --spec examples/churn/tollgate.yaml --dataset churn.parquet --wait"
    )]
    Dev(DevArgs),
    /// Generate or push datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Publish a trigger (a code, data or manual change) and optionally wait for the verdict.
    Publish(PublishArgs),
    /// List recent runs, or show one run in full with `runs show RUN`.
    Runs(RunsArgs),
    /// List model versions; `models show NAME|URI` for versions, gate decision and audit trail.
    Models(ModelsArgs),
    /// Validate a dataset with the data-validator's own engine, locally, without NATS
    /// (exit 0 all expectations met, 1 some failed, 2 could not run).
    Validate(ValidateArgs),
    /// Train the spec's model on a dataset with the trainer's own code, locally, without
    /// NATS: prints held-out metrics, the F1-optimal threshold and the training time, and
    /// each candidate's validation score when the spec lists `candidates`.
    #[command(
        after_help = "Algorithms (spec `algorithm: {kind: ...}` or `candidates: {metric, algorithms: [...]}`):\n  logistic_regression   alpha, max_iterations\n  decision_tree         max_depth, min_samples_split, min_samples_leaf, min_impurity_decrease, criterion\n  random_forest         trees, feature_fraction, sample_fraction, and the tree's parameters\n  gaussian_naive_bayes  var_smoothing\n  gradient_boosting     learning_rate, trees, max_depth, min_samples_leaf, l2, validation_fraction, early_stopping_rounds\nExample: examples/churn/candidates.yaml"
    )]
    Train(TrainArgs),
    /// Profile a dataset's feature columns: counts, nulls, distinct, min / max / mean /
    /// stdev / quartiles, top categories.
    Profile {
        /// The dataset: .parquet or .csv.
        data: PathBuf,
        /// The model spec naming the columns.
        #[arg(long)]
        spec: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Score a dataset with a saved model artifact (from `train --out` or `models download`).
    Predict(PredictArgs),
    /// Approve a Staging version for Production (you must be on the spec's approvers list).
    Approve(DecisionArgs),
    /// Reject a Staging version for Production.
    Reject(DecisionArgs),
    /// Override a blocked gate decision, sending the version to Staging (approvers only).
    Override(DecisionArgs),
    /// Bring back the previous Production version.
    Rollback {
        /// The model.
        model: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Make a spec its model's policy (as `kubectl apply` does), without starting a run:
    /// its approvers, gates (as a floor), plans, schedules and data source govern every
    /// run from now on; a spec a trigger carries may only propose changes to them. Needs
    /// an admin's registry token.
    Apply {
        /// The model spec (tollgate.yaml).
        spec: PathBuf,
        /// Allow schedule slots less than a minute apart (refused otherwise).
        #[arg(long)]
        allow_frequent_schedule: bool,
    },
    /// List the applied specs: model, digest, when applied, data source, schedules.
    Specs,
    /// A run as Markdown (verdict, stages, failing expectations, gate checks, metrics
    /// against Production), e.g. for a pull-request comment.
    Report {
        /// The run id.
        run_id: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "markdown")]
        format: ReportFormat,
    },
    /// List each model's schedules: next slots and the last one fired.
    Schedules {
        /// How many upcoming slots to show per schedule.
        #[arg(long, default_value_t = 3)]
        next: usize,
    },
    /// The dead letters: messages a service gave up on (malformed, or failing every
    /// attempt), with the reason; replay one once the cause is fixed.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Labels that arrive later for the model server's answers (`push`), and each
    /// version's live metrics on them (`status`).
    #[command(subcommand)]
    Feedback(FeedbackCommand),
    /// Mirror a share of Production's requests to a blessed version and compare them,
    /// without changing any response: `start`, `stop`, `status`.
    #[command(subcommand)]
    Shadow(ShadowCommand),
    /// The rollout of an approved version (the policy's `rollout:`): `status`, and for
    /// approvers `pause`, `resume`, `abort` and `promote`.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Events delivered to where people are (admin or operator): `add`, `list`,
    /// `remove`, `test`, and the delivery log (`deliveries`, `redeliver`).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Print the CLI reference (every command's help) as Markdown, for the book.
    #[command(hide = true)]
    CliReference,
    /// Write a nats-server config with one nkey user per Tollgate identity (each service,
    /// ci, viewer, operator, admin) and what each may publish and subscribe to, plus a
    /// `.creds` file per identity for `TOLLGATE_NATS_CREDS` and a `.nk` seed file for the
    /// standard NATS clients (nats-py's `nkeys_seed`, Go's `NkeyOptionFromSeed`). Existing
    /// `.creds` files are kept (delete one to rotate its key).
    #[command(
        after_help = "Example:\n  tollgate nats-config --out /etc/tollgate/nats\n  nats-server -c /etc/tollgate/nats/nats-server.conf -js -sd /var/lib/nats\n  TOLLGATE_NATS_CREDS=/etc/tollgate/nats/trainer.creds tollgate-trainer"
    )]
    NatsConfig {
        /// The directory to write nats-server.conf and the .creds files into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Registry tokens: `token create --identity carol --role approver` prints a new token
    /// and adds its digest to the token file; `token list`, `token revoke`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The spec's alert rules for each model: firing first, with the runs that fired them
    /// (`alerts:` in the spec; each fires on tollgate.alert.<rule>).
    Alerts {
        /// Only the firing ones.
        #[arg(long)]
        firing: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `tollgate data ...`
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write a seeded synthetic churn dataset (Parquet or CSV by the file extension).
    Generate {
        /// Number of rows.
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        /// Output file: .parquet or .csv.
        #[arg(long)]
        out: PathBuf,
        /// Seed: the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Inject nulls into customer_id and ages outside 0..120.
        #[arg(long)]
        dirty: bool,
    },
    /// Bring a dataset kept elsewhere (`s3://`, `gs://`, `az://` object; `postgres://`
    /// table or query, written as Parquet) to a local file, as a stage reads it. Credentials
    /// come from the cloud's standard variables and `PGPASSWORD` or `~/.pgpass`.
    Pull {
        /// The dataset, e.g. `s3://bucket/key.parquet` or
        /// `postgres://user@host/db?table=customers`.
        uri: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Push a dataset file into the object store (or, with `--to`, into a bucket); prints
    /// the URI to publish with.
    Push {
        /// The file.
        path: PathBuf,
        /// Name in the store (default: the file name).
        #[arg(long, conflicts_with = "to")]
        name: Option<String>,
        /// A bucket object to upload to instead (`s3://bucket/incoming/x.parquet`, `gs://…`,
        /// `az://…`), with the cloud's standard credentials.
        #[arg(long)]
        to: Option<String>,
    },
}

/// Runs a parsed command line; returns the process exit code: 0 success, 1 a run or
/// validation that did not pass, 2 a command that could not run.
pub async fn run(cli: Cli) -> u8 {
    match execute(cli).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            if !matches!(e, CliError::Verdict(_)) {
                eprintln!("error: {e}");
            }
            e.exit_code()
        }
    }
}

/// The NATS and registry URLs: the ones given, else the running dev stack's, else the
/// defaults of a local install.
fn addresses(nats: Option<String>, registry: Option<String>) -> (String, String) {
    let stack = match (&nats, &registry) {
        (Some(_), Some(_)) => None,
        _ => tollgate_stack::discover(),
    };
    let nats = nats
        .or_else(|| stack.as_ref().map(|s| s.nats_url.clone()))
        .unwrap_or_else(|| tollgate_service::NATS_URL.into());
    let registry = registry
        .or_else(|| stack.map(|s| s.registry_url))
        .unwrap_or_else(|| tollgate_service::REGISTRY_URL.into());
    (nats, registry)
}

async fn execute(cli: Cli) -> Result<(), CliError> {
    let command = match cli.command {
        Command::Dev(args) => return dev::dev(args).await,
        other => other,
    };
    let (nats_url, registry_url) = addresses(cli.nats_url, cli.registry_url);
    let named = cli.identity.clone();
    let identity = cli.identity.unwrap_or_else(|| {
        if show::token().is_empty() {
            default_identity()
        } else {
            String::new()
        }
    });
    let cli = Resolved {
        nats_url,
        registry_url,
        identity,
    };
    match command {
        Command::Dev(_) => Ok(()),
        Command::Data(DataCommand::Generate {
            rows,
            out,
            seed,
            dirty,
        }) => generate(rows, &out, seed, dirty),
        Command::Data(DataCommand::Push {
            path, to: Some(to), ..
        }) => remote::push_to(&path, &to).await,
        Command::Data(DataCommand::Push { path, name, .. }) => {
            push(&cli.nats_url, &path, name).await
        }
        Command::Data(DataCommand::Pull { uri, out }) => remote::pull(&uri, &out).await,
        Command::Publish(args) => {
            // `--as` names the requester; in CI, the actor who pushed (GITHUB_ACTOR).
            let requester = named
                .filter(|n| !n.is_empty())
                .or_else(|| Some(args.actor.clone()).filter(|a| !a.is_empty()))
                .or_else(|| Some(cli.identity.clone()).filter(|i| !i.is_empty()))
                .unwrap_or_else(default_identity);
            publish::publish(&cli.nats_url, &cli.registry_url, &requester, args).await
        }
        Command::Token(command) => tokens::run(command),
        Command::CliReference => {
            print!("{}", reference::markdown());
            Ok(())
        }
        Command::NatsConfig { out } => {
            let written = tokens::nats_config(&out)?;
            say!(
                "wrote {} and {} credentials files into {}",
                written.config.display(),
                written.identities,
                out.display()
            );
            Ok(())
        }
        Command::Validate(args) => validate::run(args).await,
        Command::Train(args) => train::train(&args).await,
        Command::Predict(args) => train::predict(&args),
        Command::Profile { data, spec, json } => train::profile(&data, &spec, json),
        Command::Runs(args) if args.watch => publish::watch(&cli.nats_url).await,
        Command::Runs(RunsArgs {
            show: Some(RunsCommand::Failures(args)),
            ..
        }) => failing::run(&cli.registry_url, &cli.nats_url, args).await,
        Command::Runs(args) => show::runs(&cli.registry_url, args).await,
        Command::Models(args) => {
            show::models_command(&cli.registry_url, &cli.nats_url, &cli.identity, args).await
        }
        Command::Approve(d) => {
            show::decide(&cli.registry_url, &cli.identity, d, show::Decision::Approve).await
        }
        Command::Reject(d) => {
            show::decide(&cli.registry_url, &cli.identity, d, show::Decision::Reject).await
        }
        Command::Override(d) => {
            show::decide(
                &cli.registry_url,
                &cli.identity,
                d,
                show::Decision::Override,
            )
            .await
        }
        Command::Apply {
            spec,
            allow_frequent_schedule,
        } => {
            let how = specs::Apply {
                token: show::token(),
                identity: cli.identity.clone(),
                allow_frequent_schedule,
            };
            specs::apply(&cli.nats_url, &cli.registry_url, &how, &spec).await
        }
        Command::Specs => specs::list(&cli.nats_url).await,
        Command::Report { run_id, format } => match format {
            ReportFormat::Markdown => report::report(&cli.registry_url, &run_id).await,
        },
        Command::Schedules { next } => specs::schedules(&cli.nats_url, next).await,
        Command::Dlq(DlqCommand::List { json }) => dlq::list(&cli.nats_url, json).await,
        Command::Alerts { firing, json } => alerts::list(&cli.nats_url, firing, json).await,
        Command::Dlq(DlqCommand::Replay { id }) => dlq::replay(&cli.nats_url, id).await,
        Command::Feedback(command) => feedback::run(&cli.nats_url, command).await,
        Command::Shadow(command) => {
            shadow::run(&cli.registry_url, &cli.nats_url, &cli.identity, command).await
        }
        Command::Webhook(command) => webhook::run(&cli.registry_url, command).await,
        Command::Rollout(command) => {
            rollout::run(&cli.registry_url, &cli.nats_url, &cli.identity, command).await
        }
        Command::Rollback { model, reason } => {
            show::rollback(&cli.registry_url, &cli.identity, &model, &reason).await
        }
    }
}

/// Connects the CLI to NATS at `url`: signed in with `TOLLGATE_NATS_CREDS` (and
/// `TOLLGATE_NATS_CA`), else, for the running dev stack's server, its operator
/// credentials.
pub(crate) async fn connect_bus(url: &str) -> Result<tollgate_bus::Bus, tollgate_bus::BusError> {
    let mut auth = tollgate_bus::bus::Options::from_env();
    if auth.creds.is_none() {
        auth.creds = tollgate_stack::discover()
            .filter(|s| s.nats_url == url && !s.nats_creds.is_empty())
            .map(|s| PathBuf::from(s.nats_creds));
    }
    tollgate_bus::Bus::connect_with(url, &auth).await
}

/// The global options with the addresses resolved.
struct Resolved {
    nats_url: String,
    registry_url: String,
    identity: String,
}

fn generate(rows: usize, out: &std::path::Path, seed: u64, dirty: bool) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let mut df = churn(SynthOptions { rows, seed, dirty })
        .map_err(|e| CliError::Usage(format!("cannot generate data: {e}")))?;
    tollgate_ml::data::write(&mut df, out)?;
    say!(
        "wrote {rows} rows{} to {} in {:.2}s",
        if dirty { " (dirty)" } else { "" },
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn push(
    nats_url: &str,
    path: &std::path::Path,
    name: Option<String>,
) -> Result<(), CliError> {
    let name = match name {
        Some(n) => n,
        None => path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .ok_or_else(|| CliError::Usage(format!("{} has no file name", path.display())))?,
    };
    let bus = connect_bus(nats_url).await?;
    let uri = bus.datasets().push(path, &name).await?;
    say!("{uri}");
    Ok(())
}
