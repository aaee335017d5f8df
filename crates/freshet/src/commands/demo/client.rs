//! The demo's simulated client: it asks the served model about each event, and sends
//! the true label later — `label_delay` events afterwards — as feedback, landing the
//! labelled event in the stream's table at the same time.

use super::Timeline;
use crate::runtime::Runtime;
use anyhow::{Context, Result, anyhow};
use freshet_core::config::GeneratorKind;
use freshet_core::{Field, FieldType, Schema, Value};
use freshet_ingest::source::generator::Generator;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value as Json, json};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Prints timestamped narrative lines above the progress bar.
#[derive(Clone)]
pub struct Narrator {
    started: Instant,
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Narrator {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            bar: Arc::new(Mutex::new(None)),
        }
    }

    pub fn say(&self, line: &str) {
        let text = format!("[{:>5.1}s] {line}", self.started.elapsed().as_secs_f64());
        match self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            // A hidden bar (output is not a terminal) prints nothing itself.
            Some(b) if !b.is_hidden() => b.println(text),
            _ => println!("{text}"),
        }
    }

    fn attach(&self, bar: ProgressBar) {
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }
}

/// Where the demo's events come from.
pub struct Stream {
    pub name: String,
    pub model: String,
    pub label: String,
    pub schema: Schema,
    /// Declared features `(field, kind)`; empty to derive them from the schema.
    pub features: Vec<(String, String)>,
    /// The event where the concept changes, when known.
    pub drift_at: Option<u64>,
    source: Source,
}

enum Source {
    Generator(Box<Generator>),
    Rows(Vec<Vec<Value>>),
}

