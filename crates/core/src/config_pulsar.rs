//! Settings of the Pulsar source (`source: { type: pulsar, ... }`): which topic, through
//! which subscription, and the checks `freshet validate` makes before anything
//! connects.

use crate::config::ConfigError;
use crate::config_connect::{KafkaMetadata, PayloadFormat, StartPosition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

/// A Pulsar topic read through a durable subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulsarSourceConfig {
    /// The broker (or any broker of the cluster), `pulsar://host:port`.
    pub url: String,
    /// `persistent://tenant/namespace/topic`, or a bare name in `public/default`.
    pub topic: String,
    /// The subscription's name. Its acknowledgements follow the table's commits; the
    /// position of record is the table's.
    pub subscription: String,
    /// `failover` (default: one node reads, the others stand by) or `exclusive`.
    #[serde(default)]
    pub subscription_type: PulsarSubscriptionType,
    #[serde(default)]
    pub format: PayloadFormat,
    /// Where a subscription that does not exist yet starts.
    #[serde(default)]
    pub start: StartPosition,
    #[serde(default)]
    pub metadata: PulsarMetadata,
    /// Larger message values go to the dead-letter table instead of the pipeline.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: NonZeroUsize,
}

fn default_max_record_bytes() -> NonZeroUsize {
    NonZeroUsize::new(1 << 20).unwrap_or(NonZeroUsize::MIN)
}

/// Subscription types. Shared and key-shared subscriptions are recognised so that
/// `freshet validate` can say why they are refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PulsarSubscriptionType {
    #[default]
    Failover,
    Exclusive,
    Shared,
    KeyShared,
}

/// Message metadata to copy into the stream's declared fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulsarMetadata {
    /// The message key (partition key), as text.
    #[serde(default)]
    pub key: Option<String>,
    /// The publish time.
    #[serde(default)]
    pub publish_time: Option<String>,
    /// The full topic name.
    #[serde(default)]
    pub topic: Option<String>,
    /// Property name -> field; the property's value as text.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl PulsarMetadata {
    /// `(key path, target field)` of every mapping.
    pub fn targets(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (k, v) in [
            ("key", &self.key),
            ("publish_time", &self.publish_time),
            ("topic", &self.topic),
        ] {
            if let Some(f) = v {
                out.push((k.to_string(), f.as_str()));
            }
        }
        for (p, f) in &self.properties {
            out.push((format!("properties.{p}"), f.as_str()));
        }
        out
    }

    /// The same mapping in the record decoder's terms (properties are its headers).
    pub fn as_record_metadata(&self) -> KafkaMetadata {
        KafkaMetadata {
            key: self.key.clone(),
            timestamp: self.publish_time.clone(),
            topic: self.topic.clone(),
            partition: None,
            offset: None,
            headers: self.properties.clone(),
        }
    }
}

impl PulsarSourceConfig {
    /// The topic's full name.
    pub fn full_topic(&self) -> String {
        full_topic(&self.topic)
    }
}

/// Check a Pulsar source; `base` is its key path (`streams.<name>.source`) and
/// `fields` the stream's declared field names.
pub fn validate_pulsar(
    p: &PulsarSourceConfig,
    base: &str,
    fields: &[&str],
    errs: &mut Vec<ConfigError>,
) {
    validate_subscription(
        &p.url,
        &p.full_topic(),
        &p.topic,
        &p.subscription,
        p.subscription_type,
        (base, "topic"),
        errs,
    );
    for (path, field) in p.metadata.targets() {
        if !fields.contains(&field) {
            errs.push(ConfigError::new(
                format!("{base}.metadata.{path}"),
                format!("'{field}' is not a declared field of the stream's schema"),
            ));
        }
    }
}

/// The checks every Pulsar subscription gets: its URL, topic, name and type; `at` is
/// the key path and the name of its topic key.
#[allow(clippy::too_many_arguments)]
fn validate_subscription(
    url: &str,
    full: &str,
    topic: &str,
    subscription: &str,
    sub_type: PulsarSubscriptionType,
    at: (&str, &str),
    errs: &mut Vec<ConfigError>,
) {
    let (base, topic_key) = at;
    validate_url(url, &format!("{base}.url"), errs);
    validate_topic(full, topic, &format!("{base}.{topic_key}"), errs);
    if subscription.trim().is_empty() {
        errs.push(ConfigError::new(
            format!("{base}.subscription"),
            "must not be empty",
        ));
    }
    if matches!(
        sub_type,
        PulsarSubscriptionType::Shared | PulsarSubscriptionType::KeyShared
    ) {
        errs.push(ConfigError::new(
            format!("{base}.subscription_type"),
            "shared and key_shared subscriptions hand a topic's messages to several consumers \
             out of order, and Freshet keeps one position per topic and acknowledges \
             cumulatively: use failover (the default; other nodes stand by) or exclusive",
        ));
    }
}

