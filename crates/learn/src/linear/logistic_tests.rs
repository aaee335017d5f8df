use super::*;
use crate::evaluate::conformance::{
    blobs_stream, check_classifier_conformance, check_classifier_snapshot, separable_stream,
};
use crate::evaluate::prequential_classification;
use crate::metrics::{Accuracy, ClassificationMetric};

const X: [f64; 2] = [1.0, 2.0];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-15
}

#[test]
fn nothing_before_learning() {
    let m = LogisticRegression::default();
    assert!(m.predict_proba_one(&X).is_empty());
    assert_eq!(m.predict_one(&X), None);
    assert_eq!((m.n_classes(), m.scorer(1)), (0, None));
    assert_eq!(m.config(), &LinearConfig::default());
}

#[test]
fn sgd_one_step_from_zero_is_the_gradient_step() {
    // p = σ(0) = 0.5, loss gradient p − y = −0.5, weight gradient −0.5 x,
    // w = 0 − 0.01 · (−0.5 x) = [0.005, 0.01]; b = 0 − 0.01 · (−0.5) = 0.005.
    let mut m = LogisticRegression::default();
    m.learn_one(&X, 1);
    let (w, b) = m.scorer(1).expect("class 1");
    assert!(close(w[0], 0.005) && close(w[1], 0.01) && close(b, 0.005));
    let (w0, b0) = m.scorer(0).expect("class 0");
    assert_eq!((w0, b0), (vec![-w[0], -w[1]], -b));
    assert_eq!(m.scorer(2), None);
    let p = m.predict_proba_one(&X);
    assert!(close(p[1], 0.507_499_437_550_620_3));
    assert!(close(p[0] + p[1], 1.0));
}

#[test]
fn sgd_second_step_with_l2() {
    let mut m = LogisticRegression::default().with_l2(0.1);
    m.learn_one(&X, 1); // w = [0.005, 0.01], b = 0.005 (the L2 term is 0 at w = 0)
    m.learn_one(&X, 0);
    // raw = 0.005 + 0.02 + 0.005 = 0.03; loss gradient p − 0 = σ(0.03).
    let p = 1.0 / (1.0 + (-0.03f64).exp());
    let (w, b) = m.scorer(1).expect("class 1");
    assert!((w[0] - (0.005 - 0.01 * (p * 1.0 + 0.1 * 0.005))).abs() < 1e-12);
    assert!((w[1] - (0.01 - 0.01 * (p * 2.0 + 0.1 * 0.01))).abs() < 1e-12);
    assert!((b - (0.005 - 0.01 * p)).abs() < 1e-12);
}

#[test]
fn adam_one_step_by_hand() {
    // g = [−0.5, −1]; m = 0.1 g; v = 0.001 g²;
    // lr_t = 0.1 √(1 − 0.999) / (1 − 0.9); w = −lr_t m / (√v + 1e-8) ≈ [0.1, 0.1].
    let mut m = LogisticRegression::default().with_optimizer(Optimizer::adam());
    m.learn_one(&X, 1);
    let (w, b) = m.scorer(1).expect("class 1");
    let lr_t = 0.1 * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
    let expected = |g: f64| -lr_t * (0.1 * g) / ((0.001 * g * g).sqrt() + 1e-8);
    assert!((w[0] - expected(-0.5)).abs() < 1e-15);
    assert!((w[1] - expected(-1.0)).abs() < 1e-15);
    assert!((w[0] - 0.099_999_936_754_486_86).abs() < 1e-15);
    assert!((w[1] - 0.099_999_968_377_233_48).abs() < 1e-15);
    assert!(close(b, 0.005)); // the intercept follows SGD, as in River
}

#[test]
fn ftrl_one_step_by_hand() {
    // alpha 0.05, beta 1, l1 0, l2 1. g = [−0.5, −1].
    // σ₀ = √0.25 / 0.05 = 10, z₀ = −0.5, n₀ = 0.25: w₀ = 0.5 / ((1 + 0.5) / 0.05 + 1) = 0.5 / 31.
    // σ₁ = 1 / 0.05 = 20, z₁ = −1, n₁ = 1: w₁ = 1 / ((1 + 1) / 0.05 + 1) = 1 / 41.
    let mut m = LogisticRegression::default().with_optimizer(Optimizer::ftrl());
    m.learn_one(&X, 1);
    let (w, b) = m.scorer(1).expect("class 1");
    assert!(close(w[0], 0.5 / 31.0) && close(w[1], 1.0 / 41.0) && close(b, 0.005));
    // The prediction uses the weights of the paper's next round.
    let raw: f64 = 0.5 / 31.0 + 2.0 / 41.0 + 0.005;
    let p = m.predict_proba_one(&X)[1];
    assert!(close(p, 1.0 / (1.0 + (-raw).exp())));

    // With l1 = 0.6, |z₀| = 0.5 ≤ l1 gives w₀ = 0; w₁ = (1 − 0.6) / 41.
    let ftrl = Optimizer::Ftrl {
        alpha: 0.05,
        beta: 1.0,
        l1: 0.6,
        l2: 1.0,
    };
    let mut m = LogisticRegression::default().with_optimizer(ftrl);
    m.learn_one(&X, 1);
    let (w, _) = m.scorer(1).expect("class 1");
    assert_eq!(w[0], 0.0);
    assert!(close(w[1], 0.4 / 41.0));
}

