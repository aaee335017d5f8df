//! The pure decision: holds, each check, the phase sequence, pauses, the
//! Jensen-Shannon distance against hand-computed values, and the stored state's shape.

use super::*;
use freshet_core::model_spec::RolloutSpec;

const T0: i64 = 1_700_000_000_000;

fn champion() -> VariantStats {
    VariantStats {
        requests: 2000,
        errors: 10,
        p99_ms: 10.0,
        prediction_hist: vec![1800.0, 200.0],
        labels: 500,
        label_metric: Some(0.90),
    }
}

/// A challenger as good as the champion.
fn challenger() -> VariantStats {
    VariantStats {
        requests: 400,
        errors: 2,
        p99_ms: 11.0,
        prediction_hist: vec![355.0, 45.0],
        labels: 150,
        label_metric: Some(0.905),
    }
}

fn ev(challenger: VariantStats, at_ms: i64) -> Evidence {
    Evidence {
        champion: champion(),
        challenger,
        now_ms: at_ms,
        labels_flowing: false,
    }
}

fn later() -> i64 {
    T0 + 60_000
}

fn shadow_state() -> RolloutState {
    let mut s = RolloutState::new("m", Some(1), 2, T0);
    s.record(Phase::Shadow, T0, "start", None, true);
    s
}

fn fail_reason(v: Verdict) -> String {
    match v {
        Verdict::Fail(r) => r,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn waits_for_min_requests_and_min_time() {
    let spec = RolloutSpec::default();
    let few = VariantStats {
        requests: 199,
        ..challenger()
    };
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(few, later())),
        Verdict::Wait
    );
    // Enough requests but only 9.999 s of the 10 s hold.
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(challenger(), T0 + 9_999)),
        Verdict::Wait
    );
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(challenger(), T0 + 10_000)),
        Verdict::Pass
    );
    // Even a dreadful challenger waits out the hold: a burst cannot decide.
    let bad = VariantStats {
        errors: 399,
        ..challenger()
    };
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(bad, T0 + 1)),
        Verdict::Wait
    );
    // Canary steps use their own hold.
    let mut spec = RolloutSpec::default();
    spec.canary.min_requests = std::num::NonZeroU64::new(1000).unwrap();
    let canary = Phase::Canary { weight_pct: 5.0 };
    assert_eq!(
        judge(&spec, &canary, T0, &ev(challenger(), later())),
        Verdict::Wait
    );
    // Phases that are not judged never pass.
    assert_eq!(
        judge(&spec, &Phase::Promoted, T0, &ev(challenger(), later())),
        Verdict::Wait
    );
}

#[test]
fn a_higher_error_rate_rolls_back() {
    let spec = RolloutSpec::default();
    // 0.5% for the champion; 2% for the challenger is 1.5 points more (limit 1).
    let worse = VariantStats {
        errors: 8,
        ..challenger()
    };
    let r = fail_reason(judge(
        &spec,
        &Phase::Shadow,
        T0,
        &ev(worse.clone(), later()),
    ));
    assert!(r.contains("error rate 2.00% vs champion 0.50%"), "{r}");
    match step(&spec, &shadow_state(), &ev(worse, later())) {
        Transition::Rollback(r) => assert!(r.contains("error rate"), "{r}"),
        t => panic!("{t:?}"),
    }
    // 1.25% is 0.75 points more: within the limit.
    let ok = VariantStats {
        errors: 5,
        ..challenger()
    };
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(ok, later())),
        Verdict::Pass
    );
}

#[test]
fn a_slower_p99_rolls_back_above_the_floor_only() {
    let spec = RolloutSpec::default();
    let slow = VariantStats {
        p99_ms: 16.0,
        ..challenger()
    };
    let r = fail_reason(judge(&spec, &Phase::Shadow, T0, &ev(slow.clone(), later())));
    assert!(r.contains("p99 latency 16.0 ms vs champion 10.0 ms"), "{r}");
    assert!(matches!(
        step(&spec, &shadow_state(), &ev(slow, later())),
        Transition::Rollback(_)
    ));
    // Four times slower, but 1.6 ms is under the 2 ms floor: noise, not a regression.
    let fast_champion = VariantStats {
        p99_ms: 0.4,
        ..champion()
    };
    let tiny = Evidence {
        champion: fast_champion,
        challenger: VariantStats {
            p99_ms: 1.6,
            ..challenger()
        },
        now_ms: later(),
        labels_flowing: false,
    };
    assert_eq!(judge(&spec, &Phase::Shadow, T0, &tiny), Verdict::Pass);
}

