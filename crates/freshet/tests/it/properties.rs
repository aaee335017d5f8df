//! Properties of the decoder and the processors, through the public API of
//! `freshet_ingest`: no input makes them panic, every decoded record is accounted for
//! exactly once (accepted, rejected or filtered), and no rejection or stored value
//! carries the raw value of a PII-tagged field.

use freshet_core::config::TransformConfig;
use freshet_core::{Field, FieldType, PiiAction, Schema, Value};
use freshet_ingest::Pipeline;
use freshet_ingest::decode::{DecodedRecord, decode_csv, decode_json_body};
use freshet_ingest::process::pii::{PiiKey, REDACTED};
use proptest::prelude::*;
use serde_json::{Map, Value as J};
use std::collections::HashSet;

/// Every raw PII value generated here starts with this; nothing else can contain it.
const MARK: &str = "PIIRAW";

fn schema() -> Schema {
    let mut id = Field::new("id", FieldType::String).required();
    id.max_length = Some(20);
    Schema::new(vec![
        id,
        Field::new("qty", FieldType::Int).range(Some(0.0), Some(1000.0)),
        Field::new("amount", FieldType::Float),
        Field::new("flag", FieldType::Bool),
        Field::new("ts", FieldType::Timestamp),
        Field::new("day", FieldType::Date),
        Field::new("kind", FieldType::String).categories(["a", "b", "c"]),
        Field::new("email", FieldType::String).pii(PiiAction::Hash),
        Field::new("name", FieldType::String).pii(PiiAction::Redact),
        Field::new("ssn", FieldType::String).pii(PiiAction::Drop),
    ])
}

const PII_FIELDS: [&str; 3] = ["email", "name", "ssn"];
const PLAIN_FIELDS: [&str; 7] = ["id", "qty", "amount", "flag", "ts", "day", "kind"];

fn pipeline() -> Pipeline {
    let transforms = vec![
        // Errors on a null qty (filter stage), excludes large ones.
        TransformConfig::Filter {
            expr: "qty < 900".into(),
        },
        // Fails when amount is 0 (an infinite ratio cannot be stored).
        TransformConfig::Derive {
            field: "ratio".into(),
            ty: FieldType::Float,
            expr: "amount == null ? 0.0 : 100.0 / amount".into(),
        },
        TransformConfig::Derive {
            field: "email_set".into(),
            ty: FieldType::Bool,
            expr: "email != null".into(),
        },
        TransformConfig::Rename {
            from: "kind".into(),
            to: "category".into(),
        },
        TransformConfig::Drop {
            fields: vec!["flag".into()],
        },
    ];
    let key = PiiKey::new(b"property-test-key-0123456789", "pv1").expect("key");
    Pipeline::build(schema(), &transforms, Some(key), "streams.p").expect("pipeline")
}

/// The accounting every processed set must satisfy.
fn check_accounting(p: &Pipeline, records: Vec<DecodedRecord>) -> Result<(), TestCaseError> {
    let n = records.len();
    let out = p.process(records);
    prop_assert_eq!(out.rows.len() + out.rejections.len() + out.filtered, n);
    prop_assert_eq!(out.rows.len(), out.positions.len());
    let mut seen = HashSet::new();
    for &i in &out.positions {
        prop_assert!(i < n);
        prop_assert!(seen.insert(i), "index {} accepted twice", i);
    }
    for r in &out.rejections {
        prop_assert!(r.index < n);
        prop_assert!(seen.insert(r.index), "index {} accounted twice", r.index);
        prop_assert!(!r.reason.is_empty());
    }
    prop_assert_eq!(seen.len(), n - out.filtered);
    let width = p.output_schema().len();
    for row in &out.rows {
        prop_assert_eq!(row.len(), width);
    }
    Ok(())
}

// ---- arbitrary bytes ----

