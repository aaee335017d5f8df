//! The live error stream: feedback labels joined, as they arrive, to the champion's
//! captured predictions, fed one by one (0 = right, 1 = wrong) to a concept-drift
//! detector. Both tables are read incrementally from the versions already seen, so a
//! poll costs what arrived since the last one. The captured predictions are read by the
//! loop once per tick and shared with the drift watch ([`absorb_predictions`]).
//!
//! [`absorb_predictions`]: ErrorStream::absorb_predictions

use crate::captured::{Captured, cell, int_cell};
use crate::error::Result;
use freshet_core::Value;
use freshet_lake::arrow::record_batch::RecordBatch;
use freshet_lake::{Lake, Table, batch_rows};
use freshet_serve::feedback::labels_schema;
use std::collections::{HashMap, VecDeque};

/// A detector over a stream of values (here 0/1 errors).
pub trait Detector: Send {
    /// Account for one value; `true` when a drift is detected at it.
    fn update(&mut self, x: f64) -> bool;
}

impl Detector for freshet_monitor::Detector {
    fn update(&mut self, x: f64) -> bool {
        freshet_monitor::DriftDetector::update(self, x) == freshet_monitor::DetectorState::Drift
    }
}

/// The detector a trigger names, with River's defaults (`none` gives no detector).
pub fn detector(name: &str) -> Option<Box<dyn Detector>> {
    freshet_monitor::DetectorConfig::default_for(name)
        .and_then(|c| c.build().ok())
        .map(|d| Box::new(d) as Box<dyn Detector>)
}

/// Predictions kept waiting for their labels.
const MAX_WAITING: usize = 200_000;
/// Labels kept waiting for their prediction's capture commit.
const MAX_EARLY_LABELS: usize = 200_000;
/// Recent labelled predictions the accuracy is computed on.
const ACCURACY_WINDOW: usize = 500;

struct Pred {
    /// The version that answered.
    version: i64,
    prediction: String,
    /// The other ways a label may name this prediction, to forget them with it.
    client: Option<(String, i64)>,
    key: Option<String>,
}

/// A label as read from `labels/<model>`.
struct LabelIn {
    at: i64,
    request: Option<String>,
    client: Option<String>,
    key: Option<String>,
    row: i64,
    label: String,
}

/// What one poll found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorUpdate {
    pub labelled: u64,
    /// Drift detected at one of the new labels.
    pub drift: bool,
    /// Accuracy over the most recent labelled champion predictions.
    pub accuracy: Option<f64>,
}

/// One model's error stream.
pub struct ErrorStream {
    model: String,
    detector: Option<Box<dyn Detector>>,
    labels_seen: Option<i64>,
    by_request: HashMap<(String, i64), Pred>,
    client_to_request: HashMap<(String, i64), String>,
    key_to_request: HashMap<String, (String, i64)>,
    order: VecDeque<(String, i64)>,
    early: Vec<LabelIn>,
    recent: VecDeque<bool>,
    /// Every champion prediction labelled so far.
    pub total_labelled: u64,
    /// The champion graded now, and its predictions labelled so far.
    champion: Option<i64>,
    pub champion_labelled: u64,
    /// The labels table, opened once (a poll runs every second).
    labels_table: Option<Table>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

fn same(pred: &str, label: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(pred),
        serde_json::from_str::<serde_json::Value>(label),
    ) {
        (Ok(p), Ok(l)) => freshet_serve::feedback::same(&p, &l),
        _ => false,
    }
}

impl ErrorStream {
    pub fn new(model: &str, detector_name: &str) -> Self {
        Self {
            model: model.to_string(),
            detector: detector(detector_name),
            labels_seen: None,
            by_request: HashMap::new(),
            client_to_request: HashMap::new(),
            key_to_request: HashMap::new(),
            order: VecDeque::new(),
            early: Vec::new(),
            recent: VecDeque::new(),
            total_labelled: 0,
            champion: None,
            champion_labelled: 0,
            labels_table: None,
        }
    }

    fn forget(&mut self, p: &Pred) {
        if let Some(c) = &p.client {
            self.client_to_request.remove(c);
        }
        if let Some(k) = &p.key {
            self.key_to_request.remove(k);
        }
    }

    /// Whether anything reads this stream (a detector or an accuracy floor).
    pub fn wanted(detector_name: &str, min_accuracy: f64) -> bool {
        detector_name != "none" || min_accuracy > 0.0
    }

    /// Grade `champion` from now on: labels of another version's predictions are
    /// joined (and forgotten) but count neither for its accuracy nor its detector.
    pub fn follow(&mut self, champion: Option<i64>) {
        if self.champion != champion {
            self.champion = champion;
            self.champion_labelled = 0;
            self.recent.clear();
        }
    }

