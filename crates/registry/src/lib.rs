//! The registry: the record of every experiment, run and (later) model version.
//!
//! This room holds the tracking data model, shaped like MLflow's so that its REST API
//! can be served unchanged ([`model`]), the validation of MLflow's request limits
//! ([`limits`]), and the [`store::TrackingStore`] trait with its SQLite implementation
//! (WAL, one writer, busy timeout). Postgres can follow behind the same trait.
//!
//! Depends on `freshet-core` only; the HTTP layer maps [`RegistryError`] to MLflow's
//! error codes and statuses in one place.

pub mod api;
pub mod artifacts;
pub mod error;
pub mod limits;
pub mod model;
pub mod models;
pub mod search;
pub mod search_models;
pub mod store;

pub use error::{RegistryError, Result};
pub use store::sqlite::SqliteStore;
pub use store::{ModelStore, Store, TrackingStore};
