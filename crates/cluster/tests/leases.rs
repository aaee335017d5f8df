//! Leases and fencing on a real PostgreSQL: one leader at a time, a greater token for
//! every new leader, and the writes of a leader that lost its lease refused.

use freshet_cluster::{Change, Cluster, model_lease};
use freshet_registry::{ModelStore, PostgresStore, RegistryError};
use freshet_testkit::pg::PgServer;
use std::time::Duration;

fn node(url: &str, id: &str, ttl_ms: u64) -> Cluster {
    let store = PostgresStore::open(url, None, "mlflow-artifacts:").unwrap();
    Cluster::new(
        store,
        id.into(),
        format!("127.0.0.1:{}", 7000 + id.len()),
        "test".into(),
        Duration::from_millis(ttl_ms),
    )
}

#[test]
fn one_leader_at_a_time_and_a_stale_leader_is_fenced() {
    let url = PgServer::shared().create_database();
    let lease = model_lease("fraud");
    let leases = [lease.clone()];
    let a = node(&url, "node-a", 1_000);
    let b = node(&url, "node-b", 1_000);

    assert_eq!(
        a.round(&leases),
        vec![Change::Lead {
            lease: lease.clone(),
            token: 1
        }]
    );
    assert_eq!(b.round(&leases), vec![], "b must not lead while a does");
    assert_eq!(a.round(&leases), vec![], "renewing keeps the token");
    let (token_a, as_a) = a.fenced_store(&lease).expect("a leads");
    assert_eq!(token_a, 1);
    assert!(b.fenced_store(&lease).is_none());
    as_a.create_registered_model("fraud", &[], None).unwrap();

    // a stops renewing (paused); once the lease has run out, b takes it over.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        b.round(&leases),
        vec![Change::Lead {
            lease: lease.clone(),
            token: 2
        }]
    );
    // a, resumed, still has its old handle: every write through it is refused.
    let refused = as_a.set_registered_model_tag(
        "fraud",
        &freshet_registry::model::Tag {
            key: "by".into(),
            value: "a".into(),
        },
    );
    assert!(
        matches!(refused, Err(RegistryError::Fenced(ref m)) if m.contains("model:fraud")),
        "{refused:?}"
    );
    let (_, as_b) = b.fenced_store(&lease).expect("b leads");
    as_b.set_registered_model_tag(
        "fraud",
        &freshet_registry::model::Tag {
            key: "by".into(),
            value: "b".into(),
        },
    )
    .unwrap();
    let tags = as_b.get_registered_model("fraud").unwrap().tags;
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].value, "b", "only the leader's write landed");
    // a learns it lost on its next round.
    assert_eq!(
        a.round(&leases),
        vec![Change::Lost {
            lease: lease.clone(),
            token: 1,
            why: "another node holds it".into()
        }]
    );
    assert!(a.fenced_store(&lease).is_none());
}

#[test]
fn a_clean_stop_hands_the_lease_over_at_once_and_status_shows_it() {
    let url = PgServer::shared().create_database();
    let lease = model_lease("churn");
    let leases = [lease.clone()];
    let a = node(&url, "node-a", 30_000);
    let b = node(&url, "node-b", 30_000);
    a.round(&leases);
    b.round(&leases);
    let status = b.status().unwrap();
    assert_eq!(status.node_id, "node-b");
    assert_eq!(status.nodes.len(), 2);
    assert!(status.nodes.iter().all(|n| n.healthy));
    let a_row = status
        .nodes
        .iter()
        .find(|n| n.node.node_id == "node-a")
        .unwrap();
    assert_eq!(a_row.leads, vec![lease.clone()]);
    assert_eq!(status.leases.len(), 1);
    assert!(status.leases[0].held);
    assert_eq!(status.leases[0].lease.holder, "node-a");

    // Far from its 30 s expiry, a stops cleanly: b leads on its next round.
    a.release_all();
    assert_eq!(
        b.round(&leases),
        vec![Change::Lead {
            lease: lease.clone(),
            token: 2
        }]
    );
}

#[test]
fn writes_without_a_lease_row_are_refused_too() {
    // A fence naming a lease nobody ever took must not let writes through.
    let url = PgServer::shared().create_database();
    let store = PostgresStore::open(&url, None, "mlflow-artifacts:").unwrap();
    let fenced = store.fenced(freshet_registry::store::postgres::Fence {
        lease: "model:ghost".into(),
        token: 7,
    });
    assert!(matches!(
        fenced.create_registered_model("ghost", &[], None),
        Err(RegistryError::Fenced(_))
    ));
    assert!(
        store.get_registered_model("ghost").is_err(),
        "nothing was written"
    );
}
