//! A learning leaf: class weights, one Gaussian splitter per feature while active, the
//! naive-Bayes-adaptive scores, and the split decision of VFDT.

use serde::{Deserialize, Serialize};

use super::config::{HoeffdingTreeConfig, LeafPrediction};
use super::criterion::{SplitSuggestion, hoeffding_bound, range_of_merit};
use super::exact;
use super::gaussian::GaussianSplitter;
use super::node::{add_weight, normalized};
use crate::argmax;

/// What a split attempt decided.
#[derive(Debug)]
pub(crate) enum SplitOutcome {
    /// Not yet: wait another grace period.
    Keep,
    /// Stop collecting split statistics here (the maximum depth is reached). Only the
    /// trees decide this; [`Leaf::attempt_split`] never does.
    Deactivate,
    /// Pre-pruning: not splitting won (the null split ranked first, or the majority class
    /// dominates). The leaf forgets its feature statistics and starts collecting anew
    /// ([`Leaf::restart`]).
    Restart,
    /// Replace the leaf with this split.
    Split(SplitSuggestion),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Leaf {
    #[serde(with = "exact::vec")]
    pub(crate) stats: Vec<f64>,
    /// Indexed by feature; `None` once the leaf is deactivated.
    splitters: Option<Vec<GaussianSplitter>>,
    pub(crate) depth: u32,
    #[serde(with = "exact")]
    pub(crate) last_split_attempt_at: f64,
    #[serde(with = "exact")]
    mc_correct: f64,
    #[serde(with = "exact")]
    nb_correct: f64,
    /// The features this leaf watches, in increasing order, when it belongs to a
    /// random-subspace tree; `None` for every feature (or not drawn yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) features: Option<Vec<usize>>,
}

impl Leaf {
    pub(crate) fn new(stats: Vec<f64>, depth: u32) -> Self {
        let last_split_attempt_at = stats.iter().sum();
        Self {
            stats,
            splitters: Some(Vec::new()),
            depth,
            last_split_attempt_at,
            mc_correct: 0.0,
            nb_correct: 0.0,
            features: None,
        }
    }

    pub(crate) fn total_weight(&self) -> f64 {
        self.stats.iter().sum()
    }

    pub(crate) fn is_active(&self) -> bool {
        self.splitters.is_some()
    }

    pub(crate) fn deactivate(&mut self) {
        self.splitters = None;
    }

    /// Drop the feature statistics and keep learning, after pre-pruning.
    ///
    /// River's trees deactivate such a leaf, but the memory manager that runs right
    /// after every decided split attempt (`_enforce_size_limit`) reactivates every
    /// inactive leaf above the depth limit while the tree is under `max_size` (100 MiB),
    /// with fresh, empty splitters. The net effect, which this reproduces, is a leaf
    /// that stays active and restarts its split statistics; its class weights and
    /// naive-Bayes-adaptive scores are kept. A leaf deactivated for good would never
    /// split again even when the concept under it changes (on Elec2 that cost the
    /// Hoeffding tree 2.6 points of accuracy against River).
    pub(crate) fn restart(&mut self) {
        self.splitters = Some(Vec::new());
    }

    /// Whether a grace period has passed since the last split attempt.
    pub(crate) fn due_for_split_attempt(&self, config: &HoeffdingTreeConfig) -> bool {
        self.is_active()
            && self.total_weight() - self.last_split_attempt_at
                >= f64::from(config.grace_period.get())
    }

    pub(crate) fn learn(&mut self, x: &[f64], y: usize, w: f64, config: &HoeffdingTreeConfig) {
        if self.is_active() && config.leaf_prediction == LeafPrediction::NaiveBayesAdaptive {
            let mc = argmax(&self.stats);
            if self.total_weight() <= 0.0 || mc == Some(y) {
                self.mc_correct += w;
            }
            if self.naive_bayes(x).and_then(|p| argmax(&p)) == Some(y) {
                self.nb_correct += w;
            }
        }
        add_weight(&mut self.stats, y, w);
        if let Some(splitters) = &mut self.splitters {
            let mut observe = |i: usize, v: f64| {
                if !v.is_finite() {
                    return;
                }
                if splitters.len() <= i {
                    splitters.resize_with(i + 1, GaussianSplitter::default);
                }
                splitters[i].update(v, y, w);
            };
            match &self.features {
                Some(features) => {
                    for &i in features {
                        if let Some(&v) = x.get(i) {
                            observe(i, v);
                        }
                    }
                }
                None => {
                    for (i, &v) in x.iter().enumerate() {
                        observe(i, v);
                    }
                }
            }
        }
    }

    /// Class probabilities (summing to one); `None` while the leaf holds no weight.
    pub(crate) fn predict(&self, x: &[f64], config: &HoeffdingTreeConfig) -> Option<Vec<f64>> {
        let use_nb = self.is_active()
            && match config.leaf_prediction {
                LeafPrediction::MajorityClass => false,
                LeafPrediction::NaiveBayes => self.total_weight() >= f64::from(config.nb_threshold),
                LeafPrediction::NaiveBayesAdaptive => self.nb_correct >= self.mc_correct,
            };
        if use_nb && let Some(p) = self.naive_bayes(x) {
            return Some(p);
        }
        normalized(&self.stats)
    }

