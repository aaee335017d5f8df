//! The configuration model of `freshet.yaml`.
//!
//! Loading goes in three steps, each reporting errors that name the key path:
//! `${ENV}` interpolation on the text, typed deserialisation (unknown keys and wrong
//! types are errors), then [`FreshetConfig::validate`] for the rules that types cannot say.
//! Secrets never appear here: the PII key is read from the environment or a file whose
//! *name* is configured.

use crate::model_spec::ModelSpec;
use crate::schema::{Field, Schema, UnknownFields, is_valid_field_name};
use crate::value::FieldType;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::num::{NonZeroU64, NonZeroUsize};
use std::path::PathBuf;

/// A configuration problem at a key path, e.g. `streams.cards.schema.fields[2].min`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The whole `freshet.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshetConfig {
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where and how tables are stored.
    #[serde(default)]
    pub lake: LakeConfig,
    /// How to reach S3 for an `s3://` lake or artifact store.
    #[serde(default)]
    pub s3: S3Config,
    /// Where the PII hashing key comes from.
    #[serde(default)]
    pub pii: PiiConfig,
    /// Named streams; each lands in `events/<name>` and `dlq/<name>`.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamConfig>,
    /// Experiment tracking and the model registry.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Several nodes on one Postgres registry (docs/deployment.md): who leads what.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Named models, each trained from one stream (docs/models.md).
    #[serde(default)]
    pub models: BTreeMap<String, ModelSpec>,
    /// Where monitoring alerts go (docs/monitoring.md).
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Who may call the server (docs/governance.md).
    #[serde(default)]
    pub auth: crate::config_govern::AuthConfig,
    /// The audit chain (docs/governance.md).
    #[serde(default)]
    pub audit: crate::config_govern::AuditSettings,
    /// Which model risk tiers need maker-checker approval (docs/governance.md).
    #[serde(default)]
    pub approvals: crate::config_govern::ApprovalsConfig,
}

/// Several nodes sharing one registry. Used only with `registry.url` (Postgres); on a
/// SQLite registry the node is alone and leads everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's name in the cluster; default: the host name and a random suffix,
    /// new at every start (so a restarted node waits for its old leases to expire).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// How long a lease lasts unless renewed (renewed three times as often). A node
    /// that stops takes at most this long, plus one renewal, to be replaced.
    pub lease_ttl_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            lease_ttl_ms: 5_000,
        }
    }
}

impl ClusterConfig {
    fn validate(&self, errs: &mut Vec<ConfigError>) {
        if !(1_000..=60_000).contains(&self.lease_ttl_ms) {
            errs.push(ConfigError::new(
                "cluster.lease_ttl_ms",
                "must be between 1000 and 60000",
            ));
        }
        if let Some(id) = &self.node_id
            && (id.is_empty()
                || id.len() > 128
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            errs.push(ConfigError::new(
                "cluster.node_id",
                "must be 1 to 128 letters, digits, '-', '_' or '.'",
            ));
        }
    }
}

/// Alert webhooks: each alert is POSTed as JSON to every URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// `http://` or `https://` URLs.
    pub webhooks: Vec<String>,
    /// A condition still holding (or the same event) is re-sent at most this often.
    pub repeat_secs: u64,
    /// Time allowed for one delivery.
    pub timeout_ms: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            repeat_secs: 3_600,
            timeout_ms: 5_000,
        }
    }
}

impl AlertsConfig {
    fn validate(&self, errs: &mut Vec<ConfigError>) {
        for (i, url) in self.webhooks.iter().enumerate() {
            let ok = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .is_some_and(|rest| !rest.is_empty());
            if !ok {
                errs.push(ConfigError::new(
                    format!("alerts.webhooks[{i}]"),
                    "must be an http:// or https:// URL",
                ));
            }
        }
        if self.timeout_ms == 0 {
            errs.push(ConfigError::new("alerts.timeout_ms", "must be at least 1"));
        }
    }
}

