//! The bridge between ingest and the lake: commits a group of submissions to a stream's
//! `dlq/<stream>` and `events/<stream>` tables, each commit carrying the groups' Delta
//! transactions, and skipping any submission a table already holds; then pushes the
//! committed dead letters to the stream's dead-letter sinks.

use freshet_core::system_columns as sys;
use freshet_core::{Field, FieldType, Schema, Value, clock::micros_to_epoch_days};
use freshet_ingest::sink::{CommitReceipt, DeadLetter, Submission, TableSink};
use freshet_lake::{RowBatchBuilder, Table, Txn};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A stream's two tables, and the sinks its dead letters are pushed to once committed.
#[derive(Debug, Clone)]
pub struct StreamTables {
    pub events: Arc<Table>,
    pub dlq: Arc<Table>,
    pub events_schema: Schema,
    pub dlq_schema: Schema,
    pub user_columns: usize,
    pub dead_letter_sinks: Arc<Vec<freshet_serve::sinks::Sink>>,
}

/// One dead letter as a sink line.
#[derive(serde::Serialize)]
struct DeadLine<'a> {
    stream: &'a str,
    event_id: &'a str,
    source: &'a str,
    position: i64,
    ingested_at_micros: i64,
    stage: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    reason: &'a str,
    payload: &'a str,
}

/// Columns of `events/<stream>`: the pipeline's output, then the system columns.
pub fn events_schema(output: &Schema) -> Schema {
    let mut fields: Vec<Field> = output.fields().to_vec();
    fields.extend(system_fields());
    Schema::new(fields)
}

fn system_fields() -> [Field; 5] {
    [
        Field::new(sys::EVENT_ID, FieldType::String),
        Field::new(sys::INGESTED_AT, FieldType::Timestamp),
        Field::new(sys::SOURCE, FieldType::String),
        Field::new(sys::POSITION, FieldType::Int),
        Field::new(sys::INGEST_DATE, FieldType::Date),
    ]
}

/// Columns of `dlq/<stream>`.
pub fn dlq_schema() -> Schema {
    let mut fields = vec![
        Field::new("stage", FieldType::String),
        Field::new("field", FieldType::String),
        Field::new("reason", FieldType::String),
        Field::new("payload", FieldType::String),
    ];
    fields.extend(system_fields());
    Schema::new(fields)
}

/// The [`TableSink`] over Delta tables.
#[derive(Debug, Default)]
pub struct LakeSink {
    streams: HashMap<String, StreamTables>,
}

impl LakeSink {
    pub fn new(streams: HashMap<String, StreamTables>) -> Self {
        Self { streams }
    }

    pub fn tables(&self) -> impl Iterator<Item = (&String, &StreamTables)> {
        self.streams.iter()
    }

    fn get(&self, stream: &str) -> Result<&StreamTables, String> {
        self.streams
            .get(stream)
            .ok_or_else(|| format!("no tables for stream '{stream}'"))
    }
}