/// Labels for a model from a Pulsar topic: each message one feedback object (as
/// `POST /v1/models/<name>/feedback` takes), landing in `labels/<model>` exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulsarFeedbackSpec {
    pub url: String,
    pub topic: String,
    pub subscription: String,
    #[serde(default)]
    pub subscription_type: PulsarSubscriptionType,
    /// Where a subscription that does not exist yet starts (default earliest).
    #[serde(default)]
    pub start: StartPosition,
}

impl PulsarFeedbackSpec {
    /// The topic's full name.
    pub fn full_topic(&self) -> String {
        full_topic(&self.topic)
    }
}

/// Check a feedback topic; `base` is its key path (`models.<name>.feedback[i]`).
pub fn validate_pulsar_feedback(f: &PulsarFeedbackSpec, base: &str, errs: &mut Vec<ConfigError>) {
    validate_subscription(
        &f.url,
        &f.full_topic(),
        &f.topic,
        &f.subscription,
        f.subscription_type,
        (base, "topic"),
        errs,
    );
}

/// Check a `pulsar://host:port` URL at key path `path`.
fn validate_url(url: &str, path: &str, errs: &mut Vec<ConfigError>) {
    let url_ok = url.strip_prefix("pulsar://").is_some_and(|rest| {
        rest.trim_end_matches('/')
            .rsplit_once(':')
            .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok_and(|n| n > 0))
    });
    if url.contains('@') {
        // The URL is shown in /readyz and logs; credentials in it would be too.
        errs.push(ConfigError::new(
            path,
            "must not carry credentials (user:password@); Freshet does not authenticate to \
             Pulsar yet",
        ));
    } else if url.starts_with("pulsar+ssl://") {
        errs.push(ConfigError::new(
            path,
            "TLS to Pulsar (pulsar+ssl://) is not supported yet; use pulsar://host:port",
        ));
    } else if !url_ok {
        errs.push(ConfigError::new(path, "must be pulsar://host:port"));
    }
}

/// Check a topic name (`topic` as written, `full` as resolved) at key path `path`.
fn validate_topic(full: &str, topic: &str, path: &str, errs: &mut Vec<ConfigError>) {
    let legal = full.strip_prefix("persistent://").is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('/').collect();
        parts.len() == 3
            && parts.iter().all(|s| {
                !s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '=' | ':')
                    })
            })
    });
    if full.starts_with("non-persistent://") {
        errs.push(ConfigError::new(
            path,
            "a non-persistent topic keeps nothing for a consumer that is away (no position, \
             no backlog); use a persistent one",
        ));
    } else if !legal {
        errs.push(ConfigError::new(
            path,
            format!(
                "'{topic}' is not a topic name (persistent://tenant/namespace/topic or a bare name)"
            ),
        ));
    }
}

/// A model bound to Pulsar topics: each event on `input` is scored by whatever the
/// model's router serves and the answer is published to `output` with the event's key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulsarBindSpec {
    pub url: String,
    /// The topic of events to score (one JSON object per message, the model's columns).
    pub input: String,
    /// The topic answers go to, keyed as their event.
    pub output: String,
    /// The subscription on `input`; what it acknowledged is the binding's position.
    pub subscription: String,
    #[serde(default)]
    pub subscription_type: PulsarSubscriptionType,
    /// Where a subscription that does not exist yet starts (default `latest`: only new
    /// events).
    #[serde(default = "latest")]
    pub start: StartPosition,
}

fn latest() -> StartPosition {
    StartPosition::Latest
}

impl PulsarBindSpec {
    pub fn full_input(&self) -> String {
        full_topic(&self.input)
    }
    pub fn full_output(&self) -> String {
        full_topic(&self.output)
    }
}

