//! Postgres change data capture: a consistent snapshot of the named tables, then every
//! insert, update and delete through a logical replication slot (pgoutput), exactly
//! once into the stream's table.
//!
//! Changes are read with `pg_logical_slot_peek_binary_changes` over an ordinary
//! connection: reading does not move the slot, and the slot is moved with
//! `pg_replication_slot_advance` only after the Delta commit that holds the changes,
//! whose `txn` (`pgcdc:<slot>`) records the end LSN of the last transaction in it. A
//! restart advances the slot to the table's position and reads on from there, so a
//! crash between the commit and the advance neither loses nor repeats a change. (The
//! walsender protocol would stream without polling, but the Rust Postgres driver on
//! crates.io has no replication connections, and the SQL functions give exactly the
//! read-then-confirm order that exactly-once needs.)
//!
//! The snapshot needs no exported snapshot: it reads every table in one repeatable-read
//! transaction after the slot exists and notes that transaction's snapshot
//! (`pg_current_snapshot()`). A change the slot holds whose transaction that snapshot
//! already sees is in the snapshot's rows and is dropped; every other one is an event.
//! The snapshot's rows and those first changes land in one commit, so a restart in the
//! middle of a snapshot (nothing committed, the slot unmoved) simply takes it again.

pub mod pgoutput;

use crate::ConnectError;
use freshet_core::config_cdc::PostgresCdcSourceConfig;
use freshet_core::{FieldType, Schema, Value};
use freshet_ingest::batch::Ack;
use freshet_ingest::decode::{DecodedRecord, RecordProblem};
use freshet_ingest::health::SourceHealth;
use freshet_ingest::service::{IngestService, StreamRuntime};
use freshet_ingest::sink::Txn;
use futures::TryStreamExt;
use pgoutput::{Assembler, Datum, Op, Transaction, format_lsn};
use prometheus::{IntGaugeVec, Opts, Registry};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};

/// The `txn` app id holding the slot's position in the stream's table.
pub fn slot_app_id(slot: &str) -> String {
    format!("pgcdc:{slot}")
}

/// Microseconds between 1970-01-01 and 2000-01-01 (the Postgres epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Gauges of the CDC sources.
#[derive(Clone)]
pub struct CdcMetrics {
    /// WAL bytes written since the table's position (what the slot still holds).
    pub lag_bytes: IntGaugeVec,
}

impl CdcMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let lag_bytes = IntGaugeVec::new(
            Opts::new(
                "freshet_cdc_lag_bytes",
                "WAL bytes written since the last change committed to the stream's table",
            ),
            &["stream"],
        )?;
        registry.register(Box::new(lag_bytes.clone()))?;
        Ok(Self { lag_bytes })
    }
}

/// Capture the source's tables into the stream until `stop` turns true. Returns an
/// error (the caller restarts it from the table's position) when the database is
/// unreachable or a commit fails; the reason is reported to `health` first.
pub async fn run_postgres_cdc(
    service: Arc<IngestService>,
    stream: String,
    cfg: PostgresCdcSourceConfig,
    health: SourceHealth,
    metrics: CdcMetrics,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    health.connecting(&stream, "connecting to postgres");
    let result = capture(&service, &stream, &cfg, &health, &metrics, stop).await;
    if let Err(e) = &result {
        health.down(&stream, e.to_string());
    }
    result
}

