//! The monitoring view of the running loops: per model, the latest drift report of the
//! champion's served traffic and its live accuracy on labels (for the management API),
//! the same as Prometheus series, and alerts — de-duplicated — to webhooks.

use freshet_control::controller::LoopEvent;
use freshet_core::FreshetConfig;
use freshet_monitor::DriftReport;
use freshet_monitor::alerts::{Alert, Deduplicator};
use freshet_serve::rollout::Transition;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Alerts kept per model for the API.
const RECENT_ALERTS: usize = 20;
/// Alerts queued for delivery before new ones are dropped (and counted).
const ALERT_QUEUE: usize = 1_024;

/// The latest drift test of a model's champion.
#[derive(Debug, Clone, Serialize)]
pub struct DriftSnapshot {
    pub version: i64,
    pub at_ms: i64,
    #[serde(flatten)]
    pub report: DriftReport,
}

/// The champion's accuracy over its most recent labelled predictions.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracySnapshot {
    pub version: i64,
    pub accuracy: f64,
    /// This champion's predictions labelled so far.
    pub labelled: u64,
    pub at_ms: i64,
}

/// What monitoring knows of one model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelHealth {
    pub drift: Option<DriftSnapshot>,
    pub live_accuracy: Option<AccuracySnapshot>,
    /// The most recent alerts, newest last.
    pub alerts: VecDeque<Alert>,
}

struct Series {
    drift_score: GaugeVec,
    drift_detected: GaugeVec,
    drift_share: GaugeVec,
    prediction_drift: GaugeVec,
    accuracy: GaugeVec,
    alerts: IntCounterVec,
    /// 1 while a live model's learner answers, 0 while its snapshot does.
    live_mode: GaugeVec,
    live_fallbacks: IntCounterVec,
}

/// Shared by the loops (writers) and the HTTP handlers (readers).
pub struct Monitoring {
    board: RwLock<HashMap<String, ModelHealth>>,
    series: Series,
    dedup: Mutex<Deduplicator>,
    /// Accuracy floors per model (`triggers.min_accuracy`; 0 is off).
    min_accuracy: HashMap<String, f64>,
    outbox: Option<mpsc::Sender<Alert>>,
    /// The drift series set for each model at its last test, removed before the next
    /// (a column's method can change; a skipped column must not keep an old verdict).
    exported: Mutex<HashMap<String, Vec<Exported>>>,
}

/// One label set of a drift series.
type Exported = (DriftSeries, Vec<String>);

/// Which drift series a label set belongs to.
#[derive(Debug, Clone, Copy)]
enum DriftSeries {
    Score,
    Detected,
    Prediction,
}

