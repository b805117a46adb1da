//! One loaded version behind the protocol: named input tensors in, records through the
//! artifact's own pipeline, probability and prediction tensors out.

use serde_json::Value;
use tollgate_ml::{
    artifact::{Artifact, Score, ScoreError},
    onnx::OnnxError,
    table::Columns,
    table::Record,
};

use crate::protocol::{
    BYTES, InferRequest, InferResponse, InputTensor, ModelMetadata, NUMERIC_TYPES, OutputTensor,
    PREDICTION, PROBABILITY, TensorMetadata,
};

/// Why an inference request got no answer; each maps to the protocol's HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferError {
    /// The server serves no model of that name (404).
    #[error("unknown model {name:?}; this server serves {serves}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// What it serves, listed for the reader.
        serves: String,
    },
    /// The server holds no such version of the model (404).
    #[error("model {name:?} has no version {version} loaded here; loaded: {loaded}")]
    UnknownVersion {
        /// The model.
        name: String,
        /// The version asked for, as written.
        version: String,
        /// The versions loaded.
        loaded: String,
    },
    /// The model is served, but no version is loaded yet (503).
    #[error("model {0:?} is not ready: no version is loaded yet")]
    NotReady(String),
    /// The request is malformed: a missing input, a wrong type, an empty batch (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the server accepts (413).
    #[error("the request body is larger than the {0}-byte limit")]
    TooLarge(usize),
    /// The model failed while scoring a valid request (500).
    #[error("model {model:?} v{version} failed: {reason}")]
    Failed {
        /// The model.
        model: String,
        /// The version.
        version: u32,
        /// What the model said.
        reason: String,
    },
}

impl InferError {
    /// The HTTP status the protocol answers with.
    pub fn status(&self) -> u16 {
        match self {
            InferError::UnknownModel { .. } | InferError::UnknownVersion { .. } => 404,
            InferError::NotReady(_) => 503,
            InferError::BadRequest(_) => 400,
            InferError::TooLarge(_) => 413,
            InferError::Failed { .. } => 500,
        }
    }
}

fn bad(message: String) -> InferError {
    InferError::BadRequest(message)
}

/// What one request's scoring gave: the response, and the records with the positive
/// class's probability of each, in order.
#[derive(Debug)]
pub struct Scored {
    /// The protocol's answer.
    pub response: InferResponse,
    /// The records scored.
    pub records: Vec<Record>,
    /// Each record's probability.
    pub probabilities: Vec<f64>,
}

impl Scored {
    /// The id a label names each record by: the response's id for one row, `<id>:<row>`
    /// for each row of a batch.
    pub fn record_ids(&self) -> Vec<String> {
        let id = self.response.id.clone().unwrap_or_default();
        match self.records.len() {
            1 => vec![id],
            n => (0..n).map(|i| format!("{id}:{i}")).collect(),
        }
    }
}

/// A version loaded for serving.
#[derive(Debug)]
pub struct ServedModel {
    /// The model's name.
    pub name: String,
    /// The version.
    pub version: u32,
    /// The stage or alias it is served as.
    pub served_as: String,
    /// The artifact that scores.
    pub artifact: Artifact,
    /// Probabilities at or above this predict 1.
    pub threshold: f64,
    columns: Columns,
}

impl ServedModel {
    /// `artifact` served as `name` v`version` under `served_as`, predicting 1 at or above
    /// `threshold`.
    pub fn new(
        name: impl Into<String>,
        version: u32,
        served_as: impl Into<String>,
        artifact: Artifact,
        threshold: f64,
    ) -> Self {
        let columns = artifact.columns();
        ServedModel {
            name: name.into(),
            version,
            served_as: served_as.into(),
            artifact,
            threshold,
            columns,
        }
    }

