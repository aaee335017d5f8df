//! Scoring endpoints: MLflow's `/serving-endpoints/{model}/invocations` and the Open
//! Inference Protocol v2 (`/v2/...`). Handlers read the body and the caller's ids and
//! hand them to the [`Scorer`]; scoring runs inline because it takes microseconds.

use super::{ApiError, AppState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use freshet_serve::formats::{oip_binary, render_oip_metadata};
use freshet_serve::service::{Protocol, ScoreInput, Scored};

pub fn router() -> Router<AppState> {
    let oip = Router::new()
        .route("/v2/models/{model}/infer", post(infer))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer_version),
        )
        .route("/v2/models/{model}", get(metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(metadata_version),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(version_ready),
        )
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .layer(axum::middleware::map_response(oip_error_body));
    Router::new()
        .route("/serving-endpoints/{model}/invocations", post(invocations))
        .merge(oip)
        .route("/v1/models/{model}/feedback", post(feedback))
        .route("/v1/models/{model}/live/replay", post(live_replay))
        .route("/v1/models/{model}/performance", get(performance))
        .route("/v1/models/{model}/status", get(status))
        .route("/v1/models/{model}/monitoring", get(monitoring))
}

/// Open Inference Protocol errors read `{"error": "<message>"}`, the spec's shape
/// (Triton's and KServe's clients read that field as a string).
async fn oip_error_body(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string));
    let Some(message) = message else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "error": message }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Model names become table names; keep them to what a table path can hold.
fn check_model_name(model: &str) -> Result<(), ApiError> {
    let ok = !model.is_empty()
        && model.len() <= 128
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !model.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the model name may hold letters, digits, '_', '-' and '.'",
        ))
    }
}

#[derive(serde::Deserialize)]
struct FeedbackQuery {
    /// `learned`: answer once a live champion has learnt these labels (at most 10 s).
    #[serde(default)]
    wait: Option<String>,
}

/// Longest a feedback call with `?wait=learned` waits for the live learner.
const LEARN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn feedback(
    State(s): State<AppState>,
    Path(model): Path<String>,
    axum::extract::Query(q): axum::extract::Query<FeedbackQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_model_name(&model)?;
    known_model(&s, &model).await?;
    let wait = match q.wait.as_deref() {
        None => false,
        Some("learned") => true,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "wait: the only value is 'learned'",
            ));
        }
    };
    let now = chrono::Utc::now().timestamp_micros();
    let rows = freshet_serve::feedback::parse_feedback(&body, now)?;
    // A live champion learns the labels the moment they arrive, in the order they
    // came; the answer still comes only once they are committed to the table.
    let live = s.scorer.live.as_ref().and_then(|hub| hub.get(&model));
    let done = freshet_serve::feedback::accept(
        &s.labels,
        &s.lake,
        s.scorer.live.as_deref(),
        &model,
        &rows,
        Vec::new(),
    )
    .await
    .map_err(|e| match e {
        // Nothing was stored: the caller may send the same labels again (the newest
        // label of a request wins, so a repeat is harmless).
        freshet_serve::ServeError::Lake(_) | freshet_serve::ServeError::Storage(_) => {
            tracing::error!(model = %model, error = %e, "labels could not be committed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the labels could not be committed to labels/{model}; retry"),
            )
            .retry_after(1)
        }
        other => other.into(),
    })?;
    let (matched, version) = (done.live_matched, done.version);
    let mut learnt = None;
    if let (true, Some(m)) = (wait, &live) {
        let target = m.handed();
        let deadline = tokio::time::Instant::now() + LEARN_WAIT;
        while m.learnt_upto() < target && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        }
        learnt = Some(m.learnt_upto() >= target);
    }
    Ok(axum::Json(serde_json::json!({
        "accepted": rows.len(),
        "live_matched": matched,
        "live_learnt": learnt,
        "table": format!("labels/{model}"),
        "table_version": version,
    }))
    .into_response())
}

#[derive(serde::Deserialize)]
struct ReplayQuery {
    lineage: String,
    learned: u64,
}

/// Reproduce an answer of a live champion: the body is scored by the state of lineage
/// `lineage` after `learned` rows (the `x-live-lineage` and `x-live-learned` headers
/// of the answer), rebuilt from its base version and the live journal.
async fn live_replay(
    State(s): State<AppState>,
    Path(model): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ReplayQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_model_name(&model)?;
    let dir = s
        .scorer
        .live
        .as_ref()
        .and_then(|h| h.journal_dir().map(std::path::Path::to_path_buf))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "this server keeps no live journal",
            )
        })?;
    let content_type = header_str(&headers, "content-type").map(str::to_string);
    let (store, artifacts) = (s.tracking.clone(), s.artifacts.clone());
    let out = tokio::task::spawn_blocking(move || {
        freshet_serve::live::replay_answer(
            store.as_ref(),
            artifacts.as_ref(),
            &dir,
            &model,
            &q.lineage,
            q.learned,
            content_type.as_deref(),
            &body,
        )
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        out,
    )
        .into_response())
}

