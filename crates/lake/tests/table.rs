//! The lake's contract, through its public API: exactly-once append, time travel,
//! compaction that keeps every row, vacuum, history.

use freshet_core::{Field, FieldType, Schema, Value};
use freshet_lake::{Lake, RowBatchBuilder, Table, TableOptions, Txn};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("id", FieldType::Int),
        Field::new("name", FieldType::String),
        Field::new("at", FieldType::Timestamp),
        Field::new("day", FieldType::Date),
    ])
}

fn batch(
    schema: &Schema,
    ids: std::ops::Range<i64>,
    day: i32,
) -> freshet_lake::arrow::record_batch::RecordBatch {
    let mut b = RowBatchBuilder::new(schema, ids.clone().count());
    for i in ids {
        b.push(0, &Value::Int(i));
        b.push_str(1, &format!("n{i}"));
        b.push(2, &Value::Timestamp(i * 1_000_000));
        b.push(3, &Value::Date(day));
        b.end_row();
    }
    b.finish().unwrap()
}

async fn table(dir: &std::path::Path, name: &str) -> (Table, Schema) {
    let lake = Lake::new(dir.to_str().unwrap()).unwrap();
    let s = schema();
    let opts = TableOptions {
        partition_by: vec!["day".into()],
        ..Default::default()
    };
    (
        Table::open_or_create(lake.table_url(name).unwrap(), &s, &opts)
            .await
            .unwrap(),
        s,
    )
}

fn ids(batches: &[freshet_lake::arrow::record_batch::RecordBatch]) -> Vec<i64> {
    let mut out = ids_in_order(batches);
    out.sort_unstable();
    out
}

#[tokio::test]
async fn transactions_survive_reopen_and_time_travel_works() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = table(dir.path(), "events/a").await;
    let v1 = t
        .append(
            batch(&s, 0..10, 20000),
            &[Txn {
                app_id: "file:x".into(),
                version: 100,
            }],
        )
        .await
        .unwrap();
    let v2 = t
        .append(
            batch(&s, 10..25, 20001),
            &[Txn {
                app_id: "file:x".into(),
                version: 250,
            }],
        )
        .await
        .unwrap();
    assert_eq!(v2, v1 + 1);
    drop(t);

    // A fresh handle (as after a restart) reads the positions back from the log.
    let (t, _) = table(dir.path(), "events/a").await;
    assert_eq!(t.txn_version("file:x").await.unwrap(), Some(250));
    assert_eq!(t.txn_version("file:other").await.unwrap(), None);
    assert_eq!(t.info(None).await.unwrap().rows, 25);
    assert_eq!(t.info(Some(v1)).await.unwrap().rows, 10);
    assert_eq!(
        ids(&t.read(Some(v1)).await.unwrap()),
        (0..10).collect::<Vec<_>>()
    );
    assert!(
        t.info(Some(99)).await.is_err(),
        "a version that does not exist is an error"
    );

    // Partition values come back typed.
    let rows = t.head(None, 100).await.unwrap();
    assert!(
        rows.iter().any(|r| r["day"] == "2024-10-04"),
        "{:?}",
        rows.first()
    );
    let history = t.history(None).await.unwrap();
    assert_eq!(history[0].version, v2);
    assert!(history.iter().any(|c| c.operation == "WRITE"));
}

