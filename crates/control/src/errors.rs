//! The live error stream: feedback labels joined, as they arrive, to the champion's
//! captured predictions, fed one by one (0 = right, 1 = wrong) to a concept-drift
//! detector. Both tables are read incrementally from the versions already seen, so a
//! poll costs what arrived since the last one. The captured predictions are read by the
//! loop once per tick and shared with the drift watch ([`absorb_predictions`]).
//!
//! [`absorb_predictions`]: ErrorStream::absorb_predictions

use crate::captured::{Captured, int_cell};
use crate::error::Result;
use freshet_core::Value;
use freshet_lake::arrow::array::Array;
use freshet_lake::arrow::record_batch::RecordBatch;
use freshet_lake::{Lake, Table, batch_rows};
use freshet_monitor::{DetectorState, DriftDetector};
use freshet_serve::feedback::labels_schema;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The detector a trigger names, with River's defaults (`none` gives no detector).
fn detector(name: &str) -> Option<freshet_monitor::Detector> {
    freshet_monitor::DetectorConfig::default_for(name).and_then(|c| c.build().ok())
}

/// Predictions kept waiting for their labels.
const MAX_WAITING: usize = 200_000;
/// Labels kept waiting for their prediction's capture commit.
const MAX_EARLY_LABELS: usize = 200_000;
/// How long a label waits for its prediction, by the labels' own arrival times: a
/// capture commits within a second or two, so a label still unmatched after this names
/// an answer that is not held (a challenger's, one forgotten, one never given) and is
/// let go — kept, it would be searched again every poll and, once `MAX_EARLY_LABELS`
/// of them piled up, crowd out labels that are merely early.
const EARLY_LABEL_MICROS: i64 = 120_000_000;
/// Recent labelled predictions the accuracy is computed on.
const ACCURACY_WINDOW: usize = 500;

/// An id as held here: its 64-bit FNV-1a hash. Holding hundreds of thousands of
/// predictions at serving rates, hashes instead of owned strings keep the join cheap;
/// two ids of one model colliding is a one-in-10¹⁰ event at 200,000 held.
type Id = u64;

fn id(text: &str) -> Id {
    freshet_learn::features::fnv1a(text.as_bytes())
}

struct Pred {
    /// The version that answered.
    version: i64,
    /// The answer as JSON, shared between predictions that gave the same one.
    prediction: Arc<str>,
    /// The other ways a label may name this prediction, to forget them with it.
    client: Option<(Id, i64)>,
    key: Option<Id>,
}

/// Distinct answers shared rather than copied per prediction (classes, mostly).
const MAX_INTERNED: usize = 1_024;

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
    /// With a drift: how many of the most recent labelled outcomes the detector puts
    /// after the change (ADWIN's window once it dropped the older part; 0 for
    /// detectors that do not say), counted up to the end of this poll. The loop
    /// moves its drift point back by as many rows, so the new concept's first rows
    /// are not left out of the retraining.
    pub since_change: u64,
    /// Accuracy over the most recent labelled champion predictions.
    pub accuracy: Option<f64>,
    /// Labels let go without a prediction to grade (see `EARLY_LABEL_MICROS`).
    pub unmatched: u64,
}

