//! Stream-level behaviour of leveraging bagging and the model selector.

use std::num::NonZeroU32;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::*;
use crate::Classifier;
use crate::evaluate::conformance::{
    blobs_stream, check_classifier_conformance, check_classifier_snapshot,
};
use crate::forest::ARFClassifier;
use crate::tree::{AdwinConfig, HoeffdingTreeConfig};

/// `n` examples of `d` uniform features; the class is `x0 > 0.5`, inverted from index
/// `flip_at` on.
fn flip_stream(seed: u64, n: usize, d: usize, flip_at: usize) -> Vec<(Vec<f64>, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|t| {
            let x: Vec<f64> = (0..d).map(|_| rng.random::<f64>()).collect();
            let y = usize::from((x[0] > 0.5) == (t < flip_at));
            (x, y)
        })
        .collect()
}

/// Prequential hits over `data`.
fn hits(model: &mut dyn Classifier, data: &[(Vec<f64>, usize)]) -> Vec<bool> {
    data.iter()
        .map(|(x, y)| {
            let hit = model.predict_one(x) == Some(*y);
            model.learn_one(x, *y);
            hit
        })
        .collect()
}

fn accuracy(hits: &[bool]) -> f64 {
    hits.iter().filter(|&&h| h).count() as f64 / hits.len().max(1) as f64
}

fn small_bagging(seed: u64) -> LeveragingBaggingConfig {
    LeveragingBaggingConfig {
        n_models: NonZeroU32::new(3).unwrap(),
        tree: HoeffdingTreeConfig {
            grace_period: NonZeroU32::new(10).unwrap(),
            delta: 0.01,
            ..HoeffdingTreeConfig::default()
        },
        seed,
        ..LeveragingBaggingConfig::default()
    }
}

