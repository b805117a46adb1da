//! The model registry: model versions, their stages, artifacts and the run records.
//!
//! Serves the `tollgate.v1.Registry` gRPC service (tonic). State lives in JetStream: model
//! versions and stage pointers in the `tollgate_models` KV bucket, changed by
//! compare-and-set on the entry revision so two racing promotions cannot both win;
//! artifacts in the `tollgate_artifacts` object store, digest-checked on every read; run
//! records in `tollgate_runs`, kept from the run events it consumes on `tollgate.run.>`.
//!
//! Production needs a recorded approval by an identity on the spec's `approvers:` list;
//! an approval starts a `production` run for the promoter, a gate override by an approver
//! a `promote` run. With a `rollout:` policy, the promoter's Production stage starts a
//! rollout the registry drives step by step (`store::rollouts`). Every change to a version
//! lands in its audit trail.
//!
//! Consumes: `tollgate.run.>` (durable `registry-runs`). Publishes: `tollgate.trigger.model`
//! on every change to a version; `tollgate.stage.production` / `.promote` (with
//! `tollgate.run.<id>.created`) after an approval or an override.

pub mod auth;
pub mod console;
pub mod dashboard;
pub mod error;
pub mod pipeline_metrics;
mod policy;
mod specs;
mod store;
pub mod webhooks;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tollgate_bus::{Bus, BusError};
use tollgate_proto::{
    AppliedSpec, ApplySpecRequest, Approval, ApprovalRequest, Artifact, ControlRolloutRequest,
    GetRolloutRequest, GetRunRequest, GetShadowRequest, GetVersionRequest, LatestByStageRequest,
    ListDeliveriesRequest, ListDeliveriesResponse, ListRunsRequest, ListRunsResponse,
    ListVersionsRequest, ListVersionsResponse, ListWebhooksRequest, ListWebhooksResponse,
    ModelVersion, OverrideRequest, RecordGateRequest, RegisterVersionRequest, Registry,
    RegistryServer, ResolveRequest, RollbackRequest, Rollout, RunSummary, SetAliasRequest,
    SetShadowRequest, Shadow, StartRolloutRequest, TransitionStageRequest, UpdateVersionRequest,
    Webhook, WebhookDelivery, WebhookId,
};
use tollgate_service::{GRPC_ADDR, HEALTH_ADDR, NatsConfig, tokens::Role};
use tonic::{Request, Response, Status};
use tracing::info;

pub use store::RegistryError;

/// Registry configuration (file, then `TOLLGATE_*` environment variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The NATS server.
    pub nats: NatsConfig,
    /// Address the gRPC server listens on.
    pub grpc_addr: String,
    /// Address of the health endpoint (`/healthz`).
    pub health_addr: String,
    /// The token file (`TOLLGATE_TOKENS_FILE`): with one, every call needs a bearer token
    /// whose digest it holds; without one the registry is open.
    pub tokens_file: Option<std::path::PathBuf>,
    /// The gRPC server's TLS certificate chain (PEM, `TOLLGATE_TLS_CERT`); with
    /// `tls_key`, the registry serves TLS only. Unset: plain HTTP/2.
    pub tls_cert: Option<std::path::PathBuf>,
    /// Its private key (PEM, `TOLLGATE_TLS_KEY`).
    pub tls_key: Option<std::path::PathBuf>,
    /// Seconds the work in hand gets to finish on SIGTERM or Ctrl-C; the process ends
    /// within this and a second more.
    pub shutdown_grace_secs: u64,
    /// The console's address as people reach it (`TOLLGATE_CONSOLE_URL`, e.g.
    /// `https://tollgate.example.com`), for the links in webhook events. Unset: the
    /// registry's own HTTP address.
    pub console_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nats: NatsConfig::default(),
            grpc_addr: GRPC_ADDR.into(),
            health_addr: HEALTH_ADDR.into(),
            tokens_file: None,
            tls_cert: None,
            tls_key: None,
            shutdown_grace_secs: tollgate_service::SHUTDOWN_GRACE_SECS,
            console_url: None,
        }
    }
}

pub use tollgate_proto::MAX_MESSAGE_BYTES;