/// Experiment tracking and the model registry (served through the MLflow REST API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// SQLite database file, relative to the config file (one node). Ignored when
    /// `url` is set.
    pub path: String,
    /// `postgres://user:password@host:port/database`: the registry in Postgres, shared
    /// by every node with the same configuration. The password may instead come from
    /// `PGPASSWORD`; it never reaches logs or errors. TLS is used unless the URL says
    /// `sslmode=disable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A PEM file of CA certificates to trust for the database's TLS, besides the
    /// system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<String>,
    /// Directory of artifacts (run files, model directories), relative to the config
    /// file; served to MLflow clients as `mlflow-artifacts:/` URIs.
    pub artifacts: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            path: "freshet-data/registry.db".into(),
            url: None,
            tls_ca_file: None,
            artifacts: "freshet-data/artifacts".into(),
        }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Largest accepted request body; larger bodies get 413.
    pub max_body_bytes: NonZeroUsize,
    /// Records accepted but not yet committed, across all streams; past it, ingest answers
    /// 503 with `Retry-After` so that memory stays bounded.
    pub max_buffered_records: NonZeroUsize,
    /// How long an ingest request may wait for its commit before it is answered 503
    /// (the records are still committed; retry with the same `Idempotency-Key`).
    pub ack_timeout_ms: NonZeroU64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7070".into(),
            max_body_bytes: NonZeroUsize::new(16 << 20).unwrap_or(NonZeroUsize::MIN),
            max_buffered_records: NonZeroUsize::new(400_000).unwrap_or(NonZeroUsize::MIN),
            ack_timeout_ms: NonZeroU64::new(30_000).unwrap_or(NonZeroU64::MIN),
        }
    }
}

/// Where and how tables are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// Root of the lake: a local path (relative to the config file), a `file://` URL, or
    /// `s3://<bucket>/<prefix>` (S3 or any S3-compatible store, see [`S3Config`]).
    pub path: String,
    /// Write a Delta checkpoint every this many commits.
    pub checkpoint_interval: NonZeroU64,
    /// Background compaction of small files.
    pub compaction: CompactionConfig,
    /// Files removed by compaction are deleted (vacuumed) after this many hours.
    pub retention_hours: u64,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            path: "freshet-data/lake".into(),
            checkpoint_interval: NonZeroU64::new(50).unwrap_or(NonZeroU64::MIN),
            compaction: CompactionConfig::default(),
            retention_hours: 168,
        }
    }
}

/// Where an S3-compatible store is and how to talk to it, for an `s3://` lake or artifact
/// store. Each field falls back to the AWS environment (`AWS_ENDPOINT_URL`,
/// `AWS_ENDPOINT`, `AWS_DEFAULT_REGION`, `AWS_ALLOW_HTTP`) when unset. Credentials are
/// never read from here: they come from the AWS environment (variables, web identity,
/// ECS and EC2 instance roles).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The store's URL, for S3-compatible stores (MinIO, SeaweedFS, Ceph, R2, ...);
    /// unset for AWS S3.
    pub endpoint: Option<String>,
    /// The bucket's region (AWS S3); S3-compatible stores usually accept any.
    pub region: Option<String>,
    /// Allow a plain `http://` endpoint (a store on the same host or network only).
    pub allow_http: bool,
}

impl S3Config {
    /// These settings as `object_store` S3 configuration keys, to apply on top of the
    /// AWS environment (which `object_store` reads itself, except the SDKs'
    /// `AWS_ENDPOINT_URL`, mapped here).
    pub fn client_options(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(endpoint) = &self.endpoint {
            out.push(("aws_endpoint", endpoint.clone()));
        } else if std::env::var_os("AWS_ENDPOINT").is_none()
            && let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL")
        {
            out.push(("aws_endpoint", endpoint));
        }
        if let Some(region) = &self.region {
            out.push(("aws_region", region.clone()));
        }
        if self.allow_http {
            out.push(("aws_allow_http", "true".into()));
        }
        out
    }
}

