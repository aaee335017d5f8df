//! The one place where errors become HTTP statuses. Client mistakes are 4xx with a
//! message naming the problem (never a PII value); server trouble is 5xx with a
//! generic message and the detail in the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use freshet_ingest::IngestError;
use serde_json::json;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: serde_json::Value,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: serde_json::Value::Null,
            retry_after_secs: None,
        }
    }

    /// Tell the client when to try again (`Retry-After`).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        use IngestError as E;
        match e {
            E::Malformed {
                line,
                column,
                message,
            } => Self {
                detail: json!({ "line": line, "column": column }),
                ..Self::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_body",
                    format!("malformed body at line {line}, column {column}: {message}"),
                )
            },
            E::UnknownStream(s) => Self::new(
                StatusCode::NOT_FOUND,
                "unknown_stream",
                format!("unknown stream '{s}'"),
            ),
            E::Saturated(m) => Self {
                retry_after_secs: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "saturated",
                    format!("{m}; retry later"),
                )
            },
            E::Conflict(m) => Self {
                retry_after_secs: Some(1),
                ..Self::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("{m}; retry later with the same key"),
                )
            },
            E::TooLarge(m) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            E::AckTimeout(ms) => Self {
                retry_after_secs: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "commit_timeout",
                    format!(
                        "the commit did not finish within {ms} ms; retry with the same Idempotency-Key to avoid duplicates"
                    ),
                )
            },
            E::BadRequest(m) => Self::new(StatusCode::BAD_REQUEST, "bad_request", m),
            E::Config(c) => Self::new(StatusCode::BAD_REQUEST, "bad_request", c.to_string()),
            E::ShuttingDown => Self {
                retry_after_secs: Some(2),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the server is shutting down",
                )
            },
            e @ (E::Commit(_) | E::Io { .. }) => {
                tracing::error!(error = %e, "ingest failed on the server side");
                Self {
                    retry_after_secs: Some(1),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "storage is unavailable; nothing was acknowledged, retry",
                    )
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let (serde_json::Value::Object(d), Some(obj)) =
            (&self.detail, body["error"].as_object_mut())
        {
            obj.extend(d.clone());
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<freshet_serve::ServeError> for ApiError {
    fn from(e: freshet_serve::ServeError) -> Self {
        use freshet_serve::ServeError as S;
        match e {
            S::NotServed(_) => Self::new(StatusCode::NOT_FOUND, "not_served", e.to_string()),
            S::BadRequest(m) => Self::new(StatusCode::BAD_REQUEST, "bad_request", m),
            S::TooLarge(m) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            e @ (S::Load { .. } | S::Registry(_) | S::Lake(_) | S::Storage(_)) => {
                tracing::error!(error = %e, "scoring failed on the server side");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the model could not answer; see the server log",
                )
            }
        }
    }
}

/// An error on the MLflow API, in MLflow's body shape (`error_code`, `message`) and
/// status codes, so that MLflow clients react as they would to an MLflow server: a
/// client mistake is never a 5xx (the client retries those for minutes).
#[derive(Debug)]
pub struct MlflowError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl MlflowError {
    /// A failure on the server's side (a task that stopped), said without detail.
    pub fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "INTERNAL_ERROR",
            message: "internal error".into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_PARAMETER_VALUE",
            message: message.into(),
        }
    }
}

impl From<freshet_registry::RegistryError> for MlflowError {
    fn from(e: freshet_registry::RegistryError) -> Self {
        use freshet_registry::RegistryError as R;
        let status = match &e {
            R::NotFound(_) => StatusCode::NOT_FOUND,
            R::AlreadyExists(_) | R::InvalidParameter(_) | R::InvalidState(_) => {
                StatusCode::BAD_REQUEST
            }
            R::Fenced(_) => StatusCode::CONFLICT,
            // The shared registry database is unreachable: worth a retry.
            R::Database(m) if m.starts_with("cannot connect") => StatusCode::SERVICE_UNAVAILABLE,
            R::Storage(_) | R::Database(_) | R::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status.is_server_error() {
            tracing::error!(error = %e, "registry storage failed");
            "internal error; see the server log".to_string()
        } else {
            e.to_string()
        };
        Self {
            status,
            code: e.mlflow_code(),
            message,
        }
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error_code": self.code, "message": self.message })),
        )
            .into_response()
    }
}
