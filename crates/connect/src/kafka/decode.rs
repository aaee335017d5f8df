//! One Kafka record into one pipeline record: the value decoded by the stream's payload
//! format, then the mapped metadata (key, timestamp, topic, partition, offset, headers)
//! written into their declared fields. A record that cannot be decoded becomes a
//! record with a problem, which the pipeline sends to the dead-letter table: it never
//! stalls its partition.

use freshet_core::config_connect::{KafkaMetadata, PayloadFormat};
use freshet_core::{Schema, Value};
use freshet_ingest::decode::{CsvHeader, DecodedRecord, RecordProblem, decode_json_record};

/// What a record carries besides its value.
#[derive(Debug, Clone, Copy)]
pub struct RecordMeta<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// Milliseconds since the epoch, when the record has a timestamp.
    pub timestamp_ms: Option<i64>,
}

/// Decodes record values and applies the metadata mapping, for one stream.
#[derive(Debug, Clone)]
pub struct RecordDecoder {
    schema: Schema,
    format: PayloadFormat,
    csv: CsvHeader,
    max_bytes: usize,
    key: Option<usize>,
    timestamp: Option<usize>,
    topic: Option<usize>,
    partition: Option<usize>,
    offset: Option<usize>,
    headers: Vec<(String, usize)>,
}

impl RecordDecoder {
    /// Fields named by `metadata` must exist in `schema` (checked by `freshet validate`);
    /// any that do not are ignored here.
    pub fn new(
        schema: &Schema,
        format: PayloadFormat,
        metadata: &KafkaMetadata,
        max_bytes: usize,
    ) -> Self {
        let names = csv::StringRecord::from(
            schema
                .fields()
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>(),
        );
        let slot = |f: &Option<String>| f.as_deref().and_then(|n| schema.index_of(n));
        Self {
            schema: schema.clone(),
            format,
            csv: CsvHeader::new(&names, schema),
            max_bytes,
            key: slot(&metadata.key),
            timestamp: slot(&metadata.timestamp),
            topic: slot(&metadata.topic),
            partition: slot(&metadata.partition),
            offset: slot(&metadata.offset),
            headers: metadata
                .headers
                .iter()
                .filter_map(|(h, f)| schema.index_of(f).map(|i| (h.clone(), i)))
                .collect(),
        }
    }

    /// True when some header is mapped (headers are only read then).
    pub fn wants_headers(&self) -> bool {
        !self.headers.is_empty()
    }

    /// Decode one record; `header` looks a header's value up by name.
    pub fn decode<'h>(
        &self,
        payload: Option<&[u8]>,
        meta: RecordMeta<'_>,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> DecodedRecord {
        let mut rec = match payload {
            None => problem(&self.schema, "the record has no value (a tombstone)".into()),
            Some(p) if p.len() > self.max_bytes => problem(
                &self.schema,
                format!(
                    "the record value is {} bytes, over max_record_bytes ({})",
                    p.len(),
                    self.max_bytes
                ),
            ),
            Some(p) => match self.format {
                PayloadFormat::Json => match decode_json_record(p, &self.schema) {
                    Ok(r) => r,
                    Err(e) => problem(&self.schema, e.to_string()),
                },
                PayloadFormat::Csv => self.decode_csv(p),
            },
        };
        let text = |b: &[u8]| Value::Str(String::from_utf8_lossy(b).into_owned());
        let mut set = |slot: Option<usize>, v: Value| {
            if let Some(i) = slot
                && let Some(cell) = rec.values.get_mut(i)
            {
                *cell = v;
            }
        };
        set(self.key, meta.key.map_or(Value::Null, text));
        set(
            self.timestamp,
            meta.timestamp_ms
                .map_or(Value::Null, |ms| Value::Timestamp(ms.saturating_mul(1000))),
        );
        set(self.topic, Value::Str(meta.topic.to_string()));
        set(self.partition, Value::Int(i64::from(meta.partition)));
        set(self.offset, Value::Int(meta.offset));
        for (name, slot) in &self.headers {
            set(Some(*slot), header(name).map_or(Value::Null, text));
        }
        rec
    }

    fn decode_csv(&self, payload: &[u8]) -> DecodedRecord {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(payload);
        let mut row = csv::ByteRecord::new();
        match reader.read_byte_record(&mut row) {
            Ok(true) if row.len() == self.csv.width() => {
                match self.csv.decode(&row, &self.schema) {
                    Ok(r) => r,
                    Err(e) => problem(&self.schema, e.to_string()),
                }
            }
            Ok(true) => problem(
                &self.schema,
                format!(
                    "the CSV line has {} columns, the schema declares {}",
                    row.len(),
                    self.csv.width()
                ),
            ),
            Ok(false) => problem(&self.schema, "the record value is empty".into()),
            Err(e) => problem(
                &self.schema,
                freshet_ingest::decode::csv_error(&e).to_string(),
            ),
        }
    }
}

