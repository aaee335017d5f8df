//! Bad input gets a clear 4xx or a per-record rejection, never a 5xx, and never an
//! echo of a PII value; rejected records land in the dead-letter table.

use crate::support::{Options, Resp, TestServer};
use serde_json::{Value as J, json};

const STREAMS: &str = "  strict:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true, max_length: 16 }
        - { name: qty, type: int, min: 0, max: 1000 }
        - { name: price, type: float, min: 0 }
        - { name: kind, type: string, categories: [a, b] }
        - { name: secret, type: string, pii: redact, max_length: 16 }
        - { name: card, type: string, pii: hash }
        - { name: ssn, type: int, pii: drop }
    commit: { max_latency_ms: 20 }
";

const MAX_BODY: usize = 200_000;

/// Raw values of PII-tagged fields sent in this test; none may come back.
const PII_VALUES: [&str; 6] = [
    "TOPSECRET-Qx7",
    "4929123456781234",
    "Mallory-Secret-Too-Long-9z",
    "SSN-987-65-4321",
    "NestedPii-5k2",
    "8675309123",
];

fn assert_no_pii(what: &str, text: &str) {
    for v in PII_VALUES {
        assert!(!text.contains(v), "{what} echoes the PII value {v}: {text}");
    }
}

struct Calls<'a> {
    ts: &'a TestServer,
    statuses: Vec<(String, u16)>,
}

impl Calls<'_> {
    async fn post(&mut self, what: &str, stream: &str, body: Vec<u8>, ct: Option<&str>) -> Resp {
        let r = self.ts.post(stream, body, ct, None).await;
        self.check(what, r)
    }
    fn check(&mut self, what: &str, r: Resp) -> Resp {
        assert!(r.status < 500, "{what}: answered {} {}", r.status, r.text());
        assert_no_pii(what, &r.text());
        self.statuses.push((what.to_string(), r.status));
        r
    }
}

