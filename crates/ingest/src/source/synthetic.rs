//! Runs a generator into a stream: rate-limited or as fast as the lake takes it,
//! resuming from the position recorded in the event table.

use crate::decode::DecodedRecord;
use crate::error::{IngestError, Result};
use crate::service::IngestService;
use crate::sink::Txn;
use crate::source::generator::Generator;
use freshet_core::config::GeneratorConfig;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The transaction id of a stream's generator.
pub fn generator_app_id(stream: &str) -> String {
    format!("generator:{stream}")
}

/// Feed `stream` from its generator until the limit or until `stop` turns true.
/// Returns the position reached.
pub async fn run_generator(
    service: Arc<IngestService>,
    stream: String,
    cfg: GeneratorConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<u64> {
    let rt = service.stream(&stream)?.clone();
    let app_id = generator_app_id(&stream);
    let resume = service
        .sink()
        .txn_version(&stream, &app_id)
        .await
        .map_err(IngestError::Commit)?;
    let mut generator = Generator::new(&cfg);
    generator.seek(resume.unwrap_or(0).max(0) as u64);
    // The position each chunk follows on (see `Txn::after`).
    let mut prev_version = resume.unwrap_or(-1);
    let source: Arc<str> = app_id.as_str().into();
    let id_prefix = format!("gen{}", cfg.seed);
    // A tick every 100 ms when rate-limited; big chunks otherwise.
    let (chunk, tick) = match cfg.rate_per_sec {
        Some(r) => (
            ((r.get() as f64) / 10.0).ceil().max(1.0) as usize,
            Some(Duration::from_millis(100)),
        ),
        None => (5_000, None),
    };
    let mut interval = tick.map(tokio::time::interval);
    let mut in_flight = VecDeque::new();
    let mut carry = 0.0f64;
    loop {
        if *stop.borrow() {
            break;
        }
        if let Some(iv) = interval.as_mut() {
            tokio::select! {
                _ = iv.tick() => {}
                _ = stop.changed() => continue,
            }
        }
        // Fractional rates accumulate so that the long-run rate is exact.
        let mut n = chunk;
        if let Some(r) = cfg.rate_per_sec {
            carry += r.get() as f64 / 10.0;
            n = carry.floor() as usize;
            carry -= n as f64;
        }
        let first = generator.position();
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            match generator.next_row() {
                Some(values) => records.push(DecodedRecord {
                    values,
                    problem: None,
                }),
                None => break,
            }
        }
        if records.is_empty() {
            if n == 0 {
                continue;
            }
            break;
        }
        let txn = Txn {
            app_id: app_id.clone(),
            version: generator.position() as i64,
            after: Some(prev_version),
        };
        prev_version = txn.version;
        let (_, ack) = service
            .submit_decoded(
                &rt,
                records,
                source.clone(),
                &id_prefix,
                first as i64,
                Some(txn),
                false,
            )
            .await?;
        in_flight.push_back(ack);
        while in_flight.len() > 4 {
            if let Some(a) = in_flight.pop_front() {
                a.await.map_err(|_| IngestError::ShuttingDown)??;
            }
        }
    }
    while let Some(a) = in_flight.pop_front() {
        a.await.map_err(|_| IngestError::ShuttingDown)??;
    }
    Ok(generator.position())
}