    /// Gaussian naive Bayes: prior from the class weights, one likelihood term per
    /// present feature whose class Gaussian has a positive variance. Classes without
    /// weight get probability 0.
    fn naive_bayes(&self, x: &[f64]) -> Option<Vec<f64>> {
        let total = self.total_weight();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let splitters = self.splitters.as_deref().unwrap_or(&[]);
        let log_post: Vec<f64> = self
            .stats
            .iter()
            .enumerate()
            .map(|(c, &w)| {
                if w <= 0.0 {
                    return f64::NEG_INFINITY;
                }
                let likelihood: f64 = x
                    .iter()
                    .zip(splitters)
                    .filter(|(v, _)| v.is_finite())
                    .filter_map(|(&v, s)| s.log_likelihood(v, c))
                    .sum();
                (w / total).ln() + likelihood
            })
            .collect();
        let max = log_post
            .iter()
            .copied()
            .filter(|l| l.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return None;
        }
        let unnormalized: Vec<f64> = log_post
            .iter()
            .map(|&l| if l.is_finite() { (l - max).exp() } else { 0.0 })
            .collect();
        normalized(&unnormalized)
    }

    /// VFDT's decision: rank the best candidate of every feature and the null split
    /// (merit −∞, River's convention); split when the best beats the second best by more
    /// than the Hoeffding bound, or the bound is below τ.
    pub(crate) fn attempt_split(&self, config: &HoeffdingTreeConfig) -> SplitOutcome {
        let Some(splitters) = &self.splitters else {
            return SplitOutcome::Keep;
        };
        if self.stats.iter().filter(|&&w| w > 0.0).count() < 2 {
            return SplitOutcome::Keep;
        }
        let total = self.total_weight();
        let majority = self.stats.iter().copied().fold(0.0, f64::max);
        if majority / total > config.max_share_to_split {
            return SplitOutcome::Restart;
        }
        let mut candidates: Vec<(f64, Option<SplitSuggestion>)> = vec![(f64::NEG_INFINITY, None)];
        for (feature, splitter) in splitters.iter().enumerate() {
            let best = splitter.best_split(
                &self.stats,
                feature,
                config.n_splits.get(),
                config.min_branch_fraction,
            );
            candidates.push(match best {
                Some(s) => (s.merit, Some(s)),
                None => (f64::NEG_INFINITY, None),
            });
        }
        // Stable: among equal merits the later feature ranks higher, as in River.
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        let should_split = match candidates.as_slice() {
            [.., (second, _), (best, _)] => {
                let bound = hoeffding_bound(range_of_merit(&self.stats), config.delta, total);
                best - second > bound || bound < config.tau
            }
            _ => true,
        };
        if !should_split {
            return SplitOutcome::Keep;
        }
        match candidates.pop() {
            Some((merit, Some(split))) if merit.is_finite() => SplitOutcome::Split(split),
            _ => SplitOutcome::Restart,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HoeffdingTreeConfig {
        HoeffdingTreeConfig::default()
    }

    #[test]
    fn new_leaf_counts_inherited_weight_as_already_attempted() {
        let leaf = Leaf::new(vec![30.0, 10.0], 1);
        assert_eq!(leaf.last_split_attempt_at, 40.0);
        assert!(!leaf.due_for_split_attempt(&cfg()));
        let p = leaf.predict(&[], &cfg()).unwrap();
        assert!((p[0] - 0.75).abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12);
        assert_eq!(Leaf::new(vec![], 0).predict(&[1.0], &cfg()), None);
    }

    #[test]
    fn naive_bayes_uses_the_feature_likelihoods() {
        let mut leaf = Leaf::new(vec![], 0);
        let config = HoeffdingTreeConfig {
            leaf_prediction: LeafPrediction::NaiveBayes,
            ..cfg()
        };
        // Class 0 around 0, class 1 around 10; class 1 three times as frequent.
        for (x, y) in [(-1.0, 0), (0.0, 0), (1.0, 0)] {
            leaf.learn(&[x], y, 1.0, &config);
        }
        for _ in 0..3 {
            for x in [9.0, 10.0, 11.0] {
                leaf.learn(&[x], 1, 1.0, &config);
            }
        }
        let p = leaf.predict(&[0.5], &config).unwrap();
        assert!(p[0] > 0.99, "{p:?}");
        // Missing value: only the prior remains.
        let p = leaf.predict(&[f64::NAN], &config).unwrap();
        assert!((p[0] - 0.25).abs() < 1e-12);
        let p = leaf.predict(&[], &config).unwrap();
        assert!((p[1] - 0.75).abs() < 1e-12);
        // Majority-class prediction ignores x.
        let mc = HoeffdingTreeConfig {
            leaf_prediction: LeafPrediction::MajorityClass,
            ..cfg()
        };
        assert_eq!(leaf.predict(&[0.5], &mc), Some(vec![0.25, 0.75]));
    }

    #[test]
    fn pure_leaves_and_dominant_classes_do_not_split() {
        let mut leaf = Leaf::new(vec![], 0);
        for i in 0..300 {
            leaf.learn(&[f64::from(i)], 0, 1.0, &cfg());
        }
        assert!(matches!(leaf.attempt_split(&cfg()), SplitOutcome::Keep));
        leaf.learn(&[5.0], 1, 1.0, &cfg());
        // 300 / 301 > 0.99: pre-pruning restarts such a leaf.
        assert!(matches!(leaf.attempt_split(&cfg()), SplitOutcome::Restart));
        leaf.restart();
        assert!(leaf.is_active());
        assert_eq!(leaf.total_weight(), 301.0);
    }

    #[test]
    fn a_single_informative_feature_splits_at_once() {
        let mut leaf = Leaf::new(vec![], 0);
        for i in 0..200 {
            let x = f64::from(i) / 200.0;
            leaf.learn(&[x], usize::from(x > 0.5), 1.0, &cfg());
        }
        // Only the null split (−∞) competes, so the difference is infinite.
        match leaf.attempt_split(&cfg()) {
            SplitOutcome::Split(s) => {
                assert_eq!(s.feature, 0);
                assert!((s.threshold - 0.5).abs() < 0.1, "{}", s.threshold);
            }
            other => panic!("{other:?}"),
        }
    }
}
