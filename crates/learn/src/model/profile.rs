//! The reference profile: what the training data and the model's answers on it looked
//! like, so that drift monitoring can compare live traffic against it.
//!
//! Per feature field (raw values, before encoding):
//! - `numeric`: count, missing, min, max, mean (exact), deciles and a 10-bin histogram
//!   between min and max (from a uniform reservoir sample of 10 000 values, seeded, so
//!   the same rows give the same profile), and a uniform sample of up to 2 000 of the
//!   values themselves, which drift tests compare live traffic with;
//! - `categorical` and `bool`: the 20 most frequent values with their counts, the rest
//!   as `other` (distinct values are tracked up to 10 000; later new ones go to `other`);
//! - `time`: the hour of day (`h00`…`h23`, timestamps) or weekday (`mon`…`sun`, dates)
//!   as categories.
//!
//! The label gets the categorical (classification) or numeric (regression) profile, and
//! the predictions: the predicted class counts plus a 10-bin histogram over [0, 1] and a
//! sample of the probability of class 1 (binary) or of the predicted class (multiclass),
//! or a numeric profile of the predicted values (regression).
//!
//! [`observe_field`] is the one mapping from a raw field value to what the profile
//! counts, so that live traffic is read exactly as the training rows were.

use super::{Model, Output};
use crate::features::encode::{category, hour_and_weekday, numeric};
use crate::features::{FieldValue, Record};
use crate::metrics::RunningMoments;
use freshet_core::FieldType;
use freshet_core::model_spec::FeatureKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Version of the `reference_profile.json` layout.
pub const PROFILE_FORMAT_VERSION: u32 = 2;
/// The oldest layout still read (version 1 had no value samples).
pub const PROFILE_OLDEST_READABLE: u32 = 1;
const RESERVOIR: usize = 10_000;
/// Values kept in a numeric profile's `sample`: above Evidently's 1 000-row line
/// between tests and distances, so the method picked on the sample is the one picked
/// on the whole training set.
pub const SAMPLE: usize = 2_000;
const BINS: usize = 10;
const TOP_K: usize = 20;
const MAX_TRACKED: usize = 10_000;
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The profile of a model's training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceProfile {
    pub format_version: u32,
    /// Rows observed.
    pub rows: u64,
    /// One per feature, in the spec's order.
    pub features: Vec<FieldProfile>,
    /// The label column.
    pub label: Distribution,
    /// The model's predictions on the rows.
    pub predictions: PredictionProfile,
}

/// The profile of one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldProfile {
    pub field: String,
    pub distribution: Distribution,
}

/// A numeric or a categorical distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Distribution {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

/// A numeric column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericProfile {
    /// Finite values seen.
    pub count: u64,
    /// Missing, non-finite or unreadable values.
    pub missing: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// Values at levels 0, 0.1, …, 1 (linear interpolation); empty without values.
    pub deciles: Vec<f64>,
    pub histogram: Histogram,
    /// A uniform sample of the values (all of them up to [`SAMPLE`]), ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<f64>,
}

/// Fixed bins: `edges` has one more entry than `fractions`; bin `i` is
/// `[edges[i], edges[i+1])`, the last one closed. Fractions sum to 1 (or are empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub fractions: Vec<f64>,
}

/// A categorical column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalProfile {
    /// Values seen (missing excluded).
    pub count: u64,
    pub missing: u64,
    /// The most frequent values, most frequent first (ties by value).
    pub top: Vec<(String, u64)>,
    /// Every other value.
    pub other: u64,
}

/// The model's answers on the profiled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PredictionProfile {
    Classification {
        /// Predicted (arg-max) class counts, indexed like the model's classes.
        class_counts: Vec<u64>,
        /// Probability of class 1 (binary) or of the predicted class (multiclass).
        probability: Histogram,
        /// A uniform sample of that probability (up to [`SAMPLE`] values), ascending.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        score_sample: Vec<f64>,
        /// Rows the model could not predict yet (before any learning).
        unpredicted: u64,
    },
    Regression(NumericProfile),
}

/// Builds a [`ReferenceProfile`] from rows seen one at a time.
#[derive(Debug, Clone)]
pub struct ProfileBuilder {
    rows: u64,
    features: Vec<(String, FieldType, Collector)>,
    label: (String, FieldType, Collector),
    predictions: PredictionCollector,
}

#[derive(Debug, Clone)]
enum Collector {
    Numeric(NumericCollector),
    Categorical(CategoricalCollector),
    Time(CategoricalCollector),
}

