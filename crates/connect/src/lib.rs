//! Connectors: the streams Freshet's users already run, as sources of the ingest
//! pipeline.
//!
//! This room holds the Postgres change-data-capture source ([`pgcdc`]): a consistent
//! snapshot, then every row change through a logical replication slot that advances
//! only after the Delta commit holding its changes; and the Kafka source ([`kafka`]): a consumer per stream whose every
//! partition's position is a Delta `txn` written in the same commit as its rows, so a
//! crash, a restart or a rebalance neither loses nor duplicates a record; and topic
//! bindings ([`kafka::bind`]): events on a topic scored by a model's router and
//! answered on another topic; and feedback topics ([`kafka::feedback`]): labels into
//! `labels/<model>`, exactly once; and the Pulsar source ([`pulsar`]): a failover
//! subscription whose messages are acknowledged only after the Delta commit that holds
//! them, its position a `txn` of that commit, over Freshet's own client of the Pulsar
//! protocol, whose producer also carries Pulsar bindings ([`pulsar::bind`]) and
//! prediction sinks ([`pulsar::sink`], beside [`kafka::sink`]). It reaches the lake only through `freshet-ingest`
//! (the [`freshet_ingest::IngestService`] and its sink) and `freshet-serve`'s label
//! tables, scores only through `freshet-serve`'s `Scorer`, and reports broker and database
//! reachability to [`freshet_ingest::health`]. The client libraries (rdkafka with a
//! bundled librdkafka, tokio-postgres, prost for Pulsar's commands) stay in this crate.

pub mod error;
pub mod kafka;
pub mod lag;
pub mod pgcdc;
mod prediction;
pub mod pulsar;

pub use error::ConnectError;
