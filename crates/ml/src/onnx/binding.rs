//! How an ONNX model's declared inputs and outputs meet the spec: which feature column
//! feeds which input, as what element type, and where the positive class's probability
//! comes out. Worked out once, when the model is imported, and stored with it.

use ort::value::{TensorElementType, ValueType};
use serde::{Deserialize, Serialize};

/// An element type Tollgate feeds or reads; the protocol names them FP32, FP64, INT64,
/// INT32 and BYTES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Elem {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 64-bit integer.
    I64,
    /// 32-bit integer.
    I32,
    /// UTF-8 text.
    Str,
}

impl Elem {
    fn of(ty: TensorElementType) -> Option<Elem> {
        Some(match ty {
            TensorElementType::Float32 => Elem::F32,
            TensorElementType::Float64 => Elem::F64,
            TensorElementType::Int64 => Elem::I64,
            TensorElementType::Int32 => Elem::I32,
            TensorElementType::String => Elem::Str,
            _ => return None,
        })
    }

    /// The Open Inference Protocol's name of the type.
    pub fn datatype(self) -> &'static str {
        match self {
            Elem::F32 => "FP32",
            Elem::F64 => "FP64",
            Elem::I64 => "INT64",
            Elem::I32 => "INT32",
            Elem::Str => "BYTES",
        }
    }

    /// Whether it holds numbers.
    pub fn is_numeric(self) -> bool {
        self != Elem::Str
    }
}

/// A feature column, by its place among the spec's numeric or categorical features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Feature {
    /// The i-th numeric feature.
    Numeric(usize),
    /// The i-th categorical feature.
    Categorical(usize),
}

/// One model input fed by one feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnInput {
    /// The input's (and the column's) name.
    pub name: String,
    /// The column that feeds it.
    pub feature: Feature,
    /// The element type the model declares.
    pub elem: Elem,
    /// `[N]` (1) or `[N, 1]` (2).
    pub rank: usize,
}

/// The two input shapes exporters produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Inputs {
    /// One input per feature column, named after it (skl2onnx with a `ColumnTransformer`).
    PerColumn(Vec<ColumnInput>),
    /// One `[N, F]` tensor of the spec's numeric features in their order (XGBoost,
    /// LightGBM, PyTorch).
    Matrix {
        /// The input's name.
        name: String,
        /// FP32 or FP64.
        elem: Elem,
    },
}

/// A class label, as a ZipMap keys it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClassKey {
    /// An integer class (a 0/1 target).
    Int(i64),
    /// A text class (a text target's positive label).
    Text(String),
}

/// Where the positive class's probability comes out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// Column `column` of an `[N, K]` probability tensor.
    Matrix {
        /// The output's name.
        name: String,
        /// FP32 or FP64.
        elem: Elem,
        /// The positive class's column.
        column: usize,
    },
    /// An `[N]` or `[N, 1]` tensor that is the positive class's probability itself.
    Vector {
        /// The output's name.
        name: String,
        /// FP32 or FP64.
        elem: Elem,
    },
    /// skl2onnx's ZipMap: a sequence of one map per row, class to probability.
    ZipMap {
        /// The output's name.
        name: String,
        /// The positive class.
        key: ClassKey,
    },
}

/// The target's classes, as the model saw them at training.
#[derive(Debug, Clone, PartialEq)]
pub enum Classes {
    /// A 0/1 target: class 1 is positive, second in a probability tensor.
    Binary,
    /// A text target: `positive` among `sorted` (scikit-learn orders text classes so).
    Text {
        /// The positive label.
        positive: String,
        /// The distinct labels of the training rows, sorted.
        sorted: Vec<String>,
    },
}

/// A model's inputs and outputs bound to the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The spec's numeric features, in order.
    pub numeric: Vec<String>,
    /// The spec's categorical features, in order.
    pub categorical: Vec<String>,
    /// How they are fed.
    pub inputs: Inputs,
    /// Where the probability comes out.
    pub output: Output,
    /// The tool that wrote the file, as it says (`skl2onnx`, `OnnxMLTools`, `pytorch`).
    pub producer: String,
}

/// A declared input or output: its name and type.
pub type Declared = (String, ValueType);

fn tensor(ty: &ValueType) -> Option<(Elem, Vec<i64>)> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => Some((Elem::of(*ty)?, shape.to_vec())),
        _ => None,
    }
}

