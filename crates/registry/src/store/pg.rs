//! A blocking facade over `tokio-postgres` for the Postgres store: a fixed pool of
//! connections, each with its own prepared-statement cache, driven by a small runtime of
//! the store's own so that the synchronous store contract can be called from any thread
//! (the blocking pool, a test, or an async worker that accepts to block).
//!
//! Store code writes SQL with `$n` parameters and typed Rust values. The search
//! languages compile to SQL with `?` marks and SQLite values ([`Value`]); [`Conn::query_values`]
//! renumbers the marks and converts each value to the type Postgres inferred for it.

use crate::error::{RegistryError, Result};
use bytes::BytesMut;
use rusqlite::types::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_postgres::config::SslMode;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, Row, Statement};

/// The runtime the connections run on: one worker, never dropped.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: crate::runtime::Dedicated = std::sync::OnceLock::new();
    crate::runtime::dedicated(&RUNTIME, "freshet-registry-pg", 1)
        .map_err(|e| RegistryError::Database(format!("cannot start the database runtime: {e}")))
}

/// Run `fut` (which needs the runtime's I/O: connecting) and wait for it.
fn run_on_runtime<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| RegistryError::Database("the connection attempt was dropped".into()))
}

/// Wait for a client future. The client only talks to its connection task (on the
/// runtime) over channels, so any thread may poll it.
fn wait<T>(fut: impl Future<Output = T>) -> T {
    futures::executor::block_on(fut)
}

/// A driver error as one line: the server's message and SQLSTATE when there is one,
/// else the cause chain (a refused certificate, a reset connection). Never the URL.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut out = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                out.push_str(": ");
                out.push_str(&c.to_string());
                cause = c.source();
            }
            out
        }
    }
}

/// The SQLSTATE `freshet_fence()` raises when its lease has moved on (schema v3).
const FENCED_SQLSTATE: &str = "FS409";

impl From<tokio_postgres::Error> for RegistryError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if db.code().code() == FENCED_SQLSTATE => {
                RegistryError::Fenced(db.message().to_string())
            }
            _ => RegistryError::Database(describe(&e)),
        }
    }
}

/// Whether `e` is a unique-constraint violation (another writer got there first).
pub(crate) fn is_unique_violation(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Database(m) if m.ends_with("(23505)"))
}

/// How to reach the database: the parsed URL and the TLS to use.
#[derive(Clone)]
struct Target {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `host:port/db`, for messages (no user, no password).
    shown: String,
}

fn tls_connector(ca_file: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| RegistryError::Database(format!("TLS: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(file) = ca_file {
        let pem =
            std::fs::read(file).map_err(|e| bad(format!("cannot read tls_ca_file {file}: {e}")))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(format!("tls_ca_file {file} is not PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("tls_ca_file {file}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad(format!("tls_ca_file {file} holds no certificate")));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Target {
    fn parse(url: &str, ca_file: Option<&str>) -> Result<Self> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                RegistryError::Database(format!("registry.url is not a valid postgres URL: {e}"))
            })?;
        // The usual libpq fallback, so the password need not sit in the file.
        if config.get_password().is_none()
            && let Ok(pw) = std::env::var("PGPASSWORD")
        {
            config.password(pw);
        }
        config.application_name("freshet-registry");
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let shown = format!(
            "{host}:{port}/{}",
            config.get_dbname().unwrap_or("postgres")
        );
        let tls = if config.get_ssl_mode() == SslMode::Disable {
            None
        } else {
            Some(tls_connector(ca_file)?)
        };
        Ok(Self { config, tls, shown })
    }

    /// Open one connection and start its task on the runtime. Unless the URL says
    /// `sslmode=disable`, TLS is offered (`prefer` falls back to plain TCP only when the
    /// server has none; `require` never does) and a certificate that does not verify is
    /// an error, never a silent downgrade.
    fn connect(&self) -> Result<Client> {
        let target = self.clone();
        let made = run_on_runtime(async move {
            let spawn_conn = |fut: std::pin::Pin<
                Box<dyn Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send>,
            >| {
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::warn!(error = %describe(&e), "registry database connection ended");
                    }
                });
            };
            match &target.tls {
                None => {
                    let (client, conn) = target.config.connect(NoTls).await?;
                    spawn_conn(Box::pin(conn));
                    Ok(client)
                }
                Some(tls) => {
                    let (client, conn) = target.config.connect(tls.clone()).await?;
                    spawn_conn(Box::pin(conn));
                    Ok::<_, tokio_postgres::Error>(client)
                }
            }
        })?;
        let client = made.map_err(|e| {
            RegistryError::Database(format!(
                "cannot connect to the registry database {}: {}",
                self.shown,
                describe(&e)
            ))
        })?;
        // A writer stalled inside a transaction (a paused process) must not hold row
        // locks, and so a lease, for longer than a lease lasts.
        wait(client.batch_execute(
            "SET TimeZone = 'UTC'; SET idle_in_transaction_session_timeout = '5s'",
        ))?;
        Ok(client)
    }
}

