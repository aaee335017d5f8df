//! MLflow's per-object permissions on the HTTP side: which experiment or registered model
//! a request touches ([`Target`], found by the gate before the handler runs), searches
//! that keep only what the caller may read ([`Reader`]), and MLflow 3's
//! `users/permissions/{grant,revoke,get}`. The rules themselves are
//! `freshet_govern::permissions`.

use super::{AppState, MlflowError};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Extensions, StatusCode};
use axum::routing::{get, post};
use freshet_govern::GovernError;
use freshet_govern::identity::{Action, AuthMethod, Principal, Resource};
use freshet_govern::permissions::{self, Object, Permission, PermissionStore};
use freshet_registry::model::Page;
use freshet_registry::store::Store;
use freshet_registry::{RegistryError, artifacts::ArtifactPath};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Where the object a request acts on is named.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `experiment_id` in the query or the body.
    ExperimentId,
    /// An experiment by its name in this field (it may not exist yet: create).
    ExperimentName(&'static str),
    /// The experiment of the run `run_id` (or `run_uuid`).
    Run,
    /// The experiments of every `run_id` in the query (bulk metric history).
    Runs,
    /// A registered model by `name`.
    Model,
    /// The experiment of the logged model with this id (from the path).
    LoggedModel(String),
    /// The experiment a `mlflow-artifacts` path starts with (the raw path).
    ArtifactPath(String),
    /// The `path` of an artifact listing's query.
    ArtifactQuery,
    /// `resource_type` and `resource_id` of a permission grant or revocation.
    Granted,
    /// A search: allowed to whoever may read something; the handler keeps what the
    /// caller may read.
    Listed,
}

/// What a request's target came to.
pub enum Found {
    Objects(Vec<Object>),
    /// Not there (an unknown id, a missing field): the handler answers 404 or 400 without
    /// touching anything, so the caller needs the action somewhere only.
    Missing,
    /// Files under no experiment: only an unscoped grant reaches them.
    Unowned,
    /// The request names no kind of object the handler acts on (a grant on an unknown
    /// resource type): the handler refuses it as bad input, so any reader gets that 400.
    Invalid,
}

/// The request's fields: its query pairs and, for a JSON body, the body.
pub struct Fields {
    query: Vec<(String, String)>,
    body: Option<Value>,
}

