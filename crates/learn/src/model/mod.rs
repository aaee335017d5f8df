//! A trained model as one self-describing artifact: spec, feature state, learner state,
//! reference profile.
//!
//! A [`Model`] is built from a [`ResolvedModelSpec`] and the schema of the stream it
//! trains from. An online model learns one record at a time ([`Model::learn_one`], which
//! updates the feature statistics, then the learner, as River's pipelines do); a batch
//! model (gradient-boosted trees, [`Model::is_batch`]) is fitted on a window at once
//! ([`Model::fit_window`], which online models also accept, learning the rows in order).
//! Either predicts without mutating anything ([`Model::predict_proba`],
//! [`Model::predict`]), with predictions returned as the label values the stream carries. A [`ProfileBuilder`] summarises
//! the training rows for drift monitoring.
//!
//! Storage is an MLflow-style model directory (see [`storage`]): `MLmodel`,
//! `model.json` and `reference_profile.json`, written by [`Model::save_dir`] or handed
//! to an artifact store by [`Model::to_files`].

mod labels;
mod learner;
pub mod profile;
pub mod storage;
#[cfg(test)]
mod tests;

pub use labels::{ClassLabel, MAX_CLASSES};
pub use learner::{LearnerState, SelectorMember};
pub use profile::{ProfileBuilder, ReferenceProfile};

use crate::features::{FeatureError, FeaturePipeline, FieldValue, Record};
use freshet_core::{Clock, ResolvedModelSpec, Schema, Task, Value};
use serde::{Deserialize, Serialize};

/// Version of the `model.json` layout; loading any other version is an error.
pub const FORMAT_VERSION: u32 = 1;

/// Why a model could not be built, trained, used, saved or loaded. Never carries a
/// record value.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Feature(#[from] FeatureError),
    #[error("label field '{0}' is not in the schema")]
    LabelNotInSchema(String),
    /// A label that cannot be learnt (missing, wrong type, one class too many).
    #[error("label '{field}': {reason}")]
    Label { field: String, reason: String },
    /// One record offered to a batch learner, which only learns whole windows.
    #[error(
        "learner {learner} is trained in batch on a window (fit_window), not one record at a time"
    )]
    BatchLearner { learner: &'static str },
    /// A batch learner refused its window.
    #[error("learner {learner} could not be fitted: {reason}")]
    Fit {
        learner: &'static str,
        reason: String,
    },
    #[error("learner {learner}: {reason}")]
    LearnerParams {
        learner: &'static str,
        reason: String,
    },
    /// Probabilities asked of a regression model.
    #[error("a regression model has no class probabilities")]
    NotAClassifier,
    /// A classifier that has not learnt any example yet.
    #[error("the model has not learnt anything yet")]
    Untrained,
    #[error("{file}: format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormat {
        file: String,
        found: u32,
        supported: u32,
    },
    #[error("{file} is missing from the model directory")]
    MissingFile { file: String },
    #[error("{file} is corrupt: {reason}")]
    Corrupt { file: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Identity and creation time of a model, injected so tests are deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelStamp {
    /// MLflow's `model_uuid`: 32 lowercase hex digits.
    pub uuid: String,
    /// Microseconds since the Unix epoch, UTC.
    pub created_at_micros: i64,
}

impl ModelStamp {
    /// A random v4 uuid and the clock's time.
    pub fn new(clock: &dyn Clock) -> Self {
        Self {
            uuid: uuid::Uuid::new_v4().simple().to_string(),
            created_at_micros: clock.now_micros(),
        }
    }
}

/// What a model knows about itself besides its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMetadata {
    pub stamp: ModelStamp,
    /// Examples learnt.
    pub training_rows: u64,
    /// Class index → label value (classification; empty for regression).
    pub classes: Vec<ClassLabel>,
}

/// A model's answer for one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Class probabilities, indexed like [`Model::classes`].
    Proba(Vec<f64>),
    /// A regression value.
    Value(f64),
}

/// Spec, feature pipeline, learner, metadata and (optionally) the reference profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    format_version: u32,
    metadata: ModelMetadata,
    spec: ResolvedModelSpec,
    features: FeaturePipeline,
    learner: LearnerState,
    /// Stored apart, in `reference_profile.json`: monitors read it alone.
    #[serde(skip)]
    profile: Option<ReferenceProfile>,
}

