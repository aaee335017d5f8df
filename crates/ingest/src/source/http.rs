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
        "" | "application/json" | "text/plain" => Ok(BodyFormat::Json),
        // Declared NDJSON is read line by line even if the first line is not an object.
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(BodyFormat::Ndjson),
        "text/csv" | "application/csv" => Ok(BodyFormat::Csv),
        other => Err(format!(
            "unsupported content type '{}': use application/json, application/x-ndjson or text/csv",
            other.chars().take(64).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_formats() {
        assert_eq!(body_format(None), Ok(BodyFormat::Json));
        assert_eq!(
            body_format(Some("application/json; charset=utf-8")),
            Ok(BodyFormat::Json)
        );
        assert_eq!(
            body_format(Some("application/x-ndjson")),
            Ok(BodyFormat::Ndjson)
        );
        assert_eq!(body_format(Some("text/csv")), Ok(BodyFormat::Csv));
        assert!(
            body_format(Some("application/xml"))
                .unwrap_err()
                .contains("application/xml")
        );
    }
}
