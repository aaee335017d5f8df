//! Recovery by default (issue 10): `freshet demo` with nothing but the stream, the
//! label delay and the rate given, on streams nobody tuned the defaults on.
//!
//! The streams were chosen once, before the defaults were measured on them: each of
//! the project's concept-drift generators with one abrupt change, one seed each, and
//! labels 50 and 300 events late, at 300 events a second (the pace of the issue's
//! report). Over the run, what was served must score at least the no-change baseline
//! at the same label delay, and at least what v1 left in place would have, less the
//! bake's margin. The events to recovery are printed; at delay 50 they must stay within
//! [`RECOVERY_GUARD`] (the target is [`RECOVERY_LIMIT`], which the defaults
//! reach on the hyperplane and SEA, and on Agrawal in one run of two; see
//! docs/benchmarks.md). Elec2 runs with the
//! README's own command and must beat both outright. The runs go one after another in
//! one test, so they do not compete for the two cores with each other.

use crate::harness::BIN;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Drift onset and stream length of the generated runs: 10,000 events after the
/// change, as in the report.
const DRIFT_AT: u64 = 3_000;
const EVENTS: u64 = 13_000;
const RATE: u64 = 300;
const RECOVERY_LIMIT: u64 = 2_000;
/// What a run at delay 50 must recover within: the target plus two 500-event windows
/// of slack, a guard against regressions rather than the target itself (one window's
/// accuracy moves by a point or two between runs).
const RECOVERY_GUARD: u64 = 3_000;
/// The bake's default `max_accuracy_drop`.
const BAKE_MARGIN: f64 = 0.02;

/// Run `freshet demo` with `args`; its `summary.json` and printed output.
fn demo(run: &Path, args: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(BIN)
        .arg("demo")
        .arg("--dir")
        .arg(run)
        .args(args)
        .env_remove("FRESHET_PII_KEY")
        .env_remove("FRESHET_CONFIG")
        .output()
        .expect("run freshet demo");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{text}\n{err}");
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).expect("summary.json"))
            .expect("summary.json is JSON");
    (figures, text)
}

fn whole(figures: &serde_json::Value) -> (f64, f64, f64) {
    let served = figures["served"]["whole"]["accuracy"]
        .as_f64()
        .unwrap_or(0.0);
    let no_change = figures["no_change"]["whole"]["accuracy"]
        .as_f64()
        .unwrap_or(1.0);
    let static_v1 = figures["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["version"] == 1))
        .and_then(|v| v["whole"]["accuracy"].as_f64())
        .unwrap_or(1.0);
    (served, static_v1, no_change)
}

#[test]
fn the_defaults_recover_from_abrupt_change_on_untuned_streams() {
    let _demo = crate::harness::one_demo_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut table = String::new();
    for (generator, seed) in [("sea", "3"), ("agrawal", "5"), ("hyperplane", "8")] {
        for delay in [50u64, 300] {
            let run = dir.path().join(format!("{generator}-{delay}"));
            let (figures, text) = demo(
                &run,
                &[
                    "--generator",
                    generator,
                    "--seed",
                    seed,
                    "--drift-at",
                    &DRIFT_AT.to_string(),
                    "--events",
                    &EVENTS.to_string(),
                    "--rate",
                    &RATE.to_string(),
                    "--label-delay",
                    &delay.to_string(),
                    "--max-seconds",
                    "120",
                ],
            );
            assert_eq!(figures["events"], EVENTS, "{generator}: {text}");
            let (served, static_v1, no_change) = whole(&figures);
            let recovered = figures["recovery"]["served"]["events_to_recovery"].as_u64();
            table.push_str(&format!(
                "{generator:<10} delay {delay:>3}: served {served:.4}, static {static_v1:.4}, no change {no_change:.4}, recovery {recovered:?}\n"
            ));
            // The bake rolls back a version that scores more than its margin (2 points)
            // below the one it replaced on the same live labels: that is the
            // guarantee, so the static model is met within it.
            if served < static_v1 - BAKE_MARGIN {
                failures.push(format!(
                    "{generator} delay {delay}: served {served:.4} < static v1 {static_v1:.4}"
                ));
            }
            if served < no_change {
                failures.push(format!(
                    "{generator} delay {delay}: served {served:.4} < no change {no_change:.4}"
                ));
            }
            if delay == 50 && recovered.is_none_or(|r| r > RECOVERY_GUARD) {
                failures.push(format!(
                    "{generator} delay {delay}: recovery {recovered:?} events, beyond the guard of {RECOVERY_GUARD} (target {RECOVERY_LIMIT})\n{text}"
                ));
            }
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}

/// Elec2, where the first version used to serve worse than leaving it alone: the
/// README's command, nothing else.
#[test]
fn elec2_with_the_readme_command_beats_standing_still() {
    let _demo = crate::harness::one_demo_at_a_time();
    let data = std::env::var_os("FRESHET_ELEC2")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/elec2.csv")
        });
    assert!(
        data.exists(),
        "Elec2 is expected at {} (the shared/ folder beside the repository); set FRESHET_ELEC2 to its path",
        data.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("elec2");
    let (figures, text) = demo(
        &run,
        &["--data", data.to_str().unwrap(), "--label", "class"],
    );
    assert_eq!(figures["events"], 45_312, "{text}");
    let (served, static_v1, no_change) = whole(&figures);
    assert!(
        served >= static_v1 && served >= no_change,
        "served {served:.4}, static v1 {static_v1:.4}, no change {no_change:.4}\n{text}"
    );
}
