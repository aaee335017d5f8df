//! The variant router: which version answers a request, and which one shadows it.
//!
//! Each served model has an [`Endpoint`] holding its current [`Routes`] behind an
//! atomic pointer. A request takes a snapshot of the routes once and keeps it to the
//! end, so when the registry's aliases move (the [`refresh`](Endpoints::refresh) loop
//! swaps the pointer) requests in flight finish on the versions they started with and
//! new ones see the new versions: no restart, no failed request.

use crate::error::ServeError;
use crate::loader::{LoadedModel, load_version};
use crate::stats::VersionStats;
use arc_swap::{ArcSwap, ArcSwapOption};
// FNV-1a, as feature hashing uses: a stable hash, so a routing key always lands on the
// same side of a canary.
use freshet_learn::features::fnv1a;
use freshet_registry::artifacts::ArtifactStore;
use freshet_registry::models::ModelQuery;
use freshet_registry::{RegistryError, Store};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The alias whose version answers requests.
pub const CHAMPION: &str = "champion";
/// The alias of the version under trial.
pub const CHALLENGER: &str = "challenger";

/// How the challenger takes part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// It scores a copy of every request; its answers are recorded, never returned.
    Shadow,
    /// It answers this share of requests (0–100), chosen by a hash of the routing key.
    Canary { weight_pct: f64 },
}

/// Which variant answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Champion,
    Challenger,
}

impl Variant {
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Champion => "champion",
            Variant::Challenger => "challenger",
        }
    }
}

/// The versions one model serves right now.
#[derive(Debug, Clone)]
pub struct Routes {
    pub champion: Arc<LoadedModel>,
    pub challenger: Option<(Arc<LoadedModel>, Mode)>,
}

/// The choice for one request.
#[derive(Debug, Clone)]
pub struct Choice {
    pub serving: Arc<LoadedModel>,
    pub variant: Variant,
    /// A version that scores a mirrored copy (shadow mode).
    pub shadow: Option<Arc<LoadedModel>>,
}

impl Routes {
    /// Route a request by its key (the caller's routing key, else its request id).
    pub fn choose(&self, key: &str) -> Choice {
        match &self.challenger {
            Some((c, Mode::Canary { weight_pct })) => {
                // Basis points, so that fractional weights such as 0.5% work.
                let bucket = fnv1a(key.as_bytes()) % 10_000;
                if (bucket as f64) < weight_pct * 100.0 {
                    Choice {
                        serving: c.clone(),
                        variant: Variant::Challenger,
                        shadow: None,
                    }
                } else {
                    self.champion_only()
                }
            }
            Some((c, Mode::Shadow)) => Choice {
                serving: self.champion.clone(),
                variant: Variant::Champion,
                shadow: Some(c.clone()),
            },
            None => self.champion_only(),
        }
    }

    fn champion_only(&self) -> Choice {
        Choice {
            serving: self.champion.clone(),
            variant: Variant::Champion,
            shadow: None,
        }
    }
}

/// One served model.
#[derive(Debug)]
pub struct Endpoint {
    pub name: String,
    routes: ArcSwapOption<Routes>,
    stats: Mutex<HashMap<i64, Arc<VersionStats>>>,
}

impl Endpoint {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            routes: ArcSwapOption::empty(),
            stats: Mutex::new(HashMap::new()),
        }
    }

    /// A snapshot of the routes; `None` while nothing is served.
    pub fn routes(&self) -> Option<Arc<Routes>> {
        self.routes.load_full()
    }

    pub fn set_routes(&self, routes: Option<Routes>) {
        self.routes.store(routes.map(Arc::new));
    }

    /// The statistics of one version (created on first use).
    pub fn stats(&self, version: i64) -> Arc<VersionStats> {
        let mut map = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(version).or_default().clone()
    }
}

/// What decides the challenger's mode for a model (the rollout state, in the binary).
pub trait ModeSource: Send + Sync {
    /// `None` keeps the challenger out of traffic altogether.
    fn mode(&self, store: &dyn Store, model: &str) -> Option<Mode>;
}

/// Without a rollout in progress a challenger alias means shadow traffic: it can be
/// watched without any risk to answers.
#[derive(Debug, Default)]
pub struct ShadowByDefault;

impl ModeSource for ShadowByDefault {
    fn mode(&self, _: &dyn Store, _: &str) -> Option<Mode> {
        Some(Mode::Shadow)
    }
}

