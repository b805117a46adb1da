//! The protocol's binary tensor data extension over HTTP, which Triton's and KServe's
//! clients use by default: a request whose `Inference-Header-Content-Length` header says
//! how long its JSON part is carries, after it, the raw data of each input whose
//! `parameters.binary_data_size` is set (little-endian, row-major; a `BYTES` element is
//! a 4-byte little-endian length and its bytes). Outputs asked for with
//! `parameters.binary_data` (or every output with the request's
//! `parameters.binary_data_output`) come back the same way.

use serde_json::{Map, Value};

use crate::{
    model::InferError,
    protocol::{InferRequest, InferResponse, OutputTensor},
};

/// The header that says how many bytes of the body are the JSON part.
pub const HEADER: &str = "inference-header-content-length";

fn bad(message: String) -> InferError {
    InferError::BadRequest(message)
}

/// A `parameters` object's `key` as a number or a flag.
fn parameter<'a>(parameters: &'a Option<Value>, key: &str) -> Option<&'a Value> {
    parameters.as_ref()?.get(key)
}

/// The request in `body`, whose first `json_len` bytes are its JSON part and the rest the
/// binary data of the inputs that say `binary_data_size`, in their order.
pub fn request(body: &[u8], json_len: usize) -> Result<InferRequest, InferError> {
    if json_len > body.len() {
        return Err(bad(format!(
            "{HEADER} is {json_len}, but the body has only {} bytes",
            body.len()
        )));
    }
    let (json, mut rest) = body.split_at(json_len);
    let mut request: InferRequest = serde_json::from_slice(json)
        .map_err(|e| bad(format!("the body is not an inference request: {e}")))?;
    for input in &mut request.inputs {
        let Some(size) = parameter(&input.parameters, "binary_data_size") else {
            continue;
        };
        let size = size.as_u64().ok_or_else(|| {
            bad(format!(
                "input {}: binary_data_size must be a byte count",
                input.name
            ))
        })? as usize;
        if size > rest.len() {
            return Err(bad(format!(
                "input {}: binary_data_size {size} is more than the {} bytes left",
                input.name,
                rest.len()
            )));
        }
        let (raw, after) = rest.split_at(size);
        rest = after;
        input.data = decode(&input.name, &input.datatype, raw)?;
    }
    if !rest.is_empty() {
        return Err(bad(format!(
            "{} bytes of binary data follow that no input's binary_data_size accounts for",
            rest.len()
        )));
    }
    Ok(request)
}

/// One input's raw data as the JSON values it stands for.
pub(crate) fn decode(name: &str, datatype: &str, raw: &[u8]) -> Result<Value, InferError> {
    let width = match datatype {
        "BOOL" | "INT8" | "UINT8" => 1,
        "INT16" | "UINT16" => 2,
        "INT32" | "UINT32" | "FP32" => 4,
        "INT64" | "UINT64" | "FP64" => 8,
        "BYTES" => return texts(name, raw),
        other => {
            return Err(bad(format!(
                "input {name}: binary data of datatype {other} is not supported; send it as JSON"
            )));
        }
    };
    if !raw.len().is_multiple_of(width) {
        return Err(bad(format!(
            "input {name}: {} bytes is not a whole number of {datatype} values",
            raw.len()
        )));
    }
    let values = raw.chunks_exact(width).map(|c| {
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(c);
        match datatype {
            "BOOL" => Value::Bool(c[0] != 0),
            "INT8" => Value::from(c[0] as i8),
            "UINT8" => Value::from(c[0]),
            "INT16" => Value::from(i16::from_le_bytes([b[0], b[1]])),
            "UINT16" => Value::from(u16::from_le_bytes([b[0], b[1]])),
            "INT32" => Value::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            "UINT32" => Value::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            "FP32" => number(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            "INT64" => Value::from(i64::from_le_bytes(b)),
            "UINT64" => Value::from(u64::from_le_bytes(b)),
            _ => number(f64::from_le_bytes(b)),
        }
    });
    Ok(Value::Array(values.collect()))
}

/// A JSON number, or null for NaN (a missing value).
pub(crate) fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// `BYTES` elements: each a 4-byte little-endian length and that many bytes of UTF-8.
fn texts(name: &str, mut raw: &[u8]) -> Result<Value, InferError> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let Some((len, rest)) = raw.split_first_chunk::<4>() else {
            return Err(bad(format!(
                "input {name}: a BYTES element's length is cut off"
            )));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(bad(format!(
                "input {name}: a BYTES element of {len} bytes is cut off"
            )));
        }
        let (text, after) = rest.split_at(len);
        let text = std::str::from_utf8(text)
            .map_err(|_| bad(format!("input {name}: a BYTES element is not UTF-8")))?;
        out.push(Value::from(text));
        raw = after;
    }
    Ok(Value::Array(out))
}

/// An output tensor's values as raw little-endian bytes (`INT64`, else `FP64`).
pub(crate) fn encode(o: &OutputTensor) -> Vec<u8> {
    let mut raw = Vec::with_capacity(o.data.len() * 8);
    for v in &o.data {
        match o.datatype.as_str() {
            "INT64" => raw.extend(v.as_i64().unwrap_or_default().to_le_bytes()),
            _ => raw.extend(v.as_f64().unwrap_or(f64::NAN).to_le_bytes()),
        }
    }
    raw
}

/// Whether the output `name` was asked for as binary data.
fn binary_wanted(request: &InferRequest, name: &str) -> bool {
    let all = parameter(&request.parameters, "binary_data_output").and_then(Value::as_bool);
    let this = request
        .outputs
        .iter()
        .find(|o| o.name == name)
        .and_then(|o| parameter(&o.parameters, "binary_data"))
        .and_then(Value::as_bool);
    this.or(all).unwrap_or(false)
}

/// The response as the extension sends it when `request` asked for any output as binary
/// data: the body and the length of its JSON part; `None` when it asked for none.
pub fn response(request: &InferRequest, response: &InferResponse) -> Option<(Vec<u8>, usize)> {
    if !response
        .outputs
        .iter()
        .any(|o| binary_wanted(request, &o.name))
    {
        return None;
    }
    let mut raw = Vec::new();
    let mut outputs = Vec::new();
    for o in &response.outputs {
        let mut tensor = Map::new();
        tensor.insert("name".into(), Value::from(o.name.clone()));
        tensor.insert("shape".into(), Value::from(o.shape.clone()));
        tensor.insert("datatype".into(), Value::from(o.datatype.clone()));
        if binary_wanted(request, &o.name) {
            let bytes = encode(o);
            let size = bytes.len();
            raw.extend(bytes);
            tensor.insert(
                "parameters".into(),
                serde_json::json!({ "binary_data_size": size }),
            );
        } else {
            tensor.insert("data".into(), Value::from(o.data.clone()));
        }
        outputs.push(Value::Object(tensor));
    }
    let mut head = Map::new();
    head.insert(
        "model_name".into(),
        Value::from(response.model_name.clone()),
    );
    if let Some(v) = &response.model_version {
        head.insert("model_version".into(), Value::from(v.clone()));
    }
    if let Some(id) = &response.id {
        head.insert("id".into(), Value::from(id.clone()));
    }
    head.insert("outputs".into(), Value::Array(outputs));
    let mut body = serde_json::to_vec(&Value::Object(head)).ok()?;
    let json_len = body.len();
    body.extend(raw);
    Some((body, json_len))
}

#[cfg(test)]
mod tests;
