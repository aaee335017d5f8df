//! Streaming JSON building blocks shared by the MLflow and OIP parsers.
//!
//! Visitors decode straight into [`Value`]s. When a visitor finds a problem it records a
//! structured [`FormatError`] in the [`Ctx`] and aborts deserialisation with an empty
//! serde error; [`Ctx::finish`] then returns the recorded error. That keeps the errors
//! typed (and free of values) while the parse still stops at the first problem.

use super::error::echo_name;
use super::{FormatError, InputColumn, Limits};
use freshet_core::Value;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

/// Below this many columns a linear scan beats hashing the name.
const SCAN_COLUMNS: usize = 16;

/// The model's columns and the request's limits, plus the first error a visitor found.
pub(crate) struct Ctx<'c> {
    pub columns: &'c [InputColumn],
    pub limits: &'c Limits,
    index: Option<HashMap<&'c str, usize>>,
    error: Cell<Option<FormatError>>,
}

impl<'c> Ctx<'c> {
    pub fn new(columns: &'c [InputColumn], limits: &'c Limits) -> Self {
        let index = (columns.len() > SCAN_COLUMNS).then(|| {
            columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.as_str(), i))
                .collect()
        });
        Self {
            columns,
            limits,
            index,
            error: Cell::new(None),
        }
    }

    /// The model position of column `name`, trying `hint` first (producers usually send
    /// columns in model order).
    pub fn slot(&self, name: &str, hint: usize) -> Option<usize> {
        if self.columns.get(hint).is_some_and(|c| c.name == name) {
            return Some(hint);
        }
        match &self.index {
            Some(map) => map.get(name).copied(),
            None => self.columns.iter().position(|c| c.name == name),
        }
    }

    /// Record `e` (the first one wins) and return the serde error that unwinds the parse.
    pub fn fail<E: de::Error>(&self, e: FormatError) -> E {
        let first = self.error.take().unwrap_or(e);
        self.error.set(Some(first));
        E::custom("")
    }

    /// The parse result, with a recorded error taking precedence over serde's.
    pub fn finish<T>(&self, r: Result<T, serde_json::Error>) -> Result<T, FormatError> {
        match (self.error.take(), r) {
            (Some(e), _) => Err(e),
            (None, Ok(v)) => Ok(v),
            (None, Err(e)) => Err(FormatError::from_json(&e)),
        }
    }

    /// Coerce a decoded cell to the type of column `col`.
    pub fn coerce(&self, col: usize, row: usize, v: Value) -> Result<Value, FormatError> {
        let Some(c) = self.columns.get(col) else {
            return Err(FormatError::RowArity {
                row,
                expected: self.columns.len(),
                found: col + 1,
            });
        };
        c.ty.coerce(v).map_err(|e| FormatError::WrongType {
            column: c.name.clone(),
            row,
            expected: c.ty.to_string(),
            reason: e.0,
        })
    }

    pub fn column_name(&self, col: usize) -> String {
        self.columns
            .get(col)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    /// The first model column not marked present.
    pub fn first_missing(&self, present: &[bool]) -> Result<(), FormatError> {
        match self
            .columns
            .iter()
            .zip(present)
            .find(|(_, p)| !**p)
            .map(|(c, _)| c)
        {
            Some(c) => Err(FormatError::MissingColumn {
                column: c.name.clone(),
            }),
            None => Ok(()),
        }
    }

    pub fn too_many_rows(&self) -> FormatError {
        FormatError::TooManyRows {
            max: self.limits.max_rows,
        }
    }
}

/// Parse `body` with `seed` as a whole JSON document (trailing garbage is an error).
pub(crate) fn parse_document<'de, S: DeserializeSeed<'de>>(
    ctx: &Ctx<'_>,
    body: &'de [u8],
    seed: S,
) -> Result<S::Value, FormatError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut de = serde_json::Deserializer::from_slice(body);
    let r = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    ctx.finish(r)
}

/// Visitor methods that refuse every JSON scalar with `self.reject()`.
macro_rules! reject_scalars {
    () => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(self.reject())
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(self.reject())
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(self.reject())
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(self.reject())
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(self.reject())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Err(self.reject())
        }
    };
}

/// Visitor method that refuses a JSON array with `self.reject()`.
macro_rules! reject_seq {
    () => {
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.reject())
        }
    };
}

/// Visitor method that refuses a JSON object with `self.reject()`.
macro_rules! reject_map {
    () => {
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.reject())
        }
    };
}

pub(crate) use {reject_map, reject_scalars, reject_seq};

