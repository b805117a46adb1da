//! Histogram trees: what scikit-learn's HistGradientBoosting and LightGBM do. Every
//! feature is binned once into at most 256 bins; a node's best split is then read off
//! per-bin sums instead of sorting its rows, and of two siblings only the smaller one's
//! sums are counted (the other is its parent's minus its own).
//!
//! One grower serves the decision tree and the forest (splits scored by impurity, leaves
//! the positive share, grown depth-first) and gradient boosting (splits scored by the
//! Newton gain, leaves `-G / (H + l2)`, grown leaf-wise as LightGBM and
//! HistGradientBoosting do: the open leaf with the best gain splits next, up to
//! `max_leaves`). Sums are taken over fixed blocks of rows, added in block order, so a
//! tree is the same on any number of threads.

use ndarray::Array2;
use rayon::prelude::*;
use tollgate_spec::Criterion;

use crate::learner_base::{LEAF, LearnError, Progress, TreeModel, TreeNode};

/// Most bins a feature is cut into: a bin index fits a byte.
pub const MAX_BINS: usize = 256;

/// Rows the cut points are placed from at most (every k-th row beyond it).
const EDGE_SAMPLE: usize = 200_000;

/// Below this many row-features a node's sums are counted on one thread.
const PARALLEL_WORK: usize = 64 * 1024;

/// Rows per block of a histogram: each block is summed on its own (in parallel), then
/// the blocks are added in order, so the sums do not depend on the number of threads.
pub(crate) const BLOCK_ROWS: usize = 8192;

/// Every feature of a matrix binned once.
pub struct Binned {
    /// Per row, the bin of each feature, row after row: histograms read one row's bins
    /// side by side.
    by_row: Vec<u8>,
    /// Per feature, the bin of each row, feature after feature: a split reads one feature
    /// of its rows, in ascending order, so it walks forward through one column.
    by_column: Vec<u8>,
    /// Where each feature's bins start in a flat histogram.
    offsets: Vec<usize>,
    /// Per feature, ascending cut points: `v` falls in bin `#(cuts <= v)`, so "bin <= b"
    /// is "v < cuts[b]". NaN falls in the last bin, as it goes right in a flat tree.
    cuts: Vec<Vec<f64>>,
}

impl Binned {
    /// Bins every column of `x`.
    pub fn new(x: &Array2<f64>) -> Self {
        let (cuts, bins) = (0..x.ncols())
            .into_par_iter()
            .map(|f| {
                let column = x.column(f);
                let cuts = cut_points(column.iter().copied(), column.len());
                let bins = column.iter().map(|&v| bin_of(&cuts, v)).collect();
                (cuts, bins)
            })
            .unzip();
        let bins: Vec<Vec<u8>> = bins;
        let cuts: Vec<Vec<f64>> = cuts;
        let features = bins.len();
        let mut by_row = vec![0u8; x.nrows() * features];
        for (f, column) in bins.iter().enumerate() {
            for (r, &b) in column.iter().enumerate() {
                by_row[r * features + f] = b;
            }
        }
        let by_column = bins.concat();
        let mut offsets = Vec::with_capacity(features + 1);
        let mut at = 0;
        for c in &cuts {
            offsets.push(at);
            at += c.len() + 1;
        }
        offsets.push(at);
        Binned {
            by_row,
            by_column,
            offsets,
            cuts,
        }
    }

    /// The number of features.
    pub fn features(&self) -> usize {
        self.cuts.len()
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.by_row
            .len()
            .checked_div(self.features())
            .unwrap_or_default()
    }

    /// Every row's bin of `feature`.
    fn column(&self, feature: usize) -> &[u8] {
        let rows = self.rows();
        &self.by_column[feature * rows..(feature + 1) * rows]
    }
}

