//! The Postgres tracking store (`registry.url: postgres://…`): the same contract and
//! MLflow semantics as the SQLite store, for several Freshet nodes sharing one registry.
//!
//! Concurrency: every read-modify-write runs in one transaction that first locks the
//! row it modifies (the run for a batch, the registered model for a new version), so
//! two nodes writing the same entity queue on it, and unique keys turn a lost race into
//! MLflow's `RESOURCE_ALREADY_EXISTS`. The schema is versioned ([`MIGRATIONS`]) and
//! migrated at open under an advisory lock, so nodes starting together apply it once.

use super::pg::{Conn, Pool, is_unique_violation};
use super::{RunQuery, TrackingStore, ViewType, look_ahead, next_token, parse_token};
use crate::error::{RegistryError, Result};
use crate::limits;
use crate::model::*;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_postgres::Row;

/// Schema versions, applied in order, each once. Never edit a released entry: add one.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "tracking and model registry", SCHEMA_V1),
    (2, "cluster nodes and leases", SCHEMA_V2),
    (
        3,
        "the fencing check as a function; metrics without a per-row run check",
        SCHEMA_V3,
    ),
];

/// The fencing check every write of a fenced handle opens its transaction with. The
/// lease row is share-locked until the write commits, so the lease cannot move to
/// another node half-way through a write; a holder stalled inside a transaction is cut
/// off by `idle_in_transaction_session_timeout` (set on every connection). It raises
/// (SQLSTATE `FS409`, read as [`RegistryError::Fenced`]) rather than returning nothing,
/// so that it can be sent in one pipeline with the writes it guards: they fail with it.
///
/// Metric values and latest values lose their foreign key to `runs`: every statement
/// that writes them checks, in the same snapshot, that the run exists and is active,
/// and runs are never deleted (only marked so), so the per-row check the key adds finds
/// nothing new; on a batch of 1,000 metrics it was over half the insert's time
/// (EXPLAIN ANALYZE: 4.9 of 8.8 ms).
const SCHEMA_V3: &str = r#"
ALTER TABLE metrics DROP CONSTRAINT IF EXISTS metrics_run_id_fkey;
ALTER TABLE latest_metrics DROP CONSTRAINT IF EXISTS latest_metrics_run_id_fkey;
CREATE FUNCTION freshet_fence(lease TEXT, fence_token BIGINT) RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM freshet_leases
        WHERE name = lease AND token = fence_token AND expires_at > clock_timestamp() FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lease % is no longer held at token %: another node leads it now', lease, fence_token
            USING ERRCODE = 'FS409';
    END IF;
END $$;
"#;

