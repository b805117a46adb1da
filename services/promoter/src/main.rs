//! The `tollgate-promoter` binary: loads config, starts telemetry and hands over to
//! [`tollgate_promoter::run`] until SIGTERM or Ctrl-C.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(config) = tollgate_service::start::<tollgate_promoter::Config>(
        "tollgate-promoter",
        "Tollgate promoter: moves blessed versions to Staging",
    )?
    else {
        return Ok(());
    };
    let _telemetry = tollgate_telemetry::init("tollgate-promoter");
    let grace = config.shutdown_grace();
    tollgate_promoter::run(config, tollgate_service::shutdown_signal_within(grace))
        .await
        .context("promoter failed")
}
