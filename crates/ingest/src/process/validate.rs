//! The `validate` processor: coerce each field to its declared type and apply the
//! schema's checks (required, min/max, categories, maximum length).
//! Reasons name the field and the rule, never the value.

use crate::Row;
use crate::decode::{DecodedRecord, RecordProblem};
use freshet_core::{Field, FieldType, Schema, Value};

/// Why a record failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: Option<String>,
    pub reason: String,
}

/// Validate a decoded record against the schema, producing typed values.
pub fn validate(schema: &Schema, record: DecodedRecord) -> Result<Row, (Invalid, Row)> {
    if let Some(p) = record.problem {
        let inv = match p {
            RecordProblem::NotAnObject => Invalid {
                field: None,
                reason: "record is not a JSON object".into(),
            },
            RecordProblem::Malformed(m) => Invalid {
                field: None,
                reason: m,
            },
            RecordProblem::UnknownField(name) => Invalid {
                field: Some(name),
                reason: "field is not declared in the schema".into(),
            },
        };
        return Err((inv, record.values));
    }
    let mut values = record.values;
    // Coerce in place: the row keeps its allocation all the way to the committer.
    for (i, field) in schema.fields().iter().enumerate() {
        let Some(slot) = values.get_mut(i) else { break };
        let v = std::mem::replace(slot, Value::Null);
        match check_field(field, v) {
            Ok(v) => *slot = v,
            Err((reason, v)) => {
                *slot = v;
                return Err((
                    Invalid {
                        field: Some(field.name.clone()),
                        reason,
                    },
                    values,
                ));
            }
        }
    }
    Ok(values)
}

fn check_field(field: &Field, v: Value) -> Result<Value, (String, Value)> {
    if v.is_null() {
        return if field.required {
            Err(("required field is missing".into(), v))
        } else {
            Ok(v)
        };
    }
    // Values that already have the declared type skip coercion (and its copy).
    let v = match (field.ty, v) {
        (FieldType::String, v @ Value::Str(_))
        | (FieldType::Int, v @ Value::Int(_))
        | (FieldType::Float, v @ Value::Float(_))
        | (FieldType::Bool, v @ Value::Bool(_))
        | (FieldType::Timestamp, v @ Value::Timestamp(_))
        | (FieldType::Date, v @ Value::Date(_)) => v,
        (_, v) => {
            let kept = v.clone();
            field.ty.coerce(v).map_err(|e| (e.0, kept))?
        }
    };
    if let Some(reason) = rule_violation(field, &v) {
        return Err((reason, v));
    }
    Ok(v)
}

/// The first schema rule the (typed) value breaks, if any.
fn rule_violation(field: &Field, v: &Value) -> Option<String> {
    let numeric = match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        Value::Float(_) => return Some("expected a finite float".into()),
        _ => None,
    };
    if let Some(x) = numeric {
        if let Some(min) = field.min
            && x < min
        {
            return Some(format!("below the minimum {min}"));
        }
        if let Some(max) = field.max
            && x > max
        {
            return Some(format!("above the maximum {max}"));
        }
    }
    if let Value::Str(s) = v {
        if let Some(n) = field.max_length
            && (s.len() > n && s.chars().count() > n)
        {
            return Some(format!("longer than {n} characters"));
        }
        if let Some(cats) = &field.categories
            && !cats.iter().any(|c| c == s)
        {
            return Some("not one of the declared categories".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", FieldType::String).required(),
            Field::new("amount", FieldType::Float).range(Some(0.0), Some(100.0)),
            Field::new("kind", FieldType::String).categories(["a", "b"]),
            Field::new("n", FieldType::Int),
        ])
    }

    fn rec(values: Row) -> DecodedRecord {
        DecodedRecord {
            values,
            problem: None,
        }
    }

    #[test]
    fn valid_record_is_typed() {
        let row = validate(
            &schema(),
            rec(vec![
                Value::Str("x".into()),
                Value::Int(5),
                Value::Str("a".into()),
                Value::Str("7".into()),
            ]),
        )
        .unwrap();
        assert_eq!(row[1], Value::Float(5.0));
        assert_eq!(row[3], Value::Int(7));
    }

    #[test]
    fn each_rule_names_the_field() {
        let cases = [
            (
                vec![Value::Null, Value::Null, Value::Null, Value::Null],
                "id",
                "required",
            ),
            (
                vec![
                    Value::Str("x".into()),
                    Value::Float(101.0),
                    Value::Null,
                    Value::Null,
                ],
                "amount",
                "maximum",
            ),
            (
                vec![
                    Value::Str("x".into()),
                    Value::Float(-1.0),
                    Value::Null,
                    Value::Null,
                ],
                "amount",
                "minimum",
            ),
            (
                vec![
                    Value::Str("x".into()),
                    Value::Null,
                    Value::Str("zz".into()),
                    Value::Null,
                ],
                "kind",
                "categories",
            ),
            (
                vec![
                    Value::Str("x".into()),
                    Value::Null,
                    Value::Null,
                    Value::Bool(true),
                ],
                "n",
                "expected int",
            ),
        ];
        for (values, field, reason) in cases {
            let (inv, raw) = validate(&schema(), rec(values.clone())).unwrap_err();
            assert_eq!(inv.field.as_deref(), Some(field));
            assert!(inv.reason.contains(reason), "{}", inv.reason);
            assert_eq!(raw.len(), values.len());
        }
    }
}
