//! The gate every request passes: authentication, authorization, and the audit record
//! of every mutating request, allowed or not.
//!
//! [`classify`] names what each route does (an [`Action`] on a [`Resource`]); a route it
//! does not know is treated as an administrative action, so a route added later without
//! a rule here is closed to everyone but admins rather than open. `/healthz` and
//! `/readyz` stay open, `/metrics` as `auth.metrics_public` says.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use freshet_govern::audit::{AuditEvent, Outcome};
use freshet_govern::authn::Unauthenticated;
use freshet_govern::identity::{Action, Principal, Resource};
use serde_json::json;
use std::collections::BTreeMap;

/// What a route does, for the checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// No credentials needed.
    Open,
    Check(Action, Resource),
    /// The action on some resource; the service checks which (approvals, per model).
    CheckSomewhere(Action),
}

/// The rule for a request.
pub fn classify(method: &Method, path: &str, metrics_public: bool) -> Rule {
    use Action::*;
    let read_or = |a: Action| {
        if method == Method::GET || method == Method::HEAD {
            Read
        } else {
            a
        }
    };
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match seg.as_slice() {
        ["healthz"] | ["readyz"] => Rule::Open,
        ["metrics"] if metrics_public => Rule::Open,
        ["metrics"] => Rule::Check(Read, Resource::System),
        ["v2", "health", ..] => Rule::Open,
        ["v1", "streams"] => Rule::Check(Read, Resource::System),
        ["v1", "streams", s, "events"] => Rule::Check(read_or(Ingest), stream(s)),
        ["v1", "models", m, "feedback"] => Rule::Check(Feedback, model(m)),
        ["v1", "models", m, "live", "replay"] => Rule::Check(Read, model(m)),
        ["v1", "models", m, "inventory"] => Rule::Check(read_or(Manage), model(m)),
        ["v1", "inventory"] => Rule::Check(Read, Resource::System),
        ["v1", "models", m, "performance" | "status" | "monitoring"] => Rule::Check(Read, model(m)),
        ["v1", "tokens", ..] => Rule::Check(Manage, Resource::System),
        ["v1", "approvals"] => Rule::Check(Read, Resource::System),
        // Who may decide is checked per model by the approvals service (an approver
        // scoped to `model:fraud*` decides fraud's requests only).
        ["v1", "approvals", _, "approve" | "reject"] if method == Method::POST => {
            Rule::CheckSomewhere(Approve)
        }
        ["v1", "audit", ..] => Rule::Check(Read, Resource::System),
        // Lineage of one model reads that model; across models (a request id of any
        // model, the versions trained on a table) it reads everything.
        ["v1", "lineage", "models", m, ..] => Rule::Check(Read, model(m)),
        ["v1", "lineage", ..] => Rule::Check(Read, Resource::System),
        ["serving-endpoints", m, "invocations"] => Rule::Check(Score, model(m)),
        ["v2", "models", m, .., "infer"] => Rule::Check(Score, model(m)),
        ["v2", "models", m, ..] => Rule::Check(Read, model(m)),
        ["api" | "ajax-api", "2.0", "mlflow", rest @ ..] => mlflow(method, rest),
        ["api" | "ajax-api", "2.0", "mlflow-artifacts", ..] => {
            Rule::Check(read_or(Track), Resource::System)
        }
        _ => Rule::Check(
            if method == Method::GET || method == Method::HEAD {
                Read
            } else {
                Manage
            },
            Resource::System,
        ),
    }
}

fn stream(s: &str) -> Resource {
    Resource::Stream(s.to_string())
}

fn model(m: &str) -> Resource {
    Resource::Model(m.to_string())
}

/// MLflow's routes: reads, tracking writes, registrations, and the alias and stage
/// moves that decide what is served.
fn mlflow(method: &Method, rest: &[&str]) -> Rule {
    use Action::*;
    let read = method == Method::GET
        || rest.last().is_some_and(|l| {
            matches!(
                *l,
                "search" | "search-datasets" | "get-history" | "get-latest-versions" | "get"
            )
        });
    if read {
        return Rule::Check(Read, Resource::System);
    }
    let action = match rest {
        ["registered-models", "alias"] | ["model-versions", "transition-stage"] => Rollout,
        ["registered-models", "delete"] | ["model-versions", "delete"] => Manage,
        ["registered-models", ..] | ["model-versions", ..] => Register,
        _ => Track,
    };
    Rule::Check(action, Resource::System)
}

/// Whether the path is an MLflow route (errors there use MLflow's body shape).
fn is_mlflow(path: &str) -> bool {
    path.starts_with("/api/2.0/mlflow") || path.starts_with("/ajax-api/2.0/mlflow")
}

fn deny(path: &str, status: StatusCode, message: String) -> Response {
    let mut resp = if path.starts_with("/v2/") {
        // The Open Inference Protocol's error shape.
        (status, axum::Json(json!({ "error": message }))).into_response()
    } else if is_mlflow(path) {
        let code = if status == StatusCode::UNAUTHORIZED {
            "UNAUTHENTICATED"
        } else if status == StatusCode::FORBIDDEN {
            "PERMISSION_DENIED"
        } else {
            "TEMPORARILY_UNAVAILABLE"
        };
        (
            status,
            axum::Json(json!({ "error_code": code, "message": message })),
        )
            .into_response()
    } else {
        let code = if status == StatusCode::UNAUTHORIZED {
            "unauthenticated"
        } else if status == StatusCode::FORBIDDEN {
            "forbidden"
        } else {
            "unavailable"
        };
        (
            status,
            axum::Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    };
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"freshet\", Basic realm=\"freshet\""),
        );
    }
    resp
}

/// A request id: the client's `x-request-id` when it is short and plain, else a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string)
}

