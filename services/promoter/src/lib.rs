//! The promoter moves blessed versions between registry stages.
//!
//! Consumes `tollgate.stage.promote`. Moves the run's version to Staging through the
//! registry (compare-and-set on the stage pointer; the previous Staging version is
//! archived) and publishes the run to its next stage, or ends it `passed`. Production
//! transitions need approvals and are refused by the registry until they exist.

use serde::{Deserialize, Serialize};
use tollgate_bus::{
    StageContext, StageDone, StageError, StageHandler, StageOutcome, defaults, service, worker,
};
use tollgate_proto::{ModelStage, Run, TransitionStageRequest};

/// Errors that stop the promoter.
pub type Error = service::ServiceError;

/// Promoter configuration (file, then `TOLLGATE_*` environment variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// NATS server URL.
    pub nats_url: String,
    /// Address of the health endpoint (`/healthz`).
    pub health_addr: String,
    /// URL of the registry's gRPC API.
    pub registry_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats_url: defaults::NATS_URL.into(),
            health_addr: defaults::HEALTH_ADDR.into(),
            registry_url: defaults::REGISTRY_URL.into(),
        }
    }
}

/// Runs the promoter until `shutdown`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), Error>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = service::token_from(shutdown);
    let registry = defaults::registry_client(&config.registry_url)?;
    worker::serve_stage(
        &config.nats_url,
        &config.health_addr,
        "promote",
        Promoter { registry },
        token,
    )
    .await
}

struct Promoter {
    registry: tollgate_proto::RegistryClient<tonic::transport::Channel>,
}

impl StageHandler for Promoter {
    async fn handle(&self, run: Run, _ctx: StageContext) -> Result<StageDone, StageError> {
        if run.model_version == 0 {
            return Err(StageError::Input(
                "no version to promote: the plan must train before it promotes".into(),
            ));
        }
        if run.gate.as_ref().is_some_and(|g| !g.blessed) {
            return Err(StageError::Input(format!(
                "{} v{} was not blessed by the gate",
                run.model, run.model_version
            )));
        }
        let v = self
            .registry
            .clone()
            .transition_stage(TransitionStageRequest {
                model: run.model.clone(),
                version: run.model_version,
                to: ModelStage::Staging as i32,
                archive_existing: true,
                actor: "promoter".into(),
                reason: format!("run {} passed its gate", run.run_id),
                run_id: run.run_id.clone(),
            })
            .await
            .map_err(worker::grpc_error)?
            .into_inner();
        let message = format!("{} v{} is now in {}", v.model, v.version, v.stage().name());
        Ok(StageDone {
            run,
            outcome: StageOutcome::Passed(message),
        })
    }
}
