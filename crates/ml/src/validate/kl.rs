//! `expect_column_kl_divergence_to_be_less_than` as Great Expectations 1.2.0 computes it
//! on pandas: the KL divergence of the column's distribution from a partition object
//! (bins and weights for numbers, values and weights for categories), with GX's tail and
//! internal weight holdouts and its result details. The arithmetic lives here, apart from
//! the scan that counts the column, so it can be checked against GX's numbers directly.

use serde_json::{Map, Value, json};

use super::types::same_value as same;

/// A partition object, as GX writes one.
#[derive(Debug, Clone, PartialEq)]
pub enum Partition {
    /// Values and the share of rows expected to hold each.
    Categorical {
        /// The values.
        values: Vec<Value>,
        /// The share of rows expected to hold each value.
        weights: Vec<f64>,
    },
    /// Bin edges (the ends may be infinite), the share of rows expected in each bin, and
    /// optionally the shares expected below and above the edges.
    Continuous {
        /// Increasing bin edges; the first may be -∞ and the last +∞.
        bins: Vec<f64>,
        /// The share of rows expected in each bin.
        weights: Vec<f64>,
        /// The shares expected below the first edge and above the last.
        tail_weights: Option<[f64; 2]>,
    },
}

/// The expectation's arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The given partition; `None` builds one from the data (the divergence is then 0).
    pub partition: Option<Partition>,
    /// The largest divergence that passes; `None` passes any.
    pub threshold: Option<f64>,
    /// Weight set aside for values outside the partition.
    pub tail_weight_holdout: f64,
    /// Weight set aside for the partition's empty bins.
    pub internal_weight_holdout: f64,
    /// Whether a missing partition is built from bins (true) or from the values.
    pub bucketize_data: bool,
}

/// The divergence and GX's `details` (the observed and expected partitions).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The KL divergence; infinite when the data has values the partition gives no weight.
    pub divergence: f64,
    /// GX's `result.details`.
    pub details: Value,
}

/// A number, or Python's infinities (`Infinity`, `-Infinity`, written as text by
/// [`tollgate_spec::python_json`]).
fn edge(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse::<f64>().ok()))
}

fn numbers(v: &Value, what: &str) -> Result<Vec<f64>, String> {
    v.as_array()
        .ok_or_else(|| format!("partition_object.{what} must be a list of numbers"))?
        .iter()
        .map(|x| edge(x).ok_or_else(|| format!("partition_object.{what} holds {x}, not a number")))
        .collect()
}

fn sums_to_one(weights: &[f64]) -> bool {
    (weights.iter().sum::<f64>() - 1.0).abs() <= 1e-8 + 1e-5
}

fn holdout(k: &Map<String, Value>, key: &str) -> Result<f64, String> {
    match k.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(v) => match v.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
            _ => Err(format!(
                "{key} must be between zero and one (greater than or equal to 0 and less than or equal to 1), got {v}"
            )),
        },
    }
}

/// Reads and checks the arguments, refusing what GX refuses.
pub fn settings(k: &Map<String, Value>) -> Result<Settings, String> {
    let threshold = match k.get("threshold") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(t) if t >= 0.0 => Some(t),
            _ => {
                return Err(format!(
                    "threshold must be a number greater than or equal to zero, got {v}"
                ));
            }
        },
    };
    let tail = holdout(k, "tail_weight_holdout")?;
    let internal = holdout(k, "internal_weight_holdout")?;
    let bucketize_data = match k.get("bucketize_data") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(format!("bucketize_data must be true or false, got {v}")),
    };
    let partition = match k.get("partition_object") {
        None | Some(Value::Null) => None,
        Some(p) => Some(partition(p)?),
    };
    match &partition {
        Some(Partition::Categorical { .. }) if internal > 0.0 => {
            return Err("internal_weight_holdout cannot be used for discrete data".into());
        }
        Some(Partition::Continuous { .. }) if !bucketize_data => {
            return Err(
                "a continuous partition object needs bucketize_data (it is false here)".into(),
            );
        }
        Some(Partition::Continuous {
            bins, tail_weights, ..
        }) => {
            let open =
                bins.first() == Some(&f64::NEG_INFINITY) || bins.last() == Some(&f64::INFINITY);
            if tail_weights.is_some() && tail > 0.0 {
                return Err(
                    "tail_weight_holdout must be 0 when the partition object has tail_weights"
                        .into(),
                );
            }
            if open && tail_weights.is_some() {
                return Err(
                    "a partition with an infinite endpoint can have no tail_weights".into(),
                );
            }
            if bins.first() == Some(&f64::NEG_INFINITY)
                && bins.last() == Some(&f64::INFINITY)
                && tail > 0.0
            {
                return Err(
                    "tail_weight_holdout cannot be used for partitions with infinite endpoints"
                        .into(),
                );
            }
        }
        _ => {}
    }
    Ok(Settings {
        partition,
        threshold,
        tail_weight_holdout: tail,
        internal_weight_holdout: internal,
        bucketize_data,
    })
}