/// A store location (`lake.path`, `registry.artifacts`) must be one Freshet can write to.
fn validate_location(field: &str, location: &str, errs: &mut Vec<ConfigError>) {
    if let Some((scheme, rest)) = location.split_once("://") {
        match scheme {
            "file" => {}
            "s3" | "s3a" => {
                if rest.split('/').next().unwrap_or_default().is_empty() {
                    errs.push(ConfigError::new(
                        field,
                        "an s3:// location needs a bucket: s3://<bucket>/<prefix>",
                    ));
                }
            }
            other => errs.push(ConfigError::new(
                field,
                format!(
                    "the '{other}' scheme is not supported; use a local path, file:// or s3://"
                ),
            )),
        }
    }
}

/// An S3 endpoint must be a URL, and plain http an explicit choice.
fn validate_s3(s3: &S3Config, errs: &mut Vec<ConfigError>) {
    if let Some(endpoint) = &s3.endpoint {
        match endpoint.split_once("://") {
            Some(("https", host)) if !host.is_empty() => {}
            Some(("http", host)) if !host.is_empty() => {
                if !s3.allow_http {
                    errs.push(ConfigError::new(
                        "s3.endpoint",
                        "is plain http; set s3.allow_http: true to allow it",
                    ));
                }
            }
            _ => errs.push(ConfigError::new(
                "s3.endpoint",
                "must be an http:// or https:// URL, like https://s3.example.com",
            )),
        }
    }
}
/// Background compaction of small files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    pub enabled: bool,
    /// How often to look for partitions to compact, in seconds.
    pub interval_secs: NonZeroU64,
    /// A partition is compacted once it has at least this many small files.
    pub min_files: NonZeroUsize,
    /// Files smaller than this many megabytes count as small.
    pub small_file_mb: NonZeroU64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: NonZeroU64::new(60).unwrap_or(NonZeroU64::MIN),
            min_files: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            small_file_mb: NonZeroU64::new(32).unwrap_or(NonZeroU64::MIN),
        }
    }
}

/// Where the PII hashing key comes from. The key itself never appears in the YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Environment variable holding the key.
    pub key_env: String,
    /// File holding the key (used when the variable is unset).
    pub key_file: Option<PathBuf>,
    /// Label of the key, written to `_pii_key_version` with each hashed record.
    pub key_version: String,
}

impl Default for PiiConfig {
    fn default() -> Self {
        Self {
            key_env: "FRESHET_PII_KEY".into(),
            key_file: None,
            key_version: "v1".into(),
        }
    }
}

/// One stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Where records come from.
    pub source: SourceConfig,
    /// Declared fields; optional for generator sources, which bring their own.
    #[serde(default)]
    pub schema: Option<SchemaConfig>,
    /// Processors applied after validation and the PII policy, in order.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// When buffered records are committed to Delta.
    #[serde(default)]
    pub commit: CommitPolicy,
    /// Where the stream's dead letters are pushed after each commit to `dlq/<stream>`,
    /// one NDJSON line each (the same sink types as a model's prediction sinks).
    #[serde(default)]
    pub dead_letter_sinks: Vec<crate::model_spec::SinkSpec>,
}

/// Where a stream's records come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// `POST /v1/streams/{stream}/events`.
    Http {},
    /// A CSV or NDJSON file, read once or followed as it grows.
    File {
        path: PathBuf,
        /// `csv` or `ndjson`; taken from the file extension when absent.
        #[serde(default)]
        format: Option<FileFormat>,
        /// Keep reading as the file grows.
        #[serde(default)]
        follow: bool,
        /// How often a followed file is polled for new lines, in milliseconds.
        #[serde(default = "default_poll_ms")]
        poll_ms: NonZeroU64,
    },
    /// A built-in synthetic stream.
    Generator(GeneratorConfig),
    /// Kafka topics, exactly once into the table (each partition's offset is a Delta
    /// `txn` written with its rows).
    Kafka(crate::config_connect::KafkaSourceConfig),
    /// Tables of a Postgres database: a consistent snapshot, then every insert, update
    /// and delete through logical replication; the slot's position is a Delta `txn`.
    #[serde(rename = "postgres_cdc")]
    PostgresCdc(crate::config_cdc::PostgresCdcSourceConfig),
    /// A Pulsar topic through a durable subscription, exactly once into the table (the
    /// topic's position is a Delta `txn`; messages are acknowledged after the commit).
    Pulsar(crate::config_pulsar::PulsarSourceConfig),
}