#[tokio::test]
async fn compaction_keeps_every_row_and_vacuum_removes_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = table(dir.path(), "events/b").await;
    for k in 0..6 {
        t.append(batch(&s, k * 5..k * 5 + 5, 20000 + (k % 2) as i32), &[])
            .await
            .unwrap();
    }
    let before = t.info(None).await.unwrap();
    assert_eq!(before.files, 6);
    let m = t.compact(1 << 30, 3).await.unwrap();
    assert_eq!(m.partitions_compacted, 2);
    assert_eq!(m.files_removed, 6);
    let after = t.info(None).await.unwrap();
    assert_eq!(after.rows, 30);
    assert_eq!(after.files, 2);
    assert_eq!(
        ids(&t.read(None).await.unwrap()),
        (0..30).collect::<Vec<_>>()
    );
    // Nothing to do the second time.
    assert_eq!(t.compact(1 << 30, 3).await.unwrap().files_removed, 0);
    // The old version still reads the same rows until vacuum deletes its files.
    assert_eq!(ids(&t.read(Some(before.version)).await.unwrap()).len(), 30);
    let v = t.vacuum(0).await.unwrap();
    assert_eq!(v.files_deleted, 6);
    assert_eq!(ids(&t.read(None).await.unwrap()).len(), 30);
    t.checkpoint().await.unwrap();
    assert!(
        dir.path()
            .join("events/b/_delta_log/_last_checkpoint")
            .exists()
    );
}

#[tokio::test]
async fn reopening_with_a_different_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_t, _) = table(dir.path(), "events/c").await;
    let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
    let other = Schema::new(vec![Field::new("id", FieldType::String)]);
    let err = Table::open_or_create(
        lake.table_url("events/c").unwrap(),
        &other,
        &TableOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("'id'"), "{err}");
}

#[tokio::test]
async fn rows_read_back_as_the_values_written_at_a_pinned_version() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = table(dir.path(), "events/rows").await;
    let v1 = t.append(batch(&s, 0..3, 19_000), &[]).await.unwrap();
    t.append(batch(&s, 3..5, 19_001), &[]).await.unwrap();
    let mut rows = t.read_rows(Some(v1), &s).await.unwrap();
    rows.sort_by_key(|r| match r[0] {
        Value::Int(i) => i,
        _ => -1,
    });
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2],
        vec![
            Value::Int(2),
            Value::Str("n2".into()),
            Value::Timestamp(2_000_000),
            Value::Date(19_000)
        ]
    );
    // A schema field the table never had reads as null instead of failing.
    let mut wider = s.fields().to_vec();
    wider.push(Field::new("added_later", FieldType::Float));
    let wide = Schema::new(wider);
    let all = t.read_rows(None, &wide).await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|r| r[4] == Value::Null));
}

#[tokio::test]
async fn read_since_returns_only_the_rows_added_after_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = table(dir.path(), "labels/since").await;
    let v1 = t.append(batch(&s, 0..3, 19_000), &[]).await.unwrap();
    let v2 = t.append(batch(&s, 3..5, 19_000), &[]).await.unwrap();
    let (all, upto) = t.read_since(None, None).await.unwrap();
    assert_eq!(
        (all.iter().map(|b| b.num_rows()).sum::<usize>(), upto),
        (5, v2)
    );
    let (new, upto) = t.read_since(Some(v1), None).await.unwrap();
    assert_eq!(
        (new.iter().map(|b| b.num_rows()).sum::<usize>(), upto),
        (2, v2)
    );
    let (none, _) = t.read_since(Some(v2), Some(v2)).await.unwrap();
    assert!(none.is_empty());
}

/// Ids in the order read (not sorted).
fn ids_in_order(batches: &[freshet_lake::arrow::record_batch::RecordBatch]) -> Vec<i64> {
    use freshet_lake::arrow::array::{Array, Int64Array};
    let mut out = Vec::new();
    for b in batches {
        let col = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        out.extend((0..col.len()).map(|i| col.value(i)));
    }
    out
}

