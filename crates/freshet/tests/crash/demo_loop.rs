//! The loop end to end at small scale, through `freshet demo` with a fixed seed: the
//! fraud pattern changes, the drift is detected on the live error stream, a new version
//! is trained on the new concept, gated against the champion, rolled out through
//! shadow and canary and promoted — with no manual step.

use crate::harness::BIN;
use freshet_registry::{ModelStore, SqliteStore};
use std::process::Command;

#[test]
fn drift_is_detected_retrained_gated_and_promoted_without_a_person() {
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
    for expected in [
        "first champion",
        "the fraud pattern changes now (event 8000)",
        "concept drift (adwin on the live error stream) detected",
        "rollout: v2 shadow",
        "rollout: v2 canary 50%",
        "rollout: v2 promoted",
        "onset → new champion:",
    ] {
        assert!(text.contains(expected), "missing '{expected}' in:\n{text}");
    }
    // The registry agrees: the champion was retrained after the drift and passed its gates.
    let store = SqliteStore::open(&run.join("data/registry.db"), "mlflow-artifacts:").unwrap();
    let champion = store.get_version_by_alias("fraud", "champion").unwrap();
    assert!(champion.version >= 2, "{text}");
    let tag = |k: &str| {
        champion
            .tags
            .iter()
            .find(|t| t.key == k)
            .map(|t| t.value.clone())
    };
    assert!(tag("freshet.trigger").unwrap_or_default().contains("drift"));
    assert_eq!(tag("freshet.gates").as_deref(), Some("passed"));
    // And the retrained model beats the static one after the drift.
    let summary = text.split("Summary").nth(1).unwrap_or_default().to_string();
    let after_auc = |prefix: &str| -> f64 {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_default();
        line.split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(after_auc("v2") > after_auc("v1"), "{summary}");
}
