//! Checks every learner must pass, and the seeded streams they run on.
//!
//! These are test helpers: each check panics, with a message naming the broken
//! property, when a learner violates the contract. Call them from a `#[test]` of every
//! learner, for every configuration worth covering.
//!
//! - [`check_classifier_conformance`]: nothing before learning; predicting does not
//!   mutate (the `Debug` state is unchanged and two predictions are bit-identical);
//!   probabilities are finite, in `[0, 1]`, sum to 1 and agree with `predict_one`;
//!   `learn_many` equals repeated `learn_one`; two models built alike and fed the
//!   same seeded stream are bit-identical (determinism); empty, shorter, longer and
//!   non-finite feature vectors neither panic nor poison the model; a new class
//!   appearing mid-stream is handled.
//! - [`check_classifier_snapshot`]: a clone and a serde_json round trip predict
//!   bit-identically, and keep doing so when trained further.
//! - [`check_regressor_conformance`] and [`check_regressor_snapshot`]: the same for
//!   regressors.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Classifier, Regressor};

/// A seeded, linearly separable binary stream: features uniform with unit variance,
/// label 1 when `w · x + 0.3 > 0` for a weight vector `w` drawn from the seed; points
/// closer than 0.1 to the boundary are dropped, so a linear model can be perfect.
pub fn separable_stream(seed: u64, n: usize, n_features: usize) -> Vec<(Vec<f64>, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<f64> = (0..n_features)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    let half_width = 3f64.sqrt();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x: Vec<f64> = (0..n_features)
            .map(|_| rng.random_range(-half_width..half_width))
            .collect();
        let score: f64 = w.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() + 0.3;
        if (score / norm).abs() >= 0.1 {
            out.push((x, usize::from(score > 0.0)));
        }
    }
    out
}

/// A seeded stream of Gaussian blobs: class centres drawn uniformly in `[-3, 3]`
/// (class by class, so the first centres do not depend on `n_classes`), unit-variance
/// noise, classes drawn uniformly.
pub fn blobs_stream(
    seed: u64,
    n: usize,
    n_features: usize,
    n_classes: usize,
) -> Vec<(Vec<f64>, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<f64>> = (0..n_classes)
        .map(|_| {
            (0..n_features)
                .map(|_| rng.random_range(-3.0..3.0))
                .collect()
        })
        .collect();
    (0..n)
        .map(|_| {
            let y = rng.random_range(0..n_classes.max(1));
            let x = (0..n_features)
                .map(|j| centres.get(y).map_or(0.0, |c| c[j]) + standard_normal(&mut rng))
                .collect();
            (x, y)
        })
        .collect()
}

/// A seeded regression stream: `y = w · x + 1 + noise`, features and noise standard
/// normal (noise scaled by `noise`), `w` drawn from the seed.
pub fn linear_regression_stream(
    seed: u64,
    n: usize,
    n_features: usize,
    noise: f64,
) -> Vec<(Vec<f64>, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<f64> = (0..n_features)
        .map(|_| rng.random_range(-2.0..2.0))
        .collect();
    (0..n)
        .map(|_| {
            let x: Vec<f64> = (0..n_features).map(|_| standard_normal(&mut rng)).collect();
            let y = w.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>()
                + 1.0
                + noise * standard_normal(&mut rng);
            (x, y)
        })
        .collect()
}

/// Box–Muller.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The stream the checks use: classes 0 and 1 only for 100 examples, then a third
/// class appears.
fn conformance_stream() -> Vec<(Vec<f64>, usize)> {
    let mut s = blobs_stream(7, 100, 3, 2);
    s.extend(blobs_stream(7, 200, 3, 3));
    s
}

