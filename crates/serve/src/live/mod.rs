//! Live serving (`serving: live`): the champion answers as a live learner that starts
//! from the registered version and learns each label the moment it arrives, with the
//! registered version — the snapshot — kept answering in shadow as a safety net.
//!
//! - **Scoring never waits on learning.** Each live model has one learner thread that
//!   owns the mutable model. It learns every label in arrival order, test-then-train
//!   (the answer was given before its label came), and after each batch publishes a
//!   copy behind an atomic pointer that requests read without a lock.
//! - **Every answer is reproducible.** A published state is stamped with its lineage
//!   (one per start from a base version) and the rows it has learnt; the [`journal`]
//!   holds those rows in order, so base + the first N entries is the state that answered.
//! - **The safety net.** Every labelled answer is graded for both the live state and
//!   the snapshot (both score every request). When the live learner's error over the
//!   window exceeds the snapshot's by more than the margin, traffic falls back to the
//!   snapshot at once, the live state restarts from it under a new lineage, and the
//!   observer hears why. The restarted learner keeps learning in shadow, and traffic
//!   returns to it once it is no worse than the snapshot over the window.
//! - When the `champion` alias moves, the new version becomes the snapshot. By default
//!   (`rebase: judged`) the live state keeps answering and learning beside it until
//!   both are graded on `min_labels` labels: it restarts from the new version (a new
//!   lineage, the version its base) if that erred less, else it keeps its state and
//!   lineage with the new version as its safety net. A promoted snapshot trained on
//!   fewer rows of a new concept than the live state has learnt no longer undoes them.
//!   With `rebase: always`, or when the new version reads other inputs, the new version
//!   becomes the base at once and the old learner thread ends.
//!
//! Labels reach a live model through [`LiveModel::labels`] (the feedback endpoint); an
//! answer is matched by its request id or the caller's id. Live mode is single-node:
//! another node serves its own snapshot.

pub mod journal;
mod net;

use crate::feedback::LabelRow;
use crate::formats::Prediction;
use crate::loader::LoadedModel;
use arc_swap::ArcSwap;
use freshet_core::Value;
use freshet_core::model_spec::{LiveSpec, Rebase};
use journal::{JournalHeader, JournalWriter};
use net::{SafetyNet, Verdict};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Rows one learner batch takes before it publishes.
const MAX_BATCH: usize = 4_096;

/// What an answer of a live model descends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStamp {
    /// The registered version the state starts from.
    pub base: i64,
    /// The lineage: one per start from the base (and per restart after a fallback).
    pub lineage: Arc<str>,
    /// Rows the state had learnt when it answered.
    pub learned: u64,
    /// The snapshot answered (the live learner is fallen back).
    pub fallback: bool,
}

/// The two states one request is scored by.
#[derive(Debug, Clone)]
pub struct LiveView {
    pub live: Arc<LoadedModel>,
    pub snapshot: Arc<LoadedModel>,
    pub stamp: LiveStamp,
    /// Labels of answers given in another epoch do not grade the net.
    epoch: u64,
}

/// What the safety net did.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// Traffic fell back to the snapshot.
    FellBack {
        base: i64,
        live_error: f64,
        snapshot_error: f64,
        labels: usize,
    },
    /// The restarted live learner answers again.
    Resumed {
        base: i64,
        live_error: f64,
        snapshot_error: f64,
        labels: usize,
    },
    /// A new base version: a new lineage starts from it.
    Rebased { base: i64 },
    /// A new champion erred more than the live state on the labels since it came: the
    /// live state keeps its lineage, the new version is its snapshot.
    Kept {
        base: i64,
        snapshot: i64,
        live_error: f64,
        snapshot_error: f64,
        labels: usize,
    },
}