#[tokio::test]
async fn appended_rows_are_read_once_in_commit_order_even_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = table(dir.path(), "events/appended").await;
    let mut versions = Vec::new();
    for k in 0..4 {
        versions.push(
            t.append(batch(&s, k * 5..k * 5 + 5, 20000 + (k % 2) as i32), &[])
                .await
                .unwrap(),
        );
    }
    // A reader that read through the second commit, then compaction rewrites it all.
    let (first, upto) = t.read_appended(None, Some(versions[1])).await.unwrap();
    assert_eq!(ids_in_order(&first), (0..10).collect::<Vec<_>>());
    assert_eq!(upto, versions[1]);
    assert_eq!(t.compact(1 << 30, 2).await.unwrap().files_removed, 4);
    t.append(batch(&s, 20..25, 20000), &[]).await.unwrap();
    // The reader goes on: the rest once, in commit order; the compacted files (which
    // hold rows it already read) are not read again.
    let (rest, _) = t.read_appended(Some(upto), None).await.unwrap();
    assert_eq!(ids_in_order(&rest), (10..25).collect::<Vec<_>>());
    // Snapshot-based incremental reads would read the rewritten rows again.
    let (again, _) = t.read_since(Some(upto), None).await.unwrap();
    assert!(ids_in_order(&again).len() > 15);
    // From the start, every row once.
    let (all, _) = t.read_appended(None, None).await.unwrap();
    assert_eq!(ids_in_order(&all), (0..25).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_scan_reads_named_columns_of_the_kept_partitions_only() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = table(dir.path(), "inference/m").await;
    let v1 = t.append(batch(&s, 0..10, 20000), &[]).await.unwrap();
    t.append(batch(&s, 10..25, 20001), &[]).await.unwrap();

    let all = t.scan(None, &["id", "day"], |_| true).await.unwrap();
    assert_eq!(ids(&all).len(), 25);
    let names: Vec<String> = all[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        ["id", "day"],
        "only the named columns, in that order"
    );

    // Partition pruning: the second day only (the log keeps the date as text).
    let second = t
        .scan(None, &["id"], |p| {
            p.get("day").and_then(|d| d.as_deref()) == Some("2024-10-05")
        })
        .await
        .unwrap();
    assert_eq!(ids(&second), (10..25).collect::<Vec<_>>());
    // Time travel holds for scans too.
    assert_eq!(
        ids(&t.scan(Some(v1), &["id"], |_| true).await.unwrap()).len(),
        10
    );
    let err = t.scan(None, &["nope"], |_| true).await.unwrap_err();
    assert!(err.to_string().contains("no column named nope"), "{err}");
}

#[tokio::test]
async fn a_window_read_keeps_the_newest_rows_after_a_skip_in_rank_order() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = table(dir.path(), "events/window").await;
    // Files written out of rank order, across two partitions.
    t.append(batch(&s, 10..20, 19_000), &[]).await.unwrap();
    let v2 = t.append(batch(&s, 0..10, 19_001), &[]).await.unwrap();
    t.append(batch(&s, 20..30, 19_001), &[]).await.unwrap();
    let id_list = |rows: Vec<Vec<Value>>| -> Vec<i64> {
        rows.iter()
            .map(|r| match r[0] {
                Value::Int(i) => i,
                _ => -1,
            })
            .collect()
    };
    let window = |version, order, skip, keep| {
        let (t, s) = (&t, &s);
        async move {
            id_list(
                t.read_rows_window(version, s, order, skip, keep)
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(
        window(None, ["at", "id"], 0, 5).await,
        (25..30).collect::<Vec<_>>()
    );
    assert_eq!(
        window(None, ["at", "id"], 12, 100).await,
        (12..30).collect::<Vec<_>>()
    );
    assert_eq!(
        window(None, ["at", "id"], 0, 1000).await,
        (0..30).collect::<Vec<_>>()
    );
    assert_eq!(window(None, ["at", "id"], 28, 5).await, vec![28, 29]);
    assert!(window(None, ["at", "id"], 30, 5).await.is_empty());
    // At a pinned version, only its rows rank.
    assert_eq!(
        window(Some(v2), ["at", "id"], 3, 4).await,
        (16..20).collect::<Vec<_>>()
    );
    // A column the table lacks ranks every row alike: the other decides.
    assert_eq!(window(None, ["nope", "id"], 0, 3).await, vec![27, 28, 29]);
    // Every column of a kept row comes back, partition values included.
    let rows = t
        .read_rows_window(None, &s, ["at", "id"], 0, 1)
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Value::Int(29),
            Value::Str("n29".into()),
            Value::Timestamp(29_000_000),
            Value::Date(19_001)
        ]]
    );
}