/// The tables `freshet-cluster` keeps its members and leases in. They live in this
/// migration history so that one version number describes the whole database, and
/// because fenced writes ([`PostgresStore::fenced`]) check a lease in the same
/// transaction as the write. Times are the database's clock, never a node's.
const SCHEMA_V2: &str = r#"
CREATE TABLE freshet_nodes (
    node_id TEXT COLLATE "C" PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE freshet_leases (
    name TEXT COLLATE "C" PRIMARY KEY,
    holder TEXT COLLATE "C" NOT NULL,
    -- The fencing token: greater for every new holder, never reused.
    token BIGINT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"#;

/// Text columns compare byte-wise (`COLLATE "C"`), as in SQLite and MLflow, whatever
/// the database's locale: ordering and LIKE must not depend on where it runs.
const SCHEMA_V1: &str = r#"
CREATE TABLE experiments (
    experiment_id BIGINT PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL
);
CREATE SEQUENCE experiment_ids START 1;
CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
    key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
    run_id TEXT COLLATE "C" PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
    run_name TEXT COLLATE "C" NOT NULL, user_id TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    start_time BIGINT NOT NULL, end_time BIGINT,
    artifact_uri TEXT COLLATE "C" NOT NULL, lifecycle_stage TEXT NOT NULL
);
CREATE INDEX runs_by_experiment ON runs(experiment_id, start_time);
CREATE TABLE metrics (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs(run_id),
    key TEXT COLLATE "C" NOT NULL,
    step BIGINT NOT NULL, timestamp BIGINT NOT NULL, seq BIGSERIAL,
    value DOUBLE PRECISION NOT NULL, is_nan BIGINT NOT NULL,
    PRIMARY KEY (run_id, key, step, timestamp, seq)
);
CREATE TABLE latest_metrics (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs(run_id),
    key TEXT COLLATE "C" NOT NULL, value DOUBLE PRECISION NOT NULL, is_nan BIGINT NOT NULL,
    timestamp BIGINT NOT NULL, step BIGINT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE params (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs(run_id),
    key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE tags (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs(run_id),
    key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE logged_models (
    model_id TEXT COLLATE "C" PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments(experiment_id),
    name TEXT COLLATE "C" NOT NULL, artifact_uri TEXT NOT NULL, status TEXT NOT NULL,
    model_type TEXT COLLATE "C" NOT NULL, source_run_id TEXT COLLATE "C" NOT NULL,
    status_message TEXT NOT NULL,
    creation_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL,
    lifecycle_stage TEXT NOT NULL
);
CREATE INDEX logged_models_by_experiment ON logged_models(experiment_id, creation_time);
CREATE TABLE logged_model_tags (
    model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
    key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_params (
    model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
    key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (model_id, key)
);
CREATE TABLE run_outputs (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs(run_id),
    model_id TEXT COLLATE "C" NOT NULL, step BIGINT NOT NULL, PRIMARY KEY (run_id, model_id)
);
CREATE TABLE logged_model_metrics (
    seq BIGSERIAL PRIMARY KEY,
    model_id TEXT COLLATE "C" NOT NULL REFERENCES logged_models(model_id) ON DELETE CASCADE,
    run_id TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION, is_nan BIGINT NOT NULL,
    timestamp BIGINT NOT NULL, step BIGINT NOT NULL
);
CREATE INDEX logged_model_metrics_by_model ON logged_model_metrics(model_id, key);
CREATE TABLE run_model_inputs (
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs(run_id),
    model_id TEXT COLLATE "C" NOT NULL, PRIMARY KEY (run_id, model_id)
);
CREATE TABLE run_dataset_inputs (
    seq BIGSERIAL PRIMARY KEY,
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs(run_id),
    name TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL,
    source_type TEXT NOT NULL, source TEXT NOT NULL,
    schema TEXT NOT NULL, profile TEXT NOT NULL, tags TEXT NOT NULL,
    UNIQUE (run_id, name, digest)
);
CREATE TABLE registered_models (
    name TEXT COLLATE "C" PRIMARY KEY,
    creation_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL,
    description TEXT NOT NULL,
    -- Version numbers are never reused, even after a version is deleted: an audit
    -- trail that says "v3" must always mean the same model.
    next_version BIGINT NOT NULL
);
CREATE TABLE registered_model_tags (
    name TEXT COLLATE "C" NOT NULL REFERENCES registered_models(name) ON UPDATE CASCADE ON DELETE CASCADE,
    key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (name, key)
);
CREATE TABLE model_versions (
    name TEXT COLLATE "C" NOT NULL REFERENCES registered_models(name) ON UPDATE CASCADE ON DELETE CASCADE,
    version BIGINT NOT NULL,
    creation_time BIGINT NOT NULL, last_update_time BIGINT NOT NULL,
    user_id TEXT COLLATE "C" NOT NULL, current_stage TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL, storage_location TEXT NOT NULL,
    run_id TEXT COLLATE "C" NOT NULL, run_link TEXT NOT NULL, model_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_by_run ON model_versions(run_id);
CREATE INDEX model_versions_by_model ON model_versions(model_id);
CREATE TABLE model_version_tags (
    name TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
    key TEXT COLLATE "C" NOT NULL, value TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE TABLE registered_model_aliases (
    name TEXT COLLATE "C" NOT NULL, alias TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version) ON UPDATE CASCADE ON DELETE CASCADE
);
-- Every move of an alias, kept by triggers so that no path (the API, the loop, a
-- deleted version taking its aliases with it) can leave it out. `version` NULL: the
-- alias was removed. Rows outlive the versions they name.
CREATE TABLE model_alias_history (
    seq BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL, alias TEXT COLLATE "C" NOT NULL, version BIGINT, at_ms BIGINT
);
CREATE INDEX model_alias_history_by_model ON model_alias_history(name, seq);
CREATE FUNCTION freshet_alias_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO model_alias_history (name, alias, version, at_ms)
            VALUES (OLD.name, OLD.alias, NULL, now_ms);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.version IS NOT DISTINCT FROM OLD.version THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' AND NEW.version IS NOT DISTINCT FROM (SELECT h.version FROM model_alias_history h
            WHERE h.name = NEW.name AND h.alias = NEW.alias ORDER BY h.seq DESC LIMIT 1) THEN
        RETURN NEW;
    END IF;
    INSERT INTO model_alias_history (name, alias, version, at_ms)
        VALUES (NEW.name, NEW.alias, NEW.version, now_ms);
    RETURN NEW;
END $$;
CREATE TRIGGER model_alias_changed AFTER INSERT OR UPDATE OF version OR DELETE
    ON registered_model_aliases FOR EACH ROW EXECUTE FUNCTION freshet_alias_history();
CREATE FUNCTION freshet_alias_history_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE model_alias_history SET name = NEW.name WHERE name = OLD.name;
    RETURN NEW;
END $$;
CREATE TRIGGER model_alias_history_renamed AFTER UPDATE OF name ON registered_models
    FOR EACH ROW EXECUTE FUNCTION freshet_alias_history_renamed();
"#;

/// The key of the advisory lock migrations run under (any constant; "FRSHTREG").
const MIGRATION_LOCK: i64 = 0x4652_5348_5452_4547;

/// The default experiment every MLflow server has.
const DEFAULT_EXPERIMENT: &str = "Default";

/// Connections per store (per node).
const CONNECTIONS: usize = 8;

/// Postgres-backed [`TrackingStore`] and [`super::ModelStore`].
///
/// A handle may be [fenced](PostgresStore::fenced): then each of its writes first
/// checks, in its own transaction, that a lease is still held at a fencing token, and
/// is refused with [`RegistryError::Fenced`] once another node has taken the lease.
#[derive(Clone)]
pub struct PostgresStore {
    pub(super) pool: Arc<Pool>,
    pub(super) artifact_root: String,
    fence: Option<Arc<Fence>>,
}

/// A lease and the fencing token its holder was granted (see `freshet-cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease's name, e.g. `model:fraud`.
    pub lease: String,
    /// The token the lease was granted at; a later holder gets a greater one.
    pub token: i64,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.pool.shown())
            .field("artifact_root", &self.artifact_root)
            .field("fence", &self.fence)
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

/// Bring the database's schema to the newest version this build knows, once, however
/// many nodes start at the same time: the first takes the advisory lock and migrates,
/// the others wait for it and find nothing left to do. A database migrated by a newer
/// Freshet is refused rather than written with an older idea of the schema.
fn migrate(conn: &mut Conn<'_>) -> Result<i64> {
    conn.begin();
    conn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    conn.batch(
        "CREATE TABLE IF NOT EXISTS freshet_schema_migrations (
             version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)",
    )?;
    let current: i64 = conn
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM freshet_schema_migrations",
            &[],
        )?
        .try_get(0)?;
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > newest {
        return Err(RegistryError::Database(format!(
            "the registry database is at schema version {current}, newer than this Freshet knows ({newest}): upgrade Freshet"
        )));
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        conn.batch(sql)?;
        conn.execute(
            "INSERT INTO freshet_schema_migrations VALUES ($1, $2, $3)",
            &[version, description, &now_ms()],
        )?;
        tracing::info!(version, description, "registry schema migrated");
    }
    conn.commit()?;
    Ok(newest)
}

impl PostgresStore {
    /// Connect to the database at `url` (`postgres://user:password@host:port/db`; the
    /// password may instead come from `PGPASSWORD`), migrate its schema and make sure
    /// the default experiment exists. `tls_ca_file` adds a CA to the system roots.
    /// New experiments get artifact locations under `artifact_root`.
    pub fn open(url: &str, tls_ca_file: Option<&str>, artifact_root: &str) -> Result<Self> {
        let pool = Pool::open(url, tls_ca_file, CONNECTIONS)?;
        let root = artifact_root.trim_end_matches('/').to_string();
        {
            let mut conn = pool.get()?;
            migrate(&mut conn)?;
            let t = now_ms();
            conn.execute(
                "INSERT INTO experiments VALUES (0, $1, $2, 'active', $3, $3) ON CONFLICT DO NOTHING",
                &[&DEFAULT_EXPERIMENT, &format!("{root}/0"), &t],
            )?;
        }
        Ok(Self {
            pool: Arc::new(pool),
            artifact_root: root,
            fence: None,
        })
    }

    /// A handle on the same database whose writes are refused unless `fence` still
    /// holds (reads are not fenced).
    pub fn fenced(&self, fence: Fence) -> Self {
        Self {
            pool: self.pool.clone(),
            artifact_root: self.artifact_root.clone(),
            fence: Some(Arc::new(fence)),
        }
    }

    /// A connection in a new transaction for a write, the fence checked first (both sent
    /// with the write's first statement).
    pub(super) fn write(&self) -> Result<Conn<'_>> {
        let mut conn = self.pool.get()?;
        conn.begin();
        if let Some(f) = &self.fence {
            conn.fence(&f.lease, f.token);
        }
        Ok(conn)
    }

    /// A connection for a write of one statement: a fenced handle opens a transaction
    /// with the fencing check (sent with the statement); others need none.
    pub(super) fn write_once(&self) -> Result<Conn<'_>> {
        if self.fence.is_some() {
            self.write()
        } else {
            self.pool.get()
        }
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .pool
            .get()?
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM freshet_schema_migrations",
                &[],
            )?
            .try_get(0)?)
    }

    pub(super) fn conn(&self) -> Result<Conn<'_>> {
        self.pool.get()
    }
}

