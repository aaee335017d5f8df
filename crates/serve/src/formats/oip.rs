//! Open Inference Protocol v2 (KServe, Triton, Seldon) `infer` requests.
//!
//! ```json
//! {"id": "req-1", "parameters": {"routing_key": "user-9"},
//!  "inputs": [{"name": "amount", "shape": [2], "datatype": "FP64", "data": [12.0, -0.5]},
//!             {"name": "name", "shape": [2, 1], "datatype": "BYTES", "data": [["ann"], ["bob"]]}]}
//! ```
//!
//! One input tensor per model column, named after it, of shape `[n]` or `[n, 1]`, with
//! `data` flat or nested (row-major). Alternatively a single tensor not named after a
//! column, of shape `[n, columns]`, holds every column positionally in model order (what
//! array-first clients such as `tritonclient` send). The datatype is checked against the
//! JSON values and must suit the column (see [`Datatype::holds`]); values are then
//! coerced to the column's type as everywhere else. `id` is the client's request id;
//! `outputs` (requested outputs) is accepted and ignored: the answer always holds
//! predictions and, for classifiers, probabilities.

use super::assemble::{check_count, header_slots, transpose};
use super::error::echo_name;
use super::json::{Ctx, Key, OptStrSeed, RawSeed, parse_document, reject_map, reject_scalars};
use super::{FormatError, InputColumn, Limits, MAX_ID_BYTES, RequestFormat, ScoringRequest};
use freshet_core::{FieldType, Value};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Parse an OIP v2 `infer` request body.
///
/// # Errors
/// Any [`FormatError`]: besides the column errors shared with the other formats,
/// [`FormatError::BadShape`], [`FormatError::ShapeMismatch`],
/// [`FormatError::UnsupportedDatatype`] and [`FormatError::DatatypeMismatch`].
pub fn parse_oip(
    body: &[u8],
    columns: &[InputColumn],
    limits: &Limits,
) -> Result<ScoringRequest, FormatError> {
    let ctx = Ctx::new(columns, limits);
    let top = parse_document(&ctx, body, TopSeed { ctx: &ctx })?;
    let tensors = top.inputs.ok_or_else(|| FormatError::MissingKey {
        key: "inputs".into(),
    })?;
    let rows = if is_positional(&ctx, &tensors) {
        positional_rows(&ctx, tensors)?
    } else {
        column_rows(&ctx, tensors)?
    };
    Ok(ScoringRequest {
        rows,
        client_request_id: top.id,
        routing_key: top.routing_key,
        format: RequestFormat::Oip,
    })
}

/// The tensor element types of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Datatype {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    const ALL: [Datatype; 13] = [
        Datatype::Bool,
        Datatype::Int8,
        Datatype::Int16,
        Datatype::Int32,
        Datatype::Int64,
        Datatype::Uint8,
        Datatype::Uint16,
        Datatype::Uint32,
        Datatype::Uint64,
        Datatype::Fp16,
        Datatype::Fp32,
        Datatype::Fp64,
        Datatype::Bytes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Int8 => "INT8",
            Datatype::Int16 => "INT16",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Uint8 => "UINT8",
            Datatype::Uint16 => "UINT16",
            Datatype::Uint32 => "UINT32",
            Datatype::Uint64 => "UINT64",
            Datatype::Fp16 => "FP16",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The inclusive range of an integer datatype.
    fn int_range(self) -> Option<(i64, i64)> {
        Some(match self {
            Datatype::Int8 => (i8::MIN.into(), i8::MAX.into()),
            Datatype::Int16 => (i16::MIN.into(), i16::MAX.into()),
            Datatype::Int32 => (i32::MIN.into(), i32::MAX.into()),
            Datatype::Int64 => (i64::MIN, i64::MAX),
            Datatype::Uint8 => (0, u8::MAX.into()),
            Datatype::Uint16 => (0, u16::MAX.into()),
            Datatype::Uint32 => (0, u32::MAX.into()),
            // Values past i64::MAX cannot be an int column's value anyway.
            Datatype::Uint64 => (0, i64::MAX),
            _ => return None,
        })
    }

    fn is_float(self) -> bool {
        matches!(self, Datatype::Fp16 | Datatype::Fp32 | Datatype::Fp64)
    }

    /// Whether a tensor of this datatype may feed a column of type `ty`: numbers feed
    /// floats, integers feed ints, `BOOL` bools, `BYTES` strings; timestamps and dates
    /// come as `BYTES` text or as integers (epoch milliseconds, days), as ingest takes
    /// them.
    pub fn holds(self, ty: FieldType) -> bool {
        let int = self.int_range().is_some();
        match ty {
            FieldType::Float => int || self.is_float(),
            FieldType::Int => int,
            FieldType::Bool => self == Datatype::Bool,
            FieldType::String => self == Datatype::Bytes,
            FieldType::Timestamp | FieldType::Date => int || self == Datatype::Bytes,
        }
    }

    /// What to send for a column of type `ty`.
    pub fn for_column(ty: FieldType) -> &'static str {
        match ty {
            FieldType::Float => "FP64",
            FieldType::Int => "INT64",
            FieldType::Bool => "BOOL",
            FieldType::String => "BYTES",
            FieldType::Timestamp => "BYTES (RFC 3339) or INT64 (epoch milliseconds)",
            FieldType::Date => "BYTES (YYYY-MM-DD) or INT32 (days since the epoch)",
        }
    }

    /// Whether a decoded JSON value is an element of this datatype (`null` always is: a
    /// missing value).
    fn check(self, v: &Value) -> Result<(), &'static str> {
        match (self, v) {
            (_, Value::Null) => Ok(()),
            (_, Value::Nested) => Err("expected a scalar, got an object"),
            (Datatype::Bool, Value::Bool(_)) => Ok(()),
            (Datatype::Bool, _) => Err("expected a boolean"),
            (Datatype::Bytes, Value::Str(_)) => Ok(()),
            (Datatype::Bytes, _) => Err("expected a string"),
            (d, Value::Int(_) | Value::Float(_)) if d.is_float() => Ok(()),
            (d, _) if d.is_float() => Err("expected a number"),
            (d, Value::Int(i)) => match d.int_range() {
                Some((lo, hi)) if (lo..=hi).contains(i) => Ok(()),
                _ => Err("integer out of the datatype's range"),
            },
            (_, Value::Float(f)) if f.fract() == 0.0 => Err("integer out of the datatype's range"),
            _ => Err("expected an integer"),
        }
    }
}

