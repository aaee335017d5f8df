//! With debug logging on, records carrying distinctive PII values (hashed, redacted and
//! dropped fields; valid and invalid records; JSON, NDJSON, CSV bodies and a file) go
//! through the server and `freshet ingest`. No raw PII value may appear in any file
//! under the data folder: logs, Delta logs, checkpoints, Parquet files.

use crate::harness::{Env, Server, post_events};
use freshet_lake::arrow::array::{Array, AsArray};
use freshet_lake::arrow::compute::cast;
use freshet_lake::arrow::datatypes::DataType;
use serde_json::{Value, json};
use std::path::Path;

const STREAMS: &str = r#"streams:
  people:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true }
        - { name: card, type: string, required: true, pii: hash, max_length: 40 }
        - { name: email, type: string, pii: redact, max_length: 60 }
        - { name: ssn, type: string, pii: drop }
        - { name: full_name, type: string, pii: redact }
        - { name: amount, type: float, min: 0 }
        - { name: country, type: string, categories: [FR, DE, US] }
    transforms:
      - { type: derive, field: big, as: bool, expr: "amount > 100.0" }
"#;

struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, s: impl Into<String>) -> String {
        let s = s.into();
        self.0.push(s.clone());
        s
    }
    fn person(&mut self, tag: &str) -> Value {
        json!({
            "card": self.add(format!("PIICARD{tag}Q7")),
            "email": self.add(format!("pii.mail.{tag}@secret-example.test")),
            "ssn": self.add(format!("PIISSN-{tag}-Z9")),
            "full_name": self.add(format!("Zyxwa Piiname{tag}")),
        })
    }
    fn find_in(&self, text: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|s| text.contains(s.as_str()))
            .map(String::as_str)
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn pii_in_logs() {
    let env = Env::new("", STREAMS);
    let mut s = Secrets(Vec::new());
    let mut valid_ids = Vec::new();
    let mut invalid_ids = Vec::new();

    let mut records = Vec::new();
    for i in 0..20 {
        let id = format!("v{i}");
        valid_ids.push(id.clone());
        records.push(merge(
            json!({ "id": id, "amount": 50.0 + i as f64 * 10.0, "country": "FR" }),
            s.person(&format!("V{i:03}")),
        ));
    }
    // A card sent as a JSON number (coerced to a string, then hashed).
    valid_ids.push("v-num".into());
    s.add("4111222233334444");
    records.push(json!({ "id": "v-num", "card": 4_111_222_233_334_444_i64, "amount": 1.0 }));
    // Invalid records, each with PII in it; all go to the dead-letter table.
    let bad: Vec<(&str, Value)> = vec![
        ("a0", json!({ "amount": -5.0 })),
        (
            "a1",
            json!({ "card": s.add(format!("PIICARDLONG{}", "X".repeat(40))), "amount": 1.0 }),
        ),
        (
            "a2",
            json!({ "email": s.add(format!("pii.longmail{}@secret-example.test", "y".repeat(60))) }),
        ),
        (
            "a3",
            json!({ "email": { "inner": s.add("pii.nestedmail@secret-example.test") } }),
        ),
        ("a4", json!({ "ssn": { "v": s.add("PIISSN-NESTED-1") } })),
        ("a5", json!({ "country": "XX" })),
        ("a6", json!({ "nickname": "harmless" })),
        ("a7", json!({ "card": null })),
        ("a8", json!({ "amount": "not a number" })),
        (
            "a9",
            json!({ "card": { "number": s.add("PIICARDNESTED-77") } }),
        ),
    ];
    for (id, over) in bad {
        invalid_ids.push(id.to_string());
        let base = merge(
            json!({ "id": id, "amount": 10.0, "country": "DE" }),
            s.person(&id.to_uppercase()),
        );
        let mut rec = merge(base, over);
        if id == "a7" {
            rec.as_object_mut().unwrap().remove("card");
        }
        records.push(rec);
    }
    let body = serde_json::to_vec(&records).unwrap();

    let mut responses = Vec::new();
    let server = Server::start(&env, &[("FRESHET_LOG", "debug")]);
    let addr = server.addr();
    // The batch, then the same batch again (a replay), both keyed.
    for _ in 0..2 {
        let (st, text) = post_events(
            addr,
            "people",
            &body,
            "application/json",
            Some("pii-batch-1"),
        )
        .unwrap();
        assert_eq!(st, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["accepted"], valid_ids.len(), "{text}");
        assert_eq!(v["rejected"], invalid_ids.len(), "{text}");
        responses.push(text);
    }
    // NDJSON without a key.
    let nd: String = (0..5)
        .map(|i| {
            let id = format!("n{i}");
            valid_ids.push(id.clone());
            merge(
                json!({ "id": id, "amount": 3.0 }),
                s.person(&format!("N{i}")),
            )
            .to_string()
                + "\n"
        })
        .collect();
    let (st, text) =
        post_events(addr, "people", nd.as_bytes(), "application/x-ndjson", None).unwrap();
    assert_eq!(st, 200, "{text}");
    responses.push(text);
    // A malformed body carrying PII: 400, nothing stored.
    let broken = format!(
        "{{\"id\":\"m0\",\"card\":\"{}\",\"email\":\"{}\" \"amount\": 1}}\n",
        s.add("PIICARDMALFORMED-5"),
        s.add("pii.malformed@secret-example.test")
    );
    let (st, text) = post_events(
        addr,
        "people",
        broken.as_bytes(),
        "application/x-ndjson",
        None,
    )
    .unwrap();
    assert_eq!(st, 400, "{text}");
    responses.push(text);
    // CSV: one good row, one with a bad amount.
    let csv = format!(
        "id,card,email,ssn,full_name,amount,country\nc0,{},{},{},{},12.5,US\nc1,{},{},{},{},not-a-number,US\n",
        s.add("PIICARDCSV-0"),
        s.add("pii.csv0@secret-example.test"),
        s.add("PIISSN-CSV-0"),
        s.add("Zyxwa Csvname0"),
        s.add("PIICARDCSV-1"),
        s.add("pii.csv1@secret-example.test"),
        s.add("PIISSN-CSV-1"),
        s.add("Zyxwa Csvname1"),
    );
    valid_ids.push("c0".into());
    invalid_ids.push("c1".into());
    let (st, text) =
        post_events(addr, "people", csv.as_bytes(), "text/csv", Some("pii-csv")).unwrap();
    assert_eq!(st, 200, "{text}");
    responses.push(text);
    let status = server.stop();
    assert!(status.success(), "{status}");

    // The same through `freshet ingest` (file outside the data folder), with a malformed line.
    let file = env.dir.path().join("people.ndjson");
    let mut lines = String::new();
    for i in 0..3 {
        let id = format!("f{i}");
        valid_ids.push(id.clone());
        lines += &(merge(
            json!({ "id": id, "amount": 7.0 }),
            s.person(&format!("F{i}")),
        )
        .to_string()
            + "\n");
    }
    invalid_ids.push("f-bad".into());
    lines +=
        &(merge(json!({ "id": "f-bad", "amount": -1.0 }), s.person("FBAD")).to_string() + "\n");
    lines += &format!(
        "{{\"id\":\"f-broken\",\"card\":\"{}\" \"x\"\n",
        s.add("PIICARDFILEBROKEN-9")
    );
    std::fs::write(&file, lines).unwrap();
    let out = env
        .command(
            "ingest.log",
            &["ingest", "people", file.to_str().unwrap(), "--quiet"],
        )
        .env("FRESHET_LOG", "debug")
        .status()
        .unwrap();
    assert!(out.success(), "{out}");

    for r in &responses {
        assert!(s.find_in(r).is_none(), "an HTTP answer holds raw PII: {r}");
    }
    let log = std::fs::read_to_string(env.data.join("server.log")).unwrap();
    assert!(log.contains("DEBUG"), "debug logging was not on:\n{log}");

    // 1. Bytes of every file under the data folder.
    let mut files = Vec::new();
    files_under(&env.data, &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "parquet"))
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if let Some(secret) = s.find_in(&text) {
            panic!("raw PII '{secret}' found in {}", f.display());
        }
    }

    // 2. Decoded values of both tables (Parquet pages may be compressed).
    for table in ["events/people", "dlq/people"] {
        for b in env.read_table(table).unwrap() {
            for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                let col = cast(col, &DataType::Utf8).unwrap();
                let col = col.as_string::<i32>();
                for i in 0..col.len() {
                    if !col.is_null(i)
                        && let Some(secret) = s.find_in(col.value(i))
                    {
                        panic!("raw PII '{secret}' in {table}.{}", field.name());
                    }
                }
            }
        }
    }

    // And the policy did what it says.
    let ids: Vec<String> = env
        .read_strings("events/people", "id")
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let mut want = valid_ids.clone();
    want.sort();
    let mut got = ids.clone();
    got.sort();
    assert_eq!(got, want, "accepted records (the replay wrote nothing)");
    for c in env.read_strings("events/people", "card").unwrap() {
        let c = c.expect("card is required");
        assert!(
            c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()),
            "{c}"
        );
    }
    for e in env
        .read_strings("events/people", "email")
        .unwrap()
        .into_iter()
        .flatten()
    {
        assert_eq!(e, "[REDACTED]");
    }
    let cols: Vec<String> = env
        .table_info("events/people")
        .unwrap()
        .columns
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert!(!cols.contains(&"ssn".to_string()), "{cols:?}");
    let payloads: Vec<String> = env
        .read_strings("dlq/people", "payload")
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    for id in &invalid_ids {
        assert!(
            payloads.iter().any(|p| p.contains(&format!("\"{id}\""))),
            "{id} is not in the dead-letter table: {payloads:?}"
        );
    }
    // Invalid records + the malformed file line; the replay added nothing.
    assert_eq!(payloads.len(), invalid_ids.len() + 1, "{payloads:?}");
    eprintln!(
        "pii_in_logs: {} distinct PII values, {} files scanned, {} accepted, {} dead-lettered",
        s.0.len(),
        files.len(),
        ids.len(),
        payloads.len()
    );
}
