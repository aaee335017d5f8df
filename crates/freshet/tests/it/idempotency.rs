//! `Idempotency-Key`: a repeated request is answered as before and writes nothing.

use crate::support::TestServer;
use serde_json::json;

const STREAMS: &str = "  orders:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true }
        - { name: qty, type: int, min: 1 }
    transforms:
      - { type: filter, expr: \"qty == null || qty < 100\" }
    commit: { max_latency_ms: 20 }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_is_replayed_other_key_is_written() {
    let ts = TestServer::start(STREAMS).await;
    let body = json!([
        {"id": "o1", "qty": 1},
        {"id": "o2", "qty": 2},
        {"id": "o3"},
        {"id": "bad", "qty": 0},
        {"id": "big", "qty": 500},
    ])
    .to_string();
    let ct = Some("application/json");

    let first = ts.post("orders", body.clone(), ct, Some("key-1")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    assert_eq!(
        (&first["accepted"], &first["rejected"], &first["filtered"]),
        (&json!(3), &json!(1), &json!(1)),
        "{first}"
    );
    assert_eq!(first["replayed"], false);
    assert!(first["version"].is_i64());
    assert_eq!(ts.count("events/orders").await, 3);
    assert_eq!(ts.count("dlq/orders").await, 1);
    let version = ts.info("events/orders").await.version;

    // The same body and key: replayed, same counts, nothing written.
    for _ in 0..2 {
        let again = ts.post("orders", body.clone(), ct, Some("key-1")).await;
        assert_eq!(again.status, 200, "{}", again.text());
        let again = again.json();
        assert_eq!(again["replayed"], true, "{again}");
        for k in ["stream", "accepted", "rejected", "filtered", "rejections"] {
            assert_eq!(again[k], first[k], "{k}: {again} vs {first}");
        }
        assert_eq!(
            ts.count("events/orders").await,
            3,
            "a replay writes no rows"
        );
        assert_eq!(ts.count("dlq/orders").await, 1, "nor dead letters");
        assert_eq!(
            ts.info("events/orders").await.version,
            version,
            "nor commits"
        );
    }

    // Another key: written again.
    let other = ts.post("orders", body.clone(), ct, Some("key-2")).await;
    assert_eq!(other.status, 200, "{}", other.text());
    let other = other.json();
    assert_eq!(other["replayed"], false, "{other}");
    assert_eq!(other["accepted"], 3);
    assert_eq!(ts.count("events/orders").await, 6);
    assert_eq!(ts.count("dlq/orders").await, 2);
    // Keys are per stream and distinguish requests, not bodies: no key, written again.
    let none = ts.post("orders", body.clone(), ct, None).await;
    assert_eq!(none.status, 200, "{}", none.text());
    assert_eq!(none.json()["replayed"], false);
    assert_eq!(ts.count("events/orders").await, 9);

    // Event ids of a keyed request are deterministic: the rows of key-1 and key-2
    // differ, and there is no duplicate id.
    let rows = ts.rows("events/orders").await;
    let ids: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["_event_id"].as_str().expect("_event_id"))
        .collect();
    assert_eq!(ids.len(), rows.len(), "unique _event_id");

    // Concurrent requests with one new key: exactly one write.
    let mut tasks = Vec::new();
    let ts = std::sync::Arc::new(ts);
    for _ in 0..6 {
        let (ts, body) = (ts.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let r = ts
                .post("orders", body, Some("application/json"), Some("key-3"))
                .await;
            (r.status, r.header("retry-after"), r.text())
        }));
    }
    let mut written = 0;
    for t in tasks {
        let (status, retry_after, text) = t.await.expect("task");
        match status {
            200 => {
                let v: serde_json::Value = serde_json::from_str(&text).expect("json");
                if v["replayed"] == false {
                    written += 1;
                }
            }
            // Still in flight: ask again later.
            409 => assert!(retry_after.is_some(), "{text}"),
            s => panic!("status {s}: {text}"),
        }
    }
    assert!(written <= 1, "{written} writes for one key");
    let r = ts.post("orders", body.clone(), ct, Some("key-3")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    if written == 0 {
        assert_eq!(r.json()["replayed"], false);
    } else {
        assert_eq!(r.json()["replayed"], true);
    }
    assert_eq!(ts.count("events/orders").await, 12, "key-3 written once");

    let ts = std::sync::Arc::try_unwrap(ts).unwrap_or_else(|_| panic!("sole owner"));
    ts.shutdown().await;
}