/// One input tensor as sent.
#[derive(Debug)]
struct Tensor {
    name: String,
    shape: Vec<u64>,
    datatype: Datatype,
    data: Vec<Value>,
}

impl Tensor {
    /// Check that `data` holds the product of `shape` values.
    fn check_len(&self) -> Result<(), FormatError> {
        let expected = self
            .shape
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d));
        if expected != Some(self.data.len() as u64) {
            return Err(FormatError::ShapeMismatch {
                input: echo_name(&self.name),
                shape: self.shape.clone(),
                expected: expected.unwrap_or(u64::MAX),
                found: self.data.len(),
            });
        }
        Ok(())
    }
}

impl Datatype {
    /// Check one element (of row `row`) against the datatype, then coerce it for
    /// column `col`.
    fn read(self, ctx: &Ctx<'_>, col: usize, row: usize, v: Value) -> Result<Value, FormatError> {
        self.check(&v).map_err(|reason| FormatError::WrongType {
            column: ctx.column_name(col),
            row,
            expected: self.name().into(),
            reason: reason.into(),
        })?;
        ctx.coerce(col, row, v)
    }
}

/// Whether the request holds every column positionally in one tensor: a single input,
/// not named after a column, of rank 2.
fn is_positional(ctx: &Ctx<'_>, tensors: &[Tensor]) -> bool {
    matches!(tensors, [t] if t.shape.len() == 2
        && !ctx.columns.is_empty()
        && ctx.slot(&t.name, 0).is_none())
}

fn positional_rows(ctx: &Ctx<'_>, tensors: Vec<Tensor>) -> Result<Vec<Vec<Value>>, FormatError> {
    let Some(t) = tensors.into_iter().next() else {
        return Err(FormatError::Empty);
    };
    let k = ctx.columns.len().max(1);
    if t.shape.get(1) != Some(&(k as u64)) {
        return Err(FormatError::BadShape {
            input: echo_name(&t.name),
            expected: format!("[n, {k}] (one value per model column, in model order)"),
        });
    }
    t.check_len()?;
    let n = t.data.len() / k;
    check_count(ctx, n)?;
    let mut rows = Vec::with_capacity(n);
    let mut row = Vec::with_capacity(k);
    for (i, v) in t.data.into_iter().enumerate() {
        row.push(t.datatype.read(ctx, i % k, i / k, v)?);
        if row.len() == k {
            rows.push(std::mem::replace(&mut row, Vec::with_capacity(k)));
        }
    }
    Ok(rows)
}