fn default_poll_ms() -> NonZeroU64 {
    NonZeroU64::new(200).unwrap_or(NonZeroU64::MIN)
}

/// File formats the file source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Ndjson,
}

impl FileFormat {
    /// The format a path's extension implies.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "ndjson" | "jsonl" | "json" => Some(FileFormat::Ndjson),
            _ => None,
        }
    }
}

/// A built-in synthetic stream, deterministic for a given seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Which stream to generate.
    pub kind: GeneratorKind,
    /// Seed of the random generator; the same seed gives the same stream.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Events per second; absent means as fast as possible.
    #[serde(default)]
    pub rate_per_sec: Option<NonZeroU64>,
    /// Stop after this many events; absent means never.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Where the concept changes.
    #[serde(default)]
    pub drift: Vec<DriftPoint>,
    /// Probability of flipping a label (SEA, Agrawal, hyperplane), 0..1.
    #[serde(default)]
    pub noise: f64,
    /// Number of features of the rotating hyperplane.
    #[serde(default = "default_hyperplane_features")]
    pub n_features: usize,
}

fn default_seed() -> u64 {
    42
}
fn default_hyperplane_features() -> usize {
    10
}

/// The synthetic streams Freshet can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// Card transactions with a fraud label whose pattern changes at each drift point.
    Cards,
    /// SEA concepts (Street and Kim, 2001).
    Sea,
    /// Rotating hyperplane (Hulten et al., 2001).
    Hyperplane,
    /// Agrawal's loan functions (Agrawal et al., 1993).
    Agrawal,
}

/// A change of concept at event `at`; abrupt when `width` is 0, otherwise a gradual
/// change over `width` events (a sigmoid mix of the old and new concepts).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftPoint {
    pub at: u64,
    #[serde(default)]
    pub width: u64,
}

/// A stream's declared fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaConfig {
    pub fields: Vec<Field>,
    /// `reject` (default) sends records with undeclared fields to the dead-letter table;
    /// `ignore` drops the undeclared fields.
    #[serde(default)]
    pub unknown_fields: UnknownFields,
}

impl SchemaConfig {
    pub fn to_schema(&self) -> Schema {
        Schema::new(self.fields.clone()).with_unknown_fields(self.unknown_fields)
    }
}

/// A processor after validation and PII.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransformConfig {
    /// Keep records for which the CEL expression is true; others are counted as filtered.
    Filter { expr: String },
    /// Add (or replace) a field with the value of a CEL expression.
    Derive {
        field: String,
        /// Type of the derived field.
        #[serde(rename = "as")]
        ty: FieldType,
        expr: String,
    },
    /// Rename a field.
    Rename { from: String, to: String },
    /// Remove fields.
    Drop { fields: Vec<String> },
}

/// When a stream's buffered records are committed: whichever bound is reached first.
/// Under load, records also queue while the previous commit runs, so batches grow with
/// the arrival rate without waiting; `max_latency_ms` only bounds how long a record
/// waits for company. Defaults come from `freshet bench ingest` (docs/benchmarks.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommitPolicy {
    pub max_rows: NonZeroUsize,
    pub max_bytes: NonZeroUsize,
    pub max_latency_ms: NonZeroU64,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        Self {
            max_rows: NonZeroUsize::new(100_000).unwrap_or(NonZeroUsize::MIN),
            max_bytes: NonZeroUsize::new(64 << 20).unwrap_or(NonZeroUsize::MIN),
            max_latency_ms: NonZeroU64::new(20).unwrap_or(NonZeroU64::MIN),
        }
    }
}

impl FreshetConfig {
    /// Parse YAML text: `${ENV}` interpolation, then typed deserialisation, then validation.
    /// All validation problems are returned, not only the first.
    pub fn from_yaml_str(text: &str) -> Result<Self, Vec<ConfigError>> {
        Self::from_yaml_str_with_env(text, &|k| std::env::var(k).ok())
    }

