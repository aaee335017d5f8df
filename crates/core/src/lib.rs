//! The shared vocabulary of Freshet.
//!
//! This room holds what every stage of the loop agrees on: [`Value`] and [`FieldType`],
//! the [`Schema`] of a stream, the configuration model loaded from `freshet.yaml`
//! ([`config`], with the model specs of [`model_spec`]), and the injected [`Clock`]. It depends on nothing else in the
//! workspace and performs no I/O apart from reading the configuration file it is given.

pub mod clock;
pub mod config;
pub mod config_cdc;
pub mod config_connect;
pub mod config_govern;
pub mod config_pulsar;
pub mod model_spec;
pub mod schema;
pub mod secrets;
pub mod value;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, FreshetConfig};
pub use model_spec::{ModelSpec, ResolvedModelSpec, Task};
pub use schema::{Field, PiiAction, Schema};
pub use value::{FieldType, Value};

/// System columns every event table carries, in this order, after the stream's own fields.
pub mod system_columns {
    /// Unique id of the event: deterministic for replayable sources, so a replay is recognisable.
    pub const EVENT_ID: &str = "_event_id";
    /// When Freshet accepted the record (UTC, microseconds).
    pub const INGESTED_AT: &str = "_ingested_at";
    /// The source the record came from, e.g. `http`, `file:/data/x.csv`, `generator:cards`.
    pub const SOURCE: &str = "_source";
    /// Position of the record within its source (line, sequence number or request index).
    pub const POSITION: &str = "_position";
    /// Partition column: the UTC date of `_ingested_at`.
    pub const INGEST_DATE: &str = "_ingest_date";
    /// Version of the PII hashing key used for the record's hashed fields.
    pub const PII_KEY_VERSION: &str = "_pii_key_version";
}
