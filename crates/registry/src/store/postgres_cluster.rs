//! The cluster's tables in the registry database (migration 2): node heartbeats and
//! leases with fencing tokens. `freshet-cluster` decides what to do with them; this
//! file only reads and writes them, always on the database's clock.

use super::postgres::PostgresStore;
use crate::error::Result;

/// A node as the cluster table records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeRow {
    pub node_id: String,
    /// Where the node serves (`host:port`), as it announced.
    pub address: String,
    pub version: String,
    pub started_at_ms: i64,
    pub heartbeat_at_ms: i64,
}

/// A lease as the cluster table records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub token: i64,
    pub acquired_at_ms: i64,
    pub expires_at_ms: i64,
}

/// Everything the cluster tables hold, with the database's clock when read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClusterRows {
    pub now_ms: i64,
    pub nodes: Vec<NodeRow>,
    pub leases: Vec<LeaseRow>,
}

const MS: &str = "(extract(epoch FROM {}) * 1000)::BIGINT";

fn ms(column: &str) -> String {
    MS.replace("{}", column)
}

impl PostgresStore {
    /// Record (or refresh) this node's heartbeat.
    pub fn heartbeat(&self, node_id: &str, address: &str, version: &str) -> Result<()> {
        self.conn()?.execute(
            "INSERT INTO freshet_nodes VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp())
             ON CONFLICT (node_id) DO UPDATE SET address = excluded.address,
               version = excluded.version, heartbeat_at = clock_timestamp()",
            &[&node_id, &address, &version],
        )?;
        Ok(())
    }

    /// Take or keep the lease `name` for `holder` for `ttl_ms` more milliseconds, in
    /// one statement: granted when it is free, expired, or already `holder`'s. Returns
    /// the fencing token when `holder` holds it after the call: unchanged while it
    /// keeps holding, one greater than any before when it (re)takes it, so writes
    /// fenced with an older token are refused from then on.
    pub fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<Option<i64>> {
        let row = self.conn()?.query_opt(
            "INSERT INTO freshet_leases AS l VALUES
               ($1, $2, 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + $3::float8 * interval '1 millisecond')
             ON CONFLICT (name) DO UPDATE SET
               token = CASE WHEN l.holder = excluded.holder AND l.expires_at > clock_timestamp()
                            THEN l.token ELSE l.token + 1 END,
               acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > clock_timestamp()
                            THEN l.acquired_at ELSE clock_timestamp() END,
               holder = excluded.holder,
               renewed_at = clock_timestamp(),
               expires_at = excluded.expires_at
             WHERE l.holder = excluded.holder OR l.expires_at <= clock_timestamp()
             RETURNING token",
            &[&name, &holder, &(ttl_ms as f64)],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Give the lease up at once (a node stopping cleanly), so another node takes it
    /// over without waiting for it to expire. Only the holder at `token` can.
    pub fn release_lease(&self, name: &str, holder: &str, token: i64) -> Result<bool> {
        let n = self.conn()?.execute(
            "UPDATE freshet_leases SET expires_at = clock_timestamp()
             WHERE name = $1 AND holder = $2 AND token = $3",
            &[&name, &holder, &token],
        )?;
        Ok(n > 0)
    }

    /// The nodes and leases, as of the database's clock.
    pub fn cluster_rows(&self) -> Result<ClusterRows> {
        let mut conn = self.conn()?;
        let now_ms: i64 = conn
            .query_one(&format!("SELECT {}", ms("clock_timestamp()")), &[])?
            .try_get(0)?;
        let nodes = conn
            .query(
                &format!(
                    "SELECT node_id, address, version, {}, {} FROM freshet_nodes ORDER BY node_id",
                    ms("started_at"),
                    ms("heartbeat_at")
                ),
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok(NodeRow {
                    node_id: r.try_get(0)?,
                    address: r.try_get(1)?,
                    version: r.try_get(2)?,
                    started_at_ms: r.try_get(3)?,
                    heartbeat_at_ms: r.try_get(4)?,
                })
            })
            .collect::<Result<_>>()?;
        let leases = conn
            .query(
                &format!(
                    "SELECT name, holder, token, {}, {} FROM freshet_leases ORDER BY name",
                    ms("acquired_at"),
                    ms("expires_at")
                ),
                &[],
            )?
            .into_iter()
            .map(|r| {
                Ok(LeaseRow {
                    name: r.try_get(0)?,
                    holder: r.try_get(1)?,
                    token: r.try_get(2)?,
                    acquired_at_ms: r.try_get(3)?,
                    expires_at_ms: r.try_get(4)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(ClusterRows {
            now_ms,
            nodes,
            leases,
        })
    }
}
