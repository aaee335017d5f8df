//! What the loop tests share: a registry, an artifact store and the loop's
//! dependencies in a temporary folder.

use freshet_control::controller::LoopDeps;
use freshet_lake::Lake;
use freshet_registry::artifacts::LocalArtifactStore;
use freshet_registry::{SqliteStore, Store};
use std::path::Path;
use std::sync::Arc;

/// The store and the dependencies of a loop living in `dir`, over `lake`.
pub fn deps(dir: &Path, lake: Lake) -> (Arc<dyn Store>, LoopDeps) {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join("registry.db"), "mlflow-artifacts:").unwrap());
    let deps = LoopDeps {
        store: store.clone(),
        artifacts: Arc::new(LocalArtifactStore::new(dir.join("artifacts")).unwrap()),
        lake,
        rollout: Arc::new(freshet_serve::rollout::RolloutController::new(
            Default::default(),
        )),
        tracking_uri: "http://127.0.0.1:1".into(),
        job_token: None,
    };
    (store, deps)
}
