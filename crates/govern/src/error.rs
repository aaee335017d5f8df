//! Errors of the governance room.

/// What can go wrong in identity, tokens and approvals. Messages never carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum GovernError {
    /// The caller's input is wrong: names the field and the problem.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{what} '{name}' not found")]
    NotFound { what: &'static str, name: String },
    #[error("{what} '{name}' already exists")]
    Conflict { what: &'static str, name: String },
    #[error("governance store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("governance store io: {0}")]
    Io(#[from] std::io::Error),
}

impl GovernError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        GovernError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