impl Config {
    /// How long the work in hand gets on shutdown.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The console's base URL: `console_url`, else the HTTP address (one that listens on
    /// every interface is reached on loopback).
    pub fn console(&self) -> String {
        match &self.console_url {
            Some(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
            _ => format!(
                "http://{}",
                self.health_addr
                    .replace("0.0.0.0", "127.0.0.1")
                    .replace("[::]", "127.0.0.1")
            ),
        }
    }
}

/// Runs the registry until `shutdown`, listening on `config.grpc_addr`.
pub async fn run<F>(config: Config, shutdown: F) -> Result<(), RegistryError>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(&config.grpc_addr)
        .await
        .map_err(|source| RegistryError::Listen {
            addr: config.grpc_addr.clone(),
            source,
        })?;
    serve(config, listener, shutdown).await
}

/// Runs the registry on an already bound listener (tests bind port 0 and pass it here).
pub async fn serve<F>(
    config: Config,
    listener: TcpListener,
    shutdown: F,
) -> Result<(), RegistryError>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let token = tollgate_service::token_from(shutdown);
    let connected = config
        .nats
        .connect_or_stop(&token)
        .await
        .map_err(|e| RegistryError::Service(Box::new(e)))?;
    let Some(bus) = connected else {
        return Ok(());
    };
    let bus = bus.with_shutdown_grace(config.shutdown_grace());
    let auth = auth::Authenticator::new(config.tokens_file.clone());
    let sender = webhooks::Sender::new(bus.clone(), config.console());
    let service = RegistryService {
        bus: bus.clone(),
        sender: sender.clone(),
    };
    tollgate_service::serve_http(
        &config.health_addr,
        "registry",
        dashboard::routes(service.clone(), auth.clone()),
        token.clone(),
    )
    .await
    .map_err(|e| RegistryError::Service(Box::new(e)))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|source| RegistryError::Listen {
            addr: config.grpc_addr.clone(),
            source,
        })?;
    info!(%addr, "registry gRPC listening");
    let runs_task = tokio::spawn(store::runs::keep_run_records(bus.clone(), token.clone()));
    let rollouts_task = tokio::spawn(store::drive_rollouts(bus.clone(), token.clone()));
    let webhook_tasks = [
        tokio::spawn(webhooks::follow(bus.clone(), sender.clone(), token.clone())),
        tokio::spawn(sender.resume(token.clone())),
    ];
    let svc = RegistryServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let svc = tonic::service::interceptor::InterceptedService::new(svc, move |r| auth.intercept(r));
    let stop = token.clone();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls(&config)? {
        builder = builder.tls_config(tls).map_err(RegistryError::Serve)?;
        info!("registry gRPC serves TLS only");
    }
    builder
        .timeout(tollgate_proto::CALL_TIMEOUT)
        .trace_fn(|request| {
            use tracing_opentelemetry::OpenTelemetrySpanExt as _;
            let span = tracing::info_span!("grpc", path = %request.uri().path());
            let parent = opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&tollgate_proto::HeaderExtractor(request.headers()))
            });
            let _ = span.set_parent(parent);
            span
        })
        .add_service(svc)
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a response's last segment waits on the client's delayed
            // ACK: 40 ms added to every call that writes more than one segment.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move { stop.cancelled().await },
        )
        .await
        .map_err(RegistryError::Serve)?;
    token.cancel();
    let _ = rollouts_task.await;
    futures::future::join_all(webhook_tasks).await;
    match runs_task.await {
        Ok(result) => result.map_err(RegistryError::from),
        Err(e) => Err(RegistryError::Internal(format!(
            "run-record task panicked: {e}"
        ))),
    }
}

/// The server's TLS settings from `tls_cert` and `tls_key`; both or neither.
fn tls(config: &Config) -> Result<Option<tonic::transport::ServerTlsConfig>, RegistryError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| {
            RegistryError::Internal(format!("cannot read TLS file {}: {e}", p.display()))
        })
    };
    match (&config.tls_cert, &config.tls_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(read(cert)?, read(key)?),
        ))),
        _ => Err(RegistryError::Internal(
            "set both tls_cert and tls_key (TOLLGATE_TLS_CERT, TOLLGATE_TLS_KEY), or neither"
                .into(),
        )),
    }
}

/// The identity a service's or person's change is recorded under: the token's, with the
/// name the caller gave kept beside it when they differ (`promoter (as trainer-1)`); on an
/// open registry, the name given.
fn recorded(caller: &auth::Caller, given: String) -> String {
    match caller.role {
        None => given,
        Some(_) if given.is_empty() || given == caller.identity => caller.identity.clone(),
        Some(_) => format!("{} (as {given})", caller.identity),
    }
}

