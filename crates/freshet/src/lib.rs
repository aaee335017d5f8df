//! The `freshet` binary's library: CLI definitions, commands, configuration loading and
//! the wiring of the stage crates (ingest → lake) into one server.
//!
//! It may depend on every crate of the workspace; nothing depends on it. Integration
//! tests drive it in-process through [`runtime::Runtime`] and [`server::app`].

pub mod cli;
pub mod commands;
pub mod governance;
pub mod lake_sink;
pub mod monitoring;
pub mod runtime;
pub mod server;