impl std::fmt::Debug for Monitoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitoring").finish_non_exhaustive()
    }
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<GaugeVec, prometheus::Error> {
    let g = GaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Monitoring {
    /// Register the series and, with webhooks configured, start the delivery task
    /// (must run inside a Tokio runtime).
    ///
    /// # Errors
    /// A series already registered in `registry`.
    pub fn new(registry: &Registry, config: &FreshetConfig) -> Result<Self, prometheus::Error> {
        let alerts = IntCounterVec::new(
            Opts::new(
                "freshet_alerts_total",
                "Alerts by model, kind and outcome (sent, failed, dropped, folded)",
            ),
            &["model", "kind", "outcome"],
        )?;
        registry.register(Box::new(alerts.clone()))?;
        let series = Series {
            drift_score: gauge(
                registry,
                "freshet_drift_score",
                "Drift test score of each feature of the champion's served traffic against its reference profile (a p-value or a distance, see `method`)",
                &["model", "column", "method"],
            )?,
            drift_detected: gauge(
                registry,
                "freshet_drift_detected",
                "1 when the column drifted in the last test (`dataset` for the dataset verdict, `prediction` for prediction drift)",
                &["model", "column"],
            )?,
            drift_share: gauge(
                registry,
                "freshet_drift_share",
                "Share of the champion's features that drifted in the last test",
                &["model"],
            )?,
            prediction_drift: gauge(
                registry,
                "freshet_prediction_drift_score",
                "Drift score of the champion's predictions against its reference profile",
                &["model", "method"],
            )?,
            accuracy: gauge(
                registry,
                "freshet_live_accuracy",
                "The champion's accuracy over its most recent labelled predictions",
                &["model"],
            )?,
            alerts: alerts.clone(),
            live_mode: gauge(
                registry,
                "freshet_live_mode",
                "1 while a live model's learner answers, 0 while it has fallen back to its snapshot",
                &["model"],
            )?,
            live_fallbacks: {
                let c = IntCounterVec::new(
                    Opts::new(
                        "freshet_live_fallbacks_total",
                        "Times a live model's safety net sent traffic back to its snapshot",
                    ),
                    &["model"],
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
        };
        let outbox = (!config.alerts.webhooks.is_empty()).then(|| {
            let (tx, rx) = mpsc::channel(ALERT_QUEUE);
            tokio::spawn(deliver(
                rx,
                config.alerts.webhooks.clone(),
                Duration::from_millis(config.alerts.timeout_ms),
                alerts,
            ));
            tx
        });
        Ok(Self {
            board: RwLock::new(HashMap::new()),
            series,
            dedup: Mutex::new(Deduplicator::new(
                i64::try_from(config.alerts.repeat_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            )),
            min_accuracy: config
                .models
                .iter()
                .map(|(n, m)| (n.clone(), m.triggers.min_accuracy))
                .collect(),
            outbox,
            exported: Mutex::new(HashMap::new()),
        })
    }

    /// What monitoring knows of `model` (nothing before its first test or label).
    pub fn health(&self, model: &str) -> ModelHealth {
        self.board
            .read()
            .ok()
            .and_then(|b| b.get(model).cloned())
            .unwrap_or_default()
    }

    fn with_health(&self, model: &str, f: impl FnOnce(&mut ModelHealth)) {
        if let Ok(mut b) = self.board.write() {
            f(b.entry(model.to_string()).or_default());
        }
    }

    /// Account for what a loop did.
    pub fn observe_loop(&self, model: &str, e: &LoopEvent) {
        let now = now_ms();
        match e {
            LoopEvent::Monitored { version, report } => {
                self.export_drift(model, report);
                let drifted = report.drifted_features();
                let summary = format!(
                    "{} of {} features drifted on the last {} rows served by version {version}{}",
                    report.dataset.drifted_columns,
                    report.dataset.columns,
                    report.window_rows,
                    if drifted.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", drifted.join(", "))
                    }
                );
                self.condition(model, "data_drift", report.dataset.drifted, &summary, now);
                self.with_health(model, |h| {
                    h.drift = Some(DriftSnapshot {
                        version: *version,
                        at_ms: now,
                        report: (**report).clone(),
                    });
                });
            }
            LoopEvent::LiveAccuracy {
                version,
                accuracy,
                labelled,
            } => {
                self.series
                    .accuracy
                    .with_label_values(&[model])
                    .set(*accuracy);
                let floor = self.min_accuracy.get(model).copied().unwrap_or(0.0);
                if floor > 0.0 {
                    let summary = format!(
                        "version {version}: accuracy {accuracy:.3} on recent labels (floor {floor:.3})"
                    );
                    self.condition(model, "low_accuracy", *accuracy < floor, &summary, now);
                }
                self.with_health(model, |h| {
                    h.live_accuracy = Some(AccuracySnapshot {
                        version: *version,
                        accuracy: *accuracy,
                        labelled: *labelled,
                        at_ms: now,
                    });
                });
            }
            LoopEvent::DriftDetected { reason, .. } => self.event(model, "drift", reason, now),
            LoopEvent::JobFailed { reason } => self.event(model, "job_failed", reason, now),
            LoopEvent::Trained { version, gates, .. } if !gates.passed => {
                let summary = format!("version {version} rejected: {}", gates.lines.join("; "));
                self.event(model, "gated_out", &summary, now);
            }
            LoopEvent::Trained { .. }
            | LoopEvent::Coalesced { .. }
            | LoopEvent::RolloutSuperseded { .. } => {}
        }
    }

    /// Account for a live learner's safety net: fallbacks and resumes are alerts (one
    /// condition, raised on a fallback and cleared on a resume).
    pub fn observe_live(&self, model: &str, e: &freshet_serve::live::LiveEvent) {
        use freshet_serve::live::LiveEvent;
        let now = now_ms();
        let summary = e.summary();
        match e {
            LiveEvent::FellBack { .. } => {
                self.series.live_fallbacks.with_label_values(&[model]).inc();
                self.series.live_mode.with_label_values(&[model]).set(0.0);
                self.condition(model, "live_fallback", true, &summary, now);
            }
            LiveEvent::Resumed { .. } => {
                self.series.live_mode.with_label_values(&[model]).set(1.0);
                self.condition(model, "live_fallback", false, &summary, now);
            }
            LiveEvent::Rebased { .. } => {
                self.series.live_mode.with_label_values(&[model]).set(1.0);
            }
            LiveEvent::Kept { .. } => {}
        }
    }

    /// Account for a rollout's step.
    pub fn observe_rollout(&self, model: &str, t: &Transition) {
        let now = now_ms();
        match t {
            Transition::Rollback(why) => self.event(model, "rollback", why, now),
            Transition::Pause(why) => self.event(model, "rollout_paused", why, now),
            Transition::AwaitApproval(request) => self.event(
                model,
                "awaiting_approval",
                &format!("the promotion waits for approval {request}"),
                now,
            ),
            Transition::Stay | Transition::Enter(_) | Transition::Promote => {}
        }
    }

    fn export_drift(&self, model: &str, report: &DriftReport) {
        let mut now: Vec<(DriftSeries, Vec<String>, f64)> = Vec::new();
        for c in &report.features {
            if let Some(d) = &c.drift {
                let labels = vec![
                    model.to_string(),
                    c.column.clone(),
                    d.method.name().to_string(),
                ];
                now.push((DriftSeries::Score, labels, d.score));
                let labels = vec![model.to_string(), c.column.clone()];
                now.push((
                    DriftSeries::Detected,
                    labels,
                    f64::from(u8::from(d.drifted)),
                ));
            }
        }
        let dataset = vec![model.to_string(), "dataset".to_string()];
        now.push((
            DriftSeries::Detected,
            dataset,
            f64::from(u8::from(report.dataset.drifted)),
        ));
        if let Some(d) = &report.prediction.drift {
            let labels = vec![model.to_string(), d.method.name().to_string()];
            now.push((DriftSeries::Prediction, labels, d.score));
            let labels = vec![model.to_string(), "prediction".to_string()];
            now.push((
                DriftSeries::Detected,
                labels,
                f64::from(u8::from(d.drifted)),
            ));
        }
        let s = &self.series;
        let vec_of = |which: DriftSeries| match which {
            DriftSeries::Score => &s.drift_score,
            DriftSeries::Detected => &s.drift_detected,
            DriftSeries::Prediction => &s.prediction_drift,
        };
        if let Ok(mut exported) = self.exported.lock() {
            for (which, labels) in exported.remove(model).unwrap_or_default() {
                let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
                let _ = vec_of(which).remove_label_values(&refs);
            }
            exported.insert(
                model.to_string(),
                now.iter().map(|(w, l, _)| (*w, l.clone())).collect(),
            );
        }
        for (which, labels, value) in &now {
            let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
            vec_of(*which).with_label_values(&refs).set(*value);
        }
        s.drift_share
            .with_label_values(&[model])
            .set(report.dataset.share);
    }

    fn condition(&self, model: &str, kind: &str, holds: bool, summary: &str, now: i64) {
        let alert = self
            .dedup
            .lock()
            .ok()
            .and_then(|mut d| d.condition(model, kind, holds, summary, now));
        self.raise(model, kind, alert, holds);
    }

    fn event(&self, model: &str, kind: &str, summary: &str, now: i64) {
        let alert = self
            .dedup
            .lock()
            .ok()
            .and_then(|mut d| d.event(model, kind, summary, now));
        self.raise(model, kind, alert, true);
    }

    fn raise(&self, model: &str, kind: &str, alert: Option<Alert>, seen: bool) {
        let Some(alert) = alert else {
            if seen {
                self.series
                    .alerts
                    .with_label_values(&[model, kind, "folded"])
                    .inc();
            }
            return;
        };
        tracing::info!(model, kind, status = ?alert.status, summary = %alert.summary, "alert");
        self.with_health(model, |h| {
            h.alerts.push_back(alert.clone());
            while h.alerts.len() > RECENT_ALERTS {
                h.alerts.pop_front();
            }
        });
        if let Some(tx) = &self.outbox
            && tx.try_send(alert).is_err()
        {
            self.series
                .alerts
                .with_label_values(&[model, kind, "dropped"])
                .inc();
        }
    }
}

/// POST each alert to every webhook; a failure is logged and counted, not retried (the
/// condition repeats after `repeat_secs` if it still holds).
async fn deliver(
    mut rx: mpsc::Receiver<Alert>,
    webhooks: Vec<String>,
    timeout: Duration,
    counter: IntCounterVec,
) {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the alert HTTP client; alerts are not sent");
            return;
        }
    };
    // A webhook URL often holds its token: logs name only its origin, and the
    // client's error is shown without the URL.
    let origins: Vec<String> = webhooks
        .iter()
        .map(|u| freshet_core::secrets::url_origin(u))
        .collect();
    while let Some(alert) = rx.recv().await {
        for (url, origin) in webhooks.iter().zip(&origins) {
            let outcome = match client.post(url).json(&alert).send().await {
                Ok(r) if r.status().is_success() => "sent",
                Ok(r) => {
                    tracing::warn!(webhook = %origin, status = %r.status(), "alert webhook refused");
                    "failed"
                }
                Err(e) => {
                    tracing::warn!(webhook = %origin, error = %e.without_url(), "alert webhook unreachable");
                    "failed"
                }
            };
            counter
                .with_label_values(&[&alert.model, &alert.kind, outcome])
                .inc();
        }
    }
}

impl freshet_serve::live::LiveObserver for Monitoring {
    fn live_event(&self, model: &str, event: &freshet_serve::live::LiveEvent) {
        self.observe_live(model, event);
    }
}
