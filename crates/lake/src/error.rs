//! Errors of the lake.

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("no Delta table at {0}")]
    NotATable(String),
    #[error("table {table} has no version {version}")]
    NoSuchVersion { table: String, version: i64 },
    #[error("invalid table location '{0}'")]
    Location(String),
    #[error("schema mismatch: {0}")]
    Schema(String),
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] deltalake::parquet::errors::ParquetError),
    #[error("object store: {0}")]
    Store(#[from] deltalake::ObjectStoreError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