impl Model {
    /// An untrained model for the spec, reading records laid out by `schema`.
    ///
    /// # Errors
    /// A feature or the label does not match the schema, or the learner rejects its
    /// parameters.
    pub fn new(
        spec: &ResolvedModelSpec,
        schema: &Schema,
        stamp: ModelStamp,
    ) -> Result<Self, ModelError> {
        let label = schema
            .field(&spec.label)
            .ok_or_else(|| ModelError::LabelNotInSchema(spec.label.clone()))?;
        Ok(Self {
            format_version: FORMAT_VERSION,
            metadata: ModelMetadata {
                stamp,
                training_rows: 0,
                classes: labels::initial_classes(label, spec.task),
            },
            features: FeaturePipeline::from_spec(spec, schema)?,
            learner: LearnerState::new(&spec.learner, spec.task)?,
            spec: spec.clone(),
            profile: None,
        })
    }

    pub fn spec(&self) -> &ResolvedModelSpec {
        &self.spec
    }
    pub fn task(&self) -> Task {
        self.spec.task
    }
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }
    /// Class index → label value; what [`predict_proba`](Self::predict_proba) is indexed by.
    pub fn classes(&self) -> &[ClassLabel] {
        &self.metadata.classes
    }
    pub fn features(&self) -> &FeaturePipeline {
        &self.features
    }
    pub fn learner(&self) -> &LearnerState {
        &self.learner
    }
    pub fn reference_profile(&self) -> Option<&ReferenceProfile> {
        self.profile.as_ref()
    }
    pub fn set_reference_profile(&mut self, profile: ReferenceProfile) {
        self.profile = Some(profile);
    }

    /// Profile `rows` (records with their label field) with this model's predictions,
    /// and keep the profile with the model.
    pub fn build_reference_profile<R: Record>(&mut self, rows: impl IntoIterator<Item = R>) {
        let mut builder = ProfileBuilder::new(self);
        for r in rows {
            builder.observe(self, &r);
        }
        self.profile = Some(builder.finish());
    }

    /// Whether the learner is trained in batch on a window ([`fit_window`](Self::fit_window))
    /// rather than one record at a time.
    pub fn is_batch(&self) -> bool {
        self.learner.is_batch()
    }

    /// Learn one record with its label.
    ///
    /// # Errors
    /// [`ModelError::BatchLearner`] for a batch learner (use
    /// [`fit_window`](Self::fit_window)); [`ModelError::Label`] when the label is
    /// missing, of the wrong type, or a class past the task's limit (a third class of a
    /// binary task). The model is unchanged on an error.
    pub fn learn_one<R: Record + ?Sized>(
        &mut self,
        record: &R,
        label: FieldValue<'_>,
    ) -> Result<(), ModelError> {
        if self.learner.is_batch() {
            return Err(ModelError::BatchLearner {
                learner: self.learner.name(),
            });
        }
        let spec = &self.spec;
        if spec.task.is_classification() {
            let index = labels::class_index(
                &spec.label,
                spec.label_type,
                spec.task,
                &mut self.metadata.classes,
                label,
            )?;
            self.features.learn_one(record);
            let x = self.features.transform(record);
            if let Some(c) = self.learner.classifier_mut() {
                c.learn_one(&x, index);
            }
        } else {
            let y = labels::to_target(&spec.label, label)?;
            self.features.learn_one(record);
            let x = self.features.transform(record);
            if let Some(r) = self.learner.regressor_mut() {
                r.learn_one(&x, y);
            }
        }
        self.metadata.training_rows += 1;
        Ok(())
    }

    /// Train on a window of records carrying their label field, oldest first.
    ///
    /// A batch learner is refitted on the window in three steps, so that every row is
    /// encoded the way serving will encode it: the feature statistics (standardisation,
    /// vocabularies) first learn every labelled row, then every labelled row is
    /// transformed with those frozen statistics, then the booster is fitted on all of
    /// them (log loss for classification, squared error for regression).
    /// `training_rows` becomes the number of rows fitted. Rows whose label is unusable
    /// are skipped, as [`learn_one`](Self::learn_one) refuses them, and teach the
    /// features nothing either, so the statistics describe exactly the rows the trees
    /// saw; their count is `rows.len()` less the rows learnt. Feature statistics and
    /// classes carry over from any earlier training, so a model of this window alone
    /// starts from a fresh [`Model`] (as `freshet train` does).
    ///
    /// An online learner learns the rows in order, as [`learn_record`](Self::learn_record)
    /// one by one (adding to `training_rows`), so callers can treat both alike.
    ///
    /// # Errors
    /// [`ModelError::Label`] when no row has a usable label; [`ModelError::Fit`] when
    /// the booster refuses the window (more classes than it supports). A batch model is
    /// unchanged on an error.
    pub fn fit_window<R: Record>(&mut self, rows: &[R]) -> Result<(), ModelError> {
        if !self.learner.is_batch() {
            return self.learn_window(rows);
        }
        let spec = &self.spec;
        let mut classes = self.metadata.classes.clone();
        let mut labelled = Vec::with_capacity(rows.len());
        let mut ys = Vec::with_capacity(rows.len());
        for r in rows {
            let label = r.field(&spec.label);
            let y = if spec.task.is_classification() {
                labels::class_index(&spec.label, spec.label_type, spec.task, &mut classes, label)
                    .map(|i| i as f64)
            } else {
                labels::to_target(&spec.label, label)
            };
            if let Ok(y) = y {
                labelled.push(r);
                ys.push(y);
            }
        }
        if labelled.is_empty() {
            return Err(self.no_usable_label(rows.len()));
        }
        let mut features = self.features.clone();
        for r in &labelled {
            features.learn_one(*r);
        }
        let xs: Vec<Vec<f64>> = labelled.iter().map(|r| features.transform(*r)).collect();
        if let Some(booster) = self.learner.batch_mut() {
            booster.fit(&xs, &ys)?;
        }
        self.features = features;
        self.metadata.classes = classes;
        self.metadata.training_rows = xs.len() as u64;
        Ok(())
    }

    /// [`fit_window`](Self::fit_window) for an online learner: each row in order.
    fn learn_window<R: Record>(&mut self, rows: &[R]) -> Result<(), ModelError> {
        let mut learnt = 0usize;
        for r in rows {
            match self.learn_record(r) {
                Ok(()) => learnt += 1,
                Err(ModelError::Label { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if learnt == 0 {
            return Err(self.no_usable_label(rows.len()));
        }
        Ok(())
    }

    fn no_usable_label(&self, rows: usize) -> ModelError {
        ModelError::Label {
            field: self.spec.label.clone(),
            reason: format!("none of the {rows} rows has a usable label"),
        }
    }

    /// The class index of a label value: `None` when it is missing, unusable, or a
    /// class the model has never seen (so it cannot be scored).
    pub fn class_index(&self, label: FieldValue<'_>) -> Option<usize> {
        let class = labels::to_class(&self.spec.label, self.spec.label_type, label).ok()?;
        self.metadata.classes.iter().position(|c| *c == class)
    }

    /// A regression target from a label value; `None` when missing or not a number.
    pub fn target(&self, label: FieldValue<'_>) -> Option<f64> {
        labels::to_target(&self.spec.label, label).ok()
    }

    /// Learn a record that carries its own label field.
    ///
    /// # Errors
    /// As [`learn_one`](Self::learn_one).
    pub fn learn_record<R: Record + ?Sized>(&mut self, record: &R) -> Result<(), ModelError> {
        let label = self.spec.label.clone();
        self.learn_one(record, record.field(&label))
    }

    /// Class probabilities, indexed like [`classes`](Self::classes).
    ///
    /// # Errors
    /// [`ModelError::NotAClassifier`] for regression, [`ModelError::Untrained`]
    /// before the first example.
    pub fn predict_proba<R: Record + ?Sized>(&self, record: &R) -> Result<Vec<f64>, ModelError> {
        let c = self
            .learner
            .classifier()
            .ok_or(ModelError::NotAClassifier)?;
        let mut p = c.predict_proba_one(&self.features.transform(record));
        if p.is_empty() || self.metadata.training_rows == 0 {
            return Err(ModelError::Untrained);
        }
        // Learners span the classes they have seen; the model spans every known class.
        p.resize(self.metadata.classes.len().max(p.len()), 0.0);
        p.truncate(self.metadata.classes.len());
        Ok(p)
    }

    /// The prediction as a value of the label's kind: the most probable class's label
    /// (ties: the lowest index) or the regression value as a float.
    ///
    /// # Errors
    /// [`ModelError::Untrained`] for a classifier before the first example.
    pub fn predict<R: Record + ?Sized>(&self, record: &R) -> Result<Value, ModelError> {
        match self.predict_output(record)? {
            Output::Value(y) => Ok(Value::Float(y)),
            Output::Proba(p) => crate::argmax(&p)
                .and_then(|k| self.metadata.classes.get(k))
                .map(ClassLabel::to_value)
                .ok_or(ModelError::Untrained),
        }
    }

    /// Probabilities for a classifier, the value for a regressor.
    ///
    /// # Errors
    /// As [`predict_proba`](Self::predict_proba).
    pub fn predict_output<R: Record + ?Sized>(&self, record: &R) -> Result<Output, ModelError> {
        match self.learner.regressor() {
            Some(r) => Ok(Output::Value(
                r.predict_one(&self.features.transform(record)),
            )),
            None => self.predict_proba(record).map(Output::Proba),
        }
    }
}
