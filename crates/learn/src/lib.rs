//! Learning: the models Freshet trains and serves, and how they are judged.
//!
//! This room holds the learner contract ([`Classifier`], [`Regressor`]) and its
//! implementations — online linear models, Gaussian naive Bayes, Hoeffding trees, the
//! adaptive random [`forest`], the live path's [`ensemble`]s (leveraging bagging and a
//! model selector), baselines, and histogram gradient-boosted trees
//! ([`boosting`]) for retraining on a window — plus the [`metrics`], the prequential
//! [`evaluate`] loop used for benchmarks, replay, shadow and canary alike, and
//! [`train`]ing with an out-of-time holdout.
//!
//! Learners see dense `f64` feature vectors produced by the [`features`] pipeline,
//! which turns records (lake rows, maps of values, JSON objects) into those vectors
//! with the same code in training and scoring. A [`model::Model`] bundles a resolved
//! model spec from `freshet.yaml`, the pipeline's state, the learner's state, a
//! reference profile of the training data and metadata, and saves as an MLflow-style
//! model directory. Predicting never mutates a learner, a pipeline or a model (shadow
//! traffic must not change a model). Depends on `freshet-core` only (and `tracing`, for
//! the warnings of [`features::trend`]).

pub mod baseline;
pub mod boosting;
pub mod ensemble;
pub mod evaluate;
pub mod features;
pub mod forest;
pub mod linear;
pub mod metrics;
pub mod model;
pub mod naive_bayes;
pub mod train;
pub mod tree;

/// A classifier learning one example at a time. Classes are indices `0..n`; a learner
/// discovers classes as it sees them.
pub trait Classifier: Send + Sync + std::fmt::Debug {
    /// Update the model with one labelled example.
    fn learn_one(&mut self, x: &[f64], y: usize);
    /// Class probabilities, indexed by class; empty before any class has been seen.
    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64>;
    /// The most probable class (ties: the lowest index); `None` before any learning.
    fn predict_one(&self, x: &[f64]) -> Option<usize> {
        argmax(&self.predict_proba_one(x))
    }
    /// Update with many examples, in order.
    fn learn_many(&mut self, xs: &[Vec<f64>], ys: &[usize]) {
        for (x, y) in xs.iter().zip(ys) {
            self.learn_one(x, *y);
        }
    }
}

/// A regressor learning one example at a time.
pub trait Regressor: Send + Sync + std::fmt::Debug {
    fn learn_one(&mut self, x: &[f64], y: f64);
    /// The prediction; 0 before any learning.
    fn predict_one(&self, x: &[f64]) -> f64;
    fn learn_many(&mut self, xs: &[Vec<f64>], ys: &[f64]) {
        for (x, y) in xs.iter().zip(ys) {
            self.learn_one(x, *y);
        }
    }
}

/// Index of the largest value (the first on ties); `None` for an empty slice.
pub fn argmax(p: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in p.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}
