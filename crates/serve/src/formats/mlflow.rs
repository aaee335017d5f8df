//! MLflow's `/invocations` request formats (as `mlflow models serve` and Databricks
//! Model Serving accept them), dispatched on the content type.
//!
//! A JSON body is an object with exactly one format key:
//!
//! | key | shape |
//! |---|---|
//! | `dataframe_split` | `{"columns": [...], "data": [[...], ...], "index"?: [...]}` |
//! | `dataframe_records` | `[{"col": value, ...}, ...]` |
//! | `instances` | `[{"col": value, ...}, ...]` or `[[v1, v2, ...], ...]` in model column order |
//! | `inputs` | `{"col": [v_row0, v_row1, ...], ...}`, or a list as for `instances` |
//!
//! and optionally `client_request_id` and `routing_key` (strings) and `params` (MLflow
//! inference parameters, accepted and ignored: Freshet's models take none). Anything
//! else is refused rather than ignored, so a misspelt key is noticed.

use super::assemble::{check_count, header_slots, reorder_rows, transpose};
use super::error::echo_name;
use super::json::{
    CellSeed, Ctx, Key, NamesSeed, OptStrSeed, RawSeed, parse_document, reject_map, reject_scalars,
    reject_seq,
};
use super::{FormatError, InputColumn, Limits, MAX_ID_BYTES, RequestFormat, ScoringRequest};
use freshet_core::Value;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Parse an MLflow `/invocations` body: JSON (`application/json`, or no content type)
/// in any of the formats above, or CSV (`text/csv`) with a header row.
///
/// # Errors
/// Any [`FormatError`]; [`FormatError::UnsupportedContentType`] for other media types.
pub fn parse_invocations(
    content_type: Option<&str>,
    body: &[u8],
    columns: &[InputColumn],
    limits: &Limits,
) -> Result<ScoringRequest, FormatError> {
    let essence = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|e| e.trim().to_ascii_lowercase());
    match essence.as_deref() {
        None | Some("") | Some("application/json") => parse_json(body, columns, limits),
        Some(e) if e.starts_with("application/") && e.ends_with("+json") => {
            parse_json(body, columns, limits)
        }
        Some("text/csv") => super::csv::parse_csv(body, columns, limits),
        Some(e) => Err(FormatError::UnsupportedContentType {
            content_type: echo_name(e),
        }),
    }
}

fn parse_json(
    body: &[u8],
    columns: &[InputColumn],
    limits: &Limits,
) -> Result<ScoringRequest, FormatError> {
    let ctx = Ctx::new(columns, limits);
    let top = parse_document(&ctx, body, TopSeed { ctx: &ctx })?;
    let (format, rows) = top.rows.ok_or(FormatError::NoFormatKey)?;
    Ok(ScoringRequest {
        rows,
        client_request_id: top.client_request_id,
        routing_key: top.routing_key,
        format,
    })
}

fn format_of(key: &str) -> Option<RequestFormat> {
    Some(match key {
        "dataframe_split" => RequestFormat::DataframeSplit,
        "dataframe_records" => RequestFormat::DataframeRecords,
        "instances" => RequestFormat::Instances,
        "inputs" => RequestFormat::Inputs,
        _ => return None,
    })
}

#[derive(Default)]
struct Top {
    rows: Option<(RequestFormat, Vec<Vec<Value>>)>,
    client_request_id: Option<String>,
    routing_key: Option<String>,
}

