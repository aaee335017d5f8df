//! The SQLite [`ModelStore`]: logged models, registered models, versions, aliases and
//! tags, in the same database (and behind the same single writer) as the runs.

use super::sqlite::{SqliteStore, active_run, now_ms};
use super::{DatasetInput, ModelStore, look_ahead, next_token, parse_token};
use crate::error::{RegistryError, Result};
use crate::model::{Metric, Page, Param, Tag};
use crate::models::*;
use crate::search_models::{self, Target};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS logged_models (
    model_id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name TEXT NOT NULL, artifact_uri TEXT NOT NULL, status TEXT NOT NULL,
    model_type TEXT NOT NULL, source_run_id TEXT NOT NULL, status_message TEXT NOT NULL,
    creation_time INTEGER NOT NULL, last_update_time INTEGER NOT NULL,
    lifecycle_stage TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logged_models_by_experiment ON logged_models(experiment_id, creation_time);
CREATE TABLE IF NOT EXISTS logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
    key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (model_id, key)
);
CREATE TABLE IF NOT EXISTS logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
    key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (model_id, key)
);
CREATE TABLE IF NOT EXISTS run_outputs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    model_id TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (run_id, model_id)
);
CREATE TABLE IF NOT EXISTS logged_model_metrics (
    model_id TEXT NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
    run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, is_nan INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, step INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS logged_model_metrics_by_model ON logged_model_metrics(model_id, key);
CREATE TABLE IF NOT EXISTS run_model_inputs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    model_id TEXT NOT NULL, PRIMARY KEY (run_id, model_id)
);
CREATE TABLE IF NOT EXISTS run_dataset_inputs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    name TEXT NOT NULL, digest TEXT NOT NULL, source_type TEXT NOT NULL, source TEXT NOT NULL,
    schema TEXT NOT NULL, profile TEXT NOT NULL, tags TEXT NOT NULL,
    UNIQUE (run_id, name, digest)
);
CREATE TABLE IF NOT EXISTS registered_models (
    name TEXT PRIMARY KEY,
    creation_time INTEGER NOT NULL, last_update_time INTEGER NOT NULL,
    description TEXT NOT NULL,
    -- Version numbers are never reused, even after a version is deleted: an audit
    -- trail that says "v3" must always mean the same model.
    next_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS registered_model_tags (
    name TEXT NOT NULL REFERENCES registered_models(name) ON UPDATE CASCADE ON DELETE CASCADE,
    key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, key)
);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL REFERENCES registered_models(name) ON UPDATE CASCADE ON DELETE CASCADE,
    version INTEGER NOT NULL,
    creation_time INTEGER NOT NULL, last_update_time INTEGER NOT NULL,
    user_id TEXT NOT NULL, current_stage TEXT NOT NULL, description TEXT NOT NULL,
    source TEXT NOT NULL, storage_location TEXT NOT NULL,
    run_id TEXT NOT NULL, run_link TEXT NOT NULL, model_id TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX IF NOT EXISTS model_versions_by_run ON model_versions(run_id);
