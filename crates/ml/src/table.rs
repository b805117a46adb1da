//! A dataset's feature columns and 0/1 target as plain vectors, read per the spec: what
//! the feature pipeline is fitted on, the learners train on and the gate scores.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tollgate_spec::ModelSpec;

pub use crate::data::TextColumn;
use crate::data::{self, DataError};
use polars::prelude::DataFrame;

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
    pub categorical: Vec<TextColumn>,
    /// Target labels, 0 or 1.
    pub target: Vec<u8>,
    /// Numeric columns that arrived as text, with how many values became null.
    pub coerced: Vec<(String, usize)>,
}

impl FromIterator<Option<String>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<String>>>(rows: I) -> Self {
        let rows: Vec<Option<String>> = rows.into_iter().collect();
        rows.iter().map(Option::as_deref).collect()
    }
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
        if df.height() == 0 {
            return Err(DataError::NoRows);
        }
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
            .map(|c| data::text_codes(df, c))
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

    /// Reads the columns `columns` names from the dataset at `path`.
    pub fn load(columns: &Columns, path: &Path) -> Result<Table, DataError> {
        let df = data::read_columns(path, &columns.all())?;
        Table::from_frame(&df, columns)
    }

    /// The labels of `rows`.
    pub fn labels(&self, rows: &[usize]) -> Vec<u8> {
        rows.iter().map(|&i| self.target[i]).collect()
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.target.len()
    }

    /// Row `i`'s raw features.
    pub fn record(&self, i: usize) -> Record {
        Record {
            numeric: self.numeric.iter().map(|c| c[i]).collect(),
            categorical: self
                .categorical
                .iter()
                .map(|c| c.get(i).map(String::from))
                .collect(),
        }
    }
}

/// The median of `values` (reordered in place); 0 for none.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    let (below, &mut upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    match below.iter().copied().max_by(f64::total_cmp) {
        Some(lower) if values.len().is_multiple_of(2) => (lower + upper) / 2.0,
        _ => upper,
    }
}