impl ProfileBuilder {
    /// A builder for `model`'s features, label and predictions.
    pub fn new(model: &Model) -> Self {
        let spec = model.spec();
        let features = spec
            .features
            .iter()
            .map(|f| {
                let c = match f.kind {
                    FeatureKind::Numeric { .. } => Collector::Numeric(NumericCollector::new()),
                    FeatureKind::Time => Collector::Time(CategoricalCollector::default()),
                    _ => Collector::Categorical(CategoricalCollector::default()),
                };
                (f.field.clone(), f.field_type, c)
            })
            .collect();
        let label = if spec.task.is_classification() {
            Collector::Categorical(CategoricalCollector::default())
        } else {
            Collector::Numeric(NumericCollector::new())
        };
        let predictions = if spec.task.is_classification() {
            PredictionCollector::Classes {
                counts: vec![0; model.classes().len()],
                binary: spec.task == freshet_core::Task::Binary,
                probability: [0; BINS],
                score: Box::new(NumericCollector::new()),
                unpredicted: 0,
            }
        } else {
            PredictionCollector::Values(NumericCollector::new())
        };
        Self {
            rows: 0,
            features,
            label: (spec.label.clone(), spec.label_type, label),
            predictions,
        }
    }

    /// Observe one row (with its label field) and the model's answer on it.
    pub fn observe<R: Record + ?Sized>(&mut self, model: &Model, record: &R) {
        self.observe_answer(record, model.predict_output(record));
    }

    /// [`observe`](Self::observe) with the model's answer already at hand (a caller
    /// that scores the same rows predicts them once).
    pub fn observe_answer<R: Record + ?Sized>(
        &mut self,
        record: &R,
        answer: Result<Output, super::ModelError>,
    ) {
        self.rows += 1;
        for (field, ty, c) in &mut self.features {
            c.add(*ty, record.field(field));
        }
        let (field, ty, c) = &mut self.label;
        c.add(*ty, record.field(field));
        self.predictions.add(answer);
    }

    pub fn finish(self) -> ReferenceProfile {
        ReferenceProfile {
            format_version: PROFILE_FORMAT_VERSION,
            rows: self.rows,
            features: self
                .features
                .into_iter()
                .map(|(field, _, c)| FieldProfile {
                    field,
                    distribution: c.finish(),
                })
                .collect(),
            label: self.label.2.finish(),
            predictions: self.predictions.finish(),
        }
    }
}

/// The score a classifier's answer is profiled (and monitored) by: the probability
/// of class 1 (binary) or of the predicted class (multiclass), in [0, 1]; `None`
/// without probabilities.
pub fn prediction_score(binary: bool, proba: &[f64]) -> Option<f64> {
    let k = crate::argmax(proba)?;
    let shown = if binary { proba.get(1) } else { proba.get(k) };
    Some(shown.copied().unwrap_or(0.0).clamp(0.0, 1.0))
}

/// What a profile counts of one raw field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// A numeric field: the value, `None` when missing or unreadable.
    Numeric(Option<f64>),
    /// A categorical, bool or time field: the category, `None` when missing.
    Category(Option<String>),
}

/// How a profile reads a feature of `kind` and type `ty`: numerics as numbers, time
/// fields as their hour (`h00`…`h23`) or weekday (`mon`…`sun`), anything else as its
/// category text.
pub fn observe_field(kind: &FeatureKind, ty: FieldType, v: FieldValue<'_>) -> Observation {
    match kind {
        FeatureKind::Numeric { .. } => Observation::Numeric(numeric(v).ok().flatten()),
        FeatureKind::Time => Observation::Category(time_key(ty, v)),
        _ => Observation::Category(category(v).ok().flatten().map(|c| c.into_owned())),
    }
}

fn time_key(ty: FieldType, v: FieldValue<'_>) -> Option<String> {
    let (hour, dow) = hour_and_weekday(ty, v).ok().flatten()?;
    if ty == FieldType::Date {
        WEEKDAYS.get(dow as usize).map(|d| d.to_string())
    } else {
        Some(format!("h{:02}", hour.floor() as u32))
    }
}

impl Collector {
    fn add(&mut self, ty: FieldType, v: FieldValue<'_>) {
        match self {
            Collector::Numeric(n) => n.add(numeric(v).ok().flatten()),
            Collector::Categorical(c) => c.add(category(v).ok().flatten().as_deref()),
            Collector::Time(c) => c.add(time_key(ty, v).as_deref()),
        }
    }

    fn finish(self) -> Distribution {
        match self {
            Collector::Numeric(n) => Distribution::Numeric(n.finish()),
            Collector::Categorical(c) | Collector::Time(c) => Distribution::Categorical(c.finish()),
        }
    }
}

#[derive(Debug, Clone)]
struct NumericCollector {
    moments: RunningMoments,
    min: f64,
    max: f64,
    missing: u64,
    sample: Vec<f64>,
    /// Boxed: the generator's state is large and most columns are not numeric.
    rng: Box<ChaCha8Rng>,
}

impl NumericCollector {
    fn new() -> Self {
        Self {
            moments: RunningMoments::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            missing: 0,
            sample: Vec::new(),
            rng: Box::new(ChaCha8Rng::seed_from_u64(0)),
        }
    }

