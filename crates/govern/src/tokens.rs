//! API tokens: created with a name, grants and an optional expiry, shown once, stored
//! as a SHA-256 hash, compared in constant time, revocable.
//!
//! A token reads `fst_<id>_<secret>`: `id` (12 hex digits) finds the row, `secret` (64
//! hex digits, 256 random bits) is checked against the stored hash. The secret has full
//! entropy, so a fast hash is enough (no password stretching is needed), and nothing
//! stored lets anyone rebuild a token. The same token is accepted as an HTTP Basic
//! password with the token's name as the user name (the MLflow client's
//! `MLFLOW_TRACKING_USERNAME`/`PASSWORD`).
//!
//! A verified token's row (its hash, name, grants, expiry) is kept in memory for
//! [`CACHE_TTL`], so a request costs a hash and a constant-time compare, not a SQLite
//! lookup: the secret is still checked on every request and the expiry against the
//! clock. A revocation through this store (the server's API, hence the CLI) takes
//! effect at once; one made by another process on the same file, within the TTL.

use crate::GovernError;
use crate::identity::{AuthMethod, Grant, Principal};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// What is known of a token, never its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub grants: Vec<Grant>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TokenInfo {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A token just created: the only time its secret is visible.
pub struct NewToken {
    pub info: TokenInfo,
    /// `fst_<id>_<secret>`; show once, never log.
    pub token: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("info", &self.info)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why a presented credential was refused. Deliberately coarse in what it tells the
/// caller; the reason is for the audit and the operator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed token",
            Refused::Unknown => "unknown token",
            Refused::Revoked => "revoked token",
            Refused::Expired => "expired token",
        }
    }
}

/// How long a token's row is trusted without reading it again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Rows kept at most; past that the cache starts over (it never grows with junk:
/// only tokens whose row exists are kept).
const CACHE_MAX: usize = 10_000;

/// A token's row as read, and when.
#[derive(Clone)]
struct Row {
    stored: Vec<u8>,
    name: String,
    grants: Vec<Grant>,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
    read_at: Instant,
}

/// The token table, in the governance SQLite file.
pub struct TokenStore {
    conn: Mutex<Connection>,
    cache: RwLock<HashMap<String, Row>>,
    ttl: Duration,
}

const PREFIX: &str = "fst_";