    /// The features the model reads.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The protocol's metadata: one input per feature with its datatype as the model
    /// declares it (FP64 and BYTES for a built-in model), the two outputs.
    pub fn metadata(&self, versions: Vec<String>) -> ModelMetadata {
        let tensor = |name: &str, datatype: &str| TensorMetadata {
            name: name.into(),
            datatype: datatype.into(),
            shape: vec![-1],
        };
        let inputs = self
            .artifact
            .datatypes()
            .iter()
            .map(|(name, datatype)| tensor(name, datatype))
            .collect();
        ModelMetadata {
            name: self.name.clone(),
            versions,
            platform: match self.artifact.format() {
                "onnx" => "onnxruntime_onnx".into(),
                other => other.into(),
            },
            inputs,
            outputs: vec![tensor(PROBABILITY, "FP64"), tensor(PREDICTION, "INT64")],
        }
    }

    /// P(label = 1) for `records`; a value the model's input type cannot hold is the
    /// request's fault, any other failure the model's.
    pub fn score(&self, records: &[Record]) -> Result<Vec<f64>, InferError> {
        self.artifact.score_records(records).map_err(|e| match e {
            ScoreError::Onnx(OnnxError::Value(m)) => InferError::BadRequest(m),
            other => InferError::Failed {
                model: self.name.clone(),
                version: self.version,
                reason: other.to_string(),
            },
        })
    }