    /// As [`from_yaml_str`](Self::from_yaml_str) with an injected environment.
    pub fn from_yaml_str_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<ConfigError>> {
        let text = interpolate_env(text, env).map_err(|e| vec![e])?;
        let de = serde_yaml_ng::Deserializer::from_str(&text);
        let config: FreshetConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "(root)".to_string()
            } else {
                path
            };
            vec![ConfigError::new(
                path,
                e.into_inner().to_string().trim().to_string(),
            )]
        })?;
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Rules that the types cannot express. Returns every problem found.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errs = Vec::new();
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            errs.push(ConfigError::new(
                "server.listen",
                "must be an address like 127.0.0.1:7070",
            ));
        }
        if self.lake.path.trim().is_empty() {
            errs.push(ConfigError::new("lake.path", "must not be empty"));
        }
        validate_location("lake.path", &self.lake.path, &mut errs);
        validate_location("registry.artifacts", &self.registry.artifacts, &mut errs);
        validate_s3(&self.s3, &mut errs);
        if self.registry.artifacts.trim().is_empty() {
            errs.push(ConfigError::new("registry.artifacts", "must not be empty"));
        }
        if self.registry.path.trim().is_empty() && self.registry.url.is_none() {
            errs.push(ConfigError::new("registry.path", "must not be empty"));
        }
        self.cluster.validate(&mut errs);
        if let Some(url) = &self.registry.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            // Never echo the URL: it may carry the password.
            errs.push(ConfigError::new(
                "registry.url",
                "must be a postgres://user:password@host:port/database URL",
            ));
        }
        if self.pii.key_version.trim().is_empty() {
            errs.push(ConfigError::new("pii.key_version", "must not be empty"));
        }
        for (name, stream) in &self.streams {
            let base = format!("streams.{name}");
            if !is_valid_stream_name(name) {
                errs.push(ConfigError::new(
                    &base,
                    "stream names use letters, digits, '-' and '_' and start with a letter",
                ));
            }
            stream.validate(&base, &mut errs);
        }
        for (name, model) in &self.models {
            model.validate(name, &self.streams, &mut errs);
        }
        self.alerts.validate(&mut errs);
        crate::config_govern::validate(&self.auth, &self.audit, &mut errs);
        errs
    }
}

