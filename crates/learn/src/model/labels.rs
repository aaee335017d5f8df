//! Class labels: the label values a classifier's class indices stand for, so that
//! predictions come back as the values the stream carries.

use super::ModelError;
use crate::features::FieldValue;
use freshet_core::{Field, FieldType, Task, Value};
use serde::{Deserialize, Serialize};

/// Classes a multiclass model may discover; past it a new label is an error rather than
/// an ever-growing probability vector.
pub const MAX_CLASSES: usize = 1024;

/// One class, as the label field holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClassLabel {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl ClassLabel {
    /// The label as a record value.
    pub fn to_value(&self) -> Value {
        match self {
            ClassLabel::Bool(b) => Value::Bool(*b),
            ClassLabel::Int(i) => Value::Int(*i),
            ClassLabel::Str(s) => Value::Str(s.clone()),
        }
    }
}

/// The classes known before any label arrives, so that class indices do not depend on
/// arrival order where the schema pins them: `false`/`true` for bool labels, `0`/`1`
/// for ints bounded to [0, 1], the declared categories of a string label.
pub fn initial_classes(label: &Field, task: Task) -> Vec<ClassLabel> {
    match (label.ty, task) {
        (_, Task::Regression) => Vec::new(),
        (FieldType::Bool, _) => vec![ClassLabel::Bool(false), ClassLabel::Bool(true)],
        (FieldType::Int, _) if label.min == Some(0.0) && label.max == Some(1.0) => {
            vec![ClassLabel::Int(0), ClassLabel::Int(1)]
        }
        (FieldType::String, _) => label
            .categories
            .iter()
            .flatten()
            .take(class_cap(task))
            .map(|c| ClassLabel::Str(c.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn class_cap(task: Task) -> usize {
    if task == Task::Binary { 2 } else { MAX_CLASSES }
}

/// A label value as a class, with ingest's coercions for the label field's type.
pub(super) fn to_class(
    field: &str,
    ty: FieldType,
    v: FieldValue<'_>,
) -> Result<ClassLabel, ModelError> {
    let bad = |reason: &str| ModelError::Label {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    match ty.coerce(v.to_value()).map_err(|e| bad(&e.0))? {
        Value::Null => Err(bad("missing")),
        Value::Bool(b) => Ok(ClassLabel::Bool(b)),
        Value::Int(i) => Ok(ClassLabel::Int(i)),
        Value::Str(s) => Ok(ClassLabel::Str(s)),
        other => Err(bad(&format!("a {} cannot be a class", other.kind()))),
    }
}

/// The class index of a label value, adding the class to `classes` when it is new and
/// the task's limit allows; `classes` is unchanged on an error.
pub(super) fn class_index(
    field: &str,
    ty: FieldType,
    task: Task,
    classes: &mut Vec<ClassLabel>,
    v: FieldValue<'_>,
) -> Result<usize, ModelError> {
    let class = to_class(field, ty, v)?;
    if let Some(i) = classes.iter().position(|c| *c == class) {
        return Ok(i);
    }
    if classes.len() >= class_cap(task) {
        return Err(ModelError::Label {
            field: field.to_owned(),
            reason: format!(
                "more than {} classes for a {} task",
                class_cap(task),
                task.as_str()
            ),
        });
    }
    classes.push(class);
    Ok(classes.len() - 1)
}

/// A regression target: a finite number.
pub(super) fn to_target(field: &str, v: FieldValue<'_>) -> Result<f64, ModelError> {
    let bad = |reason: &str| ModelError::Label {
        field: field.to_owned(),
        reason: reason.to_owned(),
    };
    match FieldType::Float
        .coerce(v.to_value())
        .map_err(|e| bad(&e.0))?
    {
        Value::Float(x) if x.is_finite() => Ok(x),
        Value::Null => Err(bad("missing")),
        _ => Err(bad("expected a finite number")),
    }
}
