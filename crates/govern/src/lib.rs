//! Governance: who is asking, what they may do, who signed off, and what happened.
//!
//! This room holds [`identity`] (principals, roles, scopes and the one authorization
//! check), [`tokens`] (API tokens: created, listed, revoked, stored hashed and compared
//! in constant time), [`oidc`] (Bearer JWTs validated through an issuer's discovery
//! document and JWKS), [`approvals`] (maker-checker sign-off before a version becomes
//! champion), the [`audit`] chain (hash-linked records, signed checkpoints, verify,
//! export), [`lineage`]'s rules (alias periods, the champion at a time), the model
//! [`inventory`] and MLflow's per-object [`permissions`] (READ, EDIT, MANAGE; the
//! creator manages).
//!
//! It may touch `core` only. It sits under every stage that changes state: services call
//! it once per change; HTTP and CLI wiring live in the binary.

pub mod approvals;
pub mod audit;
pub mod authn;
pub mod error;
pub mod identity;
pub mod inventory;
pub mod lineage;
pub mod oidc;
pub mod permissions;
pub mod service;
mod store;
pub mod tokens;

pub use error::GovernError;
pub use service::Governance;
