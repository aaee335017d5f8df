//! The tracking store's contract through its public API, on SQLite and Postgres: every
//! test in [`conformance!`] runs against both stores (`sqlite::…` and `postgres::…`), so
//! neither drifts from the other. Postgres is a real server (`freshet_testkit::pg`), one
//! per test process, with a fresh database per test; without PostgreSQL installed the
//! Postgres tests fail, they are never skipped.

use freshet_registry::model::{LifecycleStage, Metric, NewRun, Param, RunStatus, RunUpdate, Tag};
use freshet_registry::store::ViewType;
use freshet_registry::{PostgresStore, RegistryError, SqliteStore, Store, TrackingStore};
use freshet_testkit::pg::PgServer;
use std::sync::Arc;

fn sqlite_store() -> SqliteStore {
    SqliteStore::in_memory("mlflow-artifacts:").unwrap()
}

/// A store on a new, empty database of the shared test server.
fn pg_store() -> PostgresStore {
    let url = PgServer::shared().create_database();
    PostgresStore::open(&url, None, "mlflow-artifacts:").unwrap()
}

/// Two handles on one SQLite file, as two server processes would have (the folder
/// lives as long as the handles).
fn sqlite_nodes() -> (Arc<dyn Store>, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let a = SqliteStore::open(&path, "mlflow-artifacts:").unwrap();
    let b = SqliteStore::open(&path, "mlflow-artifacts:").unwrap();
    (Arc::new(a), Arc::new(b), dir)
}

/// Two stores on one Postgres database: two Freshet nodes sharing a registry.
fn pg_nodes() -> (Arc<dyn Store>, Arc<dyn Store>, ()) {
    let url = PgServer::shared().create_database();
    let a = PostgresStore::open(&url, None, "mlflow-artifacts:").unwrap();
    let b = PostgresStore::open(&url, None, "mlflow-artifacts:").unwrap();
    (Arc::new(a), Arc::new(b), ())
}