async fn performance(
    State(s): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    check_model_name(&model)?;
    known_model(&s, &model).await?;
    let per_version = freshet_serve::feedback::performance(&s.lake, &model).await?;
    Ok(axum::Json(serde_json::json!({ "model": model, "versions": per_version })).into_response())
}

/// Labels and performance are kept per model in tables of their own: only for a model
/// declared in the configuration or served now, so no caller can make the server
/// create and hold tables under names of its choosing.
async fn known_model(s: &AppState, model: &str) -> Result<(), ApiError> {
    if s.models.iter().any(|m| m == model) || s.scorer.endpoints.get(model).is_some() {
        return Ok(());
    }
    // Registered but not (yet) served here, e.g. just after a start.
    let (tracking, name) = (s.tracking.clone(), model.to_string());
    let registered = tokio::task::spawn_blocking(move || tracking.get_registered_model(&name))
        .await
        .is_ok_and(|r| r.is_ok());
    if registered {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("model '{model}' is neither declared, registered nor served"),
        ))
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

fn answer(s: Scored) -> Response {
    let mut resp = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        s.body,
    )
        .into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&s.request_id) {
        h.insert("x-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&s.version.to_string()) {
        h.insert("x-model-version", v);
    }
    h.insert(
        "x-model-variant",
        HeaderValue::from_static(s.variant.as_str()),
    );
    if let Some(live) = &s.live {
        if let Ok(v) = HeaderValue::from_str(&live.lineage) {
            h.insert("x-live-lineage", v);
        }
        if let Ok(v) = HeaderValue::from_str(&live.learned.to_string()) {
            h.insert("x-live-learned", v);
        }
        if let Ok(v) = HeaderValue::from_str(&live.base.to_string()) {
            h.insert("x-live-base", v);
        }
        h.insert(
            "x-live-mode",
            HeaderValue::from_static(if live.fallback { "fallback" } else { "live" }),
        );
    }
    resp
}

fn score(
    s: &AppState,
    model: &str,
    protocol: Protocol,
    version: Option<i64>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    // The OIP binary tensor extension: binary inputs become plain JSON first, and the
    // answer goes out binary where the request asks.
    let (plain, wishes) = if protocol == Protocol::Oip {
        oip_binary::decode_request(body, header_str(headers, "inference-header-content-length"))
            .map_err(|e| ApiError::from(freshet_serve::ServeError::BadRequest(e.to_string())))?
    } else {
        (None, oip_binary::BinaryOutputs::default())
    };
    let input = ScoreInput {
        content_type: header_str(headers, "content-type"),
        body: plain.as_deref().unwrap_or(body),
        version,
        client_request_id: header_str(headers, "x-client-request-id"),
        routing_key: header_str(headers, "x-routing-key"),
    };
    let mut scored = s.scorer.score(model, protocol, input)?;
    let (bytes, head) = oip_binary::encode_answer(std::mem::take(&mut scored.body), &wishes);
    scored.body = bytes;
    let mut resp = answer(scored);
    if let Some(len) = head {
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert("inference-header-content-length", HeaderValue::from(len));
    }
    Ok(resp)
}

/// Longest a scoring request with `x-live-after` waits for its label to be learnt.
const AFTER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `x-live-after: <id>`: a live champion answers only once it has learnt the label fed
/// back for that request (read your own labels), waiting at most [`AFTER_WAIT`].
async fn wait_after(s: &AppState, model: &str, headers: &HeaderMap) {
    if let (Some(hub), Some(id)) = (&s.scorer.live, header_str(headers, "x-live-after"))
        && !hub.wait_for_label(model, id, AFTER_WAIT).await
    {
        tracing::debug!(
            model,
            "x-live-after: the label was not learnt in time; answering anyway"
        );
    }
}

async fn invocations(
    State(s): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    wait_after(&s, &model, &headers).await;
    score(&s, &model, Protocol::Invocations, None, &headers, &body)
}

async fn infer(
    State(s): State<AppState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    wait_after(&s, &model, &headers).await;
    score(&s, &model, Protocol::Oip, None, &headers, &body)
}

fn version_of(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|v| *v >= 1).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the version in the path must be a positive integer",
        )
    })
}

async fn infer_version(
    State(s): State<AppState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let v = version_of(&version)?;
    score(&s, &model, Protocol::Oip, Some(v), &headers, &body)
}