/// A map key, borrowed from the input when it has no escapes.
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key::Owned(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// Decodes one JSON value into a [`Value`] keeping its JSON kind; objects and arrays
/// become [`Value::Nested`] so that coercion reports them as the wrong type.
pub(crate) struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawSeed {
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

/// Decodes one cell and coerces it to the type of column `col`.
pub(crate) struct CellSeed<'a, 'c> {
    pub ctx: &'a Ctx<'c>,
    pub col: usize,
    pub row: usize,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_, '_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let raw = RawSeed.deserialize(d)?;
        self.ctx
            .coerce(self.col, self.row, raw)
            .map_err(|e| self.ctx.fail(e))
    }
}

/// Decodes an optional string (`null` → `None`) of at most `max` bytes; anything else
/// is [`FormatError::Invalid`] naming `field`.
pub(crate) struct OptStrSeed<'a, 'c> {
    pub ctx: &'a Ctx<'c>,
    pub field: &'a str,
    pub max: usize,
}

impl OptStrSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: echo_name(self.field),
            expected: "a string",
        })
    }
}

impl<'de> DeserializeSeed<'de> for OptStrSeed<'_, '_> {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OptStrSeed<'_, '_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.len() > self.max {
            return Err(self.ctx.fail(FormatError::Invalid {
                field: echo_name(self.field),
                expected: "a shorter string",
            }));
        }
        Ok(Some(v.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.reject())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.reject())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.reject())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.reject())
    }
    reject_seq!();
    reject_map!();
}

/// Decodes a list of strings (column names), refusing anything else as
/// [`FormatError::Invalid`] naming `field`.
pub(crate) struct NamesSeed<'a, 'c> {
    pub ctx: &'a Ctx<'c>,
    pub field: &'static str,
}

impl NamesSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: self.field.to_string(),
            expected: "a list of column names (strings)",
        })
    }
}

impl<'de> DeserializeSeed<'de> for NamesSeed<'_, '_> {
    type Value = Vec<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NamesSeed<'_, '_> {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(self.ctx.columns.len());
        loop {
            let seed = OptStrSeed {
                ctx: self.ctx,
                field: self.field,
                max: 1024,
            };
            match seq.next_element_seed(seed)? {
                None => return Ok(out),
                Some(None) => return Err(self.reject()),
                Some(Some(name)) => out.push(name),
            }
        }
    }
    reject_scalars!();
    reject_map!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::FieldType;

    fn cols() -> Vec<InputColumn> {
        (0..20)
            .map(|i| InputColumn::new(format!("c{i}"), FieldType::Int))
            .collect()
    }

    #[test]
    fn slots_resolve_by_scan_and_by_index() {
        let limits = Limits::default();
        let many = cols();
        let few = &many[..3];
        for columns in [&many[..], few] {
            let ctx = Ctx::new(columns, &limits);
            assert_eq!(ctx.slot("c2", 0), Some(2));
            assert_eq!(ctx.slot("c2", 2), Some(2));
            assert_eq!(ctx.slot("nope", 0), None);
        }
    }

    #[test]
    fn the_first_recorded_error_wins() {
        let limits = Limits::default();
        let columns = cols();
        let ctx = Ctx::new(&columns, &limits);
        let _: serde_json::Error = ctx.fail(FormatError::Empty);
        let _: serde_json::Error = ctx.fail(FormatError::NoFormatKey);
        assert_eq!(ctx.finish::<()>(Ok(())), Err(FormatError::Empty));
        assert_eq!(ctx.finish::<()>(Ok(())), Ok(()));
    }

    #[test]
    fn raw_values_keep_their_json_kind() {
        let limits = Limits::default();
        let ctx = Ctx::new(&[], &limits);
        let parse = |s: &str| parse_document(&ctx, s.as_bytes(), RawSeed).unwrap();
        assert_eq!(parse("1"), Value::Int(1));
        assert_eq!(parse("1.5"), Value::Float(1.5));
        assert_eq!(parse("18446744073709551615"), Value::Float(u64::MAX as f64));
        assert_eq!(parse("\"a\\n\""), Value::Str("a\n".into()));
        assert_eq!(parse("null"), Value::Null);
        assert_eq!(parse("true"), Value::Bool(true));
        assert_eq!(parse("[1,[2]]"), Value::Nested);
        assert_eq!(parse("{\"a\":{}}"), Value::Nested);
        assert!(matches!(
            parse_document(&ctx, b"1 2", RawSeed),
            Err(FormatError::Malformed { .. })
        ));
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let limits = Limits::default();
        let ctx = Ctx::new(&[], &limits);
        assert_eq!(
            parse_document(&ctx, b"\xEF\xBB\xBF 7", RawSeed),
            Ok(Value::Int(7))
        );
    }

    #[test]
    fn floats_round_trip() {
        let limits = Limits::default();
        let ctx = Ctx::new(&[], &limits);
        for f in [
            0.1,
            1.0 / 3.0,
            2.2250738585072014e-308,
            1.7976931348623157e308,
        ] {
            let s = serde_json::to_string(&f).unwrap();
            assert_eq!(
                parse_document(&ctx, s.as_bytes(), RawSeed),
                Ok(Value::Float(f))
            );
        }
    }
}
