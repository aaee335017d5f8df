//! Errors of the connectors.

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The client library refused a setting or failed outright.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The Pulsar broker refused, or a setting cannot work.
    #[error("pulsar: {0}")]
    Pulsar(String),
    /// The database refused, or could not be reached (never carries the URL).
    #[error("postgres: {0}")]
    Postgres(String),
    /// Reading positions from, or committing to, the lake failed.
    #[error(transparent)]
    Ingest(#[from] freshet_ingest::IngestError),
    /// A blocking task ended abnormally.
    #[error("connector task failed: {0}")]
    Task(String),
}

impl From<rdkafka::error::KafkaError> for ConnectError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        ConnectError::Kafka(e.to_string())
    }
}
