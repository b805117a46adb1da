//! The feature pipeline: fitted on the training rows only, stored in the artifact, and
//! applied the same way by the trainer, the gate and single-record inference.
//! Numeric columns are median-imputed then standardized; categorical columns are one-hot
//! encoded, and a category unseen at training encodes as all zeros.

use serde::{Deserialize, Serialize};
use tollgate_spec::ModelSpec;

use crate::data::{self, DataError};
use polars::prelude::DataFrame;

/// A numeric feature's fitted statistics.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NumericFeature {
    /// Column name.
    pub name: String,
    /// Replaces missing values.
    pub median: f64,
    /// Subtracted before scaling.
    pub mean: f64,
    /// Divides after centering (1 for a constant column).
    pub std: f64,
}

/// A categorical feature's known categories, in one-hot order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CategoricalFeature {
    /// Column name.
    pub name: String,
    /// Categories seen in training, sorted.
    pub categories: Vec<String>,
}

/// The fitted pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeaturePipeline {
    /// Numeric features, in spec order.
    pub numeric: Vec<NumericFeature>,
    /// Categorical features, in spec order.
    pub categorical: Vec<CategoricalFeature>,
}

/// One record's raw feature values, as inference receives them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Numeric values in spec order.
    pub numeric: Vec<Option<f64>>,
    /// Categorical values in spec order.
    pub categorical: Vec<Option<String>>,
}

/// A dataset's raw feature columns and 0/1 target, read per the spec.
#[derive(Debug, Clone)]
pub struct Table {
    /// Numeric columns in spec order.
    pub numeric: Vec<Vec<Option<f64>>>,
    /// Categorical columns in spec order.
    pub categorical: Vec<Vec<Option<String>>>,
    /// Target labels, 0 or 1.
    pub target: Vec<u8>,
    /// Numeric columns that arrived as text, with how many values became null.
    pub coerced: Vec<(String, usize)>,
}

/// Which columns a table holds: feature columns by kind and the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// Numeric feature columns.
    pub numeric: Vec<String>,
    /// Categorical feature columns.
    pub categorical: Vec<String>,
    /// The target column.
    pub target: String,
    /// For a text target, the value that means 1.
    pub positive_label: Option<String>,
}

impl Columns {
    /// The columns a spec names.
    pub fn of_spec(spec: &ModelSpec) -> Self {
        Columns {
            numeric: spec.features.numeric.clone(),
            categorical: spec.features.categorical.clone(),
            target: spec.target.clone(),
            positive_label: spec.positive_label.clone(),
        }
    }

    /// Every column, target last.
    pub fn all(&self) -> Vec<String> {
        let mut all = self.numeric.clone();
        all.extend(self.categorical.iter().cloned());
        all.push(self.target.clone());
        all
    }
}

