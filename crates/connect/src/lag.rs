//! How far a connector stream's table is behind its source, measured on demand (for
//! `freshet tables`): per Kafka partition, the records between the table's position and
//! the partition's high watermark; per Postgres slot, the WAL written since the table's
//! position.

use crate::ConnectError;
use freshet_core::config::SourceConfig;
use freshet_lake::Table;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

/// One place a source reads from, and how far behind the table is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLag {
    /// `topic/partition`, or `slot <name>`.
    pub place: String,
    /// Records (Kafka) or WAL bytes (Postgres) the table does not hold yet.
    pub behind: u64,
    pub unit: &'static str,
}

const TIMEOUT: Duration = Duration::from_secs(5);

/// The lag of a connector stream whose event table is `events`; `None` for sources
/// that have no position to be behind (HTTP, files, generators).
pub async fn source_lag(
    source: &SourceConfig,
    events: &Table,
) -> Option<Result<Vec<SourceLag>, ConnectError>> {
    match source {
        SourceConfig::Kafka(k) => Some(kafka_lag(k, events).await),
        SourceConfig::PostgresCdc(p) => Some(cdc_lag(p, events).await),
        _ => None,
    }
}

async fn kafka_lag(
    k: &freshet_core::config_connect::KafkaSourceConfig,
    events: &Table,
) -> Result<Vec<SourceLag>, ConnectError> {
    let cfg = k.clone();
    // Watermarks: a short-lived consumer that never joins the group.
    let marks = tokio::task::spawn_blocking(
        move || -> Result<Vec<(String, i32, i64, i64)>, ConnectError> {
            // The source's own settings (security options included), in a group of its own.
            let mut c = crate::kafka::client_config(&cfg);
            c.set("group.id", format!("{}-lag", cfg.group));
            c.set_log_level(rdkafka::config::RDKafkaLogLevel::Emerg);
            let consumer: BaseConsumer = c.create()?;
            let mut out = Vec::new();
            for topic in &cfg.topics {
                let md = consumer
                    .fetch_metadata(Some(topic), TIMEOUT)
                    .map_err(|e| ConnectError::Kafka(format!("kafka brokers unreachable: {e}")))?;
                for t in md.topics() {
                    for p in t.partitions() {
                        if cfg
                            .partitions
                            .as_ref()
                            .is_some_and(|ps| !ps.contains(&p.id()))
                        {
                            continue;
                        }
                        let (low, high) = consumer.fetch_watermarks(topic, p.id(), TIMEOUT)?;
                        out.push((topic.clone(), p.id(), low, high));
                    }
                }
            }
            Ok(out)
        },
    )
    .await
    .map_err(|e| ConnectError::Task(e.to_string()))??;
    let mut out = Vec::with_capacity(marks.len());
    for (topic, partition, low, high) in marks {
        let app_id = crate::kafka::partition_app_id(&topic, partition);
        let next = events
            .txn_version(&app_id)
            .await
            .map_err(|e| ConnectError::Kafka(format!("cannot read the position of {app_id}: {e}")))?
            .map_or(low, |p| p + 1);
        out.push(SourceLag {
            place: format!("{topic}/{partition}"),
            behind: (high - next.max(low)).max(0) as u64,
            unit: "records",
        });
    }
    Ok(out)
}

async fn cdc_lag(
    p: &freshet_core::config_cdc::PostgresCdcSourceConfig,
    events: &Table,
) -> Result<Vec<SourceLag>, ConnectError> {
    let app_id = crate::pgcdc::slot_app_id(&p.slot);
    let position = events.txn_version(&app_id).await.map_err(|e| {
        ConnectError::Postgres(format!("cannot read the position of {app_id}: {e}"))
    })?;
    let now = crate::pgcdc::current_wal_lsn(p).await?;
    Ok(vec![SourceLag {
        place: format!("slot {}", p.slot),
        // A table without a position has not taken its snapshot: all of it is behind.
        behind: now.saturating_sub(position.map_or(0, |v| v.max(0) as u64)),
        unit: "WAL bytes",
    }])
}
