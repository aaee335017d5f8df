//! The controller against a real (in-memory or file) SQLite registry: aliases move as
//! the phases say, decisions are recorded, and the state survives a reopen.

use super::*;
use crate::router::ModeSource;
use freshet_core::model_spec::RolloutSpec;
use freshet_govern::approvals::Approvals;
use freshet_registry::models::NewModelVersion;
use freshet_registry::{ModelStore, SqliteStore, Store};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

/// A registered model `m` with `versions` versions and version 1 as champion.
fn registry(store: &dyn Store, versions: i64) {
    store.create_registered_model("m", &[], None).unwrap();
    for i in 1..=versions {
        store
            .create_model_version(NewModelVersion {
                name: "m".into(),
                source: format!("mlflow-artifacts:/x/{i}"),
                ..Default::default()
            })
            .unwrap();
    }
    store.set_alias("m", "champion", 1).unwrap();
}

fn memory() -> SqliteStore {
    let s = SqliteStore::in_memory("mlflow-artifacts:").unwrap();
    registry(&s, 3);
    s
}

fn alias(store: &dyn Store, name: &str) -> Option<i64> {
    store
        .get_version_by_alias("m", name)
        .ok()
        .map(|v| v.version)
}

fn controller(spec: RolloutSpec) -> RolloutController {
    RolloutController::new(BTreeMap::from([("m".to_string(), spec)]))
}

fn stats(requests: u64, errors: u64, p99_ms: f64) -> VariantStats {
    VariantStats {
        requests,
        errors,
        p99_ms,
        prediction_hist: vec![requests as f64 * 0.9, requests as f64 * 0.1],
        labels: 0,
        label_metric: None,
    }
}

/// Evidence from a script: each call gives the challenger the figures of `make`, and
/// the calls are remembered to check what the controller asked for.
struct Scripted<F: Fn(usize) -> VariantStats> {
    make: F,
    calls: RefCell<Vec<(Option<i64>, i64, i64)>>,
}

