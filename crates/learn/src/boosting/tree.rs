//! One regression tree of the ensemble, as stored in the model artifact.
//!
//! Splits keep the raw threshold (so serving needs no binning) and the bin it came
//! from (so training can route binned rows, and an audit can check the two agree).

use serde::{Deserialize, Serialize};

use super::binning::BinMapper;

/// A node: a split on one feature, or a leaf holding its (already shrunk) value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    Split {
        feature: usize,
        /// Values `<= threshold` go left. `None` when every present value goes left
        /// and the split only separates missing values from present ones.
        threshold: Option<f64>,
        /// The last bin that goes left, in the model's [`BinMapper`].
        bin: usize,
        /// Where a missing (`NaN`, or absent) feature goes.
        missing_left: bool,
        left: usize,
        right: usize,
        /// The loss reduction the split brought in training (for importances).
        gain: f64,
    },
    Leaf {
        value: f64,
    },
}

/// Nodes in a flat vector, the root first; children are indices into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub(crate) nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value `x` lands in. Features past the end of `x` count as missing.
    /// A malformed tree (from a tampered artifact) yields 0 rather than a panic or a
    /// loop: every step must move to a later node.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.walk(|feature, threshold, _bin, missing_left| {
            let v = x.get(feature).copied().unwrap_or(f64::NAN);
            if v.is_nan() {
                missing_left
            } else {
                threshold.is_none_or(|t| v <= t)
            }
        })
    }

    /// The leaf value of row `row` of the training window, routed by bins (the same
    /// route as [`Tree::predict`] on the raw values, by construction of the edges).
    pub(crate) fn predict_binned(&self, bins: &BinMapper, binned: &[Vec<u8>], row: usize) -> f64 {
        self.walk(|feature, _threshold, bin, missing_left| {
            let code = usize::from(binned[feature][row]);
            if code == bins.n_bins(feature) {
                missing_left
            } else {
                code <= bin
            }
        })
    }

    fn walk(&self, mut goes_left: impl FnMut(usize, Option<f64>, usize, bool) -> bool) -> f64 {
        let mut i = 0;
        while let Some(node) = self.nodes.get(i) {
            match *node {
                Node::Leaf { value } => return value,
                Node::Split {
                    feature,
                    threshold,
                    bin,
                    missing_left,
                    left,
                    right,
                    ..
                } => {
                    let next = if goes_left(feature, threshold, bin, missing_left) {
                        left
                    } else {
                        right
                    };
                    if next <= i {
                        return 0.0;
                    }
                    i = next;
                }
            }
        }
        0.0
    }

    /// The number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf { .. }))
            .count()
    }

    /// The nodes, root first.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
}