/// One pooled connection with the statements prepared on it.
struct Slot {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A fixed pool of connections. A connection that broke (the server restarted, a
/// network blip) is replaced the next time it is taken.
pub(crate) struct Pool {
    slots: Vec<Mutex<Option<Slot>>>,
    next: AtomicUsize,
    target: Target,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("database", &self.target.shown)
            .field("connections", &self.slots.len())
            .finish()
    }
}

impl Pool {
    /// Connect `size` connections to `url` (one at least, now, so a wrong URL or a
    /// database that is down fails at start; the others as they are first needed).
    pub(crate) fn open(url: &str, ca_file: Option<&str>, size: usize) -> Result<Self> {
        let target = Target::parse(url, ca_file)?;
        let first = Slot {
            client: target.connect()?,
            statements: HashMap::new(),
        };
        let mut slots = vec![Mutex::new(Some(first))];
        slots.extend((1..size.max(1)).map(|_| Mutex::new(None)));
        Ok(Self {
            slots,
            next: AtomicUsize::new(0),
            target,
        })
    }

    /// `host:port/db` of the database, for messages.
    pub(crate) fn shown(&self) -> &str {
        &self.target.shown
    }

    /// A connection: a free one if there is one, else the next in turn.
    pub(crate) fn get(&self) -> Result<Conn<'_>> {
        let mut guard = None;
        for s in &self.slots {
            if let Ok(g) = s.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
                // A panic while holding the lock leaves at worst an open transaction,
                // which the guard's drop rolled back; the connection stays usable.
                self.slots[i].lock().unwrap_or_else(|e| e.into_inner())
            }
        };
        if guard.as_ref().is_none_or(|s| s.client.is_closed()) {
            *guard = Some(Slot {
                client: self.target.connect()?,
                statements: HashMap::new(),
            });
        }
        Ok(Conn {
            guard,
            in_tx: false,
            pending: Vec::new(),
        })
    }
}

/// A connection taken from the pool; returned when dropped. A transaction left open
/// (an early return on error) is rolled back then.
///
/// Round trips are what a call costs here, so a transaction's opening (`BEGIN` and the
/// fencing check) is not sent on its own: it waits in `pending` and goes out in one
/// pipeline with the transaction's first statement, and [`Conn::commit_with`] sends the
/// last statements together with `COMMIT`.
pub(crate) struct Conn<'a> {
    guard: MutexGuard<'a, Option<Slot>>,
    /// A transaction is open on the server.
    in_tx: bool,
    /// Statements without answers to read, sent ahead of the next one.
    pending: Vec<Pending>,
}

/// A statement held back to ride with the next one.
enum Pending {
    Begin,
    /// `SELECT freshet_fence(lease, token)`: raises `FS409` once the lease moved on.
    Fence(String, i64),
}

