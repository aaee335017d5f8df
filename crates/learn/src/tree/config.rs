//! Parameters of the Hoeffding tree, with River's defaults.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::adwin::AdwinConfig;

/// A parameter out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TreeConfigError {
    /// The named field has a value outside its range.
    #[error("{field} {reason}")]
    OutOfRange {
        /// Name of the field.
        field: String,
        /// What the value must satisfy.
        reason: String,
    },
}

pub(crate) fn check(ok: bool, field: &str, reason: &str) -> Result<(), TreeConfigError> {
    if ok {
        Ok(())
    } else {
        Err(TreeConfigError::OutOfRange {
            field: field.to_owned(),
            reason: reason.to_owned(),
        })
    }
}

/// How a leaf turns its statistics into class probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LeafPrediction {
    /// The class distribution seen at the leaf.
    #[serde(rename = "mc")]
    MajorityClass,
    /// Gaussian naive Bayes on the leaf's statistics, once the leaf has seen
    /// `nb_threshold` weight.
    #[serde(rename = "nb")]
    NaiveBayes,
    /// Whichever of the two has been right more often at this leaf (ties: naive Bayes).
    #[default]
    #[serde(rename = "nba")]
    NaiveBayesAdaptive,
}

/// Parameters of [`HoeffdingTreeClassifier`](super::HoeffdingTreeClassifier), also used by
/// the adaptive tree. The defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoeffdingTreeConfig {
    /// Weight a leaf must see between split attempts. Default 200.
    pub grace_period: NonZeroU32,
    /// Maximum depth (the root is at depth 0); `None` for unlimited. Default `None`.
    pub max_depth: Option<u32>,
    /// δ of the Hoeffding bound (River's `delta` / `split_confidence`), in (0, 1).
    /// Default 1e-7.
    pub delta: f64,
    /// τ: split anyway once the Hoeffding bound falls below it (River's `tau` /
    /// `tie_threshold`), ≥ 0. Default 0.05.
    pub tau: f64,
    /// Leaf prediction. Default naive Bayes adaptive.
    pub leaf_prediction: LeafPrediction,
    /// Weight a leaf must have seen before [`LeafPrediction::NaiveBayes`] uses naive Bayes.
    /// Default 0.
    pub nb_threshold: u32,
    /// Candidate thresholds per feature of the Gaussian splitter. Default 10.
    pub n_splits: NonZeroU32,
    /// A candidate split is valid only if at least two branches receive more than this
    /// fraction of the weight, in [0, 0.5). Default 0.01.
    pub min_branch_fraction: f64,
    /// A leaf whose majority class holds more than this share of its weight does not
    /// split at this attempt and restarts its split statistics (as River's
    /// deactivation followed by its memory manager's reactivation), in (0, 1].
    /// Default 0.99.
    pub max_share_to_split: f64,
}

impl Default for HoeffdingTreeConfig {
    fn default() -> Self {
        Self {
            grace_period: NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN),
            max_depth: None,
            delta: 1e-7,
            tau: 0.05,
            leaf_prediction: LeafPrediction::NaiveBayesAdaptive,
            nb_threshold: 0,
            n_splits: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            min_branch_fraction: 0.01,
            max_share_to_split: 0.99,
        }
    }
}

impl HoeffdingTreeConfig {
    /// Check the values; the error names the field.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), TreeConfigError> {
        check(
            self.delta > 0.0 && self.delta < 1.0,
            "delta",
            "must be in (0, 1)",
        )?;
        check(
            self.tau >= 0.0 && self.tau.is_finite(),
            "tau",
            "must be finite and >= 0",
        )?;
        check(
            (0.0..0.5).contains(&self.min_branch_fraction),
            "min_branch_fraction",
            "must be in [0, 0.5)",
        )?;
        check(
            self.max_share_to_split > 0.0 && self.max_share_to_split <= 1.0,
            "max_share_to_split",
            "must be in (0, 1]",
        )
    }
}

/// Parameters of [`HoeffdingAdaptiveTreeClassifier`](super::HoeffdingAdaptiveTreeClassifier); the defaults are River's (with a
/// fixed seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoeffdingAdaptiveTreeConfig {
    /// Growth parameters, as for the plain Hoeffding tree.
    pub tree: HoeffdingTreeConfig,
    /// Weight each example at each leaf by a Poisson(1) draw (a draw of 0 keeps weight 1,
    /// as in River and MOA). Default true.
    pub bootstrap_sampling: bool,
    /// Both a branch's and its alternate's error windows must be longer than this before
    /// they are compared. Default 300.
    pub drift_window_threshold: u32,
    /// The ADWIN detector every node keeps on its error. Default: δ = 0.002, clock 32.
    pub adwin: AdwinConfig,
    /// Significance of the test that switches to, or drops, an alternate subtree, in
    /// (0, 1). Default 0.05.
    pub switch_significance: f64,
    /// Seed of the bootstrap draws. Default 0.
    pub seed: u64,
}

impl Default for HoeffdingAdaptiveTreeConfig {
    fn default() -> Self {
        Self {
            tree: HoeffdingTreeConfig::default(),
            bootstrap_sampling: true,
            drift_window_threshold: 300,
            adwin: AdwinConfig::default(),
            switch_significance: 0.05,
            seed: 0,
        }
    }
}

impl HoeffdingAdaptiveTreeConfig {
    /// Check the values; the error names the field.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), TreeConfigError> {
        self.tree.validate()?;
        self.adwin.validate()?;
        check(
            self.switch_significance > 0.0 && self.switch_significance < 1.0,
            "switch_significance",
            "must be in (0, 1)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_river_defaults_and_valid() {
        let c = HoeffdingTreeConfig::default();
        assert_eq!(c.grace_period.get(), 200);
        assert_eq!(c.delta, 1e-7);
        assert_eq!(c.tau, 0.05);
        assert_eq!(c.n_splits.get(), 10);
        assert_eq!(c.max_depth, None);
        assert_eq!(c.leaf_prediction, LeafPrediction::NaiveBayesAdaptive);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_values_name_the_field() {
        let c = HoeffdingTreeConfig {
            delta: 2.0,
            ..HoeffdingTreeConfig::default()
        };
        let err = c.validate().unwrap_err();
        assert_eq!(err.to_string(), "delta must be in (0, 1)");
        let c: Result<HoeffdingTreeConfig, _> = serde_json::from_str(r#"{"grace_period": 0}"#);
        assert!(c.is_err());
        let c: Result<HoeffdingTreeConfig, _> = serde_json::from_str(r#"{"gracePeriod": 5}"#);
        assert!(c.is_err());
        let c: HoeffdingTreeConfig =
            serde_json::from_str(r#"{"grace_period": 50, "leaf_prediction": "mc"}"#).unwrap();
        assert_eq!(c.grace_period.get(), 50);
        assert_eq!(c.leaf_prediction, LeafPrediction::MajorityClass);
    }
}