fn error_code(r: &Resp) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error body has a code: {}", r.text()))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_answers_and_dead_letters() {
    let ts = TestServer::start_with(Options {
        max_body_bytes: MAX_BODY,
        ..Options::new(STREAMS)
    })
    .await;
    let mut c = Calls {
        ts: &ts,
        statuses: Vec::new(),
    };
    let json_ct = Some("application/json");

    // ---- malformed JSON: 400 with line and column ----
    let r = c
        .post(
            "malformed array",
            "strict",
            b"[{\"id\":\"x\"},\n {\"id\" 2}]".to_vec(),
            json_ct,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"]["code"], "malformed_body");
    assert_eq!(e["error"]["line"], 2, "{e}");
    assert_eq!(e["error"]["column"], 8, "{e}");
    let msg = e["error"]["message"].as_str().expect("message");
    assert!(msg.contains("line 2") && msg.contains("column 8"), "{msg}");

    let r = c
        .post(
            "malformed ndjson",
            "strict",
            b"{\"id\":\"ok\"}\n{\"id\":\"ok2\"}\n{\"id\": \"TOPSECRET-Qx7\", \"secret\": tru}\n"
                .to_vec(),
            Some("application/x-ndjson"),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["line"], 3, "{}", r.text());
    assert!(r.json()["error"]["column"].as_u64().unwrap_or(0) > 0);
    assert_eq!(ts.count("events/strict").await, 0, "a 400 writes nothing");

    // ---- per-record problems: 200 with rejections and dead letters ----
    let records = json!([
        {"id": "good1", "qty": 3, "price": 9.5, "kind": "a", "secret": "TOPSECRET-Qx7", "card": "4929123456781234", "ssn": 8675309123_i64},
        {"id": "w", "qty": "abc", "secret": "TOPSECRET-Qx7"},
        {"qty": 1, "card": "4929123456781234"},
        {"id": "r", "qty": 5000},
        {"id": "u", "zzz": 1, "secret": "TOPSECRET-Qx7"},
        {"id": "c", "kind": "z"},
        {"id": "h", "qty": 123456789012345678901234567890_f64},
        {"id": "p", "card": {"nested": "NestedPii-5k2"}},
        {"id": "s", "secret": "TOPSECRET-Qx7", "qty": -1},
        {"id": "l", "secret": "Mallory-Secret-Too-Long-9z"},
        {"id": "n", "ssn": "SSN-987-65-4321", "card": "4929123456781234"},
        "just a string",
        {"id": "abcdefghijklmnopqrstuvwxyz"},
        {"id": "f", "price": "NaN"},
        {"id": "good2"},
    ]);
    // The huge integer must reach the server as written, not as a float literal.
    let body = records
        .to_string()
        .replace("1.2345678901234568e+29", "123456789012345678901234567890");
    assert!(body.contains("123456789012345678901234567890"), "{body}");
    let r = c
        .post("per-record", "strict", body.into_bytes(), json_ct)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["accepted"], 2, "{out}");
    assert_eq!(out["rejected"], 13, "{out}");
    // (index, field, reason fragment); every rejection here is at the validate stage.
    let expected: [(usize, Option<&str>, &str); 13] = [
        (1, Some("qty"), "expected int"),
        (2, Some("id"), "required"),
        (3, Some("qty"), "above the maximum"),
        (4, Some("zzz"), "not declared"),
        (5, Some("kind"), "categories"),
        (6, Some("qty"), "64-bit"),
        (7, Some("card"), "object or array"),
        (8, Some("qty"), "below the minimum"),
        (9, Some("secret"), "longer than 16"),
        (10, Some("ssn"), "expected int"),
        (11, None, "not a JSON object"),
        (12, Some("id"), "longer than 16"),
        (13, Some("price"), "finite"),
    ];
    let rejections = out["rejections"].as_array().expect("rejections");
    assert_eq!(rejections.len(), expected.len(), "{out}");
    for (rej, (index, field, reason)) in rejections.iter().zip(expected) {
        assert_eq!(rej["index"], index, "{rej}");
        assert_eq!(rej["stage"], "validate", "{rej}");
        assert_eq!(rej["field"].as_str(), field, "{rej}");
        let got = rej["reason"].as_str().expect("reason");
        assert!(
            got.contains(reason),
            "record {index}: reason {got:?} lacks {reason:?}"
        );
        assert!(
            rej.get("payload").is_none(),
            "payloads are not echoed: {rej}"
        );
    }
    assert_eq!(ts.count("events/strict").await, 2);

    // The same rejections are in the dead-letter table, PII-safe.
    let dlq = ts.rows("dlq/strict").await;
    assert_eq!(dlq.len(), expected.len(), "{dlq:#?}");
    let mut dlq_sorted: Vec<&J> = dlq.iter().collect();
    dlq_sorted.sort_by_key(|r| r["_position"].as_i64());
    for (row, (index, field, reason)) in dlq_sorted.iter().zip(expected) {
        assert_eq!(row["_position"], index, "{row}");
        assert_eq!(row["stage"], "validate", "{row}");
        assert_eq!(row["field"].as_str(), field, "{row}");
        assert!(
            row["reason"].as_str().expect("reason").contains(reason),
            "{row}"
        );
        assert_eq!(row["_source"], "http");
        assert_no_pii("dead-letter row", &row.to_string());
    }
    let payload = |pos: i64| -> J {
        let row = dlq_sorted
            .iter()
            .find(|r| r["_position"] == pos)
            .expect("row");
        serde_json::from_str(row["payload"].as_str().expect("payload")).expect("payload is JSON")
    };
    // Raw (invalid) values of ordinary fields are kept for inspection…
    assert_eq!(payload(1)["qty"], "abc");
    assert_eq!(payload(3)["qty"], 5000);
    // …PII fields are protected even in the payload.
    assert_eq!(payload(1)["secret"], "[REDACTED]");
    assert_eq!(payload(9)["secret"], "[REDACTED]");
    let card = payload(2)["card"]
        .as_str()
        .expect("hashed card")
        .to_string();
    assert_eq!(card.len(), 64, "{card}");
    assert!(payload(10).get("ssn").is_none(), "dropped field in payload");

    // ---- body too large: 413 ----
    let big = format!("[{}]", vec![r#"{"id":"x"}"#; MAX_BODY / 8].join(","));
    assert!(big.len() > MAX_BODY);
    let r = c
        .post("too large", "strict", big.into_bytes(), json_ct)
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(error_code(&r), "too_large");

    // ---- unknown stream: 404 ----
    let r = c
        .post(
            "unknown stream",
            "nope",
            b"[{\"id\":\"x\"}]".to_vec(),
            json_ct,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(error_code(&r), "unknown_stream");
    assert!(r.text().contains("nope"));

    // ---- invalid UTF-8: 400 ----
    let r = c
        .post(
            "invalid utf-8",
            "strict",
            b"{\"id\":\"\xff\xfe\"}".to_vec(),
            json_ct,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_code(&r), "malformed_body");

    // ---- deep nesting: 400 ----
    let r = c
        .post("deep", "strict", "[".repeat(100_000).into_bytes(), json_ct)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Deep nesting under a field: the value is skipped without recursion, so the body
    // is well-formed and that record alone is rejected (a 400 would be fine too).
    for depth in [5_000, 90_000] {
        let deep_field = format!("{{\"id\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let r = c
            .post("deep field", "strict", deep_field.into_bytes(), json_ct)
            .await;
        match r.status {
            400 => assert_eq!(error_code(&r), "malformed_body"),
            200 => {
                let out = r.json();
                assert_eq!(
                    (&out["accepted"], &out["rejected"]),
                    (&json!(0), &json!(1)),
                    "{out}"
                );
                assert_eq!(out["rejections"][0]["field"], "id", "{out}");
            }
            s => panic!("deep field ({depth}): {s} {}", r.text()),
        }
    }
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(20_000), "}".repeat(20_000));
    let r = c
        .post("deep objects", "strict", deep_objects.into_bytes(), json_ct)
        .await;
    match r.status {
        400 => assert_eq!(error_code(&r), "malformed_body"),
        200 => assert_eq!(r.json()["rejections"][0]["field"], "a", "{}", r.text()),
        s => panic!("deep objects: {s} {}", r.text()),
    }

    // ---- numbers out of range ----
    let r = c
        .post(
            "1e400",
            "strict",
            b"{\"id\":\"x\",\"price\":1e400}".to_vec(),
            json_ct,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(error_code(&r), "malformed_body");

    // ---- unsupported content type: 415 ----
    let r = c
        .post(
            "xml",
            "strict",
            b"<id>x</id>".to_vec(),
            Some("application/xml"),
        )
        .await;
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(error_code(&r), "unsupported_media_type");

    // ---- more odd bodies: never a 5xx ----
    for (what, body, ct, want) in [
        (
            "trailing garbage",
            &b"[{\"id\":\"x\"}] xx"[..],
            json_ct,
            400,
        ),
        ("unclosed array", b"[{\"id\":\"x\"}", json_ct, 400),
        ("bare null", b"null", json_ct, 200),
        ("array of scalars", b"[1, 2, true]", json_ct, 200),
        ("empty", b"", json_ct, 200),
        ("whitespace", b" \n\t ", json_ct, 200),
        ("bom", b"\xEF\xBB\xBF[{\"id\":\"bom\"}]", json_ct, 200),
        ("nul bytes", b"\0\0\0", json_ct, 400),
        (
            "duplicate keys",
            b"{\"id\":\"d\",\"id\":\"e\"}",
            json_ct,
            200,
        ),
        ("csv", b"id,qty\ncsv1,3\n", Some("text/csv"), 200),
        ("csv ragged", b"id,qty\ncsv2,3,4\n", Some("text/csv"), 400),
        ("csv bad utf-8", b"id\n\xff\n", Some("text/csv"), 400),
        (
            "ct with charset",
            b"{\"id\":\"cs\"}",
            Some("application/json; charset=utf-8"),
            200,
        ),
        ("no content type", b"{\"id\":\"noct\"}", None, 200),
    ] {
        let r = c.post(what, "strict", body.to_vec(), ct).await;
        assert_eq!(r.status, want, "{what}: {}", r.text());
        if want == 400 {
            assert!(
                r.json()["error"]["message"].is_string(),
                "{what}: {}",
                r.text()
            );
        }
    }
    // A non-ASCII Idempotency-Key is a 400, not a 5xx.
    let req = ts
        .client
        .post(format!("{}/v1/streams/strict/events", ts.url()))
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"k\xe9y").expect("header"),
        )
        .body("{\"id\":\"k\"}")
        .send()
        .await
        .expect("send");
    let r = c.check(
        "non-ascii key",
        Resp {
            status: req.status().as_u16(),
            headers: req.headers().clone(),
            body: req.bytes().await.expect("body").to_vec(),
        },
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // ---- the server still answers ----
    let r = ts.get("/healthz").await;
    assert_eq!(r.status, 200);
    let before = ts.count("events/strict").await;
    let r = c
        .post("after", "strict", b"{\"id\":\"after\"}".to_vec(), json_ct)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["accepted"], 1);
    assert_eq!(ts.count("events/strict").await, before + 1);
    let fives: Vec<_> = c.statuses.iter().filter(|(_, s)| *s >= 500).collect();
    assert!(fives.is_empty(), "{fives:?}");

    // Nothing stored anywhere holds a raw PII value.
    for t in ["events/strict", "dlq/strict"] {
        for row in ts.rows(t).await {
            assert_no_pii(t, &row.to_string());
        }
    }
    ts.shutdown().await;
}
