//! The `tollgate-data-validator` binary: loads config, starts telemetry and hands over to
//! [`tollgate_data_validator::run`] until SIGTERM or Ctrl-C.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(config) = tollgate_service::start::<tollgate_data_validator::Config>(
        "tollgate-data-validator",
        "Tollgate data-validator: runs the model spec's expectation suite on each run's dataset",
    )?
    else {
        return Ok(());
    };
    let _telemetry = tollgate_telemetry::init("tollgate-data-validator");
    let grace = config.shutdown_grace();
    tollgate_data_validator::run(config, tollgate_service::shutdown_signal_within(grace))
        .await
        .context("data-validator failed")
}
