//! Settings of the connector sources (`source: { type: kafka, ... }`): what a stream
//! reads from a system its users already run, and the checks `freshet validate` makes
//! on them before anything connects.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

/// A Kafka topic (or several) read by a consumer group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Topics to read.
    pub topics: Vec<String>,
    /// Consumer group id. Offsets committed to the group are only a hint for lag tools:
    /// the position of record is the Delta table's.
    pub group: String,
    /// Payload format of the record values.
    #[serde(default)]
    pub format: PayloadFormat,
    /// Where a partition the table has never seen starts.
    #[serde(default)]
    pub start: StartPosition,
    /// Read exactly these partitions of every topic (manual assignment, no group
    /// rebalancing) instead of joining the group's assignment.
    #[serde(default)]
    pub partitions: Option<Vec<i32>>,
    /// Record metadata copied into declared fields of the stream's schema.
    #[serde(default)]
    pub metadata: KafkaMetadata,
    /// Larger record values go to the dead-letter table instead of the pipeline.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: NonZeroUsize,
    /// Extra librdkafka settings (e.g. `security.protocol`, `sasl.mechanism`). Values
    /// never reach logs or errors.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_max_record_bytes() -> NonZeroUsize {
    NonZeroUsize::new(1 << 20).unwrap_or(NonZeroUsize::MIN)
}

/// Payload formats of message values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// One JSON object per message.
    #[default]
    Json,
    /// One CSV line per message, columns in the schema's declared order, no header.
    Csv,
}

/// Where a partition without a committed position starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPosition {
    /// The oldest record the broker still keeps: nothing already in the topic is skipped.
    #[default]
    Earliest,
    /// Only records produced after the partition is first assigned.
    Latest,
}

/// Record metadata to copy into the stream's declared fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaMetadata {
    /// The record key, as UTF-8 text.
    #[serde(default)]
    pub key: Option<String>,
    /// The record timestamp (create or log-append time).
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub partition: Option<String>,
    #[serde(default)]
    pub offset: Option<String>,
    /// Header name -> field; the header's value as UTF-8 text.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl KafkaMetadata {
    /// `(key path, target field)` of every mapping.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (k, v) in [
            ("key", &self.key),
            ("timestamp", &self.timestamp),
            ("topic", &self.topic),
            ("partition", &self.partition),
            ("offset", &self.offset),
        ] {
            if let Some(f) = v {
                out.push((k.to_string(), f.as_str()));
            }
        }
        for (h, f) in &self.headers {
            out.push((format!("headers.{h}"), f.as_str()));
        }
        out
    }
}

/// Check a Kafka source; `base` is its key path (`streams.<name>.source`) and
/// `fields` the stream's declared field names.
pub fn validate_kafka(
    k: &KafkaSourceConfig,
    base: &str,
    fields: &[&str],
    errs: &mut Vec<ConfigError>,
) {
    validate_brokers(&k.brokers, &format!("{base}.brokers"), errs);
    if k.topics.is_empty() {
        errs.push(ConfigError::new(
            format!("{base}.topics"),
            "must name at least one topic",
        ));
    }
    for (i, t) in k.topics.iter().enumerate() {
        validate_topic(t, &format!("{base}.topics[{i}]"), errs);
    }
    if k.group.trim().is_empty() {
        errs.push(ConfigError::new(
            format!("{base}.group"),
            "must not be empty",
        ));
    }
    if let Some(ps) = &k.partitions {
        if ps.is_empty() {
            errs.push(ConfigError::new(
                format!("{base}.partitions"),
                "must list at least one partition, or be left out to follow the group",
            ));
        }
        for (i, p) in ps.iter().enumerate() {
            if *p < 0 {
                errs.push(ConfigError::new(
                    format!("{base}.partitions[{i}]"),
                    "must be 0 or more",
                ));
            }
        }
    }
    for (path, field) in k.metadata.targets() {
        if !fields.contains(&field) {
            errs.push(ConfigError::new(
                format!("{base}.metadata.{path}"),
                format!("'{field}' is not a declared field of the stream's schema"),
            ));
        }
    }
    validate_options(&k.options, base, errs);
}

pub(crate) fn validate_brokers(brokers: &str, path: &str, errs: &mut Vec<ConfigError>) {
    if brokers.trim().is_empty() {
        errs.push(ConfigError::new(
            path,
            "must name at least one broker as host:port",
        ));
        return;
    }
    for b in brokers.split(',').map(str::trim) {
        let ok = b
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            errs.push(ConfigError::new(path, format!("'{b}' is not host:port")));
        }
    }
}

pub(crate) fn validate_topic(t: &str, path: &str, errs: &mut Vec<ConfigError>) {
    let legal = !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !legal {
        errs.push(ConfigError::new(
            path,
            format!("'{t}' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)"),
        ));
    }
}

fn validate_partitions(ps: Option<&[i32]>, base: &str, errs: &mut Vec<ConfigError>) {
    if let Some(ps) = ps
        && (ps.is_empty() || ps.iter().any(|p| *p < 0))
    {
        errs.push(ConfigError::new(
            format!("{base}.partitions"),
            "must list partitions (0 or more each), or be left out to follow the group",
        ));
    }
}

