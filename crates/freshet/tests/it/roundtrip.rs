//! Records from every source (HTTP JSON array and NDJSON, CSV and NDJSON files, the
//! cards generator) go through the processors and land in Delta with the declared
//! column types and the system columns; an HTTP 200 means the rows are readable.

use crate::support::{Options, PII_KEY_VERSION, TestServer, eventually};
use freshet_core::config::FileFormat;
use freshet_lake::arrow::datatypes::{DataType, TimeUnit};
use serde_json::{Value as J, json};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

const TYPED_SCHEMA: &str = "    schema:
      fields:
        - { name: id, type: string, required: true }
        - { name: n, type: int, required: true }
        - { name: x, type: float }
        - { name: b, type: bool }
        - { name: t, type: timestamp }
        - { name: d, type: date }
        - { name: note, type: string }
        - { name: tmp, type: string }
    transforms:
      - { type: filter, expr: \"n >= 0\" }
      - { type: derive, field: big, as: bool, expr: \"n > 100\" }
      - { type: derive, field: x2, as: float, expr: \"x == null ? 0.0 : x * 2.0\" }
      - { type: rename, from: note, to: comment }
      - { type: drop, fields: [tmp] }
    commit: { max_latency_ms: 20 }
";

fn streams() -> String {
    format!(
        "  typed:
    source: {{ type: http }}
{TYPED_SCHEMA}  csvfile:
    source: {{ type: http }}
{TYPED_SCHEMA}  ndfile:
    source: {{ type: http }}
{TYPED_SCHEMA}  cards:
    source: {{ type: generator, kind: cards, seed: 7, limit: 700 }}
    commit: {{ max_latency_ms: 20 }}
"
    )
}

/// Columns of the typed streams, in table order, with their Delta types.
const EXPECTED_COLUMNS: [(&str, &str); 14] = [
    ("id", "string"),
    ("n", "long"),
    ("x", "double"),
    ("b", "boolean"),
    ("t", "timestamp"),
    ("d", "date"),
    ("comment", "string"),
    ("big", "boolean"),
    ("x2", "double"),
    ("_event_id", "string"),
    ("_ingested_at", "timestamp"),
    ("_source", "string"),
    ("_position", "long"),
    ("_ingest_date", "date"),
];

fn by_id(rows: &[J]) -> BTreeMap<String, J> {
    let mut out = BTreeMap::new();
    for r in rows {
        let id = r["id"].as_str().expect("id is a string").to_string();
        assert!(
            out.insert(id.clone(), r.clone()).is_none(),
            "duplicate {id}"
        );
    }
    out
}

async fn check_types(ts: &TestServer, table: &str) {
    let info = ts.info(table).await;
    let got: Vec<(String, String)> = info.columns.clone();
    let want: Vec<(String, String)> = EXPECTED_COLUMNS
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    assert_eq!(got, want, "{table}: columns and Delta types");
    assert_eq!(info.partition_by, vec!["_ingest_date".to_string()]);
    // The Arrow schema of the data read back agrees.
    let batches = ts.table(table).await.read(None).await.expect("read");
    let schema = batches.first().expect("at least one batch").schema();
    let ty = |n: &str| schema.field_with_name(n).expect(n).data_type().clone();
    assert_eq!(ty("id"), DataType::Utf8);
    assert_eq!(ty("n"), DataType::Int64);
    assert_eq!(ty("x"), DataType::Float64);
    assert_eq!(ty("b"), DataType::Boolean);
    assert!(
        matches!(ty("t"), DataType::Timestamp(TimeUnit::Microsecond, Some(ref z)) if z.as_ref() == "UTC"),
        "{:?}",
        ty("t")
    );
    assert_eq!(ty("d"), DataType::Date32);
    assert_eq!(ty("_position"), DataType::Int64);
    assert_eq!(ty("_ingest_date"), DataType::Date32);
}

fn check_system_columns(rows: &[J], source: &str) {
    let mut ids = HashSet::new();
    for r in rows {
        let eid = r["_event_id"].as_str().expect("_event_id");
        assert!(!eid.is_empty());
        assert!(ids.insert(eid.to_string()), "_event_id {eid} repeated");
        assert!(r["_ingested_at"].is_string(), "{r}");
        assert!(r["_ingest_date"].is_string(), "{r}");
        assert_eq!(r["_source"], json!(source), "{r}");
        assert!(r["_position"].is_i64(), "{r}");
        assert!(r.get("tmp").is_none(), "dropped column present: {r}");
        assert!(r.get("note").is_none(), "renamed column present: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_http_files_and_generator_land_in_delta() {
    let ts = TestServer::start_with(Options {
        start_sources: true,
        ..Options::new(&streams())
    })
    .await;

    // ---- HTTP, JSON array ----
    let body = json!([
        {"id": "a1", "n": 5, "x": 1.5, "b": true, "t": "2026-11-21T10:00:00Z", "d": "2026-11-21", "note": "hello", "tmp": "gone"},
        {"id": "a2", "n": 500, "x": 2, "b": false, "t": 1_700_000_000_000_i64, "d": 3},
        {"id": "a3", "n": "7", "x": "3.25", "b": "TRUE"},
        {"id": "a4", "n": -1},
    ]);
    let r = ts.post_json("typed", body.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["stream"], "typed");
    assert_eq!(out["accepted"], 3, "{out}");
    assert_eq!(out["rejected"], 0, "{out}");
    assert_eq!(out["filtered"], 1, "{out}");
    assert_eq!(out["replayed"], false);
    assert_eq!(out["rejections"], json!([]));
    let v1 = out["version"].as_i64().expect("version of the commit");
    // Acknowledged means committed: readable right now, at the version announced.
    let info = ts.info("events/typed").await;
    assert_eq!(info.rows, 3, "rows readable as soon as the 200 arrives");
    assert_eq!(info.version, v1);

    // ---- HTTP, NDJSON with one invalid record ----
    let nd = concat!(
        "{\"id\":\"b1\",\"n\":1,\"x\":-0.5,\"b\":false,\"t\":\"2026-01-01T00:00:00+02:00\",\"d\":\"2000-02-29\"}\n",
        "\n",
        "{\"id\":\"b2\",\"n\":\"not a number\"}\n",
        "{\"id\":\"b3\",\"n\":2,\"note\":\"x\"}\r\n",
        "{\"id\":\"b4\",\"n\":3}",
    );
    let r = ts
        .post("typed", nd, Some("application/x-ndjson"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(
        (&out["accepted"], &out["rejected"], &out["filtered"]),
        (&json!(3), &json!(1), &json!(0)),
        "{out}"
    );
    let rej = &out["rejections"][0];
    assert_eq!(rej["index"], 1, "{out}");
    assert_eq!(rej["field"], "n");
    assert_eq!(rej["stage"], "validate");
    assert!(out["version"].as_i64().expect("version") > v1);
    assert_eq!(ts.count("events/typed").await, 6);
    assert_eq!(ts.count("dlq/typed").await, 1);

    let rows = ts.rows("events/typed").await;
    assert_eq!(rows.len(), 6);
    check_system_columns(&rows, "http");
    let rows = by_id(&rows);
    assert_eq!(
        rows.keys().cloned().collect::<Vec<_>>(),
        ["a1", "a2", "a3", "b1", "b3", "b4"]
    );
    let a1 = &rows["a1"];
    assert_eq!(a1["n"], 5);
    assert_eq!(a1["x"], 1.5);
    assert_eq!(a1["b"], true);
    assert!(
        a1["t"]
            .as_str()
            .expect("t")
            .starts_with("2026-11-21T10:00:00"),
        "{a1}"
    );
    assert_eq!(a1["d"], "2026-11-21");
    assert_eq!(a1["comment"], "hello");
    assert_eq!(a1["big"], false);
    assert_eq!(a1["x2"], 3.0);
    let a2 = &rows["a2"];
    assert_eq!(a2["big"], true, "derived from n > 100: {a2}");
    assert_eq!(a2["x"], 2.0);
    assert!(
        a2["t"]
            .as_str()
            .expect("t")
            .starts_with("2023-11-14T22:13:20"),
        "integer timestamps are milliseconds: {a2}"
    );
    assert_eq!(a2["d"], "1970-01-04");
    let a3 = &rows["a3"];
    assert_eq!(
        (&a3["n"], &a3["x"], &a3["b"]),
        (&json!(7), &json!(3.25), &json!(true))
    );
    assert!(a3.get("t").is_none_or(J::is_null), "{a3}");
    let b1 = &rows["b1"];
    assert!(
        b1["t"]
            .as_str()
            .expect("t")
            .starts_with("2025-12-31T22:00:00"),
        "offsets are normalised to UTC: {b1}"
    );
    assert_eq!(b1["d"], "2000-02-29");
    assert_eq!(b1["x2"], -1.0);
    assert_eq!(rows["b4"]["x2"], 0.0, "derive over a null");
    // Positions are the index of the record in its request.
    assert_eq!(rows["a3"]["_position"], 2);
    assert_eq!(rows["b4"]["_position"], 3);

    // ---- a CSV file ----
    let input = ts.dir.path().join("input");
    std::fs::create_dir_all(&input).expect("mkdir");
    let csv_path = input.join("typed.csv");
    let csv = "id,n,x,b,t,d,note,tmp\n\
               c1,10,1.25,true,2026-11-21T10:00:00Z,2026-11-21,first,z\n\
               c2,200,,false,,,,\n\
               c3,oops,1,true,,,,\n\
               c4,-5,1,true,,,,\n\
               \"c5\",\"3\",\"4.5\",\"false\",2026-11-22T00:00:00Z,2026-11-22,\"with, comma\",\n";
    std::fs::write(&csv_path, csv).expect("write csv");
    let p = ts.ingest_file("csvfile", &csv_path, FileFormat::Csv).await;
    assert_eq!((p.accepted, p.rejected, p.filtered), (3, 1, 1), "{p:?}");
    assert_eq!(p.offset, csv.len() as u64, "the whole file is committed");
    assert_eq!(ts.count("events/csvfile").await, 3);
    assert_eq!(ts.count("dlq/csvfile").await, 1);
    let canon = std::fs::canonicalize(&csv_path).expect("canonical");
    let rows = ts.rows("events/csvfile").await;
    check_system_columns(&rows, &format!("file:{}", canon.display()));
    let rows = by_id(&rows);
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), ["c1", "c2", "c5"]);
    assert_eq!(rows["c1"]["n"], 10);
    assert_eq!(rows["c1"]["x"], 1.25);
    assert_eq!(rows["c1"]["b"], true);
    assert_eq!(rows["c1"]["d"], "2026-11-21");
    assert_eq!(rows["c2"]["big"], true);
    assert!(
        rows["c2"].get("x").is_none_or(J::is_null),
        "blank cell is null"
    );
    assert_eq!(rows["c5"]["comment"], "with, comma");
    assert_eq!(rows["c5"]["x"], 4.5);
    // `_position` is the byte offset of the line.
    let c1_offset = csv.find("c1,").expect("c1") as i64;
    assert_eq!(rows["c1"]["_position"], c1_offset);
    // Ingesting the same file again is a no-op: its offset is committed.
    let again = ts.ingest_file("csvfile", &csv_path, FileFormat::Csv).await;
    assert_eq!(again.accepted, 0, "{again:?}");
    assert_eq!(ts.count("events/csvfile").await, 3);

    // ---- an NDJSON file ----
    let nd_path = input.join("typed.ndjson");
    let mut nd = String::new();
    for i in 0..250 {
        nd.push_str(&format!(
            "{{\"id\":\"f{i:03}\",\"n\":{i},\"x\":{}.5,\"b\":{},\"t\":\"2026-11-21T10:{:02}:00Z\",\"d\":\"2026-11-21\"}}\n",
            i,
            i % 2 == 0,
            i % 60
        ));
    }
    nd.push_str("{\"id\":\"broken\",\"n\":\n");
    nd.push_str("{\"id\":\"last\",\"n\":1}"); // no final newline
    std::fs::write(&nd_path, &nd).expect("write ndjson");
    let p = ts.ingest_file("ndfile", &nd_path, FileFormat::Ndjson).await;
    assert_eq!((p.accepted, p.rejected, p.filtered), (251, 1, 0), "{p:?}");
    assert_eq!(ts.count("events/ndfile").await, 251);
    let dlq = ts.rows("dlq/ndfile").await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0]["stage"], "decode");
    assert!(
        dlq[0]["reason"]
            .as_str()
            .expect("reason")
            .contains("line 251"),
        "{}",
        dlq[0]
    );
    let rows = ts.rows("events/ndfile").await;
    let canon = std::fs::canonicalize(&nd_path).expect("canonical");
    check_system_columns(&rows, &format!("file:{}", canon.display()));
    let rows = by_id(&rows);
    assert_eq!(rows["f123"]["n"], 123);
    assert_eq!(rows["f123"]["x"], 123.5);
    assert_eq!(rows["f123"]["b"], false);
    assert_eq!(rows["f123"]["big"], true);
    assert_eq!(rows["last"]["n"], 1);
    check_types(&ts, "events/typed").await;
    check_types(&ts, "events/csvfile").await;
    check_types(&ts, "events/ndfile").await;

    // ---- the cards generator with a limit ----
    let done = eventually(Duration::from_secs(30), || async {
        ts.table("events/cards")
            .await
            .info(None)
            .await
            .is_ok_and(|i| i.rows >= 700)
    })
    .await;
    assert!(done, "the generator did not deliver 700 rows in time");
    // It stops at the limit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let info = ts.info("events/cards").await;
    assert_eq!(info.rows, 700, "exactly `limit` rows");
    let cols: BTreeMap<String, String> = info.columns.iter().cloned().collect();
    for (c, t) in [
        ("transaction_id", "string"),
        ("event_time", "timestamp"),
        ("card_id", "string"),
        ("amount", "double"),
        ("card_present", "boolean"),
        ("hour", "long"),
        ("is_fraud", "long"),
        ("_pii_key_version", "string"),
        ("_event_id", "string"),
        ("_position", "long"),
    ] {
        assert_eq!(
            cols.get(c).map(String::as_str),
            Some(t),
            "cards.{c}: {cols:?}"
        );
    }
    let rows = ts.rows("events/cards").await;
    assert_eq!(rows.len(), 700);
    check_system_columns(&rows, "generator:cards");
    let mut positions: Vec<i64> = rows
        .iter()
        .map(|r| r["_position"].as_i64().expect("position"))
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, (0..700).collect::<Vec<i64>>(), "each event once");
    for r in &rows {
        let card = r["card_id"].as_str().expect("card_id");
        assert!(
            card.len() == 64 && card.bytes().all(|b| b.is_ascii_hexdigit()),
            "card_id is hashed: {card}"
        );
        assert_eq!(r["_pii_key_version"], PII_KEY_VERSION);
    }
    assert_eq!(ts.count("dlq/cards").await, 0, "generated events are valid");

    ts.shutdown().await;
}
