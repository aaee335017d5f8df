//! Test helpers shared by several crates' tests (never by the product).
//!
//! This room holds [`idp`]: a real OIDC provider (`oidc-provider` from npm, run by
//! `testkit/oidc/server.js`) that issues JWT access tokens, rotates keys on restart and
//! signs the tokens a provider would never issue; and [`pg`]: a real, throwaway
//! PostgreSQL server (Debian's binaries, a fresh cluster under `/tmp`, password auth on
//! 127.0.0.1) that hands each test a database of its own and never outlives the test
//! process. It may touch nothing of Freshet's own.

pub mod idp;
pub mod pg;
