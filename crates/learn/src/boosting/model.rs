//! The fitted ensemble: the boosting loop that builds it, and prediction.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::binning::BinMapper;
use super::data::{Columns, check_labels};
use super::grow::Grower;
use super::histogram::Layout;
use super::split::Rules;
use super::tree::{Node, Tree};
use super::{GbtError, GbtParams, Loss, loss};
use crate::Classifier;

/// An optional held-out set for early stopping: rows and their labels.
pub type ValidSet<'a> = (&'a [Vec<f64>], &'a [f64]);

/// A fitted histogram gradient-boosted trees model.
///
/// It is a value: fitting returns a new one, and nothing mutates it afterwards, so it
/// can be cloned, serialised into a model artifact and scored from many threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientBoostedTrees {
    params: GbtParams,
    n_features: usize,
    /// Classes of a log-loss model (at least 2); 0 for regression.
    n_classes: usize,
    /// Starting raw score of each output.
    base: Vec<f64>,
    /// How the training window was binned (kept for reproducibility; serving uses
    /// the raw thresholds in the trees).
    bins: BinMapper,
    /// One tree per output per round.
    rounds: Vec<Vec<Tree>>,
    /// Mean validation loss after each round, when a validation set was given.
    valid_loss: Vec<f64>,
}

impl GradientBoostedTrees {
    /// Fits on row-major data. `ys` holds class indices (`0.0`, `1.0`, …) for
    /// [`Loss::LogLoss`] and values for [`Loss::SquaredError`]; `NaN` features are
    /// missing values. With `valid`, boosting stops once the validation loss has not
    /// improved for `early_stopping_rounds` rounds and keeps the best round.
    ///
    /// ```
    /// use freshet_learn::boosting::{GbtParams, GradientBoostedTrees, Loss};
    ///
    /// // y = 2x on a window, validated on the rows after it.
    /// let xs: Vec<Vec<f64>> = (0..300).map(|i| vec![f64::from(i) / 100.0]).collect();
    /// let ys: Vec<f64> = xs.iter().map(|x| 2.0 * x[0]).collect();
    /// let (train, valid) = (0..240, 240..300);
    /// let params = GbtParams { loss: Loss::SquaredError, n_trees: 500, ..GbtParams::default() };
    /// let model = GradientBoostedTrees::fit(
    ///     params,
    ///     &xs[train.clone()],
    ///     &ys[train],
    ///     Some((&xs[valid.clone()], &ys[valid])),
    /// )?;
    /// // Beyond the window the trees extrapolate flat, so the validation loss soon
    /// // stops improving and boosting stops early.
    /// assert!(model.n_rounds() < 500);
    /// assert!((model.predict_value(&[1.0]) - 2.0).abs() < 0.1);
    /// # Ok::<(), freshet_learn::boosting::GbtError>(())
    /// ```
    pub fn fit(
        params: GbtParams,
        xs: &[Vec<f64>],
        ys: &[f64],
        valid: Option<ValidSet<'_>>,
    ) -> Result<Self, GbtError> {
        params.validate()?;
        if xs.is_empty() {
            return Err(GbtError::EmptyData);
        }
        let columns = Columns::from_rows(xs)?;
        Self::fit_columns(params, &columns, ys, valid)
    }

    /// Fits on column-major data (what a columnar window from the lake gives).
    pub fn fit_columns(
        params: GbtParams,
        columns: &Columns,
        ys: &[f64],
        valid: Option<ValidSet<'_>>,
    ) -> Result<Self, GbtError> {
        params.validate()?;
        let n_classes = check_labels(ys, columns.n_rows(), params.loss)?;
        let n_features = columns.n_features();
        if let Some((vx, vy)) = valid {
            check_valid(vx, vy, n_features, n_classes, params.loss)
                .map_err(|e| GbtError::Validation(Box::new(e)))?;
        }
        let bins = BinMapper::fit(columns, params.max_bins);
        let mut model = Self {
            n_features,
            n_classes,
            base: loss::base_scores(params.loss, n_classes, ys),
            rounds: Vec::new(),
            valid_loss: Vec::new(),
            bins,
            params,
        };
        model.boost(columns, ys, valid);
        Ok(model)
    }

    /// The boosting loop: each round fits one tree per output to the current
    /// gradients, on the round's row sample.
    fn boost(&mut self, columns: &Columns, ys: &[f64], valid: Option<ValidSet<'_>>) {
        let p = &self.params;
        let n = columns.n_rows();
        let n_out = self.base.len();
        let binned = self.bins.transform(columns);
        let layout = Layout::new(&self.bins);
        let grower = Grower {
            bins: &self.bins,
            binned: &binned,
            layout: &layout,
            rules: Rules::new(p),
            learning_rate: p.learning_rate,
            max_depth: p.max_depth,
            max_leaves: p.max_leaves,
        };
        let mut raw: Vec<Vec<f64>> = self.base.iter().map(|&b| vec![b; n]).collect();
        let mut grad = vec![vec![0.0; n]; n_out];
        let mut hess = vec![vec![0.0; n]; n_out];
        let mut valid_raw: Option<Vec<Vec<f64>>> =
            valid.map(|(vx, _)| self.base.iter().map(|&b| vec![b; vx.len()]).collect());
        let sample_size = ((n as f64 * p.subsample).ceil() as usize).clamp(1, n);
        let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
        let mut rounds = Vec::with_capacity(p.n_trees);
        let mut valid_loss = Vec::new();
        let mut best = (f64::INFINITY, 0);
        for round in 0..p.n_trees {
            let rows = if sample_size == n {
                (0..n).collect()
            } else {
                let mut r = rand::seq::index::sample(&mut rng, n, sample_size).into_vec();
                r.sort_unstable();
                r
            };
            loss::gradients(p.loss, ys, &raw, &rows, &mut grad, &mut hess);
            let trees: Vec<Tree> = (0..n_out)
                .map(|k| grower.grow(rows.clone(), &grad[k], &hess[k]))
                .collect();
            for (k, tree) in trees.iter().enumerate() {
                for (i, r) in raw[k].iter_mut().enumerate() {
                    *r += tree.predict_binned(&self.bins, &binned, i);
                }
            }
            rounds.push(trees);
            let (Some((vx, vy)), Some(vraw)) = (valid, valid_raw.as_mut()) else {
                continue;
            };
            for (k, tree) in rounds[round].iter().enumerate() {
                for (x, r) in vx.iter().zip(vraw[k].iter_mut()) {
                    *r += tree.predict(x);
                }
            }
            let l = loss::mean_loss(p.loss, vy, vraw);
            valid_loss.push(l);
            if l < best.0 {
                best = (l, round);
            } else if round - best.1 >= p.early_stopping_rounds {
                break;
            }
        }
        if valid.is_some() {
            rounds.truncate(best.1 + 1);
        }
        self.rounds = rounds;
        self.valid_loss = valid_loss;
    }

