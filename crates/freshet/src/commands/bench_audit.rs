//! `freshet bench audit`: how fast the audit chain takes records and how long
//! `freshet audit verify` needs for it.
//!
//! Writes a config whose `audit` section points into a temporary folder, appends
//! `--records` gate-shaped records through the real writer (group commit, one fsync per
//! batch) from `--appenders` concurrent tasks that each wait for their record to be on
//! disk, closes the chain (a final signed checkpoint), then runs `freshet audit verify`
//! on it as a child process and times it from start to exit.

use crate::cli::BenchAuditArgs;
use anyhow::{Context, Result};
use freshet_govern::audit::{AuditLog, workload};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct AuditBenchReport {
    pub records: u64,
    pub appenders: u64,
    pub append_seconds: f64,
    pub append_records_per_sec: f64,
    pub append_p50_ms: f64,
    pub append_p99_ms: f64,
    pub chain_mb: f64,
    /// `freshet audit verify`, start to exit.
    pub verify_seconds: f64,
    pub verify_records_per_sec: f64,
    pub verified_records: u64,
    pub verified_checkpoints: u64,
}

pub async fn run(a: BenchAuditArgs) -> Result<()> {
    let tmp;
    let dir = match &a.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let config_file = dir.join("freshet.yaml");
    std::fs::write(
        &config_file,
        "audit: { dir: audit, checkpoint_dir: audit-checkpoints, key_file: audit.key }\n",
    )?;
    let (config, base) = crate::runtime::load_config(&config_file)?;
    let cfg = crate::governance::audit_config(&config, &base);
    eprintln!(
        "bench audit: {} records from {} concurrent appenders into {}",
        a.records,
        a.appenders,
        cfg.dir.display()
    );

    let log = AuditLog::open(cfg.clone()).context("cannot open the audit chain")?;
    let started = Instant::now();
    let mut lat = workload::append_concurrently(&log, a.appenders, a.records).await?;
    let append_seconds = started.elapsed().as_secs_f64();
    tokio::task::spawn_blocking(move || log.close()).await??;
    let chain_bytes: u64 = std::fs::read_dir(&cfg.dir)?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    lat.sort_unstable();
    let lat: Vec<f64> = lat.iter().map(|d| d.as_secs_f64() * 1e3).collect();

    eprintln!(
        "bench audit: wrote {:.0} MB in {append_seconds:.1} s; timing `freshet audit verify`",
        chain_bytes as f64 / 1e6
    );
    let started = Instant::now();
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(&config_file)
        .args(["audit", "verify", "--json"])
        .output()
        .await
        .context("cannot run freshet audit verify")?;
    let verify_seconds = started.elapsed().as_secs_f64();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if !out.status.success() {
        anyhow::bail!(
            "freshet audit verify failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let verified = v["records_checked"].as_u64().unwrap_or(0);
    let report = AuditBenchReport {
        records: a.records,
        appenders: a.appenders,
        append_seconds,
        append_records_per_sec: a.records as f64 / append_seconds,
        append_p50_ms: super::percentile(&lat, 0.50),
        append_p99_ms: super::percentile(&lat, 0.99),
        chain_mb: chain_bytes as f64 / 1e6,
        verify_seconds,
        verify_records_per_sec: verified as f64 / verify_seconds,
        verified_records: verified,
        verified_checkpoints: v["checkpoints_checked"].as_u64().unwrap_or(0),
    };
    println!(
        "append : {} records, {} appenders, {:.1} s = {:.0} records/s; each append p50 {:.2} ms, p99 {:.2} ms ({:.0} MB)",
        report.records,
        report.appenders,
        report.append_seconds,
        report.append_records_per_sec,
        report.append_p50_ms,
        report.append_p99_ms,
        report.chain_mb
    );
    println!(
        "verify : `freshet audit verify` checked {} records and {} signed checkpoints in {:.2} s ({:.0} records/s): OK",
        report.verified_records,
        report.verified_checkpoints,
        report.verify_seconds,
        report.verify_records_per_sec
    );
    if verified != a.records {
        anyhow::bail!(
            "verify checked {verified} records, {} were written",
            a.records
        );
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