    /// Forget the detector's history (after a retraining, the new champion starts
    /// a new error stream).
    pub fn reset_detector(&mut self, detector_name: &str) {
        self.detector = detector(detector_name);
        self.recent.clear();
    }

    /// Hold the champion's predictions among newly captured rows (`inference/<model>`,
    /// read by the caller) until their labels arrive.
    pub fn absorb_predictions(&mut self, batches: &[RecordBatch]) -> Result<()> {
        for b in batches {
            let Some(c) = Captured::of(b) else {
                continue;
            };
            for i in 0..b.num_rows() {
                // Only the champion's answers grade the model in production.
                if !c.answered_by(i, None, "champion") {
                    continue;
                }
                let (Some(request), Some(row), Some(version)) = (
                    cell(&c.request_id, i),
                    int_cell(&c.row, i),
                    int_cell(&c.version, i),
                ) else {
                    continue;
                };
                let client = cell(&c.client_request_id, i).map(|id| (id, row));
                if let Some(id) = &client {
                    self.client_to_request.insert(id.clone(), request.clone());
                }
                let key = cell(&c.routing_key, i);
                if let Some(k) = &key {
                    self.key_to_request
                        .insert(k.clone(), (request.clone(), row));
                }
                self.by_request.insert(
                    (request.clone(), row),
                    Pred {
                        version,
                        prediction: cell(&c.prediction, i).unwrap_or_else(|| "null".into()),
                        client,
                        key,
                    },
                );
                self.order.push_back((request, row));
            }
        }
        while self.order.len() > MAX_WAITING {
            if let Some(k) = self.order.pop_front()
                && let Some(p) = self.by_request.remove(&k)
            {
                self.forget(&p);
            }
        }
        Ok(())
    }

    /// Read the labels that arrived, join them to the held predictions and feed the
    /// detector.
    pub async fn poll_labels(&mut self, lake: &Lake) -> Result<ErrorUpdate> {
        let lab_schema = labels_schema();
        if self.labels_table.is_none() {
            let open = freshet_serve::feedback::open_table;
            self.labels_table =
                Some(open(lake, &format!("labels/{}", self.model), &lab_schema).await?);
        }
        let Some(labels) = &self.labels_table else {
            return Ok(ErrorUpdate::default());
        };
        let (batches, upto) = labels.read_since(self.labels_seen, None).await?;
        self.labels_seen = Some(upto);
        let mut new: Vec<LabelIn> = Vec::new();
        for b in batches {
            for r in batch_rows(&b, &lab_schema)? {
                new.push(LabelIn {
                    at: match r[5] {
                        Value::Timestamp(t) => t,
                        _ => 0,
                    },
                    request: text(&r[0]),
                    client: text(&r[1]),
                    key: text(&r[2]),
                    row: int(&r[3]),
                    label: text(&r[4]).unwrap_or_default(),
                });
            }
        }
        new.sort_by_key(|l| l.at);
        let early = std::mem::take(&mut self.early);
        let mut update = ErrorUpdate::default();
        for l in early.into_iter().chain(new) {
            let LabelIn {
                request,
                client,
                key,
                row,
                ..
            } = &l;
            let row = *row;
            let target = match (&request, &client, &key) {
                (Some(r), _, _) => Some((r.clone(), row)),
                (None, Some(c), _) => self
                    .client_to_request
                    .get(&(c.clone(), row))
                    .map(|r| (r.clone(), row)),
                (None, None, Some(k)) => self.key_to_request.get(k).cloned(),
                _ => None,
            };
            let Some(pred) = target.as_ref().and_then(|t| self.by_request.remove(t)) else {
                // The capture may not have committed the prediction yet.
                if self.early.len() < MAX_EARLY_LABELS {
                    self.early.push(l);
                }
                continue;
            };
            self.forget(&pred);
            if self.champion.is_some_and(|c| c != pred.version) {
                // An earlier champion's answer: it grades nobody serving now.
                continue;
            }
            let right = same(&pred.prediction, &l.label);
            update.labelled += 1;
            self.total_labelled += 1;
            self.champion_labelled += 1;
            self.recent.push_back(right);
            if self.recent.len() > ACCURACY_WINDOW {
                self.recent.pop_front();
            }
            if let Some(d) = self.detector.as_mut()
                && d.update(if right { 0.0 } else { 1.0 })
            {
                update.drift = true;
            }
        }
        if !self.recent.is_empty() {
            let right = self.recent.iter().filter(|r| **r).count();
            update.accuracy = Some(right as f64 / self.recent.len() as f64);
        }
        Ok(update)
    }
}
