//! The protocol's HTTP routes over a [`Catalog`], and the listener that serves them.
//!
//! `/healthz` and `/readyz` sit beside the protocol's own health routes so Kubernetes
//! probes the server as it probes every other Tollgate service; `/readyz` answers 503
//! until every entry has a version loaded.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{
    binary,
    catalog::Catalog,
    model::{InferError, Scored, ServedModel},
    protocol::{ErrorBody, InferRequest, Live, Ready, ServerMetadata},
};
use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::ListenerExt,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// One label sent to `POST /v2/models/{name}/feedback`: a scored record's id and its
/// true class.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelIn {
    /// The response's `id` (`<id>:<row>` for a row of a batch).
    pub id: String,
    /// 0 or 1.
    pub label: u8,
}

/// How the feedback endpoint answers: the status and the JSON body.
pub type FeedbackReply = (StatusCode, serde_json::Value);

/// Told about every record a server scored, and sent the labels that arrive for them: the
/// model server samples records for drift and keeps predictions for their labels.
pub trait Observer: Send + Sync + 'static {
    /// `scored` (its records, their ids and probabilities) was scored by `model` in `took`.
    fn scored(&self, model: &ServedModel, scored: &Scored, took: Duration);

    /// The version that answers a request for `chosen` (the entry's version) with the
    /// request id `key`: a rollout's candidate takes its share. By default `chosen`.
    fn route(&self, chosen: Arc<ServedModel>, key: Option<&str>) -> Arc<ServedModel> {
        let _ = key;
        chosen
    }

    /// `model` failed a request of `records` records with a server error, in `took`.
    fn failed(&self, model: &ServedModel, records: u64, took: Duration) {
        let _ = (model, records, took);
    }

    /// Labels for `model`'s predictions. By default none are kept: 501.
    fn feedback(
        &self,
        model: &ServedModel,
        labels: Vec<LabelIn>,
    ) -> Pin<Box<dyn Future<Output = FeedbackReply> + Send + 'static>> {
        let _ = labels;
        let message = format!("this server keeps no predictions of {}", model.name);
        Box::pin(async move {
            (
                StatusCode::NOT_IMPLEMENTED,
                serde_json::json!({ "error": message }),
            )
        })
    }
}

/// An observer that keeps nothing (the gate's and promoter's loopback servers).
#[derive(Debug, Clone, Copy)]
pub struct Unobserved;

impl Observer for Unobserved {
    fn scored(&self, _: &ServedModel, _: &Scored, _: Duration) {}
}

/// Request bodies above this many bytes are refused unless the server sets its own limit.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Batches above this many rows are scored off the async threads.
const INLINE_ROWS: usize = 256;

#[derive(Clone)]
struct Shared {
    catalog: Arc<Catalog>,
    observer: Arc<dyn Observer>,
    max_body_bytes: usize,
}

/// The protocol's routes over `catalog`, bodies limited to `max_body_bytes`.
pub fn router(catalog: Arc<Catalog>, observer: Arc<dyn Observer>, max_body_bytes: usize) -> Router {
    let shared = Shared {
        catalog,
        observer,
        max_body_bytes,
    };
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/healthz", get(|| async { "server ok\n" }))
        .route("/readyz", get(readyz))
        .route("/v2/models/{name}", get(metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/feedback", post(feedback))
        .route("/v2/models/{name}/versions/{version}", get(metadata_v))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint; the protocol's are under /v2".into(),
            )
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(shared)
}

/// Binds `addr` and serves `router` until `shutdown`; returns the bound address (useful
/// with port 0). Connections set `TCP_NODELAY`: a reply never waits on a delayed ACK.
pub async fn serve(
    addr: &str,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "inference endpoint stopped");
        }
    });
    Ok((bound, handle))
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("response not encoded: {e}"),
        ),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    let body = ErrorBody { error: message };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn failed(e: &InferError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    error(status, e.to_string())
}

/// The server's name, version and protocol extensions, over HTTP and gRPC.
pub(crate) fn server_metadata_of() -> ServerMetadata {
    ServerMetadata {
        name: "tollgate-server".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extensions: vec!["binary_tensor_data".into()],
    }
}

async fn server_metadata() -> Response {
    json(StatusCode::OK, &server_metadata_of())
}

async fn live() -> Response {
    json(StatusCode::OK, &Live { live: true })
}

async fn ready(State(s): State<Shared>) -> Response {
    let ready = s.catalog.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &Ready { name: None, ready })
}

async fn readyz(State(s): State<Shared>) -> Response {
    if s.catalog.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: a served entry has no version loaded\n",
        )
            .into_response()
    }
}

fn metadata_of(s: &Shared, name: &str, version: Option<&str>) -> Response {
    match s.catalog.find(name, version) {
        Ok(m) => {
            let versions = s
                .catalog
                .versions(name)
                .iter()
                .map(u32::to_string)
                .collect();
            json(StatusCode::OK, &m.metadata(versions))
        }
        Err(e) => failed(&e),
    }
}

async fn metadata(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    metadata_of(&s, &name, None)
}

async fn metadata_v(
    State(s): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    metadata_of(&s, &name, Some(&version))
}