fn list(names: &[&str]) -> String {
    names.join(", ")
}

impl Binding {
    /// Binds `inputs` and `outputs` to the spec's features; the error names what is
    /// missing, extra or of the wrong type, and the two shapes that work.
    pub fn new(
        numeric: &[String],
        categorical: &[String],
        inputs: &[Declared],
        outputs: &[Declared],
        classes: &Classes,
    ) -> Result<Binding, String> {
        let inputs = bind_inputs(numeric, categorical, inputs)?;
        let output = bind_output(outputs, classes)?;
        Ok(Binding {
            numeric: numeric.to_vec(),
            categorical: categorical.to_vec(),
            inputs,
            output,
            producer: String::new(),
        })
    }

    /// Each feature's datatype as the model declares it, numeric features first: what a
    /// server's metadata lists.
    pub fn datatypes(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        match &self.inputs {
            Inputs::PerColumn(columns) => {
                let of = |f: Feature| {
                    columns
                        .iter()
                        .find(|c| c.feature == f)
                        .map_or("FP32", |c| c.elem.datatype())
                };
                for (i, n) in self.numeric.iter().enumerate() {
                    out.push((n.clone(), of(Feature::Numeric(i))));
                }
                for (i, n) in self.categorical.iter().enumerate() {
                    out.push((n.clone(), of(Feature::Categorical(i))));
                }
            }
            Inputs::Matrix { elem, .. } => {
                out.extend(self.numeric.iter().map(|n| (n.clone(), elem.datatype())));
            }
        }
        out
    }
}

const SHAPES: &str = "an ONNX model takes either one input per feature column, named after it, of shape [N, 1] (skl2onnx with a ColumnTransformer), or one float tensor [N, F] of the spec's numeric features in their order (XGBoost, LightGBM, PyTorch)";

fn bind_inputs(
    numeric: &[String],
    categorical: &[String],
    declared: &[Declared],
) -> Result<Inputs, String> {
    let feature = |name: &str| {
        numeric
            .iter()
            .position(|n| n == name)
            .map(Feature::Numeric)
            .or_else(|| {
                categorical
                    .iter()
                    .position(|n| n == name)
                    .map(Feature::Categorical)
            })
    };
    let extra: Vec<&str> = declared
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| feature(n).is_none())
        .collect();
    // One tensor that is not a column: the numeric features as a matrix.
    if let ([(name, ty)], [_]) = (declared, extra.as_slice()) {
        return bind_matrix(name, ty, numeric, categorical);
    }
    let missing: Vec<&str> = numeric
        .iter()
        .chain(categorical)
        .map(String::as_str)
        .filter(|f| !declared.iter().any(|(n, _)| n == f))
        .collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!(
                "no input for feature{} {} of the spec",
                if missing.len() == 1 { "" } else { "s" },
                list(&missing)
            ));
        }
        if !extra.is_empty() {
            parts.push(format!(
                "input{} {} {} not a feature of the spec",
                if extra.len() == 1 { "" } else { "s" },
                list(&extra),
                if extra.len() == 1 { "is" } else { "are" }
            ));
        }
        return Err(format!(
            "the model's inputs do not match the spec's features: {}; {SHAPES}",
            parts.join("; ")
        ));
    }
    let mut columns = Vec::new();
    for (name, ty) in declared {
        let Some(f) = feature(name) else { continue };
        let Some((elem, shape)) = tensor(ty) else {
            return Err(format!(
                "input {name} is not a tensor of numbers or text ({ty:?}); {SHAPES}"
            ));
        };
        let rank = match shape.as_slice() {
            [_] => 1,
            [_, 1] | [_, -1] => 2,
            other => {
                return Err(format!(
                    "input {name} has shape {other:?}; a column's input is [N] or [N, 1]"
                ));
            }
        };
        if let Feature::Numeric(_) = f
            && elem == Elem::Str
        {
            return Err(format!(
                "input {name} takes text but {name} is a numeric feature of the spec; list it under categorical, or export the input as a number"
            ));
        }
        columns.push(ColumnInput {
            name: name.clone(),
            feature: f,
            elem,
            rank,
        });
    }
    Ok(Inputs::PerColumn(columns))
}

