//! Adaptive random forest: an ensemble of Hoeffding trees with drift-driven replacement.
//!
//! [`ARFClassifier`] follows Gomes et al., "Adaptive random forests for evolving data
//! stream classification" (Machine Learning, 2017), with the defaults of River 0.26.1's
//! `forest.ARFClassifier`. Three things make it work on drifting streams:
//!
//! 1. **Resampling.** Online bagging: each tree learns each example with a weight drawn
//!    from Poisson(λ = 6), so the trees see different effective samples.
//! 2. **Random subspaces.** Each tree is a
//!    [`HoeffdingTreeClassifier::with_random_subspace`](crate::tree::HoeffdingTreeClassifier::with_random_subspace)
//!    tree: a leaf watches `round(sqrt(n_features))` features drawn when it first
//!    learns, for both its split candidates and its naive Bayes predictions.
//! 3. **Per-tree drift detection.** Each tree's 0/1 test-then-train error feeds two
//!    ADWIN detectors. The more sensitive warning detector (δ = 0.01) starts a
//!    background tree that learns alongside (with the same bagging weights); the drift
//!    detector (δ = 0.001) replaces the tree, by its background tree when one is
//!    growing, else by a fresh tree, and restarts its accuracy.
//!
//! Prediction sums the trees' probabilities weighted by each tree's accuracy since it
//! was started. Everything random (bagging weights, the seeds of new trees' feature
//! subsets) comes from one seeded generator held in the forest, so a seed fixes the
//! result and a serialised forest resumes exactly. Predicting never mutates.
//!
//! ## Differences from River
//!
//! - The random numbers differ (SplitMix64 here, Python's Mersenne Twister there), so
//!   results agree statistically, not example by example.
//! - A tree that has not been scored yet (accuracy 0) gets vote weight 0; River gives
//!   any tree whose accuracy is 0 weight 1 (the unweighted vote), so a tree just
//!   replaced, or one that is always wrong, outvotes every accurate tree.
//! - Each tree draws its leaves' feature subsets from its own generator, seeded from
//!   the forest's; River's trees share the forest's generator.
//! - The trees are Freshet's Hoeffding trees, so the differences listed in
//!   [`crate::tree`] apply (numeric features only, log-space naive Bayes, …).

mod arf;
mod config;
mod member;
#[cfg(test)]
mod tests;

pub use arf::ARFClassifier;
pub use config::ARFConfig;