    fn add(&mut self, x: Option<f64>) {
        let Some(x) = x.filter(|x| x.is_finite()) else {
            self.missing += 1;
            return;
        };
        self.moments.update(x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        // Reservoir sampling (Algorithm R): every value has the same chance to be kept.
        if self.sample.len() < RESERVOIR {
            self.sample.push(x);
        } else {
            let j = self.rng.random_range(0..self.moments.count());
            if let Some(slot) = usize::try_from(j).ok().and_then(|j| self.sample.get_mut(j)) {
                *slot = x;
            }
        }
    }

    fn finish(mut self) -> NumericProfile {
        let count = self.moments.count();
        if count == 0 {
            return NumericProfile {
                count,
                missing: self.missing,
                min: None,
                max: None,
                mean: None,
                deciles: Vec::new(),
                histogram: Histogram {
                    edges: Vec::new(),
                    fractions: Vec::new(),
                },
                sample: Vec::new(),
            };
        }
        let mut kept: Vec<f64> = if self.sample.len() <= SAMPLE {
            self.sample.clone()
        } else {
            rand::seq::index::sample(&mut *self.rng, self.sample.len(), SAMPLE)
                .into_iter()
                .filter_map(|i| self.sample.get(i).copied())
                .collect()
        };
        kept.sort_by(f64::total_cmp);
        self.sample.sort_by(f64::total_cmp);
        let deciles = (0..=10)
            .map(|i| quantile(&self.sample, f64::from(i) / 10.0))
            .collect();
        NumericProfile {
            count,
            missing: self.missing,
            min: Some(self.min),
            max: Some(self.max),
            mean: Some(self.moments.mean()),
            deciles,
            histogram: histogram(&self.sample, self.min, self.max),
            sample: kept,
        }
    }
}

/// Linear interpolation between the closest ranks of a sorted, non-empty sample.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len().saturating_sub(1)) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    match (sorted.get(lo), sorted.get(hi)) {
        (Some(a), Some(b)) => a + (b - a) * (pos - lo as f64),
        _ => f64::NAN,
    }
}

/// `BINS` equal bins between `min` and `max`; one bin when they are equal.
fn histogram(values: &[f64], min: f64, max: f64) -> Histogram {
    let bins = if max > min { BINS } else { 1 };
    let width = (max - min) / bins as f64;
    let edges: Vec<f64> = (0..=bins)
        .map(|i| {
            if i == bins {
                max
            } else {
                min + width * i as f64
            }
        })
        .collect();
    let mut counts = vec![0u64; bins];
    for &x in values {
        let i = if width > 0.0 {
            (((x - min) / width) as usize).min(bins - 1)
        } else {
            0
        };
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    Histogram {
        edges,
        fractions: fractions(&counts),
    }
}

fn fractions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default)]
struct CategoricalCollector {
    counts: HashMap<String, u64>,
    count: u64,
    missing: u64,
    untracked: u64,
}

impl CategoricalCollector {
    fn add(&mut self, key: Option<&str>) {
        let Some(key) = key else {
            self.missing += 1;
            return;
        };
        self.count += 1;
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
        } else if self.counts.len() < MAX_TRACKED {
            self.counts.insert(key.to_owned(), 1);
        } else {
            self.untracked += 1;
        }
    }

    fn finish(self) -> CategoricalProfile {
        let mut all: Vec<(String, u64)> = self.counts.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let rest: u64 = all.iter().skip(TOP_K).map(|(_, c)| c).sum();
        all.truncate(TOP_K);
        CategoricalProfile {
            count: self.count,
            missing: self.missing,
            top: all,
            other: rest + self.untracked,
        }
    }
}

#[derive(Debug, Clone)]
enum PredictionCollector {
    Classes {
        counts: Vec<u64>,
        binary: bool,
        probability: [u64; BINS],
        /// The same probability, sampled.
        score: Box<NumericCollector>,
        unpredicted: u64,
    },
    Values(NumericCollector),
}

impl PredictionCollector {
    fn add(&mut self, out: Result<Output, super::ModelError>) {
        match (self, out) {
            (PredictionCollector::Values(n), Ok(Output::Value(y))) => n.add(Some(y)),
            (PredictionCollector::Values(n), _) => n.add(None),
            (
                PredictionCollector::Classes {
                    counts,
                    binary,
                    probability,
                    score,
                    unpredicted,
                },
                Ok(Output::Proba(p)),
            ) => match crate::argmax(&p) {
                Some(k) => {
                    if k >= counts.len() {
                        counts.resize(k + 1, 0);
                    }
                    if let Some(c) = counts.get_mut(k) {
                        *c += 1;
                    }
                    let shown = prediction_score(*binary, &p).unwrap_or(0.0);
                    score.add(Some(shown));
                    let bin = (shown * BINS as f64) as usize;
                    if let Some(b) = probability.get_mut(bin.min(BINS - 1)) {
                        *b += 1;
                    }
                }
                None => *unpredicted += 1,
            },
            (PredictionCollector::Classes { unpredicted, .. }, _) => *unpredicted += 1,
        }
    }

    fn finish(self) -> PredictionProfile {
        match self {
            PredictionCollector::Values(n) => PredictionProfile::Regression(n.finish()),
            PredictionCollector::Classes {
                counts,
                probability,
                score,
                unpredicted,
                ..
            } => PredictionProfile::Classification {
                class_counts: counts,
                probability: Histogram {
                    edges: (0..=BINS).map(|i| i as f64 / BINS as f64).collect(),
                    fractions: fractions(&probability),
                },
                score_sample: score.finish().sample,
                unpredicted,
            },
        }
    }
}
