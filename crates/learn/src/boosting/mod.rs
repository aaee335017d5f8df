//! Histogram gradient-boosted trees, the batch learner for periodic retraining on a window.
//!
//! Binary classification (log loss), multiclass (softmax log loss) and regression
//! (squared error). [`GradientBoostedTrees::fit`] bins each feature into at most
//! `max_bins` quantile bins learned from the window plus one bin for missing values
//! (`NaN`), then boosts trees grown best-first on gradient/hessian histograms, with
//! histogram subtraction (build the smaller child, derive its sibling from the
//! parent), a learned direction for missing values at every split, L2-regularised
//! second-order leaf values, optional seeded row subsampling and early stopping on an
//! optional validation set. Trees keep raw thresholds, so serving needs no binning;
//! the bin edges stay in the model for reproducibility.
//!
//! # Why our own implementation, not `forust-ml`
//!
//! The issue allowed a compatible crate if one is good enough. `forust-ml` 0.8.0 was
//! evaluated (its published source and docs) and declined:
//!
//! - Licence: Apache-2.0, but declared through `license-file`, so its crates.io
//!   metadata reads "unknown" and licence checkers need a manual exception.
//! - Features: missing values are handled (a learned direction, or a missing branch)
//!   and `GradientBooster` is serde-serialisable, with early stopping and
//!   subsampling. But it has log loss and squared loss only (no multiclass), its
//!   model is not `Clone`, hyper-parameters are `f32`, and data comes in as its own
//!   borrowed column-major `Matrix`.
//! - Weight: it pulls a second `rand` (0.8) and `thiserror` (1.x) beside ours, and
//!   `rayon`, which builds its own thread pool; training here should run on a
//!   blocking pool we size, on a machine shared with serving.
//! - Robustness: about twenty `unwrap`/`expect`/`panic!` sites outside its tests,
//!   among them float sorts by `partial_cmp(..).unwrap()` and a panic when a `NaN`
//!   meets a non-NaN missing marker; we want every bad input to be an error.
//!
//! The algorithm is small and it is our domain core, which we want to own, test and
//! tune (multiclass, artifacts, errors), so it is written here from the algorithm:
//! XGBoost's second-order gain and leaf values on LightGBM-style histograms.
//!
//! # Batch learner behind the online contract
//!
//! The model implements [`crate::Classifier`] so the evaluation loop, shadow and
//! canary treat it like any learner, but `learn_one` does nothing: the model is
//! frozen between retrains, and retraining is an explicit `fit` on the window that
//! returns a new model. No separate `BatchClassifier` trait yet: with one batch
//! learner, the inherent `fit` is the contract; a trait belongs in `lib.rs` once a
//! second one exists.
//!
//! ```
//! use freshet_learn::boosting::{GbtParams, GradientBoostedTrees};
//!
//! // y = 1 when x0 > 0.5
//! let xs: Vec<Vec<f64>> = (0..200).map(|i| vec![f64::from(i) / 200.0]).collect();
//! let ys: Vec<f64> = xs.iter().map(|x| f64::from(u8::from(x[0] > 0.5))).collect();
//! let params = GbtParams { n_trees: 20, ..GbtParams::default() };
//! let model = GradientBoostedTrees::fit(params, &xs, &ys, None)?;
//! assert_eq!(model.predict_one(&[0.9]), Some(1));
//! assert_eq!(model.predict_one(&[0.1]), Some(0));
//! # Ok::<(), freshet_learn::boosting::GbtError>(())
//! ```

mod binning;
mod data;
mod error;
mod grow;
mod histogram;
mod loss;
mod model;
mod params;
mod split;
mod tree;
mod windowed;

pub use binning::BinMapper;
pub use data::{Columns, MAX_CLASSES};
pub use error::GbtError;
pub use model::{GradientBoostedTrees, ValidSet};
pub use params::{GbtParams, Loss};
pub use tree::{Node, Tree};
pub use windowed::{WindowedBooster, WindowedBoosterConfig};

#[cfg(test)]
mod tests;
