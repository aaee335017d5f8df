//! A stream's processors in order: validate, PII, then the configured transforms.
//!
//! Built once per stream from its configuration; every record either comes out as a
//! row of the output schema, is counted as filtered, or becomes a [`Rejection`] with a
//! PII-safe payload for the dead-letter table. Nothing disappears unaccounted.

use crate::Row;
use crate::decode::DecodedRecord;
use crate::process::expr::Expr;
use crate::process::pii::{PiiKey, PiiPolicy};
use crate::process::validate::validate;
use freshet_core::config::TransformConfig;
use freshet_core::{ConfigError, Field, FieldType, Schema, Value};
use serde::Serialize;

/// The stage at which a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Decode,
    Validate,
    Pii,
    Filter,
    Derive,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Validate => "validate",
            Stage::Pii => "pii",
            Stage::Filter => "filter",
            Stage::Derive => "derive",
        }
    }
}

/// A record that did not make it, with where and why. Never holds a raw value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// Index of the record in its request or chunk.
    pub index: usize,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
    /// The record with the PII policy applied, as JSON, for the dead-letter table.
    #[serde(skip)]
    pub payload: String,
}

/// What the pipeline made of a set of records.
#[derive(Debug, Default)]
pub struct Processed {
    /// Accepted rows, aligned to [`Pipeline::output_schema`].
    pub rows: Vec<Row>,
    /// For each accepted row, its index in the input.
    pub positions: Vec<usize>,
    pub rejections: Vec<Rejection>,
    /// Records a `filter` transform excluded on purpose.
    pub filtered: usize,
}

enum Step {
    Filter(Expr),
    Derive {
        expr: Expr,
        ty: FieldType,
        slot: Option<usize>,
        name: String,
    },
    Drop(Vec<usize>),
}

/// The compiled processors of one stream.
pub struct Pipeline {
    input: Schema,
    pii: PiiPolicy,
    steps: Vec<Step>,
    output: Schema,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Build from the input schema and transforms; `path` is the stream's key path
    /// (e.g. `streams.cards`) used in error messages.
    pub fn build(
        input: Schema,
        transforms: &[TransformConfig],
        key: Option<PiiKey>,
        path: &str,
    ) -> Result<Self, ConfigError> {
        let pii = PiiPolicy::new(&input, key, &format!("{path}.schema"))?;
        let mut fields = pii.output_fields(&input);
        let mut steps = Vec::with_capacity(transforms.len());
        for (i, t) in transforms.iter().enumerate() {
            let p = format!("{path}.transforms[{i}]");
            let current = Schema::new(fields.clone());
            match t {
                TransformConfig::Filter { expr } => {
                    let e = Expr::compile(expr, &current)
                        .map_err(|e| ConfigError::new(format!("{p}.expr"), e.to_string()))?;
                    steps.push(Step::Filter(e));
                }
                TransformConfig::Derive { field, ty, expr } => {
                    let e = Expr::compile(expr, &current)
                        .map_err(|e| ConfigError::new(format!("{p}.expr"), e.to_string()))?;
                    let slot = current.index_of(field);
                    match slot {
                        Some(s) => fields[s] = Field::new(field.clone(), *ty),
                        None => fields.push(Field::new(field.clone(), *ty)),
                    }
                    steps.push(Step::Derive {
                        expr: e,
                        ty: *ty,
                        slot,
                        name: field.clone(),
                    });
                }
                TransformConfig::Rename { from, to } => {
                    let idx = current.index_of(from).ok_or_else(|| {
                        ConfigError::new(
                            format!("{p}.from"),
                            format!("no field '{from}' at this point"),
                        )
                    })?;
                    if current.index_of(to).is_some() {
                        return Err(ConfigError::new(
                            format!("{p}.to"),
                            format!("field '{to}' already exists"),
                        ));
                    }
                    fields[idx].name = to.clone();
                }
                TransformConfig::Drop { fields: names } => {
                    let mut idx = Vec::with_capacity(names.len());
                    for (j, n) in names.iter().enumerate() {
                        idx.push(current.index_of(n).ok_or_else(|| {
                            ConfigError::new(
                                format!("{p}.fields[{j}]"),
                                format!("no field '{n}' at this point"),
                            )
                        })?);
                    }
                    idx.sort_unstable_by(|a, b| b.cmp(a));
                    idx.dedup();
                    for &k in &idx {
                        fields.remove(k);
                    }
                    steps.push(Step::Drop(idx));
                }
            }
        }
        if fields.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.transforms"),
                "the transforms leave no field to store",
            ));
        }
        Ok(Self {
            input,
            pii,
            steps,
            output: Schema::new(fields),
        })
    }

    /// The schema records are decoded and validated against.
    pub fn input_schema(&self) -> &Schema {
        &self.input
    }

    /// The schema of the rows that land in the event table (before system columns).
    pub fn output_schema(&self) -> &Schema {
        &self.output
    }

    /// Run every record through the processors.
    pub fn process(&self, records: Vec<DecodedRecord>) -> Processed {
        let mut out = Processed {
            rows: Vec::with_capacity(records.len()),
            positions: Vec::with_capacity(records.len()),
            ..Default::default()
        };
        for (index, rec) in records.into_iter().enumerate() {
            if let Some(crate::decode::RecordProblem::Malformed(reason)) = &rec.problem {
                // Nothing of an unparseable line is kept: it may hold PII we cannot locate.
                out.rejections.push(Rejection {
                    index,
                    stage: Stage::Decode,
                    field: None,
                    reason: reason.clone(),
                    payload: "{}".into(),
                });
                continue;
            }
            let row = match validate(&self.input, rec) {
                Ok(row) => row,
                Err((inv, raw)) => {
                    let payload = self.pii.safe_payload(&self.input, &raw);
                    out.rejections.push(Rejection {
                        index,
                        stage: Stage::Validate,
                        field: inv.field,
                        reason: inv.reason,
                        payload,
                    });
                    continue;
                }
            };
            let row = self.pii.apply(row);
            match self.transform(row) {
                Ok(Some(row)) => {
                    out.rows.push(row);
                    out.positions.push(index);
                }
                Ok(None) => out.filtered += 1,
                Err((stage, field, reason, row)) => {
                    // The row is already PII-safe here; serialise it against the working layout.
                    let payload = row_payload(&row);
                    out.rejections.push(Rejection {
                        index,
                        stage,
                        field,
                        reason,
                        payload,
                    });
                }
            }
        }
        out
    }

    #[allow(clippy::type_complexity)]
    fn transform(&self, mut row: Row) -> Result<Option<Row>, (Stage, Option<String>, String, Row)> {
        for step in &self.steps {
            match step {
                Step::Filter(e) => match e.eval_bool(&row) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(err) => return Err((Stage::Filter, None, err.to_string(), row)),
                },
                Step::Derive {
                    expr,
                    ty,
                    slot,
                    name,
                } => match expr.eval_as(&row, *ty) {
                    Ok(v) => match slot {
                        Some(s) => row[*s] = v,
                        None => row.push(v),
                    },
                    Err(err) => {
                        return Err((Stage::Derive, Some(name.clone()), err.to_string(), row));
                    }
                },
                Step::Drop(idx) => {
                    for &k in idx {
                        row.remove(k);
                    }
                }
            }
        }
        Ok(Some(row))
    }
}

/// Payload of a row that passed the PII stage: values only, in column order.
fn row_payload(row: &[Value]) -> String {
    serde_json::Value::Array(row.iter().map(Value::to_json).collect()).to_string()
}
