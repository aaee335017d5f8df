//! Gradient/hessian histograms: per feature and bin, the sums over a node's rows.
//! Everything a split search needs is in them, so a node is read once per feature.

use std::ops::{AddAssign, Sub};

use super::binning::BinMapper;

/// Sums of gradients, hessians and rows, for one bin or one node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub grad: f64,
    pub hess: f64,
    pub count: usize,
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.grad += o.grad;
        self.hess += o.hess;
        self.count += o.count;
    }
}

impl Sub for Stats {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            grad: self.grad - o.grad,
            hess: self.hess - o.hess,
            count: self.count.saturating_sub(o.count),
        }
    }
}

/// Where each feature's bins sit in a flat histogram: feature `f` owns
/// `offsets[f]..offsets[f + 1]`, value bins first and the missing bin last.
#[derive(Debug, Clone)]
pub struct Layout {
    offsets: Vec<usize>,
}

impl Layout {
    pub fn new(bins: &BinMapper) -> Self {
        let mut offsets = Vec::with_capacity(bins.n_features() + 1);
        let mut end = 0;
        offsets.push(end);
        for f in 0..bins.n_features() {
            end += bins.n_bins(f) + 1;
            offsets.push(end);
        }
        Self { offsets }
    }

    fn len(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0)
    }

    pub fn n_features(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
}

/// One node's histogram, flat over all features (one allocation per node).
#[derive(Debug, Clone)]
pub struct Histogram {
    stats: Vec<Stats>,
}

impl Histogram {
    /// Sums `grad` and `hess` of `rows` into their bins, feature by feature (each
    /// pass reads one binned column, which stays in cache).
    pub fn build(
        layout: &Layout,
        binned: &[Vec<u8>],
        rows: &[usize],
        grad: &[f64],
        hess: &[f64],
    ) -> Self {
        let mut stats = vec![Stats::default(); layout.len()];
        for (f, column) in binned.iter().enumerate() {
            let slots = &mut stats[layout.offsets[f]..layout.offsets[f + 1]];
            for &i in rows {
                let s = &mut slots[usize::from(column[i])];
                s.grad += grad[i];
                s.hess += hess[i];
                s.count += 1;
            }
        }
        Self { stats }
    }

    /// The sibling's histogram: the parent's minus this child's. Building only the
    /// smaller child and deriving the larger halves (or better) the histogram work.
    pub fn sibling_of(self_child: &Self, mut parent: Self) -> Self {
        for (p, c) in parent.stats.iter_mut().zip(&self_child.stats) {
            *p = *p - *c;
        }
        parent
    }

    /// One feature's bins; the last is the missing bin.
    pub fn feature(&self, layout: &Layout, f: usize) -> &[Stats] {
        &self.stats[layout.offsets[f]..layout.offsets[f + 1]]
    }

    /// The node's totals (every row lands in exactly one bin of each feature).
    pub fn totals(&self, layout: &Layout) -> Stats {
        let mut t = Stats::default();
        if layout.n_features() > 0 {
            for s in self.feature(layout, 0) {
                t += *s;
            }
        }
        t
    }
}