    /// Scores `request`; returns the response, and the records scored with their
    /// probabilities (for sampling and for labels).
    pub fn infer(&self, request: &InferRequest) -> Result<Scored, InferError> {
        let wanted = outputs_wanted(request)?;
        let records = self.records(&request.inputs)?;
        let probabilities = self.score(&records)?;
        let rows = records.len() as i64;
        let mut outputs = Vec::new();
        if wanted.0 {
            outputs.push(OutputTensor {
                name: PROBABILITY.into(),
                shape: vec![rows],
                datatype: "FP64".into(),
                data: probabilities.iter().map(|&p| number(p)).collect(),
            });
        }
        if wanted.1 {
            outputs.push(OutputTensor {
                name: PREDICTION.into(),
                shape: vec![rows],
                datatype: "INT64".into(),
                data: probabilities
                    .iter()
                    .map(|&p| Value::from(i64::from(p >= self.threshold)))
                    .collect(),
            });
        }
        let response = InferResponse {
            model_name: self.name.clone(),
            model_version: Some(self.version.to_string()),
            // Every answer has an id (the request's, or a new one) that labels arriving
            // later can name.
            id: Some(
                request
                    .id
                    .clone()
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| ulid::Ulid::new().to_string()),
            ),
            outputs,
        };
        Ok(Scored {
            response,
            records,
            probabilities,
        })
    }

    /// The records the input tensors hold, checked against the model's features.
    pub fn records(&self, inputs: &[InputTensor]) -> Result<Vec<Record>, InferError> {
        let (numeric, categorical) = (&self.columns.numeric, &self.columns.categorical);
        let mut numbers: Vec<Option<Vec<Option<f64>>>> = vec![None; numeric.len()];
        let mut texts: Vec<Option<Vec<Option<String>>>> = vec![None; categorical.len()];
        let mut rows: Option<(usize, &str)> = None;
        for input in inputs {
            let values = tensor_values(input)?;
            match rows {
                Some((n, first)) if n != values.len() => {
                    return Err(bad(format!(
                        "inputs have different batch sizes: {first} has {n} rows, {} has {}",
                        input.name,
                        values.len()
                    )));
                }
                _ => rows = Some((values.len(), &input.name)),
            }
            if let Some(i) = numeric.iter().position(|n| *n == input.name) {
                if numbers[i].is_some() {
                    return Err(bad(format!("input {} is given twice", input.name)));
                }
                numbers[i] = Some(numeric_values(input, &values)?);
            } else if let Some(i) = categorical.iter().position(|n| *n == input.name) {
                if texts[i].is_some() {
                    return Err(bad(format!("input {} is given twice", input.name)));
                }
                texts[i] = Some(text_values(input, &values)?);
            } else {
                return Err(bad(format!(
                    "unknown input {:?}; model {} takes {}",
                    input.name,
                    self.name,
                    numeric
                        .iter()
                        .chain(categorical)
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let missing: Vec<&str> = (numeric.iter().zip(&numbers))
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| n.as_str())
            .chain(
                (categorical.iter().zip(&texts))
                    .filter(|(_, v)| v.is_none())
                    .map(|(n, _)| n.as_str()),
            )
            .collect();
        if !missing.is_empty() {
            return Err(bad(format!(
                "missing input{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            )));
        }
        let n = rows.map_or(0, |(n, _)| n);
        if n == 0 {
            return Err(bad("empty batch: the inputs hold no rows".into()));
        }
        let numbers: Vec<Vec<Option<f64>>> = numbers.into_iter().flatten().collect();
        let texts: Vec<Vec<Option<String>>> = texts.into_iter().flatten().collect();
        Ok((0..n)
            .map(|i| Record {
                numeric: numbers.iter().map(|c| c[i]).collect(),
                categorical: texts.iter().map(|c| c[i].clone()).collect(),
            })
            .collect())
    }
}

/// Which of (probability, prediction) the request wants.
fn outputs_wanted(request: &InferRequest) -> Result<(bool, bool), InferError> {
    if request.outputs.is_empty() {
        return Ok((true, true));
    }
    let mut wanted = (false, false);
    for o in &request.outputs {
        match o.name.as_str() {
            PROBABILITY => wanted.0 = true,
            PREDICTION => wanted.1 = true,
            other => {
                return Err(bad(format!(
                    "unknown output {other:?}; the outputs are {PROBABILITY} and {PREDICTION}"
                )));
            }
        }
    }
    Ok(wanted)
}

/// A JSON number, or null for a value JSON cannot hold (NaN).
fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// The tensor's values, flattened row-major, checked against its shape.
fn tensor_values(input: &InputTensor) -> Result<Vec<&Value>, InferError> {
    let name = &input.name;
    let mut flat = Vec::new();
    flatten(&input.data, &mut flat);
    let shape_ok = match input.shape.as_slice() {
        [rows] => *rows >= 0,
        [rows, 1] => *rows >= 0,
        _ => false,
    };
    if !shape_ok {
        return Err(bad(format!(
            "input {name}: shape {:?} is not [rows] or [rows, 1]",
            input.shape
        )));
    }
    let rows = input.shape[0] as usize;
    if flat.len() != rows {
        return Err(bad(format!(
            "input {name}: shape {:?} says {rows} values, data holds {}",
            input.shape,
            flat.len()
        )));
    }
    Ok(flat)
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

fn numeric_values(input: &InputTensor, values: &[&Value]) -> Result<Vec<Option<f64>>, InferError> {
    let typed = NUMERIC_TYPES.contains(&input.datatype.as_str());
    convert(
        input,
        values,
        typed,
        "numeric",
        "FP64, FP32 or an integer type",
        |v| match v {
            Value::Number(n) => n.as_f64(),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        },
    )
}

fn text_values(input: &InputTensor, values: &[&Value]) -> Result<Vec<Option<String>>, InferError> {
    let typed = input.datatype == BYTES;
    convert(input, values, typed, "categorical", BYTES, |v| {
        v.as_str().map(str::to_string)
    })
}

/// The values of a `kind` input whose datatype must be `wanted` (`typed`: it is); null is
/// a missing value, anything `read` gives `None` for is refused with its position.
fn convert<T>(
    input: &InputTensor,
    values: &[&Value],
    typed: bool,
    kind: &str,
    wanted: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<Option<T>>, InferError> {
    let (name, datatype) = (&input.name, &input.datatype);
    if !typed {
        return Err(bad(format!(
            "input {name} is {kind}: its datatype must be {wanted}, not {datatype}"
        )));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Null => Ok(None),
            other => read(other).map(Some).ok_or_else(|| {
                bad(format!(
                    "input {name}: value {i} is {other}, not {} ({datatype})",
                    if kind == "numeric" {
                        "a number"
                    } else {
                        "text"
                    }
                ))
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests;
