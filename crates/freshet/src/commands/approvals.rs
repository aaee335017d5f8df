//! `freshet approvals list|approve|reject`: thin calls to `/v1/approvals`.

use super::token::{call, server_client};
use crate::cli::ApprovalsCommand;
use anyhow::Result;
use serde_json::{Value, json};
use std::path::Path;

pub async fn run(config_path: &Path, cmd: ApprovalsCommand) -> Result<()> {
    match cmd {
        ApprovalsCommand::List { state, server } => {
            let (url, token) = server_client(config_path, &server)?;
            let v = call(
                reqwest::Method::GET,
                &format!("{url}/v1/approvals?state={state}"),
                token.as_deref(),
                None,
            )
            .await?;
            let list = v["approvals"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no {state} approval requests");
                return Ok(());
            }
            println!(
                "{:<18} {:<16} {:>7} {:<7} {:<9} {:<24} DECIDED BY",
                "ID", "MODEL", "VERSION", "TIER", "STATE", "REQUESTED BY"
            );
            for r in list {
                let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
                println!(
                    "{:<18} {:<16} {:>7} {:<7} {:<9} {:<24} {}",
                    s("id"),
                    s("model"),
                    r["version"].as_i64().unwrap_or(0),
                    s("tier"),
                    s("state"),
                    s("requested_by"),
                    s("decided_by")
                );
            }
        }
        ApprovalsCommand::Approve { id, note, server } => {
            decide(config_path, &server, &id, note, "approve").await?;
        }
        ApprovalsCommand::Reject { id, note, server } => {
            decide(config_path, &server, &id, note, "reject").await?;
        }
    }
    Ok(())
}

async fn decide(
    config_path: &Path,
    server: &crate::cli::ServerArgs,
    id: &str,
    note: Option<String>,
    verb: &str,
) -> Result<()> {
    let (url, token) = server_client(config_path, server)?;
    let v: Value = call(
        reqwest::Method::POST,
        &format!("{url}/v1/approvals/{id}/{verb}"),
        token.as_deref(),
        Some(json!({ "note": note })),
    )
    .await?;
    println!(
        "{id}: {} — version {} of {}{}",
        v["state"].as_str().unwrap_or("?"),
        v["version"].as_i64().unwrap_or(0),
        v["model"].as_str().unwrap_or("?"),
        v["expires_at"]
            .as_str()
            .map(|e| format!(", valid until {e}"))
            .unwrap_or_default()
    );
    Ok(())
}