fn tags_from(rows: Vec<Row>) -> Result<Vec<Tag>> {
    rows.into_iter()
        .map(|r| {
            Ok(Tag {
                key: r.try_get(0)?,
                value: r.try_get(1)?,
            })
        })
        .collect()
}

fn read_experiment(conn: &mut Conn<'_>, id: i64) -> Result<Option<Experiment>> {
    let Some(r) = conn.query_opt(
        "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time
         FROM experiments WHERE experiment_id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let mut exp = Experiment {
        experiment_id: r.try_get::<_, i64>(0)?.to_string(),
        name: r.try_get(1)?,
        artifact_location: r.try_get(2)?,
        lifecycle_stage: LifecycleStage::parse(r.try_get(3)?),
        creation_time: r.try_get(4)?,
        last_update_time: r.try_get(5)?,
        tags: Vec::new(),
    };
    exp.tags = tags_from(conn.query(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = $1 ORDER BY key",
        &[&id],
    )?)?;
    Ok(Some(exp))
}

pub(super) fn read_run(conn: &mut Conn<'_>, run_id: &str) -> Result<Option<Run>> {
    Ok(read_runs(conn, &[run_id.to_string()])?.pop())
}

/// Load many runs with one query per table. Keeps the order of `ids`; unknown ids are
/// skipped.
fn read_runs(conn: &mut Conn<'_>, ids: &[String]) -> Result<Vec<Run>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The four reads go out together: one round trip.
    let mut answers = conn
        .pipeline(&[
            (
                "SELECT run_id, run_name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage
                 FROM runs WHERE run_id = ANY($1)",
                &[&ids],
            ),
            (
                "SELECT run_id, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_id = ANY($1) ORDER BY key",
                &[&ids],
            ),
            (
                "SELECT run_id, key, value FROM params WHERE run_id = ANY($1) ORDER BY key",
                &[&ids],
            ),
            (
                "SELECT run_id, key, value FROM tags WHERE run_id = ANY($1) ORDER BY key",
                &[&ids],
            ),
        ])?
        .into_iter();
    let mut next = || answers.next().unwrap_or_default();
    let mut runs: HashMap<String, Run> = HashMap::with_capacity(ids.len());
    for r in next() {
        let info = RunInfo {
            run_id: r.try_get(0)?,
            run_name: r.try_get(1)?,
            experiment_id: r.try_get::<_, i64>(2)?.to_string(),
            user_id: r.try_get(3)?,
            status: RunStatus::parse(r.try_get(4)?).unwrap_or(RunStatus::Running),
            start_time: r.try_get(5)?,
            end_time: r.try_get(6)?,
            artifact_uri: r.try_get(7)?,
            lifecycle_stage: LifecycleStage::parse(r.try_get(8)?),
        };
        runs.insert(
            info.run_id.clone(),
            Run {
                info,
                data: RunData::default(),
            },
        );
    }
    for r in next() {
        let id: String = r.try_get(0)?;
        let nan: i64 = r.try_get(3)?;
        if let Some(run) = runs.get_mut(&id) {
            run.data.metrics.push(Metric {
                key: r.try_get(1)?,
                value: if nan != 0 { f64::NAN } else { r.try_get(2)? },
                timestamp: r.try_get(4)?,
                step: r.try_get(5)?,
            });
        }
    }
    for is_param in [true, false] {
        for r in next() {
            let id: String = r.try_get(0)?;
            if let Some(run) = runs.get_mut(&id) {
                let (key, value): (String, String) = (r.try_get(1)?, r.try_get(2)?);
                if is_param {
                    run.data.params.push(Param { key, value });
                } else {
                    run.data.tags.push(Tag { key, value });
                }
            }
        }
    }
    Ok(ids.iter().filter_map(|id| runs.remove(id)).collect())
}

/// `Ok` if the run exists and is active. With `lock`, the run's row is locked until
/// the transaction ends, so writers of the same run queue behind each other.
pub(super) fn active_run(conn: &mut Conn<'_>, run_id: &str, lock: bool) -> Result<()> {
    let sql = if lock {
        "SELECT lifecycle_stage FROM runs WHERE run_id = $1 FOR NO KEY UPDATE"
    } else {
        "SELECT lifecycle_stage FROM runs WHERE run_id = $1"
    };
    let rows = conn.query(sql, &[&run_id])?;
    run_is_active(run_id, &rows)
}

fn upsert_tag_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
    )
}

