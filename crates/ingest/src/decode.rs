//! Decoding request bodies and file lines into records aligned to a schema.
//!
//! JSON values are decoded straight into [`Value`] slots by field index, without an
//! intermediate `serde_json::Value` tree. Type coercion is the validator's job; here a
//! value keeps the JSON kind it arrived with. A syntax error fails the whole body with
//! its line and column; a record-level problem (not an object, undeclared field) is
//! carried on the record so the pipeline can dead-letter just that record.

use crate::Row;
use crate::error::IngestError;
use freshet_core::{Schema, Value};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A record-level decoding problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordProblem {
    NotAnObject,
    /// A line of a file that is not well-formed (the message has line and column, no content).
    Malformed(String),
    /// The first undeclared field seen (its name, never its value).
    UnknownField(String),
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRecord {
    /// Values by schema index; absent fields are `Null`.
    pub values: Row,
    pub problem: Option<RecordProblem>,
}

/// Decode a JSON array of objects, or NDJSON (one object per line), detected from the
/// first non-blank byte.
pub fn decode_json_body(body: &[u8], schema: &Schema) -> Result<Vec<DecodedRecord>, IngestError> {
    decode_json_body_at_most(body, schema, usize::MAX)
}

/// As [`decode_json_body`], refusing a body of more than `max` records as soon as the
/// record past `max` is reached, so a body of many tiny records never holds more than
/// `max` decoded ones.
pub fn decode_json_body_at_most(
    body: &[u8],
    schema: &Schema,
    max: usize,
) -> Result<Vec<DecodedRecord>, IngestError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Ok(Vec::new()),
        Some(b'[') => decode_json_array(body, schema, max),
        Some(_) => decode_ndjson_at_most(body, schema, 1, max),
    }
}

/// The error for a body of more than `max` records.
pub fn too_many_records(max: usize) -> IngestError {
    IngestError::TooLarge(format!(
        "more than {max} records in one request exceeds the buffer of {max} records; split the request"
    ))
}

fn malformed(e: &serde_json::Error, line_offset: usize) -> IngestError {
    // serde_json's message ends with " at line X column Y"; we report those as fields.
    let msg = e.to_string();
    let message = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    IngestError::Malformed {
        line: e.line() + line_offset,
        column: e.column(),
        message,
    }
}

fn decode_json_array(
    body: &[u8],
    schema: &Schema,
    max: usize,
) -> Result<Vec<DecodedRecord>, IngestError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let over = std::cell::Cell::new(false);
    let records = ArraySeed {
        schema,
        max,
        over: &over,
    }
    .deserialize(&mut de)
    .map_err(|e| {
        if over.get() {
            too_many_records(max)
        } else {
            malformed(&e, 0)
        }
    })?;
    de.end().map_err(|e| malformed(&e, 0))?;
    Ok(records)
}

/// Decode NDJSON; `first_line` is the 1-based number of the first line (files resume midway).
pub fn decode_ndjson(
    body: &[u8],
    schema: &Schema,
    first_line: usize,
) -> Result<Vec<DecodedRecord>, IngestError> {
    decode_ndjson_at_most(body, schema, first_line, usize::MAX)
}

/// As [`decode_ndjson`], refusing more than `max` records.
pub fn decode_ndjson_at_most(
    body: &[u8],
    schema: &Schema,
    first_line: usize,
    max: usize,
) -> Result<Vec<DecodedRecord>, IngestError> {
    let mut out = Vec::with_capacity((body.len() / 256 + 1).min(max.saturating_add(1)));
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if out.len() == max {
            return Err(too_many_records(max));
        }
        out.push(decode_json_record(line, schema).map_err(|e| match e {
            IngestError::Malformed {
                column, message, ..
            } => IngestError::Malformed {
                line: first_line + i,
                column,
                message,
            },
            other => other,
        })?);
    }
    Ok(out)
}

/// Decode one JSON value as a record (line numbers in errors are relative to it).
pub fn decode_json_record(text: &[u8], schema: &Schema) -> Result<DecodedRecord, IngestError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let rec = RecordSeed { schema }
        .deserialize(&mut de)
        .map_err(|e| malformed(&e, 0))?;
    de.end().map_err(|e| malformed(&e, 0))?;
    Ok(rec)
}

/// Decode a CSV body with a header row; cells arrive as strings (empty cells as null)
/// and are typed by the validator's coercions.
pub fn decode_csv(body: &[u8], schema: &Schema) -> Result<Vec<DecodedRecord>, IngestError> {
    decode_csv_at_most(body, schema, usize::MAX)
}

