//! Exact area under the ROC curve over a stream.

use std::collections::BTreeMap;

use super::{ClassPrediction, ClassificationMetric, RevertClassification, safe_div};

/// Exact binary ROC AUC over the whole stream, from the score of class 1
/// (`proba[1]`, 0 when absent); class 1 is positive, every other class negative.
///
/// The value is the Mann–Whitney statistic: the share of (positive, negative) pairs
/// where the positive scores higher, ties counting one half. River approximates the
/// curve with a few thresholds; this keeps one counter per distinct score instead (a
/// sorted map), so memory is O(distinct scores) ≤ O(n), `update` and `revert` are
/// O(log n) and `get` is O(distinct scores). `0.0` until both classes have been seen
/// (as River). Updates with a NaN score are ignored.
///
/// ```rust
/// use freshet_learn::metrics::{ClassPrediction, ClassificationMetric, RocAuc};
///
/// let mut metric = RocAuc::default();
/// for (y, p1) in [(0, 0.1), (0, 0.4), (1, 0.35), (1, 0.8)] {
///     metric.update(y, &ClassPrediction::binary(p1));
/// }
/// assert_eq!(metric.get(), 0.75);
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RocAuc {
    /// Per distinct score (ordered key of the `f64`): `[negatives, positives]`.
    counts: BTreeMap<u64, [u64; 2]>,
    n_pos: u64,
    n_neg: u64,
}

/// A key whose unsigned order is the numeric order of the finite-or-infinite `x`,
/// with `-0.0` and `0.0` equal.
fn order_key(x: f64) -> u64 {
    let bits = (x + 0.0).to_bits(); // -0.0 + 0.0 == +0.0
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

impl RocAuc {
    fn entry(y_true: usize, y_pred: &ClassPrediction) -> Option<(u64, usize)> {
        let score = y_pred.proba_of(1);
        if score.is_nan() {
            return None;
        }
        Some((order_key(score), usize::from(y_true == 1)))
    }
}

impl ClassificationMetric for RocAuc {
    fn update(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        if let Some((key, pos)) = Self::entry(y_true, y_pred) {
            self.counts.entry(key).or_default()[pos] += 1;
            if pos == 1 {
                self.n_pos += 1;
            } else {
                self.n_neg += 1;
            }
        }
    }

    fn get(&self) -> f64 {
        let mut negatives_below = 0u64;
        let mut wins = 0.0;
        for [neg, pos] in self.counts.values() {
            wins += *pos as f64 * (negatives_below as f64 + 0.5 * *neg as f64);
            negatives_below += neg;
        }
        safe_div(wins, self.n_pos as f64 * self.n_neg as f64)
    }

    fn bigger_is_better(&self) -> bool {
        true
    }
}

impl RevertClassification for RocAuc {
    fn revert(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        let Some((key, pos)) = Self::entry(y_true, y_pred) else {
            return;
        };
        let Some(cell) = self.counts.get_mut(&key) else {
            return;
        };
        if cell[pos] == 0 {
            return;
        }
        cell[pos] -= 1;
        if *cell == [0, 0] {
            self.counts.remove(&key);
        }
        if pos == 1 {
            self.n_pos -= 1;
        } else {
            self.n_neg -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auc_of(pairs: &[(usize, f64)]) -> RocAuc {
        let mut m = RocAuc::default();
        for &(y, s) in pairs {
            m.update(y, &ClassPrediction::binary(s));
        }
        m
    }

    #[test]
    fn six_points_by_hand() {
        // Positives score 0.35, 0.8, 0.7; negatives 0.1, 0.4, 0.5.
        // 0.35 beats 1 negative, 0.8 and 0.7 beat all 3: 7 of 9 pairs.
        let pairs = [(0, 0.1), (0, 0.4), (1, 0.35), (1, 0.8), (0, 0.5), (1, 0.7)];
        let m = auc_of(&pairs);
        assert!((m.get() - 7.0 / 9.0).abs() < 1e-12);
    }

    #[test]
    fn ties_count_half() {
        // Positive 0.5 ties one negative and beats the other: 1.5 of 2 pairs;
        // positive 0.2 ties 0.2 (0.5), loses to 0.5: 0.5 of 2 pairs.
        let m = auc_of(&[(1, 0.5), (0, 0.5), (0, 0.2), (1, 0.2)]);
        assert!((m.get() - 2.0 / 4.0).abs() < 1e-12);
        let all_tied = auc_of(&[(1, 0.3), (0, 0.3), (0, 0.3)]);
        assert_eq!(all_tied.get(), 0.5);
    }

    #[test]
    fn one_class_only_is_zero_and_nan_ignored() {
        assert_eq!(RocAuc::default().get(), 0.0);
        assert_eq!(auc_of(&[(1, 0.3), (1, 0.9)]).get(), 0.0);
        let mut m = auc_of(&[(1, 0.9), (0, 0.1)]);
        m.update(0, &ClassPrediction::binary(f64::NAN));
        m.revert(0, &ClassPrediction::binary(f64::NAN));
        assert_eq!(m.get(), 1.0);
    }

    #[test]
    fn revert_restores_the_earlier_state() {
        let pairs = [(0, 0.1), (1, 0.35), (0, 0.4), (1, 0.8)];
        let mut m = auc_of(&pairs[..2]);
        let before = m.clone();
        for &(y, s) in &pairs[2..] {
            m.update(y, &ClassPrediction::binary(s));
        }
        for &(y, s) in &pairs[2..] {
            m.revert(y, &ClassPrediction::binary(s));
        }
        assert_eq!(m, before);
        // Reverting something never seen changes nothing.
        m.revert(1, &ClassPrediction::binary(0.123));
        assert_eq!(m, before);
    }

    #[test]
    fn order_key_orders_like_floats() {
        let xs = [
            f64::NEG_INFINITY,
            -2.0,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            0.5,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) <= order_key(w[1]), "{:?}", w);
        }
        assert_eq!(order_key(-0.0), order_key(0.0));
    }

    #[test]
    fn serde_round_trip() {
        let m = auc_of(&[(0, 0.1), (1, 0.35), (0, 0.4), (1, 0.8)]);
        let json = serde_json::to_string(&m).expect("serialise");
        let back: RocAuc = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, m);
    }
}