impl TrackingStore for PostgresStore {
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
        let already =
            || RegistryError::AlreadyExists(format!("Experiment '{name}' already exists."));
        let mut conn = self.write()?;
        if conn
            .query_opt("SELECT 1 FROM experiments WHERE name = $1", &[&name])?
            .is_some()
        {
            return Err(already());
        }
        let id: i64 = conn
            .query_one("SELECT nextval('experiment_ids')", &[])?
            .try_get(0)?;
        let location = artifact_location
            .map_or_else(|| format!("{}/{id}", self.artifact_root), str::to_string);
        let t = now_ms();
        match conn.execute(
            "INSERT INTO experiments VALUES ($1, $2, $3, 'active', $4, $4)",
            &[&id, &name, &location, &t],
        ) {
            Err(e) if is_unique_violation(&e) => return Err(already()),
            other => other?,
        };
        for tag in tags {
            conn.execute(
                "INSERT INTO experiment_tags VALUES ($1, $2, $3)
                 ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                &[&id, &tag.key, &tag.value],
            )?;
        }
        conn.commit()?;
        Ok(id.to_string())
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment> {
        let id = parse_experiment_id(experiment_id)?;
        read_experiment(&mut self.conn()?, id)?.ok_or_else(|| {
            RegistryError::NotFound(format!("No Experiment with id={experiment_id} exists"))
        })
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Experiment> {
        let mut conn = self.conn()?;
        let id: Option<i64> = conn
            .query_opt(
                "SELECT experiment_id FROM experiments WHERE name = $1",
                &[&name],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        id.map(|id| read_experiment(&mut conn, id))
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
        let mut conn = self.conn()?;
        let sql = format!(
            "SELECT e.experiment_id FROM experiments e WHERE e.{} AND {} ORDER BY {order} LIMIT {} OFFSET {offset}",
            view_clause(view),
            f.sql,
            look_ahead(max_results)
        );
        let mut ids: Vec<i64> = conn
            .query_values(&sql, &f.params)?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let next_page_token = next_token(&mut ids, offset, max_results);
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = read_experiment(&mut conn, id)? {
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
        let already =
            || RegistryError::AlreadyExists(format!("Experiment '{new_name}' already exists."));
        let mut conn = self.write()?;
        let clash: Option<i64> = conn
            .query_opt(
                "SELECT experiment_id FROM experiments WHERE name = $1",
                &[&new_name],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        if clash.is_some_and(|c| c != id) {
            return Err(already());
        }
        let n = match conn.execute(
            "UPDATE experiments SET name = $1, last_update_time = $2 WHERE experiment_id = $3",
            &[&new_name, &now_ms(), &id],
        ) {
            Err(e) if is_unique_violation(&e) => return Err(already()),
            other => other?,
        };
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        conn.commit()
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        if id == 0 {
            return Err(RegistryError::InvalidParameter(
                "Cannot delete the default experiment '0'.".into(),
            ));
        }
        set_experiment_stage(
            &mut self.write()?,
            id,
            LifecycleStage::Deleted,
            experiment_id,
        )
    }

    fn restore_experiment(&self, experiment_id: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        set_experiment_stage(
            &mut self.write()?,
            id,
            LifecycleStage::Active,
            experiment_id,
        )
    }

    fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()> {
        limits::check_tag(tag)?;
        let id = parse_experiment_id(experiment_id)?;
        let mut conn = self.write()?;
        if read_experiment(&mut conn, id)?.is_none() {
            return Err(RegistryError::NotFound(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        conn.execute(
            "INSERT INTO experiment_tags VALUES ($1, $2, $3)
             ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
            &[&id, &tag.key, &tag.value],
        )?;
        conn.commit()
    }

    fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()> {
        let id = parse_experiment_id(experiment_id)?;
        let mut conn = self.write()?;
        if read_experiment(&mut conn, id)?.is_none() {
            return Err(RegistryError::NotFound(format!(
                "No Experiment with id={experiment_id} exists"
            )));
        }
        let n = conn.execute(
            "DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2",
            &[&id, &key],
        )?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No tag with name: {key} in experiment with id {experiment_id}"
            )));
        }
        conn.commit()
    }

    fn create_run(&self, new: NewRun) -> Result<Run> {
        for t in &new.tags {
            limits::check_tag(t)?;
        }
        let exp_id = parse_experiment_id(&new.experiment_id)?;
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
        // Later values of a key win, as they would one by one; the run name last. Sorted
        // by key, as runs are read back.
        let mut tags: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        for t in &new.tags {
            tags.insert(&t.key, &t.value);
        }
        tags.insert("mlflow.runName", &run_name);
        let (keys, values): (Vec<&str>, Vec<&str>) = tags.iter().map(|(k, v)| (*k, *v)).unzip();
        // One statement writes the run and its tags, only if the experiment is active,
        // and answers with the run's artifact location: with the transaction's opening
        // and COMMIT, one round trip. The answer is built from what was written.
        let mut conn = self.write_once()?;
        let written = conn.finish(
                "WITH run AS (
                     INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage)
                     SELECT $1::text, e.experiment_id, $3, $4, 'RUNNING', $5, NULL,
                            rtrim(e.artifact_location, '/') || '/' || $1::text || '/artifacts', 'active'
                     FROM experiments e WHERE e.experiment_id = $2 AND e.lifecycle_stage = 'active'
                     RETURNING artifact_uri),
                 tagged AS (
                     INSERT INTO tags SELECT $1, k, v FROM unnest($6::text[], $7::text[]) AS t(k, v)
                     WHERE EXISTS (SELECT 1 FROM run))
                 SELECT artifact_uri FROM run",
                &[&run_id, &exp_id, &run_name, &new.user_id, &start, &keys, &values],
            )?;
        let Some(row) = written.first() else {
            // Nothing written: the experiment is missing or deleted; say which.
            drop(conn);
            let exp = self.get_experiment(&new.experiment_id)?;
            return Err(RegistryError::InvalidState(format!(
                "The experiment {} must be in the 'active' state. Current state is deleted.",
                exp.experiment_id
            )));
        };
        Ok(Run {
            info: RunInfo {
                run_id: run_id.clone(),
                run_name: run_name.clone(),
                experiment_id: exp_id.to_string(),
                user_id: new.user_id.clone(),
                status: RunStatus::Running,
                start_time: start,
                end_time: None,
                artifact_uri: row.try_get(0)?,
                lifecycle_stage: LifecycleStage::Active,
            },
            data: RunData {
                tags: tags
                    .into_iter()
                    .map(|(k, v)| Tag {
                        key: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                ..RunData::default()
            },
        })
    }

    fn get_run(&self, run_id: &str) -> Result<Run> {
        read_run(&mut self.conn()?, run_id)?
            .ok_or_else(|| RegistryError::NotFound(format!("Run with id={run_id} not found")))
    }

    fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        let mut conn = self.write()?;
        active_run(&mut conn, run_id, true)?;
        if let Some(s) = update.status {
            conn.execute(
                "UPDATE runs SET status = $1 WHERE run_id = $2",
                &[&s.as_str(), &run_id],
            )?;
        }
        if let Some(e) = update.end_time {
            conn.execute(
                "UPDATE runs SET end_time = $1 WHERE run_id = $2",
                &[&e, &run_id],
            )?;
        }
        if let Some(n) = &update.run_name {
            conn.execute(
                "UPDATE runs SET run_name = $1 WHERE run_id = $2",
                &[n, &run_id],
            )?;
            conn.execute(&upsert_tag_sql("tags"), &[&run_id, &"mlflow.runName", n])?;
        }
        conn.commit()?;
        read_run(&mut conn, run_id)?
            .map(|r| r.info)
            .ok_or_else(|| RegistryError::NotFound(format!("Run with id={run_id} not found")))
    }

    fn delete_run(&self, run_id: &str) -> Result<()> {
        set_run_stage(&mut self.write()?, run_id, LifecycleStage::Deleted)
    }

    fn restore_run(&self, run_id: &str) -> Result<()> {
        set_run_stage(&mut self.write()?, run_id, LifecycleStage::Active)
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
        let experiments = if ids.is_empty() {
            "FALSE".to_string()
        } else {
            format!(
                "runs.experiment_id IN ({})",
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            )
        };
        let sql = format!(
            "SELECT runs.run_id FROM runs WHERE {experiments} AND runs.{} AND ({}) ORDER BY {} LIMIT ? OFFSET ?",
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
        let mut conn = self.conn()?;
        let mut run_ids: Vec<String> = conn
            .query_values(&sql, &values)?
            .into_iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let next_page_token = next_token(&mut run_ids, offset, q.max_results);
        let items = read_runs(&mut conn, &run_ids)?;
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
        // A param may be logged again with the same value, never with another, in this
        // batch or before it.
        let mut new_params: Vec<(&str, &str)> = Vec::new();
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for p in params_in {
            match seen.get(p.key.as_str()) {
                Some(v) if *v != p.value => return Err(param_changed(run_id, &p.key, v, &p.value)),
                Some(_) => {}
                None => {
                    seen.insert(&p.key, &p.value);
                    new_params.push((&p.key, &p.value));
                }
            }
        }
        // Later values of a tag in one batch win, as they would one by one. Concurrent
        // batches of one run lock the rows they upsert in one order (params, the run's
        // name, latest metrics, tags; each by key), so they queue, never deadlock.
        new_params.sort_unstable();
        let mut last: std::collections::BTreeMap<&str, &str> = std::collections::BTreeMap::new();
        for t in tags {
            last.insert(&t.key, &t.value);
        }
        let (tag_keys, tag_values): (Vec<&str>, Vec<&str>) = last.into_iter().unzip();
        let run_name = tags.iter().rev().find(|t| t.key == "mlflow.runName");

        // Round trips are the cost: a batch is one statement (`LOG_BATCH`), after one
        // round trip for its params if it has any.
        let mut conn = if new_params.is_empty() {
            self.write_once()?
        } else {
            self.write()?
        };
        if !new_params.is_empty() {
            // Params first, in a round trip of their own: insert the new keys and learn
            // which went in. A key another writer holds (or, concurrently, is inserting:
            // the unique key makes this insert wait for it) keeps its value; only those
            // keys are read back, and if one differs from ours the batch fails before
            // anything else is sent and the transaction rolls back.
            let (keys, values): (Vec<&str>, Vec<&str>) = new_params.iter().copied().unzip();
            let mut answers = conn
                .pipeline(&[
                    (ACTIVE_RUN, &[&run_id]),
                    (
                        "INSERT INTO params SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)
                         WHERE EXISTS (SELECT 1 FROM runs WHERE run_id = $1 AND lifecycle_stage = 'active')
                         ON CONFLICT (run_id, key) DO NOTHING RETURNING key",
                        &[&run_id, &keys, &values],
                    ),
                ])?
                .into_iter();
            run_is_active(run_id, &answers.next().unwrap_or_default())?;
            let inserted: std::collections::HashSet<String> = answers
                .next()
                .unwrap_or_default()
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            let held: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| !inserted.contains(*k))
                .collect();
            if !held.is_empty() {
                for r in conn.query(
                    "SELECT key, value FROM params WHERE run_id = $1 AND key = ANY($2)",
                    &[&run_id, &held],
                )? {
                    let (key, stored): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                    if let Some(ours) = seen.get(key.as_str())
                        && *ours != stored
                    {
                        return Err(param_changed(run_id, &key, &stored, ours));
                    }
                }
            }
        }
        let latest = latest_metrics(metrics);
        let all: Vec<&Metric> = metrics.iter().collect();
        let (k, s, t, v, n) = metric_columns(&all);
        let (lk, ls, lt, lv, ln) = metric_columns(&latest);
        let name_value = run_name.map(|t| t.value.as_str());
        let rows = conn.finish(
            LOG_BATCH,
            &[
                &run_id,
                &k,
                &s,
                &t,
                &v,
                &n,
                &lk,
                &ls,
                &lt,
                &lv,
                &ln,
                &tag_keys,
                &tag_values,
                &name_value,
            ],
        )?;
        run_is_active(run_id, &rows)
    }

    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let mut conn = self.write()?;
        active_run(&mut conn, run_id, false)?;
        let n = conn.execute(
            "DELETE FROM tags WHERE run_id = $1 AND key = $2",
            &[&run_id, &key],
        )?;
        if n == 0 {
            return Err(RegistryError::NotFound(format!(
                "No tag with name: {key} in run with id {run_id}"
            )));
        }
        conn.commit()
    }

    fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>> {
        let offset = parse_token(page_token)? as i64;
        let mut conn = self.conn()?;
        if conn
            .query_opt("SELECT 1 FROM runs WHERE run_id = $1", &[&run_id])?
            .is_none()
        {
            return Err(RegistryError::NotFound(format!(
                "Run with id={run_id} not found"
            )));
        }
        let mut items: Vec<Metric> = conn
            .query(
                "SELECT value, is_nan, timestamp, step FROM metrics WHERE run_id = $1 AND key = $2
                 ORDER BY step, timestamp, seq LIMIT $3 OFFSET $4",
                &[&run_id, &key, &(look_ahead(max_results) as i64), &offset],
            )?
            .into_iter()
            .map(|r| {
                let nan: i64 = r.try_get(1)?;
                Ok(Metric {
                    key: key.to_string(),
                    value: if nan != 0 { f64::NAN } else { r.try_get(0)? },
                    timestamp: r.try_get(2)?,
                    step: r.try_get(3)?,
                })
            })
            .collect::<Result<_>>()?;
        let next_page_token = next_token(&mut items, offset as usize, max_results);
        Ok(Page {
            items,
            next_page_token,
        })
    }
}

/// A batch as the arrays `unnest` reads: keys, steps, timestamps, stored values, NaN flags.
type MetricColumns<'a> = (Vec<&'a str>, Vec<i64>, Vec<i64>, Vec<f64>, Vec<i64>);

