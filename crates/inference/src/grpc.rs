//! The protocol's gRPC side: KServe v2's `GRPCInferenceService` (ServerLive, ServerReady,
//! ModelReady, ServerMetadata, ModelMetadata, ModelInfer) over the same [`Catalog`] and
//! [`Observer`] as the HTTP routes, so a Triton or KServe gRPC client gets what an HTTP
//! one gets. A request's tensors become the HTTP shapes ([`InferRequest`]) and score
//! through the same path; the answer's values travel as `raw_output_contents`, as
//! Triton's server sends them.

use std::{net::SocketAddr, sync::Arc};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tollgate_proto::inference::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ServerLiveRequest,
    ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest,
    ServerReadyResponse,
    grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer},
    model_infer_request::InferInputTensor,
    model_infer_response::InferOutputTensor,
    model_metadata_response::TensorMetadata,
};
use tonic::{Request, Response, Status};

use crate::{
    binary,
    catalog::Catalog,
    http::{Observer, score, server_metadata_of},
    model::InferError,
    protocol::{self, InferRequest, InputTensor, RequestedOutput},
};

/// Checks a call's `authorization` metadata (`Bearer <token>`); the reason it is refused.
pub type Authorize = Arc<dyn Fn(Option<&str>) -> Result<(), String> + Send + Sync>;

/// The gRPC service over a catalog.
#[derive(Clone)]
pub struct Inference {
    catalog: Arc<Catalog>,
    observer: Arc<dyn Observer>,
    authorize: Option<Authorize>,
}

impl Inference {
    /// Serves `catalog`, telling `observer` what it scores; with `authorize`, the model
    /// calls need a token it accepts (the server's health and metadata calls stay open,
    /// as over HTTP).
    pub fn new(
        catalog: Arc<Catalog>,
        observer: Arc<dyn Observer>,
        authorize: Option<Authorize>,
    ) -> Self {
        Inference {
            catalog,
            observer,
            authorize,
        }
    }

    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(authorize) = &self.authorize else {
            return Ok(());
        };
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        authorize(header).map_err(Status::unauthenticated)
    }
}

/// The gRPC status an inference error stands for.
fn status(e: InferError) -> Status {
    let message = e.to_string();
    match e.status() {
        404 => Status::not_found(message),
        413 => Status::resource_exhausted(message),
        503 => Status::unavailable(message),
        500.. => Status::internal(message),
        _ => Status::invalid_argument(message),
    }
}

