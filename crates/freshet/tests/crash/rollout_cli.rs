//! `freshet rollout` as a person uses it: against a registry file that a server could
//! be using at the same time, every command moves the aliases and records a decision,
//! and mistakes are errors that say what is wrong.

use crate::harness::Env;
use freshet_registry::models::NewModelVersion;
use freshet_registry::{ModelStore, SqliteStore};

const BODY: &str = r#"
registry: { path: data/registry.db, artifacts: data/artifacts }
streams:
  pay:
    source: { type: http }
    schema:
      fields:
        - { name: amount, type: float }
        - { name: is_fraud, type: bool }
models:
  fraud:
    stream: pay
    label: is_fraud
    rollout: { auto: false, canary: { steps: [10, 50] } }
"#;

fn run(env: &Env, args: &[&str]) -> (bool, String) {
    let log = format!("cli-{}.log", args.join("-").replace(['/', ' '], "_"));
    let _ = std::fs::remove_file(env.data.join(&log));
    let status = env.command(&log, args).status().expect("run freshet");
    let text = std::fs::read_to_string(env.data.join(&log)).unwrap_or_default();
    (status.success(), text)
}

fn store(env: &Env) -> SqliteStore {
    SqliteStore::open(&env.data.join("registry.db"), "mlflow-artifacts:").unwrap()
}

fn alias(env: &Env, name: &str) -> Option<i64> {
    store(env)
        .get_version_by_alias("fraud", name)
        .ok()
        .map(|v| v.version)
}

#[test]
fn rollout_commands_move_aliases_and_explain_themselves() {
    let env = Env::new("", BODY);
    let (ok, out) = run(&env, &["rollout", "status", "fraud"]);
    assert!(!ok && out.contains("no registered model 'fraud'"), "{out}");
    {
        let s = store(&env);
        s.create_registered_model("fraud", &[], None).unwrap();
        for i in 1..=3 {
            s.create_model_version(NewModelVersion {
                name: "fraud".into(),
                source: format!("mlflow-artifacts:/x/{i}"),
                ..Default::default()
            })
            .unwrap();
        }
        s.set_alias("fraud", "champion", 1).unwrap();
    }
    let (ok, out) = run(&env, &["rollout", "status", "fraud"]);
    assert!(ok && out.contains("none yet"), "{out}");
    let (ok, out) = run(&env, &["rollout", "pause", "fraud"]);
    assert!(!ok && out.contains("no rollout in progress"), "{out}");
    let (ok, out) = run(&env, &["rollout", "start", "fraud", "--version", "9"]);
    assert!(
        !ok && out.contains("model 'fraud' has no version 9"),
        "{out}"
    );

    let (ok, out) = run(&env, &["rollout", "start", "fraud", "--version", "2"]);
    assert!(ok && out.contains("candidate -> shadow"), "{out}");
    assert_eq!(alias(&env, "challenger"), Some(2));
    let (ok, out) = run(&env, &["rollout", "start", "fraud", "--version", "3"]);
    assert!(
        !ok && out.contains("already has a rollout of version 2"),
        "{out}"
    );

    let (ok, out) = run(
        &env,
        &["rollout", "pause", "fraud", "--reason", "fraud team review"],
    );
    assert!(ok, "{out}");
    let (ok, out) = run(&env, &["rollout", "status", "fraud"]);
    assert!(ok, "{out}");
    for want in [
        "challenger  version 2",
        "rollout     version 2 against champion version 1: paused at shadow",
        "paused at shadow",
        "fraud team review",
        "waits for commands (auto: false)",
        "shadow (mirrored",
    ] {
        assert!(out.contains(want), "{want} missing from\n{out}");
    }
    assert!(run(&env, &["rollout", "resume", "fraud"]).0);
    let (ok, out) = run(&env, &["rollout", "promote", "fraud"]);
    assert!(ok && out.contains("-> promoted"), "{out}");
    assert_eq!(
        (alias(&env, "champion"), alias(&env, "challenger")),
        (Some(2), None)
    );
    let (ok, out) = run(&env, &["rollout", "promote", "fraud"]);
    assert!(!ok && out.contains("already promoted"), "{out}");

    // Undo the promotion, then go to any version in one command.
    let (ok, out) = run(&env, &["rollout", "rollback", "fraud"]);
    assert!(ok && out.contains("promoted -> rolled back"), "{out}");
    assert_eq!(alias(&env, "champion"), Some(1));
    let (ok, out) = run(&env, &["rollout", "rollback", "fraud", "--to-version", "3"]);
    assert!(ok && out.contains("version 3 (was version 1)"), "{out}");
    assert_eq!(alias(&env, "champion"), Some(3));
    let (ok, out) = run(&env, &["rollout", "rollback", "fraud", "--to-version", "7"]);
    assert!(!ok && out.contains("has no version 7"), "{out}");

    let (ok, out) = run(&env, &["rollout", "status", "fraud"]);
    assert!(ok, "{out}");
    assert!(out.contains("champion    version 3"), "{out}");
    assert!(
        out.contains("last rollout version 2: rolled back at"),
        "{out}"
    );
    let rows = out.lines().filter(|l| l.contains(" v2 ")).count();
    assert_eq!(
        rows, 6,
        "start, pause, resume, promote, rollback, rollback-to:\n{out}"
    );
    assert!(out.contains("person"), "{out}");
}