/// As [`decode_csv`], refusing more than `max` records.
pub fn decode_csv_at_most(
    body: &[u8],
    schema: &Schema,
    max: usize,
) -> Result<Vec<DecodedRecord>, IngestError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(body);
    let headers = reader.headers().map_err(|e| csv_error(&e))?.clone();
    let map = CsvHeader::new(&headers, schema);
    let mut out = Vec::new();
    let mut rec = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) if out.len() == max => return Err(too_many_records(max)),
            Ok(true) => out.push(map.decode(&rec, schema)?),
            Err(e) => return Err(csv_error(&e)),
        }
    }
    Ok(out)
}

/// The mapping from CSV columns to schema fields, computed once per file.
#[derive(Debug, Clone)]
pub struct CsvHeader {
    slots: Vec<Option<usize>>,
    unknown: Option<String>,
}

impl CsvHeader {
    pub fn new(headers: &csv::StringRecord, schema: &Schema) -> Self {
        let slots: Vec<Option<usize>> = headers.iter().map(|h| schema.index_of(h.trim())).collect();
        let unknown = headers
            .iter()
            .zip(&slots)
            .find(|(_, s)| s.is_none())
            .map(|(h, _)| h.to_string());
        Self { slots, unknown }
    }

    /// Number of columns in the header.
    pub fn width(&self) -> usize {
        self.slots.len()
    }

    /// Decode one CSV record.
    pub fn decode(
        &self,
        rec: &csv::ByteRecord,
        schema: &Schema,
    ) -> Result<DecodedRecord, IngestError> {
        let mut values = vec![Value::Null; schema.len()];
        for (cell, slot) in rec.iter().zip(&self.slots) {
            if let Some(i) = slot
                && !cell.is_empty()
            {
                let s = std::str::from_utf8(cell).map_err(|_| IngestError::Malformed {
                    line: rec.position().map_or(0, |p| p.line() as usize),
                    column: 0,
                    message: "invalid UTF-8 in CSV cell".into(),
                })?;
                values[*i] = Value::Str(s.to_string());
            }
        }
        let problem = match (&self.unknown, schema.unknown_fields) {
            (Some(name), freshet_core::schema::UnknownFields::Reject) => {
                Some(RecordProblem::UnknownField(name.clone()))
            }
            _ => None,
        };
        Ok(DecodedRecord { values, problem })
    }
}

pub fn csv_error(e: &csv::Error) -> IngestError {
    let line = e.position().map_or(0, |p| p.line() as usize);
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_string(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("expected {expected_len} columns, found {len}")
        }
        _ => "unreadable CSV".to_string(),
    };
    IngestError::Malformed {
        line,
        column: 0,
        message,
    }
}

struct ArraySeed<'a> {
    schema: &'a Schema,
    /// Records past this many are refused; `over` says the refusal was that.
    max: usize,
    over: &'a std::cell::Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = Vec<DecodedRecord>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = Vec<DecodedRecord>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(
            seq.size_hint()
                .unwrap_or(64)
                .min(1 << 16)
                .min(self.max.saturating_add(1)),
        );
        while let Some(r) = seq.next_element_seed(RecordSeed {
            schema: self.schema,
        })? {
            if out.len() == self.max {
                self.over.set(true);
                return Err(de::Error::custom("too many records"));
            }
            out.push(r);
        }
        Ok(out)
    }
}

struct RecordSeed<'a> {
    schema: &'a Schema,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = DecodedRecord;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl RecordSeed<'_> {
    fn not_object(&self) -> DecodedRecord {
        DecodedRecord {
            values: vec![Value::Null; self.schema.len()],
            problem: Some(RecordProblem::NotAnObject),
        }
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = DecodedRecord;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a record (JSON object)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = vec![Value::Null; self.schema.len()];
        let mut problem = None;
        let fields = self.schema.fields();
        let mut expected = 0;
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            // Producers usually send keys in schema order: try the next field first and
            // fall back to the hash index.
            let k = key.as_str();
            let slot = match fields.get(expected) {
                Some(f) if f.name == k => Some(expected),
                _ => self.schema.index_of(k),
            };
            if let Some(i) = slot {
                expected = i + 1;
            }
            match slot {
                Some(i) => values[i] = map.next_value_seed(ValueSeed)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if problem.is_none()
                        && self.schema.unknown_fields == freshet_core::schema::UnknownFields::Reject
                    {
                        problem = Some(RecordProblem::UnknownField(truncate_name(key.as_str())));
                    }
                }
            }
        }
        Ok(DecodedRecord { values, problem })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.not_object())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(self.not_object())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(self.not_object())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(self.not_object())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(self.not_object())
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(self.not_object())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(self.not_object())
    }
}

/// Field names are echoed in errors; cap them so a hostile key cannot bloat responses.
fn truncate_name(name: &str) -> String {
    name.chars().take(64).collect()
}

