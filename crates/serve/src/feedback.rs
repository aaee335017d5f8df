//! Feedback: ground-truth labels that arrive after the prediction, landed in
//! `labels/<model>` and joined to `inference/<model>` for per-version performance.
//!
//! A label names the prediction it grades by Freshet's `request_id` (plus `row` for
//! multi-row requests), by the caller's `client_request_id`, or by the routing `key`
//! the request carried. The answer to a feedback request is sent after the Delta
//! commit, so an acknowledged label is never lost.

use crate::capture::inference_schema;
use crate::error::ServeError;
use freshet_core::{Field, FieldType, Schema, Value};
use freshet_lake::{Lake, RowBatchBuilder, Table, TableOptions, batch_rows};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Labels one request may carry.
pub const MAX_LABELS: usize = 100_000;

/// One label.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub key: Option<String>,
    /// Row within the request (0 for single-row requests).
    pub row: i64,
    /// The true label as JSON text.
    pub label: String,
    pub at_micros: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelIn {
    request_id: Option<String>,
    client_request_id: Option<String>,
    key: Option<String>,
    #[serde(default)]
    row: i64,
    label: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Body {
    Many(Vec<LabelIn>),
    Wrapped { labels: Vec<LabelIn> },
    One(LabelIn),
}

fn bad(msg: String) -> ServeError {
    ServeError::BadRequest(msg)
}

/// A label is a class or a value: past this many bytes (as JSON) it is refused.
pub const MAX_LABEL_BYTES: usize = 4_096;

/// Parse a feedback body: one label object, an array of them, `{"labels": [...]}`, or
/// NDJSON. Problems name the item and the field, never a label value.
pub fn parse_feedback(body: &[u8], now_micros: i64) -> Result<Vec<LabelRow>, ServeError> {
    let items: Vec<LabelIn> = match serde_json::from_slice::<Body>(body) {
        Ok(Body::Many(v)) | Ok(Body::Wrapped { labels: v }) => v,
        Ok(Body::One(one)) => vec![one],
        Err(whole) => {
            // NDJSON: one object per line.
            let mut v = Vec::new();
            for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let item: LabelIn = serde_json::from_slice(line).map_err(|e| {
                    if body.contains(&b'\n') {
                        bad(format!("feedback line {}: {}", i + 1, describe(&e)))
                    } else {
                        bad(format!("feedback body: {}", describe(&whole)))
                    }
                })?;
                v.push(item);
            }
            v
        }
    };
    if items.is_empty() {
        return Err(bad("feedback carries no label".into()));
    }
    if items.len() > MAX_LABELS {
        return Err(ServeError::TooLarge(format!(
            "feedback carries {} labels; at most {MAX_LABELS} per request",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, it)| {
            let ids = [&it.request_id, &it.client_request_id, &it.key]
                .iter()
                .filter(|x| x.as_ref().is_some_and(|s| !s.is_empty()))
                .count();
            if ids != 1 {
                return Err(bad(format!(
                    "label {i}: give exactly one of 'request_id', 'client_request_id' or 'key'"
                )));
            }
            if it.row < 0 {
                return Err(bad(format!("label {i}: 'row' must be 0 or more")));
            }
            for (field, v) in [
                ("request_id", &it.request_id),
                ("client_request_id", &it.client_request_id),
                ("key", &it.key),
            ] {
                if v.as_ref()
                    .is_some_and(|v| v.len() > crate::formats::MAX_ID_BYTES)
                {
                    return Err(bad(format!(
                        "label {i}: '{field}' is longer than {} bytes",
                        crate::formats::MAX_ID_BYTES
                    )));
                }
            }
            let label = match it.label {
                None | Some(serde_json::Value::Null) => {
                    return Err(bad(format!("label {i}: 'label' is missing")));
                }
                Some(serde_json::Value::Object(_) | serde_json::Value::Array(_)) => {
                    return Err(bad(format!(
                        "label {i}: 'label' must be a number, string or boolean"
                    )));
                }
                Some(v) => v.to_string(),
            };
            if label.len() > MAX_LABEL_BYTES {
                return Err(bad(format!(
                    "label {i}: 'label' is longer than {MAX_LABEL_BYTES} bytes"
                )));
            }
            Ok(LabelRow {
                request_id: it.request_id,
                client_request_id: it.client_request_id,
                key: it.key,
                row: it.row,
                label,
                at_micros: now_micros,
            })
        })
        .collect()
}

/// serde's message without the input excerpt (which could be a label value).
fn describe(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Eof => "truncated JSON",
        serde_json::error::Category::Data => "unexpected fields or types",
        serde_json::error::Category::Io => "unreadable",
    };
    let msg = e.to_string();
    // Field names are safe to show; serde puts them in backticks.
    let field = msg
        .split('`')
        .nth(1)
        .filter(|f| f.len() < 64)
        .map(|f| format!(" (field `{f}`)"))
        .unwrap_or_default();
    format!("{kind}{field} at line {}, column {}", e.line(), e.column())
}

/// The columns of `labels/<model>`.
pub fn labels_schema() -> Schema {
    Schema::new(vec![
        Field::new("request_id", FieldType::String),
        Field::new("client_request_id", FieldType::String),
        Field::new("key", FieldType::String),
        Field::new("row", FieldType::Int),
        Field::new("label", FieldType::String),
        Field::new("ts", FieldType::Timestamp),
        Field::new("date", FieldType::Date),
    ])
}

/// Open (or create) one of a model's tables, `inference/<model>` or `labels/<model>`,
/// partitioned by `date`.
pub async fn open_table(
    lake: &Lake,
    name: &str,
    schema: &Schema,
) -> Result<Table, freshet_lake::LakeError> {
    let opts = TableOptions {
        partition_by: vec!["date".into()],
        ..Default::default()
    };
    Table::open_or_create(lake.table_url(name)?, schema, &opts).await
}

/// Commit labels to `labels/<model>`; returns the table version.
pub async fn write_labels(lake: &Lake, model: &str, rows: &[LabelRow]) -> Result<i64, ServeError> {
    let schema = labels_schema();
    let table = open_table(lake, &format!("labels/{model}"), &schema).await?;
    append_labels(&table, &schema, rows, &[]).await
}

/// Each model's `labels/<model>` table, kept open between feedback calls (opening
/// reads the table's log), with group commit: calls that arrive while a commit is
/// under way are committed together in the next one, and each call answers once its
/// own labels are committed.
#[derive(Debug, Default)]
pub struct LabelTables {
    open: tokio::sync::Mutex<HashMap<String, Arc<LabelGroup>>>,
}

type Committed = tokio::sync::oneshot::Sender<Result<i64, String>>;

/// A source position committed with labels (a Delta `txn`), for topic feedback.
pub type Position = freshet_lake::Txn;

#[derive(Debug)]
pub struct LabelGroup {
    table: Table,
    queue: Mutex<LabelQueue>,
}

#[derive(Debug, Default)]
struct LabelQueue {
    waiting: Vec<(Vec<LabelRow>, Vec<Position>, Committed)>,
    committing: bool,
}

impl LabelTables {
    /// [`write_labels`] through the open table, grouped with concurrent calls.
    ///
    /// # Errors
    /// The table cannot be opened or the commit fails.
    pub async fn write(
        &self,
        lake: &Lake,
        model: &str,
        rows: &[LabelRow],
    ) -> Result<i64, ServeError> {
        self.write_at(lake, model, rows, Vec::new()).await
    }

    /// [`write`](Self::write), recording source positions in the same commit.
    pub async fn write_at(
        &self,
        lake: &Lake,
        model: &str,
        rows: &[LabelRow],
        positions: Vec<Position>,
    ) -> Result<i64, ServeError> {
        let group = self.group(lake, model).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lead = {
            let mut q = group.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.waiting.push((rows.to_vec(), positions, tx));
            !std::mem::replace(&mut q.committing, true)
        };
        if lead {
            // Its own task, so that a caller going away mid-commit cannot strand the
            // calls queued behind it.
            tokio::spawn(commit_queued(group));
        }
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(reason)) => Err(ServeError::Storage(reason)),
            Err(_) => Err(ServeError::Storage("the label commit stopped".into())),
        }
    }

    /// The position `app_id` reached in `labels/<model>`.
    pub async fn position(
        &self,
        lake: &Lake,
        model: &str,
        app_id: &str,
    ) -> Result<Option<i64>, ServeError> {
        Ok(self
            .group(lake, model)
            .await?
            .table
            .txn_version(app_id)
            .await?)
    }

    async fn group(&self, lake: &Lake, model: &str) -> Result<Arc<LabelGroup>, ServeError> {
        let mut open = self.open.lock().await;
        Ok(match open.get(model) {
            Some(g) => g.clone(),
            None => {
                let table = open_table(lake, &format!("labels/{model}"), &labels_schema()).await?;
                let g = Arc::new(LabelGroup {
                    table,
                    queue: Mutex::new(LabelQueue::default()),
                });
                open.insert(model.to_string(), g.clone());
                g
            }
        })
    }
}

