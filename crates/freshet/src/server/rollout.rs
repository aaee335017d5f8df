//! A model's rollout over HTTP: its status, and the hand steps an operator takes —
//! start a rollout of a version, promote, roll back (to the recorded champion or to a
//! given version), pause, resume. Thin over the rollout controller the server's own
//! loop runs; every step goes through the gate (the `rollout` action on the model: the
//! operator role), lands in the audit trail with the caller's name, and a promotion of
//! a model whose risk tier needs an approval waits for one, requested by the caller.

use super::AppState;
use super::error::ApiError;
use super::gate::principal_of;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use freshet_serve::rollout::{RolloutError, RolloutState};
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models/{model}/rollout", get(status))
        .route("/v1/models/{model}/rollout/{step}", post(step))
}

/// What a step may say; each step reads the fields it needs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    /// `start`: the version to roll out.
    version: Option<i64>,
    /// `rollback`: restore this version instead of the recorded champion.
    to_version: Option<i64>,
    /// `pause`: why (shown in the status and the decisions).
    reason: Option<String>,
}

fn declared(s: &AppState, model: &str) -> Result<(), ApiError> {
    if s.models.iter().any(|m| m == model) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!("no model '{model}' is declared in this server's configuration"),
        ))
    }
}

fn rollout_error(e: RolloutError) -> ApiError {
    use RolloutError as R;
    match e {
        R::UnknownModel(_) | R::VersionNotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        R::NoRollout(_) | R::InProgress { .. } | R::NoChampion { .. } | R::InvalidOp { .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        R::Conflict(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()).retry_after(1)
        }
        e @ (R::BadState { .. } | R::Registry(_)) => {
            tracing::error!(error = %e, "rollout step failed on the server side");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the rollout could not be read or written; see the server log",
            )
        }
    }
}

fn state_json(s: &RolloutState) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or(serde_json::Value::Null)
}

async fn status(
    State(s): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    declared(&s, &model)?;
    let (store, controller) = (s.tracking.clone(), s.rollout.clone());
    let st = tokio::task::spawn_blocking(move || controller.status(store.as_ref(), &model))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))?
        .map_err(rollout_error)?;
    Ok(axum::Json(serde_json::json!({
        "champion": st.champion,
        "challenger": st.challenger,
        "auto": st.auto,
        "state": st.state.as_ref().map(state_json),
    }))
    .into_response())
}

async fn step(
    State(s): State<AppState>,
    Path((model, step)): Path<(String, String)>,
    req: Request<axum::body::Body>,
) -> Result<Response, ApiError> {
    declared(&s, &model)?;
    let requester = principal_of(req.extensions()).name;
    let raw: Bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is over 64 KiB",
            )
        })?;
    // No body, or `null`, is a step with no fields.
    let body: StepBody = if raw.iter().all(u8::is_ascii_whitespace) {
        StepBody::default()
    } else {
        serde_json::from_slice::<Option<StepBody>>(&raw)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("the body is not a rollout step: {e}"),
                )
            })?
    };
    let now = chrono::Utc::now().timestamp_millis();
    let (store, controller) = (s.tracking.clone(), s.rollout.clone());
    let task =
        move || -> Result<RolloutState, ApiError> {
            let store = store.as_ref();
            match step.as_str() {
            "start" => {
                let v = body.version.ok_or_else(|| {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "start needs \"version\"")
                })?;
                controller.start(store, &model, v, now)
            }
            "promote" => controller.promote_as(store, &model, now, &requester),
            "rollback" => match body.to_version {
                Some(v) => controller.rollback_to(store, &model, v, now),
                None => controller.rollback(store, &model, now),
            },
            "pause" => {
                let reason = body
                    .reason
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| format!("paused by {requester}"));
                if reason.chars().count() > 500 {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "\"reason\" is longer than 500 characters",
                    ));
                }
                controller.pause(store, &model, &reason, now)
            }
            "resume" => controller.resume(store, &model, now),
            other => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_step",
                    format!(
                        "no rollout step '{other}': use start, promote, rollback, pause or resume"
                    ),
                ));
            }
        }
        .map_err(rollout_error)
        };
    let state = tokio::task::spawn_blocking(task).await.map_err(|_| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed")
    })??;
    if let Some(d) = state.decisions.last() {
        tracing::info!(model = %state.model, from = %d.from, to = %d.to, by = %d.reason, "rollout step");
    }
    Ok(axum::Json(state_json(&state)).into_response())
}
