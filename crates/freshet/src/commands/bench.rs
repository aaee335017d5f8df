//! `freshet bench ingest` (filled in below).
use crate::cli::BenchIngestArgs;
pub async fn ingest(_a: BenchIngestArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
