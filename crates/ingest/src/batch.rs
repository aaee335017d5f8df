//! Micro-batching: one committer task per stream groups submissions until the commit
//! policy's row, byte or latency bound is reached, commits the group through the
//! [`TableSink`], then acknowledges every submission in it. While a commit runs, new
//! submissions queue, so batch size adapts to load (group commit).
//!
//! Memory is bounded by a shared [`Semaphore`] of record permits: a source acquires
//! permits for its records before submitting, and they are released only once the
//! commit is done. When none are left, HTTP answers 503 with `Retry-After`.

use crate::error::IngestError;
use crate::sink::{CommitReceipt, Submission, TableSink};
use freshet_core::config::CommitPolicy;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

/// Observes commits, for metrics. Implemented by the binary.
pub trait CommitObserver: Send + Sync + 'static {
    fn committed(
        &self,
        stream: &str,
        receipt: &CommitReceipt,
        records: usize,
        bytes: usize,
        took: Duration,
    );
    fn failed(&self, stream: &str, error: &str);
}

/// A no-op observer.
#[derive(Debug, Default)]
pub struct NoObserver;
impl CommitObserver for NoObserver {
    fn committed(&self, _: &str, _: &CommitReceipt, _: usize, _: usize, _: Duration) {}
    fn failed(&self, _: &str, _: &str) {}
}

struct Pending {
    submission: Submission,
    bytes: usize,
    /// When the submission was handed over: the latency bound counts from here, so a
    /// submission that queued during the previous commit does not wait again.
    arrived: tokio::time::Instant,
    done: oneshot::Sender<Result<CommitReceipt, IngestError>>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Handle to a stream's committer task.
#[derive(Clone)]
pub struct Committer {
    stream: Arc<str>,
    tx: mpsc::UnboundedSender<Pending>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

/// Acknowledgement of a submission, resolved after its commit.
pub type Ack = oneshot::Receiver<Result<CommitReceipt, IngestError>>;

impl Committer {
    /// Start the committer task of `stream`. `permits` is shared by all streams and its
    /// initial size is `capacity`.
    pub fn spawn(
        stream: &str,
        policy: CommitPolicy,
        sink: Arc<dyn TableSink>,
        observer: Arc<dyn CommitObserver>,
        permits: Arc<Semaphore>,
        capacity: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stream: Arc<str> = stream.into();
        let task = tokio::spawn(run(stream.clone(), policy, sink, observer, rx));
        (
            Self {
                stream,
                tx,
                permits,
                capacity,
            },
            task,
        )
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// Reserve room for `n` records without waiting; fails when ingest is saturated.
    pub fn try_reserve(&self, n: usize) -> Result<Option<OwnedSemaphorePermit>, IngestError> {
        if n == 0 {
            return Ok(None);
        }
        if n > self.capacity {
            return Err(IngestError::TooLarge(format!(
                "{n} records in one request exceeds the buffer of {} records; split the request",
                self.capacity
            )));
        }
        let n32 = u32::try_from(n).map_err(|_| IngestError::TooLarge("too many records".into()))?;
        self.permits
            .clone()
            .try_acquire_many_owned(n32)
            .map(Some)
            .map_err(|_| IngestError::Saturated("too many records are waiting for a commit".into()))
    }

    /// Reserve room for `n` records, waiting as long as needed (file and generator sources).
    pub async fn reserve(&self, n: usize) -> Result<Option<OwnedSemaphorePermit>, IngestError> {
        if n == 0 {
            return Ok(None);
        }
        let n = n.min(self.capacity);
        let n32 = u32::try_from(n).map_err(|_| IngestError::TooLarge("too many records".into()))?;
        self.permits
            .clone()
            .acquire_many_owned(n32)
            .await
            .map(Some)
            .map_err(|_| IngestError::ShuttingDown)
    }

    /// Hand a submission over; the returned [`Ack`] resolves after its commit.
    pub fn submit(
        &self,
        submission: Submission,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Ack, IngestError> {
        let (done, ack) = oneshot::channel();
        let bytes = submission.approx_bytes();
        self.tx
            .send(Pending {
                submission,
                bytes,
                arrived: tokio::time::Instant::now(),
                done,
                _permit: permit,
            })
            .map_err(|_| IngestError::ShuttingDown)?;
        Ok(ack)
    }
}

async fn run(
    stream: Arc<str>,
    policy: CommitPolicy,
    sink: Arc<dyn TableSink>,
    observer: Arc<dyn CommitObserver>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let max_rows = policy.max_rows.get();
    let max_bytes = policy.max_bytes.get();
    let max_latency = Duration::from_millis(policy.max_latency_ms.get());
    while let Some(first) = rx.recv().await {
        let deadline = first.arrived + max_latency;
        let mut rows = first.submission.record_count();
        let mut bytes = first.bytes;
        let mut group = vec![first];
        // Take whatever is already queued without waiting, then wait up to the deadline.
        while rows < max_rows && bytes < max_bytes {
            let next = match rx.try_recv() {
                Ok(p) => Some(p),
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .ok()
                        .flatten()
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            };
            let Some(p) = next else { break };
            rows += p.submission.record_count();
            bytes += p.bytes;
            group.push(p);
        }
        commit_group(&stream, &*sink, &*observer, group, rows, bytes).await;
    }
}

async fn commit_group(
    stream: &str,
    sink: &dyn TableSink,
    observer: &dyn CommitObserver,
    group: Vec<Pending>,
    records: usize,
    bytes: usize,
) {
    let (subs, rest): (Vec<Submission>, Vec<_>) = group
        .into_iter()
        .map(|p| (p.submission, (p.done, p._permit)))
        .unzip();
    let started = Instant::now();
    let result = sink.commit(stream, &subs).await;
    let took = started.elapsed();
    match &result {
        Ok(r) => observer.committed(stream, r, records, bytes, took),
        Err(e) => {
            tracing::error!(stream, error = %e, "commit failed; submissions are not acknowledged");
            observer.failed(stream, e);
        }
    }
    drop(subs);
    for (done, permit) in rest {
        let _ = done.send(result.clone().map_err(IngestError::Commit));
        drop(permit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Txn;
    use futures::FutureExt;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    #[derive(Default)]
    struct MemorySink {
        groups: Mutex<Vec<usize>>,
        txns: Mutex<std::collections::HashMap<String, i64>>,
    }

    impl TableSink for MemorySink {
        fn commit<'a>(
            &'a self,
            _: &'a str,
            group: &'a [Submission],
        ) -> BoxFuture<'a, Result<CommitReceipt, String>> {
            async move {
                let mut txns = self.txns.lock().map_err(|e| e.to_string())?;
                let mut rows = 0;
                let mut skipped = 0;
                for s in group {
                    if let Some(t) = &s.txn
                        && txns.get(&t.app_id).is_some_and(|v| *v >= t.version)
                    {
                        skipped += 1;
                        continue;
                    }
                    if let Some(t) = &s.txn {
                        txns.insert(t.app_id.clone(), t.version);
                    }
                    rows += s.rows.len();
                }
                self.groups.lock().map_err(|e| e.to_string())?.push(rows);
                Ok(CommitReceipt {
                    version: Some(1),
                    rows_written: rows,
                    dead_written: 0,
                    replays_skipped: skipped,
                })
            }
            .boxed()
        }
        fn txn_version<'a>(
            &'a self,
            _: &'a str,
            app: &'a str,
        ) -> BoxFuture<'a, Result<Option<i64>, String>> {
            async move {
                Ok(self
                    .txns
                    .lock()
                    .map_err(|e| e.to_string())?
                    .get(app)
                    .copied())
            }
            .boxed()
        }
    }

