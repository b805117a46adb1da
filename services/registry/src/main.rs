//! The `tollgate-registry` binary: loads config, starts telemetry and hands over to
//! [`tollgate_registry::run`] until SIGTERM or Ctrl-C.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(config) = tollgate_service::start::<tollgate_registry::Config>(
        "tollgate-registry",
        "Tollgate model registry: versions, stages, artifacts and run records over gRPC",
    )?
    else {
        return Ok(());
    };
    let _telemetry = tollgate_telemetry::init("tollgate-registry");
    let grace = config.shutdown_grace();
    tollgate_registry::run(config, tollgate_service::shutdown_signal_within(grace))
        .await
        .context("registry failed")
}
