//! One model's loop: watch the triggers, run one training job at a time, gate the
//! candidate, hand it to the rollout. State goes to the registry before and after every
//! job, so a restart picks an interrupted job up on the same pinned table version and
//! never registers or promotes the same job twice.

use crate::drift_watch::DriftWatch;
use crate::error::{ControlError, Result};
use crate::errors::ErrorStream;
use crate::gates::{self, GateReport};
use crate::job;
use crate::online::{OnlineLearner, THROUGH_TAG};
use crate::state::{self, ControlState, JobRecord, JobState};
pub use crate::triggers::Signals;
use freshet_core::model_spec::JobSpec;
use freshet_core::{ModelSpec, Schema};
use freshet_lake::{Lake, Table};
use freshet_learn::features::SchemaRow;
use freshet_learn::train::score_rows;
use freshet_registry::artifacts::ArtifactStore;
use freshet_registry::model::Tag;
use freshet_registry::{RegistryError, Store};
use freshet_serve::rollout::{RolloutController, load_state};
use std::sync::Arc;

/// What the loop shares with the rest of the process.
#[derive(Clone)]
pub struct LoopDeps {
    pub store: Arc<dyn Store>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub lake: Lake,
    pub rollout: Arc<RolloutController>,
    /// Handed to external training commands as `MLFLOW_TRACKING_URI`.
    pub tracking_uri: String,
    /// When authentication is on: mints a short-lived token (model, job id, lifetime in
    /// seconds) handed to the external training command as `MLFLOW_TRACKING_TOKEN`.
    pub job_token: Option<JobTokenMinter>,
}

/// Mints a tracking token for one external job: (model, job id, lifetime seconds).
pub type JobTokenMinter = Arc<dyn Fn(&str, &str, u64) -> Option<String> + Send + Sync>;

/// Something the loop did, for logs and the demo's narrative.
#[derive(Debug, Clone, PartialEq)]
pub enum LoopEvent {
    DriftDetected {
        rows: u64,
        reason: String,
    },
    Coalesced {
        reason: String,
    },
    Trained {
        version: i64,
        trigger: String,
        table_version: i64,
        train_rows: u64,
        metrics: Vec<(String, f64)>,
        gates: GateReport,
        /// `first champion`, `rollout started` or `rejected by the gates`.
        outcome: String,
    },
    JobFailed {
        reason: String,
    },
    /// A drift ended the rollout of a version trained before it: rolled back from
    /// shadow or canary, or its bake cut short (`outcome` is the phase it ended in).
    RolloutSuperseded {
        version: i64,
        outcome: String,
    },
    /// The champion's served traffic was tested against its reference profile.
    Monitored {
        version: i64,
        report: Box<freshet_monitor::DriftReport>,
    },
    /// The champion's accuracy over its most recent labelled predictions.
    LiveAccuracy {
        version: i64,
        accuracy: f64,
        labelled: u64,
    },
}

/// The loop of one model.
pub struct ModelLoop {
    pub name: String,
    spec: ModelSpec,
    schema: Schema,
    deps: LoopDeps,
    errors: ErrorStream,
    drift: DriftWatch,
    /// `inference/<model>` and the version read through.
    captured: Option<Table>,
    captured_seen: Option<i64>,
    /// The last online-learning failure said, so it is said once.
    online_error: Option<String>,
    /// The live learner of an online job (built on first use, rebuilt after a restart).
    online: Option<OnlineLearner>,
    table: Option<Arc<Table>>,
    /// The champion the error stream grades; a new one starts a new stream.
    champion_seen: Option<i64>,
}

