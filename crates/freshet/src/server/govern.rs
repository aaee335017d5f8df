//! The governance API: tokens (admin), the audit trail (read and verify).

use super::AppState;
use super::error::ApiError;
use super::gate::principal_of;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use freshet_govern::GovernError;
use freshet_govern::identity::{Grant, Role};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tokens", get(list_tokens).post(create_token))
        .route("/v1/tokens/{name}", delete(revoke_token))
        .route("/v1/inventory", get(inventory))
        .route(
            "/v1/models/{model}/inventory",
            axum::routing::put(update_inventory),
        )
        .route("/v1/approvals", get(list_approvals))
        .route("/v1/approvals/{id}/approve", axum::routing::post(approve))
        .route("/v1/approvals/{id}/reject", axum::routing::post(reject))
        .route("/v1/audit", get(export))
        .route("/v1/audit/verify", get(verify))
}

impl From<GovernError> for ApiError {
    fn from(e: GovernError) -> Self {
        match e {
            GovernError::Invalid { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            }
            GovernError::NotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            GovernError::Conflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            GovernError::Store(_) | GovernError::Io(_) => {
                tracing::error!(error = %e, "governance store failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the governance store failed; see the server log",
                )
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    roles: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    /// RFC 3339 time; absent means no expiry.
    #[serde(default)]
    expires_at: Option<String>,
}

async fn create_token(
    State(s): State<AppState>,
    ext: Extensions,
    body: Result<Json<CreateToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let roles = body
        .roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()?;
    let scopes = if body.scopes.is_empty() {
        vec!["*".to_string()]
    } else {
        body.scopes
    };
    let expires_at = rfc3339("expires_at", body.expires_at.as_deref())?;
    let grant = Grant::new(roles, scopes)?;
    let by = principal_of(&ext);
    let t = s
        .governance
        .create_token(&by, &body.name, vec![grant], expires_at)?;
    let mut v = serde_json::to_value(&t.info).unwrap_or_default();
    v["token"] = json!(t.token);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list_tokens(State(s): State<AppState>) -> Result<Response, ApiError> {
    let list = s.governance.list_tokens()?;
    Ok(Json(json!({ "tokens": list })).into_response())
}

async fn revoke_token(
    State(s): State<AppState>,
    ext: Extensions,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let by = principal_of(&ext);
    let t = s.governance.revoke_token(&by, &name)?;
    Ok(Json(t).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    since: Option<String>,
}

/// The chain as JSON lines, from `since` (RFC 3339) on.
async fn export(
    State(s): State<AppState>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let since = rfc3339("since", q.since.as_deref())?;
    let dir = s.governance.audit_config().dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        freshet_govern::audit::export_jsonl(&dir, since, &mut buf).map(|_| buf)
    })
    .await
    .map_err(|_| audit_unavailable())?
    .map_err(|e| {
        tracing::error!(error = %e, "audit export failed");
        audit_unavailable()
    })?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
}

async fn verify(State(s): State<AppState>) -> Result<Response, ApiError> {
    let cfg = s.governance.audit_config().clone();
    let key = s.governance.audit().public_key();
    let report = tokio::task::spawn_blocking(move || {
        freshet_govern::audit::verify(
            &cfg.dir,
            &cfg.checkpoint_dir,
            &freshet_govern::audit::VerifyingKeyOrPath::Key(key),
        )
    })
    .await
    .map_err(|_| audit_unavailable())?
    .map_err(|e| {
        tracing::error!(error = %e, "audit verify failed");
        audit_unavailable()
    })?;
    Ok(Json(report_json(&report)).into_response())
}

/// A verify report as JSON (shared by the CLI's `--json`).
pub fn report_json(r: &freshet_govern::audit::VerifyReport) -> serde_json::Value {
    json!({
        "ok": r.is_ok(),
        "records_checked": r.records_checked,
        "last_seq": r.last_seq,
        "segments": r.segments,
        "checkpoints_checked": r.checkpoints_checked,
        "last_checkpoint_seq": r.last_checkpoint_seq,
        "first_bad": r.first_bad.as_ref().map(|b| json!({ "seq": b.seq, "reason": b.reason.to_string() })),
        "torn_tail": r.torn_tail,
    })
}

fn audit_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the audit trail cannot be read now; see the server log",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsQuery {
    state: Option<String>,
}

async fn list_approvals(
    State(s): State<AppState>,
    Query(q): Query<ApprovalsQuery>,
) -> Result<Response, ApiError> {
    use freshet_govern::approvals::State as St;
    let state = match q.state.as_deref() {
        None | Some("all") => None,
        Some("pending") => Some(St::Pending),
        Some("approved") => Some(St::Approved),
        Some("rejected") => Some(St::Rejected),
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("state: '{other}' is not one of pending, approved, rejected, all"),
            ));
        }
    };
    let list = s.governance.approvals().list(state)?;
    Ok(Json(json!({ "approvals": list })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionIn {
    #[serde(default)]
    note: Option<String>,
}

async fn approve(
    s: State<AppState>,
    ext: Extensions,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(s, ext, id, body, true).await
}

async fn reject(
    s: State<AppState>,
    ext: Extensions,
    id: Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide(s, ext, id, body, false).await
}

async fn decide(
    State(s): State<AppState>,
    ext: Extensions,
    Path(id): Path<String>,
    body: axum::body::Bytes,
    approve: bool,
) -> Result<Response, ApiError> {
    use freshet_govern::approvals::DecisionError as D;
    let input: DecisionIn = if body.is_empty() {
        DecisionIn::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("body: {e}"))
        })?
    };
    let by = principal_of(&ext);
    let approvals = s.governance.approvals().clone();
    let r = tokio::task::spawn_blocking(move || {
        approvals.decide(&id, &by, approve, input.note.as_deref())
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))?
    .map_err(|e| match e {
        D::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        D::NotApprover { .. } | D::SelfApproval { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
        }
        D::AlreadyDecided { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
        D::Store(g) => g.into(),
    })?;
    Ok(Json(r).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryQuery {
    format: Option<String>,
}

/// The model inventory as JSON (default) or CSV.
async fn inventory(
    State(s): State<AppState>,
    Query(q): Query<InventoryQuery>,
) -> Result<Response, ApiError> {
    let entries = s.governance.inventory()?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(json!({ "models": entries })).into_response()),
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            freshet_govern::inventory::to_csv(&entries),
        )
            .into_response()),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("format: '{other}' is not json or csv"),
        )),
    }
}

async fn update_inventory(
    State(s): State<AppState>,
    ext: Extensions,
    Path(model): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let patch: freshet_govern::inventory::Patch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("body: {e}")))?;
    let by = principal_of(&ext);
    s.governance.update_inventory(&model, &patch, &by)?;
    let entry = s
        .governance
        .inventory()?
        .into_iter()
        .find(|e| e.model == model);
    Ok(Json(entry).into_response())
}

/// An optional RFC 3339 time from the request; a 400 naming `field` if it is not one.
fn rfc3339(
    field: &str,
    value: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        format!("{field}: not an RFC 3339 time ({e})"),
                    )
                })
        })
        .transpose()
}
