//! The Open Inference Protocol's JSON shapes (KServe v2 REST): what a client sends and
//! what the server answers. Field names are the protocol's; optional fields a client may
//! leave out default, so requests written for KServe or MLServer parse as they are.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The output tensor of probabilities of the positive label.
pub const PROBABILITY: &str = "probability";
/// The output tensor of 0/1 predictions at the model's threshold.
pub const PREDICTION: &str = "prediction";
/// Numeric datatypes a numeric feature's tensor may have.
pub const NUMERIC_TYPES: &[&str] = &[
    "FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16",
    "UINT8", "BOOL",
];
/// The datatype of text tensors.
pub const BYTES: &str = "BYTES";

/// `POST /v2/models/{name}[/versions/{v}]/infer`: named input tensors.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InferRequest {
    /// An identifier the response echoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// One tensor per model input.
    pub inputs: Vec<InputTensor>,
    /// The outputs wanted; all of them when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<RequestedOutput>,
    /// Protocol parameters: `binary_data_output: true` asks for every output as binary
    /// data; others are accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// A named input tensor: `shape` `[rows]` or `[rows, 1]`, `data` flat or nested row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTensor {
    /// The feature's name.
    pub name: String,
    /// The tensor's shape; the first dimension is the batch.
    pub shape: Vec<i64>,
    /// `FP64`, `INT64`, `BYTES`, ...
    pub datatype: String,
    /// The values, row-major (left out when they travel as binary data after the JSON).
    #[serde(default)]
    pub data: Value,
    /// Protocol parameters: `binary_data_size` says the values travel as that many bytes
    /// of binary data after the JSON; others are accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// An output a request asks for by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestedOutput {
    /// [`PROBABILITY`] or [`PREDICTION`].
    pub name: String,
    /// Protocol parameters: `binary_data: true` asks for it as binary data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// The answer to an inference request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferResponse {
    /// The model that answered.
    pub model_name: String,
    /// The version that answered.
    pub model_version: Option<String>,
    /// The request's id echoed, or one the server made (a ULID) when the request had
    /// none: what a label sent later names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The output tensors.
    pub outputs: Vec<OutputTensor>,
}

impl InferResponse {
    /// The output named `name`, as numbers.
    pub fn numbers(&self, name: &str) -> Option<Vec<f64>> {
        let out = self.outputs.iter().find(|o| o.name == name)?;
        out.data.iter().map(|v| v.as_f64()).collect()
    }
}

/// An output tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputTensor {
    /// [`PROBABILITY`] or [`PREDICTION`].
    pub name: String,
    /// `[rows]`.
    pub shape: Vec<i64>,
    /// `FP64` or `INT64`.
    pub datatype: String,
    /// The values.
    pub data: Vec<Value>,
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// The model's name.
    pub name: String,
    /// The versions this server holds of it.
    pub versions: Vec<String>,
    /// What runs it.
    pub platform: String,
    /// One tensor per feature, named as in the spec.
    pub inputs: Vec<TensorMetadata>,
    /// [`PROBABILITY`] and [`PREDICTION`].
    pub outputs: Vec<TensorMetadata>,
}

/// A tensor's name, datatype and shape (`-1`: any batch size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorMetadata {
    /// The tensor's name.
    pub name: String,
    /// Its datatype.
    pub datatype: String,
    /// Its shape.
    pub shape: Vec<i64>,
}

/// `GET /v2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetadata {
    /// The server's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Protocol extensions it supports.
    pub extensions: Vec<String>,
}

/// `GET /v2/health/live`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Live {
    /// Whether the server runs.
    pub live: bool,
}

/// `GET /v2/health/ready` and a model's `/ready`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// The model, for a model's readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether it can answer inference requests.
    pub ready: bool,
}

/// Every error the protocol returns: a message, with the HTTP status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}