impl Table {
    /// Reads the feature and target columns from `df`.
    pub fn from_frame(df: &DataFrame, columns: &Columns) -> Result<Table, DataError> {
        let mut coerced = Vec::new();
        let mut numeric = Vec::with_capacity(columns.numeric.len());
        for c in &columns.numeric {
            let (values, n) = data::numeric_column_coerced(df, c)?;
            if n > 0 {
                coerced.push((c.clone(), n));
            }
            numeric.push(values);
        }
        let categorical = columns
            .categorical
            .iter()
            .map(|c| data::text_column(df, c))
            .collect::<Result<Vec<_>, _>>()?;
        let bad = |reason: String| DataError::BadColumn {
            column: columns.target.clone(),
            reason,
        };
        let is_text = df
            .column(&columns.target)
            .is_ok_and(|c| c.dtype() == &polars::prelude::DataType::String);
        let target = if is_text {
            let Some(positive) = &columns.positive_label else {
                return Err(bad("the target holds text: set positive_label in the spec (e.g. positive_label: \"Yes\")".into()));
            };
            let raw = data::text_column(df, &columns.target)?;
            let nulls = raw.iter().filter(|v| v.is_none()).count();
            if nulls > 0 {
                return Err(bad(format!("target has {nulls} missing values")));
            }
            raw.iter()
                .map(|v| u8::from(v.as_deref().map(str::trim) == Some(positive.as_str())))
                .collect()
        } else {
            let raw = data::numeric_column(df, &columns.target)?;
            let nulls = raw.iter().filter(|v| v.is_none()).count();
            if nulls > 0 {
                return Err(bad(format!("target has {nulls} missing values")));
            }
            raw.iter()
                .map(|v| match v {
                    Some(x) if *x == 0.0 => Ok(0u8),
                    Some(x) if *x == 1.0 => Ok(1u8),
                    other => Err(bad(format!(
                        "target must be 0 or 1 (or text with positive_label), found {}",
                        other.map(|x| x.to_string()).unwrap_or_default()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(Table {
            numeric,
            categorical,
            target,
            coerced,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.target.len()
    }

    /// Row `i`'s raw features.
    pub fn record(&self, i: usize) -> Record {
        Record {
            numeric: self.numeric.iter().map(|c| c[i]).collect(),
            categorical: self.categorical.iter().map(|c| c[i].clone()).collect(),
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

impl FeaturePipeline {
    /// Fits the pipeline on the rows `train` of `table`.
    pub fn fit(spec: &ModelSpec, table: &Table, train: &[usize]) -> Result<Self, DataError> {
        let mut numeric = Vec::new();
        for (name, column) in spec.features.numeric.iter().zip(&table.numeric) {
            let mut seen: Vec<f64> = train.iter().filter_map(|&i| column[i]).collect();
            if seen.is_empty() {
                return Err(DataError::BadColumn {
                    column: name.clone(),
                    reason: "every training value is missing".into(),
                });
            }
            let med = median(&mut seen);
            let n = train.len() as f64;
            let imputed = || train.iter().map(|&i| column[i].unwrap_or(med));
            let mean = imputed().sum::<f64>() / n;
            let var = imputed().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            if var.sqrt() <= 1e-12 {
                return Err(DataError::BadColumn {
                    column: name.clone(),
                    reason: format!(
                        "is constant on the training rows (every value is {mean}): it cannot inform the model; drop it from the spec"
                    ),
                });
            }
            let std = var.sqrt();
            numeric.push(NumericFeature {
                name: name.clone(),
                median: med,
                mean,
                std,
            });
        }
        let mut categorical = Vec::new();
        for (name, column) in spec.features.categorical.iter().zip(&table.categorical) {
            let mut categories: Vec<String> =
                train.iter().filter_map(|&i| column[i].clone()).collect();
            categories.sort();
            categories.dedup();
            categorical.push(CategoricalFeature {
                name: name.clone(),
                categories,
            });
        }
        Ok(FeaturePipeline {
            numeric,
            categorical,
        })
    }

    /// The feature columns the pipeline reads, with the target and its positive label.
    pub fn columns(&self, target: &str, positive_label: Option<String>) -> Columns {
        Columns {
            numeric: self.numeric.iter().map(|f| f.name.clone()).collect(),
            categorical: self.categorical.iter().map(|f| f.name.clone()).collect(),
            target: target.into(),
            positive_label,
        }
    }

    /// P(label = 1) for one raw record through this pipeline and `model`.
    pub fn score(&self, model: &crate::learners::Model, record: &Record) -> f64 {
        let mut buf = vec![0.0; self.width()];
        self.encode(record, &mut buf);
        model.predict(&buf)
    }

    /// Width of the encoded feature vector.
    pub fn width(&self) -> usize {
        self.numeric.len()
            + self
                .categorical
                .iter()
                .map(|c| c.categories.len())
                .sum::<usize>()
    }

    /// Encodes one record into `out` (length [`Self::width`]).
    pub fn encode(&self, record: &Record, out: &mut [f64]) {
        let mut k = 0;
        for (f, v) in self.numeric.iter().zip(&record.numeric) {
            out[k] = (v.unwrap_or(f.median) - f.mean) / f.std;
            k += 1;
        }
        for (f, v) in self.categorical.iter().zip(&record.categorical) {
            let slots = &mut out[k..k + f.categories.len()];
            slots.fill(0.0);
            if let Some(j) = v.as_ref().and_then(|v| f.categories.binary_search(v).ok()) {
                slots[j] = 1.0;
            }
            k += f.categories.len();
        }
    }

    /// Encodes the rows `rows` of `table` into a matrix.
    pub fn transform(&self, table: &Table, rows: &[usize]) -> ndarray::Array2<f64> {
        let mut x = ndarray::Array2::zeros((rows.len(), self.width()));
        for (r, &i) in rows.iter().enumerate() {
            let record = table.record(i);
            if let Some(slice) = x.row_mut(r).as_slice_mut() {
                self.encode(&record, slice);
            }
        }
        x
    }
}
