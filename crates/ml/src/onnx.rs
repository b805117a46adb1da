//! Models trained elsewhere, as ONNX: the user's scikit-learn, XGBoost, LightGBM or
//! PyTorch model, scored by ONNX Runtime. The model's file travels in the artifact with
//! its [`Binding`] to the spec's features; the session is made on first use and shared by
//! every clone. Inference runs on one thread per call under a deadline, so a hostile graph
//! (one that loops, or asks for a huge tensor) fails the call with a reason instead of
//! holding a stage or a server.

pub mod binding;
pub mod runtime;

use std::sync::{Arc, Mutex, OnceLock};

use ort::{
    session::Session,
    value::{DynMapValueType, DynSequenceValueType, DynValue, Tensor},
};
use serde::{Deserialize, Serialize};

pub use binding::{Binding, Classes, Elem, Feature, Inputs, Output};

use crate::table::{Record, Table};

/// Rows per inference call: bounds the memory of one call's tensors.
pub const BATCH_ROWS: usize = 8192;

/// The largest ONNX file Tollgate imports (the default model-size gate is 500 MB).
pub const MAX_MODEL_BYTES: usize = 1 << 30;

/// Why an ONNX model could not be imported or could not score.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// ONNX Runtime's library is missing or would not load.
    #[error("{0}")]
    Runtime(String),
    /// ONNX Runtime refused the file: not ONNX, truncated, an unknown operator, a cycle.
    #[error("the ONNX model could not be loaded: {0}")]
    Load(String),
    /// The model's inputs or outputs do not fit the spec.
    #[error("{0}")]
    Binding(String),
    /// A value cannot be given to the model as its input's type.
    #[error("{0}")]
    Value(String),
    /// ONNX Runtime failed while scoring.
    #[error("the ONNX model failed while scoring: {0}")]
    Run(String),
    /// Scoring ran past its deadline and was stopped.
    #[error("the ONNX model ran past the {}-second limit of one inference call and was stopped (a graph that loops?)", .0.as_secs_f64())]
    TimedOut(std::time::Duration),
    /// A probability out of the model is not one.
    #[error("{0}")]
    Output(String),
}

/// An imported ONNX model: its bytes, its binding to the spec, and (made on first use)
/// its session.
#[derive(Clone)]
pub struct OnnxModel(Arc<Inner>);

struct Inner {
    bytes: Vec<u8>,
    binding: Binding,
    session: OnceLock<Result<Mutex<Session>, OnnxError>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("bytes", &self.0.bytes.len())
            .field("binding", &self.0.binding)
            .finish()
    }
}

impl PartialEq for OnnxModel {
    fn eq(&self, other: &Self) -> bool {
        self.0.binding == other.0.binding && self.0.bytes == other.0.bytes
    }
}

/// What an ONNX model is stored as: the file and its binding.
#[derive(Serialize, Deserialize)]
struct Stored {
    bytes: Vec<u8>,
    binding: Binding,
}

impl Serialize for OnnxModel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            bytes: &'a [u8],
            binding: &'a Binding,
        }
        View {
            bytes: &self.0.bytes,
            binding: &self.0.binding,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for OnnxModel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = Stored::deserialize(d)?;
        Ok(OnnxModel::new(stored.bytes, stored.binding))
    }
}