/// Cut points between the bins of one feature: midpoints between its distinct values
/// when there are at most [`MAX_BINS`], else between quantiles of a row sample.
fn cut_points(values: impl Iterator<Item = f64>, n: usize) -> Vec<f64> {
    let step = n.div_ceil(EDGE_SAMPLE).max(1);
    let mut sample: Vec<f64> = values.step_by(step).filter(|v| !v.is_nan()).collect();
    sample.sort_by(f64::total_cmp);
    let mut distinct = sample.clone();
    distinct.dedup();
    let mid = |a: f64, b: f64| a + (b - a) / 2.0;
    let mut cuts: Vec<f64> = if distinct.len() <= MAX_BINS {
        distinct.windows(2).map(|w| mid(w[0], w[1])).collect()
    } else {
        (1..MAX_BINS)
            .map(|q| {
                let i = q * sample.len() / MAX_BINS;
                mid(sample[i - 1], sample[i])
            })
            .collect()
    };
    cuts.dedup();
    cuts
}

fn bin_of(cuts: &[f64], v: f64) -> u8 {
    let bin = if v.is_nan() {
        cuts.len()
    } else {
        cuts.partition_point(|&c| c <= v)
    };
    // At most MAX_BINS - 1 cuts, so the bin fits.
    bin.min(MAX_BINS - 1) as u8
}

/// The sums of one bin (or node): `[a, b, rows]`. A classifier's `a` is the row count and
/// `b` the positives; boosting's `a` is the gradient and `b` the hessian.
type Sums = [f64; 3];

fn add(x: &mut Sums, y: &Sums) {
    x[0] += y[0];
    x[1] += y[1];
    x[2] += y[2];
}

fn sub(x: &Sums, y: &Sums) -> Sums {
    [x[0] - y[0], x[1] - y[1], x[2] - y[2]]
}

/// Per feature, the sums of each bin.
type Histogram = Vec<Vec<Sums>>;

/// How splits are scored and leaves valued.
#[derive(Debug, Clone, Copy)]
pub enum Scoring {
    /// Impurity decrease (`a` = rows, `b` = positives); a leaf scores the positive share.
    Impurity(Criterion),
    /// Newton gain on the log loss (`a` = gradient, `b` = hessian); a leaf is
    /// `-G / (H + l2)`, times `shrink` (the learning rate).
    Newton {
        /// L2 on the leaf values.
        l2: f64,
        /// The learning rate each leaf value is scaled by.
        shrink: f64,
    },
}

impl Scoring {
    fn impurity(criterion: Criterion, s: &Sums) -> f64 {
        let q = if s[0] > 0.0 { s[1] / s[0] } else { 0.0 };
        match criterion {
            Criterion::Gini => 1.0 - q * q - (1.0 - q) * (1.0 - q),
            Criterion::Entropy => [q, 1.0 - q]
                .iter()
                .filter(|&&p| p > 0.0)
                .map(|&p| -p * p.log2())
                .sum(),
        }
    }

    /// How much better the two sides are than their parent.
    fn gain(self, parent: &Sums, left: &Sums, right: &Sums) -> f64 {
        match self {
            Scoring::Impurity(c) => {
                Self::impurity(c, parent)
                    - (left[0] * Self::impurity(c, left) + right[0] * Self::impurity(c, right))
                        / parent[0]
            }
            Scoring::Newton { l2, .. } => {
                let score = |s: &Sums| s[0] * s[0] / (s[1] + l2);
                0.5 * (score(left) + score(right) - score(parent))
            }
        }
    }

    /// A node's value: its positive share, or its boosting step.
    fn value(self, s: &Sums) -> f64 {
        match self {
            Scoring::Impurity(_) => s[1] / s[0].max(f64::MIN_POSITIVE),
            Scoring::Newton { l2, shrink } => {
                let h = s[1] + l2;
                if h > 0.0 { -shrink * s[0] / h } else { 0.0 }
            }
        }
    }

    /// True when no split can help (a pure node of a classifier).
    fn pure(self, s: &Sums) -> bool {
        matches!(self, Scoring::Impurity(_)) && (s[1] <= 0.0 || s[1] >= s[0])
    }
}