/// Runs each `one` test on one store and each `two` test on two handles on one
/// registry, on SQLite (`sqlite::name`) and on Postgres (`postgres::name`).
macro_rules! conformance {
    (one: [$($one:ident),* $(,)?], two: [$($two:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(#[test] fn $one() { super::$one(&super::sqlite_store()) })*
            $(#[test] fn $two() { let (a, b, _dir) = super::sqlite_nodes(); super::$two(a, b) })*
        }
        mod postgres {
            $(#[test] fn $one() { super::$one(&super::pg_store()) })*
            $(#[test] fn $two() { let (a, b, _db) = super::pg_nodes(); super::$two(a, b) })*
        }
    };
}

conformance! {
    one: [
        experiments_lifecycle,
        experiment_search_filters_orders_newest_first_and_pages,
        runs_follow_mlflow_semantics,
        a_batch_over_the_limits_writes_nothing,
        metric_history_pages_through_every_point_in_order,
        search_runs_filters_and_orders_like_mlflow,
        hostile_page_tokens_are_client_errors,
        nan_ranks_the_same_in_one_batch_or_two,
        history_is_ordered_across_the_log_and_the_merged_table,
    ],
    two: [
        eight_concurrent_writers_lose_nothing,
        racing_writers_of_one_param_leave_one_value,
        concurrent_batches_of_the_same_keys_all_land
    ],
}

fn m(key: &str, value: f64, step: i64, timestamp: i64) -> Metric {
    Metric {
        key: key.into(),
        value,
        step,
        timestamp,
    }
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: k.into(),
        value: v.into(),
    }
}

fn new_run(s: &dyn Store, exp: &str) -> String {
    s.create_run(NewRun {
        experiment_id: exp.into(),
        user_id: "ada".into(),
        ..Default::default()
    })
    .unwrap()
    .info
    .run_id
}

fn experiments_lifecycle(s: &dyn Store) {
    let default = s.get_experiment("0").unwrap();
    assert_eq!(default.name, "Default");
    let id = s
        .create_experiment("fraud", None, &[tag("team", "risk")])
        .unwrap();
    let e = s.get_experiment_by_name("fraud").unwrap();
    assert_eq!(e.experiment_id, id);
    assert_eq!(e.artifact_location, format!("mlflow-artifacts:/{id}"));
    assert_eq!(e.tags, vec![tag("team", "risk")]);
    assert!(matches!(
        s.create_experiment("fraud", None, &[]),
        Err(RegistryError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.get_experiment("999"),
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        s.get_experiment("not-a-number"),
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        s.create_experiment("", None, &[]),
        Err(RegistryError::InvalidParameter(_))
    ));

    s.rename_experiment(&id, "fraud-v2").unwrap();
    assert!(s.get_experiment_by_name("fraud").is_err());
    s.delete_experiment(&id).unwrap();
    assert_eq!(
        s.get_experiment(&id).unwrap().lifecycle_stage,
        LifecycleStage::Deleted
    );
    let active = s.list_experiments(ViewType::ActiveOnly, 100, None).unwrap();
    assert_eq!(active.items.len(), 1);
    let all = s.list_experiments(ViewType::All, 100, None).unwrap();
    assert_eq!(all.items.len(), 2);
    s.restore_experiment(&id).unwrap();
    assert!(
        s.delete_experiment("0").is_err(),
        "the default experiment stays"
    );

    for i in 0..7 {
        s.create_experiment(&format!("e{i}"), None, &[]).unwrap();
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .list_experiments(ViewType::All, 3, token.as_deref())
            .unwrap();
        seen.extend(page.items.into_iter().map(|e| e.name));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);
    assert!(
        s.list_experiments(ViewType::All, 3, Some("garbage"))
            .is_err()
    );
}

fn experiment_search_filters_orders_newest_first_and_pages(s: &dyn Store) {
    let tag = |k: &str, v: &str| Tag {
        key: k.into(),
        value: v.into(),
    };
    std::thread::sleep(std::time::Duration::from_millis(3));
    for (i, team) in ["risk", "growth", "risk"].iter().enumerate() {
        s.create_experiment(&format!("fraud-{i}"), None, &[tag("team", team)])
            .unwrap();
        // Creation times a millisecond apart at least, as a user's would be.
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    let names = |filter: &str, order: &[&str]| -> Vec<String> {
        let order: Vec<String> = order.iter().map(|o| o.to_string()).collect();
        s.search_experiments(ViewType::ActiveOnly, filter, &order, 100, None)
            .unwrap()
            .items
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    // MLflow's default order: newest first (the default experiment is the oldest).
    assert_eq!(names("", &[]), ["fraud-2", "fraud-1", "fraud-0", "Default"]);
    assert_eq!(
        names("name LIKE 'fraud-%'", &["name ASC"]),
        ["fraud-0", "fraud-1", "fraud-2"]
    );
    assert_eq!(
        names("tags.team = 'risk'", &["name DESC"]),
        ["fraud-2", "fraud-0"]
    );
    assert_eq!(
        names("tags.team != 'risk'", &[]),
        ["fraud-1"],
        "a missing tag does not match"
    );
    assert_eq!(names("experiment_id = '0'", &[]), ["Default"]);
    let t0 = s.get_experiment_by_name("fraud-1").unwrap().creation_time;
    assert_eq!(
        names(&format!("creation_time > {t0}"), &["creation_time ASC"]),
        ["fraud-2"]
    );
    for (bad, says) in [
        ("owner = 'x'", "unknown key 'owner'"),
        ("name > 'a'", "Invalid comparator"),
    ] {
        let e = s
            .search_experiments(ViewType::All, bad, &[], 10, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let e = s
        .search_experiments(ViewType::All, "", &["owner".to_string()], 10, None)
        .unwrap_err();
    assert!(matches!(e, RegistryError::InvalidParameter(_)), "{e}");
    // Pages in the search's order.
    let first = s
        .search_experiments(ViewType::All, "", &[], 2, None)
        .unwrap();
    let second = s
        .search_experiments(ViewType::All, "", &[], 2, first.next_page_token.as_deref())
        .unwrap();
    // As in MLflow, the last page has no token (no empty page to ask for).
    assert_eq!(second.next_page_token, None);
    let paged: Vec<String> = first
        .items
        .into_iter()
        .chain(second.items)
        .map(|e| e.name)
        .collect();
    assert_eq!(paged, ["fraud-2", "fraud-1", "fraud-0", "Default"]);
    assert!(first.next_page_token.is_some());
}

fn runs_follow_mlflow_semantics(s: &dyn Store) {
    let exp = s.create_experiment("e", None, &[]).unwrap();
    let run = s
        .create_run(NewRun {
            experiment_id: exp.clone(),
            run_name: Some("first".into()),
            user_id: "ada".into(),
            start_time: Some(1000),
            tags: vec![tag("source", "test")],
        })
        .unwrap();
    let id = run.info.run_id.clone();
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(
        run.info.artifact_uri,
        format!("mlflow-artifacts:/{exp}/{id}/artifacts")
    );
    assert!(run.data.tags.contains(&tag("mlflow.runName", "first")));

    s.log_batch(
        &id,
        &[
            m("loss", 0.5, 1, 10),
            m("loss", 0.9, 0, 20),
            m("acc", f64::NAN, 0, 5),
        ],
        &[Param {
            key: "lr".into(),
            value: "0.1".into(),
        }],
        &[tag("k", "v1")],
    )
    .unwrap();
    // Params are immutable, but logging the same value again is fine.
    s.log_batch(
        &id,
        &[],
        &[Param {
            key: "lr".into(),
            value: "0.1".into(),
        }],
        &[tag("k", "v2")],
    )
    .unwrap();
    let err = s
        .log_batch(
            &id,
            &[],
            &[Param {
                key: "lr".into(),
                value: "0.2".into(),
            }],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::InvalidParameter(_)));

    let got = s.get_run(&id).unwrap();
    let loss = got.data.metrics.iter().find(|x| x.key == "loss").unwrap();
    assert_eq!(
        (loss.value, loss.step),
        (0.5, 1),
        "latest = greatest step, not last logged"
    );
    assert!(
        got.data
            .metrics
            .iter()
            .find(|x| x.key == "acc")
            .unwrap()
            .value
            .is_nan()
    );
    assert!(
        got.data.tags.contains(&tag("k", "v2")),
        "tags are overwritten"
    );
    assert_eq!(
        got.data.params,
        vec![Param {
            key: "lr".into(),
            value: "0.1".into()
        }]
    );

    s.delete_tag(&id, "k").unwrap();
    assert!(matches!(
        s.delete_tag(&id, "k"),
        Err(RegistryError::NotFound(_))
    ));
    let info = s
        .update_run(
            &id,
            RunUpdate {
                status: Some(RunStatus::Finished),
                end_time: Some(2000),
                run_name: None,
            },
        )
        .unwrap();
    assert_eq!(
        (info.status, info.end_time),
        (RunStatus::Finished, Some(2000))
    );

    s.delete_run(&id).unwrap();
    assert!(matches!(
        s.log_batch(&id, &[m("x", 1.0, 0, 0)], &[], &[]),
        Err(RegistryError::InvalidState(_))
    ));
    assert!(matches!(
        s.log_batch("nope", &[m("x", 1.0, 0, 0)], &[], &[]),
        Err(RegistryError::NotFound(_))
    ));
    assert!(
        s.list_runs(std::slice::from_ref(&exp), ViewType::ActiveOnly, 10, None)
            .unwrap()
            .items
            .is_empty()
    );
    s.restore_run(&id).unwrap();
    assert_eq!(
        s.list_runs(&[exp], ViewType::ActiveOnly, 10, None)
            .unwrap()
            .items
            .len(),
        1
    );
}

fn a_batch_over_the_limits_writes_nothing(s: &dyn Store) {
    let id = new_run(s, "0");
    let too_many: Vec<Metric> = (0..1001).map(|i| m("x", i as f64, i, 0)).collect();
    assert!(matches!(
        s.log_batch(&id, &too_many, &[], &[]),
        Err(RegistryError::InvalidParameter(_))
    ));
    // Keys are checked before anything is written.
    let bad = Param {
        key: "../escape".into(),
        value: "v".into(),
    };
    assert!(s.log_batch(&id, &[m("y", 1.0, 0, 0)], &[bad], &[]).is_err());
    // A changed param fails inside the transaction: the metrics before it roll back.
    s.log_batch(
        &id,
        &[],
        &[Param {
            key: "lr".into(),
            value: "1".into(),
        }],
        &[],
    )
    .unwrap();
    let changed = Param {
        key: "lr".into(),
        value: "2".into(),
    };
    assert!(
        s.log_batch(&id, &[m("y", 1.0, 0, 0)], &[changed], &[tag("t", "v")])
            .is_err()
    );
    assert!(
        s.get_run(&id)
            .unwrap()
            .data
            .tags
            .iter()
            .all(|t| t.key != "t")
    );
    assert!(s.get_run(&id).unwrap().data.metrics.is_empty());
    assert!(
        s.get_metric_history(&id, "x", 10, None)
            .unwrap()
            .items
            .is_empty()
    );
}

fn metric_history_pages_through_every_point_in_order(s: &dyn Store) {
    let id = new_run(s, "0");
    for chunk in 0..20 {
        let batch: Vec<Metric> = (0..1000)
            .map(|i| {
                let step = chunk * 1000 + i;
                m("loss", step as f64, step, 7)
            })
            .collect();
        s.log_batch(&id, &batch, &[], &[]).unwrap();
    }
    let mut steps = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .get_metric_history(&id, "loss", 2500, token.as_deref())
            .unwrap();
        steps.extend(page.items.iter().map(|p| p.step));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(steps, (0..20_000).collect::<Vec<_>>());
    assert!(matches!(
        s.get_metric_history("nope", "loss", 10, None),
        Err(RegistryError::NotFound(_))
    ));
}

/// `a` and `b` are two handles on one registry: two server processes on one SQLite
/// file, two nodes on one Postgres database.
fn eight_concurrent_writers_lose_nothing(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let id = new_run(&*a, "0");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = if t % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let key = format!("w{t}");
                    s.log_batch(&id, &[m(&key, i as f64, i, i)], &[], &[])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for t in 0..8 {
        let h = a
            .get_metric_history(&id, &format!("w{t}"), 1000, None)
            .unwrap();
        assert_eq!(h.items.len(), 250, "writer {t}");
    }
    assert_eq!(b.get_run(&id).unwrap().data.metrics.len(), 8);
}

/// Eight writers on two nodes log batches of the same metric and tag keys (in
/// different orders) and the same params to one run at once: every batch lands, none
/// fails on a lock-order deadlock.
fn concurrent_batches_of_the_same_keys_all_land(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let id = new_run(&*a, "0");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = if t % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            std::thread::spawn(move || {
                for i in 0..60 {
                    let mut keys: Vec<String> = (0..10).map(|k| format!("k{k}")).collect();
                    if (t + i) % 2 == 1 {
                        keys.reverse();
                    }
                    let metrics: Vec<Metric> = keys.iter().map(|k| m(k, i as f64, i, t)).collect();
                    let tags: Vec<Tag> = keys.iter().map(|k| tag(k, &format!("{t}"))).collect();
                    let params = vec![Param {
                        key: "same".into(),
                        value: "1".into(),
                    }];
                    s.log_batch(&id, &metrics, &params, &tags).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let run = a.get_run(&id).unwrap();
    assert_eq!(run.data.metrics.len(), 10);
    assert!(run.data.metrics.iter().all(|m| m.step == 59));
    assert_eq!(
        run.data
            .tags
            .iter()
            .filter(|t| t.key.starts_with('k'))
            .count(),
        10
    );
    let h = b.get_metric_history(&id, "k3", 1000, None).unwrap();
    assert_eq!(h.items.len(), 8 * 60);
}

/// Eight writers on two nodes log the same param with different values (and a metric
/// each) at once, many times over on fresh runs: exactly one batch per run wins, the
/// others are refused as a change of the param and wrote nothing, not even their metric.
fn racing_writers_of_one_param_leave_one_value(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    for round in 0..20 {
        let id = new_run(&*a, "0");
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = if t % 2 == 0 { a.clone() } else { b.clone() };
                let (id, barrier) = (id.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let param = Param {
                        key: "lr".into(),
                        value: format!("0.{t}"),
                    };
                    barrier.wait();
                    s.log_batch(&id, &[m(&format!("w{t}"), 1.0, 0, 0)], &[param], &[])
                        .map(|()| t)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in threads {
            match t.join().unwrap() {
                Ok(t) => winners.push(t),
                Err(RegistryError::InvalidParameter(msg)) => {
                    assert!(
                        msg.contains("Changing param values is not allowed"),
                        "{msg}"
                    )
                }
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let run = b.get_run(&id).unwrap();
        assert_eq!(
            run.data.params,
            vec![Param {
                key: "lr".into(),
                value: format!("0.{}", winners[0])
            }],
            "round {round}"
        );
        let keys: Vec<&str> = run.data.metrics.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, vec![format!("w{}", winners[0])], "round {round}");
    }
}

fn search_runs_filters_and_orders_like_mlflow(s: &dyn Store) {
    use freshet_registry::store::RunQuery;
    let exp = s.create_experiment("search", None, &[]).unwrap();
    let mut ids = Vec::new();
    for i in 0..30i64 {
        let id = s
            .create_run(NewRun {
                experiment_id: exp.clone(),
                user_id: "u".into(),
                start_time: Some(1000 + i),
                ..Default::default()
            })
            .unwrap()
            .info
            .run_id;
        let kind = if i % 3 == 0 { "Tree" } else { "linear" };
        let mut metrics = vec![m("auc", i as f64 / 100.0, 0, 0)];
        if i == 5 {
            metrics.push(m("only_five", 1.0, 0, 0));
        }
        s.log_batch(
            &id,
            &metrics,
            &[Param {
                key: "kind".into(),
                value: kind.into(),
            }],
            &[tag("parity", if i % 2 == 0 { "even" } else { "odd" })],
        )
        .unwrap();
        ids.push(id);
    }
    let q = |filter: &str, order: &[&str]| RunQuery {
        experiment_ids: vec![exp.clone()],
        filter: filter.into(),
        view: ViewType::ActiveOnly,
        max_results: 1000,
        order_by: order.iter().map(|s| s.to_string()).collect(),
        page_token: None,
    };
    let auc = |r: &freshet_registry::model::Run| {
        r.data
            .metrics
            .iter()
            .find(|m| m.key == "auc")
            .unwrap()
            .value
    };

    let hits = s
        .search_runs(&q(
            "metrics.auc >= 0.2 and tags.parity = 'even'",
            &["metrics.auc DESC"],
        ))
        .unwrap()
        .items;
    let got: Vec<f64> = hits.iter().map(auc).collect();
    assert_eq!(got, vec![0.28, 0.26, 0.24, 0.22, 0.2]);

    // LIKE is case-sensitive, ILIKE is not.
    assert_eq!(
        s.search_runs(&q("params.kind LIKE 't%'", &[]))
            .unwrap()
            .items
            .len(),
        0
    );
    assert_eq!(
        s.search_runs(&q("params.kind ILIKE 't%'", &[]))
            .unwrap()
            .items
            .len(),
        10
    );
    // != needs the key to exist with another value.
    assert_eq!(
        s.search_runs(&q("metrics.only_five != 2", &[]))
            .unwrap()
            .items
            .len(),
        1
    );
    assert_eq!(
        s.search_runs(&q(
            "attributes.start_time < 1003",
            &["attributes.start_time ASC"]
        ))
        .unwrap()
        .items[0]
            .info
            .start_time,
        1000
    );
    let two = format!("attributes.run_id IN ('{}', '{}')", ids[1], ids[2]);
    assert_eq!(s.search_runs(&q(&two, &[])).unwrap().items.len(), 2);
    // Default order: newest first; paging covers everything once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let mut page_q = q("", &[]);
        page_q.max_results = 7;
        page_q.page_token = token.clone();
        let page = s.search_runs(&page_q).unwrap();
        seen.extend(page.items.iter().map(|r| r.info.start_time));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, (1000..1030).rev().collect::<Vec<_>>());
    assert!(matches!(
        s.search_runs(&q("metrics.auc > 'x'", &[])),
        Err(RegistryError::InvalidParameter(_))
    ));
}

fn hostile_page_tokens_are_client_errors(s: &dyn Store) {
    let id = new_run(s, "0");
    s.log_batch(&id, &[m("x", 1.0, 0, 0)], &[], &[]).unwrap();
    for token in [
        "o18446744073709551615",
        "o9223372036854775808",
        "zzz",
        "o-1",
    ] {
        assert!(
            matches!(
                s.get_metric_history(&id, "x", 1, Some(token)),
                Err(RegistryError::InvalidParameter(_))
            ),
            "{token}"
        );
    }
    // The largest valid offset pages past the end without overflowing.
    let page = s
        .get_metric_history(&id, "x", 1, Some("o9223372036854775807"))
        .unwrap();
    assert!(page.items.is_empty() && page.next_page_token.is_none());
}

fn nan_ranks_the_same_in_one_batch_or_two(s: &dyn Store) {
    let a = new_run(s, "0");
    let b = new_run(s, "0");
    s.log_batch(&a, &[m("x", -1.0, 0, 0), m("x", f64::NAN, 0, 0)], &[], &[])
        .unwrap();
    s.log_batch(&b, &[m("x", -1.0, 0, 0)], &[], &[]).unwrap();
    s.log_batch(&b, &[m("x", f64::NAN, 0, 0)], &[], &[])
        .unwrap();
    let latest = |id: &str| s.get_run(id).unwrap().data.metrics[0].value;
    assert_eq!(latest(&a).is_nan(), latest(&b).is_nan());
}

fn history_is_ordered_across_the_log_and_the_merged_table(s: &dyn Store) {
    // Enough values that, on SQLite, some are merged into the clustered table and some
    // are still in the append log when read (Postgres has one table: the same order
    // must come out of it); steps arrive out of order and repeat.
    let id = new_run(s, "0");
    let other = new_run(s, "0");
    let mut expected: Vec<(i64, i64, f64)> = Vec::new();
    let mut seq = 0u64;
    for chunk in 0..100 {
        let mut batch = Vec::new();
        for i in 0..500i64 {
            seq = seq
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let step = ((seq >> 33) % 5000) as i64;
            let ts = ((seq >> 20) % 3) as i64;
            let v = (chunk * 500 + i) as f64;
            batch.push(m("loss", v, step, ts));
            expected.push((step, ts, v));
            batch.push(m(&format!("noise{}", i % 7), v, step, ts));
        }
        s.log_batch(&id, &batch, &[], &[]).unwrap();
        s.log_batch(&other, &[m("loss", -1.0, 0, 0)], &[], &[])
            .unwrap();
    }
    // Stable sort: equal (step, timestamp) keep their logging order.
    expected.sort_by_key(|&(step, ts, _)| (step, ts));
    let mut got = Vec::new();
    let mut token = None;
    loop {
        let page = s
            .get_metric_history(&id, "loss", 7000, token.as_deref())
            .unwrap();
        got.extend(page.items.iter().map(|p| (p.step, p.timestamp, p.value)));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(got, expected);
    // The latest value: greatest step, then timestamp, then value.
    let latest = s.get_run(&id).unwrap().data.metrics;
    let loss = latest.iter().find(|x| x.key == "loss").unwrap();
    let want = expected
        .iter()
        .copied()
        .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)))
        .unwrap();
    assert_eq!((loss.step, loss.timestamp, loss.value), want);
    assert_eq!(latest.len(), 8);
    assert_eq!(
        s.get_metric_history(&other, "loss", 1000, None)
            .unwrap()
            .items
            .len(),
        100
    );
    assert!(
        s.get_metric_history(&id, "never-logged", 10, None)
            .unwrap()
            .items
            .is_empty()
    );
}

/// The server benchmark's heaviest write, on a SQLite file: 1000-metric batches (1000 keys,
/// steps cycling 0..16) into one run, timed per hundred batches so that growth with the
/// table shows. `cargo test -p freshet-registry --test store -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_log_batch_1000() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("registry.db"), "mlflow-artifacts:").unwrap();
    let id = new_run(&s, "0");
    let batches: Vec<Vec<Metric>> = (0..16)
        .map(|step| {
            (0..1000)
                .map(|i| m(&format!("k{i}"), i as f64 * 0.5, step, 1))
                .collect()
        })
        .collect();
    let n: usize = std::env::var("BENCH_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let mut t = std::time::Instant::now();
    for b in 0..n {
        s.log_batch(&id, &batches[b % 16], &[], &[]).unwrap();
        if (b + 1) % 100 == 0 {
            eprintln!(
                "batches {:>5}: {:.2} ms/batch",
                b + 1,
                t.elapsed().as_secs_f64() * 10.0
            );
            t = std::time::Instant::now();
        }
    }
    let h = s.get_metric_history(&id, "k7", 100_000, None).unwrap();
    assert_eq!(h.items.len(), n);
}
