//! The SQLite tracking store: WAL journal, one writer connection behind a mutex, a
//! busy timeout for other processes, every multi-row change in one transaction.

use super::{RunQuery, TrackingStore, ViewType, look_ahead, next_token, parse_token};
use crate::error::{RegistryError, Result};
use crate::limits;
use crate::model::*;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    last_update_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE IF NOT EXISTS runs (
    run_rowid INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL UNIQUE,
    experiment_id INTEGER NOT NULL REFERENCES experiments(experiment_id),
    run_name TEXT NOT NULL, user_id TEXT NOT NULL, status TEXT NOT NULL,
    start_time INTEGER NOT NULL, end_time INTEGER,
    artifact_uri TEXT NOT NULL, lifecycle_stage TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id, start_time);
-- Metric history is two-level (see `insert_metrics`): new values are appended to
-- `metrics_log` in arrival order, and moved in bulk, sorted, into `metrics`, which is
-- clustered by (run, key, step, timestamp). Runs and keys are integer surrogates, so
-- rows are small; `run_rowid` is checked against `runs` by the writer before insert.
CREATE TABLE IF NOT EXISTS metric_keys (
    key_id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS metrics_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_rowid INTEGER NOT NULL, key_id INTEGER NOT NULL,
    step INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    value REAL NOT NULL, is_nan INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_rowid INTEGER NOT NULL, key_id INTEGER NOT NULL,
    step INTEGER NOT NULL, timestamp INTEGER NOT NULL, seq INTEGER NOT NULL,
    value REAL NOT NULL, is_nan INTEGER NOT NULL,
    PRIMARY KEY (run_rowid, key_id, step, timestamp, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latest_metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    key TEXT NOT NULL, value REAL NOT NULL, is_nan INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, step INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS params (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
"#;

/// The default experiment every MLflow server has.
const DEFAULT_EXPERIMENT: &str = "Default";

/// SQLite-backed [`TrackingStore`].
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Read-only connections: WAL lets readers run beside the writer, so gets, searches
    /// and history reads do not queue behind writes. Empty for in-memory stores.
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
    pub(super) artifact_root: String,
    /// Committed metric key ids. Ids never change once committed, so the cache stays
    /// right when other processes write the same file.
    key_ids: Mutex<HashMap<String, i64>>,
}

/// Read connections per store.
const READERS: usize = 4;

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // SQLite's default 2 MB page cache is far smaller than a busy metrics index; insert
    // cost then grows with the table. 64 MB of cache and memory-mapped reads keep it flat.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "mmap_size", 268_435_456)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // MLflow's LIKE is case-sensitive (ILIKE is not).
    conn.pragma_update(None, "case_sensitive_like", "ON")?;
    Ok(())
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("artifact_root", &self.artifact_root)
            .finish_non_exhaustive()
    }
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn view_clause(view: ViewType) -> &'static str {
    match view {
        ViewType::ActiveOnly => "lifecycle_stage = 'active'",
        ViewType::DeletedOnly => "lifecycle_stage = 'deleted'",
        ViewType::All => "lifecycle_stage IS NOT NULL",
    }
}

