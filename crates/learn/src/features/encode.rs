//! One encoder per feature kind: what it learns, the columns it writes, their names.
//!
//! Every encoder writes a fixed number of columns, whatever it has learnt, so the
//! vector a learner sees has the same width from the first record to the last.

use super::FeatureError;
use super::record::FieldValue;
use crate::metrics::RunningMoments;
use freshet_core::model_spec::MissingPolicy;
use freshet_core::{FieldType, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::f64::consts::TAU;

/// Name of the one-hot column for categories past `max_categories`.
pub const UNSEEN: &str = "__unseen__";

/// The state of one feature's encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Encoder {
    /// `(x − mean) / std` with running moments; the population standard deviation,
    /// or 1 while it is 0 (fewer than two distinct values).
    Numeric {
        missing: MissingPolicy,
        moments: RunningMoments,
    },
    /// Category → slot, in order of first sight (declared categories first).
    Onehot {
        max_categories: usize,
        slots: BTreeMap<String, usize>,
    },
    /// FNV-1a of the category's text, modulo `buckets`.
    Hash { buckets: usize },
    /// Cyclic hour of day (timestamps only), day of week and a weekend flag, in UTC.
    Time { with_hour: bool },
    /// 1 for true, 0 for false, 0.5 when missing (neither).
    Bool,
}

impl Encoder {
    /// Columns this encoder writes.
    pub fn width(&self) -> usize {
        match self {
            Encoder::Numeric { missing, .. } => {
                1 + usize::from(*missing == MissingPolicy::Indicator)
            }
            Encoder::Onehot { max_categories, .. } => max_categories + 1,
            Encoder::Hash { buckets } => *buckets,
            Encoder::Time { with_hour } => 3 + 2 * usize::from(*with_hour),
            Encoder::Bool => 1,
        }
    }

    /// Column names, `width()` of them, prefixed by the field name.
    pub fn names(&self, field: &str, out: &mut Vec<String>) {
        match self {
            Encoder::Numeric { missing, .. } => {
                out.push(field.to_owned());
                if *missing == MissingPolicy::Indicator {
                    out.push(format!("{field}__missing"));
                }
            }
            Encoder::Onehot {
                max_categories,
                slots,
            } => {
                let start = out.len();
                // A slot not yet given a category has a placeholder name until it is.
                out.extend((0..*max_categories).map(|i| format!("{field}=__slot{i}__")));
                for (category, &slot) in slots {
                    if let Some(name) = out.get_mut(start + slot) {
                        *name = format!("{field}={category}");
                    }
                }
                out.push(format!("{field}={UNSEEN}"));
            }
            Encoder::Hash { buckets } => {
                out.extend((0..*buckets).map(|i| format!("{field}__hash{i}")));
            }
            Encoder::Time { with_hour } => {
                let parts: &[&str] = if *with_hour {
                    &["hour_sin", "hour_cos", "dow_sin", "dow_cos", "weekend"]
                } else {
                    &["dow_sin", "dow_cos", "weekend"]
                };
                out.extend(parts.iter().map(|p| format!("{field}__{p}")));
            }
            Encoder::Bool => out.push(field.to_owned()),
        }
    }

    /// Update the learnt state with one value. Values of the wrong type teach nothing.
    pub fn learn(&mut self, v: FieldValue<'_>) {
        match self {
            Encoder::Numeric { moments, .. } => {
                if let Ok(Some(x)) = numeric(v) {
                    moments.update(x);
                }
            }
            Encoder::Onehot {
                max_categories,
                slots,
            } => {
                if let Ok(Some(key)) = category(v)
                    && slots.len() < *max_categories
                    && !slots.contains_key(key.as_ref())
                {
                    let next = slots.len();
                    slots.insert(key.into_owned(), next);
                }
            }
            // Nothing to learn: their columns are fixed by definition.
            Encoder::Hash { .. } | Encoder::Time { .. } | Encoder::Bool => {}
        }
    }

