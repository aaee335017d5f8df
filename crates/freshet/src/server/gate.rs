//! The gate every request passes: authentication, authorization, and the audit record
//! of every mutating request, allowed or not.
//!
//! [`classify`] names what each route does (an [`Action`] on a [`Resource`]); a route it
//! does not know is treated as an administrative action, so a route added later without
//! a rule here is closed to everyone but admins rather than open. `/healthz` and
//! `/readyz` stay open, `/metrics` as `auth.metrics_public` says.

use super::AppState;
use super::mlflow_access::{self, Fields, Found, Target};
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
    /// The action on the MLflow experiment or registered model the request names: the
    /// gate looks it up and applies MLflow's per-object permissions (roles over its
    /// name, or a grant on it such as its creator's MANAGE).
    Object(Action, Target),
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
    // The dashboard's page, script and style: no data, which the page reads through the
    // API with the token the user signs in with.
    if (method == Method::GET || method == Method::HEAD) && freshet_ui::asset(path).is_some() {
        return Rule::Open;
    }
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match seg.as_slice() {
        ["healthz"] | ["readyz"] => Rule::Open,
        // Declared models, filtered by the handler to those the caller may read.
        ["v1", "models"] => Rule::CheckSomewhere(Read),
        ["metrics"] if metrics_public => Rule::Open,
        ["metrics"] => Rule::Check(Read, Resource::System),
        ["v2", "health", ..] => Rule::Open,
        // OIP server metadata: the name, version and extensions, for any caller.
        ["v2"] => Rule::CheckSomewhere(Read),
        ["v1", "streams"] => Rule::Check(Read, Resource::System),
        ["v1", "streams", s, "events"] => Rule::Check(read_or(Ingest), stream(s)),
        ["v1", "models", m, "feedback"] => Rule::Check(Feedback, model(m)),
        ["v1", "models", m, "live", "replay"] => Rule::Check(Read, model(m)),
        ["v1", "models", m, "inventory"] => Rule::Check(read_or(Manage), model(m)),
        ["v1", "inventory"] => Rule::Check(Read, Resource::System),
        // The nodes and who leads each model: an operator's view of the whole system.
        ["v1", "cluster"] => Rule::Check(Read, Resource::System),
        ["v1", "models", m, "performance" | "status" | "monitoring"] => Rule::Check(Read, model(m)),
        ["v1", "models", m, "rollout"] => Rule::Check(Read, model(m)),
        ["v1", "models", m, "rollout", _] => Rule::Check(read_or(Rollout), model(m)),
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
        [
            "api" | "ajax-api",
            "3.0",
            "mlflow",
            "users",
            "permissions",
            "grant" | "revoke",
        ] => Rule::Object(Manage, Target::Granted),
        // The caller's own permission, or (for a MANAGE holder) another's: the handler.
        [
            "api" | "ajax-api",
            "3.0",
            "mlflow",
            "users",
            "permissions",
            "get",
        ] => Rule::CheckSomewhere(Read),
        ["api" | "ajax-api", "2.0", "mlflow-artifacts", "artifacts"] => {
            Rule::Object(Read, Target::ArtifactQuery)
        }
        [
            "api" | "ajax-api",
            "2.0",
            "mlflow-artifacts",
            "artifacts",
            rest @ ..,
        ] => Rule::Object(read_or(Track), Target::ArtifactPath(rest.join("/"))),
        ["api" | "ajax-api", "2.0", "mlflow-artifacts", ..] => {
            Rule::Check(read_or(Track), Resource::System)
        }
        ["get-artifact"] => Rule::Object(Read, Target::Run),
        ["model-versions", "get-artifact"] => Rule::Object(Read, Target::Model),
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

/// MLflow's routes, each an action on the experiment (through its id, a run, a logged
/// model) or the registered model it names, with MLflow's levels: reads need READ,
/// writes EDIT, deletions MANAGE; moving aliases and stages needs the operator role.
fn mlflow(method: &Method, rest: &[&str]) -> Rule {
    use Action::*;
    use Target::*;
    let get = method == Method::GET || method == Method::HEAD;
    let o = Rule::Object;
    match rest {
        ["experiments", "search" | "search-datasets"]
        | ["runs", "search"]
        | ["logged-models", "search"]
        | ["registered-models" | "model-versions", "search"] => o(Read, Listed),
        ["experiments", "create"] => o(Track, ExperimentName("name")),
        ["experiments", "get-by-name"] => o(Read, ExperimentName("experiment_name")),
        ["experiments", "get"] => o(Read, ExperimentId),
        ["experiments", "delete" | "restore"] => o(Manage, ExperimentId),
        ["experiments", _] => o(Track, ExperimentId),
        ["runs", "create"] | ["logged-models"] => o(Track, ExperimentId),
        ["runs", "get"] | ["metrics", "get-history"] | ["artifacts", "list"] => o(Read, Run),
        ["metrics", "get-history-bulk"] => o(Read, Runs),
        ["runs", "delete" | "restore"] => o(Manage, Run),
        ["runs", _] => o(Track, Run),
        ["logged-models", id] if method == Method::DELETE => o(Manage, LoggedModel(id.to_string())),
        ["logged-models", id, ..] => o(if get { Read } else { Track }, LoggedModel(id.to_string())),
        ["registered-models", "alias"] if !get => o(Rollout, Model),
        ["model-versions", "transition-stage"] => o(Rollout, Model),
        ["registered-models", "create"] => o(Register, Model),
        ["registered-models", "delete" | "rename"] | ["model-versions", "delete"] => {
            o(Manage, Model)
        }
        ["registered-models", "get" | "get-latest-versions" | "alias"]
        | ["model-versions", "get" | "get-download-uri"] => o(Read, Model),
        ["registered-models" | "model-versions", _] => o(Register, Model),
        // Whatever else MLflow serves (answered "not implemented").
        _ => Rule::Check(if get { Read } else { Track }, Resource::System),
    }
}

/// Whether the path is an MLflow route (errors there use MLflow's body shape).
fn is_mlflow(path: &str) -> bool {
    [
        "/api/2.0/mlflow",
        "/ajax-api/2.0/mlflow",
        "/api/3.0/mlflow",
        "/ajax-api/3.0/mlflow",
    ]
    .iter()
    .any(|p| path.starts_with(p))
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
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            "INVALID_PARAMETER_VALUE"
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
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
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

/// What the gate holds: the handlers' state and the body limit (MLflow requests whose
/// object is named in the body are read once here, within the same limit).
#[derive(Clone)]
pub struct GateState {
    pub app: AppState,
    pub max_body_bytes: usize,
}

/// The middleware.
pub async fn gate(State(g): State<GateState>, mut req: Request, next: Next) -> Response {
    let s = g.app;
    let gov = s.governance.clone();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let rule = classify(&method, &path, gov.metrics_public());
    let (action, mut resource, somewhere, target) = match rule {
        Rule::Open => return next.run(req).await,
        Rule::Check(a, r) => (a, r, false, None),
        Rule::CheckSomewhere(a) => (a, Resource::System, true, None),
        Rule::Object(a, t) => (a, Resource::System, false, Some(t)),
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
    let allowed = match target {
        // An unscoped grant covers every object: no lookup.
        Some(_) if principal.may(action, &Resource::System) => true,
        Some(t) => {
            let body = if t.needs_body() && method != Method::GET && method != Method::HEAD {
                let (parts, body) = req.into_parts();
                match axum::body::to_bytes(body, g.max_body_bytes).await {
                    Ok(b) => {
                        req = Request::from_parts(parts, axum::body::Body::from(b.clone()));
                        Some(b)
                    }
                    Err(_) => {
                        return deny(
                            &path,
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "request body exceeds server.max_body_bytes".into(),
                        );
                    }
                }
            } else {
                None
            };
            let fields = Fields::new(req.uri().query(), body.as_deref());
            let found = match t.find(&s, &fields).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, path = %path, "object lookup failed");
                    return deny(
                        &path,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the registry is unavailable; retry".into(),
                    );
                }
            };
            if let Found::Objects(objects) = &found
                && let Some(first) = objects.first()
            {
                resource = first.resource();
            }
            match mlflow_access::allowed(gov.permissions(), &principal, action, &found) {
                Ok(ok) => ok,
                Err(e) => {
                    tracing::error!(error = %e, "permission lookup failed");
                    return deny(
                        &path,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the permission store is unavailable; retry".into(),
                    );
                }
            }
        }
        None if somewhere => principal.may_somewhere(action),
        None => principal.may(action, &resource),
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
        // The dashboard's static page is open; the data behind it is not.
        assert_eq!(classify(&get, "/", false), Rule::Open);
        assert_eq!(classify(&get, "/ui/app.js", false), Rule::Open);
        assert_eq!(
            classify(&get, "/ui/other.js", false),
            Rule::Check(Action::Read, Resource::System)
        );
        assert_eq!(
            classify(&post, "/", false),
            Rule::Check(Action::Manage, Resource::System)
        );
        assert_eq!(
            classify(&get, "/v1/models", false),
            Rule::CheckSomewhere(Action::Read)
        );
        assert_eq!(classify(&get, "/metrics", true), Rule::Open);
        assert_eq!(
            classify(&get, "/v1/cluster", false),
            Rule::Check(Action::Read, Resource::System)
        );
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
            Rule::Object(Action::Rollout, Target::Model)
        );
        assert_eq!(
            classify(&get, "/api/2.0/mlflow/registered-models/alias", false),
            Rule::Object(Action::Read, Target::Model)
        );
        assert_eq!(
            classify(&post, "/api/2.0/mlflow/runs/search", false),
            Rule::Object(Action::Read, Target::Listed)
        );
        assert_eq!(
            classify(&post, "/api/2.0/mlflow/runs/log-batch", false),
            Rule::Object(Action::Track, Target::Run)
        );
        assert_eq!(
            classify(&post, "/api/2.0/mlflow/runs/delete", false),
            Rule::Object(Action::Manage, Target::Run)
        );
        assert_eq!(
            classify(&post, "/api/2.0/mlflow/experiments/create", false),
            Rule::Object(Action::Track, Target::ExperimentName("name"))
        );
        assert_eq!(
            classify(
                &Method::PUT,
                "/api/2.0/mlflow-artifacts/artifacts/3/r/artifacts/x",
                false
            ),
            Rule::Object(
                Action::Track,
                Target::ArtifactPath("3/r/artifacts/x".into())
            )
        );
        assert_eq!(
            classify(&post, "/api/3.0/mlflow/users/permissions/grant", false),
            Rule::Object(Action::Manage, Target::Granted)
        );
        assert_eq!(
            classify(&post, "/v1/some/new/route", false),
            Rule::Check(Action::Manage, Resource::System)
        );
    }
}
