//! `freshet lineage version|request|table|champion`: thin calls to `/v1/lineage`,
//! printed for people (or as the API's JSON with `--format json`).

use super::token::{call, server_client};
use crate::cli::{LineageCommand, LineageOut};
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

/// A path segment, percent-encoded.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn run(config_path: &Path, cmd: LineageCommand) -> Result<()> {
    let (path, out, kind) = match &cmd {
        LineageCommand::Version {
            model,
            version,
            out,
        } => (
            format!("/v1/lineage/models/{}/versions/{version}", seg(model)),
            out,
            "version",
        ),
        LineageCommand::Request { id, model, out } => (
            match model {
                Some(m) => format!("/v1/lineage/models/{}/requests/{}", seg(m), seg(id)),
                None => format!("/v1/lineage/requests/{}", seg(id)),
            },
            out,
            "request",
        ),
        LineageCommand::Table {
            stream,
            version,
            out,
        } => (
            format!("/v1/lineage/streams/{}/versions/{version}", seg(stream)),
            out,
            "table",
        ),
        LineageCommand::Champion {
            model,
            at,
            alias,
            out,
        } => {
            let mut q = format!("alias={}", seg(alias));
            if let Some(at) = at {
                q.push_str(&format!("&at={}", seg(at)));
            }
            (
                format!("/v1/lineage/models/{}/champion?{q}", seg(model)),
                out,
                "champion",
            )
        }
    };
    let v = get(config_path, out, &path).await?;
    if out.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    match kind {
        "version" => print_version(&v, ""),
        "request" => {
            println!(
                "request {} to {} at {}",
                s(&v["request_id"]),
                s(&v["model"]),
                time(&v["ts_ms"])
            );
            for a in v["answers"].as_array().into_iter().flatten() {
                println!(
                    "  scored by v{} as {} ({} rows)",
                    a["version"],
                    s(&a["variant"]),
                    a["rows"]
                );
            }
            print_version(&v["version"], "  ");
        }
        "table" => {
            println!(
                "{} version {} (committed {}, {} rows added)",
                s(&v["table"]),
                v["table_version"],
                time(&v["committed_ms"]),
                v["rows_added"]
            );
            let versions = v["versions"].as_array().cloned().unwrap_or_default();
            if versions.is_empty() {
                println!("  no model version has learnt from it yet");
            }
            for mv in &versions {
                print_version(mv, "  ");
            }
        }
        _ => {
            let p = &v["period"];
            if p.is_null() {
                println!(
                    "{} named no version of {} at {} (the alias history starts {})",
                    s(&v["alias"]),
                    s(&v["model"]),
                    time(&v["at_ms"]),
                    time(&v["history_from_ms"])
                );
            } else {
                println!(
                    "{} of {} at {}: v{} ({})",
                    s(&v["alias"]),
                    s(&v["model"]),
                    time(&v["at_ms"]),
                    p["version"],
                    span(p)
                );
            }
        }
    }
    Ok(())
}

async fn get(config_path: &Path, out: &LineageOut, path: &str) -> Result<Value> {
    let (url, token) = server_client(config_path, &out.server)?;
    call(
        reqwest::Method::GET,
        &format!("{url}{path}"),
        token.as_deref(),
        None,
    )
    .await
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

/// A Unix-ms field as an RFC 3339 time ("unknown" when absent).
fn time(v: &Value) -> String {
    v.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "unknown".into())
}

/// A period for people: `from T1 to T2, approved by X` (`to now` while it lasts).
fn span(p: &Value) -> String {
    format!(
        "from {} to {}{}",
        time(&p["from_ms"]),
        if p["to_ms"].is_null() {
            "now".to_string()
        } else {
            time(&p["to_ms"])
        },
        p["approved_by"]
            .as_str()
            .map(|a| format!(", approved by {a}"))
            .unwrap_or_default()
    )
}

fn print_version(v: &Value, pad: &str) {
    println!(
        "{pad}{} v{} — registered {} by {}{}",
        s(&v["model"]),
        v["version"],
        time(&v["created_ms"]),
        s(&v["created_by"]),
        v["trigger"]
            .as_str()
            .map(|t| format!(" (trigger: {t})"))
            .unwrap_or_default()
    );
    println!(
        "{pad}  run {} in experiment {}; gates: {}",
        s(&v["run_id"]),
        s(&v["experiment_id"]),
        s(&v["gates"])
    );
    let t = &v["trained_on"];
    if t.is_null() {
        println!("{pad}  trained outside Freshet (no table version recorded)");
    } else {
        println!(
            "{pad}  learnt from {}@v{}: the newest {} of its {} rows ({})",
            s(&t["table"]),
            t["table_version"],
            t["window_rows"],
            t["table_rows"],
            s(&t["table_uri"])
        );
        if let Some(sources) = t["sources"].as_object() {
            for (src, n) in sources {
                println!("{pad}    {n:>9} rows from {src}");
            }
        }
    }
    let served = v["served"].as_array().cloned().unwrap_or_default();
    if served.is_empty() {
        println!("{pad}  never named by an alias");
    }
    for p in &served {
        println!("{pad}  {} {}", s(&p["alias"]), span(p));
    }
    let p = &v["predictions"];
    println!(
        "{pad}  {} predictions in {} ({} to {})",
        p["rows"],
        s(&p["table"]),
        time(&p["first_ms"]),
        time(&p["last_ms"])
    );
}
