//! The audit chain (being built).
