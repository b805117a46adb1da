//! The expectation suite as polars aggregations: every expectation compiles into a few
//! aggregate expressions and the whole suite runs as one `select` over a lazy scan, so
//! the data is read once. Only compound-column uniqueness needs a group-by of its own,
//! and failing column expectations a small second query for up to 20 unexpected values.
//!
//! Results follow Great Expectations' names and its SUMMARY result fields. A problem with
//! one expectation (a column the data lacks, a bad argument, a wrong type) fails that
//! expectation with an error message; it never stops the others.

use std::{collections::BTreeMap, path::Path};

use polars::prelude::*;
use tollgate_proto::{ExpectationResult, ValidationReport};
use tollgate_spec::Expectation;

use crate::data::{self, DataError, unreadable};

mod args;
mod checks;
pub mod condition;
mod context;
mod dates;
mod duplicates;
mod failures;
mod judge;
pub mod kl;
mod model;
mod params;
mod results;
mod types;

pub use checks::supported;
pub use dates::timestamp;
pub use failures::{export_failing_rows, failing_rows};
pub use results::{PARTIAL_UNEXPECTED, summary_json};

use self::{checks::*, duplicates::*, judge::*, model::*, results::*};

/// Runs `expectations` over the dataset at `path`. An unreadable or missing file is an
/// error; a problem with one expectation is reported in that expectation's result.
pub fn validate(path: &Path, expectations: &[Expectation]) -> Result<ValidationReport, DataError> {
    let started = std::time::Instant::now();
    let mut results: Vec<ExpectationResult> = expectations.iter().map(result_for).collect();
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        for r in &mut results {
            r.error = format!("the dataset file {} is empty", path.display());
        }
        return Ok(ValidationReport {
            success: false,
            row_count: 0,
            results,
            ..Default::default()
        });
    }
    let (lf, schema) = data::scan(path)?;
    let mut checks: Vec<Option<Compiled>> = Vec::with_capacity(expectations.len());
    for (e, r) in expectations.iter().zip(results.iter_mut()) {
        match compile(e, &schema) {
            Ok(c) => checks.push(Some(c)),
            Err(msg) => {
                r.error = msg;
                checks.push(None);
            }
        }
    }
    let select = |checks: &[Option<Compiled>]| -> Vec<Expr> {
        std::iter::once(len().alias("rows"))
            .chain(
                checks
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
                    .flat_map(|(i, c)| aggregates(i, c)),
            )
            .collect()
    };
    // The uniqueness checks read their column in scans of their own, beside the main one.
    let (main, uniques) = std::thread::scope(|scope| {
        let uniques: Vec<_> = checks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(
                    compiled @ Compiled {
                        check: Check::Unique { column, keyed, .. },
                        ..
                    },
                ) => {
                    let lf = compiled.rows(&lf);
                    Some((
                        i,
                        scope.spawn(move || {
                            if *keyed {
                                duplicates(&lf, column)
                            } else {
                                duplicates_by_polars(&lf, column)
                            }
                        }),
                    ))
                }
                _ => None,
            })
            .collect();
        let main = data::collect(lf.clone().select(select(&checks)));
        let uniques: BTreeMap<usize, PolarsResult<(u64, Vec<String>)>> = uniques
            .into_iter()
            .map(|(i, handle)| {
                let result = handle.join().unwrap_or_else(|_| {
                    Err(polars_err!(ComputeError: "the uniqueness scan panicked"))
                });
                (i, result)
            })
            .collect();
        (main, uniques)
    });
    let df = match main {
        Ok(df) => df,
        // Bytes that are not text are the file's fault, not one expectation's.
        Err(whole) if whole.to_string().contains("invalid utf-8") => {
            return Err(data::unreadable(path, whole));
        }
        Err(whole) => {
            // Attribute the failure: evaluate each expectation alone, drop the broken ones.
            for (i, c) in checks.iter_mut().enumerate() {
                if let Some(check) = c {
                    let alone = aggregates(i, check);
                    if !alone.is_empty()
                        && let Err(e) = data::collect(lf.clone().select(alone))
                    {
                        results[i].error = format!("cannot evaluate: {e}");
                        *c = None;
                    }
                }
            }
            lf.clone()
                .select(select(&checks))
                .collect()
                .map_err(|_| unreadable(path, whole))?
        }
    };
    let rows = get(&df, "rows").unwrap_or(0.0) as u64;
    let mut scanned = Scanned {
        df: &df,
        rows,
        lf: &lf,
        uniques,
    };
    for (i, c) in checks.iter().enumerate() {
        if let Some(compiled) = c {
            judge(i, compiled, &mut results[i], &mut scanned);
        }
    }
    for r in &mut results {
        if !r.error.is_empty() {
            r.success = false;
        }
    }
    Ok(ValidationReport {
        success: results.iter().all(|r| r.success),
        row_count: rows,
        results,
        duration_ms: started.elapsed().as_millis() as u64,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests;