fn column_rows(ctx: &Ctx<'_>, tensors: Vec<Tensor>) -> Result<Vec<Vec<Value>>, FormatError> {
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    let slots = header_slots(ctx, &names)?;
    let mut cols: Vec<Vec<Value>> = vec![Vec::new(); ctx.columns.len()];
    for (t, slot) in tensors.into_iter().zip(slots) {
        if !matches!(t.shape.as_slice(), [_] | [_, 1]) {
            return Err(FormatError::BadShape {
                input: echo_name(&t.name),
                expected: "[n] or [n, 1]".into(),
            });
        }
        t.check_len()?;
        check_count(ctx, t.data.len())?;
        let ty = ctx.columns.get(slot).map_or(FieldType::String, |c| c.ty);
        if !t.datatype.holds(ty) {
            return Err(FormatError::DatatypeMismatch {
                column: ctx.column_name(slot),
                datatype: t.datatype.name(),
                expected: ty,
                use_: Datatype::for_column(ty),
            });
        }
        cols[slot] = t
            .data
            .into_iter()
            .enumerate()
            .map(|(row, v)| t.datatype.read(ctx, slot, row, v))
            .collect::<Result<_, _>>()?;
    }
    transpose(ctx, cols)
}

#[derive(Default)]
struct Top {
    id: Option<String>,
    routing_key: Option<String>,
    inputs: Option<Vec<Tensor>>,
}

struct TopSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
}

impl TopSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: "body".into(),
            expected: "a JSON object",
        })
    }
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_> {
    type Value = Top;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_> {
    type Value = Top;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an inference request")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let ctx = self.ctx;
        let mut top = Top::default();
        let mut seen = [false; 5];
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let k = key.as_str();
            let i = match k {
                "id" => 0,
                "parameters" => 1,
                "inputs" => 2,
                "outputs" => 3,
                // KServe's client repeats the model's name in every body; the path
                // names the model, as the protocol says, so the field is not read.
                "model_name" => 4,
                _ => return Err(ctx.fail(FormatError::UnknownKey { key: echo_name(k) })),
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(ctx.fail(FormatError::DuplicateKey { key: k.into() }));
            }
            match i {
                0 => {
                    top.id = map.next_value_seed(OptStrSeed {
                        ctx,
                        field: "id",
                        max: MAX_ID_BYTES,
                    })?;
                }
                1 => top.routing_key = map.next_value_seed(ParamsSeed { ctx })?,
                2 => top.inputs = Some(map.next_value_seed(TensorsSeed { ctx })?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(top)
    }
    reject_scalars!();
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Top, A::Error> {
        Err(self.reject())
    }
}

/// Request `parameters`: `routing_key` is read; other parameters are the model
/// server's business and Freshet's models take none, so they are ignored.
struct ParamsSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
}

impl ParamsSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: "parameters".into(),
            expected: "an object",
        })
    }
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_, '_> {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed<'_, '_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("parameters")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut routing_key = None;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.as_str() == "routing_key" {
                routing_key = map.next_value_seed(OptStrSeed {
                    ctx: self.ctx,
                    field: "parameters.routing_key",
                    max: MAX_ID_BYTES,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(routing_key)
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
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.reject())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.reject())
    }
}

/// `inputs`: the list of tensors.
struct TensorsSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
}

impl TensorsSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: "inputs".into(),
            expected: "a list of input tensors",
        })
    }
}

impl<'de> DeserializeSeed<'de> for TensorsSeed<'_, '_> {
    type Value = Vec<Tensor>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TensorsSeed<'_, '_> {
    type Value = Vec<Tensor>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tensors")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let mut out: Vec<Tensor> = Vec::with_capacity(ctx.columns.len());
        while let Some(t) = seq.next_element_seed(TensorSeed {
            ctx,
            index: out.len(),
        })? {
            out.push(t);
            // More tensors than columns: one is extra or repeated; say which before
            // reading (and holding) any more data.
            if out.len() > ctx.columns.len().max(1) {
                let names: Vec<&str> = out.iter().map(|t| t.name.as_str()).collect();
                if let Err(e) = header_slots(ctx, &names) {
                    return Err(ctx.fail(e));
                }
            }
        }
        Ok(out)
    }
    reject_scalars!();
    reject_map!();
}

/// One tensor object; its keys may come in any order.
struct TensorSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
    index: usize,
}

impl TensorSeed<'_, '_> {
    fn field(&self, key: &str) -> String {
        format!("inputs[{}].{key}", self.index)
    }
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: format!("inputs[{}]", self.index),
            expected: "an object with name, shape, datatype and data",
        })
    }
}