#[test]
fn a_worse_label_metric_rolls_back_once_enough_labels_arrived() {
    let spec = RolloutSpec::default();
    let worse = VariantStats {
        label_metric: Some(0.85),
        ..challenger()
    };
    let r = fail_reason(judge(
        &spec,
        &Phase::Shadow,
        T0,
        &ev(worse.clone(), later()),
    ));
    assert!(r.contains("label metric 0.8500 vs champion 0.9000"), "{r}");
    assert!(matches!(
        step(&spec, &shadow_state(), &ev(worse, later())),
        Transition::Rollback(_)
    ));
    // 0.01 worse is tolerated (limit −0.02).
    let slightly = VariantStats {
        label_metric: Some(0.89),
        ..challenger()
    };
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(slightly, later())),
        Verdict::Pass
    );
    // With 99 of the 100 labels needed, the metric is not compared yet.
    let unlabelled = VariantStats {
        labels: 99,
        label_metric: Some(0.5),
        ..challenger()
    };
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(unlabelled, later())),
        Verdict::Pass
    );
}

#[test]
fn drifted_predictions_roll_back() {
    let spec = RolloutSpec::default();
    // The champion predicts class 1 10% of the time, the challenger 60%.
    let drifted = VariantStats {
        prediction_hist: vec![160.0, 240.0],
        ..challenger()
    };
    let r = fail_reason(judge(
        &spec,
        &Phase::Shadow,
        T0,
        &ev(drifted.clone(), later()),
    ));
    assert!(r.contains("prediction drift"), "{r}");
    assert!(matches!(
        step(&spec, &shadow_state(), &ev(drifted, later())),
        Transition::Rollback(_)
    ));
}

#[test]
fn every_failing_check_is_named() {
    let spec = RolloutSpec::default();
    let awful = VariantStats {
        errors: 100,
        p99_ms: 50.0,
        prediction_hist: vec![0.0, 400.0],
        label_metric: Some(0.5),
        ..challenger()
    };
    let r = fail_reason(judge(&spec, &Phase::Shadow, T0, &ev(awful, later())));
    for part in [
        "error rate",
        "p99 latency",
        "prediction drift",
        "label metric",
    ] {
        assert!(r.contains(part), "{part} missing from {r}");
    }
}

#[test]
fn a_good_challenger_goes_through_every_step_to_promotion() {
    let spec = RolloutSpec::default();
    let mut state = RolloutState::new("m", Some(1), 2, T0);
    let mut now = T0;
    let mut seen = Vec::new();
    loop {
        now += 15_000;
        match step(&spec, &state, &ev(challenger(), now)) {
            Transition::Enter(p) => {
                seen.push(p.to_string());
                state.record(p, now, "checks passed", None, false);
            }
            Transition::Promote => break,
            t => panic!("unexpected {t:?} in {}", state.phase),
        }
    }
    assert_eq!(seen, ["shadow", "canary 5%", "canary 25%", "canary 50%"]);
    // Equal figures pass too.
    let equal = Evidence {
        champion: champion(),
        challenger: VariantStats {
            requests: 2000,
            ..champion()
        },
        now_ms: later(),
        labels_flowing: false,
    };
    assert_eq!(judge(&spec, &Phase::Shadow, T0, &equal), Verdict::Pass);
    // Each phase waits for its own hold: right after a step began, nothing happens.
    assert_eq!(
        step(&spec, &state, &ev(challenger(), state.phase_started_ms + 1)),
        Transition::Stay
    );
}