/// Commits of `inference/<model>` read back after a start: predictions made shortly
/// before a restart can still meet their labels, without reading months of history.
pub const CAPTURE_REPLAY_COMMITS: i64 = 1_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ModelLoop {
    /// `schema` is the stream table's schema (what models are resolved against).
    pub fn new(name: &str, spec: ModelSpec, schema: Schema, deps: LoopDeps) -> Self {
        let errors = ErrorStream::new(name, &spec.triggers.concept_drift);
        let drift = DriftWatch::new(name, &spec.monitor);
        Self {
            name: name.to_string(),
            spec,
            schema,
            deps,
            errors,
            drift,
            captured: None,
            captured_seen: None,
            online_error: None,
            online: None,
            table: None,
            champion_seen: None,
        }
    }

    async fn table(&mut self) -> Result<Arc<Table>> {
        if let Some(t) = &self.table {
            return Ok(t.clone());
        }
        let url = self
            .deps
            .lake
            .url_for(freshet_lake::TableKind::Events, &self.spec.stream)?;
        let t = Arc::new(Table::open(url).await?);
        self.table = Some(t.clone());
        Ok(t)
    }

    /// Bring the online learner up to table version `upto`: resume it if needed, read
    /// what arrived, learn it on the blocking pool.
    async fn learn_online(&mut self, upto: i64, holdout_rows: u64) -> Result<()> {
        let table = self.table().await?;
        let mut learner = match self.online.take() {
            Some(l) => l,
            None => OnlineLearner::resume(
                self.deps.store.as_ref(),
                self.deps.artifacts.as_ref(),
                &self.name,
                &self.spec,
                &self.schema,
                usize::try_from(holdout_rows).unwrap_or(usize::MAX),
            )?,
        };
        loop {
            // A bounded number of commits at a time: a long backlog (a fresh learner
            // on an old table) is never held in memory whole.
            let step = learner.through.map_or(upto, |t| {
                t.saturating_add(crate::online::CHUNK_COMMITS).min(upto)
            });
            let (rows, version) = match learner.fetch(&table, &self.schema, Some(step)).await {
                Ok(r) => r,
                Err(e) => {
                    self.online = Some(learner);
                    return Err(e);
                }
            };
            let schema = self.schema.clone();
            // A panic while learning loses the live model; the next tick resumes it
            // from its last snapshot.
            learner = tokio::task::spawn_blocking(move || {
                learner.learn(&schema, rows, version);
                learner
            })
            .await
            .map_err(|e| ControlError::Job {
                model: self.name.clone(),
                reason: format!("online learning stopped: {e}"),
            })?;
            if learner.through.is_none_or(|t| t >= upto) {
                break;
            }
        }
        self.online = Some(learner);
        Ok(())
    }

    /// The rows captured to `inference/<model>` since the last tick, in commit order.
    /// The first read after a start goes back [`CAPTURE_REPLAY_COMMITS`] commits, not
    /// to the beginning of the table.
    async fn read_captured(
        &mut self,
    ) -> Result<Vec<freshet_lake::arrow::record_batch::RecordBatch>> {
        if self.captured.is_none() {
            let schema = freshet_serve::capture::inference_schema();
            let open = freshet_serve::feedback::open_table;
            self.captured = Some(
                open(
                    &self.deps.lake,
                    &format!("inference/{}", self.name),
                    &schema,
                )
                .await?,
            );
        }
        let Some(t) = &self.captured else {
            return Ok(Vec::new());
        };
        let from = match self.captured_seen {
            Some(v) => Some(v),
            None => {
                let latest = t.info(None).await?.version;
                Some(latest - CAPTURE_REPLAY_COMMITS).filter(|v| *v >= 0)
            }
        };
        let (batches, upto) = t.read_new(from, None).await?;
        self.captured_seen = Some(upto);
        Ok(batches)
    }

    fn champion(&self) -> Result<Option<i64>> {
        let store = self.deps.store.as_ref();
        Ok(freshet_serve::router::alias_version(
            store, &self.name, "champion",
        )?)
    }

    /// One step of the loop.
    pub async fn tick(&mut self) -> Result<Vec<LoopEvent>> {
        let mut events = Vec::new();
        let store = self.deps.store.clone();
        // The loop's and the rollout's state are both tags of the registered model:
        // read it once a tick.
        let tags = match store.get_registered_model(&self.name) {
            Ok(m) => m.tags,
            Err(RegistryError::NotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut st = state::from_tags(&self.name, &tags)?;
        if let Some(job) = st.job.clone() {
            tracing::info!(model = %self.name, job = %job.id, "resuming an interrupted training job");
            events.extend(self.run(&mut st, job).await);
            return Ok(events);
        }
        let Ok(table) = self.table().await else {
            // No data yet.
            return Ok(events);
        };
        let info = table.info(None).await?;
        if let JobSpec::Online { holdout_rows } = self.spec.job
            && let Err(e) = self.learn_online(info.version, holdout_rows).await
        {
            // Monitoring and the other triggers go on; the failure is said once.
            let reason = format!("online learning: {e}");
            tracing::warn!(model = %self.name, error = %e, "online learning failed");
            if self.online_error.as_deref() != Some(reason.as_str()) {
                self.online_error = Some(reason.clone());
                events.push(LoopEvent::JobFailed { reason });
            }
        } else {
            self.online_error = None;
        }
        let champion = self.champion()?;
        let has_champion = champion.is_some();
        if champion != self.champion_seen {
            // A new champion: its accuracy is counted afresh. The detector keeps its
            // window — a champion promoted just as the data changed must not hide the
            // change — and only a rise of the error rate counts as a drift.
            self.errors.follow(champion);
            self.champion_seen = champion;
        }
        // The captured predictions are read once a tick, for the error stream (only
        // with a detector or an accuracy floor) and the drift watch (with a champion).
        let want_errors = ErrorStream::wanted(
            &self.spec.triggers.concept_drift,
            self.spec.triggers.min_accuracy,
        );
        let mut errors = Default::default();
        if want_errors || champion.is_some() {
            let captured = self.read_captured().await?;
            // Holding every captured row for its label is CPU work proportional to
            // traffic: it runs on the blocking pool, never on a thread that serves.
            let mut held =
                std::mem::replace(&mut self.errors, ErrorStream::new(&self.name, "none"));
            let mut drift = std::mem::replace(
                &mut self.drift,
                DriftWatch::new(&self.name, &self.spec.monitor),
            );
            let (store_b, artifacts_b) = (store.clone(), self.deps.artifacts.clone());
            let (held, drift, absorbed) = tokio::task::spawn_blocking(move || {
                let absorbed = if want_errors {
                    held.absorb_predictions(&captured)
                } else {
                    Ok(())
                };
                if let Some(v) = champion {
                    drift.absorb(
                        store_b.as_ref(),
                        artifacts_b.as_ref(),
                        v,
                        &captured,
                        now_ms(),
                    );
                }
                (held, drift, absorbed)
            })
            .await
            .map_err(|e| {
                // A panic lost both: they start afresh (the detector with no history).
                self.errors = ErrorStream::new(&self.name, &self.spec.triggers.concept_drift);
                self.drift = DriftWatch::new(&self.name, &self.spec.monitor);
                ControlError::Job {
                    model: self.name.clone(),
                    reason: format!("reading captured predictions stopped: {e}"),
                }
            })?;
            self.errors = held;
            self.drift = drift;
            absorbed?;
            if want_errors {
                errors = self.errors.poll_labels(&self.deps.lake).await?;
                if errors.unmatched > 0 {
                    tracing::debug!(
                        model = %self.name,
                        labels = errors.unmatched,
                        "labels let go: no champion answer held for them"
                    );
                }
            }
        }
        let mut rollout_active = freshet_serve::rollout::state_from_tags(&self.name, &tags)
            .ok()
            .flatten()
            .is_some_and(|s| s.phase.is_active());
        if let (Some(v), Some(accuracy)) = (champion, errors.accuracy)
            && errors.labelled > 0
        {
            events.push(LoopEvent::LiveAccuracy {
                version: v,
                accuracy,
                labelled: self.errors.champion_labelled,
            });
        }
        let monitored = champion.and_then(|_| self.drift.test(now_ms()));
        let mut data_drift = None;
        if let Some((version, report)) = monitored {
            if report.dataset.drifted {
                let drifted = report.drifted_features();
                data_drift = Some(format!(
                    "data drift ({} of {} features on the last {} served rows: {})",
                    report.dataset.drifted_columns,
                    report.dataset.columns,
                    report.window_rows,
                    drifted.join(", ")
                ));
            }
            events.push(LoopEvent::Monitored {
                version,
                report: Box::new(report),
            });
        }
        let data_drift = data_drift.filter(|_| self.spec.triggers.data_drift);
        let drift_reason = if errors.drift {
            Some(format!(
                "concept drift ({} on the live error stream)",
                self.spec.triggers.concept_drift
            ))
        } else {
            data_drift.clone()
        };
        // A drift during a rollout is recorded too: whatever is on trial was trained
        // before it, and the next job must learn from the new concept only.
        if let Some(reason) = drift_reason
            && has_champion
            && st.drift_at_rows.is_none()
        {
            // The detector saw the change some labelled rows ago: start the new
            // concept there (never before the current concept's own start).
            st.drift_at_rows = Some(
                info.rows
                    .saturating_sub(errors.since_change)
                    .max(st.concept_start_rows.unwrap_or(0)),
            );
            st.drift_reason = Some(reason.clone());
            st.drift_retries = 0;
            state::save(store.as_ref(), &self.name, &st)?;
            events.push(LoopEvent::DriftDetected {
                rows: info.rows,
                reason: reason.clone(),
            });
            // The version on trial was trained before the drift, on at most a few rows
            // of the new concept: its rollout would only hold the retraining up.
            // A candidate that is itself the answer to an earlier drift stays on trial:
            // on a stream that keeps drifting, superseding it would leave the stale
            // champion in place for good.
            let at = st.drift_at_rows.unwrap_or(info.rows);
            let answers_a_drift = st
                .history
                .last()
                .is_some_and(|j| j.trigger.contains("drift"));
            if rollout_active
                && !answers_a_drift
                && st.trained_rows < at + self.spec.triggers.rows_after_drift
            {
                let why = format!("superseded: {reason} after this version was trained");
                match self
                    .deps
                    .rollout
                    .supersede(store.as_ref(), &self.name, &why, now_ms())
                {
                    Ok(Some(state)) => {
                        rollout_active = false;
                        events.push(LoopEvent::RolloutSuperseded {
                            version: state.candidate_version,
                            outcome: state.phase.to_string(),
                        });
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(model = %self.name, error = %e, "cannot end the rollout of a version trained before the drift");
                    }
                }
            }
        }
        let signals = Signals {
            table_version: info.version,
            table_rows: info.rows,
            concept_drift: errors.drift,
            data_drift: data_drift.is_some(),
            champion_accuracy: errors.accuracy,
            has_champion,
            now_ms: now_ms(),
        };
        let due = crate::triggers::due(&self.spec.triggers, &st, &signals).or_else(|| {
            // A trigger that fired during the last job or rollout runs now — unless a
            // drift came since, whose own trigger waits for rows of the new concept.
            st.pending.clone().filter(|_| {
                st.trained_table_version != Some(info.version) && st.drift_at_rows.is_none()
            })
        });
        let Some(reason) = due else {
            return Ok(events);
        };
        if rollout_active {
            // Remembered once: the same trigger re-fires every tick with a new row
            // count, which is no news.
            if st.pending.is_none() {
                st.pending = Some(reason.clone());
                state::save(store.as_ref(), &self.name, &st)?;
                events.push(LoopEvent::Coalesced { reason });
            }
            return Ok(events);
        }
        let job = JobState {
            id: uuid::Uuid::new_v4().simple().to_string(),
            trigger: reason,
            table_version: info.version,
            skip_rows: st.drift_at_rows.or(st.concept_start_rows),
            started_ms: now_ms(),
        };
        st.job = Some(job.clone());
        st.pending = None;
        state::save(store.as_ref(), &self.name, &st)?;
        events.extend(self.run(&mut st, job).await);
        Ok(events)
    }

    /// Run `job` to the end and record it; failures are recorded, not retried in a loop.
    async fn run(&mut self, st: &mut ControlState, job: JobState) -> Vec<LoopEvent> {
        let outcome = self.run_inner(&job).await;
        let store = self.deps.store.clone();
        let table_rows = match self.table().await {
            Ok(t) => t
                .info(Some(job.table_version))
                .await
                .map(|i| i.rows)
                .unwrap_or(0),
            Err(_) => 0,
        };
        let (event, version, text) = match outcome {
            Ok(ev) => {
                let (v, text) = match &ev {
                    LoopEvent::Trained {
                        version, outcome, ..
                    } => (Some(*version), outcome.clone()),
                    _ => (None, String::new()),
                };
                (ev, v, text)
            }
            Err(e) => {
                tracing::warn!(model = %self.name, error = %e, "training job failed");
                let reason = e.to_string();
                (
                    LoopEvent::JobFailed {
                        reason: reason.clone(),
                    },
                    None,
                    format!("failed: {reason}"),
                )
            }
        };
        st.record(JobRecord {
            id: job.id.clone(),
            trigger: job.trigger.clone(),
            table_version: job.table_version,
            started_ms: job.started_ms,
            finished_ms: now_ms(),
            version,
            outcome: text,
        });
        st.job = None;
        st.trained_rows = table_rows;
        st.trained_table_version = Some(job.table_version);
        st.trained_ms = now_ms();
        let rejected = matches!(&event, LoopEvent::Trained { gates, .. } if !gates.passed);
        let answered = st.drift_reason.take();
        if let Some(at) = st.drift_at_rows.take() {
            st.concept_start_rows = Some(at);
        }
        match answered {
            // The answer to a drift failed its gates: too few rows of the new concept,
            // or the drift point placed among the old one. Left there, the stale
            // champion would serve until the next drift; train again once as many
            // rows again have come, on those rows only (the new concept for sure).
            Some(why) if rejected && st.drift_retries < state::MAX_DRIFT_RETRIES => {
                st.drift_retries += 1;
                st.drift_at_rows = Some(table_rows);
                // The drift's own reason; the trigger says which retry this is.
                st.drift_reason = Some(why);
                tracing::info!(model = %self.name, retry = st.drift_retries, from_rows = table_rows, "drift answer rejected; training again on newer rows");
            }
            _ => st.drift_retries = 0,
        }
        // The detector is not reset here: the champion has not changed, and its
        // error stream goes on (across champions too; see `tick`).
        if let Err(e) = state::save(store.as_ref(), &self.name, st) {
            tracing::error!(model = %self.name, error = %e, "cannot save the controller state");
        }
        vec![event]
    }

    async fn run_inner(&mut self, job: &JobState) -> Result<LoopEvent> {
        let table = self.table().await?;
        let store = self.deps.store.clone();
        // Registered before a restart: that version is judged, never trained again.
        let registered = job::already_registered(store.as_ref(), &self.name, &job.id)?;
        let (version, metrics, train_rows, gates_report) = match self.spec.job.clone() {
            JobSpec::Builtin { window_rows, .. } => {
                let (version, model, metrics, rows, split, train_rows) = match registered {
                    // Registered before a restart: judge that version, don't train again.
                    Some(v) => {
                        let loaded = freshet_serve::loader::load_version(
                            store.as_ref(),
                            self.deps.artifacts.as_ref(),
                            &self.name,
                            v,
                        )?;
                        let rows = job::window(&table, &self.schema, job, window_rows).await?;
                        let resolved_holdout = self.spec.holdout;
                        let split =
                            freshet_learn::train::holdout_start(rows.len(), resolved_holdout);
                        let records: Vec<SchemaRow<'_>> = rows[split..]
                            .iter()
                            .map(|r| SchemaRow::new(&self.schema, r))
                            .collect();
                        let (_, metrics) = score_rows(&loaded.model, &records, "holdout");
                        drop(records);
                        (v, loaded.model, metrics, rows, split, split as u64)
                    }
                    None => {
                        let c = job::run_builtin(
                            store.clone(),
                            self.deps.artifacts.clone(),
                            &table,
                            &self.schema,
                            &self.name,
                            &self.spec,
                            job,
                            window_rows,
                        )
                        .await?;
                        let train_rows = c.outcome.train_rows;
                        (
                            c.published.version,
                            c.outcome.model,
                            c.outcome.metrics,
                            c.rows,
                            c.split,
                            train_rows,
                        )
                    }
                };
                let champion = self.champion_model(version);
                let report = gates::judge(
                    &self.spec.gates,
                    &model,
                    &metrics,
                    champion.as_ref().map(|c| &c.model),
                    &self.schema,
                    &rows[split..],
                );
                (version, metrics, train_rows, report)
            }
            JobSpec::Online { holdout_rows } => {
                match registered {
                    // Registered before a restart: the snapshot's own logged metrics are
                    // all there is to judge (its answers were not kept).
                    Some(version) => {
                        let metrics = self.run_metrics(version)?;
                        let report = gates::judge_metrics(&self.spec.gates, &metrics);
                        (version, metrics, 0, report)
                    }
                    None => {
                        self.learn_online(job.table_version, holdout_rows).await?;
                        let snap = self
                            .online
                            .as_mut()
                            .and_then(|l| l.snapshot(&self.schema))
                            .ok_or_else(|| ControlError::Job {
                                model: self.name.clone(),
                                reason: "the online learner has learnt nothing yet".into(),
                            })?;
                        let lineage = job::stream_lineage(
                            &self.spec,
                            &table,
                            snap.through,
                            snap.outcome.train_rows,
                        );
                        let [job_id, trigger] = job::job_tags(job);
                        let tags = [
                            job_id,
                            trigger,
                            Tag {
                                key: THROUGH_TAG.into(),
                                value: snap.through.to_string(),
                            },
                        ];
                        let published = crate::publish::publish_tagged(
                            store.as_ref(),
                            self.deps.artifacts.as_ref(),
                            &self.name,
                            &snap.outcome,
                            &lineage,
                            now_ms(),
                            &tags,
                        )?;
                        let champion = self.champion_model(published.version);
                        // A champion snapshotted from this same learner has learnt the
                        // older of the kept rows: compare both on the rows it never saw.
                        let same_lineage = champion.as_ref().is_some_and(|c| {
                            store
                                .get_model_version(&self.name, c.version)
                                .is_ok_and(|v| v.tags.iter().any(|t| t.key == THROUGH_TAG))
                        });
                        let (holdout, gate_metrics) = match &champion {
                            Some(c) if same_lineage => {
                                let seen = c.model.metadata().training_rows;
                                snap.unseen_by(seen, &self.schema)
                            }
                            _ => (snap.rows(), snap.outcome.metrics.clone()),
                        };
                        let report = gates::judge(
                            &self.spec.gates,
                            &snap.outcome.model,
                            &gate_metrics,
                            champion.as_ref().map(|c| &c.model),
                            &self.schema,
                            &holdout,
                        );
                        (
                            published.version,
                            snap.outcome.metrics,
                            snap.outcome.train_rows,
                            report,
                        )
                    }
                }
            }
            JobSpec::Command {
                command,
                timeout_secs,
            } => {
                let version = match registered {
                    Some(v) => v,
                    None => {
                        let token = self
                            .deps
                            .job_token
                            .as_ref()
                            .and_then(|mint| mint(&self.name, &job.id, timeout_secs + 300));
                        job::run_command(
                            store.as_ref(),
                            &self.name,
                            &command,
                            timeout_secs,
                            table.url().as_str(),
                            job,
                            &self.deps.tracking_uri,
                            token.as_deref(),
                        )
                        .await?
                    }
                };
                let metrics = self.run_metrics(version)?;
                // No holdout rows here: only the absolute gates can be judged.
                let report = gates::judge_metrics(&self.spec.gates, &metrics);
                (version, metrics, 0, report)
            }
        };
        let now = now_ms();
        // A job resumed after a crash may have handed its version over already.
        let champion_now = self.champion()?;
        let in_rollout = load_state(store.as_ref(), &self.name)
            .ok()
            .flatten()
            .is_some_and(|s| s.candidate_version == version);
        let outcome = if champion_now == Some(version) {
            "champion (handed over before a restart)".to_string()
        } else if in_rollout {
            "rollout started (before a restart)".to_string()
        } else if !gates_report.passed {
            let _ = store.set_model_version_tag(
                &self.name,
                version,
                &Tag {
                    key: "freshet.gates".into(),
                    value: format!("failed: {}", gates_report.lines.join("; "))
                        .chars()
                        .take(8000)
                        .collect(),
                },
            );
            "rejected by the gates".to_string()
        } else if champion_now.is_some() {
            self.deps
                .rollout
                .start(store.as_ref(), &self.name, version, now)?;
            "rollout started".to_string()
        } else {
            store.set_alias(&self.name, "champion", version)?;
            "first champion".to_string()
        };
        let _ = store.set_model_version_tag(
            &self.name,
            version,
            &Tag {
                key: "freshet.gates".into(),
                value: if gates_report.passed {
                    "passed".into()
                } else {
                    "failed".into()
                },
            },
        );
        Ok(LoopEvent::Trained {
            version,
            trigger: job.trigger.clone(),
            table_version: job.table_version,
            train_rows,
            metrics,
            gates: gates_report,
            outcome,
        })
    }

    /// The champion, loaded, unless it is `candidate` itself.
    fn champion_model(&self, candidate: i64) -> Option<freshet_serve::loader::LoadedModel> {
        let store = self.deps.store.as_ref();
        match store.get_version_by_alias(&self.name, "champion") {
            Ok(v) if v.version != candidate => freshet_serve::loader::load_version(
                store,
                self.deps.artifacts.as_ref(),
                &self.name,
                v.version,
            )
            .ok(),
            _ => None,
        }
    }

    /// The metrics logged by the run behind `version`.
    fn run_metrics(&self, version: i64) -> Result<Vec<(String, f64)>> {
        let store = self.deps.store.as_ref();
        let v = store.get_model_version(&self.name, version)?;
        let run = store.get_run(&v.run_id)?;
        Ok(run
            .data
            .metrics
            .iter()
            .map(|m| (m.key.clone(), m.value))
            .collect())
    }
}

impl std::fmt::Debug for ModelLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelLoop")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
