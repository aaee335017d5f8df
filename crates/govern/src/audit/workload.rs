//! A synthetic workload for measuring the chain, shared by the `audit_bench` test and
//! `freshet bench audit`: records shaped like the ones the server's gate writes, appended
//! by many concurrent appenders that each wait for their record's fsync, as requests do.

use super::{AuditError, AuditEvent, AuditLog, Outcome};
use std::time::{Duration, Instant};

/// The `i`-th record: what the gate writes for an ingest request (most), a feedback
/// request, a denied request and an unauthenticated one, with a UUIDv7-shaped request id.
pub fn sample_event(i: u64) -> AuditEvent {
    let (principal, action, resource, path, outcome, status) = match i % 20 {
        0 => (
            "unknown",
            "ingest",
            "stream:payments",
            "/v1/streams/payments/events",
            Outcome::Unauthenticated,
            None,
        ),
        1 => (
            "token:viewer-3",
            "feedback",
            "stream:payments",
            "/v1/streams/payments/feedback",
            Outcome::Denied,
            None,
        ),
        2..=4 => (
            "token:labeller",
            "feedback",
            "stream:payments",
            "/v1/streams/payments/feedback",
            Outcome::Succeeded,
            Some("200"),
        ),
        _ => (
            "token:producer-7",
            "ingest",
            "stream:payments",
            "/v1/streams/payments/events",
            Outcome::Succeeded,
            Some("200"),
        ),
    };
    let rid = format!(
        "{:08x}-{:04x}-7{:03x}-8{:03x}-{:012x}",
        0x0193_0000 + (i >> 32),
        (i >> 16) & 0xffff,
        (i >> 4) & 0xfff,
        i & 0xfff,
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & 0xffff_ffff_ffff
    );
    let mut ev = AuditEvent::new(principal, action, resource, rid, outcome)
        .with_detail("method", "POST")
        .with_detail("path", path);
    ev = match status {
        Some(s) => ev.with_detail("status", s),
        None if outcome == Outcome::Unauthenticated => {
            ev.with_detail("reason", "missing credential")
        }
        None => ev,
    };
    ev
}

/// Appends `total` sample records from `appenders` concurrent tasks on the current
/// tokio runtime; each task awaits its record's acknowledgement (on disk) before
/// sending the next. Returns every append's latency, in no particular order.
pub async fn append_concurrently(
    log: &AuditLog,
    appenders: u64,
    total: u64,
) -> Result<Vec<Duration>, AuditError> {
    let appenders = appenders.max(1);
    let mut tasks = Vec::new();
    for t in 0..appenders {
        let log = log.clone();
        let n = total / appenders + u64::from(t < total % appenders);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n as usize);
            for k in 0..n {
                let started = Instant::now();
                log.append(sample_event(k * appenders + t)).await?;
                lat.push(started.elapsed());
            }
            Ok::<_, AuditError>(lat)
        }));
    }
    let mut all = Vec::with_capacity(total as usize);
    for t in tasks {
        all.extend(
            t.await
                .map_err(|e| AuditError::WriteFailed(format!("appender: {e}")))??,
        );
    }
    Ok(all)
}
