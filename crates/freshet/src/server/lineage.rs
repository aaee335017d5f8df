//! The lineage API: thin over [`freshet_control::lineage::LineageService`].
//!
//! - `GET /v1/lineage/models/{model}/versions/{version}`: up (run, table version,
//!   sources) and down (periods served, predictions) from a version;
//! - `GET /v1/lineage/models/{model}/requests/{id}` and `GET /v1/lineage/requests/{id}`
//!   (any model): from a captured prediction up;
//! - `GET /v1/lineage/streams/{stream}/versions/{version}`: down from a table version;
//! - `GET /v1/lineage/models/{model}/champion?at=<RFC 3339>[&alias=…]`: which version
//!   held the alias then.

use super::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use freshet_control::error::ControlError;
use freshet_control::lineage::LineageService;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/lineage/models/{model}/versions/{version}",
            get(version),
        )
        .route(
            "/v1/lineage/models/{model}/requests/{id}",
            get(model_request),
        )
        .route("/v1/lineage/requests/{id}", get(request))
        .route(
            "/v1/lineage/streams/{stream}/versions/{version}",
            get(table),
        )
        .route("/v1/lineage/models/{model}/champion", get(holder))
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        use freshet_registry::RegistryError as R;
        match &e {
            ControlError::Registry(R::NotFound(m)) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", m.clone())
            }
            ControlError::Registry(R::InvalidParameter(m)) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m.clone())
            }
            ControlError::Lake(freshet_lake::LakeError::NoSuchVersion { table, version }) => {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("{table} has no version {version}"),
                )
            }
            _ => {
                tracing::error!(error = %e, "lineage query failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the lineage query failed; see the server log",
                )
            }
        }
    }
}

fn service(s: &AppState) -> LineageService {
    LineageService::new(
        s.tracking.clone(),
        s.lake.clone(),
        Some(s.governance.approvals().clone()),
        s.models.clone(),
    )
}

/// A path number, or a 400 naming it.
fn number(field: &str, text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{field}: '{text}' is not a whole number"),
        )
    })
}

async fn version(
    State(s): State<AppState>,
    Path((model, v)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let v = number("version", &v)?;
    let l = service(&s).version(&model, v).await?;
    Ok(Json(serde_json::to_value(l).unwrap_or_default()))
}

async fn model_request(
    State(s): State<AppState>,
    Path((model, id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let l = service(&s).request(&id, Some(&model)).await?;
    Ok(Json(serde_json::to_value(l).unwrap_or_default()))
}

async fn request(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let l = service(&s).request(&id, None).await?;
    Ok(Json(serde_json::to_value(l).unwrap_or_default()))
}

async fn table(
    State(s): State<AppState>,
    Path((stream, v)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let v = number("version", &v)?;
    let l = service(&s).table(&stream, v).await?;
    Ok(Json(serde_json::to_value(l).unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct At {
    /// RFC 3339; now when absent.
    at: Option<String>,
    alias: Option<String>,
}

async fn holder(
    State(s): State<AppState>,
    Path(model): Path<String>,
    q: Result<Query<At>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) =
        q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let at_ms = match q.at.as_deref() {
        None => chrono::Utc::now().timestamp_millis(),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("at: '{t}' is not an RFC 3339 time ({e})"),
                )
            })?
            .timestamp_millis(),
    };
    let alias = q.alias.as_deref().unwrap_or("champion");
    let l = service(&s).holder_at(&model, alias, at_ms)?;
    Ok(Json(serde_json::to_value(l).unwrap_or_default()))
}