fn bind_matrix(
    name: &str,
    ty: &ValueType,
    numeric: &[String],
    categorical: &[String],
) -> Result<Inputs, String> {
    let Some((elem, shape)) = tensor(ty).filter(|(e, _)| matches!(e, Elem::F32 | Elem::F64)) else {
        return Err(format!(
            "the model's one input {name} is not a feature of the spec, nor a float tensor [N, F] of its numeric features ({ty:?}); {SHAPES}"
        ));
    };
    if !categorical.is_empty() {
        return Err(format!(
            "the model takes one float tensor ({name}) but the spec has categorical features ({}), which cannot be passed in it; list only numeric features, or export the model with one input per column",
            categorical.join(", ")
        ));
    }
    match shape.as_slice() {
        [_, w] if *w == -1 || *w == numeric.len() as i64 => Ok(Inputs::Matrix {
            name: name.into(),
            elem,
        }),
        [_, w] => Err(format!(
            "the model's input {name} takes {w} features but the spec lists {} numeric features ({})",
            numeric.len(),
            numeric.join(", ")
        )),
        other => Err(format!(
            "the model's input {name} has shape {other:?}, not [N, F]; {SHAPES}"
        )),
    }
}

fn bind_output(declared: &[Declared], classes: &Classes) -> Result<Output, String> {
    let label_is_text = declared
        .iter()
        .any(|(n, ty)| n == "label" && tensor(ty).is_some_and(|(e, _)| e == Elem::Str));
    let float = |(name, ty): &Declared| {
        tensor(ty)
            .filter(|(e, _)| matches!(e, Elem::F32 | Elem::F64))
            .map(|(elem, shape)| (name.clone(), elem, shape))
    };
    let tensors: Vec<(String, Elem, Vec<i64>)> = declared.iter().filter_map(float).collect();
    // A probability tensor: `probabilities` first, else any float [N, K] with K > 1.
    let mut matrices: Vec<&(String, Elem, Vec<i64>)> = tensors
        .iter()
        .filter(|(_, _, s)| matches!(s.as_slice(), [_, k] if *k != 1))
        .collect();
    matrices.sort_by_key(|(n, _, _)| n != "probabilities");
    if let Some((name, elem, shape)) = matrices.first() {
        let column = match classes {
            Classes::Binary => 1,
            // A model trained on the text labels orders them as scikit-learn does; one
            // trained on 0/1 (an integer `label` output) puts the positive class second.
            Classes::Text { positive, sorted } if label_is_text => {
                sorted.iter().position(|c| c == positive).ok_or_else(|| {
                    format!("positive_label {positive:?} is not among the training labels")
                })?
            }
            Classes::Text { .. } => 1,
        };
        if let [_, k] = shape.as_slice()
            && *k > 0
            && column as i64 >= *k
        {
            return Err(format!(
                "output {name} has {k} classes; the positive class would be column {column}"
            ));
        }
        return Ok(Output::Matrix {
            name: name.clone(),
            elem: *elem,
            column,
        });
    }
    let zipmap = declared.iter().find_map(|(name, ty)| match ty {
        ValueType::Sequence(inner) => match inner.as_ref() {
            ValueType::Map { key, .. } => Some((name, *key)),
            _ => None,
        },
        _ => None,
    });
    if let Some((name, key)) = zipmap {
        let key = match (key, classes) {
            (TensorElementType::String, Classes::Text { positive, .. }) => {
                ClassKey::Text(positive.clone())
            }
            (TensorElementType::String, Classes::Binary) => ClassKey::Text("1".into()),
            _ => ClassKey::Int(1),
        };
        return Ok(Output::ZipMap {
            name: name.clone(),
            key,
        });
    }
    let vectors: Vec<&(String, Elem, Vec<i64>)> = tensors
        .iter()
        .filter(|(_, _, s)| matches!(s.as_slice(), [_] | [_, 1]))
        .collect();
    if let [(name, elem, _)] = vectors.as_slice() {
        return Ok(Output::Vector {
            name: name.clone(),
            elem: *elem,
        });
    }
    let names: Vec<String> = declared
        .iter()
        .map(|(n, ty)| format!("{n} {ty:?}"))
        .collect();
    Err(format!(
        "the model has no probability output (its outputs: {}); export a [N, 2] probabilities tensor (skl2onnx: options zipmap False), a ZipMap, or one [N] tensor of the positive class's probability",
        names.join("; ")
    ))
}
