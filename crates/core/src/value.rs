//! Values as they flow through a stream, and the column types a schema may declare.
//!
//! Coercions, applied by [`FieldType::coerce`] (and documented for users in
//! `docs/configuration.md`):
//!
//! | declared | accepts |
//! |---|---|
//! | `string` | strings; numbers and booleans are rendered as their JSON text |
//! | `int` | integers in the i64 range; floats with no fractional part; strings holding an integer |
//! | `float` | any number; strings holding a number; must be finite |
//! | `bool` | `true`/`false`; the strings `"true"`/`"false"` (any case) |
//! | `timestamp` | RFC 3339 strings (`2026-11-21T10:00:00Z`); integers as milliseconds since the epoch |
//! | `date` | `YYYY-MM-DD` strings; integers as days since the epoch |

use serde::{Deserialize, Serialize};
use std::fmt;

/// A single value of a record field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// Days since the Unix epoch.
    Date(i32),
    /// A JSON object or array where a scalar was expected; never valid for a column,
    /// kept only so that the validator can say so.
    Nested,
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of the value's kind, for error messages that must not echo the value.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::Date(_) => "date",
            Value::Nested => "object or array",
        }
    }

    /// Rough in-memory size, used for the byte bound of micro-batches.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.len() + 8,
            _ => 8,
        }
    }

    /// JSON form of the value (timestamps as RFC 3339, dates as `YYYY-MM-DD`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null | Value::Nested => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Timestamp(t) => chrono::DateTime::from_timestamp_micros(*t)
                .map_or(J::Null, |d| J::String(d.to_rfc3339())),
            Value::Date(d) => date_from_days(*d).map_or(J::Null, |d| J::String(d.to_string())),
        }
    }
}

/// The column types a stream schema can declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Int,
    Float,
    Bool,
    Timestamp,
    Date,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Timestamp => "timestamp",
            FieldType::Date => "date",
        })
    }
}

/// Why a value could not be coerced; never carries the value itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoerceError(pub String);

impl FieldType {
    /// Coerce a decoded value to this type following the documented rules.
    /// `Null` stays `Null`; whether that is allowed is the validator's business.
    pub fn coerce(self, v: Value) -> Result<Value, CoerceError> {
        let mismatch = |v: &Value| CoerceError(format!("expected {self}, got {}", v.kind()));
        Ok(match (self, v) {
            (_, Value::Null) => Value::Null,
            (_, v @ Value::Nested) => return Err(mismatch(&v)),
            (FieldType::String, Value::Str(s)) => Value::Str(s),
            (FieldType::String, Value::Int(i)) => Value::Str(i.to_string()),
            (FieldType::String, Value::Float(f)) => Value::Str(f.to_string()),
            (FieldType::String, Value::Bool(b)) => Value::Str(b.to_string()),
            (FieldType::Int, Value::Int(i)) => Value::Int(i),
            (FieldType::Int, Value::Float(f)) => {
                // i64 covers [-2^63, 2^63); both bounds are exact in f64.
                if f.fract() == 0.0
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
                {
                    Value::Int(f as i64)
                } else if f.fract() != 0.0 {
                    return Err(CoerceError(
                        "expected int, got a number with a fraction".into(),
                    ));
                } else {
                    return Err(CoerceError("integer out of the 64-bit range".into()));
                }
            }
            (FieldType::Int, Value::Str(s)) => {
                Value::Int(s.trim().parse::<i64>().map_err(|_| {
                    CoerceError("expected int, got a string that is not an integer".into())
                })?)
            }
            (FieldType::Float, Value::Float(f)) => finite(f)?,
            (FieldType::Float, Value::Int(i)) => Value::Float(i as f64),
            (FieldType::Float, Value::Str(s)) => {
                finite(s.trim().parse::<f64>().map_err(|_| {
                    CoerceError("expected float, got a string that is not a number".into())
                })?)?
            }
            (FieldType::Bool, Value::Bool(b)) => Value::Bool(b),
            (FieldType::Bool, Value::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(CoerceError(
                        "expected bool, got a string other than true/false".into(),
                    ));
                }
            },
            (FieldType::Timestamp, Value::Timestamp(t)) => Value::Timestamp(t),
            (FieldType::Timestamp, Value::Str(s)) => Value::Timestamp(
                chrono::DateTime::parse_from_rfc3339(s.trim())
                    .map_err(|_| CoerceError("expected an RFC 3339 timestamp".into()))?
                    .timestamp_micros(),
            ),
            (FieldType::Timestamp, Value::Int(ms)) => Value::Timestamp(
                ms.checked_mul(1000)
                    .ok_or_else(|| CoerceError("timestamp out of range".into()))?,
            ),
            (FieldType::Date, Value::Date(d)) => Value::Date(d),
            (FieldType::Date, Value::Str(s)) => {
                let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map_err(|_| CoerceError("expected a date as YYYY-MM-DD".into()))?;
                Value::Date(days_from_date(d))
            }
            (FieldType::Date, Value::Int(days)) => Value::Date(
                i32::try_from(days).map_err(|_| CoerceError("date out of range".into()))?,
            ),
            (_, v) => return Err(mismatch(&v)),
        })
    }
}

fn finite(f: f64) -> Result<Value, CoerceError> {
    if f.is_finite() {
        Ok(Value::Float(f))
    } else {
        Err(CoerceError("expected a finite float".into()))
    }
}

const EPOCH: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a valid date"),
};

pub fn days_from_date(d: chrono::NaiveDate) -> i32 {
    (d - EPOCH).num_days() as i32
}

pub fn date_from_days(days: i32) -> Option<chrono::NaiveDate> {
    EPOCH.checked_add_signed(chrono::Duration::days(days as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_coercions_hold() {
        assert_eq!(FieldType::Int.coerce(Value::Float(3.0)), Ok(Value::Int(3)));
        assert_eq!(
            FieldType::Int.coerce(Value::Str(" 42 ".into())),
            Ok(Value::Int(42))
        );
        assert!(FieldType::Int.coerce(Value::Float(3.5)).is_err());
        assert!(FieldType::Int.coerce(Value::Float(1e30)).is_err());
        assert_eq!(
            FieldType::Float.coerce(Value::Int(2)),
            Ok(Value::Float(2.0))
        );
        assert!(FieldType::Float.coerce(Value::Str("nan".into())).is_err());
        assert_eq!(
            FieldType::Bool.coerce(Value::Str("TRUE".into())),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            FieldType::String.coerce(Value::Int(7)),
            Ok(Value::Str("7".into()))
        );
        assert_eq!(
            FieldType::Timestamp.coerce(Value::Str("1970-01-01T00:00:01Z".into())),
            Ok(Value::Timestamp(1_000_000))
        );
        assert_eq!(
            FieldType::Timestamp.coerce(Value::Int(5)),
            Ok(Value::Timestamp(5000))
        );
        assert_eq!(
            FieldType::Date.coerce(Value::Str("1970-01-11".into())),
            Ok(Value::Date(10))
        );
        assert!(FieldType::Date.coerce(Value::Nested).is_err());
        assert_eq!(FieldType::Int.coerce(Value::Null), Ok(Value::Null));
    }

    #[test]
    fn coercion_errors_never_echo_the_value() {
        let secret = "4111-1111-1111-1111";
        let err = FieldType::Int
            .coerce(Value::Str(secret.into()))
            .unwrap_err();
        assert!(!err.0.contains(secret));
    }
}
