//! One tree of the forest with its drift machinery: the active tree, the background tree
//! grown after a warning, the two ADWIN detectors on the tree's 0/1 error, and the
//! accuracy that weights its vote.

use serde::{Deserialize, Serialize};

use crate::Classifier;
use crate::tree::{Adwin, HoeffdingTreeClassifier};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    pub(crate) tree: HoeffdingTreeClassifier,
    pub(crate) background: Option<HoeffdingTreeClassifier>,
    drift: Option<Adwin>,
    warning: Option<Adwin>,
    /// Test-then-train hits and trials of the active tree since it was started.
    correct: u64,
    seen: u64,
    /// Warnings (background trees started), drifts (active tree replaced) and the
    /// replacements that promoted a background tree.
    pub(crate) n_warnings: u64,
    pub(crate) n_drifts: u64,
    pub(crate) n_swaps: u64,
}

impl Member {
    pub(crate) fn new(
        tree: HoeffdingTreeClassifier,
        drift: Option<Adwin>,
        warning: Option<Adwin>,
    ) -> Self {
        Self {
            tree,
            background: None,
            drift,
            warning,
            correct: 0,
            seen: 0,
            n_warnings: 0,
            n_drifts: 0,
            n_swaps: 0,
        }
    }

    /// Accuracy of the active tree since it started; 0 before it has been scored.
    pub(crate) fn accuracy(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            self.correct as f64 / self.seen as f64
        }
    }

    /// One step of ARF for this tree: score the active tree on `x` (before it learns
    /// it), then, when the bagging weight `k` is positive, train both trees with weight
    /// `k` and feed the error to the detectors. As in the paper (and River), a draw of
    /// 0 leaves the detectors untouched too: the tree's error on an example it does not
    /// learn is no evidence about its drift. `fresh` builds a new tree when one is
    /// needed.
    pub(crate) fn learn(
        &mut self,
        x: &[f64],
        y: usize,
        k: u32,
        fresh: &mut impl FnMut() -> HoeffdingTreeClassifier,
    ) {
        let hit = self.tree.predict_one(x) == Some(y);
        self.seen += 1;
        self.correct += u64::from(hit);
        if k == 0 {
            return;
        }
        let w = f64::from(k);
        if let Some(background) = &mut self.background {
            background.learn_weighted(x, y, w);
        }
        self.tree.learn_weighted(x, y, w);
        let error = if hit { 0.0 } else { 1.0 };
        if let Some(warning) = &mut self.warning
            && warning.update(error)
        {
            self.background = Some(fresh());
            *warning = Adwin::with_valid_config(warning.config().clone());
            self.n_warnings += 1;
        }
        if let Some(drift) = &mut self.drift
            && drift.update(error)
        {
            *drift = Adwin::with_valid_config(drift.config().clone());
            match self.background.take() {
                Some(background) => {
                    self.tree = background;
                    if let Some(warning) = &mut self.warning {
                        *warning = Adwin::with_valid_config(warning.config().clone());
                    }
                    self.n_swaps += 1;
                }
                None => self.tree = fresh(),
            }
            self.correct = 0;
            self.seen = 0;
            self.n_drifts += 1;
        }
    }
}