impl Stream {
    /// A generated stream whose concept changes abruptly at `drift_at`: card
    /// transactions (the fraud pattern changes), SEA, the rotating hyperplane or
    /// Agrawal's loan functions, with `noise` the share of flipped labels.
    pub fn generated(kind: GeneratorKind, seed: u64, drift_at: u64, noise: f64) -> Self {
        let cfg = freshet_core::config::GeneratorConfig {
            kind,
            seed,
            rate_per_sec: None,
            limit: None,
            drift: vec![freshet_core::config::DriftPoint {
                at: drift_at,
                width: 0,
            }],
            noise,
            n_features: freshet_ingest::source::generator::DEFAULT_HYPERPLANE_FEATURES,
        };
        let generator = Generator::new(&cfg);
        let schema = generator.schema().clone();
        // The card stream names its features (the card number and ids are not ones);
        // the synthetic concepts use every field but the label.
        let features = if kind == GeneratorKind::Cards {
            [
                ("amount", "numeric"),
                ("merchant_category", "categorical"),
                ("country", "categorical"),
                ("channel", "categorical"),
                ("card_present", "bool"),
                ("hour", "numeric"),
                ("distance_from_home_km", "numeric"),
                ("velocity_1h", "numeric"),
                ("customer_age", "numeric"),
                ("account_age_days", "numeric"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
        } else {
            Vec::new()
        };
        let (name, model) = match kind {
            GeneratorKind::Cards => ("cards", "fraud"),
            GeneratorKind::Sea => ("sea", "sea"),
            GeneratorKind::Hyperplane => ("hyperplane", "hyperplane"),
            GeneratorKind::Agrawal => ("agrawal", "agrawal"),
        };
        Self {
            name: name.into(),
            model: model.into(),
            label: generator.label_field().to_string(),
            schema,
            features,
            drift_at: Some(drift_at),
            source: Source::Generator(Box::new(generator)),
        }
    }

    /// A CSV file with a header; numeric columns are floats, the rest strings.
    pub fn csv(path: &Path, label: &str) -> Result<Self> {
        let mut r = csv::Reader::from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers: Vec<String> = r.headers()?.iter().map(|h| h.trim().to_string()).collect();
        if !headers.iter().any(|h| h == label) {
            return Err(anyhow!(
                "no column '{label}' in {}; columns: {}",
                path.display(),
                headers.join(", ")
            ));
        }
        let records: Vec<csv::StringRecord> = r.records().collect::<std::result::Result<_, _>>()?;
        let numeric: Vec<bool> = (0..headers.len())
            .map(|i| {
                headers[i] != label
                    && records
                        .iter()
                        .take(1000)
                        .all(|rec| rec.get(i).is_some_and(|c| c.trim().parse::<f64>().is_ok()))
            })
            .collect();
        let schema = Schema::new(
            headers
                .iter()
                .zip(&numeric)
                .map(|(h, n)| {
                    let name = h
                        .to_ascii_lowercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
                    Field::new(
                        name,
                        if *n {
                            FieldType::Float
                        } else {
                            FieldType::String
                        },
                    )
                })
                .collect(),
        );
        let rows = records
            .iter()
            .map(|rec| {
                rec.iter()
                    .zip(&numeric)
                    .map(|(c, n)| match (n, c.trim().parse::<f64>()) {
                        (true, Ok(x)) => Value::Float(x),
                        _ => Value::Str(c.trim().to_string()),
                    })
                    .collect()
            })
            .collect();
        let label = label
            .to_ascii_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        Ok(Self {
            name: "events".into(),
            model: "demo".into(),
            label,
            schema,
            features: Vec::new(),
            drift_at: None,
            source: Source::Rows(rows),
        })
    }

    pub fn describe(&self) -> String {
        match (&self.source, self.drift_at) {
            (Source::Generator(g), Some(at)) => match g.kind() {
                GeneratorKind::Cards => {
                    format!("card transactions (the fraud pattern changes at event {at})")
                }
                kind => format!(
                    "the {} generator (its concept changes abruptly at event {at})",
                    kind_name(kind)
                ),
            },
            (Source::Rows(r), _) => format!("a CSV stream of {} events", r.len()),
            _ => "a stream".into(),
        }
    }

    fn row(&mut self, i: u64) -> Option<Vec<Value>> {
        match &mut self.source {
            Source::Generator(g) => Some(g.row_at(i)),
            Source::Rows(rows) => usize::try_from(i).ok().and_then(|i| rows.get(i).cloned()),
        }
    }
}

/// The generator's name as `--generator` spells it.
pub fn kind_name(kind: GeneratorKind) -> &'static str {
    crate::cli::GENERATORS
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("generated", |(name, _)| name)
}

/// One scored event, kept for the summary.
pub struct Scored {
    pub index: u64,
    /// The version that answered and its probability of the positive class.
    pub version: Option<i64>,
    pub variant: Option<String>,
    pub p1: Option<f64>,
    /// The predicted label, and the answer's classes with their probabilities.
    pub predicted: Option<Json>,
    pub classes: Vec<Json>,
    pub proba: Vec<f64>,
    pub label: Json,
}

/// Live mode: feedback calls in flight at once.
const MAX_INFLIGHT: usize = 64;

/// The simulated client.
pub struct Client {
    base: String,
    http: reqwest::Client,
    pub stream: Stream,
    rate: u64,
    pub label_delay: u64,
    timeline: Arc<Mutex<Timeline>>,
    log: Narrator,
    /// Every event the client saw (kept for the summary).
    pub rows: Vec<Vec<Value>>,
    pub scored: Vec<Scored>,
    pending: VecDeque<(u64, Json)>,
    label_index: usize,
    input_fields: Vec<String>,
    /// Labelled events and feedback go out on their own task, so that waiting for
    /// their commits never slows the scoring requests down.
    outbox: Option<tokio::sync::mpsc::Sender<(String, Vec<Json>)>>,
    sender: Option<tokio::task::JoinHandle<Result<()>>>,
    /// The champion answers live: events are scored one at a time, and each answer
    /// waits (`x-live-after`) until the labels due before it are learnt.
    live: bool,
    /// Live: the id of the newest label sent, and the feedback calls in flight.
    after: Option<String>,
    inflight: tokio::task::JoinSet<Result<()>>,
    held_events: String,
}

async fn send_loop(
    http: reqwest::Client,
    base: String,
    stream: String,
    model: String,
    mut rx: tokio::sync::mpsc::Receiver<(String, Vec<Json>)>,
) -> Result<()> {
    while let Some((events, labels)) = rx.recv().await {
        // The labelled events and their feedback go out together: each waits for its
        // own commit, and neither needs the other.
        let ingest = http
            .post(format!("{base}/v1/streams/{stream}/events"))
            .header("content-type", "application/x-ndjson")
            .body(events)
            .send();
        let feedback = async {
            if labels.is_empty() {
                return Ok(None);
            }
            http.post(format!("{base}/v1/models/{model}/feedback"))
                .json(&labels)
                .send()
                .await
                .map(Some)
        };
        let (ingested, fed) = futures::future::join(ingest, feedback).await;
        let answers = [("ingest", Some(ingested?)), ("feedback", fed?)];
        for (what, r) in answers {
            let Some(r) = r else { continue };
            if !r.status().is_success() {
                return Err(anyhow!(
                    "{what} answered {}: {}",
                    r.status(),
                    r.text().await?
                ));
            }
        }
    }
    Ok(())
}

impl Client {
    #[allow(clippy::too_many_arguments)] // the demo's knobs, each used once
    pub fn new(
        base: String,
        stream: Stream,
        rate: u64,
        label_delay: u64,
        timeline: Arc<Mutex<Timeline>>,
        log: Narrator,
        live: bool,
        token: &str,
    ) -> Result<Self> {
        let label_index = stream.schema.index_of(&stream.label).unwrap_or(0);
        let input_fields = if stream.features.is_empty() {
            stream
                .schema
                .fields()
                .iter()
                .filter(|f| f.name != stream.label)
                .map(|f| f.name.clone())
                .collect()
        } else {
            stream.features.iter().map(|(f, _)| f.clone()).collect()
        };
        // Auth is on in the demo: every call carries the admin token it wrote.
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::AUTHORIZATION,
                auth,
            )]))
            .build()?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let sender = tokio::spawn(send_loop(
            http.clone(),
            base.clone(),
            stream.name.clone(),
            stream.model.clone(),
            rx,
        ));
        Ok(Self {
            base,
            http,
            outbox: Some(tx),
            sender: Some(sender),
            stream,
            rate: rate.max(1),
            label_delay,
            timeline,
            log,
            rows: Vec::new(),
            scored: Vec::new(),
            pending: VecDeque::new(),
            label_index,
            input_fields,
            live,
            after: None,
            inflight: tokio::task::JoinSet::new(),
            held_events: String::new(),
        })
    }

    fn features(&self, row: &[Value]) -> Map<String, Json> {
        let mut m = Map::new();
        for name in &self.input_fields {
            if let Some(i) = self.stream.schema.index_of(name) {
                m.insert(name.clone(), row[i].to_json());
            }
        }
        m
    }

    fn record(&self, row: &[Value]) -> Json {
        let mut m = Map::new();
        for (f, v) in self.stream.schema.fields().iter().zip(row) {
            m.insert(f.name.clone(), v.to_json());
        }
        Json::Object(m)
    }

    async fn score(&self, index: u64, row: &[Value]) -> Scored {
        let after = if self.live { self.after.clone() } else { None };
        let body = json!({
            "client_request_id": format!("e{index}"),
            "dataframe_records": [Json::Object(self.features(row))],
        });
        let label = row[self.label_index].to_json();
        let url = format!(
            "{}/serving-endpoints/{}/invocations",
            self.base, self.stream.model
        );
        let answer = async {
            let mut req = self.http.post(&url).json(&body);
            if let Some(id) = &after {
                req = req.header("x-live-after", id);
            }
            let r = req.send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            let variant = r
                .headers()
                .get("x-model-variant")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let v: Json = r.json().await.ok()?;
            Some((v, variant))
        }
        .await;
        match answer {
            Some((v, variant)) => Scored {
                index,
                version: v["version"].as_str().and_then(|s| s.parse().ok()),
                variant,
                p1: v["probabilities"][0][1].as_f64(),
                predicted: Some(v["predictions"][0].clone()),
                classes: v["classes"].as_array().cloned().unwrap_or_default(),
                proba: v["probabilities"][0]
                    .as_array()
                    .map(|a| a.iter().filter_map(Json::as_f64).collect())
                    .unwrap_or_default(),
                label,
            },
            None => Scored {
                index,
                version: None,
                variant: None,
                p1: None,
                predicted: None,
                classes: Vec::new(),
                proba: Vec::new(),
                label,
            },
        }
    }

    /// Send the labels (and labelled events) that are due.
    async fn deliver(&mut self, upto: u64, all: bool) -> Result<()> {
        let mut events = String::new();
        let mut labels = Vec::new();
        while let Some((i, _)) = self.pending.front() {
            if !all && i + self.label_delay > upto {
                break;
            }
            let Some((i, record)) = self.pending.pop_front() else {
                break;
            };
            events.push_str(&record.to_string());
            events.push('\n');
            let label = record[self.stream.label.as_str()].clone();
            labels.push(json!({"client_request_id": format!("e{i}"), "label": label}));
        }
        if labels.is_empty() {
            return Ok(());
        }
        if self.live {
            // The labels go out at once, several calls in flight (the server commits
            // them together); the next answer waits until the newest one is learnt.
            self.after = labels
                .last()
                .and_then(|l| l["client_request_id"].as_str())
                .map(str::to_string);
            while self.inflight.len() >= MAX_INFLIGHT {
                if let Some(done) = self.inflight.join_next().await {
                    done.map_err(|e| anyhow!("a feedback call failed: {e}"))??;
                }
            }
            let (http, url) = (
                self.http.clone(),
                format!("{}/v1/models/{}/feedback", self.base, self.stream.model),
            );
            let body = std::mem::take(&mut labels);
            self.inflight.spawn(async move {
                let r = http.post(url).json(&body).send().await?;
                if !r.status().is_success() {
                    return Err(anyhow!(
                        "feedback answered {}: {}",
                        r.status(),
                        r.text().await?
                    ));
                }
                Ok(())
            });
        }
        if self.live {
            // The labelled events land in the table in batches (every few ticks).
            self.held_events.push_str(&events);
            return Ok(());
        }
        self.send_events(events, labels).await
    }

    async fn send_events(&self, events: String, labels: Vec<Json>) -> Result<()> {
        match &self.outbox {
            Some(tx) => tx
                .send((events, labels))
                .await
                .map_err(|_| anyhow!("the label sender stopped")),
            None => Ok(()),
        }
    }

    /// Live: send the labelled events held back since the last call.
    async fn flush_events(&mut self) -> Result<()> {
        if self.held_events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.held_events);
        self.send_events(events, Vec::new()).await
    }

    /// Walk the stream until a version trained after the drift has been champion for
    /// `after_promotion` events, `max_events` were sent, the stream ends, or `budget`
    /// is spent.
    pub async fn run(
        &mut self,
        runtime: &Runtime,
        budget: Duration,
        after_promotion: u64,
        max_events: Option<u64>,
    ) -> Result<()> {
        let started = Instant::now();
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos} events {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        self.log.attach(bar.clone());
        let batch = (self.rate / 50).max(1);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut i: u64 = 0;
        let mut serving: Option<i64> = None;
        let mut version_at_drift: Option<i64> = None;
        let mut last_phase = String::new();
        let mut stop_at: Option<u64> = None;
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            if started.elapsed() > budget {
                self.log.say("time budget spent; stopping the client");
                break;
            }
            if stop_at.is_some_and(|s| i >= s) {
                break;
            }
            let mut rows = Vec::new();
            for _ in 0..batch {
                let next = i + rows.len() as u64;
                if max_events.is_some_and(|m| next >= m) {
                    break;
                }
                let Some(row) = self.stream.row(next) else {
                    break;
                };
                rows.push(row);
            }
            if rows.is_empty() {
                self.log.say("end of the stream");
                break;
            }
            let answers = if self.live {
                Vec::new()
            } else {
                futures::future::join_all(
                    rows.iter()
                        .enumerate()
                        .map(|(k, r)| self.score(i + k as u64, r)),
                )
                .await
            };
            let mut answers = answers.into_iter();
            for (k, row) in rows.into_iter().enumerate() {
                let scored = match answers.next() {
                    Some(s) => s,
                    None => {
                        // Live: one event at a time, its due labels learnt before the next.
                        self.score(i + k as u64, &row).await
                    }
                };
                let idx = scored.index;
                if self.stream.drift_at == Some(idx) {
                    self.timeline
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .drift_onset = Some((Instant::now(), idx));
                    version_at_drift = serving;
                    let what = if self.stream.model == "fraud" {
                        "the fraud pattern"
                    } else {
                        "the concept"
                    };
                    self.log.say(&format!("{what} changes now (event {idx})"));
                }
                if let (Some(v), Some("champion")) = (scored.version, scored.variant.as_deref())
                    && serving != Some(v)
                {
                    serving = Some(v);
                    self.log.say(&format!("v{v} is the champion now"));
                    let mut t = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
                    if t.drift_onset.is_some()
                        && version_at_drift.is_none_or(|d| v > d)
                        && t.new_champion.is_none()
                    {
                        t.new_champion = Some((Instant::now(), idx, v));
                        if max_events.is_none() {
                            stop_at = Some(idx + after_promotion);
                        }
                    }
                }
                self.pending.push_back((idx, self.record(&row)));
                self.rows.push(row);
                self.scored.push(scored);
                if self.live {
                    self.deliver(self.rows.len() as u64, false).await?;
                }
            }
            i = self.rows.len() as u64;
            ticks += 1;
            if ticks.is_multiple_of(5) {
                self.deliver(i, false).await?;
                self.flush_events().await?;
            }
            bar.set_position(i);
            if !ticks.is_multiple_of(10) {
                continue;
            }
            let phase = rollout_phase(runtime, &self.stream.model);
            // The new champion is on probation while it bakes: the run goes on until
            // the bake has decided, and `after_promotion` events after that.
            if phase.ends_with("baking")
                && let Some(s) = stop_at.as_mut()
            {
                *s = (*s).max(i + after_promotion);
            }
            if phase != last_phase && !phase.is_empty() {
                self.log.say(&format!("rollout: {phase}"));
                last_phase = phase;
            }
            bar.set_message(match serving {
                Some(v) => format!("· champion v{v}"),
                None => "· waiting for the first version".into(),
            });
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Send every label still held back and wait until they are in.
    pub async fn finish(&mut self) {
        let upto = self.rows.len() as u64;
        if let Err(e) = self.deliver(upto, true).await {
            self.log
                .say(&format!("could not send the last labels: {e:#}"));
        }
        if let Err(e) = self.flush_events().await {
            self.log
                .say(&format!("could not send the last events: {e:#}"));
        }
        while let Some(done) = self.inflight.join_next().await {
            match done {
                Ok(Err(e)) => self.log.say(&format!("could not send labels: {e:#}")),
                Err(e) => self.log.say(&format!("a feedback call failed: {e}")),
                Ok(Ok(())) => {}
            }
        }
        self.outbox = None;
        if let Some(s) = self.sender.take() {
            match s.await {
                Ok(Err(e)) => self.log.say(&format!("could not send labels: {e:#}")),
                Err(e) => self.log.say(&format!("the label sender failed: {e}")),
                Ok(Ok(())) => {}
            }
        }
    }
}

fn rollout_phase(runtime: &Runtime, model: &str) -> String {
    match freshet_serve::rollout::load_state(runtime.tracking.as_ref(), model) {
        Ok(Some(s)) => format!("v{} {}", s.candidate_version, s.phase),
        _ => String::new(),
    }
}
