//! Memory stays bounded under load: past `server.max_buffered_records` ingest answers
//! 503 with `Retry-After`, and every acknowledged record is stored exactly once.

use crate::support::{Options, TestServer, metric};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const BOUND: usize = 2000;
const STREAMS: &str = "  load:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true }
        - { name: v, type: int, required: true }
    commit: { max_latency_ms: 500 }
";

const REQUESTS: usize = 32;
const PER_REQUEST: usize = 250;

fn body(req: usize, n: usize) -> String {
    let records: Vec<_> = (0..n)
        .map(|i| json!({ "id": format!("r{req}-{i}"), "v": i }))
        .collect();
    serde_json::Value::Array(records).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturation_answers_503_and_loses_nothing() {
    let ts = Arc::new(
        TestServer::start_with(Options {
            max_buffered_records: BOUND,
            ..Options::new(STREAMS)
        })
        .await,
    );

    // Watch the buffer, directly and through /metrics, while the load runs.
    let stop = Arc::new(AtomicBool::new(false));
    let max_direct = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (ts, stop, max_direct) = (ts.clone(), stop.clone(), max_direct.clone());
        tokio::spawn(async move {
            let mut max_metric = 0f64;
            let mut samples = 0;
            while !stop.load(Ordering::SeqCst) {
                max_direct.fetch_max(ts.ingest.buffered(), Ordering::SeqCst);
                let m = ts.metrics().await;
                let b = metric(&m, "freshet_buffered_records", &[]).expect("gauge present");
                max_metric = max_metric.max(b);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (max_metric, samples)
        })
    };

    // Many concurrent requests; each retries on 503 after `Retry-After`, with the same
    // Idempotency-Key so that a retry can never duplicate.
    let mut tasks = Vec::new();
    for req in 0..REQUESTS {
        let ts = ts.clone();
        tasks.push(tokio::spawn(async move {
            let b = body(req, PER_REQUEST);
            let key = format!("load-{req}");
            let mut saw_503 = 0;
            let mut statuses = Vec::new();
            for _attempt in 0..100 {
                let r = ts
                    .post("load", b.clone(), Some("application/json"), Some(&key))
                    .await;
                statuses.push(r.status);
                match r.status {
                    200 => {
                        let out = r.json();
                        assert_eq!(out["accepted"], PER_REQUEST, "{out}");
                        return (req, true, saw_503, statuses);
                    }
                    503 => {
                        saw_503 += 1;
                        let ra = r
                            .header("retry-after")
                            .unwrap_or_else(|| panic!("503 without Retry-After: {}", r.text()));
                        let secs: u64 = ra.parse().expect("Retry-After in seconds");
                        assert!(secs >= 1, "{ra}");
                        let code = r.json()["error"]["code"].as_str().map(str::to_string);
                        assert!(matches!(code.as_deref(), Some("saturated")), "{}", r.text());
                        // Honour the hint, scaled down to keep the test short.
                        tokio::time::sleep(Duration::from_millis(100 * secs)).await;
                    }
                    s => panic!("request {req}: unexpected status {s}: {}", r.text()),
                }
            }
            (req, false, saw_503, statuses)
        }));
    }
    let mut acked = BTreeSet::new();
    let mut total_503 = 0;
    for t in tasks {
        let (req, ok, saw, statuses) = t.await.expect("task");
        total_503 += saw;
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 503),
            "{statuses:?}"
        );
        if ok {
            acked.insert(req);
        }
    }
    stop.store(true, Ordering::SeqCst);
    let (max_metric, samples) = watcher.await.expect("watcher");

    eprintln!(
        "backpressure: {total_503} answers 503, peak buffered {} (gauge {max_metric}), {samples} samples",
        max_direct.load(Ordering::SeqCst)
    );
    assert!(
        total_503 > 0,
        "{REQUESTS} concurrent requests of {PER_REQUEST} records never saturated a buffer of {BOUND}"
    );
    assert_eq!(acked.len(), REQUESTS, "every request got through on retry");
    let peak = max_direct.load(Ordering::SeqCst);
    assert!(peak <= BOUND, "buffered {peak} > {BOUND}");
    assert!(peak > 0, "the watcher saw records buffered");
    assert!(max_metric <= BOUND as f64, "gauge {max_metric} > {BOUND}");
    assert!(samples > 3, "{samples}");

    // Every acknowledged record is there exactly once.
    let rows = ts.rows("events/load").await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        *seen
            .entry(r["id"].as_str().expect("id").to_string())
            .or_default() += 1;
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicates: {dupes:?}");
    for req in &acked {
        for i in 0..PER_REQUEST {
            assert_eq!(
                seen.get(&format!("r{req}-{i}")),
                Some(&1),
                "acknowledged record r{req}-{i}"
            );
        }
    }
    assert_eq!(
        rows.len(),
        acked.len() * PER_REQUEST,
        "nothing unacknowledged stored"
    );
    assert_eq!(ts.ingest.buffered(), 0, "the buffer drains");
    let m = ts.metrics().await;
    assert_eq!(metric(&m, "freshet_buffered_records", &[]), Some(0.0));

    // A single request larger than the whole buffer can never succeed: 413.
    let r = ts
        .post(
            "load",
            body(9999, BOUND + 1),
            Some("application/json"),
            None,
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "too_large");
    // Refused while decoding, at the record past the bound.
    assert!(
        r.text().contains(&format!("more than {BOUND} records")),
        "{}",
        r.text()
    );
    // Exactly the bound is fine.
    let r = ts
        .post("load", body(9998, BOUND), Some("application/json"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(ts.count("events/load").await as usize, rows.len() + BOUND);

    let ts = Arc::try_unwrap(ts).unwrap_or_else(|_| panic!("sole owner"));
    ts.shutdown().await;
}
