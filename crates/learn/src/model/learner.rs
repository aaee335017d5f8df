//! The learner inside a model: one enum over the crate's learners, built from the
//! spec's [`LearnerSpec`] and serialised with the model.

use super::ModelError;
use crate::baseline::{MajorityClass, NoChange};
use crate::linear::{LinearConfig, LinearRegression, LogisticRegression, Optimizer};
use crate::naive_bayes::GaussianNB;
use crate::tree::{
    HoeffdingAdaptiveTreeClassifier, HoeffdingAdaptiveTreeConfig, HoeffdingTreeClassifier,
    HoeffdingTreeConfig,
};
use crate::{Classifier, Regressor};
use freshet_core::model_spec::{LearnerSpec, OptimizerKind, TreeSpec};
use serde::{Deserialize, Serialize};

/// The trained state of a model's learner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", content = "state", rename_all = "snake_case")]
pub enum LearnerState {
    LogisticRegression(LogisticRegression),
    LinearRegression(LinearRegression),
    GaussianNb(GaussianNB),
    HoeffdingTree(HoeffdingTreeClassifier),
    HoeffdingAdaptiveTree(HoeffdingAdaptiveTreeClassifier),
    Majority(MajorityClass),
    NoChange(NoChange),
    // SLOT adaptive_random_forest: add `AdaptiveRandomForest(crate::forest::…)` here, with
    // its arms in `new`, `name` and `classifier`, once crates/learn/src/forest lands.
    // SLOT gbt: add `Gbt(crate::boosting::…)` once crates/learn/src/boosting lands; it is
    // a batch learner, so `learn_one` on a model holding it should be an error and
    // training goes through the booster's fit on a window.
}

impl LearnerState {
    /// A fresh learner for the spec.
    ///
    /// # Errors
    /// [`ModelError::LearnerNotAvailable`] for learners not built into this crate yet;
    /// [`ModelError::LearnerParams`] for parameters the learner rejects.
    pub fn new(spec: &LearnerSpec) -> Result<Self, ModelError> {
        let params = |e: crate::tree::TreeConfigError| ModelError::LearnerParams {
            learner: spec.name(),
            reason: e.to_string(),
        };
        Ok(match spec {
            LearnerSpec::LogisticRegression { optimizer, lr, l2 } => {
                LearnerState::LogisticRegression(LogisticRegression::new(linear_config(
                    *optimizer, *lr, *l2,
                )))
            }
            LearnerSpec::LinearRegression { optimizer, lr, l2 } => LearnerState::LinearRegression(
                LinearRegression::new(linear_config(*optimizer, *lr, *l2)),
            ),
            LearnerSpec::GaussianNb {} => LearnerState::GaussianNb(GaussianNB::default()),
            LearnerSpec::HoeffdingTree(t) => LearnerState::HoeffdingTree(
                HoeffdingTreeClassifier::new(tree_config(t)).map_err(params)?,
            ),
            LearnerSpec::HoeffdingAdaptiveTree(t) => {
                let config = HoeffdingAdaptiveTreeConfig {
                    tree: tree_config(t),
                    seed: t.seed,
                    ..HoeffdingAdaptiveTreeConfig::default()
                };
                LearnerState::HoeffdingAdaptiveTree(
                    HoeffdingAdaptiveTreeClassifier::new(config).map_err(params)?,
                )
            }
            LearnerSpec::Majority {} => LearnerState::Majority(MajorityClass::default()),
            LearnerSpec::NoChange {} => LearnerState::NoChange(NoChange::default()),
            LearnerSpec::AdaptiveRandomForest { .. } | LearnerSpec::Gbt { .. } => {
                return Err(ModelError::LearnerNotAvailable {
                    learner: spec.name(),
                });
            }
        })
    }

    /// The learner's `type` in the spec.
    pub fn name(&self) -> &'static str {
        match self {
            LearnerState::LogisticRegression(_) => "logistic_regression",
            LearnerState::LinearRegression(_) => "linear_regression",
            LearnerState::GaussianNb(_) => "gaussian_nb",
            LearnerState::HoeffdingTree(_) => "hoeffding_tree",
            LearnerState::HoeffdingAdaptiveTree(_) => "hoeffding_adaptive_tree",
            LearnerState::Majority(_) => "majority",
            LearnerState::NoChange(_) => "no_change",
        }
    }

    /// The learner as a classifier; `None` for regressors.
    pub fn classifier(&self) -> Option<&dyn Classifier> {
        Some(match self {
            LearnerState::LogisticRegression(m) => m,
            LearnerState::GaussianNb(m) => m,
            LearnerState::HoeffdingTree(m) => m,
            LearnerState::HoeffdingAdaptiveTree(m) => m,
            LearnerState::Majority(m) => m,
            LearnerState::NoChange(m) => m,
            LearnerState::LinearRegression(_) => return None,
        })
    }

    pub(super) fn classifier_mut(&mut self) -> Option<&mut dyn Classifier> {
        Some(match self {
            LearnerState::LogisticRegression(m) => m,
            LearnerState::GaussianNb(m) => m,
            LearnerState::HoeffdingTree(m) => m,
            LearnerState::HoeffdingAdaptiveTree(m) => m,
            LearnerState::Majority(m) => m,
            LearnerState::NoChange(m) => m,
            LearnerState::LinearRegression(_) => return None,
        })
    }

    /// The learner as a regressor; `None` for classifiers.
    pub fn regressor(&self) -> Option<&dyn Regressor> {
        match self {
            LearnerState::LinearRegression(m) => Some(m),
            _ => None,
        }
    }

    pub(super) fn regressor_mut(&mut self) -> Option<&mut dyn Regressor> {
        match self {
            LearnerState::LinearRegression(m) => Some(m),
            _ => None,
        }
    }
}

/// The spec's `lr` replaces the optimizer's step size (FTRL's `alpha`); everything
/// else keeps the learner's defaults.
fn linear_config(kind: OptimizerKind, lr: Option<f64>, l2: f64) -> LinearConfig {
    let mut optimizer = match kind {
        OptimizerKind::Sgd => Optimizer::default(),
        OptimizerKind::Adam => Optimizer::adam(),
        OptimizerKind::Ftrl => Optimizer::ftrl(),
    };
    if let Some(step) = lr {
        match &mut optimizer {
            Optimizer::Sgd { lr } | Optimizer::Adam { lr, .. } => *lr = step,
            Optimizer::Ftrl { alpha, .. } => *alpha = step,
        }
    }
    LinearConfig {
        optimizer,
        l2,
        ..LinearConfig::default()
    }
}

fn tree_config(t: &TreeSpec) -> HoeffdingTreeConfig {
    HoeffdingTreeConfig {
        grace_period: t.grace_period,
        max_depth: t.max_depth,
        delta: t.delta,
        tau: t.tau,
        ..HoeffdingTreeConfig::default()
    }
}
