//! Label- and probability-based classification metrics.

use super::{ClassPrediction, ClassificationMetric, RevertClassification, safe_div};

/// Share of examples whose predicted label is the true one. A missing label
/// (`None`) counts as wrong.
///
/// ```rust
/// use freshet_learn::metrics::{Accuracy, ClassPrediction, ClassificationMetric};
///
/// let mut metric = Accuracy::default();
/// for (y, p) in [(0, 0), (1, 1), (1, 0), (2, 2)] {
///     metric.update(y, &ClassPrediction::label(p));
/// }
/// assert_eq!(metric.get(), 0.75);
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accuracy {
    correct: u64,
    total: u64,
}

impl ClassificationMetric for Accuracy {
    fn update(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        self.total += 1;
        self.correct += u64::from(y_pred.label == Some(y_true));
    }
    fn get(&self) -> f64 {
        safe_div(self.correct as f64, self.total as f64)
    }
    fn bigger_is_better(&self) -> bool {
        true
    }
}

impl RevertClassification for Accuracy {
    fn revert(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        self.total = self.total.saturating_sub(1);
        let hit = u64::from(y_pred.label == Some(y_true));
        self.correct = self.correct.saturating_sub(hit);
    }
}

/// Smallest probability the log loss takes the logarithm of (River's clamp).
const PROBA_CLAMP: f64 = 1e-15;

/// Mean logarithmic loss: `-ln p(y_true)`, with the probability clamped to
/// `[1e-15, 1 - 1e-15]` so that a confident mistake costs about 34.5, not infinity.
///
/// The probability of the true class is read from [`ClassPrediction::proba`] (missing
/// classes have probability 0). For binary probabilities `[1 - p, p]` this is River's
/// `LogLoss`; for more classes it is the cross-entropy. An update whose probability is
/// NaN is ignored.
///
/// ```rust
/// use freshet_learn::metrics::{ClassPrediction, ClassificationMetric, LogLoss};
///
/// let mut metric = LogLoss::default();
/// for (y, p1) in [(1, 0.9), (0, 0.1), (0, 0.2), (1, 0.65)] {
///     metric.update(y, &ClassPrediction::binary(p1));
/// }
/// assert_eq!(format!("{:.6}", metric.get()), "0.216162");
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogLoss {
    sum: f64,
    n: u64,
}

impl LogLoss {
    fn loss(y_true: usize, y_pred: &ClassPrediction) -> Option<f64> {
        let p = y_pred.proba_of(y_true);
        if p.is_nan() {
            return None;
        }
        Some(-p.clamp(PROBA_CLAMP, 1.0 - PROBA_CLAMP).ln())
    }
}

impl ClassificationMetric for LogLoss {
    fn update(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        if let Some(loss) = Self::loss(y_true, y_pred) {
            self.sum += loss;
            self.n += 1;
        }
    }
    fn get(&self) -> f64 {
        safe_div(self.sum, self.n as f64)
    }
    fn bigger_is_better(&self) -> bool {
        false
    }
}

impl RevertClassification for LogLoss {
    fn revert(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        if let Some(loss) = Self::loss(y_true, y_pred) {
            self.n = self.n.saturating_sub(1);
            // Start again from an exact zero rather than accumulated rounding.
            self.sum = if self.n == 0 { 0.0 } else { self.sum - loss };
        }
    }
}

/// Counts of a binary confusion matrix, class 1 being positive.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct BinaryCounts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl BinaryCounts {
    fn slot(&mut self, y_true: usize, y_pred: &ClassPrediction) -> Option<&mut u64> {
        match (y_true == 1, y_pred.label == Some(1)) {
            (true, true) => Some(&mut self.tp),
            (false, true) => Some(&mut self.fp),
            (true, false) => Some(&mut self.fn_),
            (false, false) => None,
        }
    }
    fn update(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        if let Some(c) = self.slot(y_true, y_pred) {
            *c += 1;
        }
    }
    fn revert(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        if let Some(c) = self.slot(y_true, y_pred) {
            *c = c.saturating_sub(1);
        }
    }
    fn precision(&self) -> f64 {
        safe_div(self.tp as f64, (self.tp + self.fp) as f64)
    }
    fn recall(&self) -> f64 {
        safe_div(self.tp as f64, (self.tp + self.fn_) as f64)
    }
}

macro_rules! binary_metric {
    ($name:ident, $get:expr) => {
        impl ClassificationMetric for $name {
            fn update(&mut self, y_true: usize, y_pred: &ClassPrediction) {
                self.counts.update(y_true, y_pred);
            }
            fn get(&self) -> f64 {
                let get: fn(&BinaryCounts) -> f64 = $get;
                get(&self.counts)
            }
            fn bigger_is_better(&self) -> bool {
                true
            }
        }

        impl RevertClassification for $name {
            fn revert(&mut self, y_true: usize, y_pred: &ClassPrediction) {
                self.counts.revert(y_true, y_pred);
            }
        }
    };
}

/// Binary precision, class 1 positive: `tp / (tp + fp)`; `0.0` when nothing was
/// predicted positive. Any label other than 1 (or none) counts as negative.
///
/// ```rust
/// use freshet_learn::metrics::{ClassPrediction, ClassificationMetric, Precision};
///
/// let mut metric = Precision::default();
/// for (y, p) in [(1, 1), (0, 1), (1, 0), (1, 1), (0, 0)] {
///     metric.update(y, &ClassPrediction::label(p));
/// }
/// assert_eq!(metric.get(), 2.0 / 3.0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Precision {
    counts: BinaryCounts,
}
binary_metric!(Precision, BinaryCounts::precision);

