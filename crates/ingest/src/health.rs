//! Whether each stream's source can reach what it reads from.
//!
//! Connector sources (Kafka, Postgres CDC) and model topics report here when what they
//! read is unreachable or missing, and again when they recover; `/readyz` reads it.
//! Sources that cannot lose their upstream (HTTP, files, generators) never report.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The state of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceState {
    /// `connecting`, `up` or `down`.
    pub status: &'static str,
    /// Why it is not up (never holds credentials or record content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Every reporting source, by stream.
#[derive(Debug, Clone, Default)]
pub struct SourceHealth {
    inner: Arc<RwLock<BTreeMap<String, SourceState>>>,
}

impl SourceHealth {
    pub fn connecting(&self, stream: &str, detail: impl Into<String>) {
        self.set(stream, "connecting", Some(detail.into()));
    }

    pub fn down(&self, stream: &str, detail: impl Into<String>) {
        self.set(stream, "down", Some(detail.into()));
    }

    pub fn up(&self, stream: &str) {
        // Reading first keeps the hot path (a source confirming it is up) lock-free of writers.
        let already = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
            .is_some_and(|s| s.status == "up");
        if !already {
            self.set(stream, "up", None);
        }
    }

    fn set(&self, stream: &str, status: &'static str, detail: Option<String>) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let next = SourceState { status, detail };
        if map.get(stream) != Some(&next) {
            match status {
                "up" => tracing::info!(stream, "source up"),
                _ => tracing::warn!(
                    stream,
                    status,
                    detail = next.detail.as_deref().unwrap_or(""),
                    "source not up"
                ),
            }
            map.insert(stream.to_string(), next);
        }
    }

    /// True when `stream` reported itself up (false when it never reported).
    pub fn is_up(&self, stream: &str) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
            .is_some_and(|s| s.status == "up")
    }

    /// Every reporting source's state.
    pub fn snapshot(&self) -> BTreeMap<String, SourceState> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
