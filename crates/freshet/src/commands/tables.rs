//! `freshet tables` and `freshet table show|history`.

use crate::cli::TableCommand;
use crate::runtime::{load_config, open_lake};
use anyhow::{Context, Result};
use freshet_lake::Table;
use std::path::Path;

async fn open(config_path: &Path, name: &str) -> Result<Table> {
    let (config, base) = load_config(config_path)?;
    let lake = open_lake(&config, &base).await?;
    let url = lake
        .table_url(name)
        .with_context(|| format!("'{name}' is not a table name (try `freshet tables`)"))?;
    Table::open(url)
        .await
        .with_context(|| format!("no table '{name}' (try `freshet tables`)"))
}

pub async fn list(config_path: &Path) -> Result<()> {
    let (config, base) = load_config(config_path)?;
    let lake = open_lake(&config, &base).await?;
    let names = lake.list_tables().await?;
    if names.is_empty() {
        println!("no tables yet under {}", lake.root());
        return Ok(());
    }
    println!(
        "{:<32} {:>8} {:>12} {:>7} {:>10}",
        "TABLE", "VERSION", "ROWS", "FILES", "SIZE"
    );
    for name in names {
        let t = Table::open(lake.table_url(&name)?).await?;
        let i = t.info(None).await?;
        println!(
            "{:<32} {:>8} {:>12} {:>7} {:>10}",
            name,
            i.version,
            i.rows,
            i.files,
            human_bytes(i.bytes)
        );
    }
    sources_lag(&config, &lake).await;
    Ok(())
}

/// How far each connector stream's table is behind its source (asked of the brokers
/// and databases now; one that cannot be reached says so instead).
async fn sources_lag(config: &freshet_core::config::FreshetConfig, lake: &freshet_lake::Lake) {
    let mut header = false;
    for (name, stream) in &config.streams {
        let Ok(url) = lake.table_url(&format!("events/{name}")) else {
            continue;
        };
        let Ok(events) = Table::open(url).await else {
            continue;
        };
        let Some(lag) = freshet_connect::lag::source_lag(&stream.source, &events).await else {
            continue;
        };
        if !header {
            println!("\n{:<20} {:<32} {:>16}", "STREAM", "SOURCE", "BEHIND");
            header = true;
        }
        match lag {
            Ok(places) => {
                for p in places {
                    println!(
                        "{name:<20} {:<32} {:>16}",
                        p.place,
                        format!("{} {}", p.behind, p.unit)
                    );
                }
            }
            Err(e) => println!("{name:<20} {:<32} {:>16}", "unreachable", e),
        }
    }
}

pub async fn table(config_path: &Path, cmd: TableCommand) -> Result<()> {
    match cmd {
        TableCommand::Show {
            name,
            version,
            limit,
        } => {
            let t = open(config_path, &name).await?;
            let i = t.info(version).await?;
            println!(
                "table     {name}\nlocation  {}\nversion   {}\nrows      {}\nfiles     {} ({})",
                i.uri,
                i.version,
                i.rows,
                i.files,
                human_bytes(i.bytes)
            );
            println!("partition {}", i.partition_by.join(", "));
            println!("schema:");
            for (c, ty) in &i.columns {
                println!("  {c:<28} {ty}");
            }
            if limit > 0 {
                println!("first {} row(s):", limit.min(i.rows as usize));
                for row in t.head(version, limit).await? {
                    println!("  {row}");
                }
            }
        }
        TableCommand::History { name, limit } => {
            let t = open(config_path, &name).await?;
            println!(
                "{:>8}  {:<25} {:<10} PARAMETERS",
                "VERSION", "TIME (UTC)", "OPERATION"
            );
            for c in t.history(Some(limit)).await? {
                let time = c
                    .timestamp_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map_or_else(
                        || "-".to_string(),
                        |d| d.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                    );
                println!(
                    "{:>8}  {:<25} {:<10} {}",
                    c.version, time, c.operation, c.parameters
                );
            }
        }
    }
    Ok(())
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