    /// Append this feature's `width()` columns for `v`. A missing value is encoded as
    /// documented per kind; a value of the wrong type is an error here (naming what was
    /// expected), and the caller decides whether to treat it as missing. Nothing is
    /// appended when it fails.
    pub fn encode(
        &self,
        ty: FieldType,
        v: FieldValue<'_>,
        out: &mut Vec<f64>,
    ) -> Result<(), &'static str> {
        match self {
            Encoder::Numeric { missing, moments } => {
                let x = numeric(v);
                let present = matches!(x, Ok(Some(_)));
                let scaled = match (x?, missing) {
                    (Some(x), _) => standardise(moments, x),
                    (None, MissingPolicy::Zero) => standardise(moments, 0.0),
                    (None, MissingPolicy::Mean | MissingPolicy::Indicator) => 0.0,
                };
                out.push(scaled);
                if *missing == MissingPolicy::Indicator {
                    out.push(if present { 0.0 } else { 1.0 });
                }
            }
            Encoder::Onehot {
                max_categories,
                slots,
            } => {
                let key = category(v)?;
                let start = out.len();
                out.resize(start + max_categories + 1, 0.0);
                if let Some(key) = key {
                    let slot = slots.get(key.as_ref()).copied().unwrap_or(*max_categories);
                    if let Some(cell) = out.get_mut(start + slot) {
                        *cell = 1.0;
                    }
                }
            }
            Encoder::Hash { buckets } => {
                let key = category(v)?;
                let start = out.len();
                out.resize(start + buckets, 0.0);
                if let Some(key) = key
                    && *buckets > 0
                {
                    let slot = (fnv1a(key.as_bytes()) % *buckets as u64) as usize;
                    if let Some(cell) = out.get_mut(start + slot) {
                        *cell = 1.0;
                    }
                }
            }
            Encoder::Time { with_hour } => {
                let cols = time_columns(ty, v)?;
                let skip = if *with_hour { 0 } else { 2 };
                out.extend_from_slice(&cols[skip..]);
            }
            Encoder::Bool => out.push(match boolean(v)? {
                Some(true) => 1.0,
                Some(false) => 0.0,
                None => 0.5,
            }),
        }
        Ok(())
    }
}

fn standardise(m: &RunningMoments, x: f64) -> f64 {
    let var = m.variance(0);
    let sd = if var > 0.0 && var.is_finite() {
        var.sqrt()
    } else {
        1.0
    };
    let z = (x - m.mean()) / sd;
    if z.is_finite() { z } else { 0.0 }
}

/// A finite number, or `None` when missing; strings holding a number are read as
/// ingest reads them. NaN and infinities count as missing.
pub(crate) fn numeric(v: FieldValue<'_>) -> Result<Option<f64>, &'static str> {
    let x = match v {
        FieldValue::Missing => return Ok(None),
        FieldValue::Int(i) => i as f64,
        FieldValue::Float(f) => f,
        FieldValue::Str(s) => s.trim().parse::<f64>().map_err(|_| "a number")?,
        _ => return Err("a number"),
    };
    Ok(x.is_finite().then_some(x))
}

/// The canonical text of a category: strings as they are, integers in decimal
/// (also when a JSON client sent `3.0`), booleans as `true`/`false`.
pub(crate) fn category<'a>(
    v: FieldValue<'a>,
) -> Result<Option<std::borrow::Cow<'a, str>>, &'static str> {
    use std::borrow::Cow;
    Ok(Some(match v {
        FieldValue::Missing => return Ok(None),
        FieldValue::Str(s) => Cow::Borrowed(s),
        FieldValue::Int(i) => Cow::Owned(i.to_string()),
        FieldValue::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
        FieldValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Cow::Owned((f as i64).to_string())
        }
        FieldValue::Float(f) if f.is_finite() => Cow::Owned(f.to_string()),
        FieldValue::Float(_) => return Ok(None),
        FieldValue::Timestamp(_) | FieldValue::Date(_) => return Err("a category"),
    }))
}

