//! Streaming random patches: Hoeffding trees, each on its own random subset of the
//! features and its own Poisson-weighted sample, with drift-driven replacement.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::Classifier;
use crate::tree::rng::SplitMix64;
use crate::tree::{Adwin, AdwinConfig, HoeffdingTreeClassifier, HoeffdingTreeConfig};
use crate::tree::{MAX_CLASSES, TreeConfigError};

/// How each member's training data differs from the others'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingMethod {
    /// A random subset of the features and Poisson(λ) weights (random patches).
    Patches,
    /// A random subset of the features, every example once.
    Subspaces,
    /// Every feature, Poisson(λ) weights (online bagging).
    Resampling,
}

/// Parameters of [`SRPClassifier`]; the defaults are River 0.26.1's
/// `ensemble.SRPClassifier()` (with a fixed seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SRPConfig {
    /// Members. Default 10.
    pub n_models: NonZeroU32,
    /// Share of the features each member sees, in (0, 1]: `round(share × features)`
    /// of them, at least 2. Default 0.6.
    pub subspace_size: f64,
    pub training_method: TrainingMethod,
    /// Mean of the Poisson draw of each member's weight for an example; finite, in
    /// (0, 100]. Default 6.
    pub lambda: f64,
    /// Replaces a member (by its background member, or a fresh one on a new subset)
    /// when its error changes. Default ADWIN δ = 1e-5; `None` never replaces.
    pub drift_detector: Option<AdwinConfig>,
    /// Starts a background member on a new subset when its error changes. Default
    /// ADWIN δ = 1e-4; `None` replaces members by fresh ones.
    pub warning_detector: Option<AdwinConfig>,
    /// Votes weighted by each member's accuracy since it started. Default true.
    pub weighted_vote: bool,
    /// The members' trees. Default grace period 50, δ = 0.01 (River's SRP default).
    pub tree: HoeffdingTreeConfig,
    /// Seed of the subsets and the weights. Default 0.
    pub seed: u64,
}

impl Default for SRPConfig {
    fn default() -> Self {
        Self {
            n_models: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            subspace_size: 0.6,
            training_method: TrainingMethod::Patches,
            lambda: 6.0,
            drift_detector: Some(AdwinConfig {
                delta: 1e-5,
                ..AdwinConfig::default()
            }),
            warning_detector: Some(AdwinConfig {
                delta: 1e-4,
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

impl SRPConfig {
    /// Check the values; the error names the field.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), TreeConfigError> {
        if !(self.subspace_size > 0.0 && self.subspace_size <= 1.0) {
            return Err(TreeConfigError::OutOfRange {
                field: "subspace_size".to_owned(),
                reason: "must be in (0, 1]".to_owned(),
            });
        }
        if !(self.lambda > 0.0 && self.lambda.is_finite() && self.lambda <= 100.0) {
            return Err(TreeConfigError::OutOfRange {
                field: "lambda".to_owned(),
                reason: "must be in (0, 100]".to_owned(),
            });
        }
        for d in [&self.drift_detector, &self.warning_detector]
            .into_iter()
            .flatten()
        {
            d.validate()?;
        }
        self.tree.validate()
    }
}

/// One member: a tree on a subset of the features (`None`: all of them).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Patch {
    features: Option<Vec<usize>>,
    tree: HoeffdingTreeClassifier,
    /// Test-then-train hits and trials since the member started (its vote weight).
    correct: u64,
    seen: u64,
    drift: Option<Adwin>,
    warning: Option<Adwin>,
    /// Grown after a warning, on its own subset; replaces the member on a drift.
    background: Option<Box<Patch>>,
}

impl Patch {
    fn accuracy(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            self.correct as f64 / self.seen as f64
        }
    }
}

/// `x` as the member sees it (borrowed when it sees every feature).
fn project<'a>(x: &'a [f64], features: &Option<Vec<usize>>) -> std::borrow::Cow<'a, [f64]> {
    match features {
        None => std::borrow::Cow::Borrowed(x),
        Some(f) => f
            .iter()
            .map(|&i| x.get(i).copied().unwrap_or(0.0))
            .collect(),
    }
}

