//! What an expectation compiles into: its [`Check`], with the ranges, counts and set
//! modes the checks share, and the rows it looks at.

use super::kl;
use polars::prelude::*;
use serde_json::Value;

/// A numeric range with Great Expectations' `strict_min` / `strict_max`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Range {
    pub(super) min: Option<f64>,
    pub(super) max: Option<f64>,
    pub(super) strict_min: bool,
    pub(super) strict_max: bool,
}

impl Range {
    /// Neither side given: every value is in range (GX passes such an expectation).
    pub(super) fn unbounded(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    pub(super) fn holds(&self, v: f64) -> bool {
        let above = |m: f64| if self.strict_min { v > m } else { v >= m };
        let below = |m: f64| if self.strict_max { v < m } else { v <= m };
        self.min.is_none_or(above) && self.max.is_none_or(below)
    }

    /// True where `x` is outside the range (nulls stay null).
    pub(super) fn outside(&self, x: Expr) -> Expr {
        let mut out = lit(false);
        if let Some(min) = self.min {
            out = out.or(if self.strict_min {
                x.clone().lt_eq(lit(min))
            } else {
                x.clone().lt(lit(min))
            });
        }
        if let Some(max) = self.max {
            out = out.or(if self.strict_max {
                x.clone().gt_eq(lit(max))
            } else {
                x.gt(lit(max))
            });
        }
        out
    }
}

/// What a per-row check counts as unexpected, and out of how many rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Counts {
    /// Present values that fail, out of the present values.
    Present,
    /// The nulls, out of every row (`expect_column_values_to_not_be_null`).
    Nulls,
    /// The present values, out of every row (`expect_column_values_to_be_null`).
    Values,
}

/// How the distinct values of a column must relate to a set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum SetMode {
    /// No set given: every value is in it.
    Anything,
    Within,
    Contains,
    Equals,
}

#[derive(Debug, Clone)]
pub(super) enum Check {
    /// Decided from the schema alone.
    Schema {
        success: bool,
        observed: String,
        json: Value,
    },
    RowCount(Range),
    /// A per-row check: `unexpected` is true on a counted row that fails. A row counts
    /// when `present` holds (by default: `column` is not null); `column`'s values are the
    /// examples shown.
    Map {
        column: String,
        unexpected: Expr,
        present: Option<Expr>,
        mostly: f64,
        counts: Counts,
    },
    /// Several aggregates, each within its own range (quantiles): all must hold.
    Stats {
        stats: Vec<Expr>,
        ranges: Vec<Range>,
        quantiles: Vec<f64>,
    },
    /// The KL divergence of the column from a partition object: a continuous partition's
    /// bins are counted in the scan, categories and a missing partition after it.
    Kl {
        column: String,
        settings: kl::Settings,
    },
    /// The most common values (found after the scan by a group-by) within a set.
    MostCommon {
        column: String,
        dtype: DataType,
        set: Vec<Value>,
        ties_okay: bool,
    },
    /// An aggregate of the column within a range; `temporal` is the column's type when the
    /// aggregate is a date or time (shown in ISO 8601).
    Stat {
        stat: Expr,
        range: Range,
        temporal: Option<DataType>,
    },
    ProportionUnique {
        column: String,
        range: Range,
    },
    Distinct {
        column: String,
        dtype: DataType,
        set: Vec<Value>,
        mode: SetMode,
    },
    Compound {
        columns: Vec<String>,
        mostly: f64,
    },
    /// Values that appear once: found by [`duplicates`] after the scan, not by a
    /// string group-by in it.
    Unique {
        column: String,
        mostly: f64,
        /// True for text and integers, which [`duplicates`] keys; other types use
        /// polars' `is_duplicated`.
        keyed: bool,
    },
}

/// Column `c` restricted to the rows where `domain` holds (all rows without one).
pub(super) fn restricted(c: &str, domain: Option<&Expr>) -> Expr {
    match domain {
        Some(d) => col(c).filter(d.clone()),
        None => col(c),
    }
}

/// A compiled expectation: its check, and the rows it looks at (`row_condition`).
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub(super) check: Check,
    /// True on the rows in the expectation's domain; `None` for every row.
    pub(super) domain: Option<Expr>,
}

impl Compiled {
    /// Column `c` restricted to the domain.
    pub(super) fn source(&self, c: &str) -> Expr {
        restricted(c, self.domain.as_ref())
    }

    /// `e` and in the domain.
    pub(super) fn within(&self, e: Expr) -> Expr {
        match &self.domain {
            Some(d) => e.and(d.clone()),
            None => e,
        }
    }

    /// The scan restricted to the domain.
    pub(super) fn rows(&self, lf: &LazyFrame) -> LazyFrame {
        match &self.domain {
            Some(d) => lf.clone().filter(d.clone()),
            None => lf.clone(),
        }
    }
}