impl Fields {
    pub fn new(query: Option<&str>, body: Option<&[u8]>) -> Self {
        Fields {
            query: query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
            body: body.and_then(|b| serde_json::from_slice(b).ok()),
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| match self.body.as_ref()?.get(key)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|v| !v.is_empty())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Target {
    /// Whether finding the object needs the request's body.
    pub fn needs_body(&self) -> bool {
        matches!(
            self,
            Target::ExperimentId
                | Target::ExperimentName(_)
                | Target::Run
                | Target::Model
                | Target::Granted
        )
    }

    /// Looks the object up in the registry (on the blocking pool).
    pub async fn find(&self, s: &AppState, f: &Fields) -> Result<Found, RegistryError> {
        let store = s.tracking.clone();
        let plan = match self {
            Target::Listed => return Ok(Found::Missing),
            Target::Model => {
                return Ok(match f.get("name") {
                    Some(name) => Found::Objects(vec![Object::Model { name }]),
                    None => Found::Missing,
                });
            }
            Target::ExperimentId => Lookup::Experiment(f.get("experiment_id")),
            Target::ExperimentName(field) => Lookup::ByName(f.get(field)),
            Target::Run => Lookup::Runs(
                f.get("run_id")
                    .or_else(|| f.get("run_uuid"))
                    .into_iter()
                    .collect(),
            ),
            Target::Runs => Lookup::Runs(f.all("run_id")),
            Target::LoggedModel(id) => Lookup::LoggedModel(id.clone()),
            Target::ArtifactPath(raw) => Lookup::Artifact(Some(raw.clone())),
            Target::ArtifactQuery => Lookup::Artifact(f.get("path")),
            Target::Granted => match f.get("resource_type").as_deref() {
                Some("registered_model") => {
                    return Ok(match f.get("resource_id") {
                        Some(name) => Found::Objects(vec![Object::Model { name }]),
                        None => Found::Missing,
                    });
                }
                Some("experiment") if f.get("resource_id").is_some() => {
                    Lookup::Experiment(f.get("resource_id"))
                }
                _ => return Ok(Found::Invalid),
            },
        };
        tokio::task::spawn_blocking(move || plan.run(store.as_ref()))
            .await
            .map_err(|_| RegistryError::Io(std::io::Error::other("the lookup task failed")))?
    }
}

enum Lookup {
    Experiment(Option<String>),
    ByName(Option<String>),
    Runs(Vec<String>),
    LoggedModel(String),
    Artifact(Option<String>),
}

/// A registry lookup that found nothing is `Missing`; any other failure is passed on.
fn missing_if_absent(r: Result<Found, RegistryError>) -> Result<Found, RegistryError> {
    match r {
        Err(RegistryError::NotFound(_)) => Ok(Found::Missing),
        other => other,
    }
}

impl Lookup {
    fn run(self, st: &dyn Store) -> Result<Found, RegistryError> {
        match self {
            Lookup::ByName(None) => Ok(Found::Missing),
            // Without an id MLflow means the Default experiment (a run created without
            // one lands there), so that is the one checked.
            Lookup::Experiment(id) => missing_if_absent(
                experiment(st, id.as_deref().unwrap_or(DEFAULT_EXPERIMENT)).map(one),
            ),
            Lookup::ByName(Some(name)) => Ok(match st.get_experiment_by_name(&name) {
                Ok(e) => one(Object::Experiment {
                    id: e.experiment_id,
                    name: e.name,
                }),
                // Not there yet (create): the roles over the name decide.
                Err(RegistryError::NotFound(_)) => one(Object::Experiment {
                    id: String::new(),
                    name,
                }),
                Err(e) => return Err(e),
            }),
            Lookup::Runs(ids) if ids.is_empty() => Ok(Found::Missing),
            Lookup::Runs(ids) => {
                // Every run that exists must be readable; one that does not cannot hide
                // the others (the handler answers for what exists).
                let mut out: Vec<Object> = Vec::new();
                for id in &ids {
                    let run = match st.get_run(id) {
                        Ok(r) => r,
                        Err(RegistryError::NotFound(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    let o = experiment(st, &run.info.experiment_id)?;
                    if !out.contains(&o) {
                        out.push(o);
                    }
                }
                Ok(if out.is_empty() {
                    Found::Missing
                } else {
                    Found::Objects(out)
                })
            }
            Lookup::LoggedModel(id) => missing_if_absent(
                st.get_logged_model(&id)
                    .and_then(|m| experiment(st, &m.info.experiment_id))
                    .map(one),
            ),
            Lookup::Artifact(raw) => {
                // The path as the handler will see it: percent-decoded, then checked
                // (no `..`), so its first segment is the experiment it is under.
                let Some(raw) = raw else {
                    return Ok(Found::Unowned);
                };
                let decoded = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy();
                let Ok(path) = ArtifactPath::parse(&decoded) else {
                    return Ok(Found::Unowned);
                };
                let first = path.as_str().split('/').next().unwrap_or_default();
                if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(Found::Unowned);
                }
                match experiment(st, first) {
                    Ok(o) => Ok(one(o)),
                    Err(RegistryError::NotFound(_)) => Ok(Found::Unowned),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// MLflow's Default experiment.
const DEFAULT_EXPERIMENT: &str = "0";

fn one(o: Object) -> Found {
    Found::Objects(vec![o])
}

fn experiment(st: &dyn Store, id: &str) -> Result<Object, RegistryError> {
    let e = st.get_experiment(id)?;
    Ok(Object::Experiment {
        id: e.experiment_id,
        name: e.name,
    })
}

/// Whether `p` may do `action` on every object found. Moving aliases and stages is the
/// operator role's over the model, whatever the object grants say.
pub fn allowed(
    perms: &PermissionStore,
    p: &Principal,
    action: Action,
    found: &Found,
) -> Result<bool, GovernError> {
    match found {
        Found::Missing => Ok(p.may_somewhere(action)),
        Found::Invalid => Ok(p.may_somewhere(Action::Read)),
        Found::Unowned => Ok(p.may(action, &Resource::System)),
        Found::Objects(objects) => {
            for o in objects {
                let ok = match Permission::needed_for(action) {
                    Some(need) => perms.allows(p, o, need)?,
                    None => p.may(action, &o.resource()),
                };
                if !ok {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// The caller of a search, to keep only what it may read.
#[derive(Clone)]
pub struct Reader {
    principal: Principal,
    gov: Arc<freshet_govern::Governance>,
    everything: bool,
}

impl Reader {
    pub fn of(s: &AppState, ext: &Extensions) -> Self {
        // The gate always sets the principal; without one nothing is readable.
        let principal = ext.get::<Principal>().cloned().unwrap_or(Principal {
            name: "unknown".into(),
            method: AuthMethod::Token,
            grants: Vec::new(),
        });
        let everything = principal.may(Action::Read, &Resource::System);
        Reader {
            principal,
            gov: s.governance.clone(),
            everything,
        }
    }

    /// Whether the caller may read `o`; a store failure counts as no (logged).
    pub fn may_read(&self, o: &Object) -> bool {
        if self.everything {
            return true;
        }
        match self
            .gov
            .permissions()
            .allows(&self.principal, o, Permission::Read)
        {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, principal = %self.principal.name, "permission lookup failed; hiding the object");
                false
            }
        }
    }

    pub fn may_read_model(&self, name: &str) -> bool {
        self.may_read(&Object::Model {
            name: name.to_string(),
        })
    }

    /// The experiment ids of a search the caller may read (unknown ids are dropped:
    /// nothing is under them).
    pub fn readable_experiments(&self, st: &dyn Store, ids: Vec<String>) -> Vec<String> {
        if self.everything {
            return ids;
        }
        ids.into_iter()
            .filter(|id| match experiment(st, id) {
                Ok(o) => self.may_read(&o),
                Err(_) => false,
            })
            .collect()
    }
}

/// How many store pages one filtered search reads at most before answering a short
/// page (with a token to go on from).
const MAX_ROUNDS: usize = 32;

/// A page of `n` items the caller may read: asks the store for what is still missing
/// until the page is full or the store has no more, so the next-page token stays exact.
pub fn readable_page<T>(
    n: usize,
    token: Option<String>,
    mut fetch: impl FnMut(usize, Option<String>) -> Result<Page<T>, RegistryError>,
    keep: impl Fn(&T) -> bool,
) -> Result<Page<T>, RegistryError> {
    let mut items = Vec::new();
    let mut token = token;
    for _ in 0..MAX_ROUNDS {
        let page = fetch(n - items.len(), token.take())?;
        items.extend(page.items.into_iter().filter(|x| keep(x)));
        token = page.next_page_token;
        if items.len() >= n || token.is_none() {
            break;
        }
    }
    Ok(Page {
        items,
        next_page_token: token,
    })
}

/// MLflow 3's per-user permission routes.
pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for p in ["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"] {
        r = r
            .route(&format!("{p}/users/permissions/grant"), post(grant))
            .route(&format!("{p}/users/permissions/revoke"), post(revoke))
            .route(&format!("{p}/users/permissions/get"), get(check));
    }
    r
}

#[derive(Deserialize)]
struct GrantIn {
    username: String,
    resource_type: String,
    resource_id: String,
    #[serde(default)]
    permission: Option<String>,
}

impl GrantIn {
    fn principal(&self) -> Result<String, MlflowError> {
        permissions::principal_name(&self.username).map_err(governed)
    }
}

fn governed(e: GovernError) -> MlflowError {
    match e {
        GovernError::Invalid { .. } => MlflowError::invalid(e.to_string()),
        GovernError::NotFound { .. } => MlflowError {
            status: StatusCode::NOT_FOUND,
            code: "RESOURCE_DOES_NOT_EXIST",
            message: e.to_string(),
        },
        GovernError::Conflict { .. } => MlflowError {
            status: StatusCode::CONFLICT,
            code: "RESOURCE_ALREADY_EXISTS",
            message: e.to_string(),
        },
        GovernError::Store(_) | GovernError::Io(_) => {
            tracing::error!(error = %e, "permission store failed");
            MlflowError::internal()
        }
    }
}

/// The object a grant names, which must exist.
async fn object_of(
    s: &AppState,
    resource_type: &str,
    resource_id: &str,
) -> Result<Object, MlflowError> {
    let id = resource_id.to_string();
    match resource_type {
        "experiment" => {
            let e = super::mlflow::call(s, move |st| st.get_experiment(&id)).await?;
            Ok(Object::Experiment {
                id: e.experiment_id,
                name: e.name,
            })
        }
        "registered_model" => {
            let m = super::mlflow::call(s, move |st| st.get_registered_model(&id)).await?;
            Ok(Object::Model { name: m.name })
        }
        other => Err(MlflowError::invalid(format!(
            "resource_type: '{other}' is not supported; expected experiment or registered_model"
        ))),
    }
}

/// `POST users/permissions/grant`: the caller needs MANAGE on the object (the gate).
async fn grant(
    State(s): State<AppState>,
    ext: Extensions,
    b: Bytes,
) -> Result<Json<Value>, MlflowError> {
    let req: GrantIn = super::mlflow::body(&b)?;
    let principal = req.principal()?;
    let level = req
        .permission
        .as_deref()
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'permission'."))?
        .parse::<Permission>()
        .map_err(governed)?;
    let object = object_of(&s, &req.resource_type, &req.resource_id).await?;
    let by = super::gate::principal_of(&ext);
    let (o, who) = (object.clone(), principal.clone());
    governed_call(&s, move |gov| {
        known_user(gov, &who)?;
        gov.permissions().put(&o, &who, level, &by.name)
    })
    .await?;
    tracing::info!(principal = %principal, resource = %object.resource(), permission = level.as_str(), "permission granted");
    Ok(Json(json!({})))
}

/// A grant to a token must name one that exists and is not revoked (MLflow answers an
/// unknown user with RESOURCE_DOES_NOT_EXIST), so a token made later under a revoked
/// name inherits nothing. OIDC subjects are not known before they sign in.
fn known_user(gov: &freshet_govern::Governance, principal: &str) -> Result<(), GovernError> {
    let Some(name) = principal.strip_prefix("token:") else {
        return Ok(());
    };
    if gov
        .list_tokens()?
        .iter()
        .any(|t| t.name == name && t.revoked_at.is_none())
    {
        Ok(())
    } else {
        Err(GovernError::NotFound {
            what: "user",
            name: name.to_string(),
        })
    }
}

/// Runs `f` against the governance stores (SQLite) off the async threads.
async fn governed_call<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&freshet_govern::Governance) -> Result<T, GovernError> + Send + 'static,
) -> Result<T, MlflowError> {
    let gov = s.governance.clone();
    tokio::task::spawn_blocking(move || f(&gov))
        .await
        .map_err(|_| MlflowError::internal())?
        .map_err(governed)
}

/// `POST users/permissions/revoke`.
async fn revoke(State(s): State<AppState>, b: Bytes) -> Result<Json<Value>, MlflowError> {
    let req: GrantIn = super::mlflow::body(&b)?;
    let principal = req.principal()?;
    let object = object_of(&s, &req.resource_type, &req.resource_id).await?;
    let (o, who) = (object.clone(), principal.clone());
    governed_call(&s, move |gov| gov.permissions().delete(&o, &who)).await?;
    tracing::info!(principal = %principal, resource = %object.resource(), "permission revoked");
    Ok(Json(json!({})))
}

/// `GET users/permissions/get`: a caller's own permission on an object, or, for a MANAGE
/// holder, someone else's explicit grant there (the roles of another principal are not
/// known here: an OIDC user's come with each request).
async fn check(
    State(s): State<AppState>,
    ext: Extensions,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, MlflowError> {
    let f = Fields::new(q.as_deref(), None);
    let need = |k: &str| {
        f.get(k).ok_or_else(|| {
            MlflowError::invalid(format!("Missing value for required parameter '{k}'."))
        })
    };
    let (username, rtype, rid) = (
        need("username")?,
        need("resource_type")?,
        need("resource_id")?,
    );
    let who = permissions::principal_name(&username).map_err(governed)?;
    let caller = super::gate::principal_of(&ext);
    let object = match object_of(&s, &rtype, &rid).await {
        Ok(o) => o,
        // MLflow answers an unknown resource with "not allowed" rather than 404.
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return Ok(Json(
                json!({ "allowed": false, "permission": "NO_PERMISSIONS" }),
            ));
        }
        Err(e) => return Err(e),
    };
    let level = governed_call(&s, move |gov| {
        let perms = gov.permissions();
        if who == caller.name {
            return perms.effective(&caller, &object).map(Some);
        }
        if !perms.allows(&caller, &object, Permission::Manage)? {
            return Ok(None);
        }
        perms.explicit(&object, &who).map(Some)
    })
    .await?;
    let Some(level) = level else {
        return Err(MlflowError {
            status: StatusCode::FORBIDDEN,
            code: "PERMISSION_DENIED",
            message: "only a MANAGE holder may see another user's permission".into(),
        });
    };
    Ok(Json(json!({
        // MLflow's `can_use`: EDIT and MANAGE.
        "allowed": level.is_some_and(|l| l >= Permission::Edit),
        "permission": level.map_or("NO_PERMISSIONS", Permission::as_str),
    })))
}

/// The creator of a new experiment or registered model gets MANAGE on it. The object
/// exists by now, so a failure here is logged rather than failing the request (the
/// creator keeps what the roles give).
pub async fn grant_creator(s: &AppState, ext: &Extensions, object: Object) {
    let by = super::gate::principal_of(ext);
    let gov = s.governance.clone();
    let resource = object.resource();
    let done =
        tokio::task::spawn_blocking(move || gov.permissions().grant_creator(&by, &object)).await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, resource = %resource, "could not record the creator's MANAGE")
        }
        Err(_) => tracing::error!(resource = %resource, "the creator grant task failed"),
    }
}

/// Keeps a registered model's grants with it through a rename or a deletion
/// (`new_name: None`).
pub async fn model_moved(s: &AppState, name: String, new_name: Option<String>) {
    let gov = s.governance.clone();
    let done = tokio::task::spawn_blocking(move || match &new_name {
        Some(n) => gov.permissions().rename_model(&name, n),
        None => gov.permissions().forget_model(&name),
    })
    .await;
    if !matches!(done, Ok(Ok(()))) {
        tracing::error!("could not move a registered model's permissions");
    }
}

/// A new model version must come from files the caller may read: the experiment of its
/// run, of its logged model, or the one its `mlflow-artifacts:/<experiment>/…` source
/// lies under. Otherwise a version of one's own model could point at another team's run
/// and hand its files out through the version's download routes. A source that names
/// no experiment needs an unscoped reader.
pub async fn check_version_source(
    s: &AppState,
    ext: &Extensions,
    run_id: Option<&str>,
    model_id: Option<&str>,
    source: &str,
) -> Result<(), MlflowError> {
    let reader = Reader::of(s, ext);
    if reader.everything {
        return Ok(());
    }
    let run = run_id
        .map(str::to_string)
        .or_else(|| {
            source
                .strip_prefix("runs:/")
                .and_then(|r| r.split('/').next())
                .map(str::to_string)
        })
        .filter(|r| !r.is_empty());
    let logged = model_id
        .map(str::to_string)
        .or_else(|| {
            source
                .strip_prefix("models:/")
                .filter(|m| m.starts_with("m-"))
                .and_then(|m| m.split('/').next())
                .map(str::to_string)
        })
        .filter(|m| !m.is_empty());
    let artifact = source
        .strip_prefix("mlflow-artifacts:/")
        .map(|p| p.trim_start_matches('/').to_string());
    let attributed = run.is_some() || logged.is_some() || artifact.is_some();
    let store = s.tracking.clone();
    // Each place the files may come from: `Found::Objects` to read, `Missing` when the
    // store does not know it (it then refuses the version itself), `Unowned` when it
    // is under no experiment.
    // The same lookups the gate makes for a run, a logged model and a path.
    let plans: Vec<Lookup> = run
        .map(|r| Lookup::Runs(vec![r]))
        .into_iter()
        .chain(logged.map(Lookup::LoggedModel))
        .chain(artifact.map(|p| Lookup::Artifact(Some(p))))
        .collect();
    let found = tokio::task::spawn_blocking(move || {
        plans
            .into_iter()
            .map(|plan| plan.run(store.as_ref()))
            .collect::<Result<Vec<Found>, RegistryError>>()
    })
    .await
    .map_err(|_| MlflowError::internal())?
    .map_err(MlflowError::from)?;
    let readable = attributed
        && found.iter().all(|f| match f {
            Found::Objects(objects) => objects.iter().all(|o| reader.may_read(o)),
            Found::Missing => true,
            Found::Unowned | Found::Invalid => false,
        });
    if readable {
        Ok(())
    } else {
        Err(MlflowError {
            status: StatusCode::FORBIDDEN,
            code: "PERMISSION_DENIED",
            message: format!(
                "{} may not read the source of this version",
                reader.principal.name
            ),
        })
    }
}