/// Check a binding; `base` is its key path (`models.<name>.bind[i]`).
pub fn validate_pulsar_bind(b: &PulsarBindSpec, base: &str, errs: &mut Vec<ConfigError>) {
    validate_subscription(
        &b.url,
        &b.full_input(),
        &b.input,
        &b.subscription,
        b.subscription_type,
        (base, "input"),
        errs,
    );
    validate_topic(&b.full_output(), &b.output, &format!("{base}.output"), errs);
    if b.full_input() == b.full_output() {
        errs.push(ConfigError::new(
            format!("{base}.output"),
            "must differ from input (answers would be scored again)",
        ));
    }
}

/// Check a Pulsar prediction sink; `base` is its key path (`models.<name>.sinks[i]`).
pub fn validate_pulsar_sink(url: &str, topic: &str, base: &str, errs: &mut Vec<ConfigError>) {
    validate_url(url, &format!("{base}.url"), errs);
    validate_topic(&full_topic(topic), topic, &format!("{base}.topic"), errs);
}

/// A topic's full name (`persistent://public/default/<t>` for a bare name).
pub fn full_topic(topic: &str) -> String {
    if topic.contains("://") {
        topic.to_string()
    } else {
        format!("persistent://public/default/{topic}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> PulsarSourceConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_and_errors_name_the_key() {
        let p = cfg("url: pulsar://127.0.0.1:6650\ntopic: orders\nsubscription: s\n");
        assert_eq!(p.subscription_type, PulsarSubscriptionType::Failover);
        assert_eq!(p.full_topic(), "persistent://public/default/orders");
        let mut errs = Vec::new();
        validate_pulsar(&p, "streams.s.source", &["x"], &mut errs);
        assert!(errs.is_empty(), "{errs:?}");

        let p = cfg(
            "url: 'pulsar+ssl://b:6651'\ntopic: 'persistent://a/b'\nsubscription: ' '\n\
             subscription_type: shared\nmetadata: {key: nope, properties: {trace: t}}\n",
        );
        let mut errs = Vec::new();
        validate_pulsar(&p, "streams.s.source", &["t"], &mut errs);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "streams.s.source.url",
                "streams.s.source.topic",
                "streams.s.source.subscription",
                "streams.s.source.subscription_type",
                "streams.s.source.metadata.key",
            ]
        );
        let p = cfg("url: 'pulsar://u:secret@b:6650'\ntopic: t\nsubscription: s\n");
        let mut errs = Vec::new();
        validate_pulsar(&p, "s", &[], &mut errs);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("credentials"), "{errs:?}");
        assert!(!errs[0].to_string().contains("secret"), "{errs:?}");
        let p = cfg("url: 'b:6650'\ntopic: 'non-persistent://public/default/t'\nsubscription: s\n");
        let mut errs = Vec::new();
        validate_pulsar(&p, "s", &[], &mut errs);
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(msgs[0].contains("pulsar://host:port"), "{msgs:?}");
        assert!(msgs[1].contains("non-persistent"), "{msgs:?}");
    }

    #[test]
    fn a_binding_and_a_sink_name_their_keys() {
        let b: PulsarBindSpec = serde_yaml_ng::from_str(
            "url: pulsar://127.0.0.1:6650\ninput: events\noutput: answers\nsubscription: s\n",
        )
        .unwrap();
        assert_eq!(b.start, StartPosition::Latest);
        assert_eq!(b.full_output(), "persistent://public/default/answers");
        let mut errs = Vec::new();
        validate_pulsar_bind(&b, "models.m.bind[0]", &mut errs);
        assert!(errs.is_empty(), "{errs:?}");

        let b: PulsarBindSpec = serde_yaml_ng::from_str(
            "url: pulsar://b:6650\ninput: 'bad/name'\noutput: 'persistent://public/default/events'\n\
             subscription: s\nsubscription_type: key_shared\n",
        )
        .unwrap();
        let mut errs = Vec::new();
        validate_pulsar_bind(&b, "b", &mut errs);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["b.input", "b.subscription_type"]);
        let b = PulsarBindSpec {
            input: "events".into(),
            ..b
        };
        let mut errs = Vec::new();
        validate_pulsar_bind(&b, "b", &mut errs);
        assert!(
            errs.iter()
                .any(|e| e.path == "b.output" && e.message.contains("differ")),
            "{errs:?}"
        );

        let mut errs = Vec::new();
        validate_pulsar_sink("http://b:80", "", "models.m.sinks[1]", &mut errs);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["models.m.sinks[1].url", "models.m.sinks[1].topic"]);
    }
}
