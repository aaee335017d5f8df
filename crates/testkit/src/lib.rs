//! Test helpers shared by several crates' tests (never by the product).
//!
//! This room holds [`idp`]: a real OIDC provider (`oidc-provider` from npm, run by
//! `testkit/oidc/server.js`) that issues JWT access tokens, rotates keys on restart and
//! signs the tokens a provider would never issue. It may touch nothing of Freshet's own.

pub mod idp;
