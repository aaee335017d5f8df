//! The HTTP source: `POST /v1/streams/{stream}/events` with a JSON array, NDJSON or CSV.
//! The axum handler lives in the binary (HTTP is thin); this module only decides the
//! body format from the request's content type.

use crate::service::BodyFormat;

/// The body format for a `Content-Type` header value (absent means JSON/NDJSON).
pub fn body_format(content_type: Option<&str>) -> Result<BodyFormat, String> {
    let Some(ct) = content_type else {
        return Ok(BodyFormat::Json);
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        ""
        | "application/json"
        | "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/json-seq"
        | "text/plain" => Ok(BodyFormat::Json),
        "text/csv" | "application/csv" => Ok(BodyFormat::Csv),
        other => Err(format!(
            "unsupported content type '{}': use application/json, application/x-ndjson or text/csv",
            other.chars().take(64).collect::<String>()
        )),
    }
}