/// What [`accept`] did with a set of labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Labels a live champion matched to its answers (None: the model is not live).
    pub live_matched: Option<usize>,
    /// The `labels/<model>` version holding them.
    pub version: i64,
}

/// Take labels for `model`, wherever they came from (`POST .../feedback`, a topic): a
/// live champion learns them the moment they arrive, in arrival order, and they are
/// committed to `labels/<model>` with the source's positions.
pub async fn accept(
    tables: &LabelTables,
    lake: &Lake,
    live: Option<&crate::live::LiveHub>,
    model: &str,
    rows: &[LabelRow],
    positions: Vec<Position>,
) -> Result<Accepted, ServeError> {
    let live_matched = live.and_then(|hub| hub.get(model)).map(|m| m.labels(rows));
    let version = tables.write_at(lake, model, rows, positions).await?;
    Ok(Accepted {
        live_matched,
        version,
    })
}

/// Commit everything queued, again and again, until the queue is empty.
async fn commit_queued(group: Arc<LabelGroup>) {
    let schema = labels_schema();
    loop {
        let batch = {
            let mut q = group.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.waiting.is_empty() {
                q.committing = false;
                return;
            }
            std::mem::take(&mut q.waiting)
        };
        let rows: Vec<LabelRow> = batch
            .iter()
            .flat_map(|(r, _, _)| r.iter().cloned())
            .collect();
        // The furthest position per source among the calls committed together.
        let mut furthest: HashMap<String, i64> = HashMap::new();
        for p in batch.iter().flat_map(|(_, p, _)| p) {
            let v = furthest.entry(p.app_id.clone()).or_insert(p.version);
            *v = (*v).max(p.version);
        }
        let positions: Vec<Position> = furthest
            .into_iter()
            .map(|(app_id, version)| Position { app_id, version })
            .collect();
        let result = append_labels(&group.table, &schema, &rows, &positions)
            .await
            .map_err(|e| e.to_string());
        for (_, _, tx) in batch {
            let _ = tx.send(result.clone());
        }
    }
}

