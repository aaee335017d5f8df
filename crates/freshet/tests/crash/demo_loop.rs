//! The loop end to end at small scale, through `freshet demo` with a fixed seed: the
//! fraud pattern changes, the drift is detected on the live error stream, a new version
//! is trained on the new concept, gated against the champion, rolled out through
//! shadow and canary and promoted — with no manual step.

use crate::harness::BIN;
use freshet_registry::{ModelStore, SqliteStore};
use std::process::Command;

#[test]
fn drift_is_detected_retrained_gated_and_promoted_without_a_person() {
    let _demo = crate::harness::one_demo_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("demo");
    let out = Command::new(BIN)
        .args([
            "demo",
            "--dir",
            run.to_str().unwrap(),
            "--seed",
            "7",
            "--rate",
            "2500",
            "--drift-at",
            "8000",
            "--initial-rows",
            "2000",
            "--rows-after-drift",
            "2500",
            "--after-promotion",
            "2000",
            "--max-seconds",
            "150",
        ])
        .env_remove("FRESHET_PII_KEY")
        .env_remove("FRESHET_CONFIG")
        .output()
        .expect("run freshet demo");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{text}\n{err}");
    // The registry says which version answered the drift: the first answer may fail
    // its gates (trained on too few rows of the new pattern) and be trained again.
    let store = SqliteStore::open(&run.join("data/registry.db"), "mlflow-artifacts:").unwrap();
    let champion = store.get_version_by_alias("fraud", "champion").unwrap();
    let v = champion.version;
    assert!(v >= 2, "{text}");
    for expected in [
        "first champion".to_string(),
        "the fraud pattern changes now (event 8000)".into(),
        "concept drift (adwin on the live error stream) detected".into(),
        format!("rollout: v{v} shadow"),
        format!("rollout: v{v} canary 50%"),
        format!("rollout: v{v} promoted"),
        "onset → new champion:".into(),
    ] {
        assert!(text.contains(&expected), "missing '{expected}' in:\n{text}");
    }
    // The champion was retrained after the drift and passed its gates.
    let tag = |k: &str| {
        champion
            .tags
            .iter()
            .find(|t| t.key == k)
            .map(|t| t.value.clone())
    };
    assert!(tag("freshet.trigger").unwrap_or_default().contains("drift"));
    assert_eq!(tag("freshet.gates").as_deref(), Some("passed"));
    // And the retrained model beats the static one after the drift (summary.json holds
    // the figures of the printed table).
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    let after_auc = |version: i64| -> f64 {
        figures["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == version)
            .and_then(|v| v["after"]["roc_auc"].as_f64())
            .unwrap_or(0.0)
    };
    assert!(after_auc(v) > after_auc(1), "{figures:#}");
    assert!(figures["drift"]["new_champion_secs"].as_f64().is_some());
}

/// `freshet demo --data <csv> --label <col>` with an online learner: the CSV's concept
/// flips halfway; the live learner keeps learning, its snapshots are rolled out, and
/// what was served beats the static first version over the run.
#[test]
fn a_csv_stream_runs_the_loop_with_an_online_learner() {
    let _demo = crate::harness::one_demo_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("flip.csv");
    let mut text = String::from("x,kind,y\n");
    for i in 0..6000u64 {
        let x = ((i * 37) % 1000) as f64 / 1000.0;
        let kind = ["a", "b", "c"][(i % 3) as usize];
        let up = if i < 3000 { x > 0.5 } else { x < 0.5 };
        text.push_str(&format!("{x},{kind},{}\n", if up { "UP" } else { "DOWN" }));
    }
    std::fs::write(&csv, text).unwrap();
    let run = dir.path().join("demo");
    let out = Command::new(BIN)
        .args([
            "demo",
            "--dir",
            run.to_str().unwrap(),
            "--data",
            csv.to_str().unwrap(),
            "--label",
            "y",
            "--learner",
            "hoeffding_adaptive_tree",
            "--job",
            "online",
            "--retrain-rows",
            "500",
            "--initial-rows",
            "500",
            "--rows-after-drift",
            "200",
            "--rollout-requests",
            "50",
            "--rollout-secs",
            "0",
            "--rate",
            "600",
            "--label-delay",
            "20",
            "--max-seconds",
            "60",
        ])
        .env_remove("FRESHET_PII_KEY")
        .env_remove("FRESHET_CONFIG")
        .output()
        .expect("run freshet demo");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{text}\n{err}");
    assert!(text.contains("first champion"), "{text}");
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(figures["events"], 6000, "{figures:#}");
    let versions = figures["versions"].as_array().unwrap();
    assert!(versions.len() >= 3, "{figures:#}");
    let served = figures["served"]["whole"]["accuracy"].as_f64().unwrap();
    let static_v1 = versions[0]["whole"]["accuracy"].as_f64().unwrap();
    // The static model is right on one half and wrong on the other.
    assert!(static_v1 < 0.65, "{figures:#}");
    assert!(served > static_v1 + 0.15, "{figures:#}");
    // The snapshots say what they learnt through.
    let store = SqliteStore::open(&run.join("data/registry.db"), "mlflow-artifacts:").unwrap();
    let v2 = store.get_model_version("demo", 2).unwrap();
    assert!(
        v2.tags.iter().any(|t| t.key == "freshet.online_through"),
        "{:?}",
        v2.tags
    );
}