/// When a node stops splitting.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest level a split may make (the root is level 0).
    pub max_depth: usize,
    /// A node with fewer rows is not split.
    pub min_samples_split: usize,
    /// Each side of a split keeps at least this many rows.
    pub min_samples_leaf: usize,
    /// A split must gain more than this.
    pub min_gain: f64,
    /// Most leaves a tree may have, grown best gain first; 0: no cap, grown depth-first.
    pub max_leaves: usize,
}

/// A leaf of a tree growing leaf-wise, and the split it would make.
struct Open {
    node: u32,
    rows: Vec<u32>,
    histogram: Histogram,
    depth: usize,
    /// Gain, feature and last bin on the left of its best split.
    split: (f64, usize, u8),
}

/// Grows one tree.
pub struct Grower<'a> {
    binned: &'a Binned,
    /// Per row, `[a, b]` (see [`Sums`]).
    stats: &'a [[f64; 2]],
    scoring: Scoring,
    limits: Limits,
    nodes: Vec<TreeNode>,
    /// When given, each row's leaf value is added to it (boosting's running scores).
    scores: Option<&'a mut [f64]>,
}

impl<'a> Grower<'a> {
    /// A grower over `binned` rows with per-row `stats`.
    pub fn new(
        binned: &'a Binned,
        stats: &'a [[f64; 2]],
        scoring: Scoring,
        limits: Limits,
    ) -> Self {
        Grower {
            binned,
            stats,
            scoring,
            limits,
            nodes: Vec::new(),
            scores: None,
        }
    }

    /// Adds each row's leaf value to `scores[row]` as the tree grows.
    pub fn adding_to(mut self, scores: &'a mut [f64]) -> Self {
        self.scores = Some(scores);
        self
    }

    /// Grows the tree over `rows` (repeats count twice: a bootstrap sample); `pick` gives
    /// the features each split may use, in the order ties are broken.
    pub fn grow(
        mut self,
        rows: Vec<u32>,
        pick: &mut dyn FnMut() -> Vec<usize>,
        progress: &Progress<'_>,
    ) -> Result<TreeModel, LearnError> {
        progress.check()?;
        let histogram = self.histogram(&rows);
        let totals = totals_of(&histogram);
        if self.limits.max_leaves > 0 {
            self.leafwise(rows, histogram, totals, pick);
        } else {
            self.node(rows, histogram, totals, 0, pick);
        }
        Ok(TreeModel { nodes: self.nodes })
    }

