//! Scoring one request: parse it for the model's columns, route it, predict with the
//! model's own feature pipeline, answer, and record (statistics, capture, shadow).

use crate::capture::{Capture, InferenceRow};
use crate::error::ServeError;
use crate::formats::{
    self, FormatError, InputColumn, Limits, Prediction, ScoringAnswer, ScoringRequest,
};
use crate::loader::LoadedModel;
use crate::router::{Choice, Endpoints, Routes, Variant};
use freshet_core::Value;
use freshet_learn::features::SchemaRow;
use freshet_learn::model::Output;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

/// The wire protocol of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MLflow's `/invocations` formats.
    Invocations,
    /// Open Inference Protocol v2 `infer`.
    Oip,
}

/// A request as the HTTP layer hands it over.
#[derive(Debug, Clone, Copy)]
pub struct ScoreInput<'a> {
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    /// A version asked for by path (`/v2/models/{m}/versions/{v}/infer`).
    pub version: Option<i64>,
    /// Ids given in headers; the body's take precedence.
    pub client_request_id: Option<&'a str>,
    pub routing_key: Option<&'a str>,
}

/// A scored request.
#[derive(Debug, Clone)]
pub struct Scored {
    pub body: Vec<u8>,
    pub request_id: String,
    pub version: i64,
    pub variant: Variant,
    /// For a live champion: the lineage and rows learnt of the state that answered.
    pub live: Option<crate::live::LiveStamp>,
}

/// Applies a stream's PII policy to scoring inputs, so that a model reading a hashed
/// or redacted field sees what it was trained on, and capture never stores the raw
/// value. The binary implements it with the stream's policy and key.
pub trait InputProtector: Send + Sync + std::fmt::Debug {
    /// Protect `row` (laid out by `input`) in place for `model`.
    fn protect(&self, model: &str, input: &freshet_core::Schema, row: &mut [Value]);
}

/// Scores requests against the served endpoints.
#[derive(Debug)]
pub struct Scorer {
    pub endpoints: Arc<Endpoints>,
    pub capture: Option<Arc<Capture>>,
    pub limits: Limits,
    pub metrics: Option<crate::metrics::ServeMetrics>,
    pub protector: Option<Arc<dyn InputProtector>>,
    /// Models whose champion answers as a live learner (`serving: live`).
    pub live: Option<Arc<crate::live::LiveHub>>,
}

fn parse(
    protocol: Protocol,
    input: &ScoreInput<'_>,
    cols: &[InputColumn],
    limits: &Limits,
) -> Result<ScoringRequest, FormatError> {
    match protocol {
        Protocol::Invocations => {
            formats::parse_invocations(input.content_type, input.body, cols, limits)
        }
        Protocol::Oip => formats::parse_oip(input.body, cols, limits),
    }
}

fn format_error(e: FormatError) -> ServeError {
    if e.status_code() == 413 {
        ServeError::TooLarge(e.to_string())
    } else {
        ServeError::BadRequest(e.to_string())
    }
}

/// Predict every row; a model that cannot answer (not trained) is a server fault.
fn predict(
    m: &LoadedModel,
    rows: &[Vec<Value>],
) -> Result<(Vec<Prediction>, Vec<usize>), ServeError> {
    predict_rows(m, &m.input, rows)
}