impl<F: Fn(usize) -> VariantStats> Scripted<F> {
    fn new(make: F) -> Self {
        Self {
            make,
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl<F: Fn(usize) -> VariantStats> EvidenceSource for Scripted<F> {
    fn evidence(
        &self,
        model: &str,
        champion: Option<i64>,
        challenger: i64,
        since: i64,
    ) -> Evidence {
        assert_eq!(model, "m");
        let n = self.calls.borrow().len();
        self.calls.borrow_mut().push((champion, challenger, since));
        Evidence {
            champion: stats(5000, 25, 10.0),
            challenger: (self.make)(n),
            now_ms: 0,
            labels_flowing: false,
        }
    }
}

#[test]
fn start_sets_the_challenger_and_records_the_champion() {
    let store = memory();
    let c = controller(RolloutSpec::default());
    let s = c.start(&store, "m", 3, T0).unwrap();
    assert_eq!(s.phase, Phase::Shadow);
    assert_eq!((s.champion_version, s.candidate_version), (Some(1), 3));
    assert_eq!(alias(&store, "challenger"), Some(3));
    assert_eq!(alias(&store, "champion"), Some(1));
    assert_eq!(load_state(&store, "m").unwrap(), Some(s.clone()));
    assert_eq!(s.decisions.len(), 1);
    assert!(s.decisions[0].manual);
    assert_eq!(
        RolloutModes.mode(&store, "m"),
        Some(crate::router::Mode::Shadow)
    );

    // One rollout at a time.
    let err = c.start(&store, "m", 2, T0).unwrap_err();
    assert!(
        matches!(err, RolloutError::InProgress { version: 3, .. }),
        "{err}"
    );
    // Shadow off: the first canary step.
    let store = memory();
    let mut spec = RolloutSpec::default();
    spec.shadow.enabled = false;
    let s = controller(spec).start(&store, "m", 2, T0).unwrap();
    assert_eq!(s.phase, Phase::Canary { weight_pct: 5.0 });
}

#[test]
fn mistakes_are_named() {
    let store = memory();
    let c = controller(RolloutSpec::default());
    let msg = |e: RolloutError| e.to_string();
    assert!(matches!(
        c.start(&store, "nope", 2, T0).unwrap_err(),
        RolloutError::UnknownModel(_)
    ));
    assert_eq!(
        msg(c.start(&store, "m", 9, T0).unwrap_err()),
        "model 'm' has no version 9"
    );
    assert!(msg(c.start(&store, "m", 1, T0).unwrap_err()).contains("already the champion"));
    assert!(matches!(
        c.promote(&store, "m", T0).unwrap_err(),
        RolloutError::NoRollout(_)
    ));
    assert!(matches!(
        c.rollback(&store, "m", T0).unwrap_err(),
        RolloutError::NoRollout(_)
    ));
    assert!(matches!(
        c.pause(&store, "m", "x", T0).unwrap_err(),
        RolloutError::NoRollout(_)
    ));
    assert!(matches!(
        c.resume(&store, "m", T0).unwrap_err(),
        RolloutError::NoRollout(_)
    ));
    assert!(matches!(
        c.rollback_to(&store, "m", 7, T0).unwrap_err(),
        RolloutError::VersionNotFound { version: 7, .. }
    ));
    c.start(&store, "m", 2, T0).unwrap();
    assert!(msg(c.resume(&store, "m", T0).unwrap_err()).contains("not paused"));
    c.pause(&store, "m", "lunch", T0).unwrap();
    assert!(msg(c.pause(&store, "m", "again", T0).unwrap_err()).contains("already paused (lunch)"));
    c.promote(&store, "m", T0).unwrap();
    // The first promotion starts the bake, the second ends it.
    c.promote(&store, "m", T0).unwrap();
    assert!(msg(c.promote(&store, "m", T0).unwrap_err()).contains("already promoted"));

    // No champion at all: nothing to compare with.
    let bare = SqliteStore::in_memory("mlflow-artifacts:").unwrap();
    registry(&bare, 2);
    bare.delete_alias("m", "champion").unwrap();
    assert!(matches!(
        c.start(&bare, "m", 2, T0).unwrap_err(),
        RolloutError::NoChampion { .. }
    ));
}

#[test]
fn good_evidence_drives_ticks_to_promotion() {
    let store = memory();
    // Without the bake (see the bake's own tests), promotion is final at once.
    let c = controller(no_bake());
    c.start(&store, "m", 3, T0).unwrap();
    let good = Scripted::new(|_| stats(300, 1, 10.5));
    let mut now = T0;
    let mut taken = Vec::new();
    for _ in 0..10 {
        now += 11_000;
        let routing_before = routing(&load_state(&store, "m").unwrap().unwrap());
        let t = c.tick(&store, &good, "m", now).unwrap();
        taken.push((routing_before, t.clone()));
        if t == Transition::Promote {
            break;
        }
    }
    let ts: Vec<&Transition> = taken.iter().map(|(_, t)| t).collect();
    assert_eq!(
        ts,
        [
            &Transition::Enter(Phase::Canary { weight_pct: 5.0 }),
            &Transition::Enter(Phase::Canary { weight_pct: 25.0 }),
            &Transition::Enter(Phase::Canary { weight_pct: 50.0 }),
            &Transition::Promote,
        ]
    );
    assert_eq!(taken[1].0, Routing::Canary { weight_pct: 5.0 });
    // The champion moved; the challenger alias is gone.
    assert_eq!(alias(&store, "champion"), Some(3));
    assert_eq!(alias(&store, "challenger"), None);
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(s.phase, Phase::Promoted);
    assert_eq!(s.step_index, 2);
    let tos: Vec<&str> = s.decisions.iter().map(|d| d.to.as_str()).collect();
    assert_eq!(
        tos,
        [
            "shadow",
            "canary 5%",
            "canary 25%",
            "canary 50%",
            "promoted"
        ]
    );
    assert!(
        s.decisions[1]
            .evidence
            .as_deref()
            .unwrap()
            .contains("challenger 300 req")
    );
    assert!(!s.decisions[4].manual);
    // Each phase asked for evidence since its own start.
    let calls = good.calls.borrow();
    assert_eq!(calls[0], (Some(1), 3, T0));
    assert_eq!(calls[1], (Some(1), 3, T0 + 11_000));
    // A finished rollout does nothing more.
    assert_eq!(
        c.tick(&store, &good, "m", now + 60_000).unwrap(),
        Transition::Stay
    );
    assert_eq!(
        RolloutModes.mode(&store, "m"),
        Some(crate::router::Mode::Shadow)
    );
}

#[test]
fn bad_evidence_rolls_back_and_keeps_the_champion() {
    let store = memory();
    let c = controller(RolloutSpec::default());
    c.start(&store, "m", 2, T0).unwrap();
    // Good in shadow, then errors at the 5% step.
    let script = Scripted::new(|n| {
        if n == 0 {
            stats(300, 1, 10.0)
        } else {
            stats(300, 30, 10.0)
        }
    });
    assert!(matches!(
        c.tick(&store, &script, "m", T0 + 11_000).unwrap(),
        Transition::Enter(_)
    ));
    // Someone moved the champion by hand meanwhile; the rollback restores the recorded one.
    store.set_alias("m", "champion", 3).unwrap();
    match c.tick(&store, &script, "m", T0 + 22_000).unwrap() {
        Transition::Rollback(r) => assert!(r.contains("error rate 10.00%"), "{r}"),
        t => panic!("{t:?}"),
    }
    assert_eq!(alias(&store, "champion"), Some(1));
    assert_eq!(alias(&store, "challenger"), None);
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(s.phase, Phase::RolledBack);
    assert_eq!(routing(&s), Routing::None);
    let last = s.decisions.last().unwrap();
    assert_eq!(
        (last.from.as_str(), last.to.as_str()),
        ("canary 5%", "rolled back")
    );
    assert!(last.evidence.as_deref().unwrap().contains("10.00% err"));
    // A new rollout can start, keeping the history.
    let s = c.start(&store, "m", 3, T0 + 30_000).unwrap();
    assert_eq!(s.decisions.len(), 4);
}

#[test]
fn inconclusive_pauses_and_resume_continues() {
    let store = memory();
    let mut spec = RolloutSpec::default();
    spec.checks.inconclusive_margin = 0.2;
    let c = controller(spec);
    c.start(&store, "m", 2, T0).unwrap();
    // p99 x1.4 against a x1.5 limit: within the 20% margin.
    let script = Scripted::new(|n| {
        if n == 0 {
            stats(300, 1, 14.0)
        } else {
            stats(300, 1, 10.0)
        }
    });
    match c.tick(&store, &script, "m", T0 + 11_000).unwrap() {
        Transition::Pause(r) => assert!(r.contains("too close to call"), "{r}"),
        t => panic!("{t:?}"),
    }
    let s = load_state(&store, "m").unwrap().unwrap();
    assert!(matches!(&s.phase, Phase::Paused { resume_to, .. } if **resume_to == Phase::Shadow));
    assert_eq!(
        alias(&store, "challenger"),
        Some(2),
        "paused keeps the challenger"
    );
    // Paused: ticks change nothing.
    assert_eq!(
        c.tick(&store, &script, "m", T0 + 50_000).unwrap(),
        Transition::Stay
    );
    // A person resumes; the phase holds again from now, then passes on fresh evidence.
    let s = c.resume(&store, "m", T0 + 60_000).unwrap();
    assert_eq!(
        (s.phase.clone(), s.phase_started_ms),
        (Phase::Shadow, T0 + 60_000)
    );
    assert_eq!(
        c.tick(&store, &script, "m", T0 + 65_000).unwrap(),
        Transition::Stay
    );
    assert_eq!(
        c.tick(&store, &script, "m", T0 + 71_000).unwrap(),
        Transition::Enter(Phase::Canary { weight_pct: 5.0 })
    );
}

#[test]
fn manual_operations_and_auto_off() {
    let store = memory();
    let c = controller(RolloutSpec {
        auto: false,
        ..RolloutSpec::default()
    });
    c.start(&store, "m", 2, T0).unwrap();
    let good = Scripted::new(|_| stats(300, 0, 10.0));
    // auto: false — the controller never acts, nor asks for evidence.
    assert_eq!(
        c.tick(&store, &good, "m", T0 + 60_000).unwrap(),
        Transition::Stay
    );
    assert!(good.calls.borrow().is_empty());
    assert!(c.tick_all(&store, &good, T0 + 60_000).is_empty());
    // Nor for a model the configuration does not declare.
    let undeclared = RolloutController::default();
    assert_eq!(
        undeclared.tick(&store, &good, "m", T0 + 60_000).unwrap(),
        Transition::Stay
    );

    let s = c
        .pause(&store, "m", "waiting for the fraud team", T0 + 1)
        .unwrap();
    assert_eq!(routing(&s), Routing::Shadow);
    c.resume(&store, "m", T0 + 2).unwrap();
    let s = c.promote(&store, "m", T0 + 3).unwrap();
    assert_eq!(s.phase, Phase::Promoted);
    assert_eq!(alias(&store, "champion"), Some(2));
    assert_eq!(alias(&store, "challenger"), None);
    // Rolling back a promotion restores the champion recorded at the start.
    let s = c.rollback(&store, "m", T0 + 4).unwrap();
    assert_eq!(s.phase, Phase::RolledBack);
    assert_eq!(alias(&store, "champion"), Some(1));
    let reasons: Vec<&str> = s.decisions.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(
        reasons[1..],
        [
            "waiting for the fraud team",
            "resumed by hand",
            "promoted by hand",
            "rolled back by hand"
        ]
    );
    assert!(s.decisions.iter().all(|d| d.manual));
    assert!(
        c.rollback(&store, "m", T0 + 5)
            .unwrap_err()
            .to_string()
            .contains("already rolled back")
    );
}

#[test]
fn rollback_to_any_earlier_version_in_one_call() {
    let store = memory();
    let c = controller(RolloutSpec::default());
    // Without any rollout: version 3 is champion, go back to 2.
    store.set_alias("m", "champion", 3).unwrap();
    let s = c.rollback_to(&store, "m", 2, T0).unwrap();
    assert_eq!(alias(&store, "champion"), Some(2));
    assert_eq!(s.phase, Phase::RolledBack);
    assert_eq!(s.champion_version, Some(2));
    let d = s.decisions.last().unwrap();
    assert_eq!(
        d.reason,
        "champion set by hand to version 2 (was version 3)"
    );
    assert_eq!(d.candidate_version, 3);

    // During a rollout: it ends, the challenger alias goes.
    c.start(&store, "m", 3, T0 + 1).unwrap();
    let s = c.rollback_to(&store, "m", 1, T0 + 2).unwrap();
    assert_eq!(alias(&store, "champion"), Some(1));
    assert_eq!(alias(&store, "challenger"), None);
    assert_eq!(s.phase, Phase::RolledBack);
    assert!(
        c.rollback_to(&store, "m", 1, T0 + 3)
            .unwrap_err()
            .to_string()
            .contains("already the champion")
    );
}

#[test]
fn an_alias_moved_outside_the_rollout_pauses_it() {
    let store = memory();
    let c = controller(RolloutSpec::default());
    c.start(&store, "m", 2, T0).unwrap();
    store.set_alias("m", "challenger", 3).unwrap();
    let good = Scripted::new(|_| stats(300, 0, 10.0));
    match c.tick(&store, &good, "m", T0 + 11_000).unwrap() {
        Transition::Pause(r) => assert!(r.contains("moved to version 3"), "{r}"),
        t => panic!("{t:?}"),
    }
    assert!(good.calls.borrow().is_empty());
}

#[test]
fn a_stale_state_is_not_written_over() {
    let store = memory();
    let c = controller(RolloutSpec::default());
    let mut stale = c.start(&store, "m", 2, T0).unwrap();
    c.pause(&store, "m", "a person", T0 + 1).unwrap();
    stale.record(Phase::Promoted, T0 + 2, "late", None, false);
    assert!(matches!(
        save_state(&store, &mut stale).unwrap_err(),
        RolloutError::Conflict(_)
    ));
    assert!(matches!(
        load_state(&store, "m").unwrap().unwrap().phase,
        Phase::Paused { .. }
    ));
}

#[test]
fn the_state_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let c = controller(RolloutSpec::default());
    {
        let store = SqliteStore::open(&path, "mlflow-artifacts:").unwrap();
        registry(&store, 2);
        c.start(&store, "m", 2, T0).unwrap();
        let good = Scripted::new(|_| stats(300, 0, 10.0));
        c.tick(&store, &good, "m", T0 + 11_000).unwrap();
    }
    let store = SqliteStore::open(&path, "mlflow-artifacts:").unwrap();
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(s.phase, Phase::Canary { weight_pct: 5.0 });
    assert_eq!(s.phase_started_ms, T0 + 11_000);
    assert_eq!(s.decisions.len(), 2);
    // MLflow clients see it as an ordinary registered-model tag.
    let tag = store
        .get_registered_model("m")
        .unwrap()
        .tags
        .into_iter()
        .find(|t| t.key == STATE_TAG)
        .unwrap();
    assert!(
        tag.value.contains(r#""candidate_version":2"#),
        "{}",
        tag.value
    );
    let status = c.status(&store, "m").unwrap();
    assert_eq!((status.champion, status.challenger), (Some(1), Some(2)));
    assert!(status.auto);
    assert_eq!(
        RolloutModes.mode(&store, "m"),
        Some(crate::router::Mode::Canary { weight_pct: 5.0 })
    );
}

fn no_bake() -> RolloutSpec {
    let mut spec = RolloutSpec::default();
    spec.bake.enabled = false;
    spec
}

/// Evidence of a bake: `make(n)` gives the (candidate, previous champion) figures of
/// the n-th call; the calls are remembered.
struct Bake<F: Fn(usize) -> (VariantStats, VariantStats)> {
    make: F,
    calls: RefCell<Vec<(Option<i64>, i64, i64)>>,
}

impl<F: Fn(usize) -> (VariantStats, VariantStats)> Bake<F> {
    fn new(make: F) -> Self {
        Self {
            make,
            calls: RefCell::new(Vec::new()),
        }
    }
}

impl<F: Fn(usize) -> (VariantStats, VariantStats)> EvidenceSource for Bake<F> {
    fn evidence(
        &self,
        _model: &str,
        champion: Option<i64>,
        challenger: i64,
        since: i64,
    ) -> Evidence {
        let n = self.calls.borrow().len();
        self.calls.borrow_mut().push((champion, challenger, since));
        let (candidate, previous) = (self.make)(n);
        Evidence {
            champion: candidate,
            challenger: previous,
            now_ms: 0,
            labels_flowing: true,
        }
    }
}

fn labelled(labels: u64, metric: f64) -> VariantStats {
    VariantStats {
        labels,
        label_metric: Some(metric),
        ..stats(500, 0, 10.0)
    }
}

/// Version 3 rolled out against champion 1 and promoted by the controller after its
/// shadow phase (no canary steps): it bakes from `T0 + 11_000`.
fn promoted_to_bake(store: &dyn Store, spec: RolloutSpec) -> RolloutController {
    let mut spec = spec;
    spec.canary.steps.clear();
    let c = controller(spec);
    c.start(store, "m", 3, T0).unwrap();
    let good = Scripted::new(|_| stats(300, 1, 10.5));
    assert_eq!(
        c.tick(store, &good, "m", T0 + 11_000).unwrap(),
        Transition::Promote
    );
    c
}

#[test]
fn promotion_bakes_with_the_aliases_swapped() {
    let store = memory();
    let c = promoted_to_bake(&store, RolloutSpec::default());
    // The candidate answers; the previous champion is shadowed.
    assert_eq!(alias(&store, "champion"), Some(3));
    assert_eq!(alias(&store, "challenger"), Some(1));
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(s.phase, Phase::Baking);
    assert_eq!(
        (s.phase_started_ms, s.champion_version),
        (T0 + 11_000, Some(1))
    );
    let d = s.decisions.last().unwrap();
    assert_eq!((d.from.as_str(), d.to.as_str()), ("shadow", "baking"));
    assert_eq!(
        d.reason,
        "every phase passed its checks; baking against version 1"
    );
    assert_eq!(routing(&s), Routing::Shadow);
    assert_eq!(
        RolloutModes.mode(&store, "m"),
        Some(crate::router::Mode::Shadow)
    );
    // No new rollout while baking.
    assert!(matches!(
        c.start(&store, "m", 2, T0 + 12_000).unwrap_err(),
        RolloutError::InProgress { version: 3, .. }
    ));
    // Not enough labels yet: the bake holds, asking for the candidate as champion.
    let few = Bake::new(|_| (labelled(150, 0.5), labelled(150, 0.9)));
    assert_eq!(
        c.tick(&store, &few, "m", T0 + 20_000).unwrap(),
        Transition::Stay
    );
    assert_eq!(few.calls.borrow()[0], (Some(3), 1, T0 + 11_000));
    // Promoting by hand also bakes.
    let store = memory();
    let c = controller(RolloutSpec::default());
    c.start(&store, "m", 2, T0).unwrap();
    let s = c.promote(&store, "m", T0 + 1).unwrap();
    assert_eq!(s.phase, Phase::Baking);
    assert_eq!(
        s.decisions.last().unwrap().reason,
        "promoted by hand; baking against version 1"
    );
    assert_eq!(
        (alias(&store, "champion"), alias(&store, "challenger")),
        (Some(2), Some(1))
    );
}

#[test]
fn a_worse_bake_rolls_back_to_the_previous_champion() {
    let store = memory();
    let c = promoted_to_bake(&store, RolloutSpec::default());
    let worse = Bake::new(|_| (labelled(240, 0.612), labelled(236, 0.701)));
    let reason = match c.tick(&store, &worse, "m", T0 + 30_000).unwrap() {
        Transition::Rollback(r) => r,
        t => panic!("{t:?}"),
    };
    assert_eq!(
        reason,
        "bake: v3 scored 0.612 on 240 live labels, v1 0.701 on the same period (drop 0.089 > 0.02)"
    );
    assert_eq!(alias(&store, "champion"), Some(1));
    assert_eq!(alias(&store, "challenger"), None);
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(s.phase, Phase::RolledBack);
    let d = s.decisions.last().unwrap();
    assert_eq!((d.from.as_str(), d.to.as_str()), ("baking", "rolled back"));
    assert_eq!(d.reason, reason);
    assert!(!d.manual);
    let ev = d.evidence.as_deref().unwrap();
    assert!(
        ev.starts_with("v3 (champion) 500 req") && ev.contains("v1 (shadow) 500 req"),
        "{ev}"
    );
    assert!(ev.contains("metric 0.6120 on 240 labels"), "{ev}");
    // Finished: nothing more happens.
    assert_eq!(
        c.tick(&store, &worse, "m", T0 + 40_000).unwrap(),
        Transition::Stay
    );
}

#[test]
fn a_bake_that_holds_up_is_promoted_for_good() {
    let store = memory();
    let c = promoted_to_bake(&store, RolloutSpec::default());
    let fine = Bake::new(|_| (labelled(240, 0.69), labelled(236, 0.70)));
    assert_eq!(
        c.tick(&store, &fine, "m", T0 + 30_000).unwrap(),
        Transition::Promote
    );
    assert_eq!(alias(&store, "champion"), Some(3));
    assert_eq!(alias(&store, "challenger"), None);
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(s.phase, Phase::Promoted);
    let d = s.decisions.last().unwrap();
    assert!(
        d.reason.starts_with("bake passed: v3 scored 0.690"),
        "{}",
        d.reason
    );
    assert!(d.evidence.is_some());
    // A new rollout may start now.
    assert!(c.start(&store, "m", 2, T0 + 40_000).is_ok());
}

#[test]
fn a_bake_without_labels_passes_at_max_secs() {
    let store = memory();
    let mut spec = RolloutSpec::default();
    spec.bake.max_secs = 60;
    let c = promoted_to_bake(&store, spec);
    let none = Bake::new(|_| (stats(500, 0, 10.0), stats(500, 0, 10.0)));
    assert_eq!(
        c.tick(&store, &none, "m", T0 + 11_000 + 59_999).unwrap(),
        Transition::Stay
    );
    assert_eq!(
        c.tick(&store, &none, "m", T0 + 11_000 + 60_000).unwrap(),
        Transition::Promote
    );
    assert_eq!(
        (alias(&store, "champion"), alias(&store, "challenger")),
        (Some(3), None)
    );
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(s.phase, Phase::Promoted);
    let reason = &s.decisions.last().unwrap().reason;
    assert!(
        reason.starts_with("bake ended after 60 s without enough labels"),
        "{reason}"
    );
}

#[test]
fn by_hand_during_the_bake() {
    // Promote ends the bake for good.
    let store = memory();
    let c = promoted_to_bake(&store, RolloutSpec::default());
    let s = c.promote(&store, "m", T0 + 20_000).unwrap();
    assert_eq!(s.phase, Phase::Promoted);
    assert_eq!(
        s.decisions.last().unwrap().reason,
        "promoted by hand during the bake"
    );
    assert_eq!(
        (alias(&store, "champion"), alias(&store, "challenger")),
        (Some(3), None)
    );
    // Rollback restores the previous champion.
    let store = memory();
    let c = promoted_to_bake(&store, RolloutSpec::default());
    let s = c.rollback(&store, "m", T0 + 20_000).unwrap();
    assert_eq!(s.phase, Phase::RolledBack);
    assert_eq!(
        (alias(&store, "champion"), alias(&store, "challenger")),
        (Some(1), None)
    );
    // A paused bake is still a bake: promote ends it, resume returns to it.
    let store = memory();
    let c = promoted_to_bake(&store, RolloutSpec::default());
    c.pause(&store, "m", "look", T0 + 20_000).unwrap();
    let s = c.resume(&store, "m", T0 + 21_000).unwrap();
    assert_eq!(
        (s.phase.clone(), s.phase_started_ms),
        (Phase::Baking, T0 + 21_000)
    );
    c.pause(&store, "m", "look", T0 + 22_000).unwrap();
    c.promote(&store, "m", T0 + 23_000).unwrap();
    assert_eq!(
        (alias(&store, "champion"), alias(&store, "challenger")),
        (Some(3), None)
    );
    // An alias moved outside the bake pauses it instead of judging another version.
    let store = memory();
    let c = promoted_to_bake(&store, RolloutSpec::default());
    store.set_alias("m", "challenger", 2).unwrap();
    let any = Bake::new(|_| (labelled(240, 0.1), labelled(240, 0.9)));
    match c.tick(&store, &any, "m", T0 + 20_000).unwrap() {
        Transition::Pause(r) => {
            assert!(r.contains("challenger alias was moved to version 2"), "{r}")
        }
        t => panic!("{t:?}"),
    }
    assert!(any.calls.borrow().is_empty());
}

#[test]
fn without_a_bake_or_auto_promotion_is_final_at_once() {
    for spec in [
        no_bake(),
        RolloutSpec {
            auto: false,
            ..RolloutSpec::default()
        },
    ] {
        let store = memory();
        let c = controller(spec);
        c.start(&store, "m", 2, T0).unwrap();
        let s = c.promote(&store, "m", T0 + 1).unwrap();
        assert_eq!(s.phase, Phase::Promoted);
        assert_eq!(
            (alias(&store, "champion"), alias(&store, "challenger")),
            (Some(2), None)
        );
    }
    // Nor for a model the configuration does not declare: nobody would judge its bake.
    let store = memory();
    let c = RolloutController::default();
    c.start(&store, "m", 2, T0).unwrap();
    assert_eq!(
        c.promote(&store, "m", T0 + 1).unwrap().phase,
        Phase::Promoted
    );
}

/// Maker-checker: `m` is a high-risk model whose promotions need an approval.
fn with_approvals(spec: RolloutSpec) -> (RolloutController, Arc<Approvals>) {
    let required = std::collections::BTreeSet::from(["high".to_string()]);
    let approvals = Arc::new(
        Approvals::in_memory(
            [("m".to_string(), "high".to_string())],
            &required,
            chrono::Duration::hours(1),
        )
        .unwrap(),
    );
    (
        controller(spec).with_approvals(approvals.clone()),
        approvals,
    )
}

fn approver(name: &str) -> freshet_govern::identity::Principal {
    use freshet_govern::identity::{AuthMethod, Grant, Principal, Role};
    Principal {
        name: name.into(),
        method: AuthMethod::Token,
        grants: vec![Grant::new(vec![Role::Approver], vec!["model:m".into()]).unwrap()],
    }
}

/// Ticks with good evidence until the controller stops moving on its own.
fn tick_until_quiet(c: &RolloutController, store: &dyn Store, now: &mut i64) -> Vec<Transition> {
    let good = Scripted::new(|_| stats(300, 1, 10.5));
    let mut taken = Vec::new();
    for _ in 0..10 {
        *now += 11_000;
        let t = c.tick(store, &good, "m", *now).unwrap();
        if t == Transition::Stay {
            break;
        }
        taken.push(t);
    }
    taken
}

#[test]
fn the_loop_waits_for_an_approval_then_promotes() {
    let store = memory();
    let (c, approvals) = with_approvals(no_bake());
    c.start(&store, "m", 3, T0).unwrap();
    let mut now = T0;
    let taken = tick_until_quiet(&c, &store, &mut now);
    let Some(Transition::AwaitApproval(id)) = taken.last().cloned() else {
        panic!("expected to await approval, got {taken:?}");
    };
    // Parked: the champion keeps answering, the challenger is shadowed.
    assert_eq!(alias(&store, "champion"), Some(1));
    assert_eq!(alias(&store, "challenger"), Some(3));
    let s = load_state(&store, "m").unwrap().unwrap();
    assert_eq!(
        s.phase,
        Phase::AwaitingApproval {
            request: id.clone()
        }
    );
    assert_eq!(routing(&s), Routing::Shadow);
    // Nothing moves while it waits.
    assert!(tick_until_quiet(&c, &store, &mut now).is_empty());
    let r = approvals.get(&id).unwrap().unwrap();
    assert_eq!(r.requested_by, "system:loop");
    approvals
        .decide(&id, &approver("token:carol"), true, None)
        .unwrap();
    assert_eq!(
        tick_until_quiet(&c, &store, &mut now),
        [Transition::Promote]
    );
    assert_eq!(alias(&store, "champion"), Some(3));
    assert_eq!(
        load_state(&store, "m").unwrap().unwrap().phase,
        Phase::Promoted
    );
}

#[test]
fn a_rejection_rolls_the_loop_back_and_rollback_never_waits() {
    let store = memory();
    let (c, approvals) = with_approvals(no_bake());
    c.start(&store, "m", 3, T0).unwrap();
    let mut now = T0;
    let taken = tick_until_quiet(&c, &store, &mut now);
    let Some(Transition::AwaitApproval(id)) = taken.last().cloned() else {
        panic!("expected to await approval, got {taken:?}");
    };
    approvals
        .decide(&id, &approver("token:carol"), false, Some("no"))
        .unwrap();
    let t = tick_until_quiet(&c, &store, &mut now);
    assert!(
        matches!(t.as_slice(), [Transition::Rollback(r)] if r.contains("rejected by token:carol")),
        "{t:?}"
    );
    assert_eq!(alias(&store, "champion"), Some(1));
    assert_eq!(alias(&store, "challenger"), None);
    // A rollback by hand needs no approval, even while one is pending.
    c.start(&store, "m", 2, now).unwrap();
    let _ = tick_until_quiet(&c, &store, &mut now);
    assert!(matches!(
        load_state(&store, "m").unwrap().unwrap().phase,
        Phase::AwaitingApproval { .. }
    ));
    c.rollback(&store, "m", now).unwrap();
    assert_eq!(alias(&store, "champion"), Some(1));
    c.rollback_to(&store, "m", 2, now).unwrap();
    assert_eq!(
        alias(&store, "champion"),
        Some(2),
        "rollback_to never waits"
    );
}

#[test]
fn a_promotion_by_hand_waits_too_and_the_requester_cannot_approve_it() {
    let store = memory();
    let (c, approvals) = with_approvals(no_bake());
    c.start(&store, "m", 3, T0).unwrap();
    let s = c.promote_as(&store, "m", T0 + 1, "token:alice").unwrap();
    let Phase::AwaitingApproval { request } = s.phase.clone() else {
        panic!("expected to await approval: {:?}", s.phase);
    };
    assert_eq!(alias(&store, "champion"), Some(1));
    let own = approvals.decide(&request, &approver("token:alice"), true, None);
    assert!(own.is_err(), "the requester may not approve");
    approvals
        .decide(&request, &approver("token:bob"), true, None)
        .unwrap();
    let s = c.promote_as(&store, "m", T0 + 2, "token:alice").unwrap();
    assert_eq!(s.phase, Phase::Promoted);
    assert_eq!(alias(&store, "champion"), Some(3));
    // An expired approval does not count: a new request opens.
    c.start(&store, "m", 2, T0 + 3).unwrap();
    let s = c.promote_as(&store, "m", T0 + 4, "token:alice").unwrap();
    let Phase::AwaitingApproval { request } = s.phase.clone() else {
        panic!("{:?}", s.phase);
    };
    approvals
        .decide(&request, &approver("token:bob"), true, None)
        .unwrap();
    approvals
        .set_expiry(&request, chrono::Utc::now() - chrono::Duration::seconds(1))
        .unwrap();
    let s = c.promote_as(&store, "m", T0 + 5, "token:alice").unwrap();
    assert!(
        matches!(&s.phase, Phase::AwaitingApproval { request: r } if *r != request),
        "{:?}",
        s.phase
    );
    assert_eq!(alias(&store, "champion"), Some(3));
}