/// The middleware.
pub async fn gate(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let gov = s.governance.clone();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let rule = classify(&method, &path, gov.metrics_public());
    let (action, resource, somewhere) = match rule {
        Rule::Open => return next.run(req).await,
        Rule::Check(a, r) => (a, r, false),
        Rule::CheckSomewhere(a) => (a, Resource::System, true),
    };
    let rid = request_id(&req);
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let principal = match gov
        .authenticator()
        .authenticate(authorization.as_deref())
        .await
    {
        Ok(p) => p,
        Err(why) => {
            let status = match why {
                Unauthenticated::ProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                Unauthenticated::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNAUTHORIZED,
            };
            tracing::info!(method = %method, path = %path, request_id = %rid, reason = why.reason(), "request not authenticated");
            if action.mutates() || status == StatusCode::UNAUTHORIZED {
                let ev = event(
                    "unknown",
                    action,
                    &resource,
                    &rid,
                    Outcome::Unauthenticated,
                    &method,
                    &path,
                    Some(why.reason()),
                    None,
                );
                if let Err(resp) = record(&gov, ev, &path).await {
                    return resp;
                }
            }
            return deny(&path, status, why.message());
        }
    };
    let allowed = if somewhere {
        principal.may_somewhere(action)
    } else {
        principal.may(action, &resource)
    };
    if !allowed {
        tracing::info!(principal = %principal.name, action = action.as_str(), resource = %resource, request_id = %rid, "request denied");
        let ev = event(
            &principal.name,
            action,
            &resource,
            &rid,
            Outcome::Denied,
            &method,
            &path,
            None,
            None,
        );
        if let Err(resp) = record(&gov, ev, &path).await {
            return resp;
        }
        return deny(
            &path,
            StatusCode::FORBIDDEN,
            format!(
                "{} may not {} {}",
                principal.name,
                action.as_str(),
                resource
            ),
        );
    }
    let name = principal.name.clone();
    req.extensions_mut().insert(principal);
    let mut resp = next.run(req).await;
    if !resp.headers().contains_key("x-request-id")
        && let Ok(v) = HeaderValue::from_str(&rid)
    {
        resp.headers_mut().insert("x-request-id", v);
    }
    if action.mutates() {
        let status = resp.status();
        let outcome = if status.is_success() || status.is_redirection() {
            Outcome::Succeeded
        } else if status == StatusCode::FORBIDDEN {
            // A service's own refusal (maker-checker, a scoped approver).
            Outcome::Denied
        } else {
            Outcome::Failed
        };
        let ev = event(
            &name,
            action,
            &resource,
            &rid,
            outcome,
            &method,
            &path,
            None,
            Some(status),
        );
        if let Err(e) = record(&gov, ev, &path).await {
            return e;
        }
    }
    resp
}

#[allow(clippy::too_many_arguments)]
fn event(
    principal: &str,
    action: Action,
    resource: &Resource,
    rid: &str,
    outcome: Outcome,
    method: &Method,
    path: &str,
    reason: Option<&str>,
    status: Option<StatusCode>,
) -> AuditEvent {
    let mut detail = BTreeMap::new();
    detail.insert("method".to_string(), method.to_string());
    detail.insert("path".to_string(), path.to_string());
    if let Some(r) = reason {
        detail.insert("reason".to_string(), r.to_string());
    }
    if let Some(s) = status {
        detail.insert("status".to_string(), s.as_u16().to_string());
    }
    AuditEvent {
        principal: principal.to_string(),
        action: action.as_str().to_string(),
        resource: resource.to_string(),
        request_id: rid.to_string(),
        outcome,
        detail,
    }
}

/// Appends to the audit; a request whose record cannot be written is answered 503, so
/// nothing is acknowledged unaudited.
async fn record(
    gov: &freshet_govern::Governance,
    ev: AuditEvent,
    path: &str,
) -> Result<u64, Response> {
    gov.audit().append(ev).await.map_err(|e| {
        tracing::error!(error = %e, "audit append failed");
        deny(
            path,
            StatusCode::SERVICE_UNAVAILABLE,
            "the audit trail is unavailable; retry".into(),
        )
    })
}

/// Who made the request, for handlers that record it (e.g. as a token's creator).
pub fn principal_of(req_ext: &axum::http::Extensions) -> Principal {
    req_ext
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_actions_and_unknown_routes_are_admin_only() {
        let post = Method::POST;
        let get = Method::GET;
        assert_eq!(classify(&get, "/healthz", false), Rule::Open);
        assert_eq!(classify(&get, "/metrics", true), Rule::Open);
        assert_eq!(
            classify(&get, "/metrics", false),
            Rule::Check(Action::Read, Resource::System)
        );
        assert_eq!(
            classify(&post, "/v1/streams/pay/events", false),
            Rule::Check(Action::Ingest, stream("pay"))
        );
        assert_eq!(
            classify(&post, "/serving-endpoints/fraud/invocations", false),
            Rule::Check(Action::Score, model("fraud"))
        );
        assert_eq!(
            classify(&post, "/v2/models/fraud/versions/3/infer", false),
            Rule::Check(Action::Score, model("fraud"))
        );
        assert_eq!(
            classify(&post, "/api/2.0/mlflow/registered-models/alias", false),
            Rule::Check(Action::Rollout, Resource::System)
        );
        assert_eq!(
            classify(&post, "/api/2.0/mlflow/runs/search", false),
            Rule::Check(Action::Read, Resource::System)
        );
        assert_eq!(
            classify(&post, "/api/2.0/mlflow/runs/log-batch", false),
            Rule::Check(Action::Track, Resource::System)
        );
        assert_eq!(
            classify(&post, "/v1/some/new/route", false),
            Rule::Check(Action::Manage, Resource::System)
        );
    }
}
