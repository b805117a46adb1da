//! What every expectation's check reads: the expectation, its arguments, the dataset's
//! schema and the rows it looks at, with the column lookups and type tests the checks
//! share.

use polars::prelude::*;
use serde_json::{Map, Value};
use tollgate_spec::Expectation;

use super::{args::*, dates::*, model::*};

/// One expectation being compiled against a dataset's schema.
pub(super) struct Ctx<'a> {
    /// The expectation.
    pub(super) e: &'a Expectation,
    /// Its keyword arguments.
    pub(super) k: &'a Map<String, Value>,
    /// The dataset's columns and types.
    pub(super) schema: &'a Schema,
    /// The rows it looks at (`row_condition`); `None`: every row.
    pub(super) domain: Option<&'a Expr>,
    /// The dataset's column names, in order.
    pub(super) names: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// The context of `e` on `schema`, restricted to `domain`.
    pub(super) fn new(e: &'a Expectation, schema: &'a Schema, domain: Option<&'a Expr>) -> Self {
        Ctx {
            e,
            k: &e.kwargs,
            schema,
            domain,
            names: schema.iter_names().map(|n| n.to_string()).collect(),
        }
    }

    /// The column `k["column"]` names, with its type; an error when the dataset lacks it.
    pub(super) fn column(&self, k: &Map<String, Value>) -> Result<(String, DataType), String> {
        let c = text(k, "column")?;
        match self.schema.get(&c) {
            Some(dtype) => Ok((c, dtype.clone())),
            None => Err(format!("column {c:?} is not in the dataset")),
        }
    }

    /// Refuses a column that is not numeric. A column of nulls only (Parquet's null type)
    /// has no values to be of the wrong type.
    pub(super) fn numeric(&self, c: &str, dtype: &DataType) -> Result<(), String> {
        if dtype.is_primitive_numeric() || dtype == &DataType::Null {
            Ok(())
        } else {
            Err(format!("column {c:?} is {dtype}, not numeric"))
        }
    }

    /// A temporal column's type, `None` for a numeric one; an error for any other.
    pub(super) fn ordered(&self, c: &str, dtype: &DataType) -> Result<Option<DataType>, String> {
        if dtype.is_temporal() {
            Ok(Some(dtype.clone()))
        } else {
            self.numeric(c, dtype).map(|()| None)
        }
    }

    /// Refuses a column that is not text.
    pub(super) fn textual(&self, c: &str, dtype: &DataType) -> Result<(), String> {
        if dtype == &DataType::String {
            Ok(())
        } else {
            Err(format!("column {c:?} is {dtype}, not text"))
        }
    }

    /// Column `c` restricted to the rows the expectation looks at.
    pub(super) fn source(&self, c: &str) -> Expr {
        restricted(c, self.domain)
    }

    /// GX 0.x's `parse_strings_as_datetimes`: a text column read as dates and times.
    pub(super) fn as_times(&self, x: Expr, dtype: &DataType) -> Result<(Expr, DataType), String> {
        if flag(self.k, "parse_strings_as_datetimes")? && *dtype == DataType::String {
            Ok((
                parsed_times(x),
                DataType::Datetime(TimeUnit::Microseconds, None),
            ))
        } else {
            Ok((x, dtype.clone()))
        }
    }

    /// The column names as a JSON list (the observed value of the schema checks).
    pub(super) fn listed(&self) -> Value {
        Value::from(self.names.clone())
    }

    /// A per-row check of `column` counting present values.
    pub(super) fn map(&self, column: String, unexpected: Expr, mostly: f64) -> Check {
        Check::Map {
            column,
            unexpected,
            present: None,
            mostly,
            counts: Counts::Present,
        }
    }
}