#[test]
fn without_shadow_the_first_phase_is_the_first_canary_step() {
    let mut spec = RolloutSpec::default();
    spec.shadow.enabled = false;
    spec.canary.steps = vec![0.5, 10.0];
    assert_eq!(
        first_phase(&spec),
        Some((Phase::Canary { weight_pct: 0.5 }, 0))
    );
    assert_eq!(
        next_phase(&spec, &Phase::Canary { weight_pct: 0.5 }),
        Some((Phase::Canary { weight_pct: 10.0 }, 1))
    );
    assert_eq!(next_phase(&spec, &Phase::Canary { weight_pct: 10.0 }), None);
    // A weight that is no longer configured moves on to the next larger one.
    assert_eq!(
        next_phase(&spec, &Phase::Canary { weight_pct: 3.0 }),
        Some((Phase::Canary { weight_pct: 10.0 }, 1))
    );
    spec.shadow.enabled = true;
    spec.canary.steps.clear();
    assert_eq!(
        next_phase(&spec, &Phase::Shadow),
        None,
        "promotion follows shadow"
    );
}

#[test]
fn missing_labels_pause_after_the_label_wait_when_required() {
    let mut spec = RolloutSpec::default();
    spec.checks.require_labels = true;
    let unlabelled = VariantStats {
        labels: 0,
        label_metric: None,
        ..challenger()
    };
    // Within 10 × min_secs (100 s) it keeps waiting for labels.
    assert_eq!(
        judge(
            &spec,
            &Phase::Shadow,
            T0,
            &ev(unlabelled.clone(), T0 + 99_000)
        ),
        Verdict::Wait
    );
    match step(
        &spec,
        &shadow_state(),
        &ev(unlabelled.clone(), T0 + 100_000),
    ) {
        Transition::Pause(r) => assert!(r.contains("labels are required"), "{r}"),
        t => panic!("{t:?}"),
    }
    // A failing check does not wait for labels.
    let bad = VariantStats {
        errors: 100,
        ..unlabelled.clone()
    };
    assert!(matches!(
        judge(&spec, &Phase::Shadow, T0, &ev(bad, T0 + 20_000)),
        Verdict::Fail(_)
    ));
    // An explicit wait replaces the default.
    spec.checks.max_label_wait_secs = Some(30);
    assert!(matches!(
        judge(&spec, &Phase::Shadow, T0, &ev(unlabelled, T0 + 30_000)),
        Verdict::Inconclusive(_)
    ));
    // Labelled, it passes.
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(challenger(), later())),
        Verdict::Pass
    );
}

#[test]
fn a_check_within_the_margin_is_inconclusive() {
    let mut spec = RolloutSpec::default();
    spec.checks.inconclusive_margin = 0.1;
    // x1.4 is under the x1.5 limit but within 10% of it.
    let close = VariantStats {
        p99_ms: 14.0,
        ..challenger()
    };
    match judge(&spec, &Phase::Shadow, T0, &ev(close.clone(), later())) {
        Verdict::Inconclusive(r) => assert!(r.contains("too close to call: p99"), "{r}"),
        v => panic!("{v:?}"),
    }
    assert!(matches!(
        step(&spec, &shadow_state(), &ev(close.clone(), later())),
        Transition::Pause(_)
    ));
    // Without a margin it passes; the default is no margin.
    spec.checks.inconclusive_margin = 0.0;
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &ev(close, later())),
        Verdict::Pass
    );
    // The label delta has a lower limit: −0.019 is within 10% of −0.02.
    spec.checks.inconclusive_margin = 0.1;
    let near = VariantStats {
        label_metric: Some(0.881),
        ..challenger()
    };
    assert!(matches!(
        judge(&spec, &Phase::Shadow, T0, &ev(near, later())),
        Verdict::Inconclusive(_)
    ));
}

