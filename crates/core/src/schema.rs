//! The schema of a stream: its fields, their types and the checks the validator applies.

use crate::value::FieldType;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the `pii` processor does with a tagged field before anything is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PiiAction {
    /// Remove the field entirely.
    Drop,
    /// Replace the value with the fixed marker `[REDACTED]`.
    Redact,
    /// Replace the value with its keyed HMAC-SHA256 (hex); the key version is recorded
    /// in the `_pii_key_version` column.
    Hash,
}

/// One declared field of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Column name: letters, digits and `_`, not starting with `_` (reserved for system columns).
    pub name: String,
    /// Column type; see the coercion table in `docs/configuration.md`.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// A record without this field (or with `null`) is rejected.
    #[serde(default)]
    pub required: bool,
    /// Inclusive lower bound, for `int` and `float` fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Inclusive upper bound, for `int` and `float` fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The allowed values of a `string` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Maximum length in characters of a `string` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// PII policy for the field, applied before the record is stored anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii: Option<PiiAction>,
}

impl Field {
    pub fn new(name: impl Into<String>, ty: FieldType) -> Self {
        Self {
            name: name.into(),
            ty,
            required: false,
            min: None,
            max: None,
            categories: None,
            max_length: None,
            pii: None,
        }
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn range(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.min = min;
        self.max = max;
        self
    }
    pub fn categories<S: Into<String>>(mut self, c: impl IntoIterator<Item = S>) -> Self {
        self.categories = Some(c.into_iter().map(Into::into).collect());
        self
    }
    pub fn pii(mut self, action: PiiAction) -> Self {
        self.pii = Some(action);
        self
    }
}

/// What to do with a field a record carries but the schema does not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownFields {
    /// Reject the record to the dead-letter table (the default: nothing is lost silently).
    #[default]
    Reject,
    /// Ignore undeclared fields.
    Ignore,
}

/// An ordered set of fields with a name index.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    fields: Vec<Field>,
    index: HashMap<String, usize>,
    pub unknown_fields: UnknownFields,
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Self {
        let index = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        Self {
            fields,
            index,
            unknown_fields: UnknownFields::default(),
        }
    }
    pub fn with_unknown_fields(mut self, u: UnknownFields) -> Self {
        self.unknown_fields = u;
        self
    }
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }
    pub fn len(&self) -> usize {
        self.fields.len()
    }
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.index_of(name).map(|i| &self.fields[i])
    }
}

/// Whether `name` is a valid user column name.
pub fn is_valid_field_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}
