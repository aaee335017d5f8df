//! What only the Postgres store has: migrations shared by nodes starting together,
//! refusal of a database from a newer Freshet, no password in any error, and filter
//! values bound to typed columns (the conformance suite covers the rest on both stores).

use freshet_registry::models::ModelQuery;
use freshet_registry::{ModelStore, PostgresStore, RegistryError};
use freshet_testkit::pg::PgServer;

fn open(url: &str) -> PostgresStore {
    PostgresStore::open(url, None, "mlflow-artifacts:").expect("open")
}

#[test]
fn nodes_starting_together_migrate_the_schema_once() {
    let url = PgServer::shared().create_database();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || open(&url).schema_version())
        })
        .collect();
    let newest = freshet_registry::store::postgres::MIGRATIONS
        .last()
        .unwrap()
        .0;
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), newest);
    }
    // One Default experiment, whoever created it.
    let s = open(&url);
    assert_eq!(
        freshet_registry::TrackingStore::get_experiment(&s, "0")
            .unwrap()
            .name,
        "Default"
    );
}

#[test]
fn a_database_from_a_newer_freshet_is_refused() {
    let url = PgServer::shared().create_database();
    let s = open(&url);
    // What a later Freshet would leave behind.
    drop(s);
    let psql = freshet_testkit::pg::bin_dir().join("psql");
    let out = std::process::Command::new(psql)
        .arg(&url)
        .arg("-c")
        .arg("INSERT INTO freshet_schema_migrations VALUES (999, 'from the future', 0)")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = PostgresStore::open(&url, None, "mlflow-artifacts:").unwrap_err();
    assert!(
        err.to_string().contains("schema version 999")
            && err.to_string().contains("upgrade Freshet"),
        "{err}"
    );
}

#[test]
fn a_wrong_password_or_host_names_the_database_but_never_the_password() {
    let good = PgServer::shared().create_database();
    let bad = good.replace(
        &format!(":{}@", freshet_testkit::pg::PASSWORD),
        ":Wrong-Secret-913@",
    );
    assert_ne!(bad, good);
    let err = PostgresStore::open(&bad, None, "mlflow-artifacts:").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cannot connect to the registry database 127.0.0.1:"),
        "{msg}"
    );
    assert!(!msg.contains("Wrong-Secret-913"), "{msg}");
    let closed = "postgres://u:Closed-Port-Secret@127.0.0.1:1/db?sslmode=disable";
    let msg = PostgresStore::open(closed, None, "mlflow-artifacts:")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("127.0.0.1:1/db") && !msg.contains("Closed-Port-Secret"),
        "{msg}"
    );
    let msg = PostgresStore::open("postgres://x:y@host:notaport/db", None, "m:")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("registry.url is not a valid postgres URL"),
        "{msg}"
    );
}

#[test]
fn a_filter_value_that_does_not_fit_its_column_is_the_callers_mistake() {
    let s = open(&PgServer::shared().create_database());
    let q = ModelQuery {
        filter: "name = 'fraud' AND version_number >= 2.5".into(),
        max_results: 10,
        ..Default::default()
    };
    match s.search_model_versions(&q) {
        Err(RegistryError::InvalidParameter(m)) => assert!(m.contains("2.5"), "{m}"),
        other => panic!("expected a client error, got {other:?}"),
    }
}
