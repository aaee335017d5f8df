//! Settings of the Postgres change-data-capture source (`source: { type: postgres_cdc,
//! ... }`): which tables of which database, through which replication slot and
//! publication, and the checks `freshet validate` makes before anything connects.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::num::{NonZeroU64, NonZeroUsize};

/// Tables of a Postgres database captured as change events: a consistent snapshot of
/// their rows, then every insert, update and delete through logical replication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresCdcSourceConfig {
    /// `postgres://user:password@host:port/database`. The password never reaches logs
    /// or errors.
    pub url: String,
    /// Tables to capture, `schema.table` (`table` alone means `public.table`).
    pub tables: Vec<String>,
    /// The logical replication slot (pgoutput), created when missing. It advances only
    /// after the changes it covers are committed to the table.
    pub slot: String,
    /// The publication naming the tables, created `FOR TABLE` when missing. Defaults to
    /// the slot's name.
    #[serde(default)]
    pub publication: Option<String>,
    /// Which declared fields receive the change's metadata.
    #[serde(default)]
    pub metadata: CdcMetadata,
    /// How often the slot is polled when it has nothing new, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: NonZeroU64,
    /// Most row changes read from the slot per commit; a transaction is never split.
    #[serde(default = "default_max_batch")]
    pub max_batch: NonZeroUsize,
    /// A PEM file of CA certificates to trust for the server's TLS certificate, beside
    /// the system's roots (relative paths are taken from the config file's folder).
    #[serde(default)]
    pub tls_ca_file: Option<String>,
}

fn default_poll_ms() -> NonZeroU64 {
    NonZeroU64::new(100).unwrap_or(NonZeroU64::MIN)
}

fn default_max_batch() -> NonZeroUsize {
    NonZeroUsize::new(50_000).unwrap_or(NonZeroUsize::MIN)
}

impl PostgresCdcSourceConfig {
    /// The publication's name.
    pub fn publication(&self) -> &str {
        self.publication.as_deref().unwrap_or(&self.slot)
    }

    /// `(schema, table)` of every captured table.
    pub fn qualified_tables(&self) -> Vec<(String, String)> {
        self.tables
            .iter()
            .map(|t| match t.split_once('.') {
                Some((s, n)) => (s.to_string(), n.to_string()),
                None => ("public".to_string(), t.clone()),
            })
            .collect()
    }
}

/// The declared fields that receive each change's metadata; `null` leaves one out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdcMetadata {
    /// `snapshot`, `insert`, `update` or `delete`.
    #[serde(default = "default_op")]
    pub op: Option<String>,
    /// The commit LSN of the change's transaction as an integer (`0/16B3748` is
    /// 0x16B3748); 0 for snapshot rows, which precede every change.
    #[serde(default = "default_lsn")]
    pub lsn: Option<String>,
    /// `schema.table` the change belongs to.
    #[serde(default)]
    pub table: Option<String>,
    /// When the transaction committed (absent for snapshot rows).
    #[serde(default)]
    pub commit_time: Option<String>,
}

fn default_op() -> Option<String> {
    Some("change_op".into())
}

fn default_lsn() -> Option<String> {
    Some("change_lsn".into())
}

impl Default for CdcMetadata {
    fn default() -> Self {
        Self {
            op: default_op(),
            lsn: default_lsn(),
            table: None,
            commit_time: None,
        }
    }
}

impl CdcMetadata {
    /// `(key, target field)` of every mapping.
    pub fn targets(&self) -> Vec<(&'static str, &str)> {
        [
            ("op", &self.op),
            ("lsn", &self.lsn),
            ("table", &self.table),
            ("commit_time", &self.commit_time),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|f| (k, f)))
        .collect()
    }
}

/// True for a name Postgres takes unquoted and Freshet may quote safely: letters,
/// digits and `_`, not starting with a digit, at most 63 bytes.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Check a Postgres CDC source; `base` is its key path (`streams.<name>.source`) and
/// `fields` the stream's declared field names.
pub fn validate_postgres_cdc(
    p: &PostgresCdcSourceConfig,
    base: &str,
    fields: &[&str],
    errs: &mut Vec<ConfigError>,
) {
    if !(p.url.starts_with("postgres://") || p.url.starts_with("postgresql://")) {
        errs.push(ConfigError::new(
            format!("{base}.url"),
            "must be a postgres://user:password@host:port/database URL",
        ));
    }
    if p.tables.is_empty() {
        errs.push(ConfigError::new(
            format!("{base}.tables"),
            "must name at least one table",
        ));
    }
    for (i, t) in p.tables.iter().enumerate() {
        let ok = match t.split_once('.') {
            Some((s, n)) => is_identifier(s) && is_identifier(n),
            None => is_identifier(t),
        };
        if !ok {
            errs.push(ConfigError::new(
                format!("{base}.tables[{i}]"),
                format!("'{t}' is not schema.table (letters, digits and _ each)"),
            ));
        }
    }
    let slot_ok = !p.slot.is_empty()
        && p.slot.len() <= 63
        && p.slot
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !slot_ok {
        errs.push(ConfigError::new(
            format!("{base}.slot"),
            format!(
                "'{}' is not a replication slot name (1 to 63 of a-z 0-9 _)",
                p.slot
            ),
        ));
    }
    if let Some(publication) = &p.publication
        && !is_identifier(publication)
    {
        errs.push(ConfigError::new(
            format!("{base}.publication"),
            format!("'{publication}' is not a publication name (letters, digits and _)"),
        ));
    }
    for (key, field) in p.metadata.targets() {
        if !fields.contains(&field) {
            errs.push(ConfigError::new(
                format!("{base}.metadata.{key}"),
                format!(
                    "'{field}' is not a declared field of the stream's schema; declare it or \
                     set metadata.{key} to null"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> PostgresCdcSourceConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let p = cfg("url: postgres://u@127.0.0.1/db\ntables: [orders, sales.items]\nslot: s1\n");
        assert_eq!(p.publication(), "s1");
        assert_eq!(p.metadata.op.as_deref(), Some("change_op"));
        assert_eq!(
            p.qualified_tables(),
            [
                ("public".to_string(), "orders".to_string()),
                ("sales".to_string(), "items".to_string())
            ]
        );
        let mut errs = Vec::new();
        validate_postgres_cdc(
            &p,
            "streams.s.source",
            &["change_op", "change_lsn"],
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs:?}");

        let p = cfg(
            "url: mysql://x\ntables: ['a;drop', '1x']\nslot: Bad-Slot\npublication: 'p q'\n\
             metadata: {op: null, table: tbl}\n",
        );
        let mut errs = Vec::new();
        validate_postgres_cdc(&p, "streams.s.source", &["change_lsn"], &mut errs);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "streams.s.source.url",
                "streams.s.source.tables[0]",
                "streams.s.source.tables[1]",
                "streams.s.source.slot",
                "streams.s.source.publication",
                "streams.s.source.metadata.table",
            ]
        );
        // The URL may carry a password: errors never echo it.
        assert!(!errs.iter().any(|e| e.message.contains("mysql://x")));
    }
}