#[test]
fn bagging_defaults_are_river_defaults_and_bad_values_name_the_field() {
    let c = LeveragingBaggingConfig::default();
    assert_eq!(c.n_models.get(), 10);
    assert_eq!(c.w, 6.0);
    assert_eq!(c.adwin.delta, 0.002);
    assert_eq!(c.tree, HoeffdingTreeConfig::default());
    assert!(c.validate().is_ok());
    for (bad, field) in [
        (
            LeveragingBaggingConfig {
                w: 0.0,
                ..c.clone()
            },
            "w",
        ),
        (
            LeveragingBaggingConfig {
                w: f64::INFINITY,
                ..c.clone()
            },
            "w",
        ),
        (
            LeveragingBaggingConfig {
                adwin: AdwinConfig {
                    delta: 1.5,
                    ..AdwinConfig::default()
                },
                ..c.clone()
            },
            "delta",
        ),
    ] {
        let e = LeveragingBaggingClassifier::new(bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(field), "{e}");
    }
    let parsed: LeveragingBaggingConfig =
        serde_json::from_str(r#"{"n_models": 4, "seed": 3}"#).unwrap();
    assert_eq!((parsed.n_models.get(), parsed.seed, parsed.w), (4, 3, 6.0));
    assert!(serde_json::from_str::<LeveragingBaggingConfig>(r#"{"lambda": 6}"#).is_err());
}

#[test]
fn bagging_recovers_after_an_abrupt_flip_by_replacing_trees() {
    let data = flip_stream(1, 8000, 4, 4000);
    let mut bagging = LeveragingBaggingClassifier::default();
    let mut h = Vec::with_capacity(data.len());
    for (x, y) in &data {
        h.push(bagging.predict_one(x) == Some(*y));
        let changes = bagging.n_detected_changes();
        bagging.learn_one(x, *y);
        if bagging.n_detected_changes() > changes {
            // One tree was replaced by a fresh tree with a fresh detector.
            let fresh = bagging
                .trees()
                .zip(bagging.error_estimates())
                .filter(|(t, e)| t.predict_one(x).is_none() && *e == 0.0)
                .count();
            assert_eq!(fresh, 1);
        }
    }
    assert!(
        accuracy(&h[3000..4000]) > 0.95,
        "{}",
        accuracy(&h[3000..4000])
    );
    // The detectors fired and trees were replaced (River's ensemble on the same kind of
    // stream: 1 change; 0.79 accuracy in the 500 examples after the flip, 0.94 in the
    // next 500, 0.97 from 2000 after).
    assert!(bagging.n_detected_changes() >= 1);
    assert!(
        accuracy(&h[4500..5000]) > 0.85,
        "{}",
        accuracy(&h[4500..5000])
    );
    assert!(accuracy(&h[6000..]) > 0.95, "{}", accuracy(&h[6000..]));
    assert!(
        bagging.error_estimates().iter().all(|e| *e < 0.2),
        "{:?}",
        bagging.error_estimates()
    );
    for tree in bagging.trees() {
        assert_eq!(tree.predict_one(&[0.9, 0.5, 0.5, 0.5]), Some(0));
    }
}

#[test]
fn bagging_adapts_faster_than_a_single_tree() {
    let data = flip_stream(2, 8000, 4, 4000);
    let mut bagging = LeveragingBaggingClassifier::default();
    let mut tree = crate::tree::HoeffdingTreeClassifier::default();
    let (hb, ht) = (hits(&mut bagging, &data), hits(&mut tree, &data));
    // The plain tree only restarts its leaves; replacing whole trees is faster.
    assert!(
        accuracy(&hb[4000..5000]) > accuracy(&ht[4000..5000]) + 0.05,
        "{} vs {}",
        accuracy(&hb[4000..5000]),
        accuracy(&ht[4000..5000])
    );
}

#[test]
fn a_seed_fixes_the_bagging_and_different_seeds_differ() {
    let data = blobs_stream(3, 2000, 6, 3);
    let run = |seed| {
        let mut b = LeveragingBaggingClassifier::new(LeveragingBaggingConfig {
            seed,
            ..LeveragingBaggingConfig::default()
        })
        .unwrap();
        let h = hits(&mut b, &data);
        (h, format!("{b:?}"))
    };
    let (a, a_state) = run(5);
    let (b, b_state) = run(5);
    assert_eq!(a, b);
    assert_eq!(a_state, b_state);
    let (_, c_state) = run(6);
    assert_ne!(a_state, c_state);
    assert!(accuracy(&a[1000..]) > 0.9, "{}", accuracy(&a[1000..]));
}

#[test]
fn the_bagging_vote_is_the_normalised_sum_of_the_trees_probabilities() {
    let data = blobs_stream(8, 600, 3, 3);
    let mut bagging = LeveragingBaggingClassifier::default();
    for (x, y) in &data {
        bagging.learn_one(x, *y);
    }
    for (x, _) in data.iter().take(20) {
        let mut want = vec![0.0; 3];
        for tree in bagging.trees() {
            for (w, p) in want.iter_mut().zip(tree.predict_proba_one(x)) {
                *w += p;
            }
        }
        let total: f64 = want.iter().sum();
        let got = bagging.predict_proba_one(x);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w / total).abs() < 1e-12, "{got:?} {want:?}");
        }
    }
}

#[test]
fn a_restored_bagging_resumes_identically() {
    let data = flip_stream(4, 3000, 3, 1500);
    let mut model = LeveragingBaggingClassifier::default();
    for (x, y) in &data[..1200] {
        model.learn_one(x, *y);
    }
    let json = serde_json::to_string(&model).unwrap();
    let mut restored: LeveragingBaggingClassifier = serde_json::from_str(&json).unwrap();
    let (a, b) = (
        hits(&mut model, &data[1200..]),
        hits(&mut restored, &data[1200..]),
    );
    assert_eq!(a, b);
    assert_eq!(format!("{model:?}"), format!("{restored:?}"));
    assert!(model.n_detected_changes() >= 1);
}

#[test]
fn bagging_passes_the_classifier_conformance_suite() {
    let config = small_bagging(7);
    let c = config.clone();
    check_classifier_conformance(move || {
        Box::new(LeveragingBaggingClassifier::new(c.clone()).unwrap())
    });
    check_classifier_snapshot(|| LeveragingBaggingClassifier::new(config.clone()).unwrap());
    check_classifier_conformance(|| Box::new(LeveragingBaggingClassifier::default()));
    check_classifier_snapshot(LeveragingBaggingClassifier::default);
}

/// A member for the selector's tests: a fixed rule that never learns, or a forest.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Member {
    /// Predicts `x0 > 0.5` with certainty, whatever it is taught.
    Rule {
        seen: bool,
    },
    Forest(Box<ARFClassifier>),
}

