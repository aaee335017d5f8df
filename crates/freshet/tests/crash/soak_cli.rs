//! `freshet bench soak` as an operator runs it, shortened: the whole loop (ingest,
//! scoring with capture, feedback, retraining) under a paced load against its own
//! server, a row per interval, and the judgement in its JSON report. A short run may
//! well fail the growth checks (a server's first minute is its warm-up), so this test
//! holds the run to what must be true at any length: every request answered, the
//! rates held, a sample per interval with the server's figures in it.

use crate::harness::BIN;

#[test]
fn a_short_soak_samples_every_interval_with_no_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("soak.json");
    let out = std::process::Command::new(BIN)
        .args([
            "bench",
            "soak",
            "--minutes",
            "0.5",
            "--interval-secs",
            "5",
            "--warmup-minutes",
            "0.1",
            "--score-rate",
            "200",
            "--connections",
            "4",
            "--ingest-rate",
            "1000",
            "--ingest-batch",
            "100",
            "--label-every",
            "5",
            "--json",
        ])
        .arg(&json)
        .env("FRESHET_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&json).unwrap_or_else(|e| panic!("no report ({e}): {stdout}\n{stderr}")),
    )
    .unwrap();
    let samples = report["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 6, "{stdout}");
    for s in samples {
        assert!(s["rss_mb"].as_f64().unwrap() > 10.0, "{s}");
        assert!(s["open_files"].as_u64().unwrap() > 0, "{s}");
        assert!(s["threads"].as_u64().unwrap() > 0, "{s}");
        assert!(s["lake_mb"].as_f64().unwrap() > 0.0, "{s}");
        assert_eq!(s["errors"], 0, "{s}");
    }
    // Labels reached the feedback route (one answer in five is labelled).
    let labels: u64 = samples
        .iter()
        .map(|s| s["labels_fed"].as_u64().unwrap())
        .sum();
    assert!(labels > 200, "{labels} labels fed: {stdout}");
    let check = |what: &str| {
        report["verdict"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["what"].as_str().unwrap().starts_with(what))
            .unwrap_or_else(|| panic!("no check {what}: {}", report["verdict"]))
            .clone()
    };
    assert_eq!(check("no failed request")["passed"], true, "{stdout}");
    assert_eq!(check("rates held")["passed"], true, "{stdout}");
    // Whatever the verdict, the exit status agrees with it.
    assert_eq!(
        out.status.success(),
        report["passed"] == true,
        "{stdout}\n{stderr}"
    );
}