/// A map key, borrowed from the input when it has no escapes.
enum KeyStr<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl KeyStr<'_> {
    fn as_str(&self) -> &str {
        match self {
            KeyStr::Borrowed(s) => s,
            KeyStr::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyStr::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyStr::Owned(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// Decodes one JSON value into a [`Value`] keeping its JSON kind.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Nested)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Nested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::{Field, FieldType};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("a", FieldType::Int),
            Field::new("b", FieldType::String),
        ])
    }

    #[test]
    fn a_body_of_more_records_than_allowed_is_refused_while_decoding() {
        let s = schema();
        let array = br#"[{"a": 1}, {"a": 2}, {"a": 3}]"#;
        let ndjson = b"{\"a\": 1}\n\n{\"a\": 2}\n{\"a\": 3}\n";
        let csv = b"a,b\n1,x\n2,y\n3,z\n";
        assert_eq!(decode_json_body_at_most(array, &s, 3).unwrap().len(), 3);
        assert_eq!(decode_json_body_at_most(ndjson, &s, 3).unwrap().len(), 3);
        assert_eq!(decode_csv_at_most(csv, &s, 3).unwrap().len(), 3);
        for e in [
            decode_json_body_at_most(array, &s, 2).unwrap_err(),
            decode_json_body_at_most(ndjson, &s, 2).unwrap_err(),
            decode_csv_at_most(csv, &s, 2).unwrap_err(),
        ] {
            match e {
                IngestError::TooLarge(m) => {
                    assert!(m.contains("more than 2 records in one request"), "{m}")
                }
                other => panic!("{other}"),
            }
        }
        // Malformed JSON is still reported as such, not as too many.
        let bad = br#"[{"a": 1}, {"a": "#;
        assert!(matches!(
            decode_json_body_at_most(bad, &s, 5),
            Err(IngestError::Malformed { .. })
        ));
    }

    #[test]
    fn array_and_ndjson_decode_alike() {
        let s = schema();
        let arr = decode_json_body(br#"[{"a":1,"b":"x"},{"b":"y"}]"#, &s).unwrap();
        let nd = decode_json_body(b"{\"a\":1,\"b\":\"x\"}\n\n{\"b\":\"y\"}\n", &s).unwrap();
        assert_eq!(arr, nd);
        assert_eq!(arr[0].values, vec![Value::Int(1), Value::Str("x".into())]);
        assert_eq!(arr[1].values[0], Value::Null);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = decode_json_body(b"{\"a\":1}\n{\"a\":\n", &schema()).unwrap_err();
        match err {
            IngestError::Malformed { line, .. } => assert_eq!(line, 2),
            e => panic!("{e:?}"),
        }
        let err = decode_json_body(b"[{\"a\":1},\n {\"a\" 2}]", &schema()).unwrap_err();
        assert!(
            matches!(
                err,
                IngestError::Malformed {
                    line: 2,
                    column: 7,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn record_level_problems_do_not_fail_the_body() {
        let recs = decode_json_body(br#"[1, {"a":1,"zz":2}, {"a":{"x":[1]}}]"#, &schema()).unwrap();
        assert_eq!(recs[0].problem, Some(RecordProblem::NotAnObject));
        assert_eq!(
            recs[1].problem,
            Some(RecordProblem::UnknownField("zz".into()))
        );
        assert_eq!(recs[2].values[0], Value::Nested);
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        let s = schema();
        let deep = "[".repeat(100_000);
        assert!(decode_json_body(deep.as_bytes(), &s).is_err());
        // A deeply nested field value is skipped without recursion and kept as `Nested`,
        // which the validator rejects for that record alone.
        let deep_field = format!(
            "{{\"a\":{}{}}}",
            "[".repeat(1_000_000),
            "]".repeat(1_000_000)
        );
        let recs = decode_json_body(deep_field.as_bytes(), &s).unwrap();
        assert_eq!(recs[0].values[0], Value::Nested);
        assert!(decode_json_body(b"{\"b\":\"\xff\xfe\"}", &s).is_err());
        let huge = decode_json_body(b"{\"a\": 123456789012345678901234567890}", &s).unwrap();
        assert!(matches!(huge[0].values[0], Value::Float(_)));
        assert!(decode_json_body(b"{\"a\": 1e400}", &s).is_err());
    }

    #[test]
    fn csv_cells_are_strings_and_blank_is_null() {
        let recs = decode_csv(b"b,a\nx,1\n,\n", &schema()).unwrap();
        assert_eq!(
            recs[0].values,
            vec![Value::Str("1".into()), Value::Str("x".into())]
        );
        assert_eq!(recs[1].values, vec![Value::Null, Value::Null]);
    }
}
