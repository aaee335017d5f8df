//! A metric over a sliding window of the last updates.

use std::collections::VecDeque;
use std::num::NonZeroUsize;

use super::{
    ClassPrediction, ClassificationMetric, RegressionMetric, RevertClassification, RevertRegression,
};

/// One update remembered so that it can be reverted when it leaves the window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum Seen {
    Class {
        y_true: usize,
        y_pred: ClassPrediction,
    },
    Value {
        y_true: f64,
        y_pred: f64,
    },
}

/// Wraps a revertible metric so that it covers only the last `window` updates
/// (River's `utils.Rolling`): each update beyond the window reverts the oldest one.
/// Memory is O(window) remembered updates (class probabilities included).
///
/// ```rust
/// use std::num::NonZeroUsize;
/// use freshet_learn::metrics::{Accuracy, ClassPrediction, ClassificationMetric, Rolling};
///
/// let window = NonZeroUsize::new(2).expect("non-zero");
/// let mut metric = Rolling::new(Accuracy::default(), window);
/// for (y, p) in [(0, 1), (1, 1), (0, 0)] {
///     metric.update(y, &ClassPrediction::label(p));
/// }
/// assert_eq!(metric.get(), 1.0); // the first, wrong, prediction left the window
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rolling<M> {
    metric: M,
    window: NonZeroUsize,
    seen: VecDeque<Seen>,
}

impl<M> Rolling<M> {
    /// Wrap `metric` (normally fresh) with a window of `window` updates.
    pub fn new(metric: M, window: NonZeroUsize) -> Self {
        Rolling {
            metric,
            window,
            seen: VecDeque::with_capacity(window.get().min(1 << 16)),
        }
    }

    /// The wrapped metric, holding the window's updates.
    pub fn inner(&self) -> &M {
        &self.metric
    }

    /// The window size.
    pub fn window(&self) -> NonZeroUsize {
        self.window
    }

    /// Number of updates currently in the window.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Remember `item`; return the update that left the window, if any.
    fn push(&mut self, item: Seen) -> Option<Seen> {
        self.seen.push_back(item);
        if self.seen.len() > self.window.get() {
            self.seen.pop_front()
        } else {
            None
        }
    }
}

impl<M: RevertClassification> ClassificationMetric for Rolling<M> {
    fn update(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        self.metric.update(y_true, y_pred);
        let item = Seen::Class {
            y_true,
            y_pred: y_pred.clone(),
        };
        if let Some(Seen::Class { y_true, y_pred }) = self.push(item) {
            self.metric.revert(y_true, &y_pred);
        }
    }
    fn get(&self) -> f64 {
        self.metric.get()
    }
    fn bigger_is_better(&self) -> bool {
        self.metric.bigger_is_better()
    }
}

impl<M: RevertRegression> RegressionMetric for Rolling<M> {
    fn update(&mut self, y_true: f64, y_pred: f64) {
        self.metric.update(y_true, y_pred);
        if let Some(Seen::Value { y_true, y_pred }) = self.push(Seen::Value { y_true, y_pred }) {
            self.metric.revert(y_true, y_pred);
        }
    }
    fn get(&self) -> f64 {
        self.metric.get()
    }
    fn bigger_is_better(&self) -> bool {
        self.metric.bigger_is_better()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Mae, R2, RocAuc};

    fn window(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).expect("non-zero")
    }

    #[test]
    fn rolling_regression_equals_fresh_metric_on_the_window() {
        let ys = [1.0, 4.0, -2.0, 3.5, 0.0, 8.0, 2.0];
        let ps = [0.5, 3.0, -1.0, 3.0, 1.0, 6.0, 2.5];
        let mut rolling = Rolling::new(R2::default(), window(3));
        let mut mae = Rolling::new(Mae::default(), window(3));
        for i in 0..ys.len() {
            rolling.update(ys[i], ps[i]);
            mae.update(ys[i], ps[i]);
            let lo = i.saturating_sub(2);
            let mut fresh = R2::default();
            let mut fresh_mae = Mae::default();
            for j in lo..=i {
                fresh.update(ys[j], ps[j]);
                fresh_mae.update(ys[j], ps[j]);
            }
            assert!((rolling.get() - fresh.get()).abs() < 1e-9, "step {i}");
            assert!((mae.get() - fresh_mae.get()).abs() < 1e-12, "step {i}");
        }
        assert_eq!(rolling.len(), 3);
        assert!(rolling.bigger_is_better() && !mae.bigger_is_better());
    }

    #[test]
    fn rolling_auc_matches_fresh_auc() {
        let pairs = [(0, 0.2), (1, 0.9), (0, 0.7), (1, 0.6), (1, 0.1), (0, 0.3)];
        let mut rolling = Rolling::new(RocAuc::default(), window(4));
        for (y, s) in pairs {
            rolling.update(y, &ClassPrediction::binary(s));
        }
        let mut fresh = RocAuc::default();
        for (y, s) in &pairs[2..] {
            fresh.update(*y, &ClassPrediction::binary(*s));
        }
        assert_eq!(rolling.inner(), &fresh);
        // Window: neg 0.7, pos 0.6, pos 0.1, neg 0.3 → 0.6 beats 0.3: 1 of 4.
        assert_eq!(rolling.get(), 0.25);
        let json = serde_json::to_string(&rolling).expect("serialise");
        let back: Rolling<RocAuc> = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, rolling);
    }
}
