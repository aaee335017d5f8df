//! Serving errors. The binary maps them to HTTP statuses in its one error module.

/// Why a request could not be served, or a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No version of the model is being served (no `champion` alias, or it failed to load).
    #[error(
        "no model '{0}' is being served: register a version and point the alias 'champion' at it"
    )]
    NotServed(String),
    /// The request cannot be scored (a format problem names the column, never the value).
    #[error("{0}")]
    BadRequest(String),
    /// Too many rows in one request.
    #[error("{0}")]
    TooLarge(String),
    /// The version's files are missing or unreadable.
    #[error("model '{name}' version {version} cannot be loaded: {reason}")]
    Load {
        name: String,
        version: i64,
        reason: String,
    },
    #[error(transparent)]
    Registry(#[from] freshet_registry::RegistryError),
    #[error(transparent)]
    Lake(#[from] freshet_lake::LakeError),
    /// A write shared with other calls failed (its reason, as text).
    #[error("storage: {0}")]
    Storage(String),
}
