//! Where records come from.

pub mod file;
pub mod generator;
pub mod http;
pub mod synthetic;
