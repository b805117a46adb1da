//! The feature pipeline: fitted on the training rows only, stored in the artifact, and
//! applied the same way by the trainer, the gate and single-record inference.
//! Numeric columns are median-imputed then standardized; categorical columns are one-hot
//! encoded, and a category unseen at training encodes as all zeros.

use serde::{Deserialize, Serialize};
use tollgate_spec::ModelSpec;

use crate::{
    data::DataError,
    table::{Columns, Record, Table, median},
};

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
            let mut seen = vec![false; column.values.len()];
            for &i in train {
                if let Some(c) = column.codes[i] {
                    seen[c as usize] = true;
                }
            }
            let mut categories: Vec<String> = column
                .values
                .iter()
                .zip(seen)
                .filter(|&(_, seen)| seen)
                .map(|(v, _)| v.clone())
                .collect();
            categories.sort();
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
        self.encode_values(
            record.numeric.iter().copied(),
            record.categorical.iter().map(Option::as_deref),
            out,
        );
    }

    /// Encodes row `i` of `table` into `out` as [`Self::encode`] would its record, without
    /// copying the row out first.
    pub fn encode_row(&self, table: &Table, i: usize, out: &mut [f64]) {
        self.encode_values(
            table.numeric.iter().map(|c| c[i]),
            table.categorical.iter().map(|c| c.get(i)),
            out,
        );
    }

    /// Encodes one row's raw values (numeric, then categorical, in spec order) into `out`.
    pub fn encode_values<'a>(
        &self,
        numeric: impl Iterator<Item = Option<f64>>,
        categorical: impl Iterator<Item = Option<&'a str>>,
        out: &mut [f64],
    ) {
        let mut k = 0;
        for (f, v) in self.numeric.iter().zip(numeric) {
            out[k] = (v.unwrap_or(f.median) - f.mean) / f.std;
            k += 1;
        }
        for (f, v) in self.categorical.iter().zip(categorical) {
            let slots = &mut out[k..k + f.categories.len()];
            slots.fill(0.0);
            if let Some(j) =
                v.and_then(|v| f.categories.binary_search_by(|c| c.as_str().cmp(v)).ok())
            {
                slots[j] = 1.0;
            }
            k += f.categories.len();
        }
    }

    /// Encodes the rows `rows` of `table` into a matrix.
    pub fn transform(&self, table: &Table, rows: &[usize]) -> ndarray::Array2<f64> {
        let mut x = ndarray::Array2::zeros((rows.len(), self.width()));
        for (r, &i) in rows.iter().enumerate() {
            if let Some(slice) = x.row_mut(r).as_slice_mut() {
                self.encode_row(table, i, slice);
            }
        }
        x
    }
}
