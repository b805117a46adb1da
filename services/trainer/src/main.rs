//! The `tollgate-trainer` binary: loads config, starts telemetry and hands over to
//! [`tollgate_trainer::run`] until SIGTERM or Ctrl-C.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(config) = tollgate_service::start::<tollgate_trainer::Config>(
        "tollgate-trainer",
        "Tollgate trainer: trains each run's model with linfa and registers the version",
    )?
    else {
        return Ok(());
    };
    let _telemetry = tollgate_telemetry::init("tollgate-trainer");
    let grace = config.shutdown_grace();
    tollgate_trainer::run(config, tollgate_service::shutdown_signal_within(grace))
        .await
        .context("trainer failed")
}