/// A partition object, checked as GX checks one: as many weights as values (or one fewer
/// edge), edges increasing, and weights (with tail weights) summing to one.
pub fn partition(p: &Value) -> Result<Partition, String> {
    let invalid = |why: &str| format!("invalid partition object: {why}");
    let p = p.as_object().ok_or_else(|| invalid("not an object"))?;
    let weights = numbers(
        p.get("weights").ok_or_else(|| invalid("no weights"))?,
        "weights",
    )?;
    if let Some(values) = p.get("values") {
        let values = values
            .as_array()
            .ok_or_else(|| invalid("values is not a list"))?
            .clone();
        if values.len() != weights.len() || !sums_to_one(&weights) {
            return Err(invalid("one weight per value, summing to 1"));
        }
        return Ok(Partition::Categorical { values, weights });
    }
    let bins = numbers(
        p.get("bins").ok_or_else(|| invalid("no bins or values"))?,
        "bins",
    )?;
    let tail_weights = match p.get("tail_weights") {
        None => None,
        Some(t) => match numbers(t, "tail_weights")?.as_slice() {
            [a, b] => Some([*a, *b]),
            _ => return Err(invalid("tail_weights holds two weights")),
        },
    };
    let total: Vec<f64> = weights
        .iter()
        .chain(tail_weights.iter().flatten())
        .copied()
        .collect();
    if weights.is_empty()
        || bins.len() != weights.len() + 1
        || bins.iter().chain(&total).any(|x| x.is_nan())
        || bins.windows(2).any(|w| w[1] <= w[0])
        || !sums_to_one(&total)
    {
        return Err(invalid(
            "one more bin edge than weights, edges increasing, weights summing to 1",
        ));
    }
    Ok(Partition::Continuous {
        bins,
        weights,
        tail_weights,
    })
}

/// scipy's `stats.entropy(pk, qk)`: both normalised, then Σ pk·ln(pk/qk), infinite where
/// pk > 0 and qk = 0.
pub fn entropy(pk: &[f64], qk: &[f64]) -> f64 {
    let (sp, sq) = (pk.iter().sum::<f64>(), qk.iter().sum::<f64>());
    pk.iter()
        .zip(qk)
        .map(|(&p, &q)| {
            let (p, q) = (p / sp, q / sq);
            if p == 0.0 && q >= 0.0 {
                0.0
            } else if p > 0.0 && q > 0.0 {
                p * (p / q).ln()
            } else {
                f64::INFINITY
            }
        })
        .sum()
}

/// The divergence of observed value counts from a categorical partition. Values the
/// partition lacks share `tail_weight_holdout`.
pub fn categorical(
    values: &[Value],
    weights: &[f64],
    observed: &[(Value, u64)],
    nonnull: u64,
    tail_weight_holdout: f64,
) -> Outcome {
    let mut index: Vec<Value> = values.to_vec();
    for (v, _) in observed {
        if !index.iter().any(|x| same(x, v)) {
            index.push(v.clone());
        }
    }
    let pk: Vec<f64> = index
        .iter()
        .map(|v| {
            observed
                .iter()
                .find(|(o, _)| same(o, v))
                .map_or(0.0, |(_, n)| *n as f64 / nonnull.max(1) as f64)
        })
        .collect();
    let unlisted = index.len() - values.len();
    let qk: Vec<f64> = (0..index.len())
        .map(|i| match weights.get(i) {
            Some(w) if unlisted > 0 => w * (1.0 - tail_weight_holdout),
            Some(w) => *w,
            None => tail_weight_holdout / unlisted as f64,
        })
        .collect();
    Outcome {
        divergence: entropy(&pk, &qk),
        details: json!({
            "observed_partition": {"values": index, "weights": pk},
            "expected_partition": {"values": index, "weights": qk},
        }),
    }
}

fn shown(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(
        || Value::String(if x > 0.0 { "Infinity" } else { "-Infinity" }.into()),
        Value::Number,
    )
}

fn listed(xs: &[f64]) -> Value {
    Value::Array(xs.iter().map(|&x| shown(x)).collect())
}

/// Counts observed for a continuous partition: per bin (GX's histogram: each bin holds
/// its left edge, the last also its right), and below and above the edges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Counts {
    /// Rows per bin.
    pub histogram: Vec<u64>,
    /// Rows below the first edge.
    pub below: u64,
    /// Rows above the last edge.
    pub above: u64,
    /// Present rows.
    pub nonnull: u64,
}

