//! Probes and Prometheus metrics agree with what was sent.

use crate::support::{TestServer, metric};
use serde_json::json;

const STREAMS: &str = "  m:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true }
        - { name: amount, type: float, min: 0 }
    transforms:
      - { type: filter, expr: \"amount == null || amount < 1000.0\" }
    commit: { max_latency_ms: 20 }
  other:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string }
    commit: { max_latency_ms: 20 }
";

const SERIES: [&str; 8] = [
    "freshet_records_in_total",
    "freshet_records_out_total",
    "freshet_records_rejected_total",
    "freshet_records_filtered_total",
    "freshet_dead_letters_total",
    "freshet_commit_duration_seconds",
    "freshet_commit_records",
    "freshet_buffered_records",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_match_the_traffic() {
    let ts = TestServer::start(STREAMS).await;

    let r = ts.get("/healthz").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = ts.get("/readyz").await;
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["sources"],
        serde_json::json!({}),
        "no connector sources here"
    );
    let r = ts.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    assert_eq!(
        metric(&r.text(), "freshet_buffered_records", &[]),
        Some(0.0)
    );

    // 5 records: 2 accepted, 2 rejected, 1 filtered; then 3 more accepted.
    let r = ts
        .post_json(
            "m",
            json!([
                {"id": "a", "amount": 1.0},
                {"id": "b"},
                {"amount": 2.0},
                {"id": "d", "amount": -1},
                {"id": "e", "amount": 5000},
            ])
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            &r.json()["accepted"],
            &r.json()["rejected"],
            &r.json()["filtered"]
        ),
        (&json!(2), &json!(2), &json!(1))
    );
    let r = ts
        .post_json("m", "{\"id\":\"f\"}\n{\"id\":\"g\"}\n{\"id\":\"h\"}\n")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = ts.post_json("other", "{\"id\":\"z\"}").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A request refused as a whole is not counted as records.
    let r = ts.post_json("m", "[{\"id\": }]").await;
    assert_eq!(r.status, 400);

    let text = ts.metrics().await;
    for s in SERIES {
        assert!(
            text.contains(&format!("# TYPE {s} ")),
            "series {s} missing:\n{text}"
        );
    }
    assert!(text.contains("# TYPE freshet_commit_duration_seconds histogram"));
    let m = [("stream", "m")];
    let get = |name: &str| {
        metric(&text, name, &m).unwrap_or_else(|| panic!("{name}{{stream=m}}:\n{text}"))
    };
    assert_eq!(get("freshet_records_in_total"), 8.0);
    assert_eq!(get("freshet_records_out_total"), 5.0);
    assert_eq!(get("freshet_records_rejected_total"), 2.0);
    assert_eq!(get("freshet_records_filtered_total"), 1.0);
    assert_eq!(get("freshet_dead_letters_total"), 2.0);
    // Two requests, each waited for its own commit: two commits.
    assert_eq!(get("freshet_commit_duration_seconds_count"), 2.0);
    let secs = get("freshet_commit_duration_seconds_sum");
    assert!(secs > 0.0 && secs < 10.0, "{secs}");
    assert_eq!(
        metric(
            &text,
            "freshet_commit_duration_seconds_bucket",
            &[("stream", "m"), ("le", "+Inf")]
        ),
        Some(2.0)
    );
    // Records per commit: rows and dead letters (filtered records are not committed).
    assert_eq!(get("freshet_commit_records_count"), 2.0);
    assert_eq!(get("freshet_commit_records_sum"), 4.0 + 3.0);
    assert_eq!(metric(&text, "freshet_buffered_records", &[]), Some(0.0));
    // The other stream has its own series.
    let o = [("stream", "other")];
    assert_eq!(metric(&text, "freshet_records_in_total", &o), Some(1.0));
    assert_eq!(metric(&text, "freshet_records_out_total", &o), Some(1.0));
    // And the tables agree.
    assert_eq!(ts.count("events/m").await, 5);
    assert_eq!(ts.count("dlq/m").await, 2);

    // Readiness turns off when the server stops (checked inside shutdown).
    assert!(ts.ready.load(std::sync::atomic::Ordering::SeqCst));
    ts.shutdown().await;
}