/// One statement of a pipeline and its parameters.
pub(crate) type Step<'s> = (&'s str, &'s [&'s (dyn ToSql + Sync)]);

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if self.in_tx
            && let Some(slot) = self.guard.as_ref()
        {
            let _ = wait(slot.client.batch_execute("ROLLBACK"));
        }
    }
}

impl Conn<'_> {
    fn slot(&mut self) -> Result<&mut Slot> {
        self.guard
            .as_mut()
            .ok_or_else(|| RegistryError::Database("the connection is gone".into()))
    }

    /// The prepared statement for `sql`, preparing it once per connection.
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        let slot = self.slot()?;
        if let Some(s) = slot.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = wait(slot.client.prepare(sql))?;
        // Search SQL varies with the filter; keep the cache bounded.
        if slot.statements.len() >= 512 {
            slot.statements.clear();
        }
        slot.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Send `steps` (after anything pending) without waiting between them, then wait for
    /// every answer: one round trip for all. The rows of each step, in order; the first
    /// step that failed is the error (in a transaction, the steps after it fail too, and
    /// the transaction is rolled back when the connection is dropped or, if `COMMIT` was
    /// among them, by the server).
    pub(crate) fn pipeline(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<Row>>> {
        let pending = std::mem::take(&mut self.pending);
        let mut all: Vec<(Statement, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
        for p in &pending {
            match p {
                Pending::Begin => all.push((self.statement("BEGIN")?, Vec::new())),
                Pending::Fence(lease, token) => all.push((
                    self.statement("SELECT freshet_fence($1, $2)")?,
                    vec![lease as &(dyn ToSql + Sync), token],
                )),
            }
        }
        let skip = all.len();
        for (sql, params) in steps {
            all.push((self.statement(sql)?, params.to_vec()));
        }
        if pending.iter().any(|p| matches!(p, Pending::Begin)) {
            self.in_tx = true;
        }
        if steps.iter().any(|(sql, _)| *sql == "COMMIT") {
            self.in_tx = false;
        }
        let client = &self.slot()?.client;
        let answers = wait(futures::future::join_all(
            all.iter().map(|(st, params)| client.query(st, params)),
        ));
        let mut rows = Vec::with_capacity(steps.len());
        for (i, answer) in answers.into_iter().enumerate() {
            let answer = answer?;
            if i >= skip {
                rows.push(answer);
            }
        }
        Ok(rows)
    }

    /// The rows of one statement.
    fn one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        if self.pending.is_empty() {
            let st = self.statement(sql)?;
            return Ok(wait(self.slot()?.client.query(&st, params))?);
        }
        Ok(self.pipeline(&[(sql, params)])?.pop().unwrap_or_default())
    }

    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.one(sql, params)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let mut rows = self.one(sql, params)?;
        if rows.len() > 1 {
            return Err(RegistryError::Database(
                "a query expected to return one row returned several".into(),
            ));
        }
        Ok(rows.pop())
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| {
            RegistryError::Database("a query expected to return one row returned none".into())
        })
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        if self.pending.is_empty() {
            let st = self.statement(sql)?;
            return Ok(wait(self.slot()?.client.execute(&st, params))?);
        }
        self.flush()?;
        self.execute(sql, params)
    }

    /// Send what is pending now (before a statement that cannot ride with it).
    fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.pipeline(&[])?;
        }
        Ok(())
    }

    /// Several statements without parameters (schema changes).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        self.flush()?;
        Ok(wait(self.slot()?.client.batch_execute(sql))?)
    }

    /// Run SQL written with `?` marks (the search compilers' output) with SQLite-typed
    /// values, each converted to the type Postgres inferred for its place.
    pub(crate) fn query_values(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let sql = renumber(sql);
        let st = self.statement(&sql)?;
        if st.params().len() != values.len() {
            return Err(RegistryError::Database(format!(
                "statement takes {} values, {} given",
                st.params().len(),
                values.len()
            )));
        }
        self.flush()?;
        let wrapped: Vec<Bound<'_>> = values.iter().map(Bound).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            wrapped.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        wait(self.slot()?.client.query(&st, &refs)).map_err(|e| {
            // A filter value that does not fit its column (`version_number >= 2.5`) is
            // the caller's mistake, found while binding it.
            match std::error::Error::source(&e) {
                Some(cause)
                    if e.as_db_error().is_none() && e.to_string().contains("serializing") =>
                {
                    RegistryError::InvalidParameter(format!("Invalid filter: {cause}"))
                }
                _ => e.into(),
            }
        })
    }

    /// Start a transaction; it commits with [`Conn::commit`] and rolls back if the
    /// connection is dropped first. `BEGIN` goes out with the first statement.
    pub(crate) fn begin(&mut self) {
        self.pending.push(Pending::Begin);
    }

    /// Check, first thing in the transaction, that `lease` is still held at `token`;
    /// the statements after it fail with [`RegistryError::Fenced`] if it is not. Sent
    /// with the first statement.
    pub(crate) fn fence(&mut self, lease: &str, token: i64) {
        self.pending.push(Pending::Fence(lease.to_string(), token));
    }

    pub(crate) fn commit(&mut self) -> Result<()> {
        self.commit_with(&[]).map(drop)
    }

    /// The last statement of a write: with `COMMIT` when a transaction is open (or about
    /// to be), else on its own (a statement is a transaction of its own). Its rows.
    pub(crate) fn finish(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        if self.in_tx || self.pending.iter().any(|p| matches!(p, Pending::Begin)) {
            Ok(self
                .commit_with(&[(sql, params)])?
                .pop()
                .unwrap_or_default())
        } else {
            self.one(sql, params)
        }
    }

    /// Run `steps` and commit, in one round trip with anything pending; the rows of
    /// each step. A transaction that never sent a statement has nothing to commit.
    pub(crate) fn commit_with(&mut self, steps: &[Step<'_>]) -> Result<Vec<Vec<Row>>> {
        if steps.is_empty() && !self.in_tx {
            self.pending.clear();
            return Ok(Vec::new());
        }
        let mut all = steps.to_vec();
        all.push(("COMMIT", &[]));
        let mut rows = self.pipeline(&all)?;
        rows.pop();
        Ok(rows)
    }
}