/// The divergence of observed counts from a continuous partition, with GX's holdouts and
/// its treatment of infinite endpoints.
pub fn continuous(
    bins: &[f64],
    weights: &[f64],
    tail_weights: Option<[f64; 2]>,
    counts: &Counts,
    tail: f64,
    internal: f64,
) -> Outcome {
    let n = counts.nonnull.max(1) as f64;
    let mut observed: Vec<f64> = counts.histogram.iter().map(|&c| c as f64 / n).collect();
    let (below, above) = (counts.below as f64 / n, counts.above as f64 / n);
    let mut expected: Vec<f64> = weights
        .iter()
        .map(|w| w * (1.0 - tail - internal))
        .collect();
    if internal > 0.0 {
        let zeros = expected.iter().filter(|w| **w == 0.0).count();
        if zeros > 0 {
            for w in expected.iter_mut().filter(|w| **w == 0.0) {
                *w = internal / zeros as f64;
            }
        }
    }
    let (lower_open, upper_open) = (
        bins.first() == Some(&f64::NEG_INFINITY),
        bins.last() == Some(&f64::INFINITY),
    );
    let last = observed.len().saturating_sub(1);
    let (shown_bins, comb_observed, comb_expected, observed_tails, expected_tails);
    match (lower_open, upper_open) {
        (true, true) => {
            shown_bins = bins[1..bins.len() - 1].to_vec();
            comb_observed = observed.clone();
            comb_expected = expected.clone();
            observed_tails = [observed[0], observed[last]];
            expected_tails = [expected[0], expected[last]];
            observed = observed.get(1..last).unwrap_or_default().to_vec();
            expected = expected.get(1..last).unwrap_or_default().to_vec();
        }
        (true, false) => {
            shown_bins = bins[1..].to_vec();
            comb_observed = [observed.as_slice(), &[above]].concat();
            comb_expected = [expected.as_slice(), &[tail]].concat();
            observed_tails = [observed[0], above];
            expected_tails = [expected[0], tail];
            observed.remove(0);
            expected.remove(0);
        }
        (false, true) => {
            shown_bins = bins[..bins.len() - 1].to_vec();
            comb_observed = [&[below], observed.as_slice()].concat();
            comb_expected = [&[tail], expected.as_slice()].concat();
            observed_tails = [below, observed[last]];
            expected_tails = [tail, expected[last]];
            observed.pop();
            expected.pop();
        }
        (false, false) => {
            shown_bins = bins.to_vec();
            let [low, high] = tail_weights.unwrap_or([tail / 2.0, tail / 2.0]);
            comb_observed = [&[below], observed.as_slice(), &[above]].concat();
            comb_expected = [&[low], expected.as_slice(), &[high]].concat();
            observed_tails = [below, above];
            expected_tails = [low, high];
        }
    }
    Outcome {
        divergence: entropy(&comb_observed, &comb_expected),
        details: json!({
            "observed_partition": {
                "bins": listed(&shown_bins),
                "weights": listed(&observed),
                "tail_weights": listed(&observed_tails),
            },
            "expected_partition": {
                "bins": listed(&shown_bins),
                "weights": listed(&expected),
                "tail_weights": listed(&expected_tails),
            },
        }),
    }
}

/// numpy's histogram of `values` over `bins`.
pub fn histogram(values: &[f64], bins: &[f64]) -> Counts {
    let mut counts = Counts {
        histogram: vec![0; bins.len().saturating_sub(1)],
        nonnull: values.len() as u64,
        ..Counts::default()
    };
    let (Some(&first), Some(&last)) = (bins.first(), bins.last()) else {
        return counts;
    };
    for &v in values {
        if v < first {
            counts.below += 1;
        } else if v > last {
            counts.above += 1;
        } else {
            let at = bins.partition_point(|&b| b <= v).saturating_sub(1);
            if let Some(c) = counts.histogram.get_mut(at.min(bins.len() - 2)) {
                *c += 1;
            }
        }
    }
    counts
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// numpy's `histogram_bin_edges(values, "auto")`: the narrower of the Freedman–Diaconis
/// and Sturges widths over the data's range. `values` must be sorted.
pub fn auto_bins(sorted: &[f64]) -> Vec<f64> {
    let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
        return vec![0.0, 1.0];
    };
    let (first, last) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let n = sorted.len() as f64;
    let sturges = (hi - lo) / (n.log2() + 1.0);
    let iqr = percentile(sorted, 0.75) - percentile(sorted, 0.25);
    let fd = 2.0 * iqr / n.cbrt();
    let width = if fd > 0.0 { fd.min(sturges) } else { sturges };
    let count = if width > 0.0 {
        ((last - first) / width).ceil().max(1.0) as usize
    } else {
        1
    };
    (0..=count)
        .map(|i| first + (last - first) * i as f64 / count as f64)
        .collect()
}

/// Whether the divergence passes `threshold`, and the observed value GX reports (null
/// when the divergence is infinite or undefined).
pub fn verdict(divergence: f64, threshold: Option<f64>) -> (bool, Value) {
    let observed = if divergence.is_finite() {
        shown(divergence)
    } else {
        Value::Null
    };
    (threshold.is_none_or(|t| divergence <= t), observed)
}

#[cfg(test)]
mod tests;