fn validate_options(options: &BTreeMap<String, String>, base: &str, errs: &mut Vec<ConfigError>) {
    for key in options.keys() {
        if RESERVED_OPTIONS.contains(&key.as_str()) {
            errs.push(ConfigError::new(
                format!("{base}.options.{key}"),
                "is set by Freshet; remove it",
            ));
        }
    }
}

/// A topic a model scores: each event on `input` is scored by whatever the model's
/// router serves, and the answer goes to `output` with the event's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum BindSpec {
    Kafka(KafkaBindSpec),
    Pulsar(crate::config_pulsar::PulsarBindSpec),
}

/// Scoring a Kafka topic into another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaBindSpec {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic of events to score (one JSON object per message, the model's columns).
    pub input: String,
    /// The topic answers go to, keyed as their event.
    pub output: String,
    /// Consumer group; its committed offsets are the binding's position.
    pub group: String,
    /// Where a group without a committed offset starts (default `latest`: only new events).
    #[serde(default = "latest")]
    pub start: StartPosition,
    /// Read exactly these partitions (manual assignment) instead of the group's.
    #[serde(default)]
    pub partitions: Option<Vec<i32>>,
    /// Extra librdkafka settings for the consumer and producer.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn latest() -> StartPosition {
    StartPosition::Latest
}

/// Check a binding; `base` is its key path (`models.<name>.bind[i]`).
pub fn validate_bind(b: &BindSpec, base: &str, errs: &mut Vec<ConfigError>) {
    let k = match b {
        BindSpec::Kafka(k) => k,
        BindSpec::Pulsar(p) => return crate::config_pulsar::validate_pulsar_bind(p, base, errs),
    };
    validate_brokers(&k.brokers, &format!("{base}.brokers"), errs);
    validate_topic(&k.input, &format!("{base}.input"), errs);
    validate_topic(&k.output, &format!("{base}.output"), errs);
    if k.input == k.output {
        errs.push(ConfigError::new(
            format!("{base}.output"),
            "must differ from input (answers would be scored again)",
        ));
    }
    if k.group.trim().is_empty() {
        errs.push(ConfigError::new(
            format!("{base}.group"),
            "must not be empty",
        ));
    }
    validate_partitions(k.partitions.as_deref(), base, errs);
    validate_options(&k.options, base, errs);
}

/// A topic of labels for a model: each message is one feedback object (as in
/// `POST /v1/models/<name>/feedback`), landing in `labels/<model>` exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum FeedbackSpec {
    Kafka(KafkaFeedbackSpec),
    Pulsar(crate::config_pulsar::PulsarFeedbackSpec),
}

/// Labels from a Kafka topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaFeedbackSpec {
    pub brokers: String,
    pub topic: String,
    pub group: String,
    /// Where a partition `labels/<model>` has never seen starts (default earliest).
    #[serde(default)]
    pub start: StartPosition,
    #[serde(default)]
    pub partitions: Option<Vec<i32>>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Check a feedback topic; `base` is its key path (`models.<name>.feedback[i]`).
pub fn validate_feedback(f: &FeedbackSpec, base: &str, errs: &mut Vec<ConfigError>) {
    let k = match f {
        FeedbackSpec::Kafka(k) => k,
        FeedbackSpec::Pulsar(p) => {
            return crate::config_pulsar::validate_pulsar_feedback(p, base, errs);
        }
    };
    validate_brokers(&k.brokers, &format!("{base}.brokers"), errs);
    validate_topic(&k.topic, &format!("{base}.topic"), errs);
    if k.group.trim().is_empty() {
        errs.push(ConfigError::new(
            format!("{base}.group"),
            "must not be empty",
        ));
    }
    validate_partitions(k.partitions.as_deref(), base, errs);
    validate_options(&k.options, base, errs);
}

/// librdkafka settings Freshet owns: changing them would break exactly-once.
pub const RESERVED_OPTIONS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "partition.assignment.strategy",
    "enable.partition.eof",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> KafkaSourceConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let k = cfg("brokers: 127.0.0.1:9092\ntopics: [orders]\ngroup: g\n");
        assert_eq!(k.format, PayloadFormat::Json);
        assert_eq!(k.start, StartPosition::Earliest);
        let mut errs = Vec::new();
        validate_kafka(&k, "streams.s.source", &["x"], &mut errs);
        assert!(errs.is_empty(), "{errs:?}");

        let k = cfg(
            "brokers: 'localhost,:9092'\ntopics: ['bad topic']\ngroup: ''\npartitions: [-1]\n\
             metadata: {key: nope, headers: {trace: t}}\noptions: {group.id: x}\n",
        );
        let mut errs = Vec::new();
        validate_kafka(&k, "streams.s.source", &["t"], &mut errs);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "streams.s.source.brokers",
                "streams.s.source.brokers",
                "streams.s.source.topics[0]",
                "streams.s.source.group",
                "streams.s.source.partitions[0]",
                "streams.s.source.metadata.key",
                "streams.s.source.options.group.id",
            ]
        );
    }
}
