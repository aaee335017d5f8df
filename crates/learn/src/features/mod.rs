//! The feature pipeline: raw records to dense vectors, identical in training and serving.
//!
//! A [`FeaturePipeline`] is built from a resolved model spec and the stream schema. It
//! reads records by field name through the [`Record`] trait (lake rows as
//! [`SchemaRow`], maps of [`Value`](freshet_core::Value), JSON objects) and writes one
//! `f64` column per output, named by [`FeaturePipeline::output_names`]:
//!
//! | kind | columns | missing value |
//! |---|---|---|
//! | `numeric` | `f` standardised with the running mean and population std (1 while it is 0); `indicator` adds `f__missing` | `mean`: 0; `zero`: the raw 0 standardised; `indicator`: 0 and `f__missing` = 1 |
//! | `categorical`, onehot | `f=<category>` for each of `max_categories` slots, then `f=__unseen__` | all 0 |
//! | `categorical`, hash | `f__hash0` … `f__hash<buckets−1>`, FNV-1a of the text | all 0 |
//! | `time` | `f__hour_sin`, `f__hour_cos` (timestamps only), `f__dow_sin`, `f__dow_cos`, `f__weekend`, in UTC | all 0 |
//! | `bool` | `f`: 1 true, 0 false | 0.5 |
//!
//! The width never changes: a one-hot slot not yet given a category is named
//! `f=__slotN__` until [`learn_one`](FeaturePipeline::learn_one) assigns it, after
//! which its name stays. Declared `categories` of a string field fill the first slots.
//!
//! [`transform`](FeaturePipeline::transform) never mutates (shadow traffic must not
//! change a model) and never fails: a value of the wrong type counts as missing.
//! [`try_transform`](FeaturePipeline::try_transform) reports it instead, naming the
//! field and never the value (fields may hold PII).

pub(crate) mod encode;
mod record;
#[cfg(test)]
mod tests;
pub mod trend;

pub use encode::{Encoder, UNSEEN, fnv1a};
pub use record::{FieldValue, Record, SchemaRow};

use freshet_core::model_spec::{ResolvedFeature, ResolvedModelSpec};
use freshet_core::{FieldType, Schema};
use serde::{Deserialize, Serialize};

/// A feature problem, naming the field, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// The spec names a field the schema does not have.
    #[error("feature field '{field}' is not in the schema")]
    NotInSchema { field: String },
    /// The schema gives the field another type than the spec was resolved with.
    #[error("feature field '{field}' is {found} in the schema, the spec expects {expected}")]
    SchemaTypeChanged {
        field: String,
        expected: FieldType,
        found: FieldType,
    },
    /// A record holds a value of a kind the feature cannot read.
    #[error("field '{field}': expected {expected}, got {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
}

/// One feature: the field it reads, that field's type, and its encoder state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub field: String,
    pub field_type: FieldType,
    pub encoder: Encoder,
}

/// Records to dense vectors; see the [module documentation](self) for the columns.
///
/// ```rust
/// use freshet_core::model_spec::{FeatureKind, MissingPolicy, ResolvedFeature};
/// use freshet_core::{Field, FieldType, Schema};
/// use freshet_learn::features::FeaturePipeline;
///
/// let schema = Schema::new(vec![Field::new("amount", FieldType::Float)]);
/// let features = [ResolvedFeature {
///     field: "amount".into(),
///     field_type: FieldType::Float,
///     kind: FeatureKind::Numeric { missing: MissingPolicy::Indicator },
/// }];
/// let mut pipeline = FeaturePipeline::new(&features, &schema).unwrap();
/// for amount in [10.0, 30.0] {
///     pipeline.learn_one(&serde_json::json!({ "amount": amount }));
/// }
/// assert_eq!(pipeline.output_names(), ["amount", "amount__missing"]);
/// // mean 20, population std 10
/// assert_eq!(pipeline.transform(&serde_json::json!({ "amount": 40.0 })), [2.0, 0.0]);
/// assert_eq!(pipeline.transform(&serde_json::json!({})), [0.0, 1.0]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturePipeline {
    features: Vec<Feature>,
}

impl FeaturePipeline {
    /// A pipeline for these features, checked against the schema they read from.
    ///
    /// # Errors
    /// [`FeatureError::NotInSchema`] or [`FeatureError::SchemaTypeChanged`] when the
    /// schema does not match the features.
    pub fn new(features: &[ResolvedFeature], schema: &Schema) -> Result<Self, FeatureError> {
        let mut out = Vec::with_capacity(features.len());
        for f in features {
            let field = schema
                .field(&f.field)
                .ok_or_else(|| FeatureError::NotInSchema {
                    field: f.field.clone(),
                })?;
            if field.ty != f.field_type {
                return Err(FeatureError::SchemaTypeChanged {
                    field: f.field.clone(),
                    expected: f.field_type,
                    found: field.ty,
                });
            }
            out.push(Feature {
                field: f.field.clone(),
                field_type: f.field_type,
                encoder: encode::initial(&f.kind, f.field_type, field.categories.as_deref()),
            });
        }
        Ok(Self { features: out })
    }

    /// The pipeline of a resolved model spec.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_spec(spec: &ResolvedModelSpec, schema: &Schema) -> Result<Self, FeatureError> {
        Self::new(&spec.features, schema)
    }

    /// The features, in column order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// Number of output columns; constant for the pipeline's life.
    pub fn width(&self) -> usize {
        self.features.iter().map(|f| f.encoder.width()).sum()
    }

    /// One name per output column, in order.
    pub fn output_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.width());
        for f in &self.features {
            f.encoder.names(&f.field, &mut out);
        }
        out
    }

    /// Update the running statistics and vocabularies with one record.
    pub fn learn_one<R: Record + ?Sized>(&mut self, record: &R) {
        for f in &mut self.features {
            f.encoder.learn(record.field(&f.field));
        }
    }

    /// The feature vector of a record; values of the wrong type count as missing.
    pub fn transform<R: Record + ?Sized>(&self, record: &R) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.width());
        self.transform_into(record, &mut out);
        out
    }

    /// As [`transform`](Self::transform), into a reused buffer (cleared first).
    pub fn transform_into<R: Record + ?Sized>(&self, record: &R, out: &mut Vec<f64>) {
        out.clear();
        for f in &self.features {
            let v = record.field(&f.field);
            if f.encoder.encode(f.field_type, v, out).is_err() {
                // Encoders push nothing before they fail, so the value is encoded
                // as missing in its place.
                let _ = f.encoder.encode(f.field_type, FieldValue::Missing, out);
            }
        }
    }

    /// The feature vector of a record, failing on the first value of the wrong type.
    ///
    /// # Errors
    /// [`FeatureError::WrongType`] naming the field.
    pub fn try_transform<R: Record + ?Sized>(&self, record: &R) -> Result<Vec<f64>, FeatureError> {
        let mut out = Vec::with_capacity(self.width());
        for f in &self.features {
            let v = record.field(&f.field);
            f.encoder
                .encode(f.field_type, v, &mut out)
                .map_err(|expected| encode::wrong_type(&f.field, expected, v))?;
        }
        Ok(out)
    }
}
