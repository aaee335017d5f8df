//! `freshet audit verify|export`: read the chain's files directly (no server needed).

use crate::cli::AuditCommand;
use crate::runtime::load_config;
use anyhow::{Context, Result};
use freshet_govern::audit::{VerifyingKeyOrPath, export_jsonl, verify};
use std::path::Path;

pub async fn run(config_path: &Path, cmd: AuditCommand) -> Result<()> {
    let (config, base) = load_config(config_path)?;
    let cfg = crate::governance::audit_config(&config, &base);
    match cmd {
        AuditCommand::Verify { public_key, json } => {
            let key_file = public_key.unwrap_or_else(|| cfg.public_key_file());
            if !key_file.exists() {
                anyhow::bail!(
                    "no public key at {} (it is written when the server first opens the audit chain); pass --public-key",
                    key_file.display()
                );
            }
            let started = std::time::Instant::now();
            let report = verify(
                &cfg.dir,
                &cfg.checkpoint_dir,
                &VerifyingKeyOrPath::PublicKeyFile(key_file.clone()),
            )
            .with_context(|| format!("cannot verify the audit chain in {}", cfg.dir.display()))?;
            if json {
                println!("{}", crate::server::report_json(&report));
            } else {
                println!(
                    "audit chain {}: {} records (last seq {}), {} segment(s), {} signed checkpoint(s) (last at seq {}), {:.2} s",
                    cfg.dir.display(),
                    report.records_checked,
                    report.last_seq.map_or("-".into(), |s| s.to_string()),
                    report.segments,
                    report.checkpoints_checked,
                    report
                        .last_checkpoint_seq
                        .map_or("-".into(), |s| s.to_string()),
                    started.elapsed().as_secs_f64()
                );
                if report.torn_tail {
                    println!(
                        "note: the last line was cut by a crash before it was acknowledged (not tampering)"
                    );
                }
                match &report.first_bad {
                    None => println!("verified: OK"),
                    Some(b) => println!("FAILED: first bad record at {b}"),
                }
            }
            if !report.is_ok() {
                std::process::exit(1);
            }
        }
        AuditCommand::Export {
            delta: Some(target),
            ..
        } => {
            let (n, version) = export_delta(&cfg.dir, &target, &base).await?;
            eprintln!("appended {n} records to {target} (table version {version})");
        }
        AuditCommand::Export { since, out, .. } => {
            let since = since
                .as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|e| anyhow::anyhow!("--since: not an RFC 3339 time ({e})"))
                })
                .transpose()?;
            let n = match out {
                Some(p) => {
                    let mut f = std::io::BufWriter::new(
                        std::fs::File::create(&p)
                            .with_context(|| format!("cannot write {}", p.display()))?,
                    );
                    let n = export_jsonl(&cfg.dir, since, &mut f)?;
                    use std::io::Write;
                    f.flush()?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut lock = std::io::BufWriter::new(stdout.lock());
                    let n = export_jsonl(&cfg.dir, since, &mut lock)?;
                    use std::io::Write;
                    lock.flush()?;
                    n
                }
            };
            eprintln!("exported {n} records");
        }
    }
    Ok(())
}

/// The audit table's columns.
fn audit_schema() -> freshet_core::Schema {
    use freshet_core::{Field, FieldType};
    freshet_core::Schema::new(vec![
        Field::new("seq", FieldType::Int),
        Field::new("time", FieldType::Timestamp),
        Field::new("principal", FieldType::String),
        Field::new("action", FieldType::String),
        Field::new("resource", FieldType::String),
        Field::new("request_id", FieldType::String),
        Field::new("outcome", FieldType::String),
        Field::new("detail", FieldType::String),
        Field::new("prev_hash", FieldType::String),
        Field::new("hash", FieldType::String),
    ])
}

/// The Delta transaction id under which exports record the last sequence number they
/// appended: a rerun (or a crash between write and commit) appends nothing twice.
const DELTA_APP_ID: &str = "freshet-audit-export";
const DELTA_BATCH: usize = 50_000;

/// Appends the chain's records after the table's last exported sequence number.
async fn export_delta(records: &Path, target: &str, base: &Path) -> Result<(u64, i64)> {
    use freshet_core::Value;
    let url = if target.contains("://") {
        url::Url::parse(target).with_context(|| format!("--delta: '{target}' is not a URL"))?
    } else {
        let p = Path::new(target);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        };
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        let p = p.canonicalize()?;
        url::Url::from_directory_path(&p)
            .map_err(|_| anyhow::anyhow!("--delta: cannot use {} as a table", p.display()))?
    };
    let schema = audit_schema();
    let table =
        freshet_lake::Table::open_or_create(url, &schema, &freshet_lake::TableOptions::default())
            .await
            .with_context(|| format!("cannot open the Delta table {target}"))?;
    let after = table.txn_version(DELTA_APP_ID).await?.unwrap_or(0);
    let mut written = 0u64;
    let mut version = table.version().await;
    let mut iter = freshet_govern::audit::read_records(records)?;
    loop {
        let mut b = freshet_lake::RowBatchBuilder::new(&schema, DELTA_BATCH);
        let mut last = None;
        for r in iter.by_ref() {
            let r = r?;
            if (r.seq as i64) <= after {
                continue;
            }
            let detail = serde_json::to_string(&r.detail)?;
            let row = [
                Value::Int(r.seq as i64),
                Value::Timestamp(r.time.timestamp_micros()),
                Value::Str(r.principal),
                Value::Str(r.action),
                Value::Str(r.resource),
                Value::Str(r.request_id),
                Value::Str(r.outcome.as_str().to_string()),
                Value::Str(detail),
                Value::Str(r.prev_hash),
                Value::Str(r.hash),
            ];
            for (i, v) in row.iter().enumerate() {
                b.push(i, v);
            }
            b.end_row();
            last = Some(r.seq as i64);
            if b.rows() >= DELTA_BATCH {
                break;
            }
        }
        let Some(last) = last else { break };
        let n = b.rows() as u64;
        version = table
            .append(
                b.finish()?,
                &[freshet_lake::Txn {
                    app_id: DELTA_APP_ID.into(),
                    version: last,
                }],
            )
            .await?;
        written += n;
    }
    Ok((written, version))
}