    fn sub(n: usize, txn: Option<Txn>) -> Submission {
        Submission {
            rows: vec![vec![freshet_core::Value::Int(1)]; n],
            txn,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn groups_respect_the_row_bound_and_ack_after_commit() {
        let sink = Arc::new(MemorySink::default());
        let policy = CommitPolicy {
            max_rows: std::num::NonZeroUsize::new(10).unwrap(),
            max_latency_ms: std::num::NonZeroU64::new(50).unwrap(),
            ..Default::default()
        };
        let permits = Arc::new(Semaphore::new(1000));
        let (c, _task) = Committer::spawn(
            "s",
            policy,
            sink.clone(),
            Arc::new(NoObserver),
            permits.clone(),
            1000,
        );
        let mut acks = Vec::new();
        for _ in 0..6 {
            let p = c.try_reserve(4).unwrap();
            acks.push(c.submit(sub(4, None), p).unwrap());
        }
        for a in acks {
            assert_eq!(a.await.unwrap().unwrap().version, Some(1));
        }
        let groups = sink.groups.lock().unwrap().clone();
        assert_eq!(groups.iter().sum::<usize>(), 24);
        assert!(groups.iter().all(|g| *g <= 12), "{groups:?}");
        assert_eq!(
            permits.available_permits(),
            1000,
            "permits are released after commit"
        );
    }

    #[tokio::test]
    async fn saturation_is_reported_and_oversized_requests_are_refused() {
        let sink = Arc::new(MemorySink::default());
        let permits = Arc::new(Semaphore::new(10));
        let (c, _task) = Committer::spawn(
            "s",
            CommitPolicy::default(),
            sink,
            Arc::new(NoObserver),
            permits,
            10,
        );
        let held = c.try_reserve(8).unwrap();
        assert!(matches!(c.try_reserve(5), Err(IngestError::Saturated(_))));
        assert!(matches!(c.try_reserve(11), Err(IngestError::TooLarge(_))));
        drop(held);
        assert!(c.try_reserve(5).is_ok());
    }

    #[tokio::test]
    async fn a_replayed_transaction_is_skipped() {
        let sink = Arc::new(MemorySink::default());
        let permits = Arc::new(Semaphore::new(100));
        let (c, _task) = Committer::spawn(
            "s",
            CommitPolicy::default(),
            sink.clone(),
            Arc::new(NoObserver),
            permits,
            100,
        );
        let t = Txn {
            app_id: "file:x".into(),
            version: 5,
            after: None,
        };
        let a = c
            .submit(sub(3, Some(t.clone())), None)
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        let b = c
            .submit(sub(3, Some(t)), None)
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.rows_written, 3);
        assert_eq!(b.rows_written, 0);
        assert_eq!(b.replays_skipped, 1);
    }
}