fn metric_columns<'a>(ms: &[&'a Metric]) -> MetricColumns<'a> {
    (
        ms.iter().map(|m| m.key.as_str()).collect(),
        ms.iter().map(|m| m.step).collect(),
        ms.iter().map(|m| m.timestamp).collect(),
        ms.iter().map(|m| stored_value(m)).collect(),
        ms.iter().map(|m| i64::from(m.value.is_nan())).collect(),
    )
}

/// NaN is stored as 0.0 with a flag, and ranks as 0.0 for "latest", as in SQLite.
fn stored_value(m: &Metric) -> f64 {
    if m.value.is_nan() { 0.0 } else { m.value }
}

/// Each key's latest value in `metrics`: the greatest (step, timestamp, value).
fn latest_metrics(metrics: &[Metric]) -> Vec<&Metric> {
    let rank = |m: &Metric| (m.step, m.timestamp, stored_value(m));
    let mut latest: HashMap<&str, &Metric> = HashMap::new();
    for m in metrics {
        match latest.get(m.key.as_str()) {
            Some(cur) if rank(cur) > rank(m) => {}
            _ => {
                latest.insert(&m.key, m);
            }
        }
    }
    let mut latest: Vec<&Metric> = latest.into_values().collect();
    latest.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    latest
}

/// A batch of metrics, tags and the run's name in one statement (so one snapshot): every
/// part writes only if the run is active, and the answer is the run's stage, so that a
/// missing or deleted run is said to be so. Concurrent batches of one run lock what they
/// upsert in one order (the run's row, latest metrics, tags; each sorted by key), so
/// they queue, never deadlock. Parameters: the run; the metrics as columns (key, step,
/// timestamp, value, NaN flag); the latest value per key, the same way; tag keys and
/// values; the new run name or NULL.
const LOG_BATCH: &str = "WITH stage AS (SELECT lifecycle_stage FROM runs WHERE run_id = $1),
     named AS (UPDATE runs SET run_name = $14
               WHERE run_id = $1 AND $14::text IS NOT NULL AND lifecycle_stage = 'active'),
     logged AS (INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan)
                SELECT $1, k, s, t, v, n
                FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::float8[], $6::bigint[])
                     WITH ORDINALITY AS x(k, s, t, v, n, i)
                WHERE EXISTS (SELECT 1 FROM stage WHERE lifecycle_stage = 'active')
                ORDER BY i),
     latest AS (INSERT INTO latest_metrics (run_id, key, value, is_nan, timestamp, step)
                SELECT $1, k, v, n, t, s
                FROM unnest($7::text[], $8::bigint[], $9::bigint[], $10::float8[], $11::bigint[]) AS x(k, s, t, v, n)
                WHERE EXISTS (SELECT 1 FROM stage WHERE lifecycle_stage = 'active')
                ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
                   timestamp = excluded.timestamp, step = excluded.step
                WHERE (excluded.step, excluded.timestamp, excluded.value)
                      >= (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)),
     tagged AS (INSERT INTO tags SELECT $1, k, v FROM unnest($12::text[], $13::text[]) AS t(k, v)
                WHERE EXISTS (SELECT 1 FROM stage WHERE lifecycle_stage = 'active')
                ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value)