/// Every served model, and the cache of loaded versions.
pub struct Endpoints {
    map: ArcSwap<HashMap<String, Arc<Endpoint>>>,
    loaded: Mutex<HashMap<(String, i64), Arc<LoadedModel>>>,
    /// Versions that failed to load, so that they are not retried on every refresh.
    failed: Mutex<HashSet<(String, i64)>>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("models", &self.map.load().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The version an alias of `model` points at, `None` when it is not set.
pub fn alias_version(
    store: &dyn Store,
    model: &str,
    alias: &str,
) -> Result<Option<i64>, RegistryError> {
    match store.get_version_by_alias(model, alias) {
        Ok(v) => Ok(Some(v.version)),
        Err(RegistryError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Endpoints {
    pub fn new() -> Self {
        Self {
            map: ArcSwap::from_pointee(HashMap::new()),
            loaded: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashSet::new()),
        }
    }

    /// The endpoint of `model`, if it is served.
    pub fn get(&self, model: &str) -> Option<Arc<Endpoint>> {
        self.map.load().get(model).cloned()
    }

    /// Names of the served models.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.map.load().keys().cloned().collect();
        v.sort();
        v
    }

    /// Serve `model` from `routes` now (tests, and models loaded by other means).
    pub fn install(&self, model: &str, routes: Routes) {
        let ep = self.endpoint(model);
        ep.set_routes(Some(routes));
    }

    fn endpoint(&self, model: &str) -> Arc<Endpoint> {
        if let Some(ep) = self.get(model) {
            return ep;
        }
        let mut next = HashMap::clone(&self.map.load());
        let ep = next
            .entry(model.to_string())
            .or_insert_with(|| Arc::new(Endpoint::new(model)))
            .clone();
        self.map.store(Arc::new(next));
        ep
    }

    fn version(
        &self,
        store: &dyn Store,
        artifacts: &dyn ArtifactStore,
        model: &str,
        version: i64,
    ) -> Option<Arc<LoadedModel>> {
        let key = (model.to_string(), version);
        if let Some(m) = self
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Some(m.clone());
        }
        if self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
        {
            return None;
        }
        match load_version(store, artifacts, model, version) {
            Ok(m) => {
                let m = Arc::new(m);
                tracing::info!(model, version, "loaded a version for serving");
                self.loaded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, m.clone());
                Some(m)
            }
            Err(e) => {
                tracing::warn!(model, version, error = %e, "a version cannot be served");
                self.failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key);
                None
            }
        }
    }

    /// Bring every endpoint in line with the registry: each registered model whose
    /// `champion` alias names a loadable version is served, with its `challenger` in
    /// the mode `modes` gives. Versions already loaded are reused, so moving an alias
    /// back and forth costs one pointer swap.
    pub fn refresh(
        &self,
        store: &dyn Store,
        artifacts: &dyn ArtifactStore,
        modes: &dyn ModeSource,
    ) -> Result<(), ServeError> {
        let mut token = None;
        loop {
            let page = store.search_registered_models(&ModelQuery {
                max_results: 1000,
                page_token: token.take(),
                ..Default::default()
            })?;
            for m in &page.items {
                let champion = alias_version(store, &m.name, CHAMPION)?
                    .and_then(|v| self.version(store, artifacts, &m.name, v));
                let Some(champion) = champion else {
                    if let Some(ep) = self.get(&m.name) {
                        ep.set_routes(None);
                    }
                    continue;
                };
                let challenger = match alias_version(store, &m.name, CHALLENGER)? {
                    Some(v) if v != champion.version => self
                        .version(store, artifacts, &m.name, v)
                        .and_then(|c| modes.mode(store, &m.name).map(|mode| (c, mode))),
                    _ => None,
                };
                let ep = self.endpoint(&m.name);
                let same = ep.routes().is_some_and(|r| {
                    r.champion.version == champion.version
                        && match (&r.challenger, &challenger) {
                            (None, None) => true,
                            (Some((a, ma)), Some((b, mb))) => a.version == b.version && ma == mb,
                            _ => false,
                        }
                });
                if !same {
                    tracing::info!(
                        model = %m.name,
                        champion = champion.version,
                        challenger = ?challenger.as_ref().map(|(c, mode)| (c.version, *mode)),
                        "serving routes changed"
                    );
                    ep.set_routes(Some(Routes {
                        champion,
                        challenger,
                    }));
                }
            }
            match page.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_weights_split_keys_stably() {
        let hits = (0..20_000)
            .filter(|i| fnv1a(format!("user-{i}").as_bytes()) % 10_000 < 2_500)
            .count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
        assert_eq!(fnv1a(b"abc"), fnv1a(b"abc"));
    }
}