impl LiveEvent {
    /// One line for operators.
    pub fn summary(&self) -> String {
        match self {
            LiveEvent::FellBack {
                base,
                live_error,
                snapshot_error,
                labels,
            } => format!(
                "live learner fell back to version {base}: error {live_error:.3} vs the snapshot's {snapshot_error:.3} over {labels} labels"
            ),
            LiveEvent::Resumed {
                base,
                live_error,
                snapshot_error,
                labels,
            } => format!(
                "live learner answers again (base version {base}): error {live_error:.3} vs the snapshot's {snapshot_error:.3} over {labels} labels"
            ),
            LiveEvent::Rebased { base } => format!("live learner starts from version {base}"),
            LiveEvent::Kept {
                base,
                snapshot,
                live_error,
                snapshot_error,
                labels,
            } => format!(
                "live learner keeps its state (base version {base}): error {live_error:.3} vs new version {snapshot}'s {snapshot_error:.3} over {labels} labels"
            ),
        }
    }
}

/// Told of every safety-net event (alerts, metrics, loop events in the binary).
pub trait LiveObserver: Send + Sync {
    fn live_event(&self, model: &str, event: &LiveEvent);
}

/// A live model as `/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveStatus {
    /// The version the answering lineage started from.
    pub base_version: i64,
    /// The version scoring beside it: the safety net's reference (the champion).
    pub snapshot_version: i64,
    /// A new snapshot is being graded against the live state (`rebase: judged`).
    pub judging: bool,
    /// `live` or `fallback`.
    pub mode: &'static str,
    pub lineage: String,
    /// Rows the current lineage has learnt.
    pub learned: u64,
    /// Rows learnt since this base was loaded, across lineages.
    pub learned_total: u64,
    /// Labels matched to an answer, and labels that found none (too old, or never
    /// answered here).
    pub labels_matched: u64,
    pub labels_unmatched: u64,
    /// Labels whose value the model cannot learn (wrong type, a class too many).
    pub labels_refused: u64,
    pub fallbacks: u64,
    pub resumes: u64,
    /// Mean errors over the window, once it holds `min_labels`.
    pub live_error: Option<f64>,
    pub snapshot_error: Option<f64>,
    pub window_labels: usize,
    pub last_event: Option<String>,
    /// Live mode runs on one node.
    pub scope: &'static str,
}

/// The state requests read.
#[derive(Debug)]
struct Published {
    /// The live state, carrying its lineage's base version.
    model: Arc<LoadedModel>,
    /// The version scoring beside it.
    snapshot: Arc<LoadedModel>,
    lineage: Arc<str>,
    epoch: u64,
    learned: u64,
}

#[derive(Debug, Default)]
struct Counters {
    judging: bool,
    learned_total: u64,
    refused: u64,
    fallbacks: u64,
    resumes: u64,
    errors: Option<(f64, f64)>,
    window_labels: usize,
    last_event: Option<String>,
}

#[derive(Debug)]
struct Shared {
    published: ArcSwap<Published>,
    fallback: AtomicBool,
    matched: AtomicU64,
    unmatched: AtomicU64,
    /// Labels handed to the learner, and labels it has learnt and published.
    sent: AtomicU64,
    done: AtomicU64,
    counters: Mutex<Counters>,
}

/// An answer waiting for its label.
#[derive(Debug)]
struct PendingAnswer {
    rows: Vec<Vec<Value>>,
    live: Vec<Json>,
    snapshot: Vec<Json>,
    epoch: u64,
    taken: Mutex<Vec<bool>>,
}

#[derive(Debug, Default)]
struct Pending {
    by_id: HashMap<String, Arc<PendingAnswer>>,
    order: VecDeque<(String, Option<String>, usize)>,
    rows: usize,
}