impl StreamConfig {
    fn validate(&self, base: &str, errs: &mut Vec<ConfigError>) {
        match (&self.source, &self.schema) {
            (SourceConfig::Generator(g), _) => {
                validate_generator(g, &format!("{base}.source"), errs)
            }
            (_, None) => errs.push(ConfigError::new(
                format!("{base}.schema"),
                "required for http, file, kafka, pulsar and postgres_cdc sources",
            )),
            _ => {}
        }
        if let (SourceConfig::Kafka(k), Some(schema)) = (&self.source, &self.schema) {
            let fields: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
            crate::config_connect::validate_kafka(k, &format!("{base}.source"), &fields, errs);
        }
        if let (SourceConfig::Pulsar(p), Some(schema)) = (&self.source, &self.schema) {
            let fields: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
            crate::config_pulsar::validate_pulsar(p, &format!("{base}.source"), &fields, errs);
        }
        if let (SourceConfig::PostgresCdc(p), Some(schema)) = (&self.source, &self.schema) {
            let fields: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
            crate::config_cdc::validate_postgres_cdc(p, &format!("{base}.source"), &fields, errs);
        }
        if let SourceConfig::File {
            path, format: None, ..
        } = &self.source
            && FileFormat::from_path(path).is_none()
        {
            errs.push(ConfigError::new(
                format!("{base}.source.format"),
                "cannot tell the format from the file extension: set csv or ndjson",
            ));
        }
        let mut names: Vec<String> = Vec::new();
        if let Some(schema) = &self.schema {
            if schema.fields.is_empty() {
                errs.push(ConfigError::new(
                    format!("{base}.schema.fields"),
                    "must declare at least one field",
                ));
            }
            let mut seen = HashSet::new();
            for (i, f) in schema.fields.iter().enumerate() {
                let p = format!("{base}.schema.fields[{i}]");
                validate_field(f, &p, errs);
                if !seen.insert(f.name.as_str()) {
                    errs.push(ConfigError::new(
                        format!("{p}.name"),
                        format!("duplicate field '{}'", f.name),
                    ));
                }
                if f.pii != Some(crate::schema::PiiAction::Drop) {
                    names.push(f.name.clone());
                }
            }
        }
        for (i, sink) in self.dead_letter_sinks.iter().enumerate() {
            sink.validate(&format!("{base}.dead_letter_sinks[{i}]"), errs);
        }
        // Follow the transforms to check that referenced fields exist at that point.
        // Generator schemas are only known to the ingest crate, so skip name checks there.
        let check_names = self.schema.is_some();
        for (i, t) in self.transforms.iter().enumerate() {
            let p = format!("{base}.transforms[{i}]");
            match t {
                TransformConfig::Filter { expr } => {
                    if expr.trim().is_empty() {
                        errs.push(ConfigError::new(format!("{p}.expr"), "must not be empty"));
                    }
                }
                TransformConfig::Derive { field, expr, .. } => {
                    if !is_valid_field_name(field) {
                        errs.push(ConfigError::new(
                            format!("{p}.field"),
                            "not a valid field name",
                        ));
                    }
                    if expr.trim().is_empty() {
                        errs.push(ConfigError::new(format!("{p}.expr"), "must not be empty"));
                    }
                    if !names.contains(field) {
                        names.push(field.clone());
                    }
                }
                TransformConfig::Rename { from, to } => {
                    if check_names && !names.contains(from) {
                        errs.push(ConfigError::new(
                            format!("{p}.from"),
                            format!("no field '{from}' at this point"),
                        ));
                    }
                    if !is_valid_field_name(to) {
                        errs.push(ConfigError::new(
                            format!("{p}.to"),
                            "not a valid field name",
                        ));
                    } else if check_names && names.contains(to) {
                        errs.push(ConfigError::new(
                            format!("{p}.to"),
                            format!("field '{to}' already exists"),
                        ));
                    }
                    names.retain(|n| n != from);
                    names.push(to.clone());
                }
                TransformConfig::Drop { fields } => {
                    if fields.is_empty() {
                        errs.push(ConfigError::new(
                            format!("{p}.fields"),
                            "must name at least one field",
                        ));
                    }
                    for (j, f) in fields.iter().enumerate() {
                        if check_names && !names.contains(f) {
                            errs.push(ConfigError::new(
                                format!("{p}.fields[{j}]"),
                                format!("no field '{f}' at this point"),
                            ));
                        }
                    }
                    names.retain(|n| !fields.contains(n));
                }
            }
        }
    }
}

