//! `freshet inventory`: the model inventory from the configuration and the governance
//! store (updates made over the API), with overdue reviews flagged.

use crate::cli::InventoryArgs;
use crate::runtime::load_config;
use anyhow::{Context, Result};
use freshet_govern::inventory::{InventoryStore, to_csv};
use std::path::Path;

pub fn run(config_path: &Path, args: &InventoryArgs) -> Result<()> {
    let (config, base) = load_config(config_path)?;
    let path = crate::governance::token_store_path(&config, &base);
    let store = InventoryStore::open(&path)
        .with_context(|| format!("cannot open the inventory at {}", path.display()))?;
    let facts: std::collections::BTreeMap<String, _> = config
        .models
        .iter()
        .map(|(n, m)| (n.clone(), m.governance.clone()))
        .collect();
    let mut entries = store.entries(&facts, chrono::Utc::now().date_naive())?;
    if args.overdue {
        entries.retain(|e| e.overdue);
    }
    match args.format.as_str() {
        "csv" => print!("{}", to_csv(&entries)),
        "json" => println!("{}", serde_json::to_string_pretty(&entries)?),
        _ => {
            println!(
                "{:<20} {:<18} {:<7} {:<11} {:<11} {:<8} INTENDED USE",
                "MODEL", "OWNER", "TIER", "LAST REVIEW", "NEXT DUE", "STATUS"
            );
            for e in &entries {
                let date =
                    |d: Option<chrono::NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
                println!(
                    "{:<20} {:<18} {:<7} {:<11} {:<11} {:<8} {}",
                    e.model,
                    e.owner.as_deref().unwrap_or("-"),
                    e.risk_tier,
                    date(e.last_review),
                    date(e.next_review_due),
                    if e.overdue { "OVERDUE" } else { "ok" },
                    e.intended_use.as_deref().unwrap_or("-")
                );
            }
        }
    }
    if args.overdue && !entries.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
