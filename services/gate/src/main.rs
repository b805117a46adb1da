//! The `tollgate-gate` binary: loads config, starts telemetry and hands over to
//! [`tollgate_gate::run`] until SIGTERM or Ctrl-C.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(config) = tollgate_service::start::<tollgate_gate::Config>(
        "tollgate-gate",
        "Tollgate gate: grades each candidate version against the spec's quality gates",
    )?
    else {
        return Ok(());
    };
    let _telemetry = tollgate_telemetry::init("tollgate-gate");
    let grace = config.shutdown_grace();
    tollgate_gate::run(config, tollgate_service::shutdown_signal_within(grace))
        .await
        .context("gate failed")
}