/// Predict rows laid out by `schema` (which must hold the model's input fields, by
/// name: a table's rows work as they are). Also returns the predicted class indices.
pub fn predict_rows(
    m: &LoadedModel,
    schema: &freshet_core::Schema,
    rows: &[Vec<Value>],
) -> Result<(Vec<Prediction>, Vec<usize>), ServeError> {
    let mut out = Vec::with_capacity(rows.len());
    let mut classes = Vec::with_capacity(rows.len());
    for r in rows {
        let rec = SchemaRow::new(schema, r);
        let output = m.model.predict_output(&rec).map_err(|e| ServeError::Load {
            name: m.name.clone(),
            version: m.version,
            reason: e.to_string(),
        })?;
        out.push(match output {
            Output::Proba(p) => {
                let k = freshet_learn::argmax(&p).unwrap_or(0);
                classes.push(k);
                Prediction {
                    label: m.classes.get(k).cloned().unwrap_or(Value::Null),
                    proba: Some(p),
                }
            }
            Output::Value(y) => Prediction {
                label: Value::Float(y),
                proba: None,
            },
        });
    }
    Ok((out, classes))
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A value as JSON text (numbers, strings, booleans, null; timestamps as RFC 3339).
fn push_json(out: &mut String, v: &Value) {
    match v {
        Value::Null | Value::Nested => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_finite() => {
            let _ = write!(out, "{f:?}");
        }
        Value::Float(_) => out.push_str("null"),
        Value::Str(s) => push_json_str(out, s),
        Value::Timestamp(t) => {
            let text = chrono::DateTime::from_timestamp_micros(*t)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .unwrap_or_default();
            let _ = write!(out, "\"{text}\"");
        }
        Value::Date(d) => {
            let text = freshet_core::value::date_from_days(*d)
                .map(|d| d.to_string())
                .unwrap_or_default();
            let _ = write!(out, "\"{text}\"");
        }
    }
}

/// A string as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "null".into()));
}

fn features_json(m: &LoadedModel, row: &[Value]) -> String {
    let mut s = String::with_capacity(16 * row.len() + 2);
    s.push('{');
    for (i, (f, v)) in m.input.fields().iter().zip(row).enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_json_str(&mut s, &f.name);
        s.push(':');
        push_json(&mut s, v);
    }
    s.push('}');
    s
}

struct CaptureCtx<'a> {
    request_id: &'a Arc<str>,
    client_request_id: Option<Arc<str>>,
    routing_key: Option<Arc<str>>,
    at_micros: i64,
    latency_micros: i64,
}

fn capture_rows(
    capture: &Capture,
    m: &LoadedModel,
    variant: &'static str,
    rows: &[Vec<Value>],
    preds: &[Prediction],
    ctx: &CaptureCtx<'_>,
) {
    let model: Arc<str> = Arc::from(m.name.as_str());
    for (i, (r, p)) in rows.iter().zip(preds).enumerate() {
        let mut prediction = String::new();
        push_json(&mut prediction, &p.label);
        let probabilities = p.proba.as_ref().map(|v| {
            let mut s = String::from("[");
            for (k, x) in v.iter().enumerate() {
                if k > 0 {
                    s.push(',');
                }
                push_json(&mut s, &Value::Float(*x));
            }
            s.push(']');
            s
        });
        capture.offer(InferenceRow {
            request_id: ctx.request_id.clone(),
            client_request_id: ctx.client_request_id.clone(),
            at_micros: ctx.at_micros,
            model: model.clone(),
            version: m.version,
            variant,
            routing_key: ctx.routing_key.clone(),
            row: i as i64,
            features: features_json(m, r),
            prediction,
            probabilities,
            latency_micros: ctx.latency_micros,
        });
    }
}

/// Predictions, their class indices, and the live stamp of the state that answered.
type LiveScored = (Vec<Prediction>, Vec<usize>, Option<crate::live::LiveStamp>);

/// Score rows with a live champion: the live state and the snapshot both score them;
/// the one the safety net allows answers, and both predictions wait for the label.
fn score_live(
    live: &crate::live::LiveModel,
    request_id: &str,
    client_request_id: Option<&str>,
    rows: &[Vec<Value>],
) -> Result<LiveScored, ServeError> {
    let view = live.view();
    let (lp, lc) = predict(&view.live, rows)?;
    let (sp, sc) = predict(&view.snapshot, rows)?;
    live.remember(request_id, client_request_id, rows, &lp, &sp, &view);
    let stamp = Some(view.stamp);
    Ok(if stamp.as_ref().is_some_and(|s| s.fallback) {
        (sp, sc, stamp)
    } else {
        (lp, lc, stamp)
    })
}