fn boolean(v: FieldValue<'_>) -> Result<Option<bool>, &'static str> {
    match v {
        FieldValue::Missing => Ok(None),
        FieldValue::Bool(b) => Ok(Some(b)),
        FieldValue::Str(s) => match FieldType::Bool.coerce(Value::Str(s.to_owned())) {
            Ok(Value::Bool(b)) => Ok(Some(b)),
            _ => Err("a bool"),
        },
        _ => Err("a bool"),
    }
}

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// Hour of day (fractional, UTC) and day of week (Monday 0) of a timestamp or date;
/// `None` when missing. Strings and integers are read with ingest's coercions for the
/// field's type.
pub(crate) fn hour_and_weekday(
    ty: FieldType,
    v: FieldValue<'_>,
) -> Result<Option<(f64, i64)>, &'static str> {
    let coerced;
    let v = match v {
        FieldValue::Str(_) | FieldValue::Int(_) => {
            coerced = ty.coerce(v.to_value()).map_err(|_| "a timestamp or date")?;
            FieldValue::from(&coerced)
        }
        other => other,
    };
    let secs = match v {
        FieldValue::Missing => return Ok(None),
        FieldValue::Timestamp(us) => us.div_euclid(MICROS_PER_SEC),
        FieldValue::Date(d) => i64::from(d) * SECS_PER_DAY,
        _ => return Err("a timestamp or date"),
    };
    let hour = secs.rem_euclid(SECS_PER_DAY) as f64 / 3600.0;
    // 1970-01-01 was a Thursday; Monday is day 0.
    let dow = (secs.div_euclid(SECS_PER_DAY) + 3).rem_euclid(7);
    Ok(Some((hour, dow)))
}

/// `[hour_sin, hour_cos, dow_sin, dow_cos, weekend]`; all 0 when missing (the centre of
/// each circle: no information).
fn time_columns(ty: FieldType, v: FieldValue<'_>) -> Result<[f64; 5], &'static str> {
    let Some((hour, dow)) = hour_and_weekday(ty, v)? else {
        return Ok([0.0; 5]);
    };
    let (hs, hc) = (TAU * hour / 24.0).sin_cos();
    let (ds, dc) = (TAU * dow as f64 / 7.0).sin_cos();
    Ok([hs, hc, ds, dc, if dow >= 5 { 1.0 } else { 0.0 }])
}

/// 64-bit FNV-1a: fixed by its definition, so bucket numbers never change between
/// builds (unlike the standard library's hasher, which may).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The encoder a resolved feature kind starts with; `declared` categories of the field
/// (in schema order) seed a one-hot vocabulary so their columns are known up front.
pub fn initial(
    kind: &freshet_core::model_spec::FeatureKind,
    ty: FieldType,
    declared: Option<&[String]>,
) -> Encoder {
    use freshet_core::model_spec::FeatureKind as K;
    match kind {
        K::Numeric { missing } => Encoder::Numeric {
            missing: *missing,
            moments: RunningMoments::default(),
        },
        K::Onehot { max_categories } => {
            let mut slots = BTreeMap::new();
            for c in declared.unwrap_or_default() {
                if slots.len() < *max_categories && !slots.contains_key(c) {
                    let next = slots.len();
                    slots.insert(c.clone(), next);
                }
            }
            Encoder::Onehot {
                max_categories: *max_categories,
                slots,
            }
        }
        K::Hash { buckets } => Encoder::Hash { buckets: *buckets },
        K::Time => Encoder::Time {
            with_hour: ty == FieldType::Timestamp,
        },
        K::Bool => Encoder::Bool,
    }
}

/// Errors name the field, never the value.
pub(super) fn wrong_type(field: &str, expected: &'static str, v: FieldValue<'_>) -> FeatureError {
    FeatureError::WrongType {
        field: field.to_owned(),
        expected,
        found: v.kind(),
    }
}