impl Classifier for Member {
    fn learn_one(&mut self, x: &[f64], y: usize) {
        match self {
            Member::Rule { seen } => *seen = true,
            Member::Forest(f) => f.learn_one(x, y),
        }
    }

    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        match self {
            Member::Rule { seen: false } => Vec::new(),
            Member::Rule { seen: true } => {
                if x.first().is_some_and(|v| *v > 0.5) {
                    vec![0.0, 1.0]
                } else {
                    vec![1.0, 0.0]
                }
            }
            Member::Forest(f) => f.predict_proba_one(x),
        }
    }
}

fn rule_and_forest(window: u32) -> ModelSelector<Member> {
    ModelSelector::new(
        vec![Member::Rule { seen: false }, Member::Forest(Box::default())],
        SelectorConfig {
            window: NonZeroU32::new(window).unwrap(),
        },
    )
    .unwrap()
}

#[test]
fn the_selector_switches_to_the_member_that_is_best_after_a_change() {
    let data = flip_stream(1, 6000, 3, 3000);
    let mut selector = rule_and_forest(500);
    let h = hits(&mut selector, &data[..3000]);
    // Before the change the rule is perfect and first: it serves.
    assert_eq!(selector.serving(), 0);
    assert!(selector.recent_errors()[0] < 1e-3);
    assert!(accuracy(&h[100..]) > 0.999, "{}", accuracy(&h[100..]));
    let h = hits(&mut selector, &data[3000..]);
    // After it the rule is always wrong, the forest recovers and takes over.
    assert_eq!(selector.serving(), 1);
    let errors = selector.recent_errors();
    assert!(errors[0] > 0.99 && errors[1] < 0.05, "{errors:?}");
    assert_eq!(selector.n_switches(), 1);
    assert!(accuracy(&h[1000..]) > 0.95, "{}", accuracy(&h[1000..]));
    // The selector answers as the serving member does.
    let x = [0.9, 0.1, 0.1];
    let forest = selector.members().nth(1).unwrap();
    assert_eq!(selector.predict_proba_one(&x), forest.predict_proba_one(&x));
}

#[test]
fn a_shorter_window_switches_sooner() {
    let data = flip_stream(1, 4000, 3, 3000);
    let switch_at = |window| {
        let mut selector = rule_and_forest(window);
        data.iter()
            .position(|(x, y)| {
                selector.learn_one(x, *y);
                selector.serving() == 1
            })
            .unwrap()
    };
    let (short, long) = (switch_at(50), switch_at(2000));
    assert!(short > 3000 && short < long, "{short} {long}");
}

#[test]
fn a_restored_selector_resumes_identically_and_predicting_does_not_mutate() {
    let data = flip_stream(5, 4000, 3, 2000);
    let mut model = rule_and_forest(200);
    for (x, y) in &data[..2500] {
        model.learn_one(x, *y);
    }
    let before = format!("{model:?}");
    for (x, _) in &data[2500..2600] {
        model.predict_proba_one(x);
    }
    assert_eq!(format!("{model:?}"), before);
    let json = serde_json::to_string(&model).unwrap();
    let mut restored: ModelSelector<Member> = serde_json::from_str(&json).unwrap();
    assert_eq!(restored.serving(), model.serving());
    let (a, b) = (
        hits(&mut model, &data[2500..]),
        hits(&mut restored, &data[2500..]),
    );
    assert_eq!(a, b);
    assert_eq!(format!("{model:?}"), format!("{restored:?}"));
}

