//! The web dashboard's files (`freshet-ui`), served at `/` on the API's port with the
//! headers that lock them down. The page holds no data: it signs in with a token kept in
//! the tab's session storage and reads the same authenticated, audited API as every
//! client, so a token sees in the dashboard exactly what it may read through the API.
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

pub fn router() -> Router<AppState> {
    let mut r = Router::new().route("/v1/models", get(models));
    for a in &freshet_ui::ASSETS {
        r = r.route(a.path, get(move || async move { asset(a) }));
    }
    r
}

fn asset(a: &'static freshet_ui::Asset) -> Response {
    let mut r = a.body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(freshet_ui::CONTENT_SECURITY_POLICY),
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