fn validate_field(f: &Field, p: &str, errs: &mut Vec<ConfigError>) {
    if !is_valid_field_name(&f.name) {
        errs.push(ConfigError::new(
            format!("{p}.name"),
            "field names use letters, digits and '_', start with a letter, at most 128 characters",
        ));
    }
    let numeric = matches!(f.ty, FieldType::Int | FieldType::Float);
    for (key, bound) in [("min", f.min), ("max", f.max)] {
        if let Some(b) = bound {
            if !numeric {
                errs.push(ConfigError::new(
                    format!("{p}.{key}"),
                    format!("only int and float fields have a {key}"),
                ));
            } else if !b.is_finite() {
                errs.push(ConfigError::new(
                    format!("{p}.{key}"),
                    "must be a finite number",
                ));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (f.min, f.max)
        && lo > hi
    {
        errs.push(ConfigError::new(format!("{p}.min"), "is greater than max"));
    }
    if let Some(c) = &f.categories {
        if f.ty != FieldType::String {
            errs.push(ConfigError::new(
                format!("{p}.categories"),
                "only string fields have categories",
            ));
        } else if c.is_empty() {
            errs.push(ConfigError::new(
                format!("{p}.categories"),
                "must list at least one category",
            ));
        }
    }
    if let Some(n) = f.max_length {
        if f.ty != FieldType::String {
            errs.push(ConfigError::new(
                format!("{p}.max_length"),
                "only string fields have a max_length",
            ));
        } else if n == 0 {
            errs.push(ConfigError::new(
                format!("{p}.max_length"),
                "must be at least 1",
            ));
        }
    }
}

fn validate_generator(g: &GeneratorConfig, p: &str, errs: &mut Vec<ConfigError>) {
    if !(0.0..=1.0).contains(&g.noise) {
        errs.push(ConfigError::new(
            format!("{p}.noise"),
            "must be between 0 and 1",
        ));
    }
    if g.kind == GeneratorKind::Hyperplane && !(2..=1000).contains(&g.n_features) {
        errs.push(ConfigError::new(
            format!("{p}.n_features"),
            "must be between 2 and 1000",
        ));
    }
    for (i, w) in g.drift.windows(2).enumerate() {
        if w[1].at <= w[0].at {
            errs.push(ConfigError::new(
                format!("{p}.drift[{}].at", i + 1),
                "drift points must be in increasing order",
            ));
        }
    }
}

/// Stream names become table paths, so they are restricted.
pub fn is_valid_stream_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64
}

/// Replace `${NAME}` and `${NAME:-default}` with environment values; `$${` escapes.
/// Full-line comments are left alone, so they can document the syntax.
pub fn interpolate_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            interpolate_line(line, i + 1, env, &mut out)?;
        }
    }
    Ok(out)
}

fn interpolate_line(
    line_text: &str,
    line: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), ConfigError> {
    let mut rest = line_text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let end = body.find('}').ok_or_else(|| {
            ConfigError::new(
                format!("line {line}"),
                "unterminated ${ in environment reference",
            )
        })?;
        let expr = &body[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::new(
                format!("line {line}"),
                format!("invalid environment variable name '{name}'"),
            ));
        }
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(ConfigError::new(
                    format!("line {line}"),
                    format!(
                        "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
                    ),
                ));
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
lake:
  path: ${DATA:-./data}/lake
streams:
  payments:
    source: { type: http }
    schema:
      fields:
        - { name: card, type: string, required: true, pii: hash }
        - { name: amount, type: float, min: 0, max: 10000 }
        - { name: country, type: string, categories: [FR, DE] }
    transforms:
      - { type: derive, field: big, as: bool, expr: "amount > 100.0" }
      - { type: rename, from: country, to: cc }
      - { type: drop, fields: [big] }
  synthetic:
    source: { type: generator, kind: cards, seed: 7, drift: [{ at: 1000 }] }