async fn append_labels(
    table: &Table,
    schema: &Schema,
    rows: &[LabelRow],
    positions: &[Position],
) -> Result<i64, ServeError> {
    let mut b = RowBatchBuilder::new(schema, rows.len());
    let opt = |b: &mut RowBatchBuilder, col: usize, s: &Option<String>| match s {
        Some(s) => b.push_str(col, s),
        None => b.push(col, &Value::Null),
    };
    for r in rows {
        opt(&mut b, 0, &r.request_id);
        opt(&mut b, 1, &r.client_request_id);
        opt(&mut b, 2, &r.key);
        b.push(3, &Value::Int(r.row));
        b.push_str(4, &r.label);
        b.push(5, &Value::Timestamp(r.at_micros));
        b.push(
            6,
            &Value::Date(freshet_core::clock::micros_to_epoch_days(r.at_micros)),
        );
        b.end_row();
    }
    Ok(table.append(b.finish()?, positions).await?)
}

/// How one version did on the labels that have arrived.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VersionPerformance {
    pub version: i64,
    /// `champion`, `challenger` or `shadow`.
    pub variant: String,
    pub predictions: u64,
    pub labelled: u64,
    /// Share of labelled predictions equal to their label.
    pub accuracy: Option<f64>,
    /// Mean absolute error, when predictions and labels are numbers.
    pub mae: Option<f64>,
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

