//! The model registry's contract through its public API, on SQLite and Postgres:
//! logged models, registered models, version numbering, aliases, stages and search.
//! Every test in [`conformance!`] runs against both stores (`sqlite::…` and
//! `postgres::…`), so neither drifts from the other. Postgres is a real server
//! (`freshet_testkit::pg`), one per test process, with a fresh database per test;
//! without PostgreSQL installed the Postgres tests fail, they are never skipped.

use freshet_registry::model::{NewRun, Param, Tag};
use freshet_registry::models::{
    LoggedModelStatus, ModelQuery, NewLoggedModel, NewModelVersion, Stage,
};
use freshet_registry::{ModelStore, PostgresStore, RegistryError, SqliteStore, Store};
use freshet_testkit::pg::PgServer;

fn sqlite_store() -> SqliteStore {
    SqliteStore::in_memory("mlflow-artifacts:").unwrap()
}

/// A store on a new, empty database of the shared test server.
fn pg_store() -> PostgresStore {
    let url = PgServer::shared().create_database();
    PostgresStore::open(&url, None, "mlflow-artifacts:").unwrap()
}

/// Runs each test on SQLite (`sqlite::name`) and on Postgres (`postgres::name`).
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::sqlite_store()) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(&super::pg_store()) })*
        }
    };
}

conformance!(
    a_logged_model_registers_with_its_files_location,
    version_numbers_are_never_reused,
    aliases_move_and_follow_renames,
    every_alias_move_is_kept_in_order_whichever_way_it_was_made,
    stages_and_latest_versions,
    search_versions_and_models,
    sources_outside_the_store_are_refused,
    a_missing_tag_is_not_equal_to_any_value_as_in_mlflow,
);

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: k.into(),
        value: v.into(),
    }
}

fn version(s: &dyn Store, name: &str, source: &str) -> i64 {
    s.create_model_version(NewModelVersion {
        name: name.into(),
        source: source.into(),
        ..Default::default()
    })
    .unwrap()
    .version
}

