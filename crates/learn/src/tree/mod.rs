//! Incremental decision trees: the Hoeffding tree (VFDT) and the Hoeffding adaptive tree.
//!
//! - [`HoeffdingTreeClassifier`] — the Very Fast Decision Tree of Domingos & Hulten (2000),
//!   with the defaults of River's `tree.HoeffdingTreeClassifier`: a leaf attempts a split
//!   every `grace_period` (200) examples and splits when the information gain of the best
//!   candidate beats the second best by more than the Hoeffding bound
//!   `ε = sqrt(R² ln(1/δ) / 2n)` (δ = 1e-7, `R = log2(classes)`), or when `ε < τ` (0.05).
//!   Leaves predict with "naive Bayes adaptive": each leaf keeps score of how often its
//!   majority class and its naive Bayes model would have been right, and answers with the
//!   better of the two.
//! - [`HoeffdingAdaptiveTreeClassifier`] — Bifet & Gavaldà (2009): every node watches its
//!   own error rate with an [`Adwin`] detector; when a branch's error rises significantly
//!   it grows an alternate subtree, which replaces the branch once it is significantly
//!   more accurate (or is dropped once it is significantly worse). Leaves learn with
//!   Poisson(1) bootstrap weights drawn from a seeded generator.
//! - [`HoeffdingTreeClassifier::with_random_subspace`] — the base learner of the
//!   adaptive random forest ([`crate::forest`]): each leaf watches only a random subset
//!   of [`MaxFeatures`] features, drawn when it first learns from a generator the tree
//!   owns; [`HoeffdingTreeClassifier::learn_weighted`] learns an example with a weight
//!   (online bagging).
//!
//! Numeric features only (dense `f64`), binary splits `x[feature] <= threshold`. Each
//! leaf observes each feature with a Gaussian splitter (per class, a weighted Gaussian
//! plus the minimum and maximum seen): the candidate thresholds are `n_splits` (10)
//! points evenly spaced between the overall minimum and maximum, and the class
//! distribution on each side of a threshold is estimated from the Gaussian CDFs.
//!
//! **Missing values.** A NaN feature, or a feature beyond the end of a short input
//! vector (missing trailing features are treated as NaN), is missing: it updates no
//! statistics, it is left out of naive Bayes, and at a branch that tests it the example
//! goes down the child that has seen more weight. Infinite values count as missing for
//! statistics and compare normally at branches. Nothing here panics on NaN, empty or
//! mismatched-length input.
//!
//! Labels are class indices `0..n`. A label at or above [`MAX_CLASSES`] is ignored by
//! `learn_one` (it would otherwise make every class vector that large).
//!
//! Predicting never mutates; both learners serialise with serde and predict identically
//! after a round-trip (floating-point state is written as exact decimal strings); a
//! fixed seed gives a fixed result.
//!
//! ## Differences from River
//!
//! - Not implemented: nominal features and multiway splits, Gini and Hellinger
//!   criteria, memory management (`max_size`, `memory_estimate_period`,
//!   `stop_mem_management`), `remove_poor_attrs`, sample weights in the API;
//!   `merit_preprune` is always on: the null split competes with merit −∞, and a leaf
//!   where it wins, or whose majority class exceeds `max_share_to_split`, drops its
//!   feature statistics and starts collecting anew. River deactivates such a leaf, but
//!   its memory manager, run right after, reactivates every inactive leaf with empty
//!   splitters while the tree is under `max_size`, so the effect in River is the same
//!   restart; only the maximum depth deactivates a leaf for good.
//! - Naive Bayes works with log densities (no underflow to a zero likelihood, which
//!   River then skips) and gives classes without weight at the leaf probability 0.
//! - Adaptive tree: an alternate subtree grows in its own slot and replaces its branch
//!   only through the switch test (River hands the alternate the main node's parent, so
//!   an alternate's first split overwrites the main subtree at once); after a switch
//!   the promoted subtree learns the current example; a leaf with zero ADWIN error is
//!   weighted as if its error were `1/(width + 1)` (River gives it weight 1, less than
//!   any erring leaf). Bootstrap draws come from SplitMix64, so numbers differ from
//!   River's for the same seed.
//! - ADWIN tests every bucket boundary (River's scan skips the newest bucket of each
//!   row); the bound, clock, grace period and minimum window are River's.

mod adaptive;
mod adwin;
mod config;
mod criterion;
mod exact;
mod gaussian;
mod hoeffding;
mod leaf;
mod node;
pub(crate) mod rng;
mod subspace;
#[cfg(test)]
mod tests;

pub use adaptive::HoeffdingAdaptiveTreeClassifier;
pub use adwin::{Adwin, AdwinConfig};
pub use config::{
    HoeffdingAdaptiveTreeConfig, HoeffdingTreeConfig, LeafPrediction, TreeConfigError,
};
pub use criterion::hoeffding_bound;
pub use hoeffding::HoeffdingTreeClassifier;
pub use subspace::MaxFeatures;

use serde::{Deserialize, Serialize};

/// Labels at or above this value are ignored when learning.
pub const MAX_CLASSES: usize = 1 << 16;

/// The test at a branch: examples with `x[feature] <= threshold` go left, others right.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitRule {
    /// Index of the tested feature.
    pub feature: usize,
    /// Threshold of the test.
    pub threshold: f64,
}

/// The shape of a tree, for monitoring and memory checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TreeSummary {
    /// Every node held, alternate subtrees of an adaptive tree included.
    pub n_nodes: usize,
    /// Branches of the main tree.
    pub n_branches: usize,
    /// Leaves of the main tree.
    pub n_leaves: usize,
    /// Leaves of the main tree that still collect split statistics.
    pub n_active_leaves: usize,
    /// Depth of the main tree (a lone root leaf has depth 0).
    pub depth: usize,
}