impl TokenStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, GovernError> {
        let conn = crate::store::open(path)?;
        Self::init(conn)
    }

    pub fn in_memory() -> Result<Self, GovernError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, GovernError> {
        let conn = crate::store::prepare(
            conn,
            "CREATE TABLE IF NOT EXISTS tokens (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                secret_sha256 BLOB NOT NULL,
                grants TEXT NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                expires_at TEXT,
                revoked_at TEXT
             );",
        )?;
        Ok(TokenStore {
            conn: Mutex::new(conn),
            cache: RwLock::new(HashMap::new()),
            ttl: CACHE_TTL,
        })
    }

    /// The same store trusting rows read for `ttl` (zero: read on every request).
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The row of token `id`: from the cache while fresh, else from SQLite.
    fn row(&self, id: &str) -> Result<Option<Row>, GovernError> {
        if let Some(r) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .filter(|r| r.read_at.elapsed() < self.ttl)
        {
            return Ok(Some(r.clone()));
        }
        let row = {
            let conn = self.lock();
            let mut stmt = conn.prepare_cached(
                "SELECT secret_sha256, name, grants, expires_at, revoked_at FROM tokens WHERE id = ?1",
            )?;
            stmt.query_row([id], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .optional()?
        };
        let Some((stored, name, grants, expires_at, revoked_at)) = row else {
            return Ok(None);
        };
        let row = Row {
            stored,
            name,
            grants: serde_json::from_str(&grants)
                .map_err(|e| GovernError::invalid("tokens.grants", e.to_string()))?,
            expires_at: expires_at.as_deref().map(parse_time).transpose()?,
            revoked: revoked_at.is_some(),
            read_at: Instant::now(),
        };
        if !self.ttl.is_zero() {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(id.to_string(), row.clone());
        }
        Ok(Some(row))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a token named `name` (unique among live and revoked tokens).
    pub fn create(
        &self,
        name: &str,
        grants: Vec<Grant>,
        expires_at: Option<DateTime<Utc>>,
        created_by: &str,
    ) -> Result<NewToken, GovernError> {
        validate_name(name)?;
        if grants.is_empty() {
            return Err(GovernError::invalid("roles", "at least one role"));
        }
        for (i, g) in grants.iter().enumerate() {
            g.validate(&format!("grants[{i}]"))?;
        }
        let now = Utc::now();
        if expires_at.is_some_and(|e| e <= now) {
            return Err(GovernError::invalid("expires_at", "must be in the future"));
        }
        let id = hex::encode(rand::random::<[u8; 6]>());
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let hash = Sha256::digest(secret.as_bytes());
        let grants_json = serde_json::to_string(&grants)
            .map_err(|e| GovernError::invalid("grants", e.to_string()))?;
        let conn = self.lock();
        let taken: bool = conn
            .query_row("SELECT 1 FROM tokens WHERE name = ?1", [name], |_| Ok(true))
            .optional()?
            .unwrap_or(false);
        if taken {
            return Err(GovernError::Conflict {
                what: "token",
                name: name.to_string(),
            });
        }
        conn.execute(
            "INSERT INTO tokens (id, name, secret_sha256, grants, created_at, created_by, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                name,
                hash.as_slice(),
                grants_json,
                now.to_rfc3339(),
                created_by,
                expires_at.map(|e| e.to_rfc3339()),
            ],
        )?;
        Ok(NewToken {
            token: format!("{PREFIX}{id}_{secret}"),
            info: TokenInfo {
                id,
                name: name.to_string(),
                grants,
                created_at: now,
                created_by: created_by.to_string(),
                expires_at,
                revoked_at: None,
            },
        })
    }

    /// Every token, newest first, without secrets.
    pub fn list(&self) -> Result<Vec<TokenInfo>, GovernError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, name, grants, created_at, created_by, expires_at, revoked_at
             FROM tokens ORDER BY created_at DESC, name",
        )?;
        let rows = stmt.query_map([], row_info)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    /// Revokes the token named `name`; revoking twice is a no-op that returns the info.
    pub fn revoke(&self, name: &str) -> Result<TokenInfo, GovernError> {
        let conn = self.lock();
        conn.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, Utc::now().to_rfc3339()],
        )?;
        // At once on this store: no request after this line sees the token alive.
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, r| r.name != name);
        conn.query_row(
            "SELECT id, name, grants, created_at, created_by, expires_at, revoked_at
             FROM tokens WHERE name = ?1",
            [name],
            row_info,
        )
        .optional()?
        .ok_or_else(|| GovernError::NotFound {
            what: "token",
            name: name.to_string(),
        })?
    }

    /// Checks a bearer token; on success the principal it stands for.
    pub fn authenticate(&self, token: &str) -> Result<Result<Principal, Refused>, GovernError> {
        self.check(token, None, AuthMethod::Token)
    }

    /// Checks HTTP Basic credentials: the user is the token's name, the password the
    /// token.
    pub fn authenticate_basic(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Result<Principal, Refused>, GovernError> {
        self.check(password, Some(user), AuthMethod::Basic)
    }

    fn check(
        &self,
        token: &str,
        user: Option<&str>,
        method: AuthMethod,
    ) -> Result<Result<Principal, Refused>, GovernError> {
        let Some((id, secret)) = token
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(Err(Refused::Malformed));
        };
        if id.len() != 12 || secret.len() != 64 {
            return Ok(Err(Refused::Malformed));
        }
        let Some(row) = self.row(id)? else {
            return Ok(Err(Refused::Unknown));
        };
        let presented = Sha256::digest(secret.as_bytes());
        let secret_ok: bool = presented.as_slice().ct_eq(row.stored.as_slice()).into();
        let user_ok = user.is_none_or(|u| u.as_bytes().ct_eq(row.name.as_bytes()).into());
        if !(secret_ok && user_ok) {
            return Ok(Err(Refused::Unknown));
        }
        if row.revoked {
            return Ok(Err(Refused::Revoked));
        }
        if row.expires_at.is_some_and(|e| Utc::now() >= e) {
            return Ok(Err(Refused::Expired));
        }
        Ok(Ok(Principal {
            name: format!("token:{}", row.name),
            method,
            grants: row.grants,
        }))
    }
}

fn validate_name(name: &str) -> Result<(), GovernError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(GovernError::invalid(
            "name",
            "1 to 64 characters from letters, digits, '-', '_', '.', '@'",
        ))
    }
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, GovernError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| GovernError::invalid("tokens.time", e.to_string()))
}

type RowResult = Result<TokenInfo, GovernError>;