fn a_logged_model_registers_with_its_files_location(s: &dyn Store) {
    let run = s
        .create_run(NewRun {
            experiment_id: "0".into(),
            ..Default::default()
        })
        .unwrap();
    let m = s
        .create_logged_model(NewLoggedModel {
            experiment_id: "0".into(),
            name: Some("model".into()),
            source_run_id: Some(run.info.run_id.clone()),
            params: vec![Param {
                key: "lr".into(),
                value: "0.1".into(),
            }],
            ..Default::default()
        })
        .unwrap();
    assert!(m.info.model_id.starts_with("m-"));
    assert_eq!(m.info.status, LoggedModelStatus::Pending);
    assert_eq!(
        m.info.artifact_uri,
        format!("mlflow-artifacts:/0/models/{}/artifacts", m.info.model_id)
    );
    let ready = s
        .finalize_logged_model(&m.info.model_id, LoggedModelStatus::Ready)
        .unwrap();
    assert_eq!(ready.info.status, LoggedModelStatus::Ready);

    s.create_registered_model("fraud", &[tag("team", "risk")], Some("cards"))
        .unwrap();
    let v = s
        .create_model_version(NewModelVersion {
            name: "fraud".into(),
            source: format!("models:/{}", m.info.model_id),
            run_id: Some(run.info.run_id.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!((v.version, v.status, v.current_stage), (1, "READY", "None"));
    assert_eq!(v.model_id, m.info.model_id);
    assert_eq!(s.get_download_uri("fraud", 1).unwrap(), m.info.artifact_uri);
    let again = s.get_logged_model(&m.info.model_id).unwrap();
    assert_eq!(again.info.registrations.len(), 1);
    assert_eq!(again.data.params[0].value, "0.1");

    // A changed param is refused; the same value again is fine.
    let same = [Param {
        key: "lr".into(),
        value: "0.1".into(),
    }];
    s.log_logged_model_params(&m.info.model_id, &same).unwrap();
    let changed = [Param {
        key: "lr".into(),
        value: "0.2".into(),
    }];
    assert!(matches!(
        s.log_logged_model_params(&m.info.model_id, &changed),
        Err(RegistryError::InvalidParameter(_))
    ));
}

fn version_numbers_are_never_reused(s: &dyn Store) {
    s.create_registered_model("m", &[], None).unwrap();
    assert_eq!(version(s, "m", "mlflow-artifacts:/a"), 1);
    assert_eq!(version(s, "m", "mlflow-artifacts:/b"), 2);
    s.delete_model_version("m", 2).unwrap();
    assert_eq!(version(s, "m", "mlflow-artifacts:/c"), 3);
    assert!(matches!(
        s.get_model_version("m", 2),
        Err(RegistryError::NotFound(_))
    ));
    assert!(matches!(
        s.create_registered_model("m", &[], None),
        Err(RegistryError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.create_model_version(NewModelVersion {
            name: "nope".into(),
            source: "mlflow-artifacts:/x".into(),
            ..Default::default()
        }),
        Err(RegistryError::NotFound(_))
    ));
}

fn aliases_move_and_follow_renames(s: &dyn Store) {
    s.create_registered_model("m", &[], None).unwrap();
    version(s, "m", "mlflow-artifacts:/a");
    version(s, "m", "mlflow-artifacts:/b");
    s.set_alias("m", "champion", 1).unwrap();
    assert_eq!(s.get_version_by_alias("m", "champion").unwrap().version, 1);
    s.set_alias("m", "champion", 2).unwrap();
    let v = s.get_version_by_alias("m", "champion").unwrap();
    assert_eq!(
        (v.version, v.aliases.clone()),
        (2, vec!["champion".to_string()])
    );
    assert!(s.set_alias("m", "champion", 9).is_err());
    assert!(s.set_alias("m", "latest", 1).is_err());

    s.rename_registered_model("m", "n").unwrap();
    let rm = s.get_registered_model("n").unwrap();
    assert_eq!(rm.aliases[0].version, 2);
    assert_eq!(s.get_model_version("n", 1).unwrap().name, "n");
    assert!(s.get_registered_model("m").is_err());

    s.delete_alias("n", "champion").unwrap();
    assert!(matches!(
        s.get_version_by_alias("n", "champion"),
        Err(RegistryError::NotFound(_))
    ));
    s.delete_registered_model("n").unwrap();
    assert!(s.get_model_version("n", 1).is_err());
}

fn every_alias_move_is_kept_in_order_whichever_way_it_was_made(s: &dyn Store) {
    s.create_registered_model("m", &[], None).unwrap();
    for src in ["a", "b", "c"] {
        version(s, "m", &format!("mlflow-artifacts:/{src}"));
    }
    let before = chrono::Utc::now().timestamp_millis();
    s.set_alias("m", "champion", 1).unwrap();
    // Setting it where it already is moves nothing.
    s.set_alias("m", "champion", 1).unwrap();
    s.set_alias("m", "challenger", 2).unwrap();
    s.set_alias("m", "champion", 2).unwrap();
    s.delete_alias("m", "challenger").unwrap();
    s.set_alias("m", "champion", 3).unwrap();
    // Deleting the version takes its alias with it: that is a move too.
    s.delete_model_version("m", 3).unwrap();
    s.rename_registered_model("m", "n").unwrap();
    let after = chrono::Utc::now().timestamp_millis();

    let h = s.alias_history("n").unwrap();
    let moves: Vec<(&str, Option<i64>)> = h.iter().map(|c| (c.alias.as_str(), c.version)).collect();
    assert_eq!(
        moves,
        [
            ("champion", Some(1)),
            ("challenger", Some(2)),
            ("champion", Some(2)),
            ("challenger", None),
            ("champion", Some(3)),
            ("champion", None),
        ]
    );
    let times: Vec<i64> = h.iter().map(|c| c.at_ms.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times[0] >= before - 1 && times[5] <= after + 1, "{times:?}");
    assert!(
        s.alias_history("m").unwrap().is_empty(),
        "renamed with the model"
    );
}

/// SQLite only: a registry file from before the alias history was kept. (A Postgres
/// registry has had the history since its first schema version.)
#[test]
fn aliases_set_before_the_history_was_kept_are_known_without_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    {
        let s = SqliteStore::open(&path, "mlflow-artifacts:").unwrap();
        s.create_registered_model("m", &[], None).unwrap();
        version(&s, "m", "mlflow-artifacts:/a");
        s.set_alias("m", "champion", 1).unwrap();
    }
    // An older registry: the alias is there, its history is not.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE model_alias_history;")
        .unwrap();
    drop(conn);
    let s = SqliteStore::open(&path, "mlflow-artifacts:").unwrap();
    let h = s.alias_history("m").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].version, h[0].at_ms), (Some(1), None));
}

