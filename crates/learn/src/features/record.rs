//! How the pipeline reads a record: by field name, through the [`Record`] trait, so that
//! rows of the lake, decoded requests and JSON objects are all read without copying.

use freshet_core::{Schema, Value};
use std::collections::{BTreeMap, HashMap};

/// A borrowed view of one field's value. Strings are borrowed, so reading a record
/// never allocates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    /// Absent, `null`, or a nested object or array (never a feature value).
    Missing,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Days since the Unix epoch.
    Date(i32),
}

impl FieldValue<'_> {
    /// The kind's name, for errors that must not echo the value.
    pub fn kind(&self) -> &'static str {
        match self {
            FieldValue::Missing => "missing",
            FieldValue::Bool(_) => "bool",
            FieldValue::Int(_) => "int",
            FieldValue::Float(_) => "float",
            FieldValue::Str(_) => "string",
            FieldValue::Timestamp(_) => "timestamp",
            FieldValue::Date(_) => "date",
        }
    }

    /// An owned [`Value`], for code that keeps it (labels, core coercions).
    pub fn to_value(&self) -> Value {
        match *self {
            FieldValue::Missing => Value::Null,
            FieldValue::Bool(b) => Value::Bool(b),
            FieldValue::Int(i) => Value::Int(i),
            FieldValue::Float(f) => Value::Float(f),
            FieldValue::Str(s) => Value::Str(s.to_owned()),
            FieldValue::Timestamp(t) => Value::Timestamp(t),
            FieldValue::Date(d) => Value::Date(d),
        }
    }
}

impl<'a> From<&'a Value> for FieldValue<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Null | Value::Nested => FieldValue::Missing,
            Value::Bool(b) => FieldValue::Bool(*b),
            Value::Int(i) => FieldValue::Int(*i),
            Value::Float(f) => FieldValue::Float(*f),
            Value::Str(s) => FieldValue::Str(s),
            Value::Timestamp(t) => FieldValue::Timestamp(*t),
            Value::Date(d) => FieldValue::Date(*d),
        }
    }
}

impl<'a> From<&'a serde_json::Value> for FieldValue<'a> {
    /// JSON as a client sends it: integers that fit an i64 stay integers, other
    /// numbers are floats; timestamps arrive as strings or integers and are read by the
    /// feature with the same coercions as ingest.
    fn from(v: &'a serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null | J::Array(_) | J::Object(_) => FieldValue::Missing,
            J::Bool(b) => FieldValue::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => FieldValue::Int(i),
                None => n.as_f64().map_or(FieldValue::Missing, FieldValue::Float),
            },
            J::String(s) => FieldValue::Str(s),
        }
    }
}

/// Anything the pipeline can read fields from by name. A field the record lacks is
/// [`FieldValue::Missing`].
pub trait Record {
    fn field(&self, name: &str) -> FieldValue<'_>;
}

/// A row laid out by a schema (the ingest pipeline's and the lake's representation):
/// values by field index, looked up through the schema's name index.
#[derive(Debug, Clone, Copy)]
pub struct SchemaRow<'a> {
    pub schema: &'a Schema,
    pub values: &'a [Value],
}

impl<'a> SchemaRow<'a> {
    pub fn new(schema: &'a Schema, values: &'a [Value]) -> Self {
        Self { schema, values }
    }
}

impl Record for SchemaRow<'_> {
    fn field(&self, name: &str) -> FieldValue<'_> {
        self.schema
            .index_of(name)
            .and_then(|i| self.values.get(i))
            .map_or(FieldValue::Missing, FieldValue::from)
    }
}

impl Record for HashMap<String, Value> {
    fn field(&self, name: &str) -> FieldValue<'_> {
        self.get(name).map_or(FieldValue::Missing, FieldValue::from)
    }
}

impl Record for BTreeMap<String, Value> {
    fn field(&self, name: &str) -> FieldValue<'_> {
        self.get(name).map_or(FieldValue::Missing, FieldValue::from)
    }
}

/// A JSON object, as a scoring request carries it.
impl Record for serde_json::Map<String, serde_json::Value> {
    fn field(&self, name: &str) -> FieldValue<'_> {
        self.get(name).map_or(FieldValue::Missing, FieldValue::from)
    }
}

/// Any JSON value; everything is missing unless it is an object.
impl Record for serde_json::Value {
    fn field(&self, name: &str) -> FieldValue<'_> {
        self.get(name).map_or(FieldValue::Missing, FieldValue::from)
    }
}

impl<R: Record + ?Sized> Record for &R {
    fn field(&self, name: &str) -> FieldValue<'_> {
        (**self).field(name)
    }
}