SELECT lifecycle_stage FROM stage";

/// A run's stage, read in the pipeline of a write.
const ACTIVE_RUN: &str = "SELECT lifecycle_stage FROM runs WHERE run_id = $1";

/// `Ok` if `rows` (the answer of [`ACTIVE_RUN`]) say the run exists and is active.
fn run_is_active(run_id: &str, rows: &[Row]) -> Result<()> {
    let stage: Option<String> = rows.first().map(|r| r.try_get(0)).transpose()?;
    match stage {
        None => Err(RegistryError::NotFound(format!(
            "Run with id={run_id} not found"
        ))),
        Some(stage) if stage == "active" => Ok(()),
        Some(_) => Err(RegistryError::InvalidState(format!(
            "The run {run_id} must be in the 'active' state. Current state is deleted."
        ))),
    }
}

fn param_changed(run_id: &str, key: &str, stored: &str, attempted: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Changing param values is not allowed. Param with key='{key}' was already logged with value='{stored}' for run ID='{run_id}'. Attempted logging new value '{attempted}'."
    ))
}

fn set_experiment_stage(
    conn: &mut Conn<'_>,
    id: i64,
    stage: LifecycleStage,
    shown: &str,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE experiments SET lifecycle_stage = $1, last_update_time = $2 WHERE experiment_id = $3",
        &[&stage.as_str(), &now_ms(), &id],
    )?;
    if n == 0 {
        return Err(RegistryError::NotFound(format!(
            "No Experiment with id={shown} exists"
        )));
    }
    conn.execute(
        "UPDATE runs SET lifecycle_stage = $1 WHERE experiment_id = $2",
        &[&stage.as_str(), &id],
    )?;
    conn.commit()
}

fn set_run_stage(conn: &mut Conn<'_>, run_id: &str, stage: LifecycleStage) -> Result<()> {
    let n = conn.execute(
        "UPDATE runs SET lifecycle_stage = $1 WHERE run_id = $2",
        &[&stage.as_str(), &run_id],
    )?;
    if n == 0 {
        return Err(RegistryError::NotFound(format!(
            "Run with id={run_id} not found"
        )));
    }
    conn.commit()
}
