//! The cluster: several `freshet up` nodes with the same configuration on one Postgres
//! registry. Every node serves and ingests; per model, exactly one node at a time runs
//! the loop, the drift watch and the rollout controller; per table, one node runs
//! maintenance.
//!
//! This room holds who leads what: node heartbeats, and leases with fencing tokens that
//! each node takes, keeps or loses in [`Cluster::round`]. A lease is the right to act
//! for one thing (`model:<name>`, `maintenance:<table>`); what a leader writes to the
//! registry goes through [`Cluster::fenced_store`], a registry handle whose writes the
//! database refuses once the lease has moved on, so a node that was paused (or cut off)
//! cannot act after another has taken over. It touches only the registry's cluster
//! tables, through `freshet-registry`; the binary decides what to start and stop.
//!
//! Calls block on the database: run them on a blocking thread.

use freshet_registry::PostgresStore;
use freshet_registry::store::postgres::Fence;
use freshet_registry::store::postgres_cluster::{LeaseRow, NodeRow};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The lease of a model's loop, drift watch and rollout controller.
pub fn model_lease(model: &str) -> String {
    format!("model:{model}")
}

/// The lease of a table's background maintenance.
pub fn maintenance_lease(table: &str) -> String {
    format!("maintenance:{table}")
}

/// What changed for this node in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// This node now leads `lease`, at `token`.
    Lead { lease: String, token: i64 },
    /// This node no longer leads `lease`: another node has it, or this node could not
    /// renew it in time.
    Lost {
        lease: String,
        token: i64,
        why: String,
    },
}

struct Held {
    token: i64,
    renewed: Instant,
}

/// This node's membership and leases.
pub struct Cluster {
    store: PostgresStore,
    node_id: String,
    address: String,
    version: String,
    ttl: Duration,
    held: RwLock<HashMap<String, Held>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A node id for a process that was not given one: the host name and a random suffix,
/// so a restarted process is a new node and waits for its old leases to expire.
pub fn default_node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

/// A node and whether it is alive (heartbeat within three lease times).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    #[serde(flatten)]
    pub node: NodeRow,
    pub healthy: bool,
    /// The leases this node holds now.
    pub leads: Vec<String>,
}

/// A lease and whether it is held now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseStatus {
    #[serde(flatten)]
    pub lease: LeaseRow,
    pub held: bool,
}

/// The cluster as the database sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node_id: String,
    pub lease_ttl_ms: u64,
    pub now_ms: i64,
    pub nodes: Vec<NodeStatus>,
    pub leases: Vec<LeaseStatus>,
}

impl Cluster {
    /// This node (`node_id`, serving at `address`) on the registry `store`, with leases
    /// that last `ttl` unless renewed.
    pub fn new(
        store: PostgresStore,
        node_id: String,
        address: String,
        version: String,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            node_id,
            address,
            version,
            ttl,
            held: RwLock::new(HashMap::new()),
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// How often to run [`Cluster::round`]: three renewals per lease time, so one lost
    /// round never costs a lease.
    pub fn round_interval(&self) -> Duration {
        self.ttl / 3
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// One round: the heartbeat, then take or keep each of `leases`. Returns what
    /// changed for this node. A lease that could not be renewed (the database did not
    /// answer) is given up locally once its time has passed, as the database will
    /// refuse writes under it by then anyway.
    pub fn round(&self, leases: &[String]) -> Vec<Change> {
        if let Err(e) = self
            .store
            .heartbeat(&self.node_id, &self.address, &self.version)
        {
            tracing::warn!(node = %self.node_id, error = %e, "cluster heartbeat failed");
        }
        let mut changes = Vec::new();
        for lease in leases {
            let result = self
                .store
                .acquire_lease(lease, &self.node_id, self.ttl_ms());
            let now = Instant::now();
            let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
            match (result, held.get(lease).map(|h| h.token)) {
                (Ok(Some(token)), before) => {
                    if before != Some(token) {
                        if let Some(old) = before {
                            changes.push(Change::Lost {
                                lease: lease.clone(),
                                token: old,
                                why: format!("retaken at token {token}"),
                            });
                        }
                        changes.push(Change::Lead {
                            lease: lease.clone(),
                            token,
                        });
                    }
                    held.insert(
                        lease.clone(),
                        Held {
                            token,
                            renewed: now,
                        },
                    );
                }
                (Ok(None), Some(old)) => {
                    held.remove(lease);
                    changes.push(Change::Lost {
                        lease: lease.clone(),
                        token: old,
                        why: "another node holds it".into(),
                    });
                }
                (Ok(None), None) => {}
                (Err(e), before) => {
                    tracing::warn!(%lease, error = %e, "cannot renew a lease");
                    if let Some(old) = before
                        && held
                            .get(lease)
                            .is_some_and(|h| now.duration_since(h.renewed) >= self.ttl)
                    {
                        held.remove(lease);
                        changes.push(Change::Lost {
                            lease: lease.clone(),
                            token: old,
                            why: format!("not renewed for {} ms", self.ttl.as_millis()),
                        });
                    }
                }
            }
        }
        changes
    }

    /// The token this node holds `lease` at, if it holds it and renewed it within the
    /// lease time.
    pub fn token(&self, lease: &str) -> Option<i64> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        held.get(lease)
            .filter(|h| h.renewed.elapsed() < self.ttl)
            .map(|h| h.token)
    }

    /// A registry handle for acting as the leader of `lease`: its writes are refused
    /// once the lease is held at a greater token. `None` when this node does not lead.
    pub fn fenced_store(&self, lease: &str) -> Option<(i64, PostgresStore)> {
        let token = self.token(lease)?;
        Some((
            token,
            self.store.fenced(Fence {
                lease: lease.to_string(),
                token,
            }),
        ))
    }

    /// Give up every lease at once (a clean stop), so other nodes take over without
    /// waiting for them to expire.
    pub fn release_all(&self) {
        let held: Vec<(String, i64)> = {
            let mut h = self.held.write().unwrap_or_else(|e| e.into_inner());
            h.drain().map(|(l, h)| (l, h.token)).collect()
        };
        for (lease, token) in held {
            match self.store.release_lease(&lease, &self.node_id, token) {
                Ok(_) => tracing::info!(%lease, token, "lease released"),
                Err(e) => tracing::warn!(%lease, error = %e, "cannot release a lease"),
            }
        }
    }

    /// The nodes and leases, with who is alive and what is held.
    pub fn status(&self) -> freshet_registry::Result<ClusterStatus> {
        let rows = self.store.cluster_rows()?;
        let ttl_ms = self.ttl_ms();
        let leases: Vec<LeaseStatus> = rows
            .leases
            .into_iter()
            .map(|l| LeaseStatus {
                held: l.expires_at_ms > rows.now_ms,
                lease: l,
            })
            .collect();
        let nodes = rows
            .nodes
            .into_iter()
            .map(|n| NodeStatus {
                healthy: rows.now_ms - n.heartbeat_at_ms < 3 * ttl_ms,
                leads: leases
                    .iter()
                    .filter(|l| l.held && l.lease.holder == n.node_id)
                    .map(|l| l.lease.name.clone())
                    .collect(),
                node: n,
            })
            .collect();
        Ok(ClusterStatus {
            node_id: self.node_id.clone(),
            lease_ttl_ms: u64::try_from(ttl_ms).unwrap_or(0),
            now_ms: rows.now_ms,
            nodes,
            leases,
        })
    }
}
