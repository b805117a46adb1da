//! Column profiles: per column count, nulls, distinct count, min / max / mean / stdev and
//! quantiles for numbers, the top categories for text. The trainer stores the profile of
//! its training rows with the version as the reference later data is compared with.

use serde::{Deserialize, Serialize};

use crate::table::{Table, TextColumn};

/// Quantiles kept per numeric column: 0%, 5%, ..., 100%.
pub const QUANTILES: usize = 21;
/// Categories kept per text column, most frequent first.
pub const TOP_CATEGORIES: usize = 20;

/// A dataset's profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    /// Rows profiled.
    pub rows: u64,
    /// One entry per column, in spec order.
    pub columns: Vec<ColumnProfile>,
}

/// One column's profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnProfile {
    /// Column name.
    pub name: String,
    /// Present (non-null) values.
    pub count: u64,
    /// Missing values.
    pub nulls: u64,
    /// Distinct present values.
    pub distinct: u64,
    /// Statistics of a numeric column.
    pub numeric: Option<NumericProfile>,
    /// Most frequent categories of a text column, with their counts.
    pub top: Vec<(String, u64)>,
}

/// Statistics of a numeric column's present values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NumericProfile {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// [`QUANTILES`] evenly spaced quantiles, linear interpolation.
    pub quantiles: Vec<f64>,
}

fn numeric(name: &str, values: &[Option<f64>], rows: &[usize]) -> ColumnProfile {
    let mut present: Vec<f64> = rows.iter().filter_map(|&i| values[i]).collect();
    present.sort_unstable_by(f64::total_cmp);
    let n = present.len();
    let mut distinct = 0;
    for (i, v) in present.iter().enumerate() {
        if i == 0 || *v != present[i - 1] {
            distinct += 1;
        }
    }
    let stats = (n > 0).then(|| {
        let mean = present.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            present.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let quantile = |q: f64| {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            present[lo] + (present[hi] - present[lo]) * (pos - lo as f64)
        };
        NumericProfile {
            min: present[0],
            max: present[n - 1],
            mean,
            std: var.sqrt(),
            quantiles: (0..QUANTILES)
                .map(|k| quantile(k as f64 / (QUANTILES - 1) as f64))
                .collect(),
        }
    });
    ColumnProfile {
        name: name.into(),
        count: n as u64,
        nulls: (rows.len() - n) as u64,
        distinct,
        numeric: stats,
        top: Vec::new(),
    }
}

fn categorical(name: &str, column: &TextColumn, rows: &[usize]) -> ColumnProfile {
    let mut counts = vec![0u64; column.values.len()];
    let mut nulls = 0;
    for &i in rows {
        match column.codes[i] {
            Some(c) => counts[c as usize] += 1,
            None => nulls += 1,
        }
    }
    let mut top: Vec<(String, u64)> = column
        .values
        .iter()
        .zip(counts)
        .filter(|&(_, n)| n > 0)
        .map(|(v, n)| (v.clone(), n))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let distinct = top.len() as u64;
    top.truncate(TOP_CATEGORIES);
    ColumnProfile {
        name: name.into(),
        count: rows.len() as u64 - nulls,
        nulls,
        distinct,
        numeric: None,
        top,
    }
}

/// The profile of `rows` of a table whose columns are named by `numeric` and `categorical`.
pub fn of_table(
    table: &Table,
    numeric_names: &[String],
    categorical_names: &[String],
    rows: &[usize],
) -> Profile {
    // Columns are independent: profile them on parallel threads over the one read.
    let columns = std::thread::scope(|scope| {
        let numeric_jobs: Vec<_> = numeric_names
            .iter()
            .zip(&table.numeric)
            .map(|(n, v)| scope.spawn(move || numeric(n, v, rows)))
            .collect();
        let categorical_jobs: Vec<_> = categorical_names
            .iter()
            .zip(&table.categorical)
            .map(|(n, v)| scope.spawn(move || categorical(n, v, rows)))
            .collect();
        numeric_jobs
            .into_iter()
            .chain(categorical_jobs)
            .map(|job| {
                job.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Vec<_>>()
    });
    Profile {
        rows: rows.len() as u64,
        columns,
    }
}

/// The profile of the spec's feature columns in the dataset at `path` (no target needed).
pub fn of_file(
    path: &std::path::Path,
    spec: &tollgate_spec::ModelSpec,
) -> Result<Profile, crate::DataError> {
    let (numeric_names, categorical_names) = (&spec.features.numeric, &spec.features.categorical);
    let mut names = numeric_names.clone();
    names.extend(categorical_names.iter().cloned());
    let df = crate::data::read_columns(path, &names)?;
    let table = Table {
        numeric: numeric_names
            .iter()
            .map(|c| crate::data::numeric_column(&df, c))
            .collect::<Result<Vec<_>, _>>()?,
        categorical: categorical_names
            .iter()
            .map(|c| crate::data::text_codes(&df, c))
            .collect::<Result<Vec<_>, _>>()?,
        target: Vec::new(),
        coerced: Vec::new(),
    };
    let rows: Vec<usize> = (0..df.height()).collect();
    Ok(of_table(&table, numeric_names, categorical_names, &rows))
}

#[cfg(test)]
mod tests;