/// One model's error stream.
pub struct ErrorStream {
    model: String,
    detector: Option<freshet_monitor::Detector>,
    labels_seen: Option<i64>,
    by_request: HashMap<(Id, i64), Pred>,
    client_to_request: HashMap<(Id, i64), Id>,
    key_to_request: HashMap<Id, (Id, i64)>,
    order: VecDeque<(Id, i64)>,
    answers: HashMap<String, Arc<str>>,
    early: Vec<LabelIn>,
    /// The newest arrival time among the labels read.
    newest_label_at: i64,
    recent: VecDeque<bool>,
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
            answers: HashMap::new(),
            early: Vec::new(),
            newest_label_at: i64::MIN,
            recent: VecDeque::new(),
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
                if c.request_id.is_null(i) {
                    continue;
                }
                let (Some(row), Some(version)) = (int_cell(&c.row, i), int_cell(&c.version, i))
                else {
                    continue;
                };
                let request = id(c.request_id.value(i));
                let client = (!c.client_request_id.is_null(i))
                    .then(|| (id(c.client_request_id.value(i)), row));
                if let Some(k) = client {
                    self.client_to_request.insert(k, request);
                }
                let key = (!c.routing_key.is_null(i)).then(|| id(c.routing_key.value(i)));
                if let Some(k) = key {
                    self.key_to_request.insert(k, (request, row));
                }
                let answer = if c.prediction.is_null(i) {
                    "null"
                } else {
                    c.prediction.value(i)
                };
                let prediction = match self.answers.get(answer) {
                    Some(a) => a.clone(),
                    None => {
                        let a: Arc<str> = Arc::from(answer);
                        if self.answers.len() < MAX_INTERNED {
                            self.answers.insert(answer.to_string(), a.clone());
                        }
                        a
                    }
                };
                self.by_request.insert(
                    (request, row),
                    Pred {
                        version,
                        prediction,
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
        if let Some(l) = new.last() {
            // A writer whose clock runs ahead must not age every waiting label at once.
            let now = chrono::Utc::now().timestamp_micros();
            self.newest_label_at = self.newest_label_at.max(l.at.min(now));
        }
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
                (Some(r), _, _) => Some((id(r), row)),
                (None, Some(c), _) => self.client_to_request.get(&(id(c), row)).map(|r| (*r, row)),
                (None, None, Some(k)) => self.key_to_request.get(&id(k)).copied(),
                _ => None,
            };
            let Some(pred) = target.as_ref().and_then(|t| self.by_request.remove(t)) else {
                // The capture may not have committed the prediction yet.
                if self.newest_label_at.saturating_sub(l.at) <= EARLY_LABEL_MICROS
                    && self.early.len() < MAX_EARLY_LABELS
                {
                    self.early.push(l);
                } else {
                    update.unmatched += 1;
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
            self.champion_labelled += 1;
            self.recent.push_back(right);
            if self.recent.len() > ACCURACY_WINDOW {
                self.recent.pop_front();
            }
            if let Some(d) = self.detector.as_mut() {
                // ADWIN finds changes either way; only a rise of the error rate is a
                // drift (a better champion taking over is not). The window's mean
                // before the update covers both sides of the cut, after it only the
                // newer side, so the newer side is worse exactly when the mean rose.
                let before = match d {
                    freshet_monitor::Detector::Adwin(a) => Some(a.estimation()),
                    _ => None,
                };
                if d.update(if right { 0.0 } else { 1.0 }) == DetectorState::Drift {
                    let (rose, since) = match d {
                        freshet_monitor::Detector::Adwin(a) => {
                            (before.is_none_or(|b| a.estimation() > b), a.width())
                        }
                        _ => (true, 0),
                    };
                    if rose {
                        update.drift = true;
                        update.since_change = since;
                    }
                } else if update.drift {
                    update.since_change += 1;
                }
            }
        }
        if !self.recent.is_empty() {
            let right = self.recent.iter().filter(|r| **r).count();
            update.accuracy = Some(right as f64 / self.recent.len() as f64);
        }
        Ok(update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_lake::RowBatchBuilder;
    use freshet_serve::capture::inference_schema;

    /// Captured champion answers of version 1: request `r{i}`, client `c{i}`, routing
    /// key `k{i}`, prediction `true` for even `i`.
    fn captured(n: usize) -> RecordBatch {
        let s = inference_schema();
        let mut b = RowBatchBuilder::new(&s, n);
        for i in 0..n {
            let mut row = vec![Value::Null; s.len()];
            row[0] = Value::Str(format!("r{i}"));
            row[1] = Value::Str(format!("c{i}"));
            row[4] = Value::Int(1);
            row[5] = Value::Str("champion".into());
            row[6] = Value::Str(format!("k{i}"));
            row[7] = Value::Int(0);
            row[9] = Value::Str((i % 2 == 0).to_string());
            for (k, v) in row.iter().enumerate() {
                b.push(k, v);
            }
            b.end_row();
        }
        b.finish().expect("batch")
    }

    type LabelRow<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);

    /// Labels `(request id, client id, key, label)`, row 0 each, in one commit, arriving
    /// at `first_at`, `first_at + 1`, … µs.
    async fn append_labels_at(labels: &Table, first_at: i64, rows: &[LabelRow<'_>]) {
        let s = labels_schema();
        let mut b = RowBatchBuilder::new(&s, rows.len());
        let text = |t: Option<&str>| t.map_or(Value::Null, |t| Value::Str(t.into()));
        for (i, (request, client, key, label)) in rows.iter().enumerate() {
            let row = [
                text(*request),
                text(*client),
                text(*key),
                Value::Int(0),
                Value::Str((*label).into()),
                Value::Timestamp(first_at + i as i64),
                Value::Date(0),
            ];
            for (k, v) in row.iter().enumerate() {
                b.push(k, v);
            }
            b.end_row();
        }
        labels
            .append(b.finish().expect("batch"), &[])
            .await
            .expect("append");
    }

    async fn append_labels(labels: &Table, rows: &[LabelRow<'_>]) {
        append_labels_at(labels, 0, rows).await;
    }

    #[tokio::test]
    async fn labels_join_by_request_client_or_key_and_grade_the_champion_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::new(dir.path().to_str().expect("path")).expect("lake");
        let mut errors = ErrorStream::new("m", "none");
        errors.follow(Some(1));
        errors.absorb_predictions(&[captured(6)]).expect("absorb");
        let labels = freshet_serve::feedback::open_table(&lake, "labels/m", &labels_schema())
            .await
            .expect("labels table");
        // One label per way of naming a prediction, and one for nothing held.
        append_labels(
            &labels,
            &[
                (Some("r0"), None, None, "true"), // right
                (None, Some("c1"), None, "true"), // wrong (r1 said false)
                (None, None, Some("k2"), "true"), // right
                (Some("r9"), None, None, "true"), // no such prediction: waits
            ],
        )
        .await;
        let update = errors.poll_labels(&lake).await.expect("poll");
        assert_eq!(update.labelled, 3);
        assert_eq!(update.accuracy, Some(2.0 / 3.0));
        assert_eq!(errors.champion_labelled, 3);
        // A new champion: an old answer's label is joined but grades nobody.
        errors.follow(Some(2));
        append_labels(&labels, &[(Some("r3"), None, None, "false")]).await;
        let update = errors.poll_labels(&lake).await.expect("poll");
        assert_eq!((update.labelled, errors.champion_labelled), (0, 0));
    }

    #[tokio::test]
    async fn an_early_label_waits_for_its_prediction_but_not_forever() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lake = Lake::new(dir.path().to_str().expect("path")).expect("lake");
        let mut errors = ErrorStream::new("m", "none");
        errors.follow(Some(1));
        let labels = freshet_serve::feedback::open_table(&lake, "labels/m", &labels_schema())
            .await
            .expect("labels table");
        // Labels for r0 and r9 come before any capture commit: both wait.
        append_labels(
            &labels,
            &[
                (Some("r0"), None, None, "true"),
                (Some("r9"), None, None, "true"),
            ],
        )
        .await;
        let update = errors.poll_labels(&lake).await.expect("poll");
        assert_eq!((update.labelled, update.unmatched), (0, 0));
        // r0's prediction is captured: its waiting label grades it.
        errors.absorb_predictions(&[captured(1)]).expect("absorb");
        let update = errors.poll_labels(&lake).await.expect("poll");
        assert_eq!((update.labelled, update.unmatched), (1, 0));
        // Labels keep arriving; once they are two minutes newer than r9's, r9's label
        // (no prediction is held for it) is let go rather than searched for again on
        // every poll.
        append_labels_at(
            &labels,
            EARLY_LABEL_MICROS + 10,
            &[(Some("r5"), None, None, "true")],
        )
        .await;
        let update = errors.poll_labels(&lake).await.expect("poll");
        assert_eq!((update.labelled, update.unmatched), (0, 1));
        assert_eq!(errors.early.len(), 1, "r5's own label still waits");
    }
}
