//! Small runtimes of the registry's own, for the async clients (Postgres, S3) behind its
//! synchronous contracts. Never dropped: dropping a runtime from inside another one
//! panics, and the stores live as long as the process.

use std::sync::OnceLock;

/// Where a store keeps its runtime (or why it could not start one).
pub(crate) type Dedicated = OnceLock<Result<tokio::runtime::Runtime, String>>;

/// The runtime in `cell`, started on first use with `workers` threads named `name`.
pub(crate) fn dedicated(
    cell: &'static Dedicated,
    name: &'static str,
    workers: usize,
) -> Result<&'static tokio::runtime::Runtime, String> {
    cell.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}