fn stages_and_latest_versions(s: &dyn Store) {
    s.create_registered_model("m", &[], None).unwrap();
    for src in ["a", "b", "c"] {
        version(s, "m", &format!("mlflow-artifacts:/{src}"));
    }
    s.transition_stage("m", 1, Stage::Production, false)
        .unwrap();
    s.transition_stage("m", 2, Stage::Production, true).unwrap();
    assert_eq!(
        s.get_model_version("m", 1).unwrap().current_stage,
        "Archived"
    );
    let prod = s.get_latest_versions("m", &[Stage::Production]).unwrap();
    assert_eq!(prod.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2]);
    let all = s.get_latest_versions("m", &[]).unwrap();
    assert_eq!(
        all.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

fn search_versions_and_models(s: &dyn Store) {
    for name in ["fraud", "churn"] {
        s.create_registered_model(name, &[], None).unwrap();
        version(s, name, "mlflow-artifacts:/x");
        version(s, name, "mlflow-artifacts:/y");
    }
    s.set_model_version_tag("fraud", 2, &tag("gate", "passed"))
        .unwrap();
    let q = |filter: &str| ModelQuery {
        filter: filter.into(),
        max_results: 10,
        ..Default::default()
    };
    let found = s.search_model_versions(&q("name = 'fraud'")).unwrap();
    assert_eq!(found.items.len(), 2);
    let found = s.search_model_versions(&q("tags.gate = 'passed'")).unwrap();
    assert_eq!(
        found
            .items
            .iter()
            .map(|v| (v.name.as_str(), v.version))
            .collect::<Vec<_>>(),
        vec![("fraud", 2)]
    );
    let models = s.search_registered_models(&q("name LIKE 'fr%'")).unwrap();
    assert_eq!(models.items.len(), 1);
    assert_eq!(models.items[0].latest_versions.len(), 1);
    let paged = s
        .search_registered_models(&ModelQuery {
            max_results: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(paged.items[0].name, "churn");
    let next = s
        .search_registered_models(&ModelQuery {
            max_results: 1,
            page_token: paged.next_page_token,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(next.items[0].name, "fraud");
    assert!(s.search_model_versions(&q("bogus = 1")).is_err());
}

fn sources_outside_the_store_are_refused(s: &dyn Store) {
    s.create_registered_model("m", &[], None).unwrap();
    for bad in ["/etc/passwd", "file:///etc", "mlflow-artifacts:/../../x"] {
        let e = s
            .create_model_version(NewModelVersion {
                name: "m".into(),
                source: bad.into(),
                ..Default::default()
            })
            .unwrap_err();
        assert!(
            matches!(e, RegistryError::InvalidParameter(_)),
            "{bad}: {e}"
        );
    }
    assert!(matches!(
        s.create_model_version(NewModelVersion {
            name: "m".into(),
            source: "models:/m-doesnotexist".into(),
            ..Default::default()
        }),
        Err(RegistryError::NotFound(_))
    ));
}

fn a_missing_tag_is_not_equal_to_any_value_as_in_mlflow(s: &dyn Store) {
    s.create_registered_model("plain", &[], None).unwrap();
    s.create_registered_model("prompt", &[tag("mlflow.prompt.is_prompt", "true")], None)
        .unwrap();
    s.create_registered_model("other", &[tag("mlflow.prompt.is_prompt", "false")], None)
        .unwrap();
    let names = |filter: &str| -> Vec<String> {
        let mut n: Vec<String> = s
            .search_registered_models(&ModelQuery {
                filter: filter.into(),
                max_results: 100,
                ..Default::default()
            })
            .unwrap()
            .items
            .into_iter()
            .map(|m| m.name)
            .collect();
        n.sort();
        n
    };
    // The filter every MLflow 3 client adds to search_registered_models().
    assert_eq!(
        names("tags.`mlflow.prompt.is_prompt` != 'true'"),
        ["other", "plain"]
    );
    assert_eq!(names("tags.`mlflow.prompt.is_prompt` = 'true'"), ["prompt"]);
    assert_eq!(
        names("tags.`mlflow.prompt.is_prompt` != 'true' AND name = 'plain'"),
        ["plain"]
    );

    version(s, "plain", "mlflow-artifacts:/a");
    s.set_model_version_tag("plain", 1, &tag("mlflow.prompt.is_prompt", "true"))
        .unwrap();
    version(s, "plain", "mlflow-artifacts:/b");
    let versions: Vec<i64> = s
        .search_model_versions(&ModelQuery {
            filter: "name = 'plain' AND tags.`mlflow.prompt.is_prompt` != 'true'".into(),
            max_results: 100,
            ..Default::default()
        })
        .unwrap()
        .items
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [2]);
}