/// Inputs the checks probe predictions with: ordinary, empty, short, long and
/// non-finite vectors.
fn probes() -> Vec<Vec<f64>> {
    vec![
        vec![0.5, -1.0, 2.0],
        vec![-3.0, 3.0, 0.0],
        vec![],
        vec![1.0],
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        vec![f64::NAN, 1.0, f64::INFINITY],
        vec![f64::NEG_INFINITY; 3],
    ]
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Predict `x`, checking purity and the validity of the probabilities.
fn checked_proba(model: &dyn Classifier, x: &[f64]) -> Vec<f64> {
    let state = format!("{model:?}");
    let p = model.predict_proba_one(x);
    let label = model.predict_one(x);
    assert_eq!(
        bits(&p),
        bits(&model.predict_proba_one(x)),
        "two predictions of {x:?} differ"
    );
    assert_eq!(
        state,
        format!("{model:?}"),
        "predicting {x:?} changed the model"
    );
    if p.is_empty() {
        assert_eq!(label, None, "a label without probabilities for {x:?}");
        return p;
    }
    assert!(
        p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
        "probabilities {p:?} for {x:?} out of [0, 1]"
    );
    let total: f64 = p.iter().sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "probabilities {p:?} sum to {total}"
    );
    let k = label.unwrap_or(usize::MAX);
    assert!(k < p.len(), "label {label:?} outside probabilities {p:?}");
    p
}

/// Check the classifier contract on models built by `make` (see the module docs).
///
/// # Panics
/// When a check fails.
pub fn check_classifier_conformance(make: impl Fn() -> Box<dyn Classifier>) {
    let stream = conformance_stream();
    let fresh = make();
    for x in probes() {
        assert!(
            fresh.predict_proba_one(&x).is_empty(),
            "probabilities before learning"
        );
        assert_eq!(fresh.predict_one(&x), None, "a label before learning");
    }

    let mut model = make();
    for (i, (x, y)) in stream.iter().enumerate() {
        checked_proba(model.as_ref(), x);
        model.learn_one(x, *y);
        let p = checked_proba(model.as_ref(), x);
        assert!(!p.is_empty(), "no probabilities after learning example {i}");
    }
    for x in probes() {
        checked_proba(model.as_ref(), &x);
    }

    // learn_many is learn_one in order; the same stream gives the same model.
    let (xs, ys): (Vec<Vec<f64>>, Vec<usize>) = stream.iter().cloned().unzip();
    let mut batch = make();
    batch.learn_many(&xs, &ys);
    assert_eq!(
        format!("{model:?}"),
        format!("{batch:?}"),
        "learn_many differs"
    );
    let mut again = make();
    for (x, y) in &stream {
        again.learn_one(x, *y);
    }
    for x in probes().iter().chain(xs.iter().take(20)) {
        assert_eq!(
            bits(&model.predict_proba_one(x)),
            bits(&again.predict_proba_one(x)),
            "two models trained alike disagree on {x:?}"
        );
    }

    // Degenerate inputs neither panic nor poison the model.
    for x in probes() {
        model.learn_one(&x, 1);
        checked_proba(model.as_ref(), &x);
    }
    for (x, _) in stream.iter().take(20) {
        checked_proba(model.as_ref(), x);
    }
}

/// Check that clones and serde_json round trips of trained models built by `make`
/// predict bit-identically, now and after further training.
///
/// # Panics
/// When a check fails.
pub fn check_classifier_snapshot<C>(make: impl Fn() -> C)
where
    C: Classifier + Clone + Serialize + DeserializeOwned,
{
    let stream = conformance_stream();
    let (head, tail) = stream.split_at(150);
    let mut model = make();
    for (x, y) in head {
        model.learn_one(x, *y);
    }
    let json = serde_json::to_string(&model).expect("the model serialises");
    let mut restored: C = serde_json::from_str(&json).expect("the model deserialises");
    let mut clone = model.clone();
    for (x, y) in tail {
        for other in [&restored, &clone] {
            assert_eq!(
                bits(&model.predict_proba_one(x)),
                bits(&other.predict_proba_one(x)),
                "a clone or restored copy disagrees on {x:?}"
            );
            assert_eq!(model.predict_one(x), other.predict_one(x));
        }
        model.learn_one(x, *y);
        restored.learn_one(x, *y);
        clone.learn_one(x, *y);
    }
    assert_eq!(format!("{model:?}"), format!("{restored:?}"));
    assert_eq!(format!("{model:?}"), format!("{clone:?}"));
}