impl<'de> DeserializeSeed<'de> for TensorSeed<'_, '_> {
    type Value = Tensor;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Tensor, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TensorSeed<'_, '_> {
    type Value = Tensor;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tensor")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tensor, A::Error> {
        let ctx = self.ctx;
        let (mut name, mut shape, mut datatype, mut data) = (None, None, None, None);
        let mut seen_parameters = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let k = key.as_str();
            let dup = match k {
                "name" => name.is_some(),
                "shape" => shape.is_some(),
                "datatype" => datatype.is_some(),
                "data" => data.is_some(),
                "parameters" => std::mem::replace(&mut seen_parameters, true),
                _ => {
                    return Err(ctx.fail(FormatError::UnknownKey {
                        key: self.field(&echo_name(k)),
                    }));
                }
            };
            if dup {
                return Err(ctx.fail(FormatError::DuplicateKey { key: self.field(k) }));
            }
            let field = self.field(k);
            match k {
                "name" => {
                    name = Some(map.next_value_seed(OptStrSeed {
                        ctx,
                        field: &field,
                        max: 1024,
                    })?);
                }
                "datatype" => {
                    datatype = Some(map.next_value_seed(OptStrSeed {
                        ctx,
                        field: &field,
                        max: 16,
                    })?);
                }
                "shape" => shape = Some(map.next_value_seed(ShapeSeed { ctx, field })?),
                "data" => {
                    let cap = ctx.limits.max_rows.saturating_mul(ctx.columns.len().max(1));
                    data = Some(map.next_value_seed(DataSeed { ctx, field, cap })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |key: &str| {
            ctx.fail::<A::Error>(FormatError::MissingKey {
                key: self.field(key),
            })
        };
        let name = name.flatten().ok_or_else(|| missing("name"))?;
        let datatype = datatype.flatten().ok_or_else(|| missing("datatype"))?;
        let shape = shape.ok_or_else(|| missing("shape"))?;
        let data = data.ok_or_else(|| missing("data"))?;
        let datatype = Datatype::parse(&datatype).ok_or_else(|| {
            ctx.fail::<A::Error>(FormatError::UnsupportedDatatype {
                input: echo_name(&name),
            })
        })?;
        Ok(Tensor {
            name,
            shape,
            datatype,
            data,
        })
    }
    reject_scalars!();
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Tensor, A::Error> {
        Err(self.reject())
    }
}

/// A tensor's `shape`: a short list of non-negative integers.
struct ShapeSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
    field: String,
}

impl ShapeSeed<'_, '_> {
    /// Tensors of higher rank are refused anyway; this bounds what is read.
    const MAX_RANK: usize = 8;

    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: self.field.clone(),
            expected: "a list of at most 8 non-negative integers",
        })
    }
}

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_, '_> {
    type Value = Vec<u64>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ShapeSeed<'_, '_> {
    type Value = Vec<u64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a shape")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u64>, A::Error> {
        let mut out = Vec::with_capacity(2);
        while let Some(v) = seq.next_element_seed(RawSeed)? {
            match v {
                Value::Int(d) if d >= 0 && out.len() < Self::MAX_RANK => out.push(d as u64),
                _ => return Err(self.reject()),
            }
        }
        Ok(out)
    }
    reject_scalars!();
    reject_map!();
}

/// A tensor's `data`, flattened row-major however it is nested, holding at most `cap`
/// values (the row limit times the columns).
struct DataSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
    field: String,
    cap: usize,
}

impl DataSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: self.field.clone(),
            expected: "a list of values",
        })
    }
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = Vec<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tensor data")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Value>, A::Error> {
        let mut out = Vec::new();
        FlatSeed {
            ctx: self.ctx,
            out: &mut out,
            cap: self.cap,
        }
        .visit_seq(seq)?;
        Ok(out)
    }
    reject_scalars!();
    reject_map!();
}

/// Appends the scalars of one (possibly nested) JSON value to `out`. serde_json's
/// recursion limit bounds the nesting.
struct FlatSeed<'o, 'a, 'c> {
    ctx: &'a Ctx<'c>,
    out: &'o mut Vec<Value>,
    cap: usize,
}

impl FlatSeed<'_, '_, '_> {
    fn push<E: de::Error>(self, v: Value) -> Result<(), E> {
        if self.out.len() >= self.cap {
            return Err(self.ctx.fail(self.ctx.too_many_rows()));
        }
        self.out.push(v);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for FlatSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FlatSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("tensor data")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(FlatSeed {
                ctx: self.ctx,
                out: &mut *self.out,
                cap: self.cap,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.push(Value::Nested)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.push(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.push(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.push(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.push(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.push(Value::Str(v.to_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.push(Value::Null)
    }
}

#[cfg(test)]
mod tests;