"#;

    fn env(k: &str) -> Option<String> {
        (k == "HOME_X").then(|| "/x".to_string())
    }

    #[test]
    fn example_config_parses_with_env_defaults() {
        let c = FreshetConfig::from_yaml_str_with_env(GOOD, &env).expect("valid");
        assert_eq!(c.lake.path, "./data/lake");
        assert_eq!(c.streams.len(), 2);
        assert_eq!(c.streams["payments"].transforms.len(), 3);
    }

    #[test]
    fn unknown_key_names_its_path() {
        let text = "streams:\n  a:\n    source: { type: http }\n    schema:\n      fields:\n        - { name: x, type: int, mni: 3 }\n";
        let errs = FreshetConfig::from_yaml_str_with_env(text, &env).unwrap_err();
        assert!(
            errs[0].path.starts_with("streams.a.schema.fields[0]"),
            "{errs:?}"
        );
        assert!(errs[0].message.contains("mni"), "{errs:?}");
    }

    #[test]
    fn semantic_errors_name_every_path() {
        let text = r#"
server: { listen: "nope" }
streams:
  a:
    source: { type: http }
    schema:
      fields:
        - { name: x, type: string, min: 3 }
        - { name: x, type: int, min: 5, max: 1 }
    transforms:
      - { type: rename, from: missing, to: y }
  b:
    source: { type: file, path: data.txt }
"#;
        let errs = FreshetConfig::from_yaml_str_with_env(text, &env).unwrap_err();
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        for want in [
            "server.listen",
            "streams.a.schema.fields[0].min",
            "streams.a.schema.fields[1].name",
            "streams.a.schema.fields[1].min",
            "streams.a.transforms[0].from",
            "streams.b.schema",
            "streams.b.source.format",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
    }

    #[test]
    fn missing_env_is_an_error_naming_the_variable() {
        let err = interpolate_env("a: ${NOPE_NOT_SET}\n", &env).unwrap_err();
        assert!(err.message.contains("NOPE_NOT_SET"));
        assert_eq!(err.path, "line 1");
        assert_eq!(interpolate_env("a: $${X}", &env).unwrap(), "a: ${X}");
        assert_eq!(interpolate_env("a: ${HOME_X}/y", &env).unwrap(), "a: /x/y");
        assert_eq!(
            interpolate_env("# ${NOT_SET}\nb: 1", &env).unwrap(),
            "# ${NOT_SET}\nb: 1"
        );
        assert_eq!(
            interpolate_env("a: 1\nb: ${NOPE}", &env).unwrap_err().path,
            "line 2"
        );
    }

    /// Every problem `text` has, as `path: message`.
    fn check(text: &str) -> Vec<String> {
        match FreshetConfig::from_yaml_str_with_env(text, &env) {
            Ok(_) => Vec::new(),
            Err(errs) => errs
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        }
    }

    #[test]
    fn store_locations_are_checked() {
        assert!(check("lake: { path: s3://bucket/lake }").is_empty());
        assert!(check("lake: { path: file:///data/lake }").is_empty());
        assert!(check("registry: { artifacts: s3://bucket/artifacts }").is_empty());
        assert!(check("s3: { endpoint: 'http://127.0.0.1:9000', allow_http: true }").is_empty());
        let gs = check("lake: { path: gs://bucket/lake }");
        assert!(gs[0].starts_with("lake.path: the 'gs' scheme"), "{gs:?}");
        let no_bucket = check("registry: { artifacts: s3:///artifacts }");
        assert!(
            no_bucket[0].starts_with("registry.artifacts: an s3:// location needs a bucket"),
            "{no_bucket:?}"
        );
        let http = check("s3: { endpoint: 'http://127.0.0.1:9000' }");
        assert!(
            http[0].starts_with("s3.endpoint: is plain http"),
            "{http:?}"
        );
        let bad = check("s3: { endpoint: 'minio:9000' }");
        assert!(bad[0].starts_with("s3.endpoint: must be"), "{bad:?}");
    }

    #[test]
    fn the_postgres_registry_and_the_cluster_are_checked_without_echoing_the_url() {
        assert!(check("registry: { url: 'postgres://u:p@db:5432/freshet' }").is_empty());
        assert!(check("cluster: { lease_ttl_ms: 2000, node_id: eu-1a.n2 }").is_empty());
        let mysql = check("registry: { url: 'mysql://u:Secret-77@db/f' }");
        assert_eq!(
            mysql,
            vec!["registry.url: must be a postgres://user:password@host:port/database URL"]
        );
        assert!(!mysql[0].contains("Secret-77"));
        let ttl = check("cluster: { lease_ttl_ms: 100 }");
        assert_eq!(
            ttl,
            vec!["cluster.lease_ttl_ms: must be between 1000 and 60000"]
        );
        let id = check("cluster: { node_id: 'a b' }");
        assert!(id[0].starts_with("cluster.node_id: must be"), "{id:?}");
    }

    #[test]
    fn wrong_type_names_its_path() {
        let text = "streams:\n  a:\n    source: { type: http }\n    commit: { max_rows: 0 }\n    schema: { fields: [ { name: x, type: int } ] }\n";
        let errs = FreshetConfig::from_yaml_str_with_env(text, &env).unwrap_err();
        assert_eq!(errs[0].path, "streams.a.commit.max_rows", "{errs:?}");
    }
}