    /// A new leaf node valued from `totals`; its index.
    fn leaf(&mut self, totals: &Sums) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(TreeNode {
            feature: 0,
            threshold: 0.0,
            left: LEAF,
            right: LEAF,
            probability: self.scoring.value(totals),
        });
        id
    }

    /// The best split of a leaf, if the limits let it split.
    fn candidate(
        &self,
        histogram: &Histogram,
        totals: &Sums,
        depth: usize,
        pick: &mut dyn FnMut() -> Vec<usize>,
    ) -> Option<(f64, usize, u8)> {
        if depth >= self.limits.max_depth
            || totals[2] < self.limits.min_samples_split as f64
            || self.scoring.pure(totals)
        {
            return None;
        }
        self.best_split(histogram, totals, &pick())
    }

    /// Ends a leaf: its rows' scores get its value.
    fn close(&mut self, node: u32, rows: &[u32]) {
        let value = self.nodes[node as usize].probability;
        if let Some(scores) = self.scores.as_deref_mut() {
            for &r in rows {
                scores[r as usize] += value;
            }
        }
    }

    /// Splits `rows` (summed in `histogram`) by `feature` at `bin`: each side's rows and
    /// sums, the smaller side counted and the larger one its parent's minus it.
    fn divide(
        &self,
        rows: Vec<u32>,
        histogram: Histogram,
        feature: usize,
        bin: u8,
    ) -> [(Vec<u32>, Histogram); 2] {
        // The parent's histogram counts each side's rows: both sides get their exact room.
        let on_left: f64 = histogram[feature][..=bin as usize]
            .iter()
            .map(|s| s[2])
            .sum();
        let on_left = on_left as usize;
        let column = self.binned.column(feature);
        let split = |rows: &[u32], room: usize| {
            let (mut left, mut right) = (
                Vec::with_capacity(room),
                Vec::with_capacity(rows.len().saturating_sub(room)),
            );
            for &r in rows {
                if column[r as usize] <= bin {
                    left.push(r);
                } else {
                    right.push(r);
                }
            }
            (left, right)
        };
        // A large node is split block by block on every core, the blocks joined in
        // order: the same sides on any number of threads.
        let (left, right) = if rows.len() > 2 * BLOCK_ROWS {
            let parts: Vec<(Vec<u32>, Vec<u32>)> = rows
                .par_chunks(BLOCK_ROWS)
                .map(|block| split(block, block.len() * on_left / rows.len().max(1)))
                .collect();
            let (mut left, mut right) = (
                Vec::with_capacity(on_left),
                Vec::with_capacity(rows.len().saturating_sub(on_left)),
            );
            for (l, r) in parts {
                left.extend_from_slice(&l);
                right.extend_from_slice(&r);
            }
            (left, right)
        } else {
            split(&rows, on_left)
        };
        drop(rows);
        if left.len() <= right.len() {
            let small = self.histogram(&left);
            let large = subtract(&histogram, &small);
            [(left, small), (right, large)]
        } else {
            let small = self.histogram(&right);
            let large = subtract(&histogram, &small);
            [(left, large), (right, small)]
        }
    }

    /// Grows the tree leaf-wise from the root over `rows`: the open leaf with the best
    /// gain splits next (the earlier leaf on a tie), until `max_leaves` or none can.
    fn leafwise(
        &mut self,
        rows: Vec<u32>,
        histogram: Histogram,
        totals: Sums,
        pick: &mut dyn FnMut() -> Vec<usize>,
    ) {
        let root = self.leaf(&totals);
        let mut open = Vec::new();
        match self.candidate(&histogram, &totals, 0, pick) {
            Some(split) => open.push(Open {
                node: root,
                rows,
                histogram,
                depth: 0,
                split,
            }),
            None => self.close(root, &rows),
        }
        let mut leaves = 1;
        while leaves < self.limits.max_leaves {
            let Some(best) = (0..open.len()).max_by(|&a, &b| {
                let (x, y) = (&open[a], &open[b]);
                x.split.0.total_cmp(&y.split.0).then(y.node.cmp(&x.node))
            }) else {
                break;
            };
            let Open {
                node,
                rows,
                histogram,
                depth,
                split: (_, feature, bin),
            } = open.swap_remove(best);
            let sides = self.divide(rows, histogram, feature, bin);
            let mut children = [LEAF; 2];
            for (i, (rows, histogram)) in sides.into_iter().enumerate() {
                let totals = totals_of(&histogram);
                let child = self.leaf(&totals);
                children[i] = child;
                match self.candidate(&histogram, &totals, depth + 1, pick) {
                    Some(split) => open.push(Open {
                        node: child,
                        rows,
                        histogram,
                        depth: depth + 1,
                        split,
                    }),
                    None => self.close(child, &rows),
                }
            }
            let parent = &mut self.nodes[node as usize];
            parent.feature = feature as u32;
            parent.threshold = self.binned.cuts[feature][bin as usize];
            parent.left = children[0];
            parent.right = children[1];
            leaves += 1;
        }
        for o in open {
            self.close(o.node, &o.rows);
        }
    }

    /// Grows the subtree of `rows`, whose sums are `histogram` and `totals`; returns its
    /// root's index.
    fn node(
        &mut self,
        rows: Vec<u32>,
        histogram: Histogram,
        totals: Sums,
        depth: usize,
        pick: &mut dyn FnMut() -> Vec<usize>,
    ) -> u32 {
        let id = self.leaf(&totals);
        let value = self.nodes[id as usize].probability;
        let split = self.candidate(&histogram, &totals, depth, pick);
        let Some((_, feature, bin)) = split else {
            self.close(id, &rows);
            return id;
        };
        let [(left, left_hist), (right, right_hist)] = self.divide(rows, histogram, feature, bin);
        let (left_totals, right_totals) = (totals_of(&left_hist), totals_of(&right_hist));
        let l = self.node(left, left_hist, left_totals, depth + 1, pick);
        let r = self.node(right, right_hist, right_totals, depth + 1, pick);
        self.nodes[id as usize] = TreeNode {
            feature: feature as u32,
            threshold: self.binned.cuts[feature][bin as usize],
            left: l,
            right: r,
            probability: value,
        };
        id
    }

    /// The best (gain, feature, last bin on the left) among `features`, if any split gains
    /// more than the minimum with both sides large enough. Ties keep the earlier feature
    /// and bin.
    fn best_split(
        &self,
        histogram: &Histogram,
        totals: &Sums,
        features: &[usize],
    ) -> Option<(f64, usize, u8)> {
        let min_leaf = self.limits.min_samples_leaf as f64;
        let mut best: Option<(f64, usize, u8)> = None;
        for &f in features {
            let mut left = [0.0; 3];
            let bins = &histogram[f];
            for (b, sums) in bins.iter().enumerate().take(bins.len().saturating_sub(1)) {
                add(&mut left, sums);
                if left[2] < min_leaf {
                    continue;
                }
                let right = sub(totals, &left);
                if right[2] < min_leaf {
                    break;
                }
                if matches!(self.scoring, Scoring::Newton { .. })
                    && (left[1] <= 0.0 || right[1] <= 0.0)
                {
                    continue;
                }
                let gain = self.scoring.gain(totals, &left, &right);
                if gain > self.limits.min_gain && best.is_none_or(|(g, _, _)| gain > g) {
                    best = Some((gain, f, b as u8));
                }
            }
        }
        best
    }

    /// Every feature's per-bin sums over `rows`: each row's stats read once and added to
    /// the bins of all its features, block by block of [`BLOCK_ROWS`] rows.
    fn histogram(&self, rows: &[u32]) -> Histogram {
        let binned = self.binned;
        let features = binned.features();
        let offsets = &binned.offsets[..features];
        let block = |rows: &[u32]| {
            let mut h = vec![[0.0; 3]; binned.offsets[features]];
            for &r in rows {
                let [a, b] = self.stats[r as usize];
                let at = r as usize * features;
                let row = &binned.by_row[at..at + features];
                for (&offset, &bin) in offsets.iter().zip(row) {
                    let s = &mut h[offset + bin as usize];
                    s[0] += a;
                    s[1] += b;
                    s[2] += 1.0;
                }
            }
            h
        };
        let flat = if rows.len() > BLOCK_ROWS && rows.len() * features >= PARALLEL_WORK {
            let blocks: Vec<Vec<Sums>> = rows.par_chunks(BLOCK_ROWS).map(block).collect();
            let mut blocks = blocks.into_iter();
            let mut total = blocks.next().unwrap_or_default();
            for b in blocks {
                for (t, x) in total.iter_mut().zip(&b) {
                    add(t, x);
                }
            }
            total
        } else {
            block(rows)
        };
        (0..features)
            .map(|f| flat[binned.offsets[f]..binned.offsets[f + 1]].to_vec())
            .collect()
    }
}

fn subtract(parent: &Histogram, child: &Histogram) -> Histogram {
    parent
        .iter()
        .zip(child)
        .map(|(p, c)| p.iter().zip(c).map(|(p, c)| sub(p, c)).collect())
        .collect()
}

/// A node's sums: those of any one feature's bins (all features see every row).
fn totals_of(histogram: &Histogram) -> Sums {
    let mut t = [0.0; 3];
    if let Some(bins) = histogram.first() {
        for s in bins {
            add(&mut t, s);
        }
    }
    t
}

#[cfg(test)]
mod tests;
