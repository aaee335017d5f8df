//! The registry: the record of every experiment, run, logged model, registered model
//! and version, and the files they point at.
//!
//! This room holds the tracking and model data model, shaped like MLflow's so that its
//! REST API can be served unchanged ([`model`], [`models`]), the validation of MLflow's
//! request limits ([`limits`]), its search languages ([`search`], [`search_models`]),
//! the [`store::TrackingStore`] and [`store::ModelStore`] traits with two
//! implementations — SQLite (WAL, one writer, busy timeout) for one node, Postgres
//! ([`store::postgres`]: pooled, migrated at start, row locks for read-modify-write) for
//! several nodes sharing one registry — and the [`artifacts`] store (local disk, or S3
//! in [`artifacts_s3`]), which checks every path before it touches storage.
//!
//! Depends on `freshet-core`, `rusqlite`, `tokio-postgres` (the Postgres store only) and
//! `object_store`'s S3 client (S3 artifacts only); the HTTP layer maps [`RegistryError`]
//! to MLflow's error codes and statuses in one place.

pub mod api;
pub mod artifacts;
pub mod artifacts_s3;
pub mod error;
pub mod limits;
pub mod model;
pub mod models;
mod runtime;
pub mod search;
pub mod search_models;
pub mod store;

pub use error::{RegistryError, Result};
pub use store::postgres::PostgresStore;
pub use store::sqlite::SqliteStore;
pub use store::{ModelStore, Store, TrackingStore};