fn problem(schema: &Schema, reason: String) -> DecodedRecord {
    DecodedRecord {
        values: vec![Value::Null; schema.len()],
        problem: Some(RecordProblem::Malformed(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::{Field, FieldType};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("amount", FieldType::Float),
            Field::new("account", FieldType::String),
            Field::new("at", FieldType::Timestamp),
            Field::new("trace", FieldType::String),
            Field::new("offset", FieldType::Int),
        ])
    }

    fn meta() -> RecordMeta<'static> {
        RecordMeta {
            topic: "t",
            partition: 2,
            offset: 41,
            key: Some(b"acct-7"),
            timestamp_ms: Some(1_700_000_000_123),
        }
    }

    fn mapping() -> KafkaMetadata {
        KafkaMetadata {
            key: Some("account".into()),
            timestamp: Some("at".into()),
            offset: Some("offset".into()),
            headers: [("trace-id".to_string(), "trace".to_string())].into(),
            ..Default::default()
        }
    }

    #[test]
    fn json_value_and_metadata_land_in_their_fields() {
        let d = RecordDecoder::new(&schema(), PayloadFormat::Json, &mapping(), 1024);
        let r = d.decode(Some(br#"{"amount": 12.5}"#), meta(), |h| {
            (h == "trace-id").then_some(b"abc".as_slice())
        });
        assert_eq!(r.problem, None);
        assert_eq!(
            r.values,
            vec![
                Value::Float(12.5),
                Value::Str("acct-7".into()),
                Value::Timestamp(1_700_000_000_123_000),
                Value::Str("abc".into()),
                Value::Int(41),
            ]
        );
    }

    #[test]
    fn csv_lines_follow_the_declared_order() {
        let d = RecordDecoder::new(
            &schema(),
            PayloadFormat::Csv,
            &KafkaMetadata::default(),
            1024,
        );
        let r = d.decode(Some(b"3.5,a,,x,7"), meta(), |_| None);
        assert_eq!(r.problem, None);
        assert_eq!(r.values[0], Value::Str("3.5".into()));
        assert_eq!(r.values[2], Value::Null);
        let r = d.decode(Some(b"3.5,a"), meta(), |_| None);
        assert!(matches!(r.problem, Some(RecordProblem::Malformed(m)) if m.contains("2 columns")));
    }

    #[test]
    fn poison_becomes_a_problem_not_an_error() {
        let d = RecordDecoder::new(&schema(), PayloadFormat::Json, &mapping(), 16);
        for (payload, needle) in [
            (Some(b"{not json".as_slice()), "malformed"),
            (
                Some(b"{\"amount\": 1, \"pad\": \"xxxxxxxx\"}".as_slice()),
                "max_record_bytes",
            ),
            (None, "tombstone"),
        ] {
            let r = d.decode(payload, meta(), |_| None);
            match r.problem {
                Some(RecordProblem::Malformed(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{other:?}"),
            }
            // Metadata still lands, so the dead letter says where the record was.
            assert_eq!(r.values[4], Value::Int(41));
        }
    }
}