/// Check the regressor contract on models built by `make`: 0 before learning, pure
/// and finite predictions, `learn_many` equals `learn_one`, determinism, and
/// degenerate inputs (including non-finite targets) neither panic nor poison.
///
/// # Panics
/// When a check fails.
pub fn check_regressor_conformance(make: impl Fn() -> Box<dyn Regressor>) {
    let stream = linear_regression_stream(11, 300, 3, 0.1);
    let fresh = make();
    for x in probes() {
        assert_eq!(fresh.predict_one(&x), 0.0, "a prediction before learning");
    }
    let check = |model: &dyn Regressor, x: &[f64]| {
        let state = format!("{model:?}");
        let p = model.predict_one(x);
        assert_eq!(
            p.to_bits(),
            model.predict_one(x).to_bits(),
            "impure on {x:?}"
        );
        assert_eq!(
            state,
            format!("{model:?}"),
            "predicting {x:?} changed the model"
        );
        assert!(p.is_finite(), "prediction {p} for {x:?}");
    };
    let mut model = make();
    for (x, y) in &stream {
        check(model.as_ref(), x);
        model.learn_one(x, *y);
    }
    let (xs, ys): (Vec<Vec<f64>>, Vec<f64>) = stream.iter().cloned().unzip();
    let mut batch = make();
    batch.learn_many(&xs, &ys);
    assert_eq!(
        format!("{model:?}"),
        format!("{batch:?}"),
        "learn_many differs"
    );
    for x in probes() {
        check(model.as_ref(), &x);
        model.learn_one(&x, 1.0);
        check(model.as_ref(), &x);
    }
    for y in [f64::NAN, f64::INFINITY] {
        model.learn_one(&[1.0, 1.0, 1.0], y);
    }
    for (x, _) in stream.iter().take(20) {
        check(model.as_ref(), x);
    }
}

/// The regressor counterpart of [`check_classifier_snapshot`].
///
/// # Panics
/// When a check fails.
pub fn check_regressor_snapshot<R>(make: impl Fn() -> R)
where
    R: Regressor + Clone + Serialize + DeserializeOwned,
{
    let stream = linear_regression_stream(13, 200, 3, 0.1);
    let (head, tail) = stream.split_at(100);
    let mut model = make();
    for (x, y) in head {
        model.learn_one(x, *y);
    }
    let json = serde_json::to_string(&model).expect("the model serialises");
    let mut restored: R = serde_json::from_str(&json).expect("the model deserialises");
    let mut clone = model.clone();
    for (x, y) in tail {
        let p = model.predict_one(x).to_bits();
        assert_eq!(p, restored.predict_one(x).to_bits(), "restored disagrees");
        assert_eq!(p, clone.predict_one(x).to_bits(), "clone disagrees");
        model.learn_one(x, *y);
        restored.learn_one(x, *y);
        clone.learn_one(x, *y);
    }
    assert_eq!(format!("{model:?}"), format!("{restored:?}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_seeded() {
        assert_eq!(separable_stream(1, 50, 3), separable_stream(1, 50, 3));
        assert_ne!(separable_stream(1, 50, 3), separable_stream(2, 50, 3));
        let blobs = blobs_stream(3, 400, 2, 3);
        assert_eq!(blobs, blobs_stream(3, 400, 2, 3));
        assert!((0..3).all(|k| blobs.iter().any(|(_, y)| *y == k)));
        let first = blobs_stream(5, 1, 2, 2);
        assert_eq!(first.len(), 1);
        let reg = linear_regression_stream(4, 10, 2, 0.0);
        assert!(reg.iter().all(|(x, y)| x.len() == 2 && y.is_finite()));
    }

    #[test]
    fn separable_stream_has_both_classes_and_a_margin() {
        let s = separable_stream(9, 500, 4);
        let ones = s.iter().filter(|(_, y)| *y == 1).count();
        assert!(ones > 50 && ones < 450, "{ones} positives");
        assert!(separable_stream(9, 5, 0).iter().all(|(_, y)| *y == 1));
    }
}