impl Pending {
    fn insert(&mut self, rid: &str, cid: Option<&str>, answer: PendingAnswer, cap: usize) {
        let n = answer.rows.len();
        let a = Arc::new(answer);
        self.by_id.insert(format!("r:{rid}"), a.clone());
        if let Some(c) = cid {
            self.by_id.insert(format!("c:{c}"), a);
        }
        self.order
            .push_back((rid.to_string(), cid.map(str::to_string), n));
        self.rows += n;
        while self.rows > cap {
            let Some((r, c, n)) = self.order.pop_front() else {
                break;
            };
            let gone = self.by_id.remove(&format!("r:{r}"));
            if let (Some(c), Some(gone)) = (c, gone) {
                // A later request may have reused the caller's id; keep the newer one.
                let key = format!("c:{c}");
                if self.by_id.get(&key).is_some_and(|a| Arc::ptr_eq(a, &gone)) {
                    self.by_id.remove(&key);
                }
            }
            self.rows -= n;
        }
    }

    fn find(&self, label: &LabelRow) -> Option<Arc<PendingAnswer>> {
        label
            .request_id
            .as_ref()
            .and_then(|r| self.by_id.get(&format!("r:{r}")))
            .or_else(|| {
                label
                    .client_request_id
                    .as_ref()
                    .and_then(|c| self.by_id.get(&format!("c:{c}")))
            })
            .cloned()
    }
}

/// What the learner thread is told, in order.
enum Msg {
    Learn(Learn),
    /// A new champion: the snapshot from here on (and perhaps the new base).
    Snapshot(Arc<LoadedModel>),
}

/// One label for the learner thread.
struct Learn {
    row: Vec<Value>,
    label: Json,
    label_json: String,
    live: Json,
    snapshot: Json,
    epoch: u64,
}

/// One served model's live learner.
#[derive(Debug)]
pub struct LiveModel {
    name: String,
    spec: LiveSpec,
    /// The newest version handed over as champion (the learner thread takes it in
    /// queue order; [`Published::snapshot`] says when it has).
    champion: ArcSwap<LoadedModel>,
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    pending: Mutex<Pending>,
    /// Recent labels by id: the hand-off count that must be learnt for each (0: it
    /// matched no answer, nothing to learn).
    recent: Mutex<RecentLabels>,
}

/// Labels kept for [`LiveModel::label_learnt`].
const RECENT_LABELS: usize = 100_000;

#[derive(Debug, Default)]
struct RecentLabels {
    seq: HashMap<String, u64>,
    order: VecDeque<String>,
}

impl RecentLabels {
    fn note(&mut self, label: &LabelRow, seq: u64) {
        let keys = [
            label.client_request_id.as_ref().map(|c| format!("c:{c}")),
            label.request_id.as_ref().map(|r| format!("r:{r}")),
        ];
        for k in keys.into_iter().flatten() {
            if self.seq.insert(k.clone(), seq).is_none() {
                self.order.push_back(k);
            }
        }
        while self.order.len() > RECENT_LABELS {
            if let Some(k) = self.order.pop_front() {
                self.seq.remove(&k);
            }
        }
    }
}