fn session_of(bytes: &[u8]) -> Result<Session, OnnxError> {
    let env = runtime::environment().map_err(OnnxError::Runtime)?;
    let load = |e: String| OnnxError::Load(e);
    Session::builder(env)
        .map_err(|e| load(e.to_string()))?
        .with_intra_threads(1)
        .map_err(|e| load(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| load(e.to_string()))?
        .commit_from_memory(bytes)
        .map_err(|e| load(e.to_string()))
}

impl OnnxModel {
    fn new(bytes: Vec<u8>, binding: Binding) -> Self {
        OnnxModel(Arc::new(Inner {
            bytes,
            binding,
            session: OnceLock::new(),
        }))
    }

    /// Loads `bytes` and binds the model's inputs and outputs to the spec's features;
    /// the error says what does not fit.
    pub fn import(
        bytes: Vec<u8>,
        numeric: &[String],
        categorical: &[String],
        classes: &Classes,
    ) -> Result<OnnxModel, OnnxError> {
        if bytes.len() > MAX_MODEL_BYTES {
            return Err(OnnxError::Load(format!(
                "the file is {} bytes, over the {MAX_MODEL_BYTES}-byte limit",
                bytes.len()
            )));
        }
        let session = session_of(&bytes)?;
        let declared = |outlets: &[ort::value::Outlet]| {
            outlets
                .iter()
                .map(|o| (o.name().to_string(), o.dtype().clone()))
                .collect::<Vec<_>>()
        };
        let mut binding = Binding::new(
            numeric,
            categorical,
            &declared(session.inputs()),
            &declared(session.outputs()),
            classes,
        )
        .map_err(OnnxError::Binding)?;
        binding.producer = session
            .metadata()
            .ok()
            .and_then(|m| m.producer())
            .unwrap_or_default();
        let model = OnnxModel::new(bytes, binding);
        let _ = model.0.session.set(Ok(Mutex::new(session)));
        Ok(model)
    }

    /// How the model meets the spec.
    pub fn binding(&self) -> &Binding {
        &self.0.binding
    }

    /// The ONNX file.
    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// P(label = 1) for each of `rows`, in batches of [`BATCH_ROWS`].
    pub fn score(&self, rows: &dyn Rows) -> Result<Vec<f64>, OnnxError> {
        let session = self
            .0
            .session
            .get_or_init(|| session_of(&self.0.bytes).map(Mutex::new))
            .as_ref()
            .map_err(Clone::clone)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut start = 0;
        while start < rows.len() {
            let end = (start + BATCH_ROWS).min(rows.len());
            let inputs = self.tensors(rows, start..end)?;
            let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
            let limit = runtime::run_deadline();
            let deadline =
                runtime::Deadline::start(limit).map_err(|e| OnnxError::Run(e.to_string()))?;
            let outputs = session.run_with_options(inputs, &deadline.options);
            let mut outputs = match outputs {
                Ok(o) => o,
                Err(_) if deadline.fired() => return Err(OnnxError::TimedOut(limit)),
                Err(e) => return Err(OnnxError::Run(e.to_string())),
            };
            let value = outputs.remove(self.output_name()).ok_or_else(|| {
                OnnxError::Output(format!("the model gave no output {}", self.output_name()))
            })?;
            self.probabilities(value, end - start, &mut out)?;
            start = end;
        }
        Ok(out)
    }

    fn output_name(&self) -> &str {
        match &self.0.binding.output {
            Output::Matrix { name, .. }
            | Output::Vector { name, .. }
            | Output::ZipMap { name, .. } => name,
        }
    }

    /// The input tensors of rows `range`.
    fn tensors(
        &self,
        rows: &dyn Rows,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<(String, DynValue)>, OnnxError> {
        let n = range.len();
        let run = |e: ort::Error| OnnxError::Run(e.to_string());
        match &self.0.binding.inputs {
            Inputs::Matrix { name, elem } => {
                let width = self.0.binding.numeric.len();
                let mut values = Vec::with_capacity(n * width);
                for r in range {
                    for f in 0..width {
                        values.push(rows.number(f, r).unwrap_or(f64::NAN));
                    }
                }
                let value = float_tensor(*elem, vec![n, width], values).map_err(run)?;
                Ok(vec![(name.clone(), value)])
            }
            Inputs::PerColumn(columns) => columns
                .iter()
                .map(|c| {
                    let shape = if c.rank == 1 { vec![n] } else { vec![n, 1] };
                    let value = self.column_tensor(rows, c, range.clone(), shape)?;
                    Ok((c.name.clone(), value))
                })
                .collect(),
        }
    }

    fn column_tensor(
        &self,
        rows: &dyn Rows,
        input: &binding::ColumnInput,
        range: std::ops::Range<usize>,
        shape: Vec<usize>,
    ) -> Result<DynValue, OnnxError> {
        let run = |e: ort::Error| OnnxError::Run(e.to_string());
        let name = &input.name;
        if input.elem == Elem::Str {
            let Feature::Categorical(f) = input.feature else {
                return Err(OnnxError::Value(format!(
                    "input {name} takes text; its column is numeric"
                )));
            };
            let texts: Vec<String> = range
                .map(|r| rows.text(f, r).unwrap_or("").to_string())
                .collect();
            return Tensor::from_string_array((shape, texts.as_slice()))
                .map(Tensor::into_dyn)
                .map_err(run);
        }
        let mut values = Vec::with_capacity(range.len());
        for r in range {
            let v = match input.feature {
                Feature::Numeric(f) => rows.number(f, r),
                Feature::Categorical(f) => match rows.text(f, r) {
                    None => None,
                    Some(t) => Some(t.trim().parse::<f64>().map_err(|_| {
                        OnnxError::Value(format!(
                            "input {name} is {}: the value {t:?} is not a number",
                            input.elem.datatype()
                        ))
                    })?),
                },
            };
            values.push(v);
        }
        match input.elem {
            Elem::I64 | Elem::I32 => {
                let ints = values
                    .iter()
                    .map(|v| match v {
                        Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(*x as i64),
                        Some(x) => Err(OnnxError::Value(format!(
                            "input {name} is {}: {x} is not an integer",
                            input.elem.datatype()
                        ))),
                        None => Err(OnnxError::Value(format!(
                            "input {name} is {}, which cannot hold a missing value; fill it in the data or export the input as a float",
                            input.elem.datatype()
                        ))),
                    })
                    .collect::<Result<Vec<i64>, _>>()?;
                if input.elem == Elem::I32 {
                    let ints: Vec<i32> = ints.iter().map(|&v| v as i32).collect();
                    Tensor::from_array((shape, ints))
                        .map(Tensor::into_dyn)
                        .map_err(run)
                } else {
                    Tensor::from_array((shape, ints))
                        .map(Tensor::into_dyn)
                        .map_err(run)
                }
            }
            elem => float_tensor(
                elem,
                shape,
                values.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
            )
            .map_err(run),
        }
    }

    /// Appends the positive class's probability of each of `rows` rows in `value`.
    fn probabilities(
        &self,
        value: DynValue,
        rows: usize,
        out: &mut Vec<f64>,
    ) -> Result<(), OnnxError> {
        let bad = |m: String| OnnxError::Output(m);
        let run = |e: ort::Error| OnnxError::Run(e.to_string());
        let start = out.len();
        match &self.0.binding.output {
            Output::Matrix { name, elem, column } => {
                let (k, values) = floats(&value, *elem).map_err(run)?;
                if k == 0 || values.len() != rows * k {
                    return Err(bad(format!(
                        "output {name} holds {} values for {rows} rows",
                        values.len()
                    )));
                }
                out.extend((0..rows).map(|r| values[r * k + column]));
            }
            Output::Vector { name, elem } => {
                let (_, values) = floats(&value, *elem).map_err(run)?;
                if values.len() != rows {
                    return Err(bad(format!(
                        "output {name} holds {} values for {rows} rows",
                        values.len()
                    )));
                }
                out.extend(values);
            }
            Output::ZipMap { name, key } => {
                let sequence = value.downcast::<DynSequenceValueType>().map_err(run)?;
                let maps = sequence
                    .try_extract_sequence::<DynMapValueType>()
                    .map_err(run)?;
                if maps.len() != rows {
                    return Err(bad(format!(
                        "output {name} holds {} maps for {rows} rows",
                        maps.len()
                    )));
                }
                for map in maps {
                    let p = match key {
                        binding::ClassKey::Int(k) => map
                            .try_extract_key_values::<i64, f32>()
                            .map_err(run)?
                            .into_iter()
                            .find(|(c, _)| c == k)
                            .map(|(_, p)| p),
                        binding::ClassKey::Text(k) => map
                            .try_extract_key_values::<String, f32>()
                            .map_err(run)?
                            .into_iter()
                            .find(|(c, _)| c == k)
                            .map(|(_, p)| p),
                    };
                    let p = p.ok_or_else(|| bad(format!("output {name} has no class {key:?}")))?;
                    out.push(f64::from(p));
                }
            }
        }
        if let Some(p) = out[start..].iter().find(|p| !p.is_finite()) {
            return Err(bad(format!(
                "the model gave the probability {p}, which is not a number"
            )));
        }
        Ok(())
    }
}

fn float_tensor(elem: Elem, shape: Vec<usize>, values: Vec<f64>) -> Result<DynValue, ort::Error> {
    if elem == Elem::F64 {
        Tensor::from_array((shape, values)).map(Tensor::into_dyn)
    } else {
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::from_array((shape, values)).map(Tensor::into_dyn)
    }
}

/// A float tensor's last dimension and its values, as f64.
fn floats(value: &DynValue, elem: Elem) -> Result<(usize, Vec<f64>), ort::Error> {
    let last = |shape: &[i64]| shape.last().map_or(1, |&k| k.max(0) as usize);
    if elem == Elem::F64 {
        let (shape, data) = value.try_extract_tensor::<f64>()?;
        Ok((last(shape), data.to_vec()))
    } else {
        let (shape, data) = value.try_extract_tensor::<f32>()?;
        Ok((last(shape), data.iter().map(|&v| f64::from(v)).collect()))
    }
}

/// Rows to score: raw feature values by the spec's numeric and categorical positions.
pub trait Rows {
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Numeric feature `feature` of row `row`.
    fn number(&self, feature: usize, row: usize) -> Option<f64>;
    /// Categorical feature `feature` of row `row`.
    fn text(&self, feature: usize, row: usize) -> Option<&str>;
}

/// Records, as inference receives them.
pub struct Records<'a>(pub &'a [Record]);

impl Rows for Records<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn number(&self, feature: usize, row: usize) -> Option<f64> {
        self.0[row].numeric.get(feature).copied().flatten()
    }
    fn text(&self, feature: usize, row: usize) -> Option<&str> {
        self.0[row]
            .categorical
            .get(feature)
            .and_then(|v| v.as_deref())
    }
}

/// Some rows of a table.
pub struct TableRows<'a> {
    /// The table.
    pub table: &'a Table,
    /// The rows, in order.
    pub rows: &'a [usize],
}

impl Rows for TableRows<'_> {
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn number(&self, feature: usize, row: usize) -> Option<f64> {
        self.table.numeric[feature][self.rows[row]]
    }
    fn text(&self, feature: usize, row: usize) -> Option<&str> {
        self.table.categorical[feature].get(self.rows[row])
    }
}

#[cfg(test)]
mod tests;