/// A JSON number, or a string holding one (labels arrive as either).
pub fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
}

/// Whether a prediction and its label agree: their JSON values are equal, with numbers
/// compared by value and `true`/`false` equal to `1`/`0` (labels often arrive as
/// either). The performance view and the loop's error stream both grade by this rule.
pub fn same(pred: &serde_json::Value, label: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    let num = |v: &J| match v {
        J::Bool(b) => Some(f64::from(u8::from(*b))),
        other => number(other),
    };
    match (pred, label) {
        (J::String(a), J::String(b)) => a == b,
        _ => match (num(pred), num(label)) {
            (Some(a), Some(b)) => a == b,
            _ => pred == label,
        },
    }
}

/// The label join of one rollout phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhaseLabels {
    /// Figures of the predictions captured at or after the phase's start only.
    pub versions: Vec<VersionPerformance>,
    /// Labels that arrived at or after the `recent` moment and graded a prediction of
    /// the model, whenever that prediction was made: whether labels are flowing.
    pub recent_labels: u64,
}

/// Join `labels/<model>` to `inference/<model>` and score each (version, variant) over
/// every prediction ever captured. The newest label for a prediction wins.
pub async fn performance(lake: &Lake, model: &str) -> Result<Vec<VersionPerformance>, ServeError> {
    Ok(join(lake, model, None, None, None).await?.versions)
}

/// Commits of `inference/<model>` and `labels/<model>` read back before a
/// [`PhaseAnchor`]: the anchor is taken a moment after the phase began, and the
/// predictions captured and labels received in that moment must not be missed (the
/// capture commits about once a second, feedback more often; 50 commits of each span
/// several seconds). What was captured before the phase is then left out by its time.
pub const ANCHOR_MARGIN_COMMITS: i64 = 50;

/// Where a phase's label join starts reading both tables, so that each round reads the
/// commits of the phase (and a margin before it) instead of the whole tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseAnchor {
    /// Read `inference/<model>` after this version (`None`: from the start).
    pub inference_from: Option<i64>,
    /// Read `labels/<model>` after this version.
    pub labels_from: Option<i64>,
}

impl PhaseAnchor {
    /// The anchor for a phase that has just begun: the tables' current versions, less
    /// [`ANCHOR_MARGIN_COMMITS`].
    pub async fn now(lake: &Lake, model: &str) -> Result<Self, ServeError> {
        let inference =
            open_table(lake, &format!("inference/{model}"), &inference_schema()).await?;
        let labels = open_table(lake, &format!("labels/{model}"), &labels_schema()).await?;
        let back = |v: i64| Some(v - ANCHOR_MARGIN_COMMITS).filter(|v| *v >= 0);
        Ok(Self {
            inference_from: back(inference.version().await),
            labels_from: back(labels.version().await),
        })
    }
}

/// As [`performance`], counting only predictions captured at or after `since_ms` (a
/// rollout phase's start, Unix ms), so that a version is judged on the same period as
/// the one it is compared with rather than on its whole history. Also counts the
/// labels that arrived at or after `recent_ms` and joined any prediction.
pub async fn performance_since(
    lake: &Lake,
    model: &str,
    since_ms: i64,
    recent_ms: i64,
) -> Result<PhaseLabels, ServeError> {
    join(
        lake,
        model,
        Some(since_ms.saturating_mul(1000)),
        Some(recent_ms.saturating_mul(1000)),
        None,
    )
    .await
}