fn row_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowResult> {
    let id: String = r.get(0)?;
    let name: String = r.get(1)?;
    let grants: String = r.get(2)?;
    let created_at: String = r.get(3)?;
    let created_by: String = r.get(4)?;
    let expires_at: Option<String> = r.get(5)?;
    let revoked_at: Option<String> = r.get(6)?;
    Ok((|| {
        Ok(TokenInfo {
            id,
            name,
            grants: serde_json::from_str(&grants)
                .map_err(|e| GovernError::invalid("tokens.grants", e.to_string()))?,
            created_at: parse_time(&created_at)?,
            created_by,
            expires_at: expires_at.as_deref().map(parse_time).transpose()?,
            revoked_at: revoked_at.as_deref().map(parse_time).transpose()?,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Action, Resource, Role};

    fn grants(r: Role) -> Vec<Grant> {
        vec![Grant::new(vec![r], vec!["*".into()]).unwrap()]
    }

    #[test]
    fn created_token_authenticates_until_revoked() {
        let store = TokenStore::in_memory().unwrap();
        let t = store
            .create("ci", grants(Role::Producer), None, "admin")
            .unwrap();
        assert!(t.token.starts_with("fst_"));
        assert!(!format!("{t:?}").contains(&t.token));
        let p = store.authenticate(&t.token).unwrap().unwrap();
        assert_eq!(p.name, "token:ci");
        assert!(p.may(Action::Ingest, &Resource::Stream("s".into())));
        let b = store.authenticate_basic("ci", &t.token).unwrap().unwrap();
        assert_eq!(b.method, AuthMethod::Basic);
        assert_eq!(
            store.authenticate_basic("other", &t.token).unwrap(),
            Err(Refused::Unknown)
        );
        store.revoke("ci").unwrap();
        assert_eq!(store.authenticate(&t.token).unwrap(), Err(Refused::Revoked));
        assert!(!store.list().unwrap()[0].active(Utc::now()));
    }

    #[test]
    fn wrong_malformed_and_expired_tokens_are_refused() {
        let store = TokenStore::in_memory().unwrap();
        let t = store
            .create("a", grants(Role::Viewer), None, "admin")
            .unwrap();
        let mut wrong = t.token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert_eq!(store.authenticate(&wrong).unwrap(), Err(Refused::Unknown));
        assert_eq!(store.authenticate("nope").unwrap(), Err(Refused::Malformed));
        assert_eq!(
            store
                .authenticate("fst_000000000000_".to_string().as_str())
                .unwrap(),
            Err(Refused::Malformed)
        );
        let soon = Utc::now() + chrono::Duration::milliseconds(50);
        let e = store
            .create("short", grants(Role::Viewer), Some(soon), "admin")
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(80));
        assert_eq!(store.authenticate(&e.token).unwrap(), Err(Refused::Expired));
    }

    #[test]
    fn a_revocation_by_another_process_holds_within_the_cache_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("govern.db");
        let ttl = std::time::Duration::from_millis(200);
        let server = TokenStore::open(&path).unwrap().with_cache_ttl(ttl);
        let t = server
            .create("ci", grants(Role::Producer), None, "admin")
            .unwrap();
        assert!(server.authenticate(&t.token).unwrap().is_ok());
        // Another process on the same file revokes it.
        TokenStore::open(&path).unwrap().revoke("ci").unwrap();
        std::thread::sleep(ttl + std::time::Duration::from_millis(50));
        assert_eq!(
            server.authenticate(&t.token).unwrap(),
            Err(Refused::Revoked)
        );
        // The secret is checked on every request, cached or not.
        let again = server
            .create("b", grants(Role::Viewer), None, "admin")
            .unwrap();
        assert!(server.authenticate(&again.token).unwrap().is_ok());
        let mut wrong = again.token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert_eq!(server.authenticate(&wrong).unwrap(), Err(Refused::Unknown));
    }

    #[test]
    fn names_are_unique_and_checked() {
        let store = TokenStore::in_memory().unwrap();
        store
            .create("a", grants(Role::Viewer), None, "admin")
            .unwrap();
        assert!(matches!(
            store.create("a", grants(Role::Viewer), None, "admin"),
            Err(GovernError::Conflict { .. })
        ));
        let e = store
            .create("a b", grants(Role::Viewer), None, "admin")
            .unwrap_err();
        assert!(e.to_string().starts_with("name:"), "{e}");
        assert!(matches!(
            store.revoke("zz"),
            Err(GovernError::NotFound { .. })
        ));
    }
}