/// Streaming random patches (Gomes, Read & Bifet, "Streaming random patches for
/// evolving data stream classification", ICDM 2019) as River 0.26.1's
/// `ensemble.SRPClassifier` with its defaults: 10 Hoeffding trees (grace period 50,
/// δ = 0.01), each on its own random 60% of the features (drawn when the first example
/// arrives) and learning each example `k` times, `k` drawn from Poisson(6). Each
/// member's 0/1 error, measured after it learns, feeds an ADWIN warning detector
/// (δ = 1e-4), which starts a background member on a new random subset, and an ADWIN
/// drift detector (δ = 1e-5), which replaces the member by its background member (or a
/// fresh one on a new subset). Votes are the members' probabilities weighted by each
/// member's test-then-train accuracy since it started.
///
/// Unlike the adaptive random forest, whose trees draw a new feature subset at every
/// leaf, a member keeps one subset for its whole tree, and any learner could be a
/// member (here it is always a Hoeffding tree).
///
/// See the [module documentation](super) for the differences from River.
///
/// ```
/// use freshet_learn::Classifier;
/// use freshet_learn::ensemble::SRPClassifier;
/// use rand::{Rng, SeedableRng};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut srp = SRPClassifier::default();
/// let mut correct_after_flip = 0;
/// for t in 0..6000 {
///     let x: Vec<f64> = (0..4).map(|_| rng.random::<f64>()).collect();
///     // The concept flips half way.
///     let y = usize::from((x[0] + x[1] > 1.0) == (t < 3000));
///     if t >= 4500 && srp.predict_one(&x) == Some(y) {
///         correct_after_flip += 1;
///     }
///     srp.learn_one(&x, y);
/// }
/// assert!(correct_after_flip > 1300, "{correct_after_flip}");
/// assert!(srp.n_drifts_detected() >= 1);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SRPClassifier {
    config: SRPConfig,
    /// Empty until the first example says how many features there are.
    members: Vec<Patch>,
    n_features: usize,
    /// Features per member (`None`: all, when the subset would be all of them).
    subset: Option<usize>,
    rng: SplitMix64,
    n_classes: usize,
    n_warnings: u64,
    n_drifts: u64,
}

impl Default for SRPClassifier {
    fn default() -> Self {
        Self::with_valid_config(SRPConfig::default())
    }
}

impl SRPClassifier {
    /// An empty ensemble with the given parameters.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn new(config: SRPConfig) -> Result<Self, TreeConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    fn with_valid_config(config: SRPConfig) -> Self {
        Self {
            rng: SplitMix64::new(config.seed),
            config,
            members: Vec::new(),
            n_features: 0,
            subset: None,
            n_classes: 0,
            n_warnings: 0,
            n_drifts: 0,
        }
    }

    /// The parameters.
    pub fn config(&self) -> &SRPConfig {
        &self.config
    }

    /// Each member's feature indices (all of them for `None`), in order.
    pub fn subspaces(&self) -> Vec<Option<Vec<usize>>> {
        self.members.iter().map(|m| m.features.clone()).collect()
    }

    /// Each member's accuracy since it started (its vote weight).
    pub fn accuracies(&self) -> Vec<f64> {
        self.members.iter().map(Patch::accuracy).collect()
    }

    /// Warnings so far (each started a background member).
    pub fn n_warnings_detected(&self) -> u64 {
        self.n_warnings
    }

    /// Drifts so far (each replaced a member).
    pub fn n_drifts_detected(&self) -> u64 {
        self.n_drifts
    }

    /// `k` distinct feature indices, sorted (partial Fisher–Yates).
    fn draw_subset(rng: &mut SplitMix64, n: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..n).collect();
        for i in 0..k.min(n) {
            let j = i + (rng.next_u64() % (n - i) as u64) as usize;
            all.swap(i, j);
        }
        let mut out: Vec<usize> = all.into_iter().take(k).collect();
        out.sort_unstable();
        out
    }

    fn fresh(&mut self) -> Patch {
        let features = self
            .subset
            .map(|k| Self::draw_subset(&mut self.rng, self.n_features, k));
        Patch {
            features,
            tree: HoeffdingTreeClassifier::with_valid_config(self.config.tree.clone()),
            correct: 0,
            seen: 0,
            drift: self
                .config
                .drift_detector
                .clone()
                .map(Adwin::with_valid_config),
            warning: self
                .config
                .warning_detector
                .clone()
                .map(Adwin::with_valid_config),
            background: None,
        }
    }

    /// The members, once the number of features is known: distinct subsets where
    /// there are enough of them.
    fn start(&mut self, n_features: usize) {
        self.n_features = n_features;
        let share = self.config.subspace_size;
        let mut k = (n_features as f64 * share).round() as usize;
        if k < 2 {
            k += 1;
        }
        self.subset =
            (self.config.training_method != TrainingMethod::Resampling && k > 0 && k < n_features)
                .then_some(k);
        for _ in 0..self.config.n_models.get() {
            let mut member = self.fresh();
            // A few redraws to avoid two members on the same subset.
            for _ in 0..8 {
                if !self.members.iter().any(|m| m.features == member.features) {
                    break;
                }
                member = self.fresh();
            }
            self.members.push(member);
        }
    }
}