/// Fragments that make random byte strings look like JSON often enough to go deep.
fn json_token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "[", "]", "{", "}", ",", ":", "\n", " ", "\"id\"", "\"qty\"", "\"amount\"",
            "\"email\"", "\"name\"", "\"zz\"", "\"x\"", "1", "-0", "1e400", "1.5e3",
            "123456789012345678901234567890", "null", "true", "fals", "\"a\"",
            "\"\\u00e9\"", "\"\\ud800\"", "\"\\", "\u{feff}", "\r\n", "\t",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ]
}

fn json_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(json_token(), 0..120).prop_map(|v| v.concat())
}

// ---- arbitrary JSON-ish records ----

fn pii_value() -> impl Strategy<Value = J> {
    prop_oneof![
        6 => "[A-Za-z0-9@. -]{1,16}".prop_map(|s| J::String(format!("{MARK}{s}"))),
        1 => Just(J::Null),
        1 => "[a-z0-9]{4,8}".prop_map(|s| {
            let mut m = Map::new();
            m.insert("inner".into(), J::String(format!("{MARK}{s}")));
            J::Object(m)
        }),
        1 => "[a-z0-9]{4,8}".prop_map(|s| J::Array(vec![J::String(format!("{MARK}{s}"))])),
    ]
}

fn scalar() -> impl Strategy<Value = J> {
    prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        (-2000i64..2000).prop_map(J::from),
        Just(J::from(u64::MAX)),
        (-1.0e6f64..1.0e6).prop_map(J::from),
        prop::sample::select(vec![0.0f64, -0.0, 1e300, -1e300, 0.5, 899.0, 900.0])
            .prop_map(J::from),
        "[a-z0-9 ]{0,24}".prop_map(J::String),
        prop::sample::select(vec![
            "a",
            "b",
            "c",
            "true",
            "FALSE",
            "42",
            "-7",
            "3.5",
            "NaN",
            "inf",
            "2026-11-21T10:00:00Z",
            "2026-11-21",
            "1970-01-01T00:00:00+14:00",
            "9999-12-31",
            "0000-01-01",
            "",
        ])
        .prop_map(|s| J::String(s.to_string())),
    ]
}

fn plain_value() -> impl Strategy<Value = J> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(J::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..3)
                .prop_map(|m| J::Object(m.into_iter().collect())),
        ]
    })
}

/// A value that is valid for the plain field `name` (most of the time the validator
/// passes it, so the filter and derive stages see many records).
fn valid_value(name: &'static str) -> BoxedStrategy<J> {
    match name {
        "id" => "[a-z0-9]{1,20}".prop_map(J::String).boxed(),
        "qty" => prop_oneof![
            (0i64..=1000).prop_map(J::from),
            (0i64..=1000).prop_map(|i| J::String(i.to_string())),
        ]
        .boxed(),
        "amount" => prop_oneof![
            4 => (-1.0e6f64..1.0e6).prop_map(J::from),
            1 => Just(J::from(0.0)),
            1 => (-1000i64..1000).prop_map(J::from),
        ]
        .boxed(),
        "flag" => prop_oneof![any::<bool>().prop_map(J::Bool), Just(J::from("true"))].boxed(),
        "ts" => prop_oneof![
            (0i64..4_000_000_000_000).prop_map(J::from),
            Just(J::from("2026-11-21T10:00:00.123456Z")),
        ]
        .boxed(),
        "day" => prop_oneof![
            (-30000i64..30000).prop_map(J::from),
            Just(J::from("2026-02-28"))
        ]
        .boxed(),
        _ => prop::sample::select(vec!["a", "b", "c"])
            .prop_map(J::from)
            .boxed(),
    }
}

fn field_value(name: &'static str) -> BoxedStrategy<Option<J>> {
    prop::option::weighted(0.8, prop_oneof![5 => valid_value(name), 1 => plain_value()]).boxed()
}

