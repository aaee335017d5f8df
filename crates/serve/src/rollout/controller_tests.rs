//! The controller against a real (in-memory or file) SQLite registry: aliases move as
//! the phases say, decisions are recorded, and the state survives a reopen.

use super::*;
use crate::router::ModeSource;
use freshet_core::model_spec::RolloutSpec;
use freshet_registry::models::NewModelVersion;
use freshet_registry::{ModelStore, SqliteStore, Store};
use std::cell::RefCell;
use std::collections::BTreeMap;

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
    let c = controller(RolloutSpec::default());
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
