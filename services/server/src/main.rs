//! The `tollgate-server` binary: loads config, starts telemetry and hands over to
//! [`tollgate_server::run`] until SIGTERM or Ctrl-C.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(config) = tollgate_service::start::<tollgate_server::Config>(
        "tollgate-server",
        "Tollgate model server: serves registry versions over the Open Inference Protocol (KServe v2), swaps them on stage changes and samples served inputs for drift",
    )?
    else {
        return Ok(());
    };
    let _telemetry = tollgate_telemetry::init("tollgate-server");
    let grace = config.shutdown_grace();
    tollgate_server::run(config, tollgate_service::shutdown_signal_within(grace))
        .await
        .context("server failed")
}