#[test]
fn the_selector_refuses_no_members_and_ignores_out_of_range_labels() {
    let e = ModelSelector::<Member>::new(Vec::new(), SelectorConfig::default()).unwrap_err();
    assert!(e.to_string().starts_with("members"), "{e}");
    let mut s = rule_and_forest(10);
    s.learn_one(&[0.9], crate::tree::MAX_CLASSES);
    assert_eq!(s.recent_errors(), [1.0, 1.0]);
    assert!(s.predict_proba_one(&[0.9]).is_empty());
    assert!(
        serde_json::from_str::<SelectorConfig>(r#"{"window": 0}"#).is_err(),
        "a window of 0 is refused"
    );
}

#[test]
fn srp_defaults_are_river_defaults_and_bad_values_name_the_field() {
    let c = SRPConfig::default();
    assert_eq!(c.n_models.get(), 10);
    assert_eq!(c.subspace_size, 0.6);
    assert_eq!(c.training_method, TrainingMethod::Patches);
    assert_eq!(c.lambda, 6.0);
    assert_eq!(c.drift_detector.as_ref().map(|d| d.delta), Some(1e-5));
    assert_eq!(c.warning_detector.as_ref().map(|d| d.delta), Some(1e-4));
    assert_eq!((c.tree.grace_period.get(), c.tree.delta), (50, 0.01));
    for (bad, field) in [
        (
            SRPConfig {
                subspace_size: 0.0,
                ..SRPConfig::default()
            },
            "subspace_size",
        ),
        (
            SRPConfig {
                lambda: f64::NAN,
                ..SRPConfig::default()
            },
            "lambda",
        ),
    ] {
        let e = SRPClassifier::new(bad).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn srp_members_see_distinct_subsets_or_every_feature_when_resampling() {
    let data = flip_stream(1, 10, 8, 10);
    let mut srp = SRPClassifier::default();
    srp.learn_one(&data[0].0, data[0].1);
    let subsets = srp.subspaces();
    assert_eq!(subsets.len(), 10);
    let mut distinct: Vec<Vec<usize>> = subsets.iter().map(|s| s.clone().unwrap()).collect();
    assert!(
        distinct.iter().all(|s| s.len() == 5),
        "round(0.6 × 8) = 5: {distinct:?}"
    );
    assert!(distinct.iter().flatten().all(|&i| i < 8));
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "{subsets:?}");

    let mut bagging = SRPClassifier::new(SRPConfig {
        training_method: TrainingMethod::Resampling,
        ..SRPConfig::default()
    })
    .unwrap();
    bagging.learn_one(&data[0].0, data[0].1);
    assert!(bagging.subspaces().iter().all(Option::is_none));
    // Two features: a 60% subset would be one feature, raised to two = all of them.
    let mut two = SRPClassifier::default();
    two.learn_one(&[0.1, 0.2], 1);
    assert!(two.subspaces().iter().all(Option::is_none));
}

#[test]
fn srp_recovers_after_an_abrupt_flip_and_beats_a_single_tree() {
    // The class depends on four of six features, inverted half way: every member's
    // subset (four features) holds at least two of them.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let data: Vec<(Vec<f64>, usize)> = (0..8000)
        .map(|t| {
            let x: Vec<f64> = (0..6).map(|_| rng.random::<f64>()).collect();
            let y = usize::from((x[0] + x[1] + x[2] + x[3] > 2.0) == (t < 4000));
            (x, y)
        })
        .collect();
    let mut srp = SRPClassifier::default();
    let srp_hits = hits(&mut srp, &data);
    let mut tree = crate::tree::HoeffdingTreeClassifier::default();
    let tree_hits = hits(&mut tree, &data);
    let before = accuracy(&srp_hits[2000..4000]);
    let after = |h: &[bool]| accuracy(&h[6000..]);
    assert!(
        after(&srp_hits) > before - 0.05,
        "{} vs {before}",
        after(&srp_hits)
    );
    assert!(
        after(&srp_hits) > after(&tree_hits),
        "{} vs {}",
        after(&srp_hits),
        after(&tree_hits)
    );
    assert!(srp.n_drifts_detected() >= 1);
}

#[test]
fn a_seed_fixes_srp_and_a_restored_one_resumes_identically() {
    let data = flip_stream(4, 3000, 5, 1500);
    let run = |seed: u64| {
        let mut m = SRPClassifier::new(SRPConfig {
            seed,
            ..SRPConfig::default()
        })
        .unwrap();
        (hits(&mut m, &data), m.subspaces())
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1).1, run(2).1);

    let mut model = SRPClassifier::default();
    for (x, y) in &data[..1200] {
        model.learn_one(x, *y);
    }
    let json = serde_json::to_string(&model).unwrap();
    let mut restored: SRPClassifier = serde_json::from_str(&json).unwrap();
    assert_eq!(
        hits(&mut model, &data[1200..]),
        hits(&mut restored, &data[1200..])
    );
    assert_eq!(format!("{model:?}"), format!("{restored:?}"));
}

#[test]
fn srp_passes_the_classifier_conformance_suite() {
    check_classifier_conformance(|| Box::new(SRPClassifier::default()));
    check_classifier_snapshot(SRPClassifier::default);
}