async fn capture(
    service: &IngestService,
    stream: &str,
    cfg: &PostgresCdcSourceConfig,
    health: &SourceHealth,
    metrics: &CdcMetrics,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let srt = service.stream(stream)?.clone();
    let client = connect(cfg).await?;
    preflight(&client, cfg).await?;
    let app_id = slot_app_id(&cfg.slot);
    let events = Events::new(srt.pipeline.input_schema(), cfg);
    let mut position = service
        .sink()
        .txn_version(stream, &app_id)
        .await
        .map_err(|e| ConnectError::Postgres(format!("cannot read the table's position: {e}")))?;
    let mut confirmed = ensure_slot(&client, cfg, position).await?;
    health.up(stream);
    let mut cap = Capture {
        service,
        srt: &srt,
        client: &client,
        cfg,
        events,
        app_id,
        id_prefix: format!("pgcdc-{}", cfg.slot),
        source: Arc::from(format!("postgres:{}", cfg.slot)),
        relations: HashMap::new(),
    };
    if position.is_none() {
        tracing::info!(stream, slot = %cfg.slot, tables = cfg.tables.len(), "postgres snapshot started");
        let (reached, rows) = cap.snapshot(confirmed).await?;
        tracing::info!(stream, slot = %cfg.slot, rows, lsn = %format_lsn(reached), "postgres snapshot committed");
        position = Some(reached as i64);
    }
    let mut position = position.unwrap_or(0);
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        // Move the slot up to what the table holds (after a crash between a commit
        // and its advance, too), so the next read starts after it.
        if (position as u64) > confirmed {
            advance(&client, &cfg.slot, position as u64).await?;
            confirmed = position as u64;
        }
        // One read of the slot, streamed: each chunk of whole transactions is
        // submitted with its own position while the rest is still arriving, so the
        // server's decoding, the pipeline and the commits overlap. The slot moves only
        // once every chunk is committed.
        let started = std::time::Instant::now();
        let client: &Client = cap.client;
        let rows = peek(client, cfg, Some(cfg.max_batch.get())).await?;
        futures::pin_mut!(rows);
        let mut asm = Assembler::default();
        let (mut chunk, mut chunk_changes) = (Vec::new(), 0usize);
        let (mut acks, mut changes, mut submitted) = (Vec::new(), 0usize, position);
        let mut last = None;
        while let Some(row) = rows.try_next().await.map_err(|e| read_error(cfg, &e))? {
            let Some(t) = cap.feed(&mut asm, &row)? else {
                continue;
            };
            if t.end_lsn as i64 <= position {
                continue;
            }
            last = Some(t.end_lsn);
            chunk_changes += t.changes.len();
            chunk.push(t);
            if chunk_changes >= CHUNK_CHANGES {
                changes += chunk_changes;
                acks.push(cap.submit_chunk(&mut chunk, &mut submitted).await?);
                chunk_changes = 0;
            }
        }
        if chunk_changes > 0 {
            changes += chunk_changes;
            acks.push(cap.submit_chunk(&mut chunk, &mut submitted).await?);
        }
        let Some(last) = last else {
            report_lag(client, stream, position, metrics).await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(cfg.poll_ms.get())) => {}
                _ = stop.changed() => {}
            }
            continue;
        };
        let read_ms = started.elapsed().as_millis() as u64;
        for ack in acks {
            committed(ack).await?;
        }
        tracing::debug!(
            stream,
            changes,
            lsn = %format_lsn(last),
            read_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "postgres changes committed"
        );
        // Transactions with nothing of ours need no commit: the slot moves past them.
        position = submitted;
        advance(client, &cfg.slot, last).await?;
        confirmed = last;
    }
}

/// Row changes per submission within one read of the slot.
const CHUNK_CHANGES: usize = 10_000;

/// Start reading the slot: the committed transactions it holds, oldest first, whole
/// transactions up to about `limit` changes, streamed as the server decodes them.
async fn peek(
    client: &Client,
    cfg: &PostgresCdcSourceConfig,
    limit: Option<usize>,
) -> Result<tokio_postgres::RowStream, ConnectError> {
    let limit = limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX));
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&cfg.slot, &limit, &cfg.publication()];
    client
        .query_raw(
            "SELECT (lsn - '0/0'::pg_lsn)::int8, data \
             FROM pg_logical_slot_peek_binary_changes($1, NULL, $2, \
             'proto_version', '1', 'publication_names', $3)",
            params,
        )
        .await
        .map_err(|e| read_error(cfg, &e))
}

fn read_error(cfg: &PostgresCdcSourceConfig, e: &tokio_postgres::Error) -> ConnectError {
    ConnectError::Postgres(format!("cannot read slot {}: {}", cfg.slot, pg_error(e)))
}

/// The server's current WAL position (where the next change will be written).
pub async fn current_wal_lsn(cfg: &PostgresCdcSourceConfig) -> Result<u64, ConnectError> {
    wal_lsn(&connect(cfg).await?).await
}