CREATE INDEX IF NOT EXISTS model_versions_by_model ON model_versions(model_id);
CREATE TABLE IF NOT EXISTS model_version_tags (
    name TEXT NOT NULL, version INTEGER NOT NULL,
    key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS registered_model_aliases (
    name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
-- Every move of an alias, kept by triggers so that no path (the API, the loop, a
-- deleted version taking its aliases with it) can leave it out: which version was
-- champion at any time. `version` NULL: the alias was removed; `at_ms` NULL: it was
-- set before this history was kept. Rows outlive the versions they name.
CREATE TABLE IF NOT EXISTS model_alias_history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER, at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS model_alias_history_by_model ON model_alias_history(name, seq);
CREATE TRIGGER IF NOT EXISTS model_alias_set AFTER INSERT ON registered_model_aliases
WHEN NEW.version IS NOT (SELECT h.version FROM model_alias_history h
    WHERE h.name = NEW.name AND h.alias = NEW.alias ORDER BY h.seq DESC LIMIT 1)
BEGIN
    INSERT INTO model_alias_history (name, alias, version, at_ms) VALUES
        (NEW.name, NEW.alias, NEW.version,
         CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER IF NOT EXISTS model_alias_moved AFTER UPDATE OF version ON registered_model_aliases
WHEN NEW.version IS NOT OLD.version
BEGIN
    INSERT INTO model_alias_history (name, alias, version, at_ms) VALUES
        (NEW.name, NEW.alias, NEW.version,
         CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER IF NOT EXISTS model_alias_removed AFTER DELETE ON registered_model_aliases
BEGIN
    INSERT INTO model_alias_history (name, alias, version, at_ms) VALUES
        (OLD.name, OLD.alias, NULL,
         CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
END;
CREATE TRIGGER IF NOT EXISTS model_alias_history_renamed AFTER UPDATE OF name ON registered_models
BEGIN
    UPDATE model_alias_history SET name = NEW.name WHERE name = OLD.name;
END;
-- Aliases set before the history was kept: known to hold now, since unknown.
INSERT INTO model_alias_history (name, alias, version, at_ms)
    SELECT a.name, a.alias, a.version, NULL FROM registered_model_aliases a
    WHERE NOT EXISTS (SELECT 1 FROM model_alias_history h
        WHERE h.name = a.name AND h.alias = a.alias);
"#;

/// The logged-model tag listing the versions registered from it (MLflow's
/// `mlflow.modelVersions`: a JSON list of `{"name", "version"}`).
pub const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

pub(super) fn not_found_model(name: &str) -> RegistryError {
    RegistryError::NotFound(format!("Registered Model with name={name} not found"))
}

pub(super) fn not_found_version(name: &str, version: i64) -> RegistryError {
    RegistryError::NotFound(format!(
        "Model Version (name={name}, version={version}) not found"
    ))
}

pub(super) fn not_found_logged(model_id: &str) -> RegistryError {
    RegistryError::NotFound(format!("Logged model with ID '{model_id}' not found."))
}

pub(super) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(RegistryError::InvalidParameter(format!(
            "Missing value for required parameter '{what}'."
        )));
    }
    if name.len() > 256 || name.contains('/') || name.chars().any(char::is_control) {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid value for '{what}': at most 256 characters, no '/' and no control characters"
        )));
    }
    Ok(())
}

/// Aliases look like identifiers; `latest` and `vN` are reserved because `models:/`
/// URIs already give them a meaning.
pub(super) fn check_alias(alias: &str) -> Result<()> {
    let ok = !alias.is_empty()
        && alias.len() <= 255
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let reserved = alias.eq_ignore_ascii_case("latest")
        || (alias.len() > 1
            && alias.starts_with(['v', 'V'])
            && alias[1..].chars().all(|c| c.is_ascii_digit()));
    if !ok || reserved {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid alias '{alias}': use letters, digits, '_' and '-'; 'latest' and 'v<number>' are reserved"
        )));
    }
    Ok(())
}