/// The top-level object.
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
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let ctx = self.ctx;
        let mut top = Top::default();
        let (mut seen_id, mut seen_routing, mut seen_params) = (false, false, false);
        let duplicate = |key: &str| {
            ctx.fail::<A::Error>(FormatError::DuplicateKey {
                key: echo_name(key),
            })
        };
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let k = key.as_str();
            let id_seed = OptStrSeed {
                ctx,
                field: k,
                max: MAX_ID_BYTES,
            };
            match k {
                "client_request_id" => {
                    if std::mem::replace(&mut seen_id, true) {
                        return Err(duplicate(k));
                    }
                    top.client_request_id = map.next_value_seed(id_seed)?;
                }
                "routing_key" => {
                    if std::mem::replace(&mut seen_routing, true) {
                        return Err(duplicate(k));
                    }
                    top.routing_key = map.next_value_seed(id_seed)?;
                }
                "params" => {
                    if std::mem::replace(&mut seen_params, true) {
                        return Err(duplicate(k));
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    let Some(format) = format_of(k) else {
                        return Err(ctx.fail(FormatError::UnknownKey { key: echo_name(k) }));
                    };
                    if let Some((first, _)) = &top.rows {
                        return Err(if *first == format {
                            duplicate(k)
                        } else {
                            ctx.fail(FormatError::MultipleFormatKeys {
                                first: first.as_str().into(),
                                second: k.into(),
                            })
                        });
                    }
                    let rows = map.next_value_seed(FormatSeed { ctx, format })?;
                    top.rows = Some((format, rows));
                }
            }
        }
        Ok(top)
    }
    reject_scalars!();
    reject_seq!();
}

/// The value of a format key.
struct FormatSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
    format: RequestFormat,
}

impl FormatSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        let (field, expected) = match self.format {
            RequestFormat::DataframeSplit => (
                "dataframe_split",
                "an object with 'columns' and 'data' (pandas split orient)",
            ),
            RequestFormat::DataframeRecords => ("dataframe_records", "a list of objects"),
            RequestFormat::Instances => ("instances", "a list of objects or a list of lists"),
            _ => (
                "inputs",
                "an object of column lists, a list of objects or a list of lists",
            ),
        };
        self.ctx.fail(FormatError::Invalid {
            field: field.into(),
            expected,
        })
    }
}

impl<'de> DeserializeSeed<'de> for FormatSeed<'_, '_> {
    type Value = Vec<Vec<Value>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FormatSeed<'_, '_> {
    type Value = Vec<Vec<Value>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let (field, positional) = match self.format {
            RequestFormat::DataframeRecords => ("dataframe_records", false),
            RequestFormat::Instances => ("instances", true),
            RequestFormat::Inputs => ("inputs", true),
            _ => return Err(self.reject()),
        };
        read_rows(self.ctx, seq, field, positional)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        match self.format {
            RequestFormat::DataframeSplit => read_split(self.ctx, map),
            RequestFormat::Inputs => read_columns(self.ctx, map),
            _ => Err(self.reject()),
        }
    }
    reject_scalars!();
}

/// `dataframe_split`: names and rows may come in either order, so rows are decoded
/// with their JSON kinds and coerced once the names are known.
fn read_split<'de, A: MapAccess<'de>>(
    ctx: &Ctx<'_>,
    mut map: A,
) -> Result<Vec<Vec<Value>>, A::Error> {
    let mut names = None;
    let mut data = None;
    let mut seen_index = false;
    while let Some(key) = map.next_key::<Key<'de>>()? {
        let k = key.as_str();
        let dup = match k {
            "columns" => names.is_some(),
            "data" => data.is_some(),
            "index" => std::mem::replace(&mut seen_index, true),
            _ => {
                return Err(ctx.fail(FormatError::UnknownKey {
                    key: format!("dataframe_split.{}", echo_name(k)),
                }));
            }
        };
        if dup {
            return Err(ctx.fail(FormatError::DuplicateKey {
                key: format!("dataframe_split.{k}"),
            }));
        }
        match k {
            "columns" => {
                names = Some(map.next_value_seed(NamesSeed {
                    ctx,
                    field: "dataframe_split.columns",
                })?);
            }
            "data" => data = Some(map.next_value_seed(SplitDataSeed { ctx })?),
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    let missing = |key: &str| {
        ctx.fail::<A::Error>(FormatError::MissingKey {
            key: format!("dataframe_split.{key}"),
        })
    };
    let names = names.ok_or_else(|| missing("columns"))?;
    let data = data.ok_or_else(|| missing("data"))?;
    header_slots(ctx, &names)
        .and_then(|slots| reorder_rows(ctx, &slots, data))
        .map_err(|e| ctx.fail(e))
}

/// `dataframe_split.data`: a list of rows, each a list of values.
struct SplitDataSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
}