/// Which submissions a table still needs, and the transactions to record with them.
/// With `check_gaps` (the events table, which records every chunk's position), a chunk
/// that does not follow on from the table's position for its source is refused: its
/// predecessor failed to commit, and committing it would make a restart skip the gap.
/// Each taken submission comes with the position its source had in the table before it
/// (-1 for none, or without a transaction).
async fn pending<'a>(
    table: &Table,
    group: &'a [Submission],
    has_data: impl Fn(&Submission) -> bool,
    check_gaps: bool,
) -> Result<(Vec<(&'a Submission, i64)>, Vec<Txn>, usize), String> {
    let mut take = Vec::new();
    let mut txns: BTreeMap<String, i64> = BTreeMap::new();
    let mut skipped = 0;
    for s in group {
        let mut floor = -1;
        if let Some(t) = &s.txn {
            // The position reached so far: taken earlier in this very group (consecutive
            // chunks, or a retry that arrived while its first attempt waited), or committed.
            let current = match txns.get(&t.app_id) {
                Some(v) => *v,
                None => table
                    .txn_version(&t.app_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .unwrap_or(-1),
            };
            if current >= t.version {
                skipped += 1;
                continue;
            }
            if let (true, Some(after)) = (check_gaps, t.after)
                && after != current
            {
                return Err(format!(
                    "source {} would commit from position {after} but the table is at {current}; \
                     an earlier chunk failed, so the source must resume from the table",
                    t.app_id
                ));
            }
            floor = current;
            let v = txns.entry(t.app_id.clone()).or_insert(t.version);
            *v = (*v).max(t.version);
        }
        if has_data(s) || s.txn.is_some() {
            take.push((s, floor));
        }
    }
    let txns = txns
        .into_iter()
        .map(|(app_id, version)| Txn { app_id, version })
        .collect();
    Ok((take, txns, skipped))
}

fn push_system(b: &mut RowBatchBuilder, at: usize, s: &Submission, position: i64, id: &mut String) {
    s.event_id_into(position, id);
    b.push_str(at, id);
    b.push(at + 1, &Value::Timestamp(s.ingested_at));
    b.push_str(at + 2, &s.source);
    b.push(at + 3, &Value::Int(position));
    b.push(at + 4, &Value::Date(micros_to_epoch_days(s.ingested_at)));
}

impl TableSink for LakeSink {
    fn commit<'a>(
        &'a self,
        stream: &'a str,
        group: &'a [Submission],
    ) -> BoxFuture<'a, Result<CommitReceipt, String>> {
        async move {
            let t = self.get(stream)?;
            let mut receipt = CommitReceipt::default();

            // Dead letters first: if we crash between the two commits, the retry finds
            // the dead-letter transaction and writes only the events.
            let (dead_subs, dead_txns, _) =
                pending(&t.dlq, group, |s| !s.dead.is_empty(), false).await?;
            // A submission the dead-letter table partly holds (its source resubmitted
            // with other boundaries after a crash between the two commits) brings
            // only the dead letters past that position.
            fn fresh(s: &Submission, floor: i64) -> impl Iterator<Item = &DeadLetter> {
                s.dead
                    .iter()
                    .filter(move |d| d.order > floor || s.txn.is_none())
            }
            let dead_count: usize = dead_subs.iter().map(|(s, f)| fresh(s, *f).count()).sum();
            if dead_count > 0 {
                let mut b = RowBatchBuilder::new(&t.dlq_schema, dead_count);
                let mut id = String::new();
                // The sinks' lines, pushed once the commit holds them.
                let mut lines = Vec::new();
                for (s, floor) in &dead_subs {
                    for d in fresh(s, *floor) {
                        let r = &d.rejection;
                        b.push_str(0, r.stage.as_str());
                        b.push(1, &r.field.clone().map_or(Value::Null, Value::Str));
                        b.push_str(2, &r.reason);
                        b.push_str(3, &r.payload);
                        push_system(&mut b, 4, s, d.meta.position, &mut id);
                        b.end_row();
                        if !t.dead_letter_sinks.is_empty() {
                            let line = DeadLine {
                                stream,
                                event_id: &id,
                                source: &s.source,
                                position: d.meta.position,
                                ingested_at_micros: s.ingested_at,
                                stage: r.stage.as_str(),
                                field: r.field.as_deref(),
                                reason: &r.reason,
                                payload: &r.payload,
                            };
                            if serde_json::to_writer(&mut lines, &line).is_ok() {
                                lines.push(b'\n');
                            }
                        }
                    }
                }
                let batch = b.finish().map_err(|e| e.to_string())?;
                t.dlq
                    .append(batch, &dead_txns)
                    .await
                    .map_err(|e| e.to_string())?;
                receipt.dead_written = dead_count;
                if !lines.is_empty() {
                    let lines = Arc::new(lines);
                    for sink in t.dead_letter_sinks.iter() {
                        sink.offer(lines.clone(), dead_count as u64);
                    }
                }
            }

            let (subs, txns, skipped) =
                pending(&t.events, group, |s| !s.rows.is_empty(), true).await?;
            receipt.replays_skipped = skipped;
            let rows: usize = subs.iter().map(|(s, _)| s.rows.len()).sum();
            if rows == 0 && txns.is_empty() {
                return Ok(receipt);
            }
            let mut b = RowBatchBuilder::new(&t.events_schema, rows);
            let mut id = String::new();
            let n = t.user_columns;
            for (s, _) in &subs {
                for (row, meta) in s.rows.iter().zip(&s.meta) {
                    for (i, v) in row.iter().enumerate().take(n) {
                        b.push(i, v);
                    }
                    push_system(&mut b, n, s, meta.position, &mut id);
                    b.end_row();
                }
            }
            let batch = b.finish().map_err(|e| e.to_string())?;
            let version = t
                .events
                .append(batch, &txns)
                .await
                .map_err(|e| e.to_string())?;
            receipt.version = Some(version);
            receipt.rows_written = rows;
            Ok(receipt)
        }
        .boxed()
    }

    fn txn_version<'a>(
        &'a self,
        stream: &'a str,
        app_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, String>> {
        async move {
            self.get(stream)?
                .events
                .txn_version(app_id)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_ingest::sink::{RowMeta, Txn as SourceTxn};
    use freshet_lake::{Lake, TableKind, TableOptions};

    async fn sink(dir: &std::path::Path) -> (LakeSink, Arc<Table>) {
        let lake = Lake::new(dir.to_str().unwrap()).unwrap();
        let output = Schema::new(vec![Field::new("x", FieldType::Int)]);
        let schema = events_schema(&output);
        let opts = TableOptions::default();
        let events = Arc::new(
            Table::open_or_create(
                lake.url_for(TableKind::Events, "s").unwrap(),
                &schema,
                &opts,
            )
            .await
            .unwrap(),
        );
        let dlq = Arc::new(
            Table::open_or_create(
                lake.url_for(TableKind::DeadLetter, "s").unwrap(),
                &dlq_schema(),
                &opts,
            )
            .await
            .unwrap(),
        );
        let tables = StreamTables {
            events: events.clone(),
            dlq,
            events_schema: schema,
            dlq_schema: dlq_schema(),
            user_columns: 1,
            dead_letter_sinks: Arc::default(),
        };
        (
            LakeSink::new(HashMap::from([("s".to_string(), tables)])),
            events,
        )
    }

    fn chunk(after: i64, version: i64) -> Submission {
        Submission {
            rows: vec![vec![Value::Int(version)]],
            meta: vec![RowMeta {
                position: after + 1,
            }],
            source: "file:x".into(),
            id_prefix: "f".into(),
            txn: Some(SourceTxn {
                app_id: "file:x".into(),
                version,
                after: Some(after),
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_chunk_after_a_failed_one_is_refused_not_committed_past_the_gap() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, events) = sink(dir.path()).await;
        // Consecutive chunks in one group follow on from each other.
        sink.commit("s", &[chunk(-1, 100), chunk(100, 200)])
            .await
            .unwrap();
        // The chunk ending at 300 was lost (its commit failed); the next one is refused.
        let err = sink.commit("s", &[chunk(300, 400)]).await.unwrap_err();
        assert!(err.contains("earlier chunk failed"), "{err}");
        assert_eq!(events.txn_version("file:x").await.unwrap(), Some(200));
        assert_eq!(events.info(None).await.unwrap().rows, 2);
        // Resumed from the table, the source goes on; a replay of a committed chunk is skipped.
        sink.commit("s", &[chunk(200, 300), chunk(300, 400)])
            .await
            .unwrap();
        let r = sink.commit("s", &[chunk(100, 200)]).await.unwrap();
        assert_eq!((r.rows_written, r.replays_skipped), (0, 1));
        assert_eq!(events.info(None).await.unwrap().rows, 4);
    }

    fn with_dead(mut s: Submission, orders: &[i64]) -> Submission {
        s.dead = orders
            .iter()
            .map(|&order| DeadLetter {
                rejection: freshet_ingest::pipeline::Rejection {
                    index: 0,
                    stage: freshet_ingest::pipeline::Stage::Validate,
                    field: None,
                    reason: "bad".into(),
                    payload: "{}".into(),
                },
                meta: RowMeta { position: order },
                order,
            })
            .collect();
        s
    }

    #[tokio::test]
    async fn dead_letters_an_earlier_attempt_wrote_are_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, events) = sink(dir.path()).await;
        sink.commit("s", &[chunk(-1, 5)]).await.unwrap();
        // An attempt whose dead letters commit but whose events do not (here: refused
        // by the gap check, as a crash between the two commits would leave it).
        let err = sink
            .commit("s", &[with_dead(chunk(7, 30), &[10, 20, 30])])
            .await
            .unwrap_err();
        assert!(err.contains("earlier chunk failed"), "{err}");
        // The source resumes from the events table with other boundaries: only the dead
        // letter past what the dead-letter table holds is new.
        let r = sink
            .commit("s", &[with_dead(chunk(5, 40), &[10, 20, 30, 40])])
            .await
            .unwrap();
        assert_eq!((r.dead_written, r.rows_written), (1, 1));
        assert_eq!(events.txn_version("file:x").await.unwrap(), Some(40));
        let dlq = sink.get("s").unwrap().dlq.clone();
        assert_eq!(dlq.info(None).await.unwrap().rows, 4);
    }
}
