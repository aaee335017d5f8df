//! Drift of served traffic against a model version's reference profile: a sliding
//! window of the newest served rows, per feature and for the prediction, tested with
//! [`column_drift`] (Evidently's default test per column) and summed up as the dataset
//! drift share.
//!
//! The reference side comes from the profile written at training time:
//! - numeric features: the profile's uniform value sample (up to 2 000 values);
//! - categorical, bool and time features: the top categories with their counts, the
//!   rest as one `(other)` category (scaled down to at most [`MAX_REFERENCE_ROWS`]
//!   rows, so a huge training set costs no more than a large one and keeps its shares);
//! - the prediction: the sampled probability of class 1 (binary) or of the predicted
//!   class (multiclass), or the sampled predicted values (regression).
//!
//! A live category the reference never saw counts as `(other)` when the reference had
//! one (it may be among the values the profile did not list), and as itself otherwise,
//! so a truly new value is drift.

use std::collections::{HashSet, VecDeque};

use freshet_learn::model::ReferenceProfile;
use freshet_learn::model::profile::{Distribution, Observation, PredictionProfile};
use serde::{Deserialize, Serialize};

use crate::drift::{
    ColumnData, ColumnDrift, DEFAULT_DRIFT_SHARE, DatasetDrift, DriftOptions, column_drift,
    dataset_drift,
};

/// Categorical reference rows kept at most.
pub const MAX_REFERENCE_ROWS: u64 = 10_000;
/// The category standing for every value the profile did not list.
pub const OTHER: &str = "(other)";

/// One column's reference values.
#[derive(Debug, Clone, PartialEq)]
enum RefData {
    Numeric(Vec<f64>),
    Categorical {
        values: Vec<String>,
        known: HashSet<String>,
        has_other: bool,
    },
    /// A profile without a sample (format version 1) or an empty column.
    Unavailable(&'static str),
}

/// The reference side of every column, built once per model version.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    features: Vec<(String, RefData)>,
    prediction: RefData,
}

impl Reference {
    /// The reference columns of `profile`, features in the profile's order.
    pub fn from_profile(profile: &ReferenceProfile) -> Self {
        let features = profile
            .features
            .iter()
            .map(|f| (f.field.clone(), ref_data(&f.distribution)))
            .collect();
        let prediction = match &profile.predictions {
            PredictionProfile::Classification { score_sample, .. } => numeric_sample(score_sample),
            PredictionProfile::Regression(n) => numeric_sample(&n.sample),
        };
        Self {
            features,
            prediction,
        }
    }

    /// Leave `feature` out of the tests, saying why (a time feature, whose hours and
    /// weekdays a window of minutes cannot cover, is left out this way).
    pub fn skip(&mut self, feature: &str, why: &'static str) {
        for (name, data) in &mut self.features {
            if name == feature {
                *data = RefData::Unavailable(why);
            }
        }
    }
}

fn numeric_sample(sample: &[f64]) -> RefData {
    if sample.is_empty() {
        RefData::Unavailable("the reference profile holds no value sample")
    } else {
        RefData::Numeric(sample.to_vec())
    }
}

fn ref_data(d: &Distribution) -> RefData {
    match d {
        Distribution::Numeric(n) => numeric_sample(&n.sample),
        Distribution::Categorical(c) => {
            let total = c.count.max(1);
            // Proportional scaling keeps the shares (and so the chi-square expectation,
            // which is rescaled to the current size anyway).
            let scale = if total > MAX_REFERENCE_ROWS {
                MAX_REFERENCE_ROWS as f64 / total as f64
            } else {
                1.0
            };
            let mut values = Vec::new();
            let mut known = HashSet::new();
            for (value, n) in &c.top {
                let k = (*n as f64 * scale).round() as usize;
                values.extend(std::iter::repeat_n(value.clone(), k));
                known.insert(value.clone());
            }
            let other = (c.other as f64 * scale).round() as usize;
            values.extend(std::iter::repeat_n(OTHER.to_string(), other));
            if values.is_empty() {
                RefData::Unavailable("the reference column has no values")
            } else {
                RefData::Categorical {
                    values,
                    known,
                    has_other: c.other > 0,
                }
            }
        }
    }
}

/// The newest served rows: per feature, the observations, and the prediction score.
#[derive(Debug, Clone)]
pub struct ServedWindow {
    capacity: usize,
    features: Vec<VecDeque<Observation>>,
    prediction: VecDeque<f64>,
    /// Rows pushed since the window was created.
    pub rows_seen: u64,
}