fn new_lineage() -> Arc<str> {
    Arc::from(uuid::Uuid::now_v7().simple().to_string().as_str())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Grade a prediction against a label: 0/1 for a class, absolute error for a value.
fn error_of(pred: &Json, label: &Json, regression: bool) -> f64 {
    if regression {
        use crate::feedback::number;
        match (number(pred), number(label)) {
            (Some(p), Some(y)) => (p - y).abs(),
            _ => 0.0,
        }
    } else if crate::feedback::same(pred, label) {
        0.0
    } else {
        1.0
    }
}

impl LiveModel {
    /// Start learning from `base`. Answers still waiting for labels (`pending`, from
    /// the previous base) are learnt too; their epochs are older than `first_epoch`,
    /// so they do not grade the new learner.
    fn start(
        name: &str,
        spec: LiveSpec,
        base: Arc<LoadedModel>,
        journal_dir: Option<PathBuf>,
        observer: Option<Arc<dyn LiveObserver>>,
        first_epoch: u64,
        pending: Pending,
    ) -> Arc<Self> {
        let lineage = new_lineage();
        let shared = Arc::new(Shared {
            published: ArcSwap::from_pointee(Published {
                model: base.clone(),
                snapshot: base.clone(),
                lineage: lineage.clone(),
                epoch: first_epoch,
                learned: 0,
            }),
            fallback: AtomicBool::new(false),
            matched: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            done: AtomicU64::new(0),
            counters: Mutex::new(Counters::default()),
        });
        let (tx, rx) = mpsc::channel();
        let learner = Learner {
            name: name.to_string(),
            base: base.clone(),
            snapshot: base.clone(),
            judging: false,
            model: base.model.clone(),
            net: SafetyNet::new(spec.clone(), base.is_regression()),
            shared: shared.clone(),
            journal_dir,
            journal: None,
            lineage,
            epoch: first_epoch,
            learned: 0,
            observer,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("live-{name}"))
            .spawn(move || learner.run(rx));
        let tx = match spawned {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::error!(model = name, error = %e, "live learner thread cannot start; serving the snapshot");
                None
            }
        };
        Arc::new(Self {
            name: name.to_string(),
            spec,
            champion: ArcSwap::new(base),
            shared,
            tx: Mutex::new(tx),
            pending: Mutex::new(pending),
            recent: Mutex::new(RecentLabels::default()),
        })
    }

    /// The live state and the snapshot as they stand for one request: both score it,
    /// and the stamp says which answers.
    pub fn view(&self) -> LiveView {
        let p = self.shared.published.load_full();
        LiveView {
            live: p.model.clone(),
            snapshot: p.snapshot.clone(),
            stamp: LiveStamp {
                base: p.model.version,
                lineage: p.lineage.clone(),
                learned: p.learned,
                fallback: self.shared.fallback.load(Ordering::Acquire),
            },
            epoch: p.epoch,
        }
    }

    /// Hand over a new champion with the same inputs: it scores beside the live state
    /// from the moment the learner thread takes it. `false` when the thread is gone.
    fn new_snapshot(&self, champion: &Arc<LoadedModel>) -> bool {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = tx.as_ref() else { return false };
        if tx.send(Msg::Snapshot(champion.clone())).is_err() {
            return false;
        }
        self.champion.store(champion.clone());
        true
    }

    /// Keep an answer until its label comes: the rows, the live state's and the
    /// snapshot's predictions (whichever of them answered).
    pub fn remember(
        &self,
        request_id: &str,
        client_request_id: Option<&str>,
        rows: &[Vec<Value>],
        live: &[Prediction],
        snapshot: &[Prediction],
        view: &LiveView,
    ) {
        let epoch = view.epoch;
        let answer = PendingAnswer {
            rows: rows.to_vec(),
            live: live.iter().map(|p| p.label.to_json()).collect(),
            snapshot: snapshot.iter().map(|p| p.label.to_json()).collect(),
            epoch,
            taken: Mutex::new(vec![false; rows.len()]),
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                request_id,
                client_request_id,
                answer,
                self.spec.pending_answers,
            );
    }

    /// Labels handed to the learner so far; [`learnt_upto`](Self::learnt_upto) reaches
    /// this once all of them are learnt and answering.
    pub fn handed(&self) -> u64 {
        self.shared.sent.load(Ordering::Acquire)
    }

    /// Labels learnt and published (the answering state includes them), counted like
    /// [`handed`](Self::handed).
    pub fn learnt_upto(&self) -> u64 {
        self.shared.done.load(Ordering::Acquire)
    }

    /// Whether the label fed back for `id` (a `client_request_id`, else a
    /// `request_id`) is learnt and answering: `None` while no such label has come,
    /// `Some(true)` once learnt (or when it matched no answer, so there is nothing to
    /// learn).
    pub fn label_learnt(&self, id: &str) -> Option<bool> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let seq = recent
            .seq
            .get(&format!("c:{id}"))
            .or_else(|| recent.seq.get(&format!("r:{id}")))
            .copied()?;
        Some(seq <= self.learnt_upto())
    }

    /// Hand labels to the learner, in the order given. Returns how many matched an
    /// answer of this live model.
    pub fn labels(&self, rows: &[LabelRow]) -> usize {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else { return 0 };
        let mut matched = 0;
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        for l in rows {
            recent.note(l, 0);
            let Some(a) = pending.find(l) else { continue };
            let Ok(i) = usize::try_from(l.row) else {
                continue;
            };
            {
                let mut taken = a.taken.lock().unwrap_or_else(|e| e.into_inner());
                match taken.get_mut(i) {
                    Some(t) if !*t => *t = true,
                    _ => continue,
                }
            }
            let Ok(label) = serde_json::from_str::<Json>(&l.label) else {
                continue;
            };
            let msg = Msg::Learn(Learn {
                row: a.rows[i].clone(),
                label,
                label_json: l.label.clone(),
                live: a.live.get(i).cloned().unwrap_or(Json::Null),
                snapshot: a.snapshot.get(i).cloned().unwrap_or(Json::Null),
                epoch: a.epoch,
            });
            if tx.send(msg).is_err() {
                break;
            }
            let seq = self.shared.sent.fetch_add(1, Ordering::AcqRel) + 1;
            recent.note(l, seq);
            matched += 1;
        }
        drop(recent);
        drop(pending);
        self.shared
            .matched
            .fetch_add(matched as u64, Ordering::Relaxed);
        self.shared
            .unmatched
            .fetch_add((rows.len() - matched) as u64, Ordering::Relaxed);
        matched
    }

    pub fn status(&self) -> LiveStatus {
        let p = self.shared.published.load();
        let c = self
            .shared
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        LiveStatus {
            base_version: p.model.version,
            snapshot_version: p.snapshot.version,
            judging: c.judging,
            mode: if self.shared.fallback.load(Ordering::Acquire) {
                "fallback"
            } else {
                "live"
            },
            lineage: p.lineage.to_string(),
            learned: p.learned,
            learned_total: c.learned_total,
            labels_matched: self.shared.matched.load(Ordering::Relaxed),
            labels_unmatched: self.shared.unmatched.load(Ordering::Relaxed),
            labels_refused: c.refused,
            fallbacks: c.fallbacks,
            resumes: c.resumes,
            live_error: c.errors.map(|e| e.0),
            snapshot_error: c.errors.map(|e| e.1),
            window_labels: c.window_labels,
            last_event: c.last_event.clone(),
            scope: "single node",
        }
    }

    /// Stop learning (the base moved on); the thread ends once its queue is empty.
    fn stop(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        tracing::debug!(model = %self.name, "live learner stopped");
    }
}