/// Binary recall, class 1 positive: `tp / (tp + fn)`; `0.0` before any positive.
///
/// ```rust
/// use freshet_learn::metrics::{ClassPrediction, ClassificationMetric, Recall};
///
/// let mut metric = Recall::default();
/// for (y, p) in [(1, 1), (0, 1), (1, 0), (1, 1), (0, 0)] {
///     metric.update(y, &ClassPrediction::label(p));
/// }
/// assert_eq!(metric.get(), 2.0 / 3.0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Recall {
    counts: BinaryCounts,
}
binary_metric!(Recall, BinaryCounts::recall);

/// Binary F1, class 1 positive: the harmonic mean of precision and recall,
/// `2 tp / (2 tp + fp + fn)`; `0.0` while there is no true positive.
///
/// ```rust
/// use freshet_learn::metrics::{ClassPrediction, ClassificationMetric, F1};
///
/// let mut metric = F1::default();
/// for (y, p) in [(1, 1), (0, 1), (1, 0), (1, 0), (0, 0)] {
///     metric.update(y, &ClassPrediction::label(p));
/// }
/// // precision 1/2, recall 1/3
/// assert_eq!(metric.get(), 0.4);
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct F1 {
    counts: BinaryCounts,
}
binary_metric!(F1, |c| safe_div(
    2.0 * c.tp as f64,
    (2 * c.tp + c.fp + c.fn_) as f64
));

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn empty_metrics_are_zero() {
        assert_eq!(Accuracy::default().get(), 0.0);
        assert_eq!(LogLoss::default().get(), 0.0);
        assert_eq!(Precision::default().get(), 0.0);
        assert_eq!(Recall::default().get(), 0.0);
        assert_eq!(F1::default().get(), 0.0);
        assert!(!LogLoss::default().bigger_is_better());
        assert!(F1::default().bigger_is_better());
    }

    #[test]
    fn accuracy_counts_missing_label_as_wrong_and_reverts() {
        let mut m = Accuracy::default();
        let none = ClassPrediction {
            label: None,
            proba: vec![],
        };
        m.update(0, &none);
        m.update(1, &ClassPrediction::label(1));
        assert_eq!(m.get(), 0.5);
        m.revert(0, &none);
        assert_eq!(m.get(), 1.0);
    }

    #[test]
    fn log_loss_matches_river_sequence() {
        // River's documented values: 0.105360, 0.105360, 0.144621, 0.216161.
        let mut m = LogLoss::default();
        let mut got = vec![];
        for (y, p) in [(1, 0.9), (0, 0.1), (0, 0.2), (1, 0.65)] {
            m.update(y, &ClassPrediction::binary(p));
            got.push(m.get());
        }
        let by_hand = [
            -(0.9f64.ln()),
            -(0.9f64.ln()),
            -(2.0 * 0.9f64.ln() + 0.8f64.ln()) / 3.0,
            -(2.0 * 0.9f64.ln() + 0.8f64.ln() + 0.65f64.ln()) / 4.0,
        ];
        for (g, h) in got.iter().zip(by_hand) {
            assert!(close(*g, h), "{g} vs {h}");
        }
        assert!((got[3] - 0.216161).abs() < 1e-6);
        m.revert(1, &ClassPrediction::binary(0.65));
        assert!(close(m.get(), by_hand[2]));
    }

    #[test]
    fn log_loss_clamps_and_ignores_nan() {
        let mut m = LogLoss::default();
        m.update(1, &ClassPrediction::binary(0.0));
        assert!(close(m.get(), -(1e-15f64.ln())));
        m.update(0, &ClassPrediction::proba(vec![f64::NAN, 0.5]));
        assert!(close(m.get(), -(1e-15f64.ln())));
        // A label beyond the probability vector has probability 0.
        let mut m = LogLoss::default();
        m.update(3, &ClassPrediction::proba(vec![0.5, 0.5]));
        assert!(close(m.get(), 34.538776394910684));
        m.update(0, &ClassPrediction::proba(vec![]));
        assert!(close(m.get(), 34.538776394910684));
    }

    #[test]
    fn precision_recall_f1_by_hand() {
        // tp = 3, fp = 1, fn = 2, tn = 2; class 2 predicted counts as negative.
        let pairs = [
            (1, 1),
            (1, 1),
            (1, 1),
            (0, 1),
            (1, 0),
            (1, 2),
            (0, 0),
            (2, 0),
        ];
        let (mut p, mut r, mut f) = (Precision::default(), Recall::default(), F1::default());
        for (y, yp) in pairs {
            let pred = ClassPrediction::label(yp);
            p.update(y, &pred);
            r.update(y, &pred);
            f.update(y, &pred);
        }
        assert!(close(p.get(), 0.75));
        assert!(close(r.get(), 0.6));
        assert!(close(f.get(), 2.0 * 0.75 * 0.6 / (0.75 + 0.6)));
        for (y, yp) in pairs.iter().skip(4) {
            f.revert(*y, &ClassPrediction::label(*yp));
        }
        assert!(close(f.get(), 6.0 / 7.0)); // tp 3, fp 1, fn 0
    }
}