async fn wal_lsn(client: &Client) -> Result<u64, ConnectError> {
    let row = client
        .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8", &[])
        .await
        .map_err(|e| ConnectError::Postgres(pg_error(&e)))?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

/// The TLS client for the database: the system's roots plus `tls_ca_file`, with the
/// server's certificate checked against the URL's host name (or IP address).
fn tls_connector(
    cfg: &PostgresCdcSourceConfig,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, ConnectError> {
    let bad = |why: String| ConnectError::Postgres(format!("TLS: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(file) = &cfg.tls_ca_file {
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

/// Open a connection with the session settings the text values are read under. Unless
/// the URL says `sslmode=disable`, TLS is offered (`prefer`, the default, falls back to
/// plain TCP only when the server has no TLS; `require` never does), and a server
/// certificate that does not verify is an error, never a silent downgrade.
async fn connect(cfg: &PostgresCdcSourceConfig) -> Result<Client, ConnectError> {
    let pg: tokio_postgres::Config = cfg
        .url
        .parse()
        .map_err(|e: tokio_postgres::Error| ConnectError::Postgres(format!("bad url: {e}")))?;
    let client = if pg.get_ssl_mode() == SslMode::Disable {
        let (client, connection) = pg
            .connect(NoTls)
            .await
            .map_err(|e| ConnectError::Postgres(format!("cannot connect: {}", pg_error(&e))))?;
        spawn_connection(connection);
        client
    } else {
        let (client, connection) = pg
            .connect(tls_connector(cfg)?)
            .await
            .map_err(|e| ConnectError::Postgres(format!("cannot connect: {}", pg_error(&e))))?;
        spawn_connection(connection);
        client
    };
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; \
             SET application_name = 'freshet-cdc'",
        )
        .await
        .map_err(|e| ConnectError::Postgres(pg_error(&e)))?;
    Ok(client)
}

fn spawn_connection<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %pg_error(&e), "postgres connection ended");
        }
    });
}

