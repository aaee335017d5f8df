//! The PII policy holds everywhere: no raw value of a tagged field is stored in any
//! file of the lake (data, dead letters, Delta logs, checkpoints), returned in an
//! answer, or logged; hashes are keyed, stable and versioned.

use crate::support::{
    Options, PII_KEY, PII_KEY_VERSION, TestServer, captured_log, contains_bytes, walk_files,
};
use freshet_core::config::FileFormat;
use freshet_ingest::process::pii::PiiKey;
use serde_json::{Value as J, json};
use std::collections::BTreeMap;

const STREAMS: &str = "  people:
    source: { type: http }
    schema:
      fields:
        - { name: user_id, type: string, required: true }
        - { name: email, type: string, pii: hash }
        - { name: full_name, type: string, pii: redact }
        - { name: ssn, type: string, pii: drop }
        - { name: amount, type: float, required: true, min: 0, max: 1000 }
        - { name: country, type: string, required: true, categories: [FR, DE, NL] }
    transforms:
      - { type: filter, expr: \"country != 'NL'\" }
      - { type: derive, field: ratio, as: float, expr: \"100.0 / amount\" }
      - { type: derive, field: big, as: bool, expr: \"amount > 500.0\" }
    commit: { max_latency_ms: 20 }
";

/// Distinctive raw values: random-looking tokens without repeated substrings, so that
/// a leak would show up verbatim even in compressed Parquet pages.
fn emails() -> [&'static str; 3] {
    [
        "qv7wz3kx9p@pii-mail-jh4t.example",
        "b8rmc2ny6f@pii-mail-xu5e.example",
        "t4dk9wq1zs@pii-mail-gm7o.example",
    ]
}
fn names() -> [&'static str; 3] {
    [
        "Zebulon Qvarnstrom-Pii",
        "Ottoline Wyndgrave-Pii",
        "Cassius Brightwater-Pii",
    ]
}
fn ssns() -> [&'static str; 3] {
    ["SSN-914-27-6385", "SSN-703-58-1942", "SSN-261-93-4870"]
}

fn all_raw() -> Vec<&'static str> {
    let mut v: Vec<&str> = Vec::new();
    v.extend(emails());
    v.extend(names());
    v.extend(ssns());
    // Values only sent on rejected, filtered or malformed paths.
    v.extend([
        "rej3ct3d-only@pii-mail-ka2v.example",
        "Filtered Fitzgerald-Pii",
        "SSN-555-01-9876",
        "malformed-line@pii-mail-ow8r.example",
        "CsvOnly Kowalczyk-Pii",
        "csv-only@pii-mail-ry3n.example",
    ]);
    v
}

fn person(i: usize, amount: f64, country: &str) -> J {
    json!({
        "user_id": format!("u{i}"),
        "email": emails()[i % 3],
        "full_name": names()[i % 3],
        "ssn": ssns()[i % 3],
        "amount": amount,
        "country": country,
    })
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pii_never_reaches_storage_answers_or_logs() {
    let ts = TestServer::start_with(Options {
        // Frequent checkpoints, so that checkpoint files are inspected too.
        checkpoint_interval: 2,
        ..Options::new(STREAMS)
    })
    .await;
    let mut answers: Vec<String> = Vec::new();

    // Several requests, each a commit: valid, invalid, filtered and derive failures.
    for round in 0..4 {
        let mut batch: Vec<J> = (0..6)
            .map(|k| person(round * 6 + k, 10.0 + (round * 6 + k) as f64 * 30.0, "FR"))
            .collect();
        // Invalid: amount out of range, wrong type, unknown country.
        batch.push(person(100 + round, -5.0, "DE"));
        let mut wrong = person(200 + round, 1.0, "DE");
        wrong["amount"] = json!("lots");
        batch.push(wrong);
        batch.push(person(300 + round, 1.0, "XX"));
        // Filtered by `country != 'NL'`.
        batch.push(person(400 + round, 1.0, "NL"));
        // Fails the derive `100.0 / amount` (an infinite ratio cannot be stored).
        batch.push(person(500 + round, 0.0, "DE"));
        let r = ts.post_json("people", J::Array(batch).to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let out = r.json();
        assert_eq!(
            (&out["accepted"], &out["rejected"], &out["filtered"]),
            (&json!(6), &json!(4), &json!(1)),
            "{out}"
        );
        let stages: Vec<&str> = out["rejections"]
            .as_array()
            .expect("rejections")
            .iter()
            .map(|r| r["stage"].as_str().expect("stage"))
            .collect();
        assert_eq!(
            stages,
            ["validate", "validate", "validate", "derive"],
            "{out}"
        );
        answers.push(r.text());
    }
    // Values seen only on the rejected and filtered paths.
    let extra = json!([
        {"user_id": "x1", "email": "rej3ct3d-only@pii-mail-ka2v.example", "full_name": "Filtered Fitzgerald-Pii", "ssn": "SSN-555-01-9876", "amount": 5000, "country": "FR"},
        {"user_id": "x2", "email": "rej3ct3d-only@pii-mail-ka2v.example", "full_name": "Filtered Fitzgerald-Pii", "ssn": "SSN-555-01-9876", "amount": 5, "country": "NL"},
        {"user_id": "x3", "email": "rej3ct3d-only@pii-mail-ka2v.example", "ssn": "SSN-555-01-9876", "amount": 0, "country": "FR"},
        {"user_id": "x4", "email": {"nested": "rej3ct3d-only@pii-mail-ka2v.example"}, "amount": 1, "country": "FR"},
    ]);
    let r = ts.post_json("people", extra.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["accepted"], 0, "{}", r.text());
    answers.push(r.text());
    // Error answers must not quote the body either.
    for bad in [
        "{\"user_id\":\"e1\",\"email\":\"rej3ct3d-only@pii-mail-ka2v.example\",\"amount\":1e999}",
        "{\"user_id\":\"e2\",\"email\":\"rej3ct3d-only@pii-mail-ka2v.example\",\"amount\":tru}",
        "{\"user_id\":\"e3\",\"ssn\":\"SSN-555-01-9876\" \"amount\":1}",
        "[{\"email\":\"rej3ct3d-only@pii-mail-ka2v.example\"}, \"SSN-555-01-9876\" : 1]",
    ] {
        let r = ts.post_json("people", bad).await;
        assert_eq!(r.status, 400, "{}", r.text());
        answers.push(r.text());
    }

    // A file with PII, including a malformed line and a CSV with values only there.
    let input = ts.dir.path().join("input");
    std::fs::create_dir_all(&input).expect("mkdir");
    let nd = input.join("people.ndjson");
    let mut text = String::new();
    for i in 0..5 {
        text.push_str(&person(600 + i, 20.0, "DE").to_string());
        text.push('\n');
    }
    text.push_str(
        "{\"user_id\":\"m\",\"email\":\"malformed-line@pii-mail-ow8r.example\",\"amount\":\n",
    );
    std::fs::write(&nd, &text).expect("write");
    let p = ts.ingest_file("people", &nd, FileFormat::Ndjson).await;
    assert_eq!((p.accepted, p.rejected), (5, 1), "{p:?}");
    let csv = input.join("people.csv");
    std::fs::write(
        &csv,
        "user_id,email,full_name,ssn,amount,country\n\
         c1,csv-only@pii-mail-ry3n.example,CsvOnly Kowalczyk-Pii,SSN-914-27-6385,12.5,FR\n\
         c2,csv-only@pii-mail-ry3n.example,CsvOnly Kowalczyk-Pii,SSN-914-27-6385,-1,FR\n",
    )
    .expect("write");
    let p = ts.ingest_file("people", &csv, FileFormat::Csv).await;
    assert_eq!((p.accepted, p.rejected), (1, 1), "{p:?}");

    // ---- read back: hashed, redacted, dropped, versioned ----
    let key = PiiKey::new(PII_KEY.as_bytes(), PII_KEY_VERSION).expect("key");
    let info = ts.info("events/people").await;
    let cols: Vec<&str> = info.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        !cols.contains(&"ssn"),
        "dropped column in the table: {cols:?}"
    );
    assert!(cols.contains(&"_pii_key_version"), "{cols:?}");
    let rows = ts.rows("events/people").await;
    assert_eq!(rows.len(), 4 * 6 + 5 + 1);
    let mut hash_of: BTreeMap<String, String> = BTreeMap::new();
    for r in &rows {
        assert!(r.get("ssn").is_none(), "{r}");
        assert_eq!(r["full_name"], "[REDACTED]", "{r}");
        assert_eq!(r["_pii_key_version"], PII_KEY_VERSION, "{r}");
        let h = r["email"].as_str().expect("email").to_string();
        assert!(is_hex64(&h), "{r}");
        let user: usize = r["user_id"].as_str().expect("user")[1..]
            .parse()
            .unwrap_or(0);
        let raw = if r["user_id"] == "c1" {
            "csv-only@pii-mail-ry3n.example"
        } else {
            emails()[user % 3]
        };
        assert_eq!(h, key.hash(raw), "keyed HMAC-SHA256 of the raw value: {r}");
        if let Some(prev) = hash_of.insert(raw.to_string(), h.clone()) {
            assert_eq!(prev, h, "same input, same hash");
        }
    }
    let distinct: std::collections::BTreeSet<&String> = hash_of.values().collect();
    assert_eq!(distinct.len(), 4, "different inputs, different hashes");

    let dlq = ts.rows("dlq/people").await;
    assert_eq!(dlq.len(), 4 * 4 + 3 + 1 + 1, "{dlq:#?}");
    for d in &dlq {
        let payload = d["payload"].as_str().expect("payload");
        let p: J = serde_json::from_str(payload).expect("payload is JSON");
        match d["stage"].as_str() {
            Some("validate") => {
                assert!(p.get("ssn").is_none(), "{payload}");
                if let Some(n) = p.get("full_name") {
                    assert_eq!(n, "[REDACTED]");
                }
                if let Some(J::String(e)) = p.get("email") {
                    assert!(is_hex64(e), "{payload}");
                }
            }
            // After the PII stage the payload is the protected row.
            Some("derive") => {
                let values = p.as_array().expect("a protected row");
                assert!(
                    values.iter().any(|v| v.as_str().is_some_and(is_hex64)),
                    "the email is hashed: {payload}"
                );
                assert!(values.contains(&json!(PII_KEY_VERSION)), "{payload}");
            }
            Some("decode") => assert_eq!(payload, "{}"),
            other => panic!("unexpected stage {other:?}: {d}"),
        }
    }

    // Stop the server (everything committed and flushed), then inspect every file.
    let dir = ts.shutdown_keep_dir().await;
    let files = walk_files(dir.path());
    let lake_files: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with(dir.path().join("lake")))
        .collect();
    let has = |pred: &dyn Fn(&str) -> bool| lake_files.iter().any(|f| pred(&f.to_string_lossy()));
    assert!(
        has(&|f| f.ends_with(".parquet") && f.contains("/events/people/")),
        "{lake_files:?}"
    );
    assert!(
        has(&|f| f.ends_with(".parquet") && f.contains("/dlq/people/")),
        "{lake_files:?}"
    );
    assert!(
        has(&|f| f.contains("_delta_log/") && f.ends_with(".json")),
        "{lake_files:?}"
    );
    assert!(
        has(&|f| f.contains(".checkpoint.")),
        "no checkpoint was written: {lake_files:?}"
    );
    let input = dir.path().join("input");
    let mut inspected = 0;
    for f in &files {
        if f.starts_with(&input) {
            continue; // the source files themselves hold the raw values, by design
        }
        let bytes = std::fs::read(f).expect("read");
        for raw in all_raw() {
            assert!(
                !contains_bytes(&bytes, raw.as_bytes()),
                "{} holds the raw PII value {raw:?}",
                f.display()
            );
        }
        inspected += 1;
    }
    assert!(inspected >= lake_files.len());
    // Sanity check of the scan itself: the input files do hold the values.
    let src = std::fs::read(input.join("people.ndjson")).expect("read");
    assert!(contains_bytes(&src, emails()[0].as_bytes()));

    for (i, a) in answers.iter().enumerate() {
        for raw in all_raw() {
            assert!(!a.contains(raw), "answer {i} echoes {raw:?}: {a}");
        }
    }
    // The log of the whole test binary (debug level and up for Freshet) never has them.
    let log = captured_log();
    assert!(!log.is_empty(), "the log capture works");
    for raw in all_raw() {
        assert!(
            !contains_bytes(&log, raw.as_bytes()),
            "the log holds the raw PII value {raw:?}"
        );
    }
}