impl Scorer {
    pub fn new(endpoints: Arc<Endpoints>, capture: Option<Arc<Capture>>) -> Self {
        Self {
            endpoints,
            capture,
            limits: Limits::default(),
            metrics: None,
            protector: None,
            live: None,
        }
    }

    /// Serve the models of `hub` live.
    pub fn with_live(mut self, hub: Arc<crate::live::LiveHub>) -> Self {
        self.live = Some(hub);
        self
    }

    /// Apply PII policies to inputs before scoring and capture.
    pub fn with_protector(mut self, protector: Arc<dyn InputProtector>) -> Self {
        self.protector = Some(protector);
        self
    }

    fn protect(&self, model: &str, m: &LoadedModel, rows: &mut [Vec<Value>]) {
        if let Some(p) = &self.protector {
            for r in rows.iter_mut() {
                p.protect(model, &m.input, r);
            }
        }
    }

    /// Count requests and latencies in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::ServeMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn pick(routes: &Routes, version: Option<i64>, key: &str) -> Result<Choice, ServeError> {
        let Some(v) = version else {
            return Ok(routes.choose(key));
        };
        if routes.champion.version == v {
            return Ok(Choice {
                serving: routes.champion.clone(),
                variant: Variant::Champion,
                shadow: None,
            });
        }
        match &routes.challenger {
            Some((c, _)) if c.version == v => Ok(Choice {
                serving: c.clone(),
                variant: Variant::Challenger,
                shadow: None,
            }),
            _ => Err(ServeError::BadRequest(format!(
                "version {v} is not being served; served: {}",
                std::iter::once(routes.champion.version)
                    .chain(routes.challenger.as_ref().map(|(c, _)| c.version))
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Score one request for `model`.
    pub fn score(
        &self,
        model: &str,
        protocol: Protocol,
        input: ScoreInput<'_>,
    ) -> Result<Scored, ServeError> {
        let started = Instant::now();
        let result = self.score_inner(model, protocol, input, started);
        if let Some(m) = &self.metrics {
            match &result {
                Ok(s) => m.answered(model, s.variant.as_str(), started.elapsed().as_secs_f64()),
                Err(e) => m.failed(
                    model,
                    matches!(
                        e,
                        ServeError::BadRequest(_)
                            | ServeError::TooLarge(_)
                            | ServeError::NotServed(_)
                    ),
                ),
            }
        }
        result
    }

    fn score_inner(
        &self,
        model: &str,
        protocol: Protocol,
        input: ScoreInput<'_>,
        started: Instant,
    ) -> Result<Scored, ServeError> {
        // Ids from headers are held like their body forms: bounded the same way.
        for (header, v) in [
            ("x-client-request-id", input.client_request_id),
            ("x-routing-key", input.routing_key),
        ] {
            if v.is_some_and(|v| v.len() > crate::formats::MAX_ID_BYTES) {
                return Err(ServeError::BadRequest(format!(
                    "header '{header}' is longer than {} bytes",
                    crate::formats::MAX_ID_BYTES
                )));
            }
        }
        let not_served = || ServeError::NotServed(model.to_string());
        let ep = self.endpoints.get(model).ok_or_else(not_served)?;
        let routes = ep.routes().ok_or_else(not_served)?;
        let request_id = uuid::Uuid::now_v7().simple().to_string();

        // Columns are the champion's unless a version is named; a challenger with other
        // columns re-reads the body below.
        let first = match input.version {
            Some(v) => Self::pick(&routes, Some(v), &request_id)?.serving,
            None => routes.champion.clone(),
        };
        let first_cols = first.columns();
        let mut req = parse(protocol, &input, first_cols, &self.limits).map_err(format_error)?;
        if req.client_request_id.is_none() {
            req.client_request_id = input.client_request_id.map(str::to_string);
        }
        if req.routing_key.is_none() {
            req.routing_key = input.routing_key.map(str::to_string);
        }
        let key = req
            .routing_key
            .as_deref()
            .unwrap_or(&request_id)
            .to_string();
        let choice = Self::pick(&routes, input.version, &key)?;
        let rows = if Arc::ptr_eq(&choice.serving, &first) || choice.serving.columns() == first_cols
        {
            std::mem::take(&mut req.rows)
        } else {
            parse(protocol, &input, choice.serving.columns(), &self.limits)
                .map_err(format_error)?
                .rows
        };

        let mut rows = rows;
        self.protect(model, &choice.serving, &mut rows);
        let stats = ep.stats(choice.serving.version);
        let live = match (&self.live, choice.variant, input.version) {
            (Some(hub), Variant::Champion, None) => hub.for_champion(model, &choice.serving),
            _ => None,
        };
        let scored = match &live {
            Some(live) => score_live(live, &request_id, req.client_request_id.as_deref(), &rows),
            None => predict(&choice.serving, &rows).map(|(p, c)| (p, c, None)),
        };
        let (preds, classes, live_stamp) = match scored {
            Ok(p) => p,
            Err(e) => {
                stats.record_error(now_micros() / 1000);
                return Err(e);
            }
        };
        let answer = ScoringAnswer {
            request_id: &request_id,
            client_request_id: req.client_request_id.as_deref(),
            model,
            version: choice.serving.version,
            classes: &choice.serving.classes,
            predictions: &preds,
        };
        let body = match protocol {
            Protocol::Invocations => formats::render_invocations(&answer),
            Protocol::Oip => formats::render_oip(&answer),
        };
        let latency_micros = started.elapsed().as_micros() as i64;
        let at = now_micros();
        stats.record(at / 1000, latency_micros as u64, &classes);

        let rid: Arc<str> = Arc::from(request_id.as_str());
        let ctx = CaptureCtx {
            request_id: &rid,
            client_request_id: req.client_request_id.as_deref().map(Arc::from),
            routing_key: req.routing_key.as_deref().map(Arc::from),
            at_micros: at,
            latency_micros,
        };
        if let Some(c) = &self.capture {
            capture_rows(
                c,
                &choice.serving,
                choice.variant.as_str(),
                &rows,
                &preds,
                &ctx,
            );
        }
        if let Some(shadow) = &choice.shadow {
            self.shadow(&ep, shadow, protocol, &input, &first, rows, &ctx);
        }
        Ok(Scored {
            body,
            request_id,
            version: choice.serving.version,
            variant: choice.variant,
            live: live_stamp,
        })
    }

    /// Score the mirrored copy with the challenger; its answer is only recorded.
    #[allow(clippy::too_many_arguments)]
    fn shadow(
        &self,
        ep: &crate::router::Endpoint,
        shadow: &Arc<LoadedModel>,
        protocol: Protocol,
        input: &ScoreInput<'_>,
        first: &Arc<LoadedModel>,
        rows: Vec<Vec<Value>>,
        ctx: &CaptureCtx<'_>,
    ) {
        let started = Instant::now();
        let stats = ep.stats(shadow.version);
        let rows = if shadow.columns() == first.columns() {
            rows
        } else {
            match parse(protocol, input, shadow.columns(), &self.limits) {
                Ok(mut r) => {
                    self.protect(&shadow.name, shadow, &mut r.rows);
                    r.rows
                }
                Err(_) => {
                    // The challenger cannot read what the champion's clients send.
                    stats.record_error(now_micros() / 1000);
                    return;
                }
            }
        };
        match predict(shadow, &rows) {
            Ok((preds, classes)) => {
                let latency = started.elapsed().as_micros() as i64;
                stats.record(now_micros() / 1000, latency as u64, &classes);
                if let Some(c) = &self.capture {
                    let ctx = CaptureCtx {
                        request_id: ctx.request_id,
                        client_request_id: ctx.client_request_id.clone(),
                        routing_key: ctx.routing_key.clone(),
                        at_micros: ctx.at_micros,
                        latency_micros: latency,
                    };
                    capture_rows(c, shadow, "shadow", &rows, &preds, &ctx);
                }
            }
            Err(_) => stats.record_error(now_micros() / 1000),
        }
    }
}