/// A driver error as one line: the server's message when there is one.
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            // The cause (a refused certificate, a reset connection) is in the chain.
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

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The server can decode logically, and the publication covers the tables (created
/// when missing).
async fn preflight(client: &Client, cfg: &PostgresCdcSourceConfig) -> Result<(), ConnectError> {
    let q = |e: tokio_postgres::Error| ConnectError::Postgres(pg_error(&e));
    let wal_level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(q)?
        .get(0);
    if wal_level != "logical" {
        return Err(ConnectError::Postgres(format!(
            "the server's wal_level is {wal_level}; set wal_level = logical and restart it"
        )));
    }
    let publication = cfg.publication();
    let tables = cfg.qualified_tables();
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(q)?
        .is_some();
    if !exists {
        let list: Vec<String> = tables
            .iter()
            .map(|(s, t)| format!("{}.{}", quote(s), quote(t)))
            .collect();
        client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {}",
                quote(publication),
                list.join(", ")
            ))
            .await
            .map_err(|e| {
                ConnectError::Postgres(format!(
                    "cannot create publication {publication}: {}",
                    pg_error(&e)
                ))
            })?;
        tracing::info!(
            publication,
            tables = tables.len(),
            "postgres publication created"
        );
        return Ok(());
    }
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(q)?;
    let have: HashSet<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let missing: Vec<String> = tables
        .iter()
        .filter(|t| !have.contains(*t))
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    if !missing.is_empty() {
        return Err(ConnectError::Postgres(format!(
            "publication {publication} does not include {}; ALTER PUBLICATION {publication} ADD TABLE ...",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Make sure the slot exists; returns its confirmed position. A slot that is gone while
/// the table holds a position cannot be recreated without losing changes: that is an
/// error for the operator.
async fn ensure_slot(
    client: &Client,
    cfg: &PostgresCdcSourceConfig,
    position: Option<i64>,
) -> Result<u64, ConnectError> {
    let q = |e: tokio_postgres::Error| ConnectError::Postgres(pg_error(&e));
    let row = client
        .query_opt(
            "SELECT plugin::text, (confirmed_flush_lsn - '0/0'::pg_lsn)::int8 \
             FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
            &[&cfg.slot],
        )
        .await
        .map_err(q)?;
    match (row, position) {
        (Some(row), _) => {
            let plugin: Option<String> = row.get(0);
            if plugin.as_deref() != Some("pgoutput") {
                return Err(ConnectError::Postgres(format!(
                    "slot {} uses plugin {}, not pgoutput",
                    cfg.slot,
                    plugin.unwrap_or_default()
                )));
            }
            let confirmed: Option<i64> = row.get(1);
            Ok(confirmed.unwrap_or(0) as u64)
        }
        (None, Some(p)) => Err(ConnectError::Postgres(format!(
            "slot {} is gone but the table holds changes up to {}: the changes since cannot \
             be recovered from the slot; capture into a new stream to start over",
            cfg.slot,
            format_lsn(p as u64)
        ))),
        (None, None) => {
            let row = client
                .query_one(
                    "SELECT (lsn - '0/0'::pg_lsn)::int8 \
                     FROM pg_create_logical_replication_slot($1, 'pgoutput')",
                    &[&cfg.slot],
                )
                .await
                .map_err(|e| {
                    ConnectError::Postgres(format!(
                        "cannot create slot {}: {}",
                        cfg.slot,
                        pg_error(&e)
                    ))
                })?;
            let lsn: i64 = row.get(0);
            tracing::info!(slot = %cfg.slot, lsn = %format_lsn(lsn as u64), "postgres replication slot created");
            Ok(lsn as u64)
        }
    }
}

async fn advance(client: &Client, slot: &str, lsn: u64) -> Result<(), ConnectError> {
    client
        .execute(
            "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn)",
            &[&slot, &format_lsn(lsn)],
        )
        .await
        .map_err(|e| {
            ConnectError::Postgres(format!("cannot advance slot {slot}: {}", pg_error(&e)))
        })?;
    Ok(())
}

async fn report_lag(client: &Client, stream: &str, position: i64, metrics: &CdcMetrics) {
    if let Ok(now) = wal_lsn(client).await {
        metrics
            .lag_bytes
            .with_label_values(&[stream])
            .set((now as i64 - position).max(0));
    }
}

/// The transactions a snapshot already sees (`xmin:xmax:xip,...` of
/// `pg_current_snapshot()`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PgSnapshot {
    xmin: u64,
    xmax: u64,
    in_progress: HashSet<u64>,
}

impl PgSnapshot {
    fn parse(text: &str) -> Result<Self, ConnectError> {
        let bad = || ConnectError::Postgres(format!("unexpected snapshot {text}"));
        let mut parts = text.splitn(3, ':');
        let xmin = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let xmax = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        let in_progress = parts
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            xmin,
            xmax,
            in_progress,
        })
    }

    /// Whether the snapshot sees the (committed) transaction `xid`, a 32-bit id from
    /// the stream, placed in the epoch of the snapshot's `xmax`.
    fn sees(&self, xid: u32) -> bool {
        let epoch = self.xmax & !0xFFFF_FFFF;
        let mut full = epoch | u64::from(xid);
        if full > self.xmax && full >= 1 << 32 {
            full -= 1 << 32;
        }
        full < self.xmin || (full < self.xmax && !self.in_progress.contains(&full))
    }
}

/// Where each column of a table lands in the stream's schema.
struct Shape {
    table: String,
    slots: Vec<Option<(usize, FieldType)>>,
    unknown: Option<String>,
}

/// Builds pipeline records from rows and changes.
struct Events {
    schema: Schema,
    op: Option<usize>,
    lsn: Option<usize>,
    table: Option<usize>,
    commit_time: Option<usize>,
}

impl Events {
    fn new(schema: &Schema, cfg: &PostgresCdcSourceConfig) -> Self {
        let slot = |f: &Option<String>| f.as_deref().and_then(|n| schema.index_of(n));
        Self {
            schema: schema.clone(),
            op: slot(&cfg.metadata.op),
            lsn: slot(&cfg.metadata.lsn),
            table: slot(&cfg.metadata.table),
            commit_time: slot(&cfg.metadata.commit_time),
        }
    }

    fn shape<'a>(&self, table: String, columns: impl Iterator<Item = &'a str>) -> Shape {
        let mut unknown = None;
        let slots = columns
            .map(|c| {
                let slot = self
                    .schema
                    .index_of(c)
                    .and_then(|i| self.schema.fields().get(i).map(|f| (i, f.ty)));
                if slot.is_none() && unknown.is_none() {
                    unknown = Some(c.to_string());
                }
                slot
            })
            .collect();
        Shape {
            table,
            slots,
            unknown,
        }
    }

    fn record<'v>(
        &self,
        shape: &Shape,
        values: impl Iterator<Item = Option<&'v str>>,
        op: Op,
        lsn: u64,
        commit_time: Option<i64>,
    ) -> DecodedRecord {
        let mut row = vec![Value::Null; self.schema.len()];
        for (v, slot) in values.zip(&shape.slots) {
            if let (Some(v), Some((i, ty))) = (v, slot) {
                row[*i] = text_value(*ty, v);
            }
        }
        // Metadata columns are built only when configured (no per-row string otherwise).
        let mut put = |slot: Option<usize>, v: &dyn Fn() -> Value| {
            if let Some(i) = slot {
                row[i] = v();
            }
        };
        put(self.op, &|| Value::Str(op.as_str().into()));
        put(self.lsn, &|| Value::Int(lsn as i64));
        put(self.table, &|| Value::Str(shape.table.clone()));
        put(self.commit_time, &|| {
            commit_time.map_or(Value::Null, |t| Value::Timestamp(t + PG_EPOCH_MICROS))
        });
        let problem = match (&shape.unknown, self.schema.unknown_fields) {
            (Some(name), freshet_core::schema::UnknownFields::Reject) => {
                Some(RecordProblem::UnknownField(name.clone()))
            }
            _ => None,
        };
        DecodedRecord {
            values: row,
            problem,
        }
    }
}

