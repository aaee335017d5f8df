//! The learner inside a model: one enum over the crate's learners, built from the
//! spec's [`LearnerSpec`] and serialised with the model.
//!
//! Every learner but one is online: it learns one example at a time. Gradient-boosted
//! trees are a batch learner ([`LearnerState::is_batch`]): the model refits them on a
//! window ([`Model::fit_window`](super::Model::fit_window)) and refuses to teach them one
//! record at a time, because a booster cannot be updated by one row and silently
//! ignoring it would make a model look trained when it is not.

use super::ModelError;
use crate::baseline::{MajorityClass, NoChange};
use crate::boosting::{
    GbtError, GbtParams, GradientBoostedTrees, Loss, WindowedBooster, WindowedBoosterConfig,
};
use crate::ensemble::{
    LeveragingBaggingClassifier, LeveragingBaggingConfig, ModelSelector, SRPClassifier, SRPConfig,
    SelectorConfig,
};
use crate::forest::{ARFClassifier, ARFConfig};
use crate::linear::{LinearConfig, LinearRegression, LogisticRegression, Optimizer};
use crate::naive_bayes::GaussianNB;
use crate::tree::{
    HoeffdingAdaptiveTreeClassifier, HoeffdingAdaptiveTreeConfig, HoeffdingTreeClassifier,
    HoeffdingTreeConfig,
};
use crate::{Classifier, Regressor};
use freshet_core::Task;
use freshet_core::model_spec::{LearnerSpec, OptimizerKind, TreeSpec};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

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
    AdaptiveRandomForest(ARFClassifier),
    LeveragingBagging(LeveragingBaggingClassifier),
    StreamingRandomPatches(SRPClassifier),
    /// Online classifiers learning side by side; the one with the lowest recent error
    /// answers.
    Selector(ModelSelector<SelectorMember>),
    /// Batch: fitted on a window, never one record at a time.
    Gbt(GbtLearner),
    /// Boosted trees refitted online on the newest rows (a classifier).
    WindowedGbt(WindowedBooster),
}

/// One learner of a model's [`ModelSelector`]: always an online classifier (the
/// selector is built only from those), answering through the [`Classifier`] contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SelectorMember(LearnerState);

impl SelectorMember {
    /// The member's learner.
    pub fn learner(&self) -> &LearnerState {
        &self.0
    }
}

impl Classifier for SelectorMember {
    fn learn_one(&mut self, x: &[f64], y: usize) {
        if let Some(c) = self.0.classifier_mut() {
            c.learn_one(x, y);
        }
    }

    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        self.0
            .classifier()
            .map(|c| c.predict_proba_one(x))
            .unwrap_or_default()
    }
}

impl ModelSelector<SelectorMember> {
    /// Each member's `type` in the spec, in order.
    pub fn member_names(&self) -> Vec<&'static str> {
        self.members().map(|m| m.learner().name()).collect()
    }
}

/// Gradient-boosted trees inside a model: the parameters (with the loss the model's
/// task implies) and the ensemble of the last fit, `None` until the first window.
///
/// It answers through the [`Classifier`] or [`Regressor`] contract, as the loss makes
/// it one or the other, so scoring, profiles and evaluation treat it like any learner;
/// before the first fit it answers like an online learner that has learnt nothing
/// (no probabilities; 0 for regression). Its `learn_one` does nothing: the model never
/// calls it ([`Model::learn_one`](super::Model::learn_one) refuses batch learners).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GbtLearner {
    params: GbtParams,
    fitted: Option<GradientBoostedTrees>,
}

impl GbtLearner {
    /// The parameters every fit uses.
    pub fn params(&self) -> &GbtParams {
        &self.params
    }

    /// The ensemble of the last fit; `None` before the first.
    pub fn fitted(&self) -> Option<&GradientBoostedTrees> {
        self.fitted.as_ref()
    }

    /// Replace the ensemble by one fitted on `xs`, `ys` (class indices as floats for
    /// log loss, targets for squared error); on an error the old ensemble stays.
    pub(super) fn fit(&mut self, xs: &[Vec<f64>], ys: &[f64]) -> Result<(), ModelError> {
        let fitted = GradientBoostedTrees::fit(self.params.clone(), xs, ys, None).map_err(|e| {
            ModelError::Fit {
                learner: "gbt",
                reason: fit_reason(&e),
            }
        })?;
        self.fitted = Some(fitted);
        Ok(())
    }
}

impl Classifier for GbtLearner {
    /// Nothing: a booster learns a window at once, through the model's `fit_window`.
    fn learn_one(&mut self, _x: &[f64], _y: usize) {}

    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        self.fitted
            .as_ref()
            .map(|g| g.predict_proba_one(x))
            .unwrap_or_default()
    }
}

