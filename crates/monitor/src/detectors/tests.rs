//! Every detector on synthetic streams: quiet on a stationary stream, quick on an
//! abrupt change, and exactly resumable from a snapshot.

use super::*;

/// SplitMix64, for seeded test streams.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Bernoulli errors with rate `before` then `after` from index `change`.
fn errors(seed: u64, n: usize, change: usize, before: f64, after: f64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|t| {
            let p = if t < change { before } else { after };
            if rng.next_f64() < p { 1.0 } else { 0.0 }
        })
        .collect()
}

fn drifts(d: &mut dyn DriftDetector, xs: &[f64]) -> Vec<usize> {
    xs.iter()
        .enumerate()
        .filter(|(_, x)| d.update(**x) == DetectorState::Drift)
        .map(|(i, _)| i)
        .collect()
}

const NAMES: [&str; 7] = [
    "adwin",
    "page_hinkley",
    "ddm",
    "eddm",
    "hddm_a",
    "hddm_w",
    "kswin",
];

fn build(name: &str) -> Detector {
    DetectorConfig::default_for(name)
        .and_then(|c| c.build().ok())
        .unwrap_or_else(|| panic!("{name}"))
}

#[test]
fn no_drift_on_a_constant_error_rate() {
    // A stream with no change at all (an error every tenth value): nothing may fire.
    // The first error comes tenth too, so EDDM's first distance is like the others (an
    // error at index 0 would be a distance of 1, and River's EDDM then fires once, at
    // index 300, when its spread estimate settles).
    for name in NAMES {
        let mut d = build(name);
        let xs: Vec<f64> = (0..5000)
            .map(|t| if t % 10 == 9 { 1.0 } else { 0.0 })
            .collect();
        assert!(drifts(&mut d, &xs).is_empty(), "{name}");
    }
}

#[test]
fn abrupt_error_rate_jump_is_detected_soon_after() {
    // 10 % errors, then 60 % from index 2000.
    let xs = errors(7, 3000, 2000, 0.1, 0.6);
    for name in NAMES {
        let mut d = build(name);
        let found = drifts(&mut d, &xs);
        let first_after = found.iter().copied().find(|&t| t >= 2000);
        assert!(
            first_after.is_some_and(|t| t < 2200),
            "{name}: detections {found:?}"
        );
    }
}

#[test]
fn few_false_alarms_on_a_noisy_stationary_stream() {
    // EDDM is left out: on Bernoulli errors its distance statistic keeps drifting below
    // its running maximum, and River's EDDM alarms every few hundred values there too
    // (same indices as ours, per the interop test).
    let xs = errors(11, 5000, 5000, 0.2, 0.2);
    for name in NAMES.into_iter().filter(|n| *n != "eddm") {
        let mut d = build(name);
        let found = drifts(&mut d, &xs);
        assert!(found.len() <= 2, "{name}: {found:?}");
    }
}

#[test]
fn warnings_precede_drift_for_ddm() {
    let xs = errors(3, 3000, 1500, 0.1, 0.4);
    let mut d = build("ddm");
    let states: Vec<DetectorState> = xs.iter().map(|x| d.update(*x)).collect();
    let first_drift = states.iter().position(|s| *s == DetectorState::Drift);
    let first_warning = states.iter().position(|s| *s == DetectorState::Warning);
    assert!(first_warning.is_some() && first_drift.is_some());
    assert!(first_warning < first_drift);
}

#[test]
fn snapshot_round_trip_resumes_exactly() {
    let xs = errors(5, 4000, 2000, 0.1, 0.5);
    for name in NAMES {
        let mut d = build(name);
        for x in &xs[..1500] {
            d.update(*x);
        }
        let json = serde_json::to_string(&d).unwrap_or_default();
        let mut back: Detector = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        for x in &xs[1500..] {
            assert_eq!(back.update(*x), d.update(*x), "{name}");
        }
    }
}

#[test]
fn page_hinkley_detects_a_real_valued_mean_shift_both_ways() {
    let mut rng = Rng(1);
    let xs: Vec<f64> = (0..3000)
        .map(|t| {
            let mean = match t {
                0..1000 => 0.0,
                1000..2000 => 3.0,
                _ => -3.0,
            };
            mean + rng.next_f64() - 0.5
        })
        .collect();
    let mut d = PageHinkley::default();
    let found = drifts(&mut d, &xs);
    assert!(found.iter().any(|t| (1000..1100).contains(t)), "{found:?}");
    assert!(found.iter().any(|t| (2000..2100).contains(t)), "{found:?}");
}

#[test]
fn non_finite_values_change_nothing() {
    for name in NAMES {
        let mut a = build(name);
        let mut b = build(name);
        for (i, x) in errors(2, 500, 500, 0.3, 0.3).into_iter().enumerate() {
            if i % 7 == 0 {
                a.update(f64::NAN);
            }
            assert_eq!(a.update(x), b.update(x), "{name}");
        }
    }
}

#[test]
fn configs_are_validated_and_named() {
    let bad = [
        r#"{"type":"adwin","delta":0}"#,
        r#"{"type":"eddm","alpha":0.5,"beta":0.9}"#,
        r#"{"type":"hddm_a","drift_confidence":1.5}"#,
        r#"{"type":"hddm_w","lambda":2}"#,
        r#"{"type":"kswin","window_size":50,"stat_size":30}"#,
        r#"{"type":"page_hinkley","alpha":0}"#,
    ];
    for json in bad {
        let config: DetectorConfig = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        assert!(config.build().is_err(), "{json}");
    }
    let unknown = serde_json::from_str::<DetectorConfig>(r#"{"type":"ddm","warmstart":3}"#);
    assert!(unknown.is_err());
    assert!(DetectorConfig::default_for("nope").is_none());
}