/// As [`performance_since`], reading both tables only after `anchor` (taken when the
/// phase began): the same figures for the phase's predictions, without reading the
/// tables' whole history every round. Labels are "flowing" when one read after the
/// anchor that arrived at or after `recent_ms` joined a prediction read after it.
pub async fn performance_from(
    lake: &Lake,
    model: &str,
    since_ms: i64,
    recent_ms: i64,
    anchor: PhaseAnchor,
) -> Result<PhaseLabels, ServeError> {
    join(
        lake,
        model,
        Some(since_ms.saturating_mul(1000)),
        Some(recent_ms.saturating_mul(1000)),
        Some(anchor),
    )
    .await
}

/// The join behind [`performance`] and [`performance_since`]; times in microseconds.
async fn join(
    lake: &Lake,
    model: &str,
    since_micros: Option<i64>,
    recent_micros: Option<i64>,
    anchor: Option<PhaseAnchor>,
) -> Result<PhaseLabels, ServeError> {
    let inf_schema = inference_schema();
    let lab_schema = labels_schema();
    let inference = open_table(lake, &format!("inference/{model}"), &inf_schema).await?;
    let labels = open_table(lake, &format!("labels/{model}"), &lab_schema).await?;
    // Append-only tables: what was added after the anchor, else every row.
    let (label_batches, inference_batches) = match anchor {
        Some(a) => (
            labels.read_new(a.labels_from, None).await?.0,
            inference.read_new(a.inference_from, None).await?.0,
        ),
        None => (labels.read(None).await?, inference.read(None).await?),
    };
    let mut by_request: HashMap<(String, i64), (i64, String)> = HashMap::new();
    let mut by_client: HashMap<(String, i64), (i64, String)> = HashMap::new();
    let mut by_key: HashMap<String, (i64, String)> = HashMap::new();
    let keep = |slot: Option<&(i64, String)>, at: i64| slot.is_none_or(|(t, _)| at >= *t);
    for batch in label_batches {
        for r in batch_rows(&batch, &lab_schema)? {
            let (row, label) = (int(&r[3]), text(&r[4]).unwrap_or("null").to_string());
            let at = match r[5] {
                Value::Timestamp(t) => t,
                _ => 0,
            };
            if let Some(id) = text(&r[0]) {
                let k = (id.to_string(), row);
                if keep(by_request.get(&k), at) {
                    by_request.insert(k, (at, label));
                }
            } else if let Some(id) = text(&r[1]) {
                let k = (id.to_string(), row);
                if keep(by_client.get(&k), at) {
                    by_client.insert(k, (at, label));
                }
            } else if let Some(key) = text(&r[2])
                && keep(by_key.get(key), at)
            {
                by_key.insert(key.to_string(), (at, label));
            }
        }
    }
    #[derive(Default)]
    struct Acc {
        predictions: u64,
        labelled: u64,
        correct: u64,
        abs_err: f64,
        numeric: u64,
    }
    let mut acc: HashMap<(i64, String), Acc> = HashMap::new();
    let mut recent_labels = 0u64;
    for batch in inference_batches {
        for r in batch_rows(&batch, &inf_schema)? {
            let row = int(&r[7]);
            let label = text(&r[0])
                .and_then(|id| by_request.get(&(id.to_string(), row)))
                .or_else(|| text(&r[1]).and_then(|id| by_client.get(&(id.to_string(), row))))
                .or_else(|| text(&r[6]).and_then(|k| by_key.get(k)));
            if let (Some((at, _)), Some(recent)) = (label, recent_micros)
                && *at >= recent
            {
                recent_labels += 1;
            }
            let captured = match r[2] {
                Value::Timestamp(t) => t,
                _ => 0,
            };
            if since_micros.is_some_and(|since| captured < since) {
                continue;
            }
            let version = int(&r[4]);
            let variant = text(&r[5]).unwrap_or("champion").to_string();
            let a = acc.entry((version, variant)).or_default();
            a.predictions += 1;
            let Some((_, label)) = label else { continue };
            let (Ok(l), Ok(p)) = (
                serde_json::from_str::<serde_json::Value>(label),
                serde_json::from_str::<serde_json::Value>(text(&r[9]).unwrap_or("null")),
            ) else {
                continue;
            };
            a.labelled += 1;
            if same(&p, &l) {
                a.correct += 1;
            }
            if let (Some(x), Some(y)) = (p.as_f64(), l.as_f64()) {
                a.abs_err += (x - y).abs();
                a.numeric += 1;
            }
        }
    }
    let mut out: Vec<VersionPerformance> = acc
        .into_iter()
        .map(|((version, variant), a)| VersionPerformance {
            version,
            variant,
            predictions: a.predictions,
            labelled: a.labelled,
            accuracy: (a.labelled > 0).then(|| a.correct as f64 / a.labelled as f64),
            mae: (a.numeric > 0).then(|| a.abs_err / a.numeric as f64),
        })
        .collect();
    out.sort_by(|a, b| (a.version, &a.variant).cmp(&(b.version, &b.variant)));
    Ok(PhaseLabels {
        versions: out,
        recent_labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_bodies_in_every_shape() {
        let one = parse_feedback(br#"{"request_id": "r1", "label": true}"#, 5).unwrap();
        assert_eq!(one[0].label, "true");
        let many = parse_feedback(
            br#"[{"client_request_id": "c", "row": 2, "label": "fraud"}, {"key": "k", "label": 1.5}]"#,
            5,
        )
        .unwrap();
        assert_eq!(
            (many.len(), many[0].row, many[1].label.as_str()),
            (2, 2, "1.5")
        );
        let nd = parse_feedback(
            b"{\"key\": \"a\", \"label\": 0}\n{\"key\": \"b\", \"label\": 1}\n",
            5,
        )
        .unwrap();
        assert_eq!(nd.len(), 2);
        let wrapped = parse_feedback(br#"{"labels": [{"key": "a", "label": 0}]}"#, 5).unwrap();
        assert_eq!(wrapped.len(), 1);
    }

    #[test]
    fn feedback_mistakes_name_the_problem_not_the_value() {
        for (body, says) in [
            (&br#"{"label": 1}"#[..], "exactly one of"),
            (
                br#"{"request_id": "a", "key": "b", "label": 1}"#,
                "exactly one of",
            ),
            (br#"{"request_id": "a"}"#, "'label' is missing"),
            (
                br#"{"request_id": "a", "label": {"x": "alice@example.com"}}"#,
                "number, string",
            ),
            (br#"{"request_id": "a", "label": 1, "row": -1}"#, "'row'"),
            (br#"[]"#, "no label"),
            (
                br#"{"request_id": "a", "label": 1, "secret": "alice@example.com"}"#,
                "unexpected",
            ),
            (
                b"{\"key\": \"alice@example.com\", \"label\": 1}\n{oops",
                "line 2",
            ),
        ] {
            let e = parse_feedback(body, 0).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains("alice@example.com"), "{e}");
        }
        // Ids and labels are held (by the live learner, the labels table): bounded.
        let long_id = "i".repeat(crate::formats::MAX_ID_BYTES + 1);
        let long_label = "l".repeat(MAX_LABEL_BYTES);
        for (body, says) in [
            (
                format!(r#"{{"client_request_id": "{long_id}", "label": 1}}"#),
                "label 0: 'client_request_id' is longer than 256 bytes",
            ),
            (
                format!(r#"[{{"key": "a", "label": 1}}, {{"key": "{long_id}", "label": 1}}]"#),
                "label 1: 'key' is longer than 256 bytes",
            ),
            (
                format!(r#"{{"request_id": "a", "label": "{long_label}"}}"#),
                "label 0: 'label' is longer than 4096 bytes",
            ),
        ] {
            let e = parse_feedback(body.as_bytes(), 0).unwrap_err();
            assert!(matches!(e, ServeError::BadRequest(_)), "{e}");
            assert!(e.to_string().contains(says), "{e}");
            assert!(!e.to_string().contains(&long_id), "{e}");
        }
        let at_limit = "i".repeat(crate::formats::MAX_ID_BYTES);
        let ok = format!(r#"{{"request_id": "{at_limit}", "label": 1}}"#);
        assert_eq!(parse_feedback(ok.as_bytes(), 0).unwrap().len(), 1);
    }

    /// Predictions `(request id, captured at µs, version, variant, prediction)` in
    /// `inference/m`.
    async fn predictions(lake: &Lake, rows: &[(&str, i64, i64, &str, &str)]) {
        let schema = inference_schema();
        let table = open_table(lake, "inference/m", &schema).await.unwrap();
        let mut b = RowBatchBuilder::new(&schema, rows.len());
        for (id, at, version, variant, prediction) in rows {
            b.push_str(0, id);
            b.push(1, &Value::Null);
            b.push(2, &Value::Timestamp(*at));
            b.push_str(3, "m");
            b.push(4, &Value::Int(*version));
            b.push_str(5, variant);
            b.push(6, &Value::Null);
            b.push(7, &Value::Int(0));
            b.push_str(8, "{}");
            b.push_str(9, prediction);
            b.push(10, &Value::Null);
            b.push(11, &Value::Int(5));
            b.push(
                12,
                &Value::Date(freshet_core::clock::micros_to_epoch_days(*at)),
            );
            b.end_row();
        }
        table.append(b.finish().unwrap(), &[]).await.unwrap();
    }

    fn label(id: &str, label: &str, at_micros: i64) -> LabelRow {
        LabelRow {
            request_id: Some(id.into()),
            client_request_id: None,
            key: None,
            row: 0,
            label: label.into(),
            at_micros,
        }
    }

    #[tokio::test]
    async fn phase_figures_count_only_predictions_captured_since_the_phase_began() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
        const S: i64 = 1_000_000; // one second in µs
        // Version 1 was right before the phase began (at 100 s) and wrong after it.
        predictions(
            &lake,
            &[
                ("a", 10 * S, 1, "champion", "true"),
                ("b", 20 * S, 1, "champion", "true"),
                ("c", 30 * S, 1, "champion", "true"),
                ("d", 100 * S, 1, "champion", "true"),
                ("e", 110 * S, 1, "champion", "true"),
                ("e", 110 * S, 2, "shadow", "false"),
            ],
        )
        .await;
        let labels = [
            label("a", "true", 50 * S),
            label("b", "true", 50 * S),
            label("c", "true", 50 * S),
            label("d", "false", 120 * S),
            label("e", "false", 120 * S),
        ];
        write_labels(&lake, "m", &labels).await.unwrap();

        let whole = performance(&lake, "m").await.unwrap();
        assert_eq!((whole[0].version, whole[0].labelled), (1, 5));
        assert_eq!(whole[0].accuracy, Some(0.6));

        let phase = performance_since(&lake, "m", 100_000, 115_000)
            .await
            .unwrap();
        let v1 = &phase.versions[0];
        assert_eq!((v1.version, v1.predictions, v1.labelled), (1, 2, 2));
        assert_eq!(v1.accuracy, Some(0.0));
        let v2 = &phase.versions[1];
        assert_eq!((v2.version, v2.labelled, v2.accuracy), (2, 1, Some(1.0)));
        // The labels of d and e (three predictions) arrived after 115 s; a, b, c before.
        assert_eq!(phase.recent_labels, 3);
        let later = performance_since(&lake, "m", 100_000, 121_000)
            .await
            .unwrap();
        assert_eq!(later.recent_labels, 0, "no label arrived since");
        let nothing = performance_since(&lake, "m", 200_000, 0).await.unwrap();
        assert!(nothing.versions.is_empty());
    }

    #[test]
    fn labels_match_predictions_across_json_spellings() {
        use serde_json::json;
        assert!(same(&json!(true), &json!(1)));
        assert!(same(&json!(0), &json!(false)));
        assert!(same(&json!("up"), &json!("up")));
        assert!(!same(&json!("UP"), &json!("up")));
        assert!(same(&json!(2.0), &json!(2)));
    }
}
