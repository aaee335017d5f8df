//! Split search on a histogram: for each feature, every boundary between bins, with
//! the missing bin sent left and right in turn; the best gain wins.
//!
//! The gain is the usual second-order one (XGBoost's): with `G`, `H` the gradient and
//! hessian sums, a leaf's best value is `-G / (H + λ)` and it lowers the loss by
//! `G² / (2 (H + λ))`, so a split gains
//! `½ [G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)] − min_split_gain`.

use super::GbtParams;
use super::histogram::{Histogram, Layout, Stats};

/// The best split of a node: rows whose bin is at most `bin` go left, missing values
/// go left when `missing_left`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub feature: usize,
    pub bin: usize,
    /// Whether `bin` is the last value bin: every non-missing value goes left, and the
    /// split separates missing from present.
    pub all_values_left: bool,
    pub missing_left: bool,
    pub gain: f64,
    pub left: Stats,
    pub right: Stats,
}

/// The constraints a split must meet.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub lambda: f64,
    pub min_child_weight: f64,
    pub min_samples_leaf: usize,
    pub min_split_gain: f64,
}

impl Rules {
    pub fn new(p: &GbtParams) -> Self {
        Self {
            lambda: p.lambda,
            min_child_weight: p.min_child_weight,
            min_samples_leaf: p.min_samples_leaf,
            min_split_gain: p.min_split_gain,
        }
    }

    /// `G² / (H + λ)`: twice the loss reduction of a leaf at its best value.
    fn score(&self, s: Stats) -> f64 {
        let denom = s.hess + self.lambda;
        if denom > 0.0 {
            s.grad * s.grad / denom
        } else {
            0.0
        }
    }

    /// The leaf value that minimises the second-order loss, before shrinkage.
    pub fn leaf_value(&self, s: Stats) -> f64 {
        let denom = s.hess + self.lambda;
        if denom > 0.0 { -s.grad / denom } else { 0.0 }
    }

    /// Whether a node this size could ever be split into two admissible children.
    pub fn can_split(&self, s: Stats) -> bool {
        s.count >= 2 * self.min_samples_leaf && s.hess >= 2.0 * self.min_child_weight
    }

    fn admissible(&self, s: Stats) -> bool {
        s.count >= self.min_samples_leaf && s.hess >= self.min_child_weight
    }

    /// The gain of splitting `total` into `left` and `right`, if both are admissible.
    pub fn gain(&self, total: Stats, left: Stats, right: Stats) -> Option<f64> {
        if !(self.admissible(left) && self.admissible(right)) {
            return None;
        }
        let gain =
            0.5 * (self.score(left) + self.score(right) - self.score(total)) - self.min_split_gain;
        gain.is_finite().then_some(gain)
    }
}

/// The best admissible split with positive gain, if any. Ties keep the first found
/// (lowest feature, lowest bin, missing right), so the search is deterministic.
pub fn best_split(hist: &Histogram, layout: &Layout, rules: &Rules) -> Option<Candidate> {
    let total = hist.totals(layout);
    let mut best: Option<Candidate> = None;
    for f in 0..layout.n_features() {
        let bins = hist.feature(layout, f);
        let Some((&missing, values)) = bins.split_last() else {
            continue;
        };
        let n = values.len();
        let has_missing = missing.count > 0;
        let mut acc = Stats::default();
        for (b, &s) in values.iter().enumerate() {
            acc += s;
            let last = b + 1 == n;
            // Missing right; on the last bin, this is "present vs missing".
            if !last || has_missing {
                consider(&mut best, rules, total, f, b, last, acc, false);
            }
            // Missing left (only worth trying when there is missing data).
            if !last && has_missing {
                let mut left = acc;
                left += missing;
                consider(&mut best, rules, total, f, b, last, left, true);
            }
        }
    }
    // Where no training row of the node was missing, nothing says where a missing
    // value belongs at serving time: send it with the majority of the node's rows.
    best.map(|mut c| {
        let seen_missing = hist
            .feature(layout, c.feature)
            .last()
            .is_some_and(|m| m.count > 0);
        if !seen_missing {
            c.missing_left = c.left.count >= c.right.count;
        }
        c
    })
}

#[allow(clippy::too_many_arguments)]
fn consider(
    best: &mut Option<Candidate>,
    rules: &Rules,
    total: Stats,
    feature: usize,
    bin: usize,
    all_values_left: bool,
    left: Stats,
    missing_left: bool,
) {
    let right = total - left;
    let Some(gain) = rules.gain(total, left, right) else {
        return;
    };
    if gain <= 0.0 || best.is_some_and(|b| gain <= b.gain) {
        return;
    }
    *best = Some(Candidate {
        feature,
        bin,
        all_values_left,
        missing_left,
        gain,
        left,
        right,
    });
}