    /// Raw scores, one per output: the regression estimate, the log-odds of class 1,
    /// or one softmax logit per class.
    pub fn predict_raw(&self, x: &[f64]) -> Vec<f64> {
        let mut out = self.base.clone();
        for trees in &self.rounds {
            for (o, tree) in out.iter_mut().zip(trees) {
                *o += tree.predict(x);
            }
        }
        out
    }

    /// Class probabilities, indexed by class (binary: `[1 − p, p]`); empty for a
    /// regression model. Missing or absent features follow each split's learned
    /// missing direction.
    pub fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        match self.params.loss {
            Loss::LogLoss => loss::probabilities(&self.predict_raw(x)),
            Loss::SquaredError => Vec::new(),
        }
    }

    /// The most probable class (ties: the lowest); `None` for a regression model.
    pub fn predict_one(&self, x: &[f64]) -> Option<usize> {
        crate::argmax(&self.predict_proba_one(x))
    }

    /// A single number per row: the estimate for regression, the probability of
    /// class 1 for classification (the score a binary decision thresholds).
    pub fn predict_value(&self, x: &[f64]) -> f64 {
        match self.params.loss {
            Loss::SquaredError => self.predict_raw(x).first().copied().unwrap_or(0.0),
            Loss::LogLoss => self.predict_proba_one(x).get(1).copied().unwrap_or(0.0),
        }
    }

    pub fn params(&self) -> &GbtParams {
        &self.params
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Classes of a log-loss model; 0 for regression.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Rounds kept (fewer than `n_trees` after early stopping).
    pub fn n_rounds(&self) -> usize {
        self.rounds.len()
    }

    /// The trees of each round (one per output).
    pub fn rounds(&self) -> &[Vec<Tree>] {
        &self.rounds
    }

    /// Mean validation loss after each round trained (empty without a validation set).
    pub fn valid_loss(&self) -> &[f64] {
        &self.valid_loss
    }

    /// Total split gain per feature, normalised to sum to 1 (all zeros when no tree
    /// split): which inputs the model leans on, for model cards and drift triage.
    pub fn feature_importances(&self) -> Vec<f64> {
        let mut gains = vec![0.0; self.n_features];
        for node in self.rounds.iter().flatten().flat_map(Tree::nodes) {
            let Node::Split { feature, gain, .. } = node else {
                continue;
            };
            if let Some(g) = gains.get_mut(*feature) {
                *g += gain;
            }
        }
        let total: f64 = gains.iter().sum();
        if total > 0.0 {
            gains.iter_mut().for_each(|g| *g /= total);
        }
        gains
    }

    /// The bin edges learned from the training window.
    pub fn bins(&self) -> &BinMapper {
        &self.bins
    }
}

/// The validation set must have the training set's width, finite labels and, for
/// classification, only classes the training window produced outputs for.
fn check_valid(
    xs: &[Vec<f64>],
    ys: &[f64],
    n_features: usize,
    n_classes: usize,
    loss: Loss,
) -> Result<(), GbtError> {
    check_labels(ys, xs.len(), loss)?;
    for (row, x) in xs.iter().enumerate() {
        if x.len() != n_features {
            return Err(GbtError::RaggedRow {
                row,
                len: x.len(),
                expected: n_features,
            });
        }
    }
    let unseen = ys.iter().enumerate().find(|(_, y)| **y >= n_classes as f64);
    if let (Loss::LogLoss, Some((row, &value))) = (loss, unseen) {
        return Err(GbtError::InvalidClass {
            row,
            value,
            max: n_classes,
        });
    }
    Ok(())
}

/// A batch model behind the online contract, so the evaluation loop, shadow and
/// canary serve it like any other classifier. It is frozen between retrains:
/// `learn_one` (and so `learn_many`) does nothing. Retraining is an explicit
/// [`GradientBoostedTrees::fit`] on the window, owned by the caller, which swaps the
/// new model in; buffering rows inside the model would hide an unbounded memory cost
/// and a full refit on some unlucky `learn_one` call on the serving path.
impl Classifier for GradientBoostedTrees {
    fn learn_one(&mut self, _x: &[f64], _y: usize) {}

    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        GradientBoostedTrees::predict_proba_one(self, x)
    }

    fn predict_one(&self, x: &[f64]) -> Option<usize> {
        GradientBoostedTrees::predict_one(self, x)
    }
}