impl Regressor for GbtLearner {
    /// Nothing: a booster learns a window at once, through the model's `fit_window`.
    fn learn_one(&mut self, _x: &[f64], _y: f64) {}

    fn predict_one(&self, x: &[f64]) -> f64 {
        self.fitted.as_ref().map_or(0.0, |g| g.predict_value(x))
    }
}

/// Why the booster refused a window, without any label value (labels may be
/// sensitive, and the row numbers would count only the labelled rows anyway).
fn fit_reason(e: &GbtError) -> String {
    match e {
        GbtError::InvalidClass { max, .. } => {
            format!("gradient-boosted trees learn at most {max} classes")
        }
        GbtError::NonFiniteLabel { .. } => "a label is not finite".to_owned(),
        GbtError::Validation(inner) => format!("validation set: {}", fit_reason(inner)),
        other => other.to_string(),
    }
}

impl LearnerState {
    /// A fresh learner for the spec, for a model of `task` (which picks the booster's
    /// loss: log loss for classification, squared error for regression).
    ///
    /// # Errors
    /// [`ModelError::LearnerParams`] naming the parameter the learner rejects.
    pub fn new(spec: &LearnerSpec, task: Task) -> Result<Self, ModelError> {
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
            LearnerSpec::AdaptiveRandomForest { n_models, seed } => {
                let n_models = ensemble_size(spec, *n_models)?;
                // Everything the spec does not carry keeps River's defaults.
                let config = ARFConfig {
                    n_models,
                    seed: *seed,
                    ..ARFConfig::default()
                };
                LearnerState::AdaptiveRandomForest(ARFClassifier::new(config).map_err(params)?)
            }
            LearnerSpec::LeveragingBagging { n_models, seed } => {
                let n_models = ensemble_size(spec, *n_models)?;
                // Everything the spec does not carry keeps River's defaults.
                let config = LeveragingBaggingConfig {
                    n_models,
                    seed: *seed,
                    ..LeveragingBaggingConfig::default()
                };
                LearnerState::LeveragingBagging(
                    LeveragingBaggingClassifier::new(config).map_err(params)?,
                )
            }
            LearnerSpec::StreamingRandomPatches {
                n_models,
                seed,
                subspace_size,
            } => {
                let n_models = ensemble_size(spec, *n_models)?;
                // Everything the spec does not carry keeps River's defaults.
                let config = SRPConfig {
                    n_models,
                    seed: *seed,
                    subspace_size: *subspace_size,
                    ..SRPConfig::default()
                };
                LearnerState::StreamingRandomPatches(SRPClassifier::new(config).map_err(params)?)
            }
            LearnerSpec::Selector { members, window } => {
                let window = NonZeroU32::new(*window).ok_or_else(|| ModelError::LearnerParams {
                    learner: spec.name(),
                    reason: "window: must be at least 1".to_owned(),
                })?;
                let specs = members
                    .clone()
                    .unwrap_or_else(LearnerSpec::default_selector_members);
                let mut built = Vec::with_capacity(specs.len());
                for (i, member) in specs.iter().enumerate() {
                    let state = LearnerState::new(member, task)?;
                    if state.is_batch() || state.classifier().is_none() {
                        return Err(ModelError::LearnerParams {
                            learner: spec.name(),
                            reason: format!(
                                "members[{i}]: {} is not an online classifier",
                                state.name()
                            ),
                        });
                    }
                    built.push(SelectorMember(state));
                }
                LearnerState::Selector(
                    ModelSelector::new(built, SelectorConfig { window }).map_err(params)?,
                )
            }
            LearnerSpec::WindowedGbt {
                window,
                refit_every,
                n_trees,
                max_depth,
            } => {
                let defaults = WindowedBoosterConfig::default();
                let config = WindowedBoosterConfig {
                    params: GbtParams {
                        n_trees: n_trees.get(),
                        max_depth: max_depth.get(),
                        ..defaults.params
                    },
                    window: *window as usize,
                    refit_every: *refit_every as usize,
                    min_rows: defaults.min_rows.min(*window as usize),
                    adwin: defaults.adwin,
                };
                LearnerState::WindowedGbt(WindowedBooster::new(config).map_err(|e| {
                    ModelError::LearnerParams {
                        learner: spec.name(),
                        reason: e.to_string(),
                    }
                })?)
            }
            LearnerSpec::Gbt {
                n_trees,
                learning_rate,
                max_depth,
                max_bins,
            } => {
                let params = GbtParams {
                    loss: if task.is_classification() {
                        Loss::LogLoss
                    } else {
                        Loss::SquaredError
                    },
                    n_trees: n_trees.get(),
                    learning_rate: *learning_rate,
                    max_depth: max_depth.get(),
                    max_bins: *max_bins,
                    ..GbtParams::default()
                };
                // Checked now, so a bad spec fails when the model is built, not after
                // a window has been read for it.
                params.validate().map_err(|e| ModelError::LearnerParams {
                    learner: spec.name(),
                    reason: e.to_string(),
                })?;
                LearnerState::Gbt(GbtLearner {
                    params,
                    fitted: None,
                })
            }
        })
    }

    /// Whether the learner is trained in batch on a window rather than one example at
    /// a time.
    pub fn is_batch(&self) -> bool {
        matches!(self, LearnerState::Gbt(_))
    }

    /// The batch learner, for fitting on a window; `None` for online learners.
    pub(super) fn batch_mut(&mut self) -> Option<&mut GbtLearner> {
        match self {
            LearnerState::Gbt(g) => Some(g),
            _ => None,
        }
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
            LearnerState::AdaptiveRandomForest(_) => "adaptive_random_forest",
            LearnerState::LeveragingBagging(_) => "leveraging_bagging",
            LearnerState::StreamingRandomPatches(_) => "streaming_random_patches",
            LearnerState::Selector(_) => "selector",
            LearnerState::Gbt(_) => "gbt",
            LearnerState::WindowedGbt(_) => "windowed_gbt",
        }
    }

    /// The learner as a classifier; `None` for regressors (a squared-error booster is
    /// one).
    pub fn classifier(&self) -> Option<&dyn Classifier> {
        Some(match self {
            LearnerState::LogisticRegression(m) => m,
            LearnerState::GaussianNb(m) => m,
            LearnerState::HoeffdingTree(m) => m,
            LearnerState::HoeffdingAdaptiveTree(m) => m,
            LearnerState::Majority(m) => m,
            LearnerState::NoChange(m) => m,
            LearnerState::AdaptiveRandomForest(m) => m,
            LearnerState::LeveragingBagging(m) => m,
            LearnerState::StreamingRandomPatches(m) => m,
            LearnerState::Selector(m) => m,
            LearnerState::WindowedGbt(m) => m,
            LearnerState::Gbt(m) if m.params.loss == Loss::LogLoss => m,
            LearnerState::Gbt(_) | LearnerState::LinearRegression(_) => return None,
        })
    }

    /// The online classifier to teach one example; `None` for regressors and for the
    /// batch learner, which only learns through a window.
    pub(super) fn classifier_mut(&mut self) -> Option<&mut dyn Classifier> {
        Some(match self {
            LearnerState::LogisticRegression(m) => m,
            LearnerState::GaussianNb(m) => m,
            LearnerState::HoeffdingTree(m) => m,
            LearnerState::HoeffdingAdaptiveTree(m) => m,
            LearnerState::Majority(m) => m,
            LearnerState::NoChange(m) => m,
            LearnerState::AdaptiveRandomForest(m) => m,
            LearnerState::LeveragingBagging(m) => m,
            LearnerState::StreamingRandomPatches(m) => m,
            LearnerState::Selector(m) => m,
            LearnerState::WindowedGbt(m) => m,
            LearnerState::Gbt(_) | LearnerState::LinearRegression(_) => return None,
        })
    }

    /// The learner as a regressor; `None` for classifiers.
    pub fn regressor(&self) -> Option<&dyn Regressor> {
        match self {
            LearnerState::LinearRegression(m) => Some(m),
            LearnerState::Gbt(m) if m.params.loss == Loss::SquaredError => Some(m),
            _ => None,
        }
    }

    /// The online regressor to teach one example; `None` for classifiers and for the
    /// batch learner.
    pub(super) fn regressor_mut(&mut self) -> Option<&mut dyn Regressor> {
        match self {
            LearnerState::LinearRegression(m) => Some(m),
            _ => None,
        }
    }
}

/// The spec's `lr` replaces the optimizer's step size (FTRL's `alpha`); everything
/// else keeps the learner's defaults.
/// A spec's `n_models` as an ensemble takes it.
fn ensemble_size(
    spec: &LearnerSpec,
    n_models: std::num::NonZeroUsize,
) -> Result<NonZeroU32, ModelError> {
    u32::try_from(n_models.get())
        .ok()
        .and_then(NonZeroU32::new)
        .ok_or_else(|| ModelError::LearnerParams {
            learner: spec.name(),
            reason: format!("n_models: must be at most {}", u32::MAX),
        })
}

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