impl Classifier for SRPClassifier {
    /// Every member is scored on `x` (its vote weight), then learns it `k` times (`k`
    /// from Poisson(λ); once for `subspaces`; 0 skips it), its background member too;
    /// then its error on `x` feeds its detectors. Labels at or above [`MAX_CLASSES`]
    /// are ignored.
    fn learn_one(&mut self, x: &[f64], y: usize) {
        if y >= MAX_CLASSES {
            return;
        }
        if self.members.is_empty() {
            self.start(x.len());
        }
        self.n_classes = self.n_classes.max(y + 1);
        let mut members = std::mem::take(&mut self.members);
        for m in &mut members {
            let xs = project(x, &m.features);
            let hit = m.tree.predict_one(&xs) == Some(y);
            m.seen += 1;
            m.correct += u64::from(hit);
            let k = match self.config.training_method {
                TrainingMethod::Subspaces => 1,
                _ => self.rng.poisson(self.config.lambda),
            };
            if k == 0 {
                continue;
            }
            // k copies of weight 1, as River does (see leveraging bagging).
            for _ in 0..k {
                m.tree.learn_weighted(&xs, y, 1.0);
            }
            if let Some(b) = &mut m.background {
                let xb = project(x, &b.features);
                for _ in 0..k {
                    b.tree.learn_weighted(&xb, y, 1.0);
                }
            }
            // As River: the error after learning (see leveraging bagging).
            let error = if m.tree.predict_one(&xs) == Some(y) {
                0.0
            } else {
                1.0
            };
            if let Some(w) = &mut m.warning
                && w.update(error)
            {
                *w = Adwin::with_valid_config(w.config().clone());
                self.n_warnings += 1;
                m.background = Some(Box::new(self.fresh()));
            }
            if let Some(d) = &mut m.drift
                && d.update(error)
            {
                self.n_drifts += 1;
                *m = match m.background.take() {
                    Some(b) => *b,
                    None => self.fresh(),
                };
            }
        }
        self.members = members;
    }

    /// The members' probabilities weighted by their accuracies, normalised. Members
    /// not scored yet (accuracy 0) do not vote unless no member has a positive weight,
    /// in which case every member votes equally; uniform when none has learned
    /// anything; empty before any learning.
    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        if self.n_classes == 0 {
            return Vec::new();
        }
        let probas: Vec<(f64, Vec<f64>)> = self
            .members
            .iter()
            .map(|m| {
                (
                    m.accuracy(),
                    m.tree.predict_proba_one(&project(x, &m.features)),
                )
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        super::vote::vote(&probas, self.n_classes, self.config.weighted_vote)
    }
}
