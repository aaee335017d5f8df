//! `freshet audit verify|export`: read the chain's files directly (no server needed).

use crate::cli::AuditCommand;
use crate::runtime::load_config;
use anyhow::{Context, Result};
use freshet_govern::audit::{VerifyingKeyOrPath, export_jsonl, verify};
use std::path::Path;

pub fn run(config_path: &Path, cmd: AuditCommand) -> Result<()> {
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
        AuditCommand::Export { since, out } => {
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
