//! Parameters of the adaptive random forest, with River's defaults.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::tree::{AdwinConfig, HoeffdingTreeConfig, MaxFeatures, TreeConfigError};

/// Parameters of [`ARFClassifier`](super::ARFClassifier). The defaults are those of
/// River's `forest.ARFClassifier` (with a fixed seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ARFConfig {
    /// Trees in the forest. Default 10.
    pub n_models: NonZeroU32,
    /// Features each leaf watches. Default `sqrt`: `round(sqrt(n_features))`.
    pub max_features: MaxFeatures,
    /// λ of online bagging: each tree learns each example with a weight drawn from
    /// Poisson(λ) (6, as leveraging bagging, gives more weight and more diversity than
    /// the bootstrap's 1), finite and > 0. Default 6.
    pub lambda: f64,
    /// Drift detector on each tree's 0/1 error: on a drift the tree is replaced (by its
    /// background tree when one is growing). `None` disables replacement. Default ADWIN
    /// with δ = 0.001.
    pub drift_detector: Option<AdwinConfig>,
    /// Warning detector on each tree's 0/1 error, more sensitive than the drift
    /// detector: a warning starts a background tree that learns alongside and takes
    /// over on the next drift. `None` disables background trees. Default ADWIN with
    /// δ = 0.01.
    pub warning_detector: Option<AdwinConfig>,
    /// Weight each tree's vote by its accuracy since it was (re)started. Default true.
    pub weighted_vote: bool,
    /// The trees' growth parameters. Default River's ARF tree parameters: grace
    /// period 50, δ = 0.01, the rest as for the plain Hoeffding tree (τ 0.05,
    /// information gain, naive Bayes adaptive leaves, unlimited depth). A `tree` given
    /// in JSON fills its missing fields from the plain tree's defaults (grace period
    /// 200, δ = 1e-7), so set both explicitly there.
    pub tree: HoeffdingTreeConfig,
    /// Seed of the bagging weights and of the trees' feature subsets. Default 0.
    pub seed: u64,
}

impl Default for ARFConfig {
    fn default() -> Self {
        Self {
            n_models: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            max_features: MaxFeatures::Sqrt,
            lambda: 6.0,
            drift_detector: Some(AdwinConfig {
                delta: 0.001,
                ..AdwinConfig::default()
            }),
            warning_detector: Some(AdwinConfig {
                delta: 0.01,
                ..AdwinConfig::default()
            }),
            weighted_vote: true,
            tree: HoeffdingTreeConfig {
                grace_period: NonZeroU32::new(50).unwrap_or(NonZeroU32::MIN),
                delta: 0.01,
                ..HoeffdingTreeConfig::default()
            },
            seed: 0,
        }
    }
}

impl ARFConfig {
    /// Check the values; the error names the field.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), TreeConfigError> {
        if !(self.lambda > 0.0 && self.lambda.is_finite() && self.lambda <= 100.0) {
            return Err(TreeConfigError::OutOfRange {
                field: "lambda".to_owned(),
                reason: "must be in (0, 100]".to_owned(),
            });
        }
        if let MaxFeatures::Fraction(f) = self.max_features
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(TreeConfigError::OutOfRange {
                field: "max_features".to_owned(),
                reason: "a fraction must be in (0, 1]".to_owned(),
            });
        }
        for detector in [&self.drift_detector, &self.warning_detector]
            .into_iter()
            .flatten()
        {
            detector.validate()?;
        }
        self.tree.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_river_defaults_and_valid() {
        let c = ARFConfig::default();
        assert_eq!(c.n_models.get(), 10);
        assert_eq!(c.max_features, MaxFeatures::Sqrt);
        assert_eq!(c.lambda, 6.0);
        assert_eq!(c.drift_detector.as_ref().map(|d| d.delta), Some(0.001));
        assert_eq!(c.warning_detector.as_ref().map(|d| d.delta), Some(0.01));
        assert_eq!(c.tree.grace_period.get(), 50);
        assert_eq!(c.tree.delta, 0.01);
        assert_eq!(c.tree.tau, 0.05);
        assert!(c.weighted_vote);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_values_name_the_field_and_json_reads_partial_configs() {
        let bad = ARFConfig {
            lambda: 0.0,
            ..ARFConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .starts_with("lambda")
        );
        let bad = ARFConfig {
            max_features: MaxFeatures::Fraction(1.5),
            ..ARFConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .starts_with("max_features")
        );
        let c: ARFConfig = serde_json::from_str(
            r#"{"n_models": 3, "max_features": {"count": 2}, "warning_detector": null,
                "tree": {"grace_period": 100}}"#,
        )
        .unwrap();
        assert_eq!(c.n_models.get(), 3);
        assert_eq!(c.max_features, MaxFeatures::Count(2));
        assert!(c.warning_detector.is_none());
        // A partial tree config falls back to the plain tree's defaults, not ARF's.
        assert_eq!(c.tree.grace_period.get(), 100);
        assert!(serde_json::from_str::<ARFConfig>(r#"{"n_models": 0}"#).is_err());
        assert!(serde_json::from_str::<ARFConfig>(r#"{"trees": 3}"#).is_err());
    }
}
