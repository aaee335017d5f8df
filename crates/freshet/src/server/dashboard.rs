//! The web dashboard: a page built into the binary (no build step, no internet), served
//! at `/` on the API's port. The page holds no data: it signs in with a token kept in the
//! tab's session storage and reads the same authenticated, audited API as every client,
//! so a token sees in the dashboard exactly what it may read through the API.
//!
//! Also `GET /v1/models`: the names of the declared models the caller may read, which
//! the overview lists.

use super::AppState;
use super::gate::principal_of;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use freshet_govern::identity::{Action, Resource};

const INDEX: &str = include_str!("dashboard/index.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");

/// Scripts and styles from this origin only, no framing, no referrer: the token the page
/// holds can only be read by the page's own code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/v1/models", get(models))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The declared models this caller may read.
async fn models(State(s): State<AppState>, req: Request<axum::body::Body>) -> Response {
    let principal = principal_of(req.extensions());
    let models: Vec<&String> = s
        .models
        .iter()
        .filter(|m| principal.may(Action::Read, &Resource::Model((*m).clone())))
        .collect();
    axum::Json(serde_json::json!({ "models": models, "principal": principal.name })).into_response()
}