impl SplitDataSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: "dataframe_split.data".into(),
            expected: "a list of rows, each a list of values",
        })
    }
}

impl<'de> DeserializeSeed<'de> for SplitDataSeed<'_, '_> {
    type Value = Vec<Vec<Value>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SplitDataSeed<'_, '_> {
    type Value = Vec<Vec<Value>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::new();
        let width = self.ctx.columns.len();
        while let Some(row) = seq.next_element_seed(SplitRowSeed {
            outer: &self,
            width,
        })? {
            if rows.len() >= self.ctx.limits.max_rows {
                return Err(self.ctx.fail(self.ctx.too_many_rows()));
            }
            rows.push(row);
        }
        Ok(rows)
    }
    reject_scalars!();
    reject_map!();
}

/// One row of `dataframe_split.data`, decoded with JSON kinds.
struct SplitRowSeed<'s, 'a, 'c> {
    outer: &'s SplitDataSeed<'a, 'c>,
    width: usize,
}

impl SplitRowSeed<'_, '_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.outer.reject()
    }
}

impl<'de> DeserializeSeed<'de> for SplitRowSeed<'_, '_, '_> {
    type Value = Vec<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SplitRowSeed<'_, '_, '_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut row = Vec::with_capacity(self.width);
        while let Some(v) = seq.next_element_seed(RawSeed)? {
            row.push(v);
        }
        Ok(row)
    }
    reject_scalars!();
    reject_map!();
}

/// Whether a list of rows holds objects or positional lists (mixing is refused).
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Unknown,
    Objects,
    Lists,
}

/// What the rows of one list have shown so far.
struct RowsState {
    kind: RowKind,
    /// Model columns seen in any object row.
    present: Vec<bool>,
    /// The last row each column was seen in, to catch a key repeated within an object.
    last_row: Vec<usize>,
}

/// `dataframe_records`, `instances` or a list under `inputs`.
fn read_rows<'de, A: SeqAccess<'de>>(
    ctx: &Ctx<'_>,
    mut seq: A,
    field: &'static str,
    positional: bool,
) -> Result<Vec<Vec<Value>>, A::Error> {
    let n = ctx.columns.len();
    let mut st = RowsState {
        kind: RowKind::Unknown,
        present: vec![false; n],
        last_row: vec![usize::MAX; n],
    };
    let mut rows = Vec::new();
    loop {
        let seed = RowSeed {
            ctx,
            field,
            positional,
            row: rows.len(),
            st: &mut st,
        };
        let Some(row) = seq.next_element_seed(seed)? else {
            break;
        };
        if rows.len() >= ctx.limits.max_rows {
            return Err(ctx.fail(ctx.too_many_rows()));
        }
        rows.push(row);
    }
    if st.kind == RowKind::Objects {
        ctx.first_missing(&st.present).map_err(|e| ctx.fail(e))?;
    }
    check_count(ctx, rows.len()).map_err(|e| ctx.fail(e))?;
    Ok(rows)
}

/// One row: an object keyed by column name, or (when `positional`) a list of values in
/// model column order.
struct RowSeed<'a, 'c, 's> {
    ctx: &'a Ctx<'c>,
    field: &'static str,
    positional: bool,
    row: usize,
    st: &'s mut RowsState,
}

