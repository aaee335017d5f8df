//! Prometheus metrics of ingest, registered into the server's registry.

use crate::batch::CommitObserver;
use crate::sink::CommitReceipt;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use std::time::Duration;

/// Counters and histograms per stream.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    pub records_in: IntCounterVec,
    pub records_out: IntCounterVec,
    pub records_rejected: IntCounterVec,
    pub records_filtered: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub commit_seconds: HistogramVec,
    pub commit_records: HistogramVec,
    pub commit_failures: IntCounterVec,
    pub buffered_records: IntGauge,
    pub ack_seconds: Histogram,
}

impl IngestMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), &["stream"])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let commit_seconds = HistogramVec::new(
            HistogramOpts::new(
                "freshet_commit_duration_seconds",
                "Delta commit latency per stream",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["stream"],
        )?;
        registry.register(Box::new(commit_seconds.clone()))?;
        let commit_records = HistogramVec::new(
            HistogramOpts::new("freshet_commit_records", "Records per Delta commit")
                .buckets(prometheus::exponential_buckets(1.0, 4.0, 10)?),
            &["stream"],
        )?;
        registry.register(Box::new(commit_records.clone()))?;
        let buffered_records = IntGauge::new(
            "freshet_buffered_records",
            "Records accepted but not yet committed",
        )?;
        registry.register(Box::new(buffered_records.clone()))?;
        let ack_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "freshet_ingest_ack_seconds",
                "Time from request to acknowledgement",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )?;
        registry.register(Box::new(ack_seconds.clone()))?;
        Ok(Self {
            records_in: counter("freshet_records_in_total", "Records received per stream")?,
            records_out: counter(
                "freshet_records_out_total",
                "Records committed to the event table",
            )?,
            records_rejected: counter(
                "freshet_records_rejected_total",
                "Records rejected by a processor",
            )?,
            records_filtered: counter(
                "freshet_records_filtered_total",
                "Records excluded by a filter",
            )?,
            dead_letters: counter(
                "freshet_dead_letters_total",
                "Records committed to the dead-letter table",
            )?,
            commit_failures: counter("freshet_commit_failures_total", "Failed commits")?,
            commit_seconds,
            commit_records,
            buffered_records,
            ack_seconds,
        })
    }
}

impl CommitObserver for IngestMetrics {
    fn committed(
        &self,
        stream: &str,
        r: &CommitReceipt,
        records: usize,
        _bytes: usize,
        took: Duration,
    ) {
        self.records_out
            .with_label_values(&[stream])
            .inc_by(r.rows_written as u64);
        self.dead_letters
            .with_label_values(&[stream])
            .inc_by(r.dead_written as u64);
        self.commit_seconds
            .with_label_values(&[stream])
            .observe(took.as_secs_f64());
        self.commit_records
            .with_label_values(&[stream])
            .observe(records as f64);
    }
    fn failed(&self, stream: &str, _error: &str) {
        self.commit_failures.with_label_values(&[stream]).inc();
    }
}
