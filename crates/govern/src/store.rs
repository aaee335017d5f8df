//! The governance SQLite file: every store of this room (tokens, approvals, the
//! inventory's updates, object permissions) keeps its table in it, opened the same way.

use crate::GovernError;
use rusqlite::Connection;
use std::path::Path;

/// Opens (creating its folder if needed) the file at `path`.
pub(crate) fn open(path: &Path) -> Result<Connection, GovernError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    Ok(Connection::open(path)?)
}

/// Readies a connection for one store: waits on a busy file, journals in WAL, and runs
/// the store's `schema` (idempotent `CREATE … IF NOT EXISTS`).
pub(crate) fn prepare(conn: Connection, schema: &str) -> Result<Connection, GovernError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode=WAL;")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}