fn record() -> impl Strategy<Value = J> {
    let plain: Vec<BoxedStrategy<Option<J>>> =
        PLAIN_FIELDS.iter().map(|f| field_value(f)).collect();
    let pii: Vec<BoxedStrategy<Option<J>>> = PII_FIELDS
        .iter()
        .map(|_| prop::option::weighted(0.7, pii_value()).boxed())
        .collect();
    let object = (
        plain,
        pii,
        prop::option::weighted(0.05, ("[a-z]{1,6}_u", plain_value())),
    )
        .prop_map(|(plain, pii, unknown)| {
            let mut m = Map::new();
            for (k, v) in PLAIN_FIELDS.iter().zip(plain) {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            }
            for (k, v) in PII_FIELDS.iter().zip(pii) {
                if let Some(v) = v {
                    m.insert(k.to_string(), v);
                }
            }
            if let Some((k, v)) = unknown {
                m.insert(k, v);
            }
            J::Object(m)
        });
    prop_oneof![15 => object, 1 => plain_value()]
}

/// Every raw PII string inside `v` (PII fields only hold such strings).
fn raw_pii(v: &J, out: &mut Vec<String>) {
    match v {
        J::String(s) if s.starts_with(MARK) => out.push(s.clone()),
        J::Array(a) => a.iter().for_each(|x| raw_pii(x, out)),
        J::Object(m) => m.values().for_each(|x| raw_pii(x, out)),
        _ => {}
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        other => other.to_json().to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // The shrunk input is printed on failure; no regression files in the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let s = schema();
        if let Ok(records) = decode_json_body(&bytes, &s) {
            check_accounting(&pipeline(), records)?;
        }
        if let Ok(records) = decode_csv(&bytes, &s) {
            check_accounting(&pipeline(), records)?;
        }
    }

    #[test]
    fn json_like_bytes_never_panic(bytes in json_like_bytes()) {
        let s = schema();
        if let Ok(records) = decode_json_body(&bytes, &s) {
            for r in &records {
                prop_assert_eq!(r.values.len(), s.len());
            }
            check_accounting(&pipeline(), records)?;
        }
    }

    #[test]
    fn every_record_is_accounted_for_and_pii_never_echoed(
        records in prop::collection::vec(record(), 0..24),
        ndjson in any::<bool>(),
    ) {
        // A body is told to be an array or NDJSON by its first byte, so NDJSON cannot
        // start with an array record (that body is refused as a malformed array).
        let ndjson = ndjson && !records.first().is_some_and(J::is_array);
        let body = if ndjson {
            records.iter().map(J::to_string).collect::<Vec<_>>().join("\n")
        } else {
            J::Array(records.clone()).to_string()
        };
        let s = schema();
        let decoded = decode_json_body(body.as_bytes(), &s)
            .map_err(|e| TestCaseError::fail(format!("valid JSON refused: {e}")))?;
        prop_assert_eq!(decoded.len(), records.len());
        let p = pipeline();
        check_accounting(&p, decoded.clone())?;

        let mut secrets = Vec::new();
        for r in &records {
            raw_pii(r, &mut secrets);
        }
        let out = p.process(decoded);
        for r in &out.rejections {
            let text = format!("{} {:?} {}", r.reason, r.field, r.payload);
            prop_assert!(!text.contains(MARK), "rejection leaks PII: {}", text);
            let json = serde_json::to_string(r).expect("serialises");
            prop_assert!(!json.contains(MARK), "answer leaks PII: {}", json);
        }
        let out_schema = p.output_schema();
        prop_assert!(out_schema.index_of("ssn").is_none());
        prop_assert!(out_schema.index_of("flag").is_none());
        let email = out_schema.index_of("email").expect("email column");
        let name = out_schema.index_of("name").expect("name column");
        for row in &out.rows {
            for v in row {
                prop_assert!(!value_text(v).contains(MARK), "row leaks PII: {:?}", row);
            }
            match &row[email] {
                Value::Null => {}
                Value::Str(h) => prop_assert!(
                    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                    "email not hashed: {}", h
                ),
                other => prop_assert!(false, "email holds {:?}", other),
            }
            prop_assert!(
                matches!(&row[name], Value::Null) || row[name] == Value::Str(REDACTED.into()),
                "name not redacted: {:?}", row[name]
            );
        }
        // The secrets were really there to be leaked.
        if !records.is_empty() && !secrets.is_empty() {
            prop_assert!(body.contains(MARK));
        }
    }
}
