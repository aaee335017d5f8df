//! Baselines a model must beat: the majority class and the last label seen.
//!
//! Both ignore the features entirely (any vector, even empty or non-finite, is
//! accepted). Their probability vectors span the classes seen so far: index `k` for
//! every `k` up to the largest class seen. Memory grows with the largest class index.

use crate::Classifier;

/// Predicts the most frequent class seen so far (ties: the lowest index); the
/// probabilities are the class frequencies (River's `PriorClassifier`).
///
/// ```rust
/// use freshet_learn::Classifier;
/// use freshet_learn::baseline::MajorityClass;
///
/// let mut model = MajorityClass::default();
/// for y in [2, 0, 2, 1] {
///     model.learn_one(&[], y);
/// }
/// assert_eq!(model.predict_proba_one(&[]), vec![0.25, 0.25, 0.5]);
/// assert_eq!(model.predict_one(&[]), Some(2));
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MajorityClass {
    counts: Vec<u64>,
    total: u64,
}

impl MajorityClass {
    /// How many examples of each class were seen, indexed by class.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
}

impl Classifier for MajorityClass {
    fn learn_one(&mut self, _x: &[f64], y: usize) {
        if y >= self.counts.len() {
            self.counts.resize(y.saturating_add(1), 0);
        }
        self.counts[y] += 1;
        self.total += 1;
    }

    fn predict_proba_one(&self, _x: &[f64]) -> Vec<f64> {
        let total = self.total as f64;
        self.counts.iter().map(|&c| c as f64 / total).collect()
    }
}

/// Predicts the last label it learnt; the probabilities put all the mass on it
/// (River's `NoChangeClassifier`). A strong baseline on streams whose labels come in
/// runs.
///
/// ```rust
/// use freshet_learn::Classifier;
/// use freshet_learn::baseline::NoChange;
///
/// let mut model = NoChange::default();
/// assert_eq!(model.predict_one(&[]), None);
/// model.learn_one(&[], 2);
/// model.learn_one(&[], 0);
/// assert_eq!(model.predict_proba_one(&[]), vec![1.0, 0.0, 0.0]);
/// assert_eq!(model.predict_one(&[]), Some(0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoChange {
    last: Option<usize>,
    n_classes: usize,
}

impl NoChange {
    /// The last label learnt.
    pub fn last(&self) -> Option<usize> {
        self.last
    }
}

impl Classifier for NoChange {
    fn learn_one(&mut self, _x: &[f64], y: usize) {
        self.last = Some(y);
        self.n_classes = self.n_classes.max(y.saturating_add(1));
    }

    fn predict_proba_one(&self, _x: &[f64]) -> Vec<f64> {
        let Some(last) = self.last else {
            return Vec::new();
        };
        let mut p = vec![0.0; self.n_classes.max(last.saturating_add(1))];
        if let Some(slot) = p.get_mut(last) {
            *slot = 1.0;
        }
        p
    }

    fn predict_one(&self, _x: &[f64]) -> Option<usize> {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::conformance::{check_classifier_conformance, check_classifier_snapshot};

    #[test]
    fn majority_class_by_hand() {
        let mut m = MajorityClass::default();
        assert!(m.predict_proba_one(&[1.0]).is_empty());
        assert_eq!(m.predict_one(&[]), None);
        for y in [1, 0, 1, 3] {
            m.learn_one(&[f64::NAN], y);
        }
        assert_eq!(m.counts(), &[1, 2, 0, 1]);
        assert_eq!(m.predict_proba_one(&[]), vec![0.25, 0.5, 0.0, 0.25]);
        assert_eq!(m.predict_one(&[7.0, 8.0]), Some(1));
        m.learn_one(&[], 0);
        assert_eq!(m.predict_one(&[]), Some(0)); // tie 2–2: lowest index
    }

    #[test]
    fn no_change_by_hand() {
        let mut m = NoChange::default();
        assert!(m.predict_proba_one(&[]).is_empty());
        m.learn_one(&[], 3);
        assert_eq!(m.predict_proba_one(&[]), vec![0.0, 0.0, 0.0, 1.0]);
        m.learn_one(&[1.0], 1);
        assert_eq!((m.last(), m.predict_one(&[])), (Some(1), Some(1)));
        assert_eq!(m.predict_proba_one(&[]), vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn baselines_conform() {
        check_classifier_conformance(|| Box::new(MajorityClass::default()));
        check_classifier_conformance(|| Box::new(NoChange::default()));
        check_classifier_snapshot(MajorityClass::default);
        check_classifier_snapshot(NoChange::default);
    }
}