fn read_tags(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Tag>> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt
        .query_map(args, |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

fn read_logged_model(conn: &Connection, model_id: &str) -> Result<Option<LoggedModel>> {
    let info = conn
        .query_row(
            "SELECT model_id, experiment_id, name, artifact_uri, status, model_type, source_run_id,
                    status_message, creation_time, last_update_time
             FROM logged_models WHERE model_id = ?1 AND lifecycle_stage = 'active'",
            [model_id],
            |r| {
                Ok(LoggedModelInfo {
                    model_id: r.get(0)?,
                    experiment_id: r.get::<_, i64>(1)?.to_string(),
                    name: r.get(2)?,
                    artifact_uri: r.get(3)?,
                    status: LoggedModelStatus::parse(&r.get::<_, String>(4)?)
                        .unwrap_or(LoggedModelStatus::Pending),
                    model_type: r.get(5)?,
                    source_run_id: r.get(6)?,
                    status_message: r.get(7)?,
                    creation_timestamp_ms: r.get(8)?,
                    last_updated_timestamp_ms: r.get(9)?,
                    tags: Vec::new(),
                    registrations: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut info) = info else {
        return Ok(None);
    };
    info.tags = read_tags(
        conn,
        "SELECT key, value FROM logged_model_tags WHERE model_id = ?1 ORDER BY key",
        [model_id],
    )?;
    let mut stmt = conn.prepare_cached(
        "SELECT name, version FROM model_versions WHERE model_id = ?1 ORDER BY name, version",
    )?;
    info.registrations = stmt
        .query_map([model_id], |r| {
            Ok(Registration {
                name: r.get(0)?,
                version: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let params: Vec<Param> = read_tags(
        conn,
        "SELECT key, value FROM logged_model_params WHERE model_id = ?1 ORDER BY key",
        [model_id],
    )?
    .into_iter()
    .map(|t| Param {
        key: t.key,
        value: t.value,
    })
    .collect();
    // Metrics runs logged against this model (MLflow 3 `log_metric(..., model_id=)`).
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, is_nan, timestamp, step, run_id FROM logged_model_metrics
         WHERE model_id = ?1 ORDER BY key, step, timestamp, rowid",
    )?;
    let metrics = stmt
        .query_map([model_id], |r| {
            let nan: bool = r.get(2)?;
            Ok(LoggedModelMetric {
                key: r.get(0)?,
                value: if nan { f64::NAN } else { r.get(1)? },
                timestamp: r.get(3)?,
                step: r.get(4)?,
                run_id: r.get(5)?,
                model_id: model_id.to_string(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(LoggedModel {
        info,
        data: LoggedModelData { params, metrics },
    }))
}

fn logged_model_exists(conn: &Connection, model_id: &str) -> Result<()> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM logged_models WHERE model_id = ?1 AND lifecycle_stage = 'active'",
            [model_id],
            |r| r.get(0),
        )
        .optional()?;
    found.map(|_| ()).ok_or_else(|| not_found_logged(model_id))
}

const VERSION_COLUMNS: &str = "mv.name, mv.version, mv.creation_time, mv.last_update_time, mv.user_id, mv.current_stage, mv.description, mv.source, mv.storage_location, mv.run_id, mv.run_link, mv.model_id";

fn version_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModelVersion> {
    Ok(ModelVersion {
        name: r.get(0)?,
        version: r.get(1)?,
        creation_timestamp: r.get(2)?,
        last_updated_timestamp: r.get(3)?,
        user_id: r.get(4)?,
        current_stage: Stage::parse(&r.get::<_, String>(5)?)
            .unwrap_or(Stage::None)
            .as_str(),
        description: r.get(6)?,
        source: r.get(7)?,
        storage_location: r.get(8)?,
        run_id: r.get(9)?,
        run_link: r.get(10)?,
        model_id: r.get(11)?,
        status: "READY",
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

/// Tags and aliases of each version.
fn fill_versions(conn: &Connection, versions: &mut [ModelVersion]) -> Result<()> {
    for v in versions.iter_mut() {
        v.tags = read_tags(
            conn,
            "SELECT key, value FROM model_version_tags WHERE name = ?1 AND version = ?2 ORDER BY key",
            params![v.name, v.version],
        )?;
        let mut stmt = conn.prepare_cached(
            "SELECT alias FROM registered_model_aliases WHERE name = ?1 AND version = ?2 ORDER BY alias",
        )?;
        v.aliases = stmt
            .query_map(params![v.name, v.version], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(())
}

fn read_version(conn: &Connection, name: &str, version: i64) -> Result<Option<ModelVersion>> {
    let v = conn
        .query_row(
            &format!("SELECT {VERSION_COLUMNS} FROM model_versions mv WHERE mv.name = ?1 AND mv.version = ?2"),
            params![name, version],
            version_from_row,
        )
        .optional()?;
    let Some(v) = v else { return Ok(None) };
    let mut one = [v];
    fill_versions(conn, &mut one)?;
    let [v] = one;
    Ok(Some(v))
}

fn version_or_404(conn: &Connection, name: &str, version: i64) -> Result<ModelVersion> {
    read_version(conn, name, version)?.ok_or_else(|| not_found_version(name, version))
}

fn latest_versions(conn: &Connection, name: &str) -> Result<Vec<ModelVersion>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM model_versions mv
         WHERE mv.name = ?1 AND mv.version = (
             SELECT max(o.version) FROM model_versions o
             WHERE o.name = mv.name AND o.current_stage = mv.current_stage)
         ORDER BY mv.version"
    ))?;
    let mut out: Vec<ModelVersion> = stmt
        .query_map([name], version_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    fill_versions(conn, &mut out)?;
    Ok(out)
}

fn read_registered(conn: &Connection, name: &str) -> Result<Option<RegisteredModel>> {
    let m = conn
        .query_row(
            "SELECT name, creation_time, last_update_time, description FROM registered_models WHERE name = ?1",
            [name],
            |r| {
                Ok(RegisteredModel {
                    name: r.get(0)?,
                    creation_timestamp: r.get(1)?,
                    last_updated_timestamp: r.get(2)?,
                    description: r.get(3)?,
                    tags: Vec::new(),
                    aliases: Vec::new(),
                    latest_versions: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut m) = m else { return Ok(None) };
    m.tags = read_tags(
        conn,
        "SELECT key, value FROM registered_model_tags WHERE name = ?1 ORDER BY key",
        [name],
    )?;
    let mut stmt = conn.prepare_cached(
        "SELECT alias, version FROM registered_model_aliases WHERE name = ?1 ORDER BY alias",
    )?;
    m.aliases = stmt
        .query_map([name], |r| {
            Ok(Alias {
                alias: r.get(0)?,
                version: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    m.latest_versions = latest_versions(conn, name)?;
    Ok(Some(m))
}

fn registered_or_404(conn: &Connection, name: &str) -> Result<RegisteredModel> {
    read_registered(conn, name)?.ok_or_else(|| not_found_model(name))
}

fn touch_model(conn: &Connection, name: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE registered_models SET last_update_time = ?2 WHERE name = ?1",
        params![name, now_ms()],
    )?;
    if n == 0 {
        return Err(not_found_model(name));
    }
    Ok(())
}

fn touch_version(conn: &Connection, name: &str, version: i64) -> Result<()> {
    let n = conn.execute(
        "UPDATE model_versions SET last_update_time = ?3 WHERE name = ?1 AND version = ?2",
        params![name, version, now_ms()],
    )?;
    if n == 0 {
        return Err(not_found_version(name, version));
    }
    Ok(())
}

/// Reject sources that would let a version point outside the artifact store.
pub(super) fn check_source(source: &str) -> Result<()> {
    let bad = source.is_empty()
        || source.starts_with('/')
        || source.starts_with("file:")
        || source.contains('\\')
        || source.split('/').any(|seg| seg == "..");
    if bad {
        return Err(RegistryError::InvalidParameter(format!(
            "Invalid model version source '{source}': use models:/<model_id>, runs:/<run_id>/<path> or an artifact URI of this server"
        )));
    }
    Ok(())
}

impl SqliteStore {
    /// Where a version's files are: the logged model's artifacts for `models:/m-…`,
    /// the run's artifacts for `runs:/<id>/<path>`, else the URI itself.
    fn resolve_source(&self, conn: &Connection, source: &str) -> Result<String> {
        check_source(source)?;
        if let Some(id) = source.strip_prefix("models:/")
            && id.starts_with("m-")
        {
            let id = id.trim_end_matches('/');
            return conn
                .query_row(
                    "SELECT artifact_uri FROM logged_models WHERE model_id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| not_found_logged(id));
        }
        if let Some(rest) = source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let uri: String = conn
                .query_row(
                    "SELECT artifact_uri FROM runs WHERE run_id = ?1",
                    [run_id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| {
                    RegistryError::NotFound(format!("Run with id={run_id} not found"))
                })?;
            let path = path.trim_matches('/');
            return Ok(if path.is_empty() {
                uri
            } else {
                format!("{uri}/{path}")
            });
        }
        Ok(source.to_string())
    }
}

impl ModelStore for SqliteStore {
    fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel> {
        let exp_id: i64 = new.experiment_id.parse().map_err(|_| {
            RegistryError::NotFound(format!(
                "No Experiment with id={} exists",
                new.experiment_id
            ))
        })?;
        crate::limits::check_batch(&[], &new.params, &new.tags)?;
        let model_id = format!("m-{}", uuid::Uuid::new_v4().simple());
        let name = new
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("model-{}", &model_id[2..10]));
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let location: String = tx
            .query_row(
                "SELECT artifact_location FROM experiments WHERE experiment_id = ?1 AND lifecycle_stage = 'active'",
                [exp_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| {
                RegistryError::NotFound(format!("No Experiment with id={exp_id} exists"))
            })?;
        if let Some(run) = new.source_run_id.as_deref().filter(|r| !r.is_empty()) {
            active_run(&tx, run)?;
        }
        let artifact_uri = format!(
            "{}/models/{model_id}/artifacts",
            location.trim_end_matches('/')
        );
        let t = now_ms();
        tx.execute(
            "INSERT INTO logged_models VALUES (?1, ?2, ?3, ?4, 'LOGGED_MODEL_PENDING', ?5, ?6, '', ?7, ?7, 'active')",
            params![
                model_id,
                exp_id,
                name,
                artifact_uri,
                new.model_type.unwrap_or_default(),
                new.source_run_id.unwrap_or_default(),
                t
            ],
        )?;
        for p in &new.params {
            tx.execute(
                "INSERT OR REPLACE INTO logged_model_params VALUES (?1, ?2, ?3)",
                params![model_id, p.key, p.value],
            )?;
        }
        for tag in &new.tags {
            tx.execute(
                "INSERT OR REPLACE INTO logged_model_tags VALUES (?1, ?2, ?3)",
                params![model_id, tag.key, tag.value],
            )?;
        }
        tx.commit()?;
        read_logged_model(&conn, &model_id)?.ok_or_else(|| not_found_logged(&model_id))
    }

    fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        read_logged_model(&self.reader(), model_id)?.ok_or_else(|| not_found_logged(model_id))
    }

    fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE logged_models SET status = ?2, last_update_time = ?3 WHERE model_id = ?1 AND lifecycle_stage = 'active'",
            params![model_id, status.as_str(), now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_logged(model_id));
        }
        read_logged_model(&conn, model_id)?.ok_or_else(|| not_found_logged(model_id))
    }

    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()> {
        crate::limits::check_batch(&[], &[], tags)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        logged_model_exists(&tx, model_id)?;
        for t in tags {
            tx.execute(
                "INSERT OR REPLACE INTO logged_model_tags VALUES (?1, ?2, ?3)",
                params![model_id, t.key, t.value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        let conn = self.conn();
        logged_model_exists(&conn, model_id)?;
        let n = conn.execute(
            "DELETE FROM logged_model_tags WHERE model_id = ?1 AND key = ?2",
            params![model_id, key],
        )?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No tag with key '{key}' on logged model '{model_id}'"
            )));
        }
        Ok(())
    }

    fn log_logged_model_params(&self, model_id: &str, params_in: &[Param]) -> Result<()> {
        crate::limits::check_batch(&[], params_in, &[])?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        logged_model_exists(&tx, model_id)?;
        for p in params_in {
            let old: Option<String> = tx
                .query_row(
                    "SELECT value FROM logged_model_params WHERE model_id = ?1 AND key = ?2",
                    params![model_id, p.key],
                    |r| r.get(0),
                )
                .optional()?;
            match old {
                Some(v) if v != p.value => {
                    return Err(RegistryError::InvalidParameter(format!(
                        "Changing param values is not allowed. Param with key='{}' was already logged for model '{model_id}'",
                        p.key
                    )));
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO logged_model_params VALUES (?1, ?2, ?3)",
                        params![model_id, p.key, p.value],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE logged_models SET lifecycle_stage = 'deleted', last_update_time = ?2 WHERE model_id = ?1 AND lifecycle_stage = 'active'",
            params![model_id, now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_logged(model_id));
        }
        Ok(())
    }

    fn search_logged_models(
        &self,
        experiment_ids: &[String],
        q: &ModelQuery,
    ) -> Result<Page<LoggedModel>> {
        let offset = parse_token(q.page_token.as_deref())?;
        let ids: Vec<i64> = experiment_ids
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect();
        if ids.is_empty() {
            return Err(RegistryError::InvalidParameter(
                "Missing value for required parameter 'experiment_ids'.".into(),
            ));
        }
        let filter = search_models::compile(Target::LoggedModels, &q.filter)?;
        let order = search_models::order_by(Target::LoggedModels, &q.order_by)?;
        let conn = self.reader();
        let marks = vec!["?"; ids.len()].join(",");
        let mut stmt = conn.prepare(&format!(
            "SELECT lm.model_id FROM logged_models lm
             WHERE lm.experiment_id IN ({marks}) AND lm.lifecycle_stage = 'active' AND {}
             ORDER BY {order} LIMIT {} OFFSET {offset}",
            filter.sql,
            look_ahead(q.max_results)
        ))?;
        let mut args: Vec<rusqlite::types::Value> = ids
            .iter()
            .map(|i| rusqlite::types::Value::Integer(*i))
            .collect();
        args.extend(filter.params);
        let mut found: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(&args), |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let next_page_token = next_token(&mut found, offset, q.max_results);
        let mut items = Vec::with_capacity(found.len());
        for id in &found {
            if let Some(m) = read_logged_model(&conn, id)? {
                items.push(m);
            }
        }
        Ok(Page {
            next_page_token,
            items,
        })
    }

    fn log_logged_model_metrics(&self, run_id: &str, metrics: &[(String, Metric)]) -> Result<()> {
        if metrics.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (model_id, m) in metrics {
            logged_model_exists(&tx, model_id)?;
            let nan = m.value.is_nan();
            tx.execute(
                "INSERT INTO logged_model_metrics VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    model_id,
                    run_id,
                    m.key,
                    (!nan).then_some(m.value),
                    nan,
                    m.timestamp,
                    m.step
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn run_models(&self, run_id: &str) -> Result<super::RunModels> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT model_id FROM run_model_inputs WHERE run_id = ?1 ORDER BY model_id",
        )?;
        let inputs = stmt
            .query_map([run_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare_cached(
            "SELECT model_id, step FROM run_outputs WHERE run_id = ?1 ORDER BY step, model_id",
        )?;
        let outputs = stmt
            .query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(super::RunModels { inputs, outputs })
    }

    fn log_run_outputs(&self, run_id: &str, models: &[(String, i64)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        active_run(&tx, run_id)?;
        for (model_id, step) in models {
            logged_model_exists(&tx, model_id)?;
            tx.execute(
                "INSERT OR REPLACE INTO run_outputs VALUES (?1, ?2, ?3)",
                params![run_id, model_id, step],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn log_run_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_ids: &[String],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        active_run(&tx, run_id)?;
        for d in datasets {
            if d.name.is_empty() || d.digest.is_empty() {
                return Err(RegistryError::InvalidParameter(
                    "A dataset input needs a name and a digest".into(),
                ));
            }
            let tags = serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT OR IGNORE INTO run_dataset_inputs (run_id, name, digest, source_type, source, schema, profile, tags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![run_id, d.name, d.digest, d.source_type, d.source, d.schema, d.profile, tags],
            )?;
        }
        for model_id in model_ids {
            logged_model_exists(&tx, model_id)?;
            tx.execute(
                "INSERT OR IGNORE INTO run_model_inputs VALUES (?1, ?2)",
                params![run_id, model_id],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn dataset_summaries(&self, experiment_ids: &[String]) -> Result<Vec<super::DatasetSummary>> {
        let ids: Vec<i64> = experiment_ids
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(",");
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT DISTINCT r.experiment_id, d.name, d.digest, d.tags
             FROM run_dataset_inputs d JOIN runs r ON r.run_id = d.run_id
             WHERE r.experiment_id IN ({marks}) AND r.lifecycle_stage = 'active'
             ORDER BY r.experiment_id, d.name, d.digest LIMIT 1000"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(&ids), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out: Vec<super::DatasetSummary> = Vec::new();
        for row in rows {
            let (experiment_id, name, digest, tags) = row?;
            let tags: Vec<Tag> = serde_json::from_str(&tags).unwrap_or_default();
            let summary = super::DatasetSummary {
                experiment_id: experiment_id.to_string(),
                name,
                digest,
                context: tags
                    .into_iter()
                    .find(|t| t.key == "mlflow.data.context")
                    .map(|t| t.value)
                    .unwrap_or_default(),
            };
            if !out.contains(&summary) {
                out.push(summary);
            }
        }
        Ok(out)
    }

    fn run_dataset_inputs(&self, run_id: &str) -> Result<Vec<DatasetInput>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT name, digest, source_type, source, schema, profile, tags
             FROM run_dataset_inputs WHERE run_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            let tags: String = r.get(6)?;
            Ok(DatasetInput {
                name: r.get(0)?,
                digest: r.get(1)?,
                source_type: r.get(2)?,
                source: r.get(3)?,
                schema: r.get(4)?,
                profile: r.get(5)?,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: Option<&str>,
    ) -> Result<RegisteredModel> {
        check_name("name", name)?;
        crate::limits::check_batch(&[], &[], tags)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let t = now_ms();
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO registered_models VALUES (?1, ?2, ?2, ?3, 1)",
            params![name, t, description.unwrap_or_default()],
        )?;
        if inserted == 0 {
            return Err(RegistryError::AlreadyExists(format!(
                "Registered Model (name={name}) already exists."
            )));
        }
        for tag in tags {
            tx.execute(
                "INSERT OR REPLACE INTO registered_model_tags VALUES (?1, ?2, ?3)",
                params![name, tag.key, tag.value],
            )?;
        }
        tx.commit()?;
        registered_or_404(&conn, name)
    }

    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        registered_or_404(&self.reader(), name)
    }

    fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel> {
        check_name("new_name", new_name)?;
        let conn = self.conn();
        registered_or_404(&conn, name)?;
        if name != new_name && read_registered(&conn, new_name)?.is_some() {
            return Err(RegistryError::AlreadyExists(format!(
                "Registered Model (name={new_name}) already exists."
            )));
        }
        conn.execute(
            "UPDATE registered_models SET name = ?2, last_update_time = ?3 WHERE name = ?1",
            params![name, new_name, now_ms()],
        )?;
        registered_or_404(&conn, new_name)
    }

    fn update_registered_model(&self, name: &str, description: &str) -> Result<RegisteredModel> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE registered_models SET description = ?2, last_update_time = ?3 WHERE name = ?1",
            params![name, description, now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_model(name));
        }
        registered_or_404(&conn, name)
    }

    fn delete_registered_model(&self, name: &str) -> Result<()> {
        let n = self
            .conn()
            .execute("DELETE FROM registered_models WHERE name = ?1", [name])?;
        if n == 0 {
            return Err(not_found_model(name));
        }
        Ok(())
    }

    fn search_registered_models(&self, q: &ModelQuery) -> Result<Page<RegisteredModel>> {
        let filter = search_models::compile(Target::RegisteredModels, &q.filter)?;
        let order = search_models::order_by(Target::RegisteredModels, &q.order_by)?;
        let offset = parse_token(q.page_token.as_deref())?;
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT rm.name FROM registered_models rm WHERE {} ORDER BY {order} LIMIT {} OFFSET {offset}",
            filter.sql,
            look_ahead(q.max_results)
        ))?;
        let mut names: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(&filter.params), |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let next_page_token = next_token(&mut names, offset, q.max_results);
        let mut items = Vec::with_capacity(names.len());
        for n in &names {
            if let Some(m) = read_registered(&conn, n)? {
                items.push(m);
            }
        }
        Ok(Page {
            next_page_token,
            items,
        })
    }

    fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()> {
        crate::limits::check_batch(&[], &[], std::slice::from_ref(tag))?;
        let conn = self.conn();
        touch_model(&conn, name)?;
        conn.execute(
            "INSERT OR REPLACE INTO registered_model_tags VALUES (?1, ?2, ?3)",
            params![name, tag.key, tag.value],
        )?;
        Ok(())
    }

    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        let conn = self.conn();
        touch_model(&conn, name)?;
        conn.execute(
            "DELETE FROM registered_model_tags WHERE name = ?1 AND key = ?2",
            params![name, key],
        )?;
        Ok(())
    }

    fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        check_alias(alias)?;
        let conn = self.conn();
        version_or_404(&conn, name, version)?;
        conn.execute(
            "INSERT OR REPLACE INTO registered_model_aliases VALUES (?1, ?2, ?3)",
            params![name, alias, version],
        )?;
        touch_model(&conn, name)
    }

    fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let conn = self.conn();
        registered_or_404(&conn, name)?;
        conn.execute(
            "DELETE FROM registered_model_aliases WHERE name = ?1 AND alias = ?2",
            params![name, alias],
        )?;
        touch_model(&conn, name)
    }

    fn alias_history(&self, name: &str) -> Result<Vec<AliasChange>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT alias, version, at_ms FROM model_alias_history WHERE name = ?1 ORDER BY seq",
        )?;
        let rows = stmt
            .query_map([name], |r| {
                Ok(AliasChange {
                    alias: r.get(0)?,
                    version: r.get(1)?,
                    at_ms: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion> {
        let conn = self.reader();
        let version: Option<i64> = conn
            .query_row(
                "SELECT version FROM registered_model_aliases WHERE name = ?1 AND alias = ?2",
                params![name, alias],
                |r| r.get(0),
            )
            .optional()?;
        let version = version.ok_or_else(|| {
            RegistryError::NotFound(format!(
                "Registered model alias {alias} not found on model {name}"
            ))
        })?;
        version_or_404(&conn, name, version)
    }

    fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>> {
        let conn = self.reader();
        registered_or_404(&conn, name)?;
        let all = latest_versions(&conn, name)?;
        Ok(if stages.is_empty() {
            all
        } else {
            all.into_iter()
                .filter(|v| stages.iter().any(|s| s.as_str() == v.current_stage))
                .collect()
        })
    }

    fn create_model_version(&self, new: NewModelVersion) -> Result<ModelVersion> {
        check_name("name", &new.name)?;
        crate::limits::check_batch(&[], &[], &new.tags)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let storage = self.resolve_source(&tx, &new.source)?;
        let model_id = new.model_id.clone().unwrap_or_else(|| {
            new.source
                .strip_prefix("models:/")
                .filter(|id| id.starts_with("m-"))
                .map(|id| id.trim_end_matches('/').to_string())
                .unwrap_or_default()
        });
        let mut run_id = new.run_id.clone().unwrap_or_default();
        if !model_id.is_empty() {
            logged_model_exists(&tx, &model_id)?;
            // A version made from a logged model comes from the run that logged it.
            if run_id.is_empty() {
                run_id = tx.query_row(
                    "SELECT source_run_id FROM logged_models WHERE model_id = ?1",
                    [&model_id],
                    |r| r.get(0),
                )?;
            }
        }
        let version: i64 = tx
            .query_row(
                "UPDATE registered_models SET next_version = next_version + 1, last_update_time = ?2
                 WHERE name = ?1 RETURNING next_version - 1",
                params![new.name, now_ms()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| not_found_model(&new.name))?;
        let t = now_ms();
        tx.execute(
            "INSERT INTO model_versions VALUES (?1, ?2, ?3, ?3, ?4, 'None', ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                new.name,
                version,
                t,
                new.user_id.unwrap_or_default(),
                new.description.unwrap_or_default(),
                new.source,
                storage,
                run_id,
                new.run_link.unwrap_or_default(),
                model_id
            ],
        )?;
        for tag in &new.tags {
            tx.execute(
                "INSERT OR REPLACE INTO model_version_tags VALUES (?1, ?2, ?3, ?4)",
                params![new.name, version, tag.key, tag.value],
            )?;
        }
        if !model_id.is_empty() {
            // As mlflow server does: the logged model lists the versions made from it.
            let existing: Option<String> = tx
                .query_row(
                    "SELECT value FROM logged_model_tags WHERE model_id = ?1 AND key = ?2",
                    params![model_id, MODEL_VERSIONS_TAG],
                    |r| r.get(0),
                )
                .optional()?;
            let mut list: Vec<serde_json::Value> = existing
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default();
            let entry = serde_json::json!({ "name": new.name, "version": version });
            if !list.contains(&entry) {
                list.push(entry);
            }
            tx.execute(
                "INSERT OR REPLACE INTO logged_model_tags VALUES (?1, ?2, ?3)",
                params![
                    model_id,
                    MODEL_VERSIONS_TAG,
                    serde_json::Value::Array(list).to_string()
                ],
            )?;
        }
        tx.commit()?;
        version_or_404(&conn, &new.name, version)
    }

    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion> {
        version_or_404(&self.reader(), name, version)
    }

    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> Result<ModelVersion> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE model_versions SET description = ?3, last_update_time = ?4 WHERE name = ?1 AND version = ?2",
            params![name, version, description, now_ms()],
        )?;
        if n == 0 {
            return Err(not_found_version(name, version));
        }
        version_or_404(&conn, name, version)
    }

    fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        let conn = self.conn();
        let n = conn.execute(
            "DELETE FROM model_versions WHERE name = ?1 AND version = ?2",
            params![name, version],
        )?;
        if n == 0 {
            return Err(not_found_version(name, version));
        }
        touch_model(&conn, name)
    }

    fn search_model_versions(&self, q: &ModelQuery) -> Result<Page<ModelVersion>> {
        let filter = search_models::compile(Target::ModelVersions, &q.filter)?;
        let order = if q.order_by.is_empty() {
            "mv.last_update_time DESC, mv.name ASC, mv.version DESC".to_string()
        } else {
            search_models::order_by(Target::ModelVersions, &q.order_by)?
        };
        let offset = parse_token(q.page_token.as_deref())?;
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {VERSION_COLUMNS} FROM model_versions mv WHERE {} ORDER BY {order} LIMIT {} OFFSET {offset}",
            filter.sql,
            look_ahead(q.max_results)
        ))?;
        let mut items: Vec<ModelVersion> = stmt
            .query_map(rusqlite::params_from_iter(&filter.params), version_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        let next_page_token = next_token(&mut items, offset, q.max_results);
        fill_versions(&conn, &mut items)?;
        Ok(Page {
            next_page_token,
            items,
        })
    }

    fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<()> {
        crate::limits::check_batch(&[], &[], std::slice::from_ref(tag))?;
        let conn = self.conn();
        touch_version(&conn, name, version)?;
        conn.execute(
            "INSERT OR REPLACE INTO model_version_tags VALUES (?1, ?2, ?3, ?4)",
            params![name, version, tag.key, tag.value],
        )?;
        Ok(())
    }

    fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()> {
        let conn = self.conn();
        touch_version(&conn, name, version)?;
        conn.execute(
            "DELETE FROM model_version_tags WHERE name = ?1 AND version = ?2 AND key = ?3",
            params![name, version, key],
        )?;
        Ok(())
    }

    fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let t = now_ms();
        let n = tx.execute(
            "UPDATE model_versions SET current_stage = ?3, last_update_time = ?4 WHERE name = ?1 AND version = ?2",
            params![name, version, stage.as_str(), t],
        )?;
        if n == 0 {
            return Err(not_found_version(name, version));
        }
        if archive_existing && matches!(stage, Stage::Staging | Stage::Production) {
            tx.execute(
                "UPDATE model_versions SET current_stage = 'Archived', last_update_time = ?4
                 WHERE name = ?1 AND version != ?2 AND current_stage = ?3",
                params![name, version, stage.as_str(), t],
            )?;
        }
        tx.execute(
            "UPDATE registered_models SET last_update_time = ?2 WHERE name = ?1",
            params![name, t],
        )?;
        tx.commit()?;
        version_or_404(&conn, name, version)
    }

    fn get_download_uri(&self, name: &str, version: i64) -> Result<String> {
        Ok(version_or_404(&self.reader(), name, version)?.storage_location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_reserve_latest_and_version_numbers() {
        assert!(check_alias("champion").is_ok());
        assert!(check_alias("canary-2").is_ok());
        for bad in ["latest", "v3", "V12", "", "a b", "x/y"] {
            assert!(check_alias(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_cannot_escape_the_artifact_store() {
        for bad in [
            "/etc/passwd",
            "file:///etc",
            "runs:/abc/../../x",
            "mlflow-artifacts:/0/../../x",
            "",
        ] {
            assert!(check_source(bad).is_err(), "{bad}");
        }
        assert!(check_source("models:/m-123").is_ok());
        assert!(check_source("runs:/abc/model").is_ok());
    }
}