/// `?` marks outside string literals and quoted names become `$1`, `$2`, …
pub(crate) fn renumber(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            None => out.push(c),
        }
    }
    out
}

/// A SQLite value bound to a Postgres parameter of whatever type was inferred for it.
#[derive(Debug)]
struct Bound<'a>(&'a Value);

impl ToSql for Bound<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || -> Box<dyn std::error::Error + Sync + Send> {
            format!(
                "a {} value cannot be compared with a {ty} column",
                kind(self.0)
            )
            .into()
        };
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    i.to_string().to_sql(ty, out)
                }
                _ => Err(mismatch()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::INT8 if f.fract() == 0.0 && f.is_finite() => (*f as i64).to_sql(ty, out),
                Type::INT8 => Err(format!("{f} is not a whole number").into()),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    f.to_string().to_sql(ty, out)
                }
                _ => Err(mismatch()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.to_sql(ty, out)
                }
                Type::INT8 => s.parse::<i64>().map_err(|_| mismatch())?.to_sql(ty, out),
                Type::FLOAT8 => s.parse::<f64>().map_err(|_| mismatch())?.to_sql(ty, out),
                _ => Err(mismatch()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(mismatch()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "number",
        Value::Text(_) => "string",
        Value::Blob(_) => "binary",
    }
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn marks_are_renumbered_outside_literals_only() {
        assert_eq!(
            renumber("a = ? AND b LIKE ? ESCAPE '\\' AND c = '?' AND \"d?\" IN (?, ?)"),
            "a = $1 AND b LIKE $2 ESCAPE '\\' AND c = '?' AND \"d?\" IN ($3, $4)"
        );
    }
}
