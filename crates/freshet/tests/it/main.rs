//! In-process integration tests of the `freshet` server, in one test binary: a server
//! on an ephemeral port per test (see `support`), driven over HTTP and the file and
//! generator sources, checked against what lands in the Delta tables.

mod approvals;
mod backpressure;
mod bad_input;
mod govern;
mod idempotency;
mod lineage;
mod live;
mod metrics;
mod mlflow_api;
mod mlflow_models;
mod mlflow_permissions;
mod monitoring;
mod oidc;
mod pii;
mod properties;
mod rollout;
mod rollout_api;
mod roundtrip;
mod serving;
mod support;
mod tls;