/// A column's text into the value its declared field expects. Text that does not parse
/// stays text, so the pipeline's validation names the field and the problem and the
/// record goes to the dead-letter table.
fn text_value(ty: FieldType, s: &str) -> Value {
    let parsed = match ty {
        FieldType::String => None,
        FieldType::Int => s.parse::<i64>().ok().map(Value::Int),
        FieldType::Float => s.parse::<f64>().ok().map(Value::Float),
        FieldType::Bool => match s {
            "t" | "true" => Some(Value::Bool(true)),
            "f" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        FieldType::Timestamp => chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%#z")
            .map(|t| t.timestamp_micros())
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                    .map(|t| t.and_utc().timestamp_micros())
            })
            .ok()
            .map(Value::Timestamp),
        FieldType::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(|d| Value::Date(freshet_core::value::days_from_date(d))),
    };
    parsed.unwrap_or_else(|| Value::Str(s.to_string()))
}

/// Records on their way to a submission, with each one's position and order.
#[derive(Default)]
struct Records {
    records: Vec<DecodedRecord>,
    positions: Vec<i64>,
    orders: Vec<i64>,
}

/// Wait for a submission's commit.
async fn committed(ack: Ack) -> Result<(), ConnectError> {
    ack.await
        .map_err(|_| freshet_ingest::IngestError::ShuttingDown)??;
    Ok(())
}

/// One capture session's state.
struct Capture<'a> {
    service: &'a IngestService,
    srt: &'a StreamRuntime,
    client: &'a Client,
    cfg: &'a PostgresCdcSourceConfig,
    events: Events,
    app_id: String,
    id_prefix: String,
    source: Arc<str>,
    /// Shapes of the relations seen, by relation id.
    relations: HashMap<u32, Shape>,
}

