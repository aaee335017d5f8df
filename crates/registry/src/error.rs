//! Registry errors, each carrying the MLflow error code it maps to.

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// MLflow `RESOURCE_ALREADY_EXISTS` (HTTP 400).
    #[error("{0}")]
    AlreadyExists(String),
    /// MLflow `RESOURCE_DOES_NOT_EXIST` (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// MLflow `INVALID_PARAMETER_VALUE` (HTTP 400).
    #[error("{0}")]
    InvalidParameter(String),
    /// MLflow `INVALID_STATE` (HTTP 400): e.g. writing to a deleted run.
    #[error("{0}")]
    InvalidState(String),
    /// Storage failure (HTTP 500; the detail is logged, not returned).
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// A fenced write refused: the lease it was made under has moved to another node
    /// (HTTP 409). The writer must stop acting for that lease.
    #[error("fenced: {0}")]
    Fenced(String),
    /// Postgres store failure (HTTP 500; the detail is logged, not returned). Carries
    /// the server's message and SQLSTATE, never the URL or its password.
    #[error("database error: {0}")]
    Database(String),
    /// Artifact storage failure (HTTP 500; the detail is logged, not returned).
    #[error("artifact storage error: {0}")]
    Io(#[from] std::io::Error),
}

impl RegistryError {
    /// The MLflow `error_code` string.
    pub fn mlflow_code(&self) -> &'static str {
        match self {
            RegistryError::AlreadyExists(_) => "RESOURCE_ALREADY_EXISTS",
            RegistryError::NotFound(_) => "RESOURCE_DOES_NOT_EXIST",
            RegistryError::InvalidParameter(_) => "INVALID_PARAMETER_VALUE",
            RegistryError::InvalidState(_) | RegistryError::Fenced(_) => "INVALID_STATE",
            RegistryError::Storage(_) | RegistryError::Database(_) | RegistryError::Io(_) => {
                "INTERNAL_ERROR"
            }
        }
    }
}