/// The learner thread's state.
struct Learner {
    name: String,
    /// The version the current lineage started from.
    base: Arc<LoadedModel>,
    /// The version scoring beside the live state: the net's reference, and the state a
    /// fallback restarts from.
    snapshot: Arc<LoadedModel>,
    /// The snapshot is new and not yet judged against the live state.
    judging: bool,
    model: freshet_learn::model::Model,
    net: SafetyNet,
    shared: Arc<Shared>,
    journal_dir: Option<PathBuf>,
    journal: Option<JournalWriter>,
    lineage: Arc<str>,
    epoch: u64,
    learned: u64,
    observer: Option<Arc<dyn LiveObserver>>,
}

impl Learner {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        self.open_journal();
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut n = 0;
            for m in batch {
                match m {
                    Msg::Learn(m) => {
                        self.one(m);
                        n += 1;
                    }
                    Msg::Snapshot(v) => self.take_snapshot(v),
                }
            }
            if let Some(j) = &mut self.journal
                && let Err(e) = j.flush()
            {
                tracing::warn!(model = %self.name, error = %e, "live journal stops");
                self.journal = None;
            }
            self.publish();
            self.shared.done.fetch_add(n, Ordering::AcqRel);
        }
    }

    fn open_journal(&mut self) {
        let Some(dir) = &self.journal_dir else { return };
        let header = JournalHeader {
            model: self.name.clone(),
            base: self.base.version,
            lineage: self.lineage.to_string(),
            started_at_ms: now_ms(),
        };
        match JournalWriter::create(dir, &header) {
            Ok(w) => self.journal = Some(w),
            Err(e) => {
                tracing::warn!(model = %self.name, error = %e, "live journal cannot be written; answers cannot be replayed");
                self.journal = None;
            }
        }
    }

    /// A new champion to judge (`rebase: judged`; under `always` the hub starts a new
    /// learner instead). Answers given before it are not graded against it (a new epoch).
    fn take_snapshot(&mut self, v: Arc<LoadedModel>) {
        self.snapshot = v;
        self.net.clear();
        if self.shared.fallback.load(Ordering::Acquire) {
            // A fallen-back learner restarts from the newest snapshot; it answers
            // again once no worse than it, as after any fallback.
            self.judging = false;
            self.restart();
        } else {
            self.judging = true;
            self.epoch += 1;
            self.publish();
        }
        self.counters().judging = self.judging;
    }

    /// The verdict on a new snapshot, once both are graded on `min_labels` labels:
    /// restart from it when it erred less, else keep the live state. `true` when the
    /// live state restarted.
    fn judge_snapshot(&mut self) -> bool {
        if !self.judging {
            return false;
        }
        let Some((live, snapshot, labels)) = self.net.errors() else {
            return false;
        };
        self.judging = false;
        self.counters().judging = false;
        if snapshot < live {
            self.restart();
            self.event(
                LiveEvent::Rebased {
                    base: self.base.version,
                },
                |_| {},
            );
            true
        } else {
            self.event(
                LiveEvent::Kept {
                    base: self.base.version,
                    snapshot: self.snapshot.version,
                    live_error: live,
                    snapshot_error: snapshot,
                    labels,
                },
                |_| {},
            );
            false
        }
    }

    fn one(&mut self, m: Learn) {
        let regression = self.base.is_regression();
        if m.epoch == self.epoch {
            self.net.push(
                error_of(&m.live, &m.label, regression),
                error_of(&m.snapshot, &m.label, regression),
            );
        }
        if journal::learn(&mut self.model, &self.base, &m.row, &m.label) {
            self.learned += 1;
            if let Some(j) = &mut self.journal
                && let Err(e) = j.append(self.learned, &m.row, &m.label_json)
            {
                tracing::warn!(model = %self.name, error = %e, "live journal stops");
                self.journal = None;
            }
            self.counters().learned_total += 1;
        } else {
            self.counters().refused += 1;
        }
        let fallen = self.shared.fallback.load(Ordering::Acquire);
        let verdict = if self.judge_snapshot() {
            Verdict::Hold
        } else {
            self.net.verdict(fallen)
        };
        match verdict {
            Verdict::Hold => {}
            Verdict::FallBack {
                live,
                snapshot,
                labels,
            } => {
                self.shared.fallback.store(true, Ordering::Release);
                self.restart();
                self.event(
                    LiveEvent::FellBack {
                        base: self.base.version,
                        live_error: live,
                        snapshot_error: snapshot,
                        labels,
                    },
                    |c| c.fallbacks += 1,
                );
            }
            Verdict::Resume {
                live,
                snapshot,
                labels,
            } => {
                // Publish first, so the first live answer comes from this state.
                self.publish();
                self.shared.fallback.store(false, Ordering::Release);
                self.event(
                    LiveEvent::Resumed {
                        base: self.base.version,
                        live_error: live,
                        snapshot_error: snapshot,
                        labels,
                    },
                    |c| c.resumes += 1,
                );
            }
        }
        let errors = self.net.errors();
        let mut c = self.counters();
        c.errors = errors.map(|(l, s, _)| (l, s));
        c.window_labels = errors.map_or(0, |e| e.2);
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.shared
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, e: LiveEvent, count: impl FnOnce(&mut Counters)) {
        let summary = e.summary();
        tracing::warn!(model = %self.name, base = self.base.version, "{summary}");
        {
            let mut c = self.counters();
            count(&mut c);
            c.last_event = Some(summary);
        }
        if let Some(o) = &self.observer {
            o.live_event(&self.name, &e);
        }
    }

    /// Start a new lineage from the snapshot.
    fn restart(&mut self) {
        self.base = self.snapshot.clone();
        self.model = self.base.model.clone();
        self.epoch += 1;
        self.learned = 0;
        self.lineage = new_lineage();
        self.net.clear();
        self.open_journal();
        self.publish();
    }

    fn publish(&self) {
        let model = Arc::new(LoadedModel::new(
            &self.name,
            self.base.version,
            self.model.clone(),
        ));
        self.shared.published.store(Arc::new(Published {
            model,
            snapshot: self.snapshot.clone(),
            lineage: self.lineage.clone(),
            epoch: self.epoch,
            learned: self.learned,
        }));
    }
}