fn version_of(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

/// An input tensor's values as the JSON the HTTP request would carry: from `raw` when the
/// request sent raw contents, else from the typed `contents`.
fn values(input: &InferInputTensor, raw: Option<&[u8]>) -> Result<Value, InferError> {
    if let Some(raw) = raw {
        return binary::decode(&input.name, &input.datatype, raw);
    }
    let c = input.contents.clone().unwrap_or_default();
    let InferTensorContents {
        bool_contents,
        int_contents,
        int64_contents,
        uint_contents,
        uint64_contents,
        fp32_contents,
        fp64_contents,
        bytes_contents,
    } = c;
    let values: Vec<Value> = match input.datatype.as_str() {
        "FP64" => fp64_contents.into_iter().map(binary::number).collect(),
        "FP32" | "FP16" => fp32_contents
            .into_iter()
            .map(|x| binary::number(f64::from(x)))
            .collect(),
        "INT64" => int64_contents.into_iter().map(Value::from).collect(),
        "INT32" | "INT16" | "INT8" => int_contents.into_iter().map(Value::from).collect(),
        "UINT64" => uint64_contents.into_iter().map(Value::from).collect(),
        "UINT32" | "UINT16" | "UINT8" => uint_contents.into_iter().map(Value::from).collect(),
        "BOOL" => bool_contents.into_iter().map(Value::from).collect(),
        protocol::BYTES => bytes_contents
            .into_iter()
            .map(|b| {
                String::from_utf8(b).map(Value::from).map_err(|_| {
                    InferError::BadRequest(format!(
                        "input {}: a BYTES element is not UTF-8",
                        input.name
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(InferError::BadRequest(format!(
                "input {}: datatype {other} is not supported",
                input.name
            )));
        }
    };
    Ok(Value::Array(values))
}

/// The request as the HTTP endpoint takes it.
fn request_of(r: &ModelInferRequest) -> Result<InferRequest, InferError> {
    if !r.raw_input_contents.is_empty() && r.raw_input_contents.len() != r.inputs.len() {
        return Err(InferError::BadRequest(format!(
            "raw_input_contents has {} entries for {} inputs: send one per input, or none",
            r.raw_input_contents.len(),
            r.inputs.len()
        )));
    }
    let inputs = r
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let raw = r.raw_input_contents.get(i).map(Vec::as_slice);
            Ok(InputTensor {
                name: input.name.clone(),
                shape: input.shape.clone(),
                datatype: input.datatype.clone(),
                data: values(input, raw)?,
                parameters: None,
            })
        })
        .collect::<Result<_, InferError>>()?;
    Ok(InferRequest {
        id: (!r.id.is_empty()).then(|| r.id.clone()),
        inputs,
        outputs: r
            .outputs
            .iter()
            .map(|o| RequestedOutput {
                name: o.name.clone(),
                parameters: None,
            })
            .collect(),
        parameters: None,
    })
}

/// An HTTP request as the gRPC client sends it to `model`: numeric tensors as `FP64`
/// contents (a null as NaN, a missing value), text ones as `BYTES`.
pub fn to_grpc(model: &str, request: &InferRequest) -> ModelInferRequest {
    let inputs = request
        .inputs
        .iter()
        .map(|i| {
            let values = i.data.as_array().map(Vec::as_slice).unwrap_or_default();
            let (datatype, contents) = if i.datatype == protocol::BYTES {
                let bytes_contents = values
                    .iter()
                    .map(|v| v.as_str().unwrap_or_default().as_bytes().to_vec())
                    .collect();
                (
                    protocol::BYTES,
                    InferTensorContents {
                        bytes_contents,
                        ..Default::default()
                    },
                )
            } else {
                let fp64_contents = values
                    .iter()
                    .map(|v| v.as_f64().unwrap_or(f64::NAN))
                    .collect();
                (
                    "FP64",
                    InferTensorContents {
                        fp64_contents,
                        ..Default::default()
                    },
                )
            };
            InferInputTensor {
                name: i.name.clone(),
                datatype: datatype.into(),
                shape: i.shape.clone(),
                parameters: Default::default(),
                contents: Some(contents),
            }
        })
        .collect();
    ModelInferRequest {
        model_name: model.into(),
        id: request.id.clone().unwrap_or_default(),
        inputs,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Inference {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse {
            ready: self.catalog.ready(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        self.check(&request)?;
        let r = request.into_inner();
        let ready = match self.catalog.find(&r.name, version_of(&r.version)) {
            Ok(_) => true,
            Err(InferError::NotReady(_)) => false,
            Err(e) => return Err(status(e)),
        };
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        let m = server_metadata_of();
        Ok(Response::new(ServerMetadataResponse {
            name: m.name,
            version: m.version,
            extensions: m.extensions,
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        self.check(&request)?;
        let r = request.into_inner();
        let model = self
            .catalog
            .find(&r.name, version_of(&r.version))
            .map_err(status)?;
        let versions = self
            .catalog
            .versions(&r.name)
            .iter()
            .map(u32::to_string)
            .collect();
        let m = model.metadata(versions);
        let tensors = |ts: Vec<protocol::TensorMetadata>| {
            ts.into_iter()
                .map(|t| TensorMetadata {
                    name: t.name,
                    datatype: t.datatype,
                    shape: t.shape,
                })
                .collect()
        };
        Ok(Response::new(ModelMetadataResponse {
            name: m.name,
            versions: m.versions,
            platform: m.platform,
            inputs: tensors(m.inputs),
            outputs: tensors(m.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        self.check(&request)?;
        let r = request.into_inner();
        let version = version_of(&r.model_version);
        // An unknown model is named before a malformed request is, as over HTTP.
        self.catalog.find(&r.model_name, version).map_err(status)?;
        let asked = request_of(&r).map_err(status)?;
        let scored = score(&self.catalog, &self.observer, &r.model_name, version, asked)
            .await
            .map_err(status)?;
        let answer = scored.response;
        let raw = answer.outputs.iter().map(binary::encode).collect();
        Ok(Response::new(ModelInferResponse {
            model_name: answer.model_name,
            model_version: answer.model_version.unwrap_or_default(),
            id: answer.id.unwrap_or_default(),
            parameters: Default::default(),
            outputs: answer
                .outputs
                .into_iter()
                .map(|o| InferOutputTensor {
                    name: o.name,
                    datatype: o.datatype,
                    shape: o.shape,
                    parameters: Default::default(),
                    contents: None,
                })
                .collect(),
            raw_output_contents: raw,
        }))
    }
}

/// Binds `addr` and serves `service` over gRPC until `shutdown`, messages up to
/// `max_message_bytes`; returns the bound address (useful with port 0).
pub async fn serve(
    addr: &str,
    service: Inference,
    max_message_bytes: usize,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let service =
        GrpcInferenceServiceServer::new(service).max_decoding_message_size(max_message_bytes);
    let handle = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move { shutdown.cancelled().await },
            )
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "gRPC inference endpoint stopped");
        }
    });
    Ok((bound, handle))
}

#[cfg(test)]
mod tests;