fn parse_experiment_id(id: &str) -> Result<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| RegistryError::NotFound(format!("No Experiment with id={id} exists")))
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path`. New experiments get artifact
    /// locations under `artifact_root` (e.g. `mlflow-artifacts:`).
    pub fn open(path: &Path, artifact_root: &str) -> Result<Self> {
        let mut store = Self::from_connection(Connection::open(path)?, artifact_root)?;
        for _ in 0..READERS {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let r = Connection::open_with_flags(path, flags)?;
            configure(&r)?;
            store.readers.push(Mutex::new(r));
        }
        Ok(store)
    }

    /// An in-memory store, for tests.
    pub fn in_memory(artifact_root: &str) -> Result<Self> {
        Self::from_connection(Connection::open_in_memory()?, artifact_root)
    }

    fn from_connection(conn: Connection, artifact_root: &str) -> Result<Self> {
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(super::sqlite_models::SCHEMA)?;
        let root = artifact_root.trim_end_matches('/').to_string();
        let t = now_ms();
        conn.execute(
            "INSERT OR IGNORE INTO experiments VALUES (0, ?1, ?2, 'active', ?3, ?3)",
            params![DEFAULT_EXPERIMENT, format!("{root}/0"), t],
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
            readers: Vec::new(),
            next_reader: std::sync::atomic::AtomicUsize::new(0),
            artifact_root: root,
            key_ids: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions
        // roll back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key_ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.key_ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection for reads: a free reader if there is one, else the next in turn.
    pub(super) fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return self.conn();
        }
        for r in &self.readers {
            if let Ok(g) = r.try_lock() {
                return g;
            }
        }
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        self.readers[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn read_experiment(conn: &Connection, id: i64) -> Result<Option<Experiment>> {
    let exp = conn
        .query_row(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time
             FROM experiments WHERE experiment_id = ?1",
            [id],
            |r| {
                Ok(Experiment {
                    experiment_id: r.get::<_, i64>(0)?.to_string(),
                    name: r.get(1)?,
                    artifact_location: r.get(2)?,
                    lifecycle_stage: LifecycleStage::parse(&r.get::<_, String>(3)?),
                    creation_time: r.get(4)?,
                    last_update_time: r.get(5)?,
                    tags: Vec::new(),
                })
            },
        )
        .optional()?;
    let Some(mut exp) = exp else { return Ok(None) };
    let mut stmt = conn.prepare_cached(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = ?1 ORDER BY key",
    )?;
    exp.tags = stmt
        .query_map([id], |r| {
            Ok(Tag {
                key: r.get(0)?,
                value: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(exp))
}

fn read_run(conn: &Connection, run_id: &str) -> Result<Option<Run>> {
    Ok(read_runs(conn, &[run_id.to_string()])?.pop())
}

/// Load many runs with one query per table (a search page would otherwise cost four
/// queries per run). Keeps the order of `ids`; unknown ids are skipped.
fn read_runs(conn: &Connection, ids: &[String]) -> Result<Vec<Run>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut runs: HashMap<String, Run> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(",");
        let mut stmt = conn.prepare(&format!(
            "SELECT run_id, run_name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage
             FROM runs WHERE run_id IN ({marks})"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(chunk), |r| {
            Ok(RunInfo {
                run_id: r.get(0)?,
                run_name: r.get(1)?,
                experiment_id: r.get::<_, i64>(2)?.to_string(),
                user_id: r.get(3)?,
                status: RunStatus::parse(&r.get::<_, String>(4)?).unwrap_or(RunStatus::Running),
                start_time: r.get(5)?,
                end_time: r.get(6)?,
                artifact_uri: r.get(7)?,
                lifecycle_stage: LifecycleStage::parse(&r.get::<_, String>(8)?),
            })
        })?;
        for info in rows {
            let info = info?;
            runs.insert(
                info.run_id.clone(),
                Run {
                    info,
                    data: RunData::default(),
                },
            );
        }
        let mut m = conn.prepare(&format!(
            "SELECT run_id, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_id IN ({marks}) ORDER BY key"
        ))?;
        let mut rows = m.query(rusqlite::params_from_iter(chunk))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let nan: bool = r.get(3)?;
            if let Some(run) = runs.get_mut(&id) {
                run.data.metrics.push(Metric {
                    key: r.get(1)?,
                    value: if nan { f64::NAN } else { r.get(2)? },
                    timestamp: r.get(4)?,
                    step: r.get(5)?,
                });
            }
        }
        for (table, is_param) in [("params", true), ("tags", false)] {
            let mut q = conn.prepare(&format!(
                "SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks}) ORDER BY key"
            ))?;
            let mut rows = q.query(rusqlite::params_from_iter(chunk))?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                if let Some(run) = runs.get_mut(&id) {
                    let (key, value): (String, String) = (r.get(1)?, r.get(2)?);
                    if is_param {
                        run.data.params.push(Param { key, value });
                    } else {
                        run.data.tags.push(Tag { key, value });
                    }
                }
            }
        }
    }
    Ok(ids.iter().filter_map(|id| runs.remove(id)).collect())
}

pub(super) fn active_run(conn: &Connection, run_id: &str) -> Result<()> {
    active_run_rowid(conn, run_id).map(drop)
}

/// The run's integer surrogate, if the run exists and is active.
fn active_run_rowid(conn: &Connection, run_id: &str) -> Result<i64> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT run_rowid, lifecycle_stage FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Err(RegistryError::NotFound(format!(
            "Run with id={run_id} not found"
        ))),
        Some((rowid, stage)) if stage == "active" => Ok(rowid),
        Some(_) => Err(RegistryError::InvalidState(format!(
            "The run {run_id} must be in the 'active' state. Current state is deleted."
        ))),
    }
}

impl TrackingStore for SqliteStore {
    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<String> {
        limits::check_experiment_name(name)?;
        for t in tags {
            limits::check_tag(t)?;
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT experiment_id FROM experiments WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(RegistryError::AlreadyExists(format!(
                "Experiment '{name}' already exists."
            )));
        }
        let t = now_ms();
        let id: i64 = tx.query_row(
            "SELECT COALESCE(MAX(experiment_id), 0) + 1 FROM experiments",
            [],
            |r| r.get(0),
        )?;
        let location = artifact_location
            .map_or_else(|| format!("{}/{id}", self.artifact_root), str::to_string);
        tx.execute(
            "INSERT INTO experiments VALUES (?1, ?2, ?3, 'active', ?4, ?4)",
            params![id, name, location, t],
        )?;
        for tag in tags {
            tx.execute(
                "INSERT OR REPLACE INTO experiment_tags VALUES (?1, ?2, ?3)",
                params![id, tag.key, tag.value],
            )?;
        }
        tx.commit()?;
        Ok(id.to_string())
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let id = parse_experiment_id(experiment_id)?;
        read_experiment(&self.reader(), id)?.ok_or_else(|| {
            RegistryError::NotFound(format!("No Experiment with id={experiment_id} exists"))
        })
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let conn = self.reader();
        let id: Option<i64> = conn
            .query_row(
                "SELECT experiment_id FROM experiments WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| read_experiment(&conn, id))
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                RegistryError::NotFound(format!("Could not find experiment with name '{name}'"))
            })
    }

    fn search_experiments(
        &self,
        view: ViewType,
        filter: &str,
        order_by: &[String],
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>> {
        use crate::search_models::{Target, compile, order_by as order};
        let f = compile(Target::Experiments, filter)?;
        let order = order(Target::Experiments, order_by)?;
        let offset = parse_token(page_token)?;
        let conn = self.reader();
        let sql = format!(
            "SELECT e.experiment_id FROM experiments e WHERE e.{} AND {} ORDER BY {order} LIMIT {} OFFSET {offset}",
            view_clause(view),
            f.sql,
            look_ahead(max_results)
        );
        let mut stmt = conn.prepare(&sql)?;
        let mut ids: Vec<i64> = stmt
            .query_map(rusqlite::params_from_iter(&f.params), |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let next_page_token = next_token(&mut ids, offset, max_results);
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = read_experiment(&conn, id)? {
                items.push(e);
            }
        }
        Ok(Page {
            items,
            next_page_token,
        })
    }

    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()> {
        limits::check_experiment_name(new_name)?;
        let id = parse_experiment_id(experiment_id)?;
        let conn = self.conn();
        let clash: Option<i64> = conn
            .query_row(
                "SELECT experiment_id FROM experiments WHERE name = ?1",
                [new_name],
                |r| r.get(0),
            )
            .optional()?;
        if clash.is_some_and(|c| c != id) {
            return Err(RegistryError::AlreadyExists(format!(
                "Experiment '{new_name}' already exists."
            )));
        }
        let n = conn.execute(
            "UPDATE experiments SET name = ?1, last_update_time = ?2 WHERE experiment_id = ?3",
            params![new_name, now_ms(), id],
        )?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        Ok(())
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        if id == 0 {
            return Err(RegistryError::InvalidParameter(
                "Cannot delete the default experiment '0'.".into(),
            ));
        }
        set_experiment_stage(&self.conn(), id, LifecycleStage::Deleted, experiment_id)
    }

    fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        set_experiment_stage(&self.conn(), id, LifecycleStage::Active, experiment_id)
    }

    fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()> {
        limits::check_tag(tag)?;
        let id = parse_experiment_id(experiment_id)?;
        let conn = self.conn();
        if read_experiment(&conn, id)?.is_none() {
            return Err(RegistryError::NotFound(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        conn.execute(
            "INSERT OR REPLACE INTO experiment_tags VALUES (?1, ?2, ?3)",
            params![id, tag.key, tag.value],
        )?;
        Ok(())
    }

    fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        let conn = self.conn();
        if read_experiment(&conn, id)?.is_none() {
            return Err(RegistryError::NotFound(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        let n = conn.execute(
            "DELETE FROM experiment_tags WHERE experiment_id = ?1 AND key = ?2",
            params![id, key],
        )?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No tag with name: {key} in experiment with id {experiment_id}"
            )));
        }
        Ok(())
    }

    fn create_run(&self, new: NewRun) -> Result<Run> {
        for t in &new.tags {
            limits::check_tag(t)?;
        }
        let exp = self.get_experiment(&new.experiment_id)?;
        if exp.lifecycle_stage != LifecycleStage::Active {
            return Err(RegistryError::InvalidState(format!(
                "The experiment {} must be in the 'active' state. Current state is deleted.",
                exp.experiment_id
            )));
        }
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        let run_name = new
            .run_name
            .clone()
            .or_else(|| {
                new.tags
                    .iter()
                    .find(|t| t.key == "mlflow.runName")
                    .map(|t| t.value.clone())
            })
            .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
        let start = new.start_time.unwrap_or_else(now_ms);
        let artifact_uri = format!(
            "{}/{run_id}/artifacts",
            exp.artifact_location.trim_end_matches('/')
        );
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage)
             VALUES (?1, ?2, ?3, ?4, 'RUNNING', ?5, NULL, ?6, 'active')",
            params![
                run_id,
                exp.experiment_id.parse::<i64>().unwrap_or(0),
                run_name,
                new.user_id,
                start,
                artifact_uri
            ],
        )?;
        for t in &new.tags {
            tx.execute(
                "INSERT OR REPLACE INTO tags VALUES (?1, ?2, ?3)",
                params![run_id, t.key, t.value],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO tags VALUES (?1, 'mlflow.runName', ?2)",
            params![run_id, run_name],
        )?;
        tx.commit()?;
        read_run(&conn, &run_id)?
            .ok_or_else(|| RegistryError::NotFound(format!("Run with id={run_id} not found")))
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        read_run(&self.reader(), run_id)?
            .ok_or_else(|| RegistryError::NotFound(format!("Run with id={run_id} not found")))
    }

    fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        let mut conn = self.conn();
        active_run(&conn, run_id)?;
        let tx = conn.transaction()?;
        if let Some(s) = update.status {
            tx.execute(
                "UPDATE runs SET status = ?1 WHERE run_id = ?2",
                params![s.as_str(), run_id],
            )?;
        }
        if let Some(e) = update.end_time {
            tx.execute(
                "UPDATE runs SET end_time = ?1 WHERE run_id = ?2",
                params![e, run_id],
            )?;
        }
        if let Some(n) = &update.run_name {
            tx.execute(
                "UPDATE runs SET run_name = ?1 WHERE run_id = ?2",
                params![n, run_id],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO tags VALUES (?1, 'mlflow.runName', ?2)",
                params![run_id, n],
            )?;
        }
        tx.commit()?;
        read_run(&conn, run_id)?
            .map(|r| r.info)
            .ok_or_else(|| RegistryError::NotFound(format!("Run with id={run_id} not found")))
    }

    fn delete_run(&self, run_id: &str) -> Result<()> {
        set_run_stage(&self.conn(), run_id, LifecycleStage::Deleted)
    }

    fn restore_run(&self, run_id: &str) -> Result<()> {
        set_run_stage(&self.conn(), run_id, LifecycleStage::Active)
    }

    fn search_runs(&self, q: &RunQuery) -> Result<Page<Run>> {
        let offset = parse_token(q.page_token.as_deref())?;
        let filter = crate::search::compile_filter(&q.filter)?;
        let order = crate::search::compile_order_by(&q.order_by)?;
        let ids: Vec<i64> = q
            .experiment_ids
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT runs.run_id FROM runs WHERE runs.experiment_id IN ({list}) AND runs.{} AND ({}) ORDER BY {} LIMIT ? OFFSET ?",
            view_clause(q.view),
            filter.sql,
            order.sql
        );
        let mut values = filter.params;
        values.extend(order.params);
        values.push(rusqlite::types::Value::Integer(
            look_ahead(q.max_results) as i64
        ));
        values.push(rusqlite::types::Value::Integer(offset as i64));
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let mut run_ids: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(values), |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let next_page_token = next_token(&mut run_ids, offset, q.max_results);
        let items = read_runs(&conn, &run_ids)?;
        Ok(Page {
            items,
            next_page_token,
        })
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params_in: &[Param],
        tags: &[Tag],
    ) -> Result<()> {
        limits::check_batch(metrics, params_in, tags)?;
        let mut conn = self.conn();
        // Immediate: the write lock is taken up front, so a batch that reads (params,
        // key ids) before writing cannot lose a race to another process's writer.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let run_rowid = active_run_rowid(&tx, run_id)?;
        for p in params_in {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT value FROM params WHERE run_id = ?1 AND key = ?2",
                    params![run_id, p.key],
                    |r| r.get(0),
                )
                .optional()?;
            match existing {
                Some(v) if v != p.value => {
                    return Err(RegistryError::InvalidParameter(format!(
                        "Changing param values is not allowed. Param with key='{}' was already logged with value='{v}' for run ID='{run_id}'. Attempted logging new value '{}'.",
                        p.key, p.value
                    )));
                }
                Some(_) => {}
                None => {
                    tx.execute(
                        "INSERT INTO params VALUES (?1, ?2, ?3)",
                        params![run_id, p.key, p.value],
                    )?;
                }
            }
        }
        let new_keys = insert_metrics(&tx, &self.key_ids, run_id, run_rowid, metrics)?;
        for t in tags {
            tx.execute(
                "INSERT OR REPLACE INTO tags VALUES (?1, ?2, ?3)",
                params![run_id, t.key, t.value],
            )?;
            if t.key == "mlflow.runName" {
                tx.execute(
                    "UPDATE runs SET run_name = ?1 WHERE run_id = ?2",
                    params![t.value, run_id],
                )?;
            }
        }
        tx.commit()?;
        // Only committed ids are remembered: a rolled-back id may be reused for
        // another key.
        if !new_keys.is_empty() {
            self.key_ids().extend(new_keys);
        }
        Ok(())
    }

    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let conn = self.conn();
        active_run(&conn, run_id)?;
        let n = conn.execute(
            "DELETE FROM tags WHERE run_id = ?1 AND key = ?2",
            params![run_id, key],
        )?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        Ok(())
    }

    fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        let offset = parse_token(page_token)?;
        let conn = self.reader();
        let run_rowid: Option<i64> = conn
            .prepare_cached("SELECT run_rowid FROM runs WHERE run_id = ?1")?
            .query_row([run_id], |r| r.get(0))
            .optional()?;
        let Some(run_rowid) = run_rowid else {
            return Err(RegistryError::NotFound(format!(
                "Run with id={run_id} not found"
            )));
        };
        let key_id: Option<i64> = conn
            .prepare_cached("SELECT key_id FROM metric_keys WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        let Some(key_id) = key_id else {
            return Ok(Page {
                items: Vec::new(),
                next_page_token: None,
            });
        };
        // Both levels, merged in (step, timestamp, seq) order: the clustered table is
        // read in key order, the (bounded) log is filtered and sorted.
        let mut stmt = conn.prepare_cached(
            "SELECT value, is_nan, timestamp, step, seq FROM metrics WHERE run_rowid = ?1 AND key_id = ?2
             UNION ALL
             SELECT value, is_nan, timestamp, step, seq FROM metrics_log WHERE run_rowid = ?1 AND key_id = ?2
             ORDER BY 4, 3, 5 LIMIT ?3 OFFSET ?4",
        )?;
        let mut items: Vec<Metric> = stmt
            .query_map(
                params![
                    run_rowid,
                    key_id,
                    look_ahead(max_results) as i64,
                    offset as i64
                ],
                |r| {
                    let nan: bool = r.get(1)?;
                    Ok(Metric {
                        key: key.to_string(),
                        value: if nan { f64::NAN } else { r.get(0)? },
                        timestamp: r.get(2)?,
                        step: r.get(3)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        let next_page_token = next_token(&mut items, offset, max_results);
        Ok(Page {
            items,
            next_page_token,
        })
    }
}

/// Rows in `metrics_log` that trigger a merge into `metrics`.
const LOG_MERGE_ROWS: i64 = 65_536;

/// Append metric values and move each key's latest value; returns the key ids this
/// transaction created, for the caller to remember once it has committed.
///
/// History is clustered by (run, key, step, timestamp) so that reads are sequential,
/// but a batch spans many keys: inserted there directly, a 1000-key batch dirties a
/// page per key, and every dirty page is written to the WAL and again at checkpoint.
/// So values are appended to `metrics_log` (a few pages per batch) and moved into
/// `metrics` in sorted bulk once the log holds `LOG_MERGE_ROWS`, which dirties each
/// key's page once per merge instead of once per batch. Reads see both levels.
fn insert_metrics(
    tx: &rusqlite::Transaction<'_>,
    cache: &Mutex<HashMap<String, i64>>,
    run_id: &str,
    run_rowid: i64,
    metrics: &[Metric],
) -> Result<Vec<(String, i64)>> {
    use rusqlite::types::Value as V;
    if metrics.is_empty() {
        return Ok(Vec::new());
    }
    // MLflow's latest value is the one with the greatest (step, timestamp, value);
    // reduce the batch per key first, then upsert once per key.
    // NaN is stored as 0.0 with a flag and the upsert compares stored values, so it
    // ranks as 0.0 here too: the latest value must not depend on how values were batched.
    let rank = |m: &Metric| {
        (
            m.step,
            m.timestamp,
            if m.value.is_nan() { 0.0 } else { m.value },
        )
    };
    let mut latest: HashMap<&str, &Metric> = HashMap::new();
    for m in metrics {
        match latest.get(m.key.as_str()) {
            Some(cur) if rank(cur) > rank(m) => {}
            _ => {
                latest.insert(&m.key, m);
            }
        }
    }
    // Key ids: from the cache, else from the table, else new.
    let mut ids: HashMap<&str, i64> = HashMap::with_capacity(latest.len());
    let mut missing = Vec::new();
    {
        let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        for k in latest.keys() {
            match cache.get(*k) {
                Some(id) => {
                    ids.insert(k, *id);
                }
                None => missing.push(*k),
            }
        }
    }
    let mut created = Vec::new();
    for k in missing {
        let found: Option<i64> = tx
            .prepare_cached("SELECT key_id FROM metric_keys WHERE key = ?1")?
            .query_row([k], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO metric_keys (key) VALUES (?1)")?
                    .execute([k])?;
                tx.last_insert_rowid()
            }
        };
        ids.insert(k, id);
        created.push((k.to_string(), id));
    }

    const ROWS: usize = 200;
    let value = |m: &Metric| {
        let nan = m.value.is_nan();
        [
            V::Real(if nan { 0.0 } else { m.value }),
            V::Integer(i64::from(nan)),
        ]
    };
    for chunk in metrics.chunks(ROWS) {
        let marks = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut values: Vec<V> = Vec::with_capacity(chunk.len() * 6);
        for m in chunk {
            values.push(V::Integer(run_rowid));
            values.push(V::Integer(ids[m.key.as_str()]));
            values.push(V::Integer(m.step));
            values.push(V::Integer(m.timestamp));
            values.extend(value(m));
        }
        tx.prepare_cached(&format!(
            "INSERT INTO metrics_log (run_rowid, key_id, step, timestamp, value, is_nan) VALUES {marks}"
        ))?
        .execute(rusqlite::params_from_iter(values))?;
    }
    let reduced: Vec<&Metric> = latest.into_values().collect();
    for chunk in reduced.chunks(ROWS) {
        let marks = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut values: Vec<V> = Vec::with_capacity(chunk.len() * 6);
        for m in chunk {
            values.push(V::Text(run_id.to_string()));
            values.push(V::Text(m.key.clone()));
            values.extend(value(m));
            values.push(V::Integer(m.timestamp));
            values.push(V::Integer(m.step));
        }
        tx.prepare_cached(&format!(
            "INSERT INTO latest_metrics VALUES {marks}
             ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
               timestamp = excluded.timestamp, step = excluded.step
             WHERE (excluded.step, excluded.timestamp, excluded.value) >= (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)"
        ))?
        .execute(rusqlite::params_from_iter(values))?;
    }
    // The log only grows by appends and is emptied whole, so its seq span is its size.
    let logged: i64 = tx
        .prepare_cached("SELECT COALESCE((SELECT MAX(seq) FROM metrics_log) - (SELECT MIN(seq) FROM metrics_log) + 1, 0)")?
        .query_row([], |r| r.get(0))?;
    if logged >= LOG_MERGE_ROWS {
        merge_metrics_log(tx)?;
    }
    Ok(created)
}

/// Move every logged value into the clustered history table, in its key order.
fn merge_metrics_log(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "INSERT INTO metrics (run_rowid, key_id, step, timestamp, seq, value, is_nan)
           SELECT run_rowid, key_id, step, timestamp, seq, value, is_nan FROM metrics_log
           ORDER BY run_rowid, key_id, step, timestamp, seq;
         DELETE FROM metrics_log;",
    )?;
    Ok(())
}

fn set_experiment_stage(
    conn: &Connection,
    id: i64,
    stage: LifecycleStage,
    shown: &str,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE experiments SET lifecycle_stage = ?1, last_update_time = ?2 WHERE experiment_id = ?3",
        params![stage.as_str(), now_ms(), id],
    )?;
    if n == 0 {
        return Err(RegistryError::NotFound(format!(
            "No Experiment with id={shown} exists"
        )));
    }
    conn.execute(
        "UPDATE runs SET lifecycle_stage = ?1 WHERE experiment_id = ?2",
        params![stage.as_str(), id],
    )?;
    Ok(())
}

fn set_run_stage(conn: &Connection, run_id: &str, stage: LifecycleStage) -> Result<()> {
    let n = conn.execute(
        "UPDATE runs SET lifecycle_stage = ?1 WHERE run_id = ?2",
        params![stage.as_str(), run_id],
    )?;
    if n == 0 {
        return Err(RegistryError::NotFound(format!(
            "Run with id={run_id} not found"
        )));
    }
    Ok(())
}