/// Every live model, one per served model with `serving: live`.
pub struct LiveHub {
    specs: HashMap<String, LiveSpec>,
    models: Mutex<HashMap<String, Arc<LiveModel>>>,
    journal_dir: Option<PathBuf>,
    observer: Option<Arc<dyn LiveObserver>>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("models", &self.specs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    /// Live serving for the models in `specs`; journals under `journal_dir` (none:
    /// answers cannot be replayed).
    pub fn new(
        specs: HashMap<String, LiveSpec>,
        journal_dir: Option<PathBuf>,
        observer: Option<Arc<dyn LiveObserver>>,
    ) -> Self {
        Self {
            specs,
            models: Mutex::new(HashMap::new()),
            journal_dir,
            observer,
        }
    }

    /// Whether `model` is served live.
    pub fn is_live(&self, model: &str) -> bool {
        self.specs.contains_key(model)
    }

    pub fn journal_dir(&self) -> Option<&std::path::Path> {
        self.journal_dir.as_deref()
    }

    /// The live model answering for `champion`; a new base starts a new one. `None`
    /// when `model` is not live or its champion cannot learn online.
    pub fn for_champion(&self, model: &str, champion: &Arc<LoadedModel>) -> Option<Arc<LiveModel>> {
        let spec = self.specs.get(model)?;
        let mut map = self.models.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(model) {
            let current = m.champion.load();
            if Arc::ptr_eq(&current, champion) || current.version == champion.version {
                return Some(m.clone());
            }
        }
        if champion.model.is_batch() {
            return None;
        }
        // Judged only when the live state can answer for the new champion as it is: the
        // same inputs, the same classes in the same order (answers are rendered and
        // counted by the champion's), and a newer version — a rollback to an older one
        // is the rollout's verdict and takes effect at once.
        if spec.rebase == Rebase::Judged
            && let Some(m) = map.get(model)
            && let current = m.champion.load()
            && champion.version > current.version
            && current.input == champion.input
            && m.shared.published.load().model.classes == champion.classes
            && m.new_snapshot(champion)
        {
            tracing::info!(
                model,
                snapshot = champion.version,
                "live learner judges a new snapshot"
            );
            return Some(m.clone());
        }
        let (first_epoch, pending) = match map.get(model) {
            Some(old) => {
                old.stop();
                let epoch = old.shared.published.load().epoch.saturating_add(1);
                // Kept rows are laid out by the old base's inputs; they carry over only
                // when the new base reads the same ones.
                let pending = if old.champion.load().input == champion.input {
                    std::mem::take(&mut *old.pending.lock().unwrap_or_else(|e| e.into_inner()))
                } else {
                    Pending::default()
                };
                (epoch, pending)
            }
            None => (0, Pending::default()),
        };
        let live = LiveModel::start(
            model,
            spec.clone(),
            champion.clone(),
            self.journal_dir.clone(),
            self.observer.clone(),
            first_epoch,
            pending,
        );
        if let Some(old) = map.get(model) {
            // Labels the old learner was handed count as learnt for `x-live-after`: the
            // new base answers from here on.
            let mut recent =
                std::mem::take(&mut *old.recent.lock().unwrap_or_else(|e| e.into_inner()));
            recent.seq.values_mut().for_each(|v| *v = 0);
            *live.recent.lock().unwrap_or_else(|e| e.into_inner()) = recent;
        }
        map.insert(model.to_string(), live.clone());
        drop(map);
        let e = LiveEvent::Rebased {
            base: champion.version,
        };
        tracing::info!(
            model,
            base = champion.version,
            "live learner starts from a new base"
        );
        if let Some(o) = &self.observer {
            o.live_event(model, &e);
        }
        Some(live)
    }

    /// The live model of `model` as it stands (no rebase).
    pub fn get(&self, model: &str) -> Option<Arc<LiveModel>> {
        self.models
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
            .cloned()
    }

    pub fn status(&self, model: &str) -> Option<LiveStatus> {
        self.get(model).map(|m| m.status())
    }

    /// Wait until the label fed back for `id` is learnt and answering (see
    /// [`LiveModel::label_learnt`]), at most `timeout`; `false` when it was not. A
    /// label not seen at all is waited for only briefly (its call may still be on the
    /// way), and a model that is not live is not waited for.
    pub async fn wait_for_label(
        &self,
        model: &str,
        id: &str,
        timeout: std::time::Duration,
    ) -> bool {
        let started = tokio::time::Instant::now();
        loop {
            let Some(m) = self.get(model) else {
                return false;
            };
            let state = m.label_learnt(id);
            if state == Some(true) {
                return true;
            }
            let waited = started.elapsed();
            if waited >= timeout || (state.is_none() && waited >= UNSEEN_LABEL_WAIT) {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        }
    }
}

/// How long [`LiveHub::wait_for_label`] waits for a label it has not seen.
const UNSEEN_LABEL_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Answer an invocation body as the live state `lineage` answered after learning
/// `learned` rows: its base version from the registry plus its journal, replayed. The
/// answer is rendered as `/invocations` renders it.
///
/// # Errors
/// [`ServeError::BadRequest`] for an unknown lineage, one that learnt fewer rows, or a
/// body the base version cannot read; registry and load failures as such.
#[allow(clippy::too_many_arguments)]
pub fn replay_answer(
    store: &dyn freshet_registry::Store,
    artifacts: &dyn freshet_registry::artifacts::ArtifactStore,
    journal_dir: &std::path::Path,
    model: &str,
    lineage: &str,
    learned: u64,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, crate::ServeError> {
    use crate::ServeError;
    let (header, entries) =
        journal::read(journal_dir, model, lineage, learned).map_err(|e| match e {
            journal::JournalError::NoLineage(_) | journal::JournalError::TooFew { .. } => {
                ServeError::BadRequest(e.to_string())
            }
            other => ServeError::Load {
                name: model.to_string(),
                version: 0,
                reason: other.to_string(),
            },
        })?;
    let base = crate::loader::load_version(store, artifacts, model, header.base)?;
    let replayed = LoadedModel::new(model, header.base, journal::replay(&base, &entries));
    let limits = crate::formats::Limits::default();
    let req = crate::formats::parse_invocations(content_type, body, replayed.columns(), &limits)
        .map_err(|e| ServeError::BadRequest(e.to_string()))?;
    let (preds, _) = crate::service::predict_rows(&replayed, &replayed.input, &req.rows)?;
    let request_id = format!("replay-{lineage}-{learned}");
    Ok(crate::formats::render_invocations(
        &crate::formats::ScoringAnswer {
            request_id: &request_id,
            client_request_id: req.client_request_id.as_deref(),
            model,
            version: header.base,
            classes: &replayed.classes,
            predictions: &preds,
        },
    ))
}