#[test]
fn missing_features_are_neither_learnt_nor_scored() {
    let mut m = LogisticRegression::default();
    m.learn_one(&[f64::NAN, 2.0, f64::INFINITY], 1);
    let (w, _) = m.scorer(1).expect("class 1");
    assert_eq!(w, vec![0.0, 0.01, 0.0]);
    assert_eq!(
        m.predict_proba_one(&[f64::NAN, 2.0]),
        m.predict_proba_one(&[0.0, 2.0, 0.0, 5.0])
    );
    m.learn_one(&[], 0); // only the intercept moves
    assert_eq!(m.scorer(1).expect("class 1").0, vec![0.0, 0.01, 0.0]);
}

#[test]
fn a_third_class_switches_to_one_vs_rest() {
    let mut m = LogisticRegression::default();
    m.learn_one(&X, 1);
    m.learn_one(&[2.0, -1.0], 0);
    let one = m.scorer(1).expect("class 1");
    let zero = m.scorer(0).expect("class 0");
    m.learn_one(&[0.0, 0.0], 2); // w · x = 0: only intercepts move
    assert_eq!(m.n_classes(), 3);
    let p = m.predict_proba_one(&X);
    assert_eq!(p.len(), 3);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let (w1, b1) = m.scorer(1).expect("class 1");
    let (w0, b0) = m.scorer(0).expect("class 0");
    assert_eq!((&w1, &w0), (&one.0, &zero.0));
    // Each scorer took a step against target 0 from its own raw output.
    let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
    assert!((b1 - (one.1 - 0.01 * sig(one.1))).abs() < 1e-15);
    assert!((b0 - (zero.1 - 0.01 * sig(zero.1))).abs() < 1e-15);
    let (_, b2) = m.scorer(2).expect("class 2");
    assert!((b2 - 0.005).abs() < 1e-15);
}

#[test]
fn a_first_label_above_one_starts_one_vs_rest() {
    let mut m = LogisticRegression::default();
    m.learn_one(&X, 3);
    assert_eq!(m.n_classes(), 4);
    assert_eq!(m.predict_proba_one(&X).len(), 4);
    assert_eq!(m.predict_one(&X), Some(3));
}

#[test]
fn prequential_accuracy_on_a_separable_stream() {
    for optimizer in [Optimizer::default(), Optimizer::adam(), Optimizer::ftrl()] {
        let mut m = LogisticRegression::default().with_optimizer(optimizer);
        let mut acc = Accuracy::default();
        let stream = separable_stream(42, 5000, 3);
        prequential_classification(&mut m, stream, &mut [&mut acc], 0);
        assert!(acc.get() > 0.95, "{optimizer:?}: accuracy {}", acc.get());
    }
}

#[test]
fn one_vs_rest_learns_blobs() {
    let mut m = LogisticRegression::default().with_optimizer(Optimizer::adam());
    let mut acc = Accuracy::default();
    prequential_classification(&mut m, blobs_stream(5, 3000, 2, 3), &mut [&mut acc], 0);
    assert!(acc.get() > 0.8, "accuracy {}", acc.get());
}

#[test]
fn serde_round_trip_predicts_identically() {
    let mut m = LogisticRegression::default().with_optimizer(Optimizer::ftrl());
    for (x, y) in separable_stream(1, 200, 3) {
        m.learn_one(&x, y);
    }
    let json = serde_json::to_string(&m).expect("serialise");
    let back: LogisticRegression = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, m);
    for (x, _) in separable_stream(2, 50, 3) {
        assert_eq!(back.predict_proba_one(&x), m.predict_proba_one(&x));
    }
}

#[test]
fn conforms() {
    for optimizer in [Optimizer::default(), Optimizer::adam(), Optimizer::ftrl()] {
        check_classifier_conformance(|| {
            Box::new(LogisticRegression::default().with_optimizer(optimizer))
        });
        check_classifier_snapshot(|| {
            LogisticRegression::default()
                .with_optimizer(optimizer)
                .with_l2(0.01)
        });
    }
}