/// The gRPC face of the registry (the console calls it too, with the caller's token).
#[derive(Clone)]
pub struct RegistryService {
    bus: Bus,
    sender: webhooks::Sender,
}

impl RegistryService {
    /// The NATS connection it keeps its state through.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }
}

impl From<BusError> for RegistryError {
    fn from(e: BusError) -> Self {
        RegistryError::Unavailable(Box::new(e))
    }
}

#[tonic::async_trait]
impl Registry for RegistryService {
    async fn register_version(
        &self,
        request: Request<RegisterVersionRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        auth::caller(&request).require(&[Role::Trainer], "register versions")?;
        Ok(Response::new(
            store::register(&self.bus, request.into_inner()).await?,
        ))
    }

    async fn get_version(
        &self,
        request: Request<GetVersionRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            store::version(&self.bus, &r.model, r.version).await?.0,
        ))
    }

    async fn list_versions(
        &self,
        request: Request<ListVersionsRequest>,
    ) -> Result<Response<ListVersionsResponse>, Status> {
        let r = request.into_inner();
        let stage = r.filter_stage.then(|| r.stage());
        let versions = store::list_versions(&self.bus, &r.model, stage, &r.tag).await?;
        Ok(Response::new(ListVersionsResponse { versions }))
    }

    async fn latest_by_stage(
        &self,
        request: Request<LatestByStageRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            store::latest_by_stage(&self.bus, &r.model, r.stage()).await?,
        ))
    }

    async fn transition_stage(
        &self,
        request: Request<TransitionStageRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Promoter], "move stages")?;
        let mut r = request.into_inner();
        r.actor = recorded(&caller, r.actor);
        Ok(Response::new(store::transition(&self.bus, r).await?))
    }

    async fn get_artifact(
        &self,
        request: Request<GetVersionRequest>,
    ) -> Result<Response<Artifact>, Status> {
        let r = request.into_inner();
        Ok(Response::new(
            store::artifact(&self.bus, &r.model, r.version).await?,
        ))
    }

    async fn approve(
        &self,
        request: Request<ApprovalRequest>,
    ) -> Result<Response<Approval>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Approver], "approve or reject")?;
        let mut r = request.into_inner();
        r.approver = caller.label(&r.approver)?;
        Ok(Response::new(store::approve(&self.bus, &caller, r).await?))
    }

    async fn r#override(
        &self,
        request: Request<OverrideRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Approver], "override the gate")?;
        let mut r = request.into_inner();
        r.approver = caller.label(&r.approver)?;
        Ok(Response::new(
            store::override_gate(&self.bus, &caller, r).await?,
        ))
    }

    async fn rollback(
        &self,
        request: Request<RollbackRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Approver], "roll back")?;
        let mut r = request.into_inner();
        r.actor = caller.label(&r.actor)?;
        Ok(Response::new(store::rollback(&self.bus, &caller, r).await?))
    }

    async fn update_version(
        &self,
        request: Request<UpdateVersionRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let caller = auth::caller(&request);
        caller.require(
            &[Role::Approver, Role::Admin],
            "change descriptions and tags",
        )?;
        let mut r = request.into_inner();
        r.actor = caller.label(&r.actor)?;
        Ok(Response::new(store::update(&self.bus, &caller, r).await?))
    }

    async fn set_alias(
        &self,
        request: Request<SetAliasRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Approver, Role::Admin], "set aliases")?;
        let mut r = request.into_inner();
        r.actor = caller.label(&r.actor)?;
        Ok(Response::new(
            store::set_alias(&self.bus, &caller, r).await?,
        ))
    }

    async fn set_shadow(
        &self,
        request: Request<SetShadowRequest>,
    ) -> Result<Response<Shadow>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Approver, Role::Admin], "start or stop shadows")?;
        let mut r = request.into_inner();
        r.actor = caller.label(&r.actor)?;
        Ok(Response::new(
            store::set_shadow(&self.bus, &caller, r).await?,
        ))
    }

    async fn start_rollout(
        &self,
        request: Request<StartRolloutRequest>,
    ) -> Result<Response<Rollout>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Promoter], "start rollouts")?;
        let mut r = request.into_inner();
        r.actor = recorded(&caller, r.actor);
        Ok(Response::new(store::start_rollout(&self.bus, r).await?))
    }

    async fn get_rollout(
        &self,
        request: Request<GetRolloutRequest>,
    ) -> Result<Response<Rollout>, Status> {
        Ok(Response::new(
            store::get_rollout(&self.bus, &request.into_inner().model).await?,
        ))
    }

    async fn control_rollout(
        &self,
        request: Request<ControlRolloutRequest>,
    ) -> Result<Response<Rollout>, Status> {
        let caller = auth::caller(&request);
        caller.require(
            &[Role::Approver, Role::Admin],
            "pause, resume, abort or promote rollouts",
        )?;
        let mut r = request.into_inner();
        r.actor = caller.label(&r.actor)?;
        Ok(Response::new(
            store::control_rollout(&self.bus, &caller, r).await?,
        ))
    }

    async fn add_webhook(&self, request: Request<Webhook>) -> Result<Response<Webhook>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Admin, Role::Operator], "add webhooks")?;
        let mut hook = request.into_inner();
        hook.created_by = recorded(&caller, hook.created_by);
        Ok(Response::new(webhooks::add(&self.bus, hook).await?))
    }

    async fn list_webhooks(
        &self,
        request: Request<ListWebhooksRequest>,
    ) -> Result<Response<ListWebhooksResponse>, Status> {
        auth::caller(&request).require(&[Role::Admin, Role::Operator], "list webhooks")?;
        let webhooks = webhooks::list(&self.bus)
            .await?
            .into_iter()
            .map(webhooks::hidden)
            .collect();
        Ok(Response::new(ListWebhooksResponse { webhooks }))
    }

    async fn remove_webhook(
        &self,
        request: Request<WebhookId>,
    ) -> Result<Response<Webhook>, Status> {
        auth::caller(&request).require(&[Role::Admin, Role::Operator], "remove webhooks")?;
        Ok(Response::new(
            webhooks::remove(&self.bus, &request.into_inner().id).await?,
        ))
    }

    async fn test_webhook(
        &self,
        request: Request<WebhookId>,
    ) -> Result<Response<WebhookDelivery>, Status> {
        auth::caller(&request).require(&[Role::Admin, Role::Operator], "test webhooks")?;
        Ok(Response::new(
            self.sender.test(&request.into_inner().id).await?,
        ))
    }

    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        auth::caller(&request)
            .require(&[Role::Admin, Role::Operator], "read webhook deliveries")?;
        let r = request.into_inner();
        let limit = if r.limit == 0 { 50 } else { r.limit as usize };
        let deliveries = webhooks::deliveries(&self.bus, r.failed, limit).await?;
        Ok(Response::new(ListDeliveriesResponse { deliveries }))
    }

    async fn redeliver(
        &self,
        request: Request<WebhookId>,
    ) -> Result<Response<WebhookDelivery>, Status> {
        auth::caller(&request).require(&[Role::Admin, Role::Operator], "redeliver webhooks")?;
        Ok(Response::new(
            self.sender.redeliver(&request.into_inner().id).await?,
        ))
    }

    async fn get_shadow(
        &self,
        request: Request<GetShadowRequest>,
    ) -> Result<Response<Shadow>, Status> {
        Ok(Response::new(
            store::get_shadow(&self.bus, &request.into_inner().model).await?,
        ))
    }

    async fn resolve(
        &self,
        request: Request<ResolveRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        Ok(Response::new(
            store::resolve(&self.bus, &request.into_inner().uri).await?,
        ))
    }

    async fn record_gate(
        &self,
        request: Request<RecordGateRequest>,
    ) -> Result<Response<ModelVersion>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Gate], "record gate decisions")?;
        let actor = match caller.role {
            Some(_) => caller.identity.clone(),
            None => "gate".to_string(),
        };
        Ok(Response::new(
            store::record_gate(&self.bus, &actor, request.into_inner()).await?,
        ))
    }

    async fn get_run(
        &self,
        request: Request<GetRunRequest>,
    ) -> Result<Response<RunSummary>, Status> {
        Ok(Response::new(
            store::runs::get(&self.bus, &request.into_inner().run_id).await?,
        ))
    }

    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        let r = request.into_inner();
        let runs = store::runs::list(&self.bus, &r.model, r.limit).await?;
        Ok(Response::new(ListRunsResponse { runs }))
    }

    async fn apply_spec(
        &self,
        request: Request<ApplySpecRequest>,
    ) -> Result<Response<AppliedSpec>, Status> {
        let caller = auth::caller(&request);
        caller.require(&[Role::Admin], "apply specs (a model's policy)")?;
        let mut r = request.into_inner();
        r.actor = caller.label(&r.actor)?;
        Ok(Response::new(specs::apply(&self.bus, r).await?))
    }
}
