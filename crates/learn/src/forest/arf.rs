//! The adaptive random forest classifier.

use serde::{Deserialize, Serialize};

use super::config::ARFConfig;
use super::member::Member;
use crate::Classifier;
use crate::tree::rng::SplitMix64;
use crate::tree::{Adwin, HoeffdingTreeClassifier, MAX_CLASSES, TreeConfigError};

/// Adaptive random forest (Gomes et al. 2017) as River's `forest.ARFClassifier` with
/// its defaults: 10 random-subspace Hoeffding trees (each leaf watches
/// `round(sqrt(n_features))` features; grace period 50, δ = 0.01), online bagging with
/// Poisson(6) weights, and per tree an ADWIN warning detector (δ = 0.01) that starts a
/// background tree and an ADWIN drift detector (δ = 0.001) that replaces the tree with
/// it. Votes are the trees' probabilities weighted by each tree's test-then-train
/// accuracy since it was started.
///
/// See the [module documentation](super) for the differences from River.
///
/// ```
/// use freshet_learn::Classifier;
/// use freshet_learn::forest::ARFClassifier;
/// use rand::{Rng, SeedableRng};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut forest = ARFClassifier::default();
/// let mut correct_after_flip = 0;
/// for t in 0..6000 {
///     let x = [rng.random::<f64>(), rng.random::<f64>()];
///     // The concept flips half way.
///     let y = usize::from((x[0] > 0.5) == (t < 3000));
///     if t >= 4000 && forest.predict_one(&x) == Some(y) {
///         correct_after_flip += 1;
///     }
///     forest.learn_one(&x, y);
/// }
/// assert_eq!(correct_after_flip, 1999);
/// assert_eq!(forest.n_drifts_detected(), 19);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ARFClassifier {
    config: ARFConfig,
    members: Vec<Member>,
    /// Bagging weights and the seeds of new trees.
    rng: SplitMix64,
    n_classes: usize,
}

impl Default for ARFClassifier {
    fn default() -> Self {
        Self::with_valid_config(ARFConfig::default())
    }
}

impl ARFClassifier {
    /// An empty forest with the given parameters.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn new(config: ARFConfig) -> Result<Self, TreeConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    fn with_valid_config(config: ARFConfig) -> Self {
        let mut rng = SplitMix64::new(config.seed);
        let members = (0..config.n_models.get())
            .map(|_| {
                Member::new(
                    new_tree(&config, &mut rng),
                    config.drift_detector.clone().map(Adwin::with_valid_config),
                    config
                        .warning_detector
                        .clone()
                        .map(Adwin::with_valid_config),
                )
            })
            .collect();
        Self {
            config,
            members,
            rng,
            n_classes: 0,
        }
    }

    /// The parameters.
    pub fn config(&self) -> &ARFConfig {
        &self.config
    }

    /// The active trees, in order.
    pub fn trees(&self) -> impl Iterator<Item = &HoeffdingTreeClassifier> {
        self.members.iter().map(|m| &m.tree)
    }

    /// Each active tree's test-then-train accuracy since it was started (its vote
    /// weight).
    pub fn tree_accuracies(&self) -> Vec<f64> {
        self.members.iter().map(Member::accuracy).collect()
    }

    /// Warnings detected so far, over all trees (each started a background tree).
    pub fn n_warnings_detected(&self) -> u64 {
        self.members.iter().map(|m| m.n_warnings).sum()
    }

    /// Drifts detected so far, over all trees (each replaced a tree).
    pub fn n_drifts_detected(&self) -> u64 {
        self.members.iter().map(|m| m.n_drifts).sum()
    }

    /// Drifts whose replacement was a background tree rather than a fresh one.
    pub fn n_background_swaps(&self) -> u64 {
        self.members.iter().map(|m| m.n_swaps).sum()
    }

    /// Background trees growing now.
    pub fn n_background_trees(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.background.is_some())
            .count()
    }
}

/// A fresh random-subspace tree whose feature subsets are seeded from `rng`.
fn new_tree(config: &ARFConfig, rng: &mut SplitMix64) -> HoeffdingTreeClassifier {
    HoeffdingTreeClassifier::random_subspace_valid(
        config.tree.clone(),
        config.max_features,
        rng.next_u64(),
    )
}

impl Classifier for ARFClassifier {
    /// Score, then train, every tree: each learns `x` with a Poisson(λ) weight, and its
    /// detectors see its error. Labels at or above [`MAX_CLASSES`] are ignored.
    fn learn_one(&mut self, x: &[f64], y: usize) {
        if y >= MAX_CLASSES {
            return;
        }
        self.n_classes = self.n_classes.max(y + 1);
        let Self {
            config,
            members,
            rng,
            ..
        } = self;
        for member in members {
            let k = rng.poisson(config.lambda);
            member.learn(x, y, k, &mut || new_tree(config, rng));
        }
    }

    /// The trees' probabilities weighted by their accuracies, normalised. Trees that
    /// have not been scored yet (accuracy 0) do not vote unless no tree has a positive
    /// weight, in which case every tree votes equally; uniform when no tree has learned
    /// anything; empty before any learning.
    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        if self.n_classes == 0 {
            return Vec::new();
        }
        let probas: Vec<(f64, Vec<f64>)> = self
            .members
            .iter()
            .map(|m| (m.accuracy(), m.tree.predict_proba_one(x)))
            .filter(|(_, p)| !p.is_empty())
            .collect();
        crate::ensemble::vote::vote(&probas, self.n_classes, self.config.weighted_vote)
    }
}