impl ServedWindow {
    /// A window of the newest `capacity` rows (at least one) over `features` features.
    pub fn new(features: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            // Grown as rows come: the capacity may be far above what traffic fills.
            features: (0..features).map(|_| VecDeque::new()).collect(),
            prediction: VecDeque::new(),
            rows_seen: 0,
        }
    }

    /// Add one served row: its feature observations in the reference's order (extra
    /// ones are ignored, missing ones count as missing) and its prediction score
    /// (`None` when the model gave none).
    pub fn push(&mut self, features: Vec<Observation>, prediction: Option<f64>) {
        self.rows_seen += 1;
        let mut given = features.into_iter();
        for column in &mut self.features {
            let obs = given.next().unwrap_or(Observation::Numeric(None));
            if column.len() == self.capacity {
                column.pop_front();
            }
            column.push_back(obs);
        }
        if self.prediction.len() == self.capacity {
            self.prediction.pop_front();
        }
        self.prediction.push_back(prediction.unwrap_or(f64::NAN));
    }

    /// Rows in the window now.
    pub fn len(&self) -> usize {
        self.prediction.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prediction.is_empty()
    }
}

/// One column's verdict, or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnReport {
    pub column: String,
    #[serde(flatten)]
    pub drift: Option<ColumnDrift>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Drift of one window of served traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Rows in the window.
    pub window_rows: usize,
    pub features: Vec<ColumnReport>,
    /// Over the features that could be tested.
    pub dataset: DatasetDrift,
    pub prediction: ColumnReport,
}

impl DriftReport {
    /// The features that drifted, in order.
    pub fn drifted_features(&self) -> Vec<&str> {
        self.features
            .iter()
            .filter(|c| c.drift.as_ref().is_some_and(|d| d.drifted))
            .map(|c| c.column.as_str())
            .collect()
    }
}

/// Test the window against the reference; the dataset drifts when the share of drifted
/// features reaches `drift_share` (Evidently's default is
/// [`DEFAULT_DRIFT_SHARE`]).
pub fn served_drift(reference: &Reference, window: &ServedWindow, drift_share: f64) -> DriftReport {
    let features: Vec<ColumnReport> = reference
        .features
        .iter()
        .zip(&window.features)
        .map(|((name, data), obs)| test_features(name, data, obs))
        .collect();
    let tested: Vec<ColumnDrift> = features.iter().filter_map(|c| c.drift.clone()).collect();
    let current: Vec<f64> = window.prediction.iter().copied().collect();
    let prediction = test_numeric("prediction", &reference.prediction, &current);
    DriftReport {
        window_rows: window.len(),
        features,
        dataset: dataset_drift(&tested, drift_share),
        prediction,
    }
}

/// [`served_drift`] with Evidently's default drift share.
pub fn served_drift_default(reference: &Reference, window: &ServedWindow) -> DriftReport {
    served_drift(reference, window, DEFAULT_DRIFT_SHARE)
}

fn report(column: &str, result: crate::Result<ColumnDrift>) -> ColumnReport {
    match result {
        Ok(d) => ColumnReport {
            column: column.to_string(),
            drift: Some(d),
            skipped: None,
        },
        Err(e) => skipped(column, &e.to_string()),
    }
}

fn skipped(column: &str, why: &str) -> ColumnReport {
    ColumnReport {
        column: column.to_string(),
        drift: None,
        skipped: Some(why.to_string()),
    }
}

fn test_numeric(column: &str, data: &RefData, current: &[f64]) -> ColumnReport {
    match data {
        RefData::Numeric(r) => report(
            column,
            column_drift(
                ColumnData::Numeric(r),
                ColumnData::Numeric(current),
                &DriftOptions::default(),
            ),
        ),
        RefData::Categorical { .. } => skipped(column, "a categorical reference"),
        RefData::Unavailable(why) => skipped(column, why),
    }
}

fn test_features(name: &str, data: &RefData, obs: &VecDeque<Observation>) -> ColumnReport {
    match data {
        RefData::Numeric(_) => {
            let current: Vec<f64> = obs
                .iter()
                .map(|o| match o {
                    Observation::Numeric(Some(x)) => *x,
                    _ => f64::NAN,
                })
                .collect();
            test_numeric(name, data, &current)
        }
        RefData::Categorical {
            values,
            known,
            has_other,
        } => {
            let current: Vec<String> = obs
                .iter()
                .filter_map(|o| match o {
                    Observation::Category(Some(c)) => Some(c),
                    _ => None,
                })
                .map(|c| {
                    if *has_other && !known.contains(c) {
                        OTHER.to_string()
                    } else {
                        c.clone()
                    }
                })
                .collect();
            report(
                name,
                column_drift(
                    ColumnData::Categorical(values),
                    ColumnData::Categorical(&current),
                    &DriftOptions::default(),
                ),
            )
        }
        RefData::Unavailable(why) => skipped(name, why),
    }
}

#[cfg(test)]
mod tests;
