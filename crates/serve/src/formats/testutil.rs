//! Shared fixtures for the format tests: a model reading one column of each kind, and
//! the two rows every format's round-trip test must produce.

use super::{FormatError, InputColumn};
use freshet_core::{FieldType, Value};

/// Values that look like personal data; no error text may contain them.
pub const CARD: &str = "4111111111111111";
pub const EMAIL: &str = "alice@example.com";

/// `amount: float, count: int, flag: bool, name: string, ts: timestamp`.
pub fn columns() -> Vec<InputColumn> {
    vec![
        InputColumn::new("amount", FieldType::Float),
        InputColumn::new("count", FieldType::Int),
        InputColumn::new("flag", FieldType::Bool),
        InputColumn::new("name", FieldType::String),
        InputColumn::new("ts", FieldType::Timestamp),
    ]
}

/// 2026-11-21T10:00:00Z in microseconds.
pub const TS0: i64 = 1_795_255_200_000_000;
/// 1_700_000_000_000 ms since the epoch, in microseconds.
pub const TS1: i64 = 1_700_000_000_000_000;

/// `amount=12, count=3, flag=true, name="ann", ts=2026-11-21T10:00:00Z`.
pub fn row0() -> Vec<Value> {
    vec![
        Value::Float(12.0),
        Value::Int(3),
        Value::Bool(true),
        Value::Str("ann".into()),
        Value::Timestamp(TS0),
    ]
}

/// `amount=-0.5, count=-7, flag=false, name="bob", ts=1700000000000 (epoch ms)`.
pub fn row1() -> Vec<Value> {
    vec![
        Value::Float(-0.5),
        Value::Int(-7),
        Value::Bool(false),
        Value::Str("bob".into()),
        Value::Timestamp(TS1),
    ]
}

/// Assert that the error (its message and its debug form) does not contain `secret`.
pub fn assert_no_leak(err: &FormatError, secret: &str) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains(secret), "error leaks the value: {text}");
}

#[test]
fn ts0_is_the_documented_instant() {
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z").unwrap();
    assert_eq!(t.timestamp_micros(), TS0);
}
