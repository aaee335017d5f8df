//! Growing one tree on a node's gradients: best-first (the open leaf with the largest
//! gain splits next), bounded by `max_depth` and, optionally, `max_leaves`.
//!
//! Rows live in one index vector; each node owns a contiguous range of it, and a
//! split partitions its range in place, so no per-node row lists are allocated.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::binning::BinMapper;
use super::histogram::{Histogram, Layout, Stats};
use super::split::{Candidate, Rules, best_split};
use super::tree::{Node, Tree};

/// What every tree of a fit shares: the binned window and the growth limits.
pub struct Grower<'a> {
    pub bins: &'a BinMapper,
    pub binned: &'a [Vec<u8>],
    pub layout: &'a Layout,
    pub rules: Rules,
    pub learning_rate: f64,
    pub max_depth: usize,
    pub max_leaves: Option<usize>,
}

/// A leaf that may still split.
struct Open {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    hist: Histogram,
    split: Candidate,
}

/// Heap order: largest gain first, then the earliest node, so growth is deterministic.
struct ByGain {
    gain: f64,
    node: usize,
    slot: usize,
}

impl PartialEq for ByGain {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for ByGain {}
impl PartialOrd for ByGain {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ByGain {
    fn cmp(&self, o: &Self) -> Ordering {
        self.gain
            .total_cmp(&o.gain)
            .then_with(|| o.node.cmp(&self.node))
    }
}

impl Grower<'_> {
    /// Fits one tree to `grad`/`hess` over `rows` (the round's sample).
    pub fn grow(&self, mut rows: Vec<usize>, grad: &[f64], hess: &[f64]) -> Tree {
        let mut nodes = vec![self.leaf(&rows, grad, hess)];
        let mut open: Vec<Option<Open>> = Vec::new();
        let mut heap = BinaryHeap::new();
        let root_hist = Histogram::build(self.layout, self.binned, &rows, grad, hess);
        let root_total = root_hist.totals(self.layout);
        self.push(
            &mut open,
            &mut heap,
            0,
            (0, rows.len()),
            0,
            root_total,
            root_hist,
        );
        let mut leaves = 1;
        let mut scratch = Vec::with_capacity(rows.len());
        while let Some(top) = heap.pop() {
            if self.max_leaves.is_some_and(|m| leaves >= m) {
                break;
            }
            let Some(leaf) = open.get_mut(top.slot).and_then(Option::take) else {
                continue;
            };
            let c = leaf.split;
            let mid = self.partition(&mut rows[leaf.start..leaf.end], &mut scratch, &c);
            let mid = leaf.start + mid;
            let (left, right) = (nodes.len(), nodes.len() + 1);
            nodes.push(self.leaf(&rows[leaf.start..mid], grad, hess));
            nodes.push(self.leaf(&rows[mid..leaf.end], grad, hess));
            nodes[leaf.node] = Node::Split {
                feature: c.feature,
                threshold: self.threshold(&c),
                bin: c.bin,
                missing_left: c.missing_left,
                left,
                right,
                gain: c.gain,
            };
            leaves += 1;
            let depth = leaf.depth + 1;
            let worth = self.rules.can_split(c.left) || self.rules.can_split(c.right);
            if depth >= self.max_depth || !worth {
                continue;
            }
            // Build the smaller child, derive the larger from the parent.
            let (small, large) = if mid - leaf.start <= leaf.end - mid {
                (
                    (left, leaf.start, mid, c.left),
                    (right, mid, leaf.end, c.right),
                )
            } else {
                (
                    (right, mid, leaf.end, c.right),
                    (left, leaf.start, mid, c.left),
                )
            };
            let small_hist = Histogram::build(
                self.layout,
                self.binned,
                &rows[small.1..small.2],
                grad,
                hess,
            );
            let large_hist = Histogram::sibling_of(&small_hist, leaf.hist);
            for ((node, start, end, total), hist) in [(small, small_hist), (large, large_hist)] {
                self.push(&mut open, &mut heap, node, (start, end), depth, total, hist);
            }
        }
        Tree { nodes }
    }

    /// Queues a leaf for splitting when it can and a split with positive gain exists.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        open: &mut Vec<Option<Open>>,
        heap: &mut BinaryHeap<ByGain>,
        node: usize,
        (start, end): (usize, usize),
        depth: usize,
        total: Stats,
        hist: Histogram,
    ) {
        if depth >= self.max_depth || !self.rules.can_split(total) {
            return;
        }
        let Some(split) = best_split(&hist, self.layout, &self.rules) else {
            return;
        };
        heap.push(ByGain {
            gain: split.gain,
            node,
            slot: open.len(),
        });
        open.push(Some(Open {
            node,
            start,
            end,
            depth,
            hist,
            split,
        }));
    }

    /// A leaf at its shrunk second-order value, summed exactly from its rows (not from
    /// subtracted histograms, whose rounding would otherwise reach the predictions).
    fn leaf(&self, rows: &[usize], grad: &[f64], hess: &[f64]) -> Node {
        let mut s = Stats::default();
        for &i in rows {
            s.grad += grad[i];
            s.hess += hess[i];
            s.count += 1;
        }
        Node::Leaf {
            value: self.learning_rate * self.rules.leaf_value(s),
        }
    }

    /// The raw threshold of a split: the upper edge of its last left bin.
    fn threshold(&self, c: &Candidate) -> Option<f64> {
        if c.all_values_left {
            None
        } else {
            self.bins.edges(c.feature).get(c.bin).copied()
        }
    }

    /// Stable partition of `rows`: left-going rows first. Returns the left count.
    fn partition(&self, rows: &mut [usize], scratch: &mut Vec<usize>, c: &Candidate) -> usize {
        let column = &self.binned[c.feature];
        let missing = self.bins.n_bins(c.feature);
        scratch.clear();
        let mut n_left = 0;
        for k in 0..rows.len() {
            let i = rows[k];
            let code = usize::from(column[i]);
            let left = if code == missing {
                c.missing_left
            } else {
                code <= c.bin
            };
            if left {
                rows[n_left] = i;
                n_left += 1;
            } else {
                scratch.push(i);
            }
        }
        rows[n_left..].copy_from_slice(scratch);
        n_left
    }
}
