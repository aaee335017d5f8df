//! The greedy model selector: every member learns every example, the one with the
//! lowest recent prequential error answers.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::Classifier;
use crate::tree::{MAX_CLASSES, TreeConfigError};

/// Parameters of [`ModelSelector`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectorConfig {
    /// Memory of the recent error, in examples: each member's error is an
    /// exponentially weighted mean of its 0/1 test-then-train errors in which the
    /// newest example has weight `1 / window` (a half-life of about `0.69 · window`
    /// examples). Default 500.
    pub window: NonZeroU32,
}

impl Default for SelectorConfig {
    fn default() -> Self {
        Self {
            window: NonZeroU32::new(500).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// One member with its recent error: `error_sum / weight` is the exponentially
/// weighted mean of its 0/1 errors, corrected for the start (the weights of the
/// examples seen so far add up to `weight`, below 1 at first).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Scored<M> {
    model: M,
    error_sum: f64,
    weight: f64,
}

impl<M> Scored<M> {
    /// The recent error; 1 before the member has been scored (it has been right about
    /// nothing yet).
    fn error(&self) -> f64 {
        if self.weight > 0.0 {
            self.error_sum / self.weight
        } else {
            1.0
        }
    }
}

/// A greedy selector over online classifiers, in the manner of River's
/// `model_selection.GreedyRegressor` (River 0.26.1 has no classifier counterpart):
/// each example is first predicted by every member, which scores it, then learned by
/// every member (test-then-train); predictions come from the member whose recent
/// error is lowest (ties: the first). Unlike River's selector, which keeps the best
/// metric since the start, the error is recent ([`SelectorConfig::window`]), so after
/// a change the selector moves to the member that copes best with the new concept.
///
/// A member that answers nothing yet (it has learned nothing) counts as wrong. Labels
/// at or above [`MAX_CLASSES`] are ignored. Predicting never mutates; the selector
/// serialises with its members and resumes exactly.
///
/// ```
/// use freshet_learn::Classifier;
/// use freshet_learn::baseline::{MajorityClass, NoChange};
/// use freshet_learn::ensemble::{ModelSelector, SelectorConfig};
///
/// #[derive(Debug, Clone)]
/// enum Member {
///     Majority(MajorityClass),
///     Last(NoChange),
/// }
/// impl Classifier for Member {
///     fn learn_one(&mut self, x: &[f64], y: usize) {
///         match self {
///             Member::Majority(m) => m.learn_one(x, y),
///             Member::Last(m) => m.learn_one(x, y),
///         }
///     }
///     fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
///         match self {
///             Member::Majority(m) => m.predict_proba_one(x),
///             Member::Last(m) => m.predict_proba_one(x),
///         }
///     }
/// }
///
/// let members = vec![
///     Member::Majority(MajorityClass::default()),
///     Member::Last(NoChange::default()),
/// ];
/// let mut selector = ModelSelector::new(members, SelectorConfig::default()).unwrap();
/// // Long runs of one label, then the other: the last label is right far more often.
/// for t in 0..2000 {
///     selector.learn_one(&[], usize::from((t / 100) % 2 == 1));
/// }
/// assert_eq!(selector.serving(), 1);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSelector<M> {
    config: SelectorConfig,
    members: Vec<Scored<M>>,
    /// The member answering now.
    serving: usize,
    /// Times the serving member changed.
    n_switches: u64,
}

impl<M: Classifier> ModelSelector<M> {
    /// A selector over `members`, in order of preference on ties.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] for an empty list of members.
    pub fn new(members: Vec<M>, config: SelectorConfig) -> Result<Self, TreeConfigError> {
        if members.is_empty() {
            return Err(TreeConfigError::OutOfRange {
                field: "members".to_owned(),
                reason: "must hold at least one learner".to_owned(),
            });
        }
        Ok(Self {
            config,
            members: members
                .into_iter()
                .map(|model| Scored {
                    model,
                    error_sum: 0.0,
                    weight: 0.0,
                })
                .collect(),
            serving: 0,
            n_switches: 0,
        })
    }

    /// The parameters.
    pub fn config(&self) -> &SelectorConfig {
        &self.config
    }

    /// The members, in order.
    pub fn members(&self) -> impl Iterator<Item = &M> {
        self.members.iter().map(|m| &m.model)
    }

    /// Index of the member answering now.
    pub fn serving(&self) -> usize {
        self.serving
    }

    /// Each member's recent test-then-train error, in order (1 before any example).
    pub fn recent_errors(&self) -> Vec<f64> {
        self.members.iter().map(Scored::error).collect()
    }

    /// Times the serving member changed so far.
    pub fn n_switches(&self) -> u64 {
        self.n_switches
    }
}

impl<M: Classifier> Classifier for ModelSelector<M> {
    /// Score every member on `x`, then teach it `x`, then serve the member with the
    /// lowest recent error (ties: the first).
    fn learn_one(&mut self, x: &[f64], y: usize) {
        if y >= MAX_CLASSES {
            return;
        }
        let alpha = 1.0 / f64::from(self.config.window.get());
        for member in &mut self.members {
            let error = if member.model.predict_one(x) == Some(y) {
                0.0
            } else {
                1.0
            };
            member.error_sum = (1.0 - alpha) * member.error_sum + alpha * error;
            member.weight = (1.0 - alpha) * member.weight + alpha;
            member.model.learn_one(x, y);
        }
        let mut best: Option<(usize, f64)> = None;
        for (i, member) in self.members.iter().enumerate() {
            let e = member.error();
            if best.is_none_or(|(_, b)| e < b) {
                best = Some((i, e));
            }
        }
        if let Some((i, _)) = best
            && i != self.serving
        {
            self.serving = i;
            self.n_switches += 1;
        }
    }

    /// The serving member's probabilities.
    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        self.members
            .get(self.serving)
            .map(|m| m.model.predict_proba_one(x))
            .unwrap_or_default()
    }
}
