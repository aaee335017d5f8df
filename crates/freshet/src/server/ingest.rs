//! `POST /v1/streams/{stream}/events` and `GET /v1/streams`.

use super::{ApiError, AppState};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use freshet_ingest::service::IngestOutcome;
use freshet_ingest::source::http::body_format;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/streams/{stream}/events", post(ingest))
        .route("/v1/streams", get(list))
}

async fn ingest(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestOutcome>, ApiError> {
    // Unknown stream first: a 404 is more useful than complaints about the body.
    state.ingest.stream(&stream)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "request body exceeds server.max_body_bytes",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "could not read the request body",
            )
        }
    })?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = body_format(ct).map_err(|m| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            m,
        )
    })?;
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Idempotency-Key must be visible ASCII",
            )
        })?),
        None => None,
    };
    let outcome = state
        .ingest
        .ingest_http(&stream, &body, format, key)
        .await?;
    Ok(Json(outcome))
}

async fn list(State(state): State<AppState>) -> Json<serde_json::Value> {
    let streams: Vec<_> = state
        .ingest
        .streams()
        .map(|s| {
            let fields: Vec<_> = s
                .pipeline
                .output_schema()
                .fields()
                .iter()
                .map(|f| json!({ "name": f.name, "type": f.ty.to_string() }))
                .collect();
            json!({ "name": s.name, "fields": fields })
        })
        .collect();
    Json(json!({ "streams": streams }))
}
