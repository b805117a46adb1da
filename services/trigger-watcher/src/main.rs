//! The `tollgate-trigger-watcher` binary: loads config, starts telemetry and hands over to
//! [`tollgate_trigger_watcher::run`] until SIGTERM or Ctrl-C.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(config) = tollgate_service::start::<tollgate_trigger_watcher::Config>(
        "tollgate-trigger-watcher",
        "Tollgate trigger-watcher: turns code, data and manual triggers into pipeline runs",
    )?
    else {
        return Ok(());
    };
    let _telemetry = tollgate_telemetry::init("tollgate-trigger-watcher");
    let grace = config.shutdown_grace();
    tollgate_trigger_watcher::run(config, tollgate_service::shutdown_signal_within(grace))
        .await
        .context("trigger-watcher failed")
}