impl RowSeed<'_, '_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: self.field.into(),
            expected: if self.positional {
                "a list of objects, or a list of lists (all rows alike)"
            } else {
                "a list of objects"
            },
        })
    }

    fn set_kind<E: de::Error>(&mut self, kind: RowKind) -> Result<(), E> {
        match self.st.kind {
            RowKind::Unknown => {
                self.st.kind = kind;
                Ok(())
            }
            k if k == kind => Ok(()),
            _ => Err(self.reject()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_, '_> {
    type Value = Vec<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_, '_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        self.set_kind(RowKind::Objects)?;
        let ctx = self.ctx;
        let mut out = vec![Value::Null; ctx.columns.len()];
        let mut hint = 0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let name = key.as_str();
            let Some(slot) = ctx.slot(name, hint) else {
                return Err(ctx.fail(FormatError::ExtraColumn {
                    column: echo_name(name),
                }));
            };
            if std::mem::replace(&mut self.st.last_row[slot], self.row) == self.row {
                return Err(ctx.fail(FormatError::DuplicateColumn {
                    column: echo_name(name),
                }));
            }
            self.st.present[slot] = true;
            out[slot] = map.next_value_seed(CellSeed {
                ctx,
                col: slot,
                row: self.row,
            })?;
            hint = slot + 1;
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        if !self.positional {
            return Err(self.reject());
        }
        self.set_kind(RowKind::Lists)?;
        let ctx = self.ctx;
        let n = ctx.columns.len();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let seed = CellSeed {
                ctx,
                col: out.len(),
                row: self.row,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        let mut found = out.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            found += 1;
        }
        if found != n {
            return Err(ctx.fail(FormatError::RowArity {
                row: self.row,
                expected: n,
                found,
            }));
        }
        Ok(out)
    }
    reject_scalars!();
}

/// `inputs` as an object: column name → the column's values, one per row.
fn read_columns<'de, A: MapAccess<'de>>(
    ctx: &Ctx<'_>,
    mut map: A,
) -> Result<Vec<Vec<Value>>, A::Error> {
    let mut cols: Vec<Option<Vec<Value>>> = vec![None; ctx.columns.len()];
    let mut hint = 0;
    while let Some(key) = map.next_key::<Key<'de>>()? {
        let name = key.as_str();
        let Some(slot) = ctx.slot(name, hint) else {
            return Err(ctx.fail(FormatError::ExtraColumn {
                column: echo_name(name),
            }));
        };
        if cols[slot].is_some() {
            return Err(ctx.fail(FormatError::DuplicateColumn {
                column: echo_name(name),
            }));
        }
        cols[slot] = Some(map.next_value_seed(ColumnSeed { ctx, col: slot })?);
        hint = slot + 1;
    }
    let present: Vec<bool> = cols.iter().map(Option::is_some).collect();
    ctx.first_missing(&present).map_err(|e| ctx.fail(e))?;
    transpose(ctx, cols.into_iter().flatten().collect()).map_err(|e| ctx.fail(e))
}

/// One column of columnar `inputs`, coerced as it is read.
struct ColumnSeed<'a, 'c> {
    ctx: &'a Ctx<'c>,
    col: usize,
}

impl ColumnSeed<'_, '_> {
    fn reject<E: de::Error>(&self) -> E {
        self.ctx.fail(FormatError::Invalid {
            field: format!("inputs.{}", self.ctx.column_name(self.col)),
            expected: "a list of values, one per row",
        })
    }
}

impl<'de> DeserializeSeed<'de> for ColumnSeed<'_, '_> {
    type Value = Vec<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ColumnSeed<'_, '_> {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let ctx = self.ctx;
        let mut out = Vec::new();
        loop {
            let seed = CellSeed {
                ctx,
                col: self.col,
                row: out.len(),
            };
            let Some(v) = seq.next_element_seed(seed)? else {
                return Ok(out);
            };
            if out.len() >= ctx.limits.max_rows {
                return Err(ctx.fail(ctx.too_many_rows()));
            }
            out.push(v);
        }
    }
    reject_scalars!();
    reject_map!();
}

#[cfg(test)]
mod tests;