fn ready_of(s: &Shared, name: &str, version: Option<&str>) -> Response {
    match s.catalog.find(name, version) {
        Ok(_) => json(
            StatusCode::OK,
            &Ready {
                name: Some(name.into()),
                ready: true,
            },
        ),
        Err(InferError::NotReady(_)) => json(
            StatusCode::SERVICE_UNAVAILABLE,
            &Ready {
                name: Some(name.into()),
                ready: false,
            },
        ),
        Err(e) => failed(&e),
    }
}

async fn model_ready(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    ready_of(&s, &name, None)
}

async fn model_ready_v(
    State(s): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    ready_of(&s, &name, Some(&version))
}

async fn infer(
    State(s): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_of(s, name, None, &headers, body).await
}

async fn infer_v(
    State(s): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_of(s, name, Some(version), &headers, body).await
}

/// The request in `body`: JSON, or with the binary tensor data extension when `headers`
/// say how long its JSON part is.
fn request_of(headers: &HeaderMap, body: &[u8]) -> Result<InferRequest, InferError> {
    let Some(length) = headers.get(binary::HEADER) else {
        return serde_json::from_slice(body).map_err(|e| {
            InferError::BadRequest(format!("the body is not an inference request: {e}"))
        });
    };
    let length = length
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            InferError::BadRequest(format!("{} must be a byte count", binary::HEADER))
        })?;
    binary::request(body, length)
}

/// The request body, or the protocol's error for one that is too large or unreadable.
fn accepted(s: &Shared, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Box<Response>> {
    body.map_err(|rejection| {
        Box::new(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            failed(&InferError::TooLarge(s.max_body_bytes))
        } else {
            error(rejection.status(), rejection.body_text())
        })
    })
}

async fn infer_of(
    s: Shared,
    name: String,
    version: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match accepted(&s, body) {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    // An unknown model is named before a malformed body is.
    if let Err(e) = s.catalog.find(&name, version.as_deref()) {
        return failed(&e);
    }
    let request = match request_of(headers, &body) {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    // What the answer's encoding depends on, kept for after scoring.
    let asked = InferRequest {
        outputs: request.outputs.clone(),
        parameters: request.parameters.clone(),
        ..Default::default()
    };
    match score(&s.catalog, &s.observer, &name, version.as_deref(), request).await {
        Ok(scored) => match binary::response(&asked, &scored.response) {
            Some((body, json_len)) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (
                        header::HeaderName::from_static(binary::HEADER),
                        json_len.to_string(),
                    ),
                ],
                body,
            )
                .into_response(),
            None => json(StatusCode::OK, &scored.response),
        },
        Err(e) => failed(&e),
    }
}

/// Scores `request` with `name`'s version (`version`, else the entry's; a request for no
/// version in particular may go to a rollout's candidate) and tells `observer`: what the
/// HTTP and the gRPC endpoints share. The version is taken once, so the request scores
/// with it to the end; a large batch scores off the async threads.
pub(crate) async fn score(
    catalog: &Catalog,
    observer: &Arc<dyn Observer>,
    name: &str,
    version: Option<&str>,
    request: InferRequest,
) -> Result<Scored, InferError> {
    let model = catalog.find(name, version)?;
    let model = match version {
        None => observer.route(model, request.id.as_deref()),
        Some(_) => model,
    };
    let started = Instant::now();
    let rows = request
        .inputs
        .first()
        .and_then(|i| i.shape.first())
        .copied()
        .unwrap_or(0);
    let scored = if rows as usize > INLINE_ROWS {
        let m = model.clone();
        tokio::task::spawn_blocking(move || m.infer(&request))
            .await
            .unwrap_or_else(|e| {
                Err(InferError::Failed {
                    model: model.name.clone(),
                    version: model.version,
                    reason: format!("scoring stopped: {e}"),
                })
            })
    } else {
        model.infer(&request)
    };
    match &scored {
        Ok(scored) => observer.scored(&model, scored, started.elapsed()),
        Err(e) if e.status() >= 500 => {
            observer.failed(&model, u64::try_from(rows).unwrap_or(0), started.elapsed());
        }
        Err(_) => {}
    }
    scored
}

/// `POST /v2/models/{name}/feedback` with `[{"id": ..., "label": 0|1}, ...]`: the labels
/// of earlier responses, joined to what was scored by the observer.
async fn feedback(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match accepted(&s, body) {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    let model = match s.catalog.find(&name, None) {
        Ok(m) => m,
        Err(e) => return failed(&e),
    };
    let labels: Vec<LabelIn> = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a list of {{\"id\": ..., \"label\": 0 or 1}}: {e}"),
            );
        }
    };
    let (status, body) = s.observer.feedback(&model, labels).await;
    json(status, &body)
}

/// One model served on a loopback port for as long as this lives: how the gate and the
/// promoter time real `infer` round trips of a version no server holds yet.
#[derive(Debug)]
pub struct Loopback {
    /// A client of it.
    pub client: crate::client::Client,
    stop: CancellationToken,
}

impl Loopback {
    /// Serves `model` on `127.0.0.1:0`.
    pub async fn serve(model: ServedModel) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let catalog = Arc::new(Catalog::single(model));
        let routes = router(catalog, Arc::new(Unobserved), MAX_BODY_BYTES);
        let (addr, _) = serve("127.0.0.1:0", routes, stop.clone()).await?;
        Ok(Loopback {
            client: crate::client::Client::new(&format!("http://{addr}")),
            stop,
        })
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
