//! `freshet token create|list|revoke`: thin calls to the running server's `/v1/tokens`.

use crate::cli::{ServerArgs, TokenCommand};
use crate::runtime::load_config;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::Path;

/// The server's URL and a token from the flags, the environment or the admin file.
pub fn server_client(config_path: &Path, args: &ServerArgs) -> Result<(String, Option<String>)> {
    let (config, base) = load_config(config_path)?;
    let url = args.url.clone().unwrap_or_else(|| {
        let scheme = if config.auth.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", config.server.listen)
    });
    let token = match &args.token {
        Some(t) => Some(t.trim().to_string()),
        None => {
            let file = crate::governance::admin_token_path(&config, &base);
            std::fs::read_to_string(&file)
                .ok()
                .map(|t| t.trim().to_string())
        }
    };
    Ok((url.trim_end_matches('/').to_string(), token))
}

pub(crate) async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Value> {
    let http = reqwest::Client::new();
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {url} (is `freshet up` running?)"))?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = v["error"]["message"].as_str().unwrap_or("no detail");
        anyhow::bail!("the server answered {status}: {msg}");
    }
    Ok(v)
}

pub async fn run(config_path: &Path, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            name,
            roles,
            scopes,
            expires_in_days,
            server,
        } => {
            let (url, token) = server_client(config_path, &server)?;
            let expires_at = expires_in_days
                .map(|d| (chrono::Utc::now() + chrono::Duration::days(i64::from(d))).to_rfc3339());
            let v = call(
                reqwest::Method::POST,
                &format!("{url}/v1/tokens"),
                token.as_deref(),
                Some(json!({ "name": name, "roles": roles, "scopes": scopes, "expires_at": expires_at })),
            )
            .await?;
            eprintln!(
                "token '{}' created; it is shown once — store it now:",
                v["name"].as_str().unwrap_or(&name)
            );
            println!("{}", v["token"].as_str().unwrap_or_default());
        }
        TokenCommand::List { server } => {
            let (url, token) = server_client(config_path, &server)?;
            let v = call(
                reqwest::Method::GET,
                &format!("{url}/v1/tokens"),
                token.as_deref(),
                None,
            )
            .await?;
            println!(
                "{:<24} {:<32} {:<8} {:<26} CREATED BY",
                "NAME", "ROLES", "STATE", "EXPIRES"
            );
            let now = chrono::Utc::now().to_rfc3339();
            for t in v["tokens"].as_array().into_iter().flatten() {
                let roles: Vec<String> = t["grants"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| {
                        let r: Vec<&str> = g["roles"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        let s: Vec<&str> = g["scopes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        if s == ["*"] {
                            r.join(",")
                        } else {
                            format!("{} on {}", r.join(","), s.join(","))
                        }
                    })
                    .collect();
                let expires = t["expires_at"].as_str().unwrap_or("never");
                let state = if !t["revoked_at"].is_null() {
                    "revoked"
                } else if t["expires_at"].as_str().is_some_and(|e| e < now.as_str()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<24} {:<32} {:<8} {:<26} {}",
                    t["name"].as_str().unwrap_or("?"),
                    roles.join("; "),
                    state,
                    expires,
                    t["created_by"].as_str().unwrap_or("?")
                );
            }
        }
        TokenCommand::Revoke { name, server } => {
            let (url, token) = server_client(config_path, &server)?;
            call(
                reqwest::Method::DELETE,
                &format!("{url}/v1/tokens/{name}"),
                token.as_deref(),
                None,
            )
            .await?;
            println!("token '{name}' revoked");
        }
    }
    Ok(())
}