#[test]
fn paused_and_finished_rollouts_stay() {
    let spec = RolloutSpec::default();
    let mut s = shadow_state();
    s.record(
        Phase::Paused {
            reason: "look".into(),
            resume_to: Box::new(Phase::Shadow),
        },
        T0,
        "look",
        None,
        true,
    );
    assert_eq!(
        step(&spec, &s, &ev(challenger(), later())),
        Transition::Stay
    );
    s.record(Phase::Promoted, T0, "done", None, true);
    assert_eq!(
        step(&spec, &s, &ev(challenger(), later())),
        Transition::Stay
    );
}

#[test]
fn no_champion_traffic_skips_the_comparisons() {
    let spec = RolloutSpec::default();
    let e = Evidence {
        champion: VariantStats::default(),
        challenger: VariantStats {
            p99_ms: 500.0,
            ..challenger()
        },
        now_ms: later(),
        labels_flowing: false,
    };
    assert_eq!(judge(&spec, &Phase::Shadow, T0, &e), Verdict::Pass);
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn jensen_shannon_distance_matches_hand_values() {
    // Same distribution (scale does not matter): 0.
    assert_eq!(js_distance(&[1.0, 3.0], &[10.0, 30.0]), Some(0.0));
    // Disjoint: divergence 1 bit, distance 1.
    assert!(close(js_distance(&[1.0, 0.0], &[0.0, 1.0]).unwrap(), 1.0));
    // P = (1, 0), Q = (½, ½), M = (¾, ¼):
    // KL(P‖M) = log2(4/3) = 0.4150375; KL(Q‖M) = ½·log2(2/3) + ½·log2(2) = 0.2075187;
    // JSD = ½(0.4150375 + 0.2075187) = 0.3112781; distance = √JSD = 0.5579230.
    let d = js_distance(&[5.0, 0.0], &[1.0, 1.0]).unwrap();
    assert!((d - 0.557_923_0).abs() < 1e-7, "{d}");
    // Symmetric.
    assert_eq!(js_distance(&[1.0, 1.0], &[5.0, 0.0]), Some(d));
    // P = (½, ½, 0), Q = (0, ½, ½), M = (¼, ½, ¼): KL(P‖M) = ½·1 + ½·0 = ½ = KL(Q‖M);
    // JSD = ½, distance = √½. The shorter histogram is padded with zeros.
    let d = js_distance(&[1.0, 1.0], &[0.0, 1.0, 1.0]).unwrap();
    assert!(close(d, 0.5f64.sqrt()), "{d}");
    // Nothing to compare.
    assert_eq!(js_distance(&[], &[1.0]), None);
    assert_eq!(js_distance(&[0.0, 0.0], &[1.0]), None);
    assert_eq!(js_distance(&[-1.0, 2.0], &[1.0]), None);
    assert_eq!(js_distance(&[f64::NAN], &[1.0]), None);
}

#[test]
fn routing_follows_the_phase() {
    let mut s = RolloutState::new("m", Some(1), 2, T0);
    assert_eq!(routing(&s), Routing::None);
    s.record(Phase::Shadow, T0, "", None, false);
    assert_eq!(routing(&s), Routing::Shadow);
    s.record(Phase::Canary { weight_pct: 25.0 }, T0, "", None, false);
    assert_eq!(routing(&s), Routing::Canary { weight_pct: 25.0 });
    assert_eq!(
        routing(&s).mode(),
        Some(crate::router::Mode::Canary { weight_pct: 25.0 })
    );
    let paused = Phase::Paused {
        reason: "x".into(),
        resume_to: Box::new(s.phase.clone()),
    };
    s.record(paused, T0, "", None, false);
    assert_eq!(
        routing(&s),
        Routing::Shadow,
        "paused: nobody watches, no user sees it"
    );
    s.record(Phase::RolledBack, T0, "", None, false);
    assert_eq!(routing(&s), Routing::None);
    assert_eq!(Routing::None.mode(), None);
}

#[test]
fn the_stored_state_stays_under_the_tag_limit_and_round_trips() {
    let mut s = RolloutState::new("m", Some(1), 2, T0);
    for i in 0..100 {
        let long = "é".repeat(1000);
        s.record(
            Phase::Canary {
                weight_pct: f64::from(i),
            },
            T0 + i64::from(i),
            &long,
            Some(long.clone()),
            false,
        );
    }
    assert_eq!(s.decisions.len(), MAX_DECISIONS);
    let text = s.to_tag_value().unwrap();
    assert!(text.len() < 8000, "{}", text.len());
    let back = RolloutState::from_tag_value("m", &text).unwrap();
    assert!(!back.decisions.is_empty());
    assert_eq!(
        back.decisions.last(),
        s.decisions.last(),
        "the newest are kept"
    );
    assert_eq!(back.phase, s.phase);

    // A paused phase nests the phase it will resume.
    let mut p = RolloutState::new("m", None, 3, T0);
    p.record(
        Phase::Paused {
            reason: "why".into(),
            resume_to: Box::new(Phase::Canary { weight_pct: 5.0 }),
        },
        T0,
        "why",
        None,
        true,
    );
    let text = p.to_tag_value().unwrap();
    assert!(text.contains(r#""phase":{"name":"paused","reason":"why","resume_to":{"name":"canary","weight_pct":5.0}}"#), "{text}");
    assert_eq!(RolloutState::from_tag_value("m", &text).unwrap(), p);

    // Another layout is refused with a reason, not misread.
    let newer = text.replace("\"format\":1", "\"format\":2");
    let err = RolloutState::from_tag_value("m", &newer)
        .unwrap_err()
        .to_string();
    assert!(err.contains("format 2"), "{err}");
    let err = RolloutState::from_tag_value("m", "{")
        .unwrap_err()
        .to_string();
    assert!(err.contains("freshet.rollout"), "{err}");
}

/// A bake of version 2 against version 1: the candidate serves (the evidence's
/// champion), the previous champion is shadowed (the evidence's challenger).
fn baking_state() -> RolloutState {
    let mut s = RolloutState::new("m", Some(1), 2, T0);
    s.record(Phase::Baking, T0, "promoted", None, false);
    s
}

fn labelled(labels: u64, metric: f64) -> VariantStats {
    VariantStats {
        labels,
        label_metric: Some(metric),
        ..challenger()
    }
}

fn bake_ev(candidate: VariantStats, previous: VariantStats, at_ms: i64) -> Evidence {
    Evidence {
        champion: candidate,
        challenger: previous,
        now_ms: at_ms,
        labels_flowing: true,
    }
}

#[test]
fn a_bake_rolls_back_a_candidate_worse_on_the_same_labels() {
    let spec = RolloutSpec::default();
    let s = baking_state();
    let worse = bake_ev(labelled(240, 0.612), labelled(238, 0.701), T0 + 5_000);
    match judge_bake(&spec, &s, &worse) {
        BakeVerdict::Failed(r) => assert_eq!(
            r,
            "bake: v2 scored 0.612 on 240 live labels, v1 0.701 on the same period (drop 0.089 > 0.02)"
        ),
        v => panic!("{v:?}"),
    }
    match step(&spec, &s, &worse) {
        Transition::Rollback(r) => assert!(r.starts_with("bake: v2 scored 0.612"), "{r}"),
        t => panic!("{t:?}"),
    }
    // 0.01 below the previous champion is within the 0.02 allowed.
    let close = bake_ev(labelled(240, 0.691), labelled(238, 0.701), T0 + 5_000);
    match judge_bake(&spec, &s, &close) {
        BakeVerdict::Passed(r) => assert!(
            r.starts_with("bake passed: v2 scored 0.691 on 240 live labels, v1 0.701"),
            "{r}"
        ),
        v => panic!("{v:?}"),
    }
    assert_eq!(step(&spec, &s, &close), Transition::Promote);
    // Better is fine too; a stricter limit fails the same figures.
    let better = bake_ev(labelled(240, 0.80), labelled(238, 0.70), T0 + 5_000);
    assert!(matches!(
        judge_bake(&spec, &s, &better),
        BakeVerdict::Passed(_)
    ));
    let mut strict = RolloutSpec::default();
    strict.bake.max_accuracy_drop = 0.005;
    assert!(matches!(
        judge_bake(&strict, &s, &close),
        BakeVerdict::Failed(_)
    ));
}

#[test]
fn a_bake_waits_for_labels_of_both_versions_then_passes_at_max_secs() {
    let spec = RolloutSpec::default();
    let s = baking_state();
    // 199 of the 200 labels the previous champion needs: not judged, however bad.
    let short = bake_ev(labelled(500, 0.1), labelled(199, 0.9), T0 + 899_999);
    assert_eq!(judge_bake(&spec, &s, &short), BakeVerdict::Wait);
    assert_eq!(step(&spec, &s, &short), Transition::Stay);
    let unlabelled = bake_ev(challenger(), VariantStats::default(), T0 + 899_999);
    assert_eq!(judge_bake(&spec, &s, &unlabelled), BakeVerdict::Wait);
    // At max_secs (900 s) it ends as passed, saying why.
    let late = bake_ev(labelled(500, 0.1), labelled(199, 0.9), T0 + 900_000);
    match judge_bake(&spec, &s, &late) {
        BakeVerdict::Passed(r) => {
            assert!(r.contains("without enough labels"), "{r}");
            assert!(r.contains("v2 has 500, v1 199 (need 200 each)"), "{r}");
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(step(&spec, &s, &late), Transition::Promote);
}

#[test]
fn baking_is_active_shadows_the_previous_champion_and_reads_as_baking() {
    let s = baking_state();
    assert!(s.phase.is_active() && s.phase.is_baking());
    assert_eq!(s.phase.to_string(), "baking");
    assert_eq!(routing(&s), Routing::Shadow);
    assert_eq!(next_phase(&RolloutSpec::default(), &Phase::Baking), None);
    let paused = Phase::Paused {
        reason: "x".into(),
        resume_to: Box::new(Phase::Baking),
    };
    assert!(paused.is_baking() && !Phase::Shadow.is_baking());
    // The stored form round-trips.
    let text = s.to_tag_value().unwrap();
    assert!(text.contains(r#""phase":{"name":"baking"}"#), "{text}");
    assert_eq!(RolloutState::from_tag_value("m", &text).unwrap(), s);
}

#[test]
fn canary_steps_wait_for_labels_while_they_flow() {
    let spec = RolloutSpec::default();
    let canary = Phase::Canary { weight_pct: 5.0 };
    // 99 of the 100 labels needed, and the challenger's metric is bad.
    let few = VariantStats {
        labels: 99,
        label_metric: Some(0.5),
        ..challenger()
    };
    let flowing = |c: VariantStats, at| Evidence {
        labels_flowing: true,
        ..ev(c, at)
    };
    assert_eq!(
        judge(&spec, &canary, T0, &flowing(few.clone(), later())),
        Verdict::Wait
    );
    // Without flowing labels, or in shadow, nothing changes: it passes uncompared.
    assert_eq!(
        judge(&spec, &canary, T0, &ev(few.clone(), later())),
        Verdict::Pass
    );
    assert_eq!(
        judge(&spec, &Phase::Shadow, T0, &flowing(few.clone(), later())),
        Verdict::Pass
    );
    // Once they arrive the metric is compared: equal passes, worse fails.
    assert_eq!(
        judge(&spec, &canary, T0, &flowing(challenger(), later())),
        Verdict::Pass
    );
    let worse = VariantStats {
        label_metric: Some(0.5),
        ..challenger()
    };
    assert!(matches!(
        judge(&spec, &canary, T0, &flowing(worse, later())),
        Verdict::Fail(_)
    ));
    // Past the label wait (10 × min_secs = 100 s) a person decides.
    match step(
        &spec,
        &{
            let mut s = shadow_state();
            s.record(canary.clone(), T0, "checks passed", None, false);
            s
        },
        &flowing(few, T0 + 100_000),
    ) {
        Transition::Pause(r) => assert!(
            r.contains("labels are flowing but after 100 s the challenger has 99"),
            "{r}"
        ),
        t => panic!("{t:?}"),
    }
}