fn metadata_for(s: &AppState, model: &str, version: Option<i64>) -> Result<Response, ApiError> {
    let not_served = || ApiError::from(freshet_serve::ServeError::NotServed(model.to_string()));
    let ep = s.scorer.endpoints.get(model).ok_or_else(not_served)?;
    let routes = ep.routes().ok_or_else(not_served)?;
    let mut versions = vec![routes.champion.version];
    if let Some((c, _)) = &routes.challenger {
        versions.push(c.version);
    }
    let m = match version {
        None => routes.champion.clone(),
        Some(v) if v == routes.champion.version => routes.champion.clone(),
        Some(v) => match &routes.challenger {
            Some((c, _)) if c.version == v => c.clone(),
            _ => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("version {v} of '{model}' is not being served"),
                ));
            }
        },
    };
    let body = render_oip_metadata(model, &versions, m.columns(), &m.classes, m.is_regression());
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

async fn metadata(
    State(s): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    metadata_for(&s, &model, None)
}

async fn metadata_version(
    State(s): State<AppState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let v = version_of(&version)?;
    metadata_for(&s, &model, Some(v))
}

async fn model_ready(State(s): State<AppState>, Path(model): Path<String>) -> StatusCode {
    match s.scorer.endpoints.get(&model).and_then(|e| e.routes()) {
        Some(_) => StatusCode::OK,
        None => StatusCode::NOT_FOUND,
    }
}

/// Whether version `version` of `model` answers (as champion or challenger).
async fn version_ready(
    State(s): State<AppState>,
    Path((model, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let v = version_of(&version)?;
    let Some(routes) = s.scorer.endpoints.get(&model).and_then(|e| e.routes()) else {
        return Ok(StatusCode::NOT_FOUND);
    };
    let served = routes.champion.version == v
        || routes
            .challenger
            .as_ref()
            .is_some_and(|(c, _)| c.version == v);
    Ok(if served {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

/// OIP server metadata (`GET /v2`): name, version and the protocol extensions served.
async fn server_metadata() -> Response {
    axum::Json(serde_json::json!({
        "name": "freshet",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
    .into_response()
}

async fn live() -> StatusCode {
    StatusCode::OK
}

async fn ready(State(s): State<AppState>) -> StatusCode {
    if s.ready.load(std::sync::atomic::Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// One version's service level over a window.
fn sla(
    stats: &freshet_serve::stats::VersionStats,
    since_ms: i64,
    now_ms: i64,
) -> serde_json::Value {
    let s = stats.summary(since_ms, now_ms);
    serde_json::json!({
        "requests": s.requests,
        "errors": s.errors,
        "error_rate": if s.requests > 0 { s.errors as f64 / s.requests as f64 } else { 0.0 },
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "p99_ms": s.p99_ms,
        "predicted_classes": s.classes,
    })
}

/// The latest drift test of the champion's served traffic (per feature, the dataset
/// share, the prediction), its live accuracy on labels and the recent alerts.
async fn monitoring(
    State(s): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    check_model_name(&model)?;
    Ok(axum::Json(serde_json::json!({
        "model": model,
        "monitoring": s.monitoring.health(&model),
    }))
    .into_response())
}

/// What is served, how each served version is doing (last minute and last 30 minutes),
/// and the rollout and loop state: the monitoring view of one model.
async fn status(
    State(s): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    check_model_name(&model)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut versions = Vec::new();
    let routes = s
        .scorer
        .endpoints
        .get(&model)
        .and_then(|e| e.routes().map(|r| (e, r)));
    if let Some((ep, r)) = &routes {
        let mut served = vec![(r.champion.version, "champion".to_string())];
        if let Some((c, mode)) = &r.challenger {
            let m = match mode {
                freshet_serve::router::Mode::Shadow => "challenger (shadow)".to_string(),
                freshet_serve::router::Mode::Canary { weight_pct } => {
                    format!("challenger (canary {weight_pct}%)")
                }
            };
            served.push((c.version, m));
        }
        for (v, role) in served {
            let stats = ep.stats(v);
            versions.push(serde_json::json!({
                "version": v,
                "role": role,
                "last_minute": sla(&stats, now - 60_000, now),
                "last_30_minutes": sla(&stats, now - 1_800_000, now),
            }));
        }
    }
    let store = s.tracking.clone();
    let name = model.clone();
    let (rollout, control) = tokio::task::spawn_blocking(move || {
        let rollout = freshet_serve::rollout::load_state(store.as_ref(), &name)
            .ok()
            .flatten()
            .and_then(|st| serde_json::to_value(&st).ok());
        let control = freshet_control::state::load(store.as_ref(), &name)
            .ok()
            .and_then(|st| serde_json::to_value(&st).ok());
        (rollout, control)
    })
    .await
    .unwrap_or((None, None));
    Ok(axum::Json(serde_json::json!({
        "model": model,
        "served": routes.is_some(),
        "versions": versions,
        "rollout": rollout,
        "loop": control,
        "monitoring": s.monitoring.health(&model),
        "live": s.scorer.live.as_ref().and_then(|hub| hub.status(&model)),
        "capture": {
            "dropped": s.scorer.capture.as_ref().map_or(0, |c| c.dropped(&model)),
            "written": s.scorer.capture.as_ref().map_or(0, |c| c.written(&model)),
        },
    }))
    .into_response())
}
