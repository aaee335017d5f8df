//! Why a scoring request could not be read.
//!
//! Every variant names where the problem is (column, key, row, input tensor) and what
//! was expected, never the offending value: request bodies carry features such as card
//! numbers or e-mail addresses, and error bodies end up in client logs.

/// A request the formats cannot turn into rows. All are the caller's mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The body is not well-formed JSON (the message is serde_json's, which never quotes
    /// the input).
    #[error("the body is not valid JSON: {message} at line {line} column {column}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// A CSV body that cannot be read (bad UTF-8, unbalanced quotes).
    #[error("the CSV body is unreadable at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("unsupported content type '{content_type}': send application/json or text/csv")]
    UnsupportedContentType { content_type: String },
    /// A key the format does not define (a typo would otherwise be ignored).
    #[error("unknown key '{key}'")]
    UnknownKey { key: String },
    #[error("key '{key}' appears more than once")]
    DuplicateKey { key: String },
    #[error("'{key}' is required")]
    MissingKey { key: String },
    #[error(
        "the body must hold exactly one of dataframe_split, dataframe_records, instances or inputs; found none"
    )]
    NoFormatKey,
    #[error(
        "the body must hold exactly one of dataframe_split, dataframe_records, instances or inputs; found '{first}' and '{second}'"
    )]
    MultipleFormatKeys { first: String, second: String },
    /// A part of the body that has the wrong JSON shape.
    #[error("'{field}' must be {expected}")]
    Invalid {
        field: String,
        expected: &'static str,
    },
    #[error("column '{column}' is missing")]
    MissingColumn { column: String },
    #[error("column '{column}' is not an input of this model")]
    ExtraColumn { column: String },
    #[error("column '{column}' appears more than once")]
    DuplicateColumn { column: String },
    /// A cell that cannot be read as its column's type. `row` counts from 0.
    #[error("column '{column}' ({expected}), row {row}: {reason}")]
    WrongType {
        column: String,
        row: usize,
        expected: String,
        reason: String,
    },
    /// A row with more or fewer cells than there are columns. `row` counts from 0.
    #[error("row {row} has {found} values, expected {expected}")]
    RowArity {
        row: usize,
        expected: usize,
        found: usize,
    },
    /// Columns given as separate lists (or tensors) of different lengths.
    #[error("column '{column}' has {found} rows, expected {expected} like the other columns")]
    RowCountMismatch {
        column: String,
        expected: usize,
        found: usize,
    },
    #[error("the request holds no rows")]
    Empty,
    #[error("the request holds more than {max} rows")]
    TooManyRows { max: usize },
    /// An OIP input whose `shape` does not fit the model.
    #[error("input '{input}': shape must be {expected}")]
    BadShape { input: String, expected: String },
    /// An OIP input whose `data` length is not the product of its `shape`.
    #[error("input '{input}': shape {shape:?} holds {expected} values, data has {found}")]
    ShapeMismatch {
        input: String,
        shape: Vec<u64>,
        expected: u64,
        found: usize,
    },
    #[error(
        "input '{input}': unknown datatype; use BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64 or BYTES"
    )]
    UnsupportedDatatype { input: String },
    /// An OIP input whose datatype cannot hold its column's type.
    #[error("input '{column}': datatype {datatype} cannot hold a {expected} column (use {use_})")]
    DatatypeMismatch {
        column: String,
        datatype: &'static str,
        expected: freshet_core::FieldType,
        use_: &'static str,
    },
}

impl FormatError {
    /// The HTTP status for the error: 413 for too many rows, 415 for an unsupported
    /// content type, 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            FormatError::TooManyRows { .. } => 413,
            FormatError::UnsupportedContentType { .. } => 415,
            _ => 400,
        }
    }

    /// A serde_json failure that no visitor explained. Syntax errors keep serde_json's
    /// message (fixed texts such as "expected `,` or `]`"); anything else gets a generic
    /// one, because serde's type-mismatch messages quote the value.
    pub(crate) fn from_json(e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let message = match e.classify() {
            Category::Syntax | Category::Eof => {
                let msg = e.to_string();
                match msg.rfind(" at line ") {
                    Some(i) => msg[..i].to_string(),
                    None => msg,
                }
            }
            Category::Data | Category::Io => "unexpected JSON structure".to_string(),
        };
        FormatError::Malformed {
            line: e.line(),
            column: e.column(),
            message,
        }
    }
}

/// Names from the request (keys, column names) are echoed in errors; cap them so a
/// hostile key cannot bloat the response.
pub(crate) fn echo_name(name: &str) -> String {
    name.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        assert_eq!(FormatError::TooManyRows { max: 1 }.status_code(), 413);
        assert_eq!(
            FormatError::UnsupportedContentType {
                content_type: "text/plain".into()
            }
            .status_code(),
            415
        );
        assert_eq!(FormatError::Empty.status_code(), 400);
    }

    #[test]
    fn syntax_errors_keep_their_position_but_not_the_suffix() {
        let e = serde_json::from_slice::<serde::de::IgnoredAny>(b"{\n  \"a\" 1}").unwrap_err();
        let f = FormatError::from_json(&e);
        assert_eq!(
            f,
            FormatError::Malformed {
                line: 2,
                column: 7,
                message: "expected `:`".into()
            }
        );
        assert_eq!(
            f.to_string(),
            "the body is not valid JSON: expected `:` at line 2 column 7"
        );
    }

    #[test]
    fn data_errors_do_not_quote_the_value() {
        let e = serde_json::from_slice::<u8>(b"\"alice@example.com\"").unwrap_err();
        assert!(e.to_string().contains("alice@example.com"));
        assert!(!FormatError::from_json(&e).to_string().contains("alice"));
    }

    #[test]
    fn echoed_names_are_capped() {
        assert_eq!(echo_name(&"x".repeat(500)).len(), 64);
    }
}