impl Capture<'_> {
    /// Every committed transaction the slot holds, oldest first.
    async fn read_all(&mut self) -> Result<Vec<Transaction>, ConnectError> {
        let client: &Client = self.client;
        let rows = peek(client, self.cfg, None).await?;
        futures::pin_mut!(rows);
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| read_error(self.cfg, &e))?
        {
            if let Some(t) = self.feed(&mut asm, &row)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Take one row of the slot; returns a transaction once its commit is read. A
    /// relation's shape is learnt as soon as it is described, so the changes after it
    /// are read with it.
    fn feed(
        &mut self,
        asm: &mut Assembler,
        row: &tokio_postgres::Row,
    ) -> Result<Option<Transaction>, ConnectError> {
        let lsn: i64 = row.get(0);
        let data: &[u8] = row.get(1);
        let protocol = |e: pgoutput::ProtocolError| {
            ConnectError::Postgres(format!("slot {}: {e}", self.cfg.slot))
        };
        let msg = pgoutput::parse(data).map_err(protocol)?;
        if let pgoutput::Message::Relation(rel) = &msg {
            let shape = self.events.shape(
                format!("{}.{}", rel.schema, rel.name),
                rel.columns.iter().map(|c| c.name.as_str()),
            );
            self.relations.insert(rel.id, shape);
        }
        let t = asm.push(lsn as u64, msg).map_err(protocol)?;
        if let Some(t) = &t
            && t.truncated > 0
        {
            tracing::warn!(slot = %self.cfg.slot, tables = t.truncated, "postgres truncate not captured: truncate emits no row events");
        }
        Ok(t)
    }

    /// Submit the changes of `chunk` (emptied) with the position of its last
    /// transaction, following on from `submitted`, which moves to that position.
    async fn submit_chunk(
        &self,
        chunk: &mut Vec<Transaction>,
        submitted: &mut i64,
    ) -> Result<Ack, ConnectError> {
        let reached = chunk.last().map_or(*submitted as u64, |t| t.end_lsn);
        let records = self.change_events(chunk, None);
        chunk.clear();
        let ack = self.submit(records, reached, *submitted).await?;
        *submitted = reached as i64;
        Ok(ack)
    }

    /// Records for the changes of `txs` (skipping transactions `seen` says the snapshot
    /// holds). Each record's position is its change's LSN, plus its rank among the
    /// rows of one multi-insert (which share an LSN; a WAL record is longer than the
    /// rows it holds, so the positions stay unique). Its order is its transaction's
    /// end LSN, the unit of the slot position.
    fn change_events(&self, txs: &[Transaction], seen: Option<&PgSnapshot>) -> Records {
        let mut out = Records::default();
        for t in txs {
            if seen.is_some_and(|s| s.sees(t.xid)) {
                continue;
            }
            let mut prev = (u64::MAX, 0i64);
            for c in &t.changes {
                let Some(shape) = self.relations.get(&c.relation) else {
                    continue;
                };
                let rank = if c.lsn == prev.0 { prev.1 + 1 } else { 0 };
                prev = (c.lsn, rank);
                let values = c.values.iter().map(|d| match d {
                    Datum::Text(s) => Some(s.as_str()),
                    Datum::Null | Datum::Unchanged => None,
                });
                out.records.push(self.events.record(
                    shape,
                    values,
                    c.op,
                    t.commit_lsn,
                    Some(t.commit_time),
                ));
                out.positions.push(c.lsn as i64 + rank);
                out.orders.push(t.end_lsn as i64);
            }
        }
        out
    }

    /// Submit records (decode, validate, transform) with the slot position `reached`,
    /// following on from `after`; the [`Ack`] resolves once they are committed.
    async fn submit(&self, r: Records, reached: u64, after: i64) -> Result<Ack, ConnectError> {
        let txn = Txn {
            app_id: self.app_id.clone(),
            version: reached as i64,
            after: Some(after),
        };
        let (_, ack) = self
            .service
            .submit_ordered(
                self.srt,
                r.records,
                r.positions,
                Some(r.orders),
                self.source.clone(),
                &self.id_prefix,
                Some(txn),
                false,
            )
            .await?;
        Ok(ack)
    }

    /// Read every table in one repeatable-read transaction, then the changes the slot
    /// already holds that the snapshot does not see, and commit them all at once with
    /// the slot's position (`confirmed`, where the slot stands, when it holds no change).
    /// Returns that position and the number of snapshot rows.
    async fn snapshot(&mut self, confirmed: u64) -> Result<(u64, usize), ConnectError> {
        let q = |e: tokio_postgres::Error| ConnectError::Postgres(pg_error(&e));
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(q)?;
        let result = self.snapshot_rows().await;
        // Read-only: ending it either way changes nothing.
        let _ = self.client.batch_execute("ROLLBACK").await;
        let (snap, records, xmins) = result?;
        let rows = records.len();
        let txs = self.read_all().await?;
        // Snapshot rows rank below every change (negative positions). A row's order is
        // where its version entered the stream: the end of the transaction that wrote
        // it (its `xmin`) when the slot holds that transaction, else the slot's
        // position (written before it). After a crash between the dead-letter and the
        // event commit, the retaken snapshot's dead letters at or below what the
        // dead-letter table holds are those the earlier attempt wrote (as snapshot
        // rows or as changes), and only newer row versions are dead-lettered again.
        // (A row written inside a subtransaction carries the subtransaction's id,
        // which the slot does not report; it counts as written before the slot.)
        let written: HashMap<u32, u64> = txs.iter().map(|t| (t.xid, t.end_lsn)).collect();
        let mut all = Records {
            positions: (1..=rows as i64).map(|i| -i).collect(),
            orders: xmins
                .iter()
                .map(|x| *written.get(x).unwrap_or(&confirmed) as i64)
                .collect(),
            records,
        };
        let changes = self.change_events(&txs, Some(&snap));
        all.records.extend(changes.records);
        all.positions.extend(changes.positions);
        all.orders.extend(changes.orders);
        let reached = txs.last().map_or(confirmed, |t| t.end_lsn);
        committed(self.submit(all, reached, -1).await?).await?;
        Ok((reached, rows))
    }

    /// The snapshot, its rows and each row's `xmin` (the transaction that wrote it).
    async fn snapshot_rows(
        &self,
    ) -> Result<(PgSnapshot, Vec<DecodedRecord>, Vec<u32>), ConnectError> {
        let q = |e: tokio_postgres::Error| ConnectError::Postgres(pg_error(&e));
        let text: String = self
            .client
            .query_one("SELECT pg_current_snapshot()::text", &[])
            .await
            .map_err(q)?
            .get(0);
        let snap = PgSnapshot::parse(&text)?;
        let (mut records, mut xmins) = (Vec::new(), Vec::new());
        for (schema, table) in self.cfg.qualified_tables() {
            let name = format!("{}.{}", quote(&schema), quote(&table));
            let probe = self
                .client
                .prepare(&format!("SELECT * FROM {name}"))
                .await
                .map_err(|e| {
                    ConnectError::Postgres(format!(
                        "cannot read {schema}.{table}: {}",
                        pg_error(&e)
                    ))
                })?;
            let columns: Vec<String> = probe
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            let mut select: Vec<String> = columns
                .iter()
                .map(|c| format!("{}::text", quote(c)))
                .collect();
            select.push("xmin::text".into());
            let shape = self.events.shape(
                format!("{schema}.{table}"),
                columns.iter().map(String::as_str),
            );
            let stream = self
                .client
                .query_raw(
                    &format!("SELECT {} FROM {name}", select.join(", ")),
                    std::iter::empty::<&str>(),
                )
                .await
                .map_err(q)?;
            futures::pin_mut!(stream);
            while let Some(row) = stream.try_next().await.map_err(q)? {
                let values = (0..columns.len()).map(|i| row.get::<_, Option<&str>>(i));
                records.push(self.events.record(&shape, values, Op::Snapshot, 0, None));
                let xmin = row.get::<_, Option<&str>>(columns.len());
                xmins.push(xmin.and_then(|x| x.parse().ok()).unwrap_or(0));
            }
        }
        Ok((snap, records, xmins))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_what_committed_before_it() {
        let s = PgSnapshot::parse("100:110:103,107").unwrap();
        assert!(s.sees(99));
        assert!(s.sees(104));
        assert!(!s.sees(103), "in progress when the snapshot was taken");
        assert!(!s.sees(110), "started after it");
        assert!(!s.sees(500));
        // Across an epoch: xmax in epoch 1, a stream xid from the end of epoch 0.
        let (xmin, xmax) = ((1u64 << 32) - 5, (1u64 << 32) + 3);
        let s = PgSnapshot::parse(&format!("{xmin}:{xmax}:{}", (1u64 << 32) - 2)).unwrap();
        assert!(s.sees(u32::MAX - 10));
        assert!(s.sees(u32::MAX - 2));
        assert!(
            !s.sees(u32::MAX - 1),
            "in progress, from the previous epoch"
        );
        assert!(s.sees(1) && !s.sees(3));
        assert!(PgSnapshot::parse("x:1:").is_err());
    }

    #[test]
    fn text_values_follow_the_declared_type() {
        assert_eq!(text_value(FieldType::Int, "42"), Value::Int(42));
        assert_eq!(text_value(FieldType::Float, "2.5"), Value::Float(2.5));
        assert_eq!(text_value(FieldType::Bool, "t"), Value::Bool(true));
        assert_eq!(text_value(FieldType::String, "t"), Value::Str("t".into()));
        assert_eq!(
            text_value(FieldType::Timestamp, "2026-12-06 20:14:16.5+00"),
            Value::Timestamp(1_796_588_056_500_000)
        );
        assert_eq!(
            text_value(FieldType::Timestamp, "2026-12-06 20:14:16"),
            Value::Timestamp(1_796_588_056_000_000)
        );
        assert_eq!(text_value(FieldType::Date, "1970-01-02"), Value::Date(1));
        // Unparseable text stays text, for validation to reject with the field's name.
        assert_eq!(
            text_value(FieldType::Int, "12abc"),
            Value::Str("12abc".into())
        );
    }
}
