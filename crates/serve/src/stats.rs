//! What each served version did, per second, for the rollout checks: requests,
//! errors, a latency histogram and the predicted classes. Kept in a ring of one-second
//! buckets so that a rollout phase can ask for "since the phase began".

use std::sync::Mutex;

/// Seconds of history kept per version.
const HISTORY_SECS: usize = 1800;
/// Latency buckets grow by 10% from 1 µs: 170 buckets reach past 10 s.
const LATENCY_BUCKETS: usize = 170;
const GROWTH: f64 = 1.1;
/// Classes counted one by one; the rest share the last slot.
const MAX_CLASSES: usize = 64;

#[derive(Clone)]
struct Bucket {
    second: i64,
    requests: u64,
    errors: u64,
    latency: [u32; LATENCY_BUCKETS],
    classes: Vec<u64>,
}

impl Bucket {
    fn empty(second: i64) -> Self {
        Self {
            second,
            requests: 0,
            errors: 0,
            latency: [0; LATENCY_BUCKETS],
            classes: Vec::new(),
        }
    }
}

fn latency_bucket(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    let i = ((micros as f64).ln() / GROWTH.ln()).ceil() as usize;
    i.min(LATENCY_BUCKETS - 1)
}

fn bucket_upper_micros(i: usize) -> f64 {
    GROWTH.powi(i as i32)
}

/// The `q` quantile of a latency histogram, in milliseconds (0 when empty).
fn percentile_ms(latency: &[u64; LATENCY_BUCKETS], q: f64) -> f64 {
    let total: u64 = latency.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, n) in latency.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_upper_micros(i) / 1000.0;
        }
    }
    0.0
}

/// A summary over a time range.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSummary {
    pub requests: u64,
    pub errors: u64,
    /// Latency percentiles (upper edge of their bucket, so at most 10% high).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Predicted class counts, by class index.
    pub classes: Vec<u64>,
}

/// Per-second statistics of one served version.
pub struct VersionStats {
    ring: Mutex<Vec<Bucket>>,
}

impl Default for VersionStats {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for VersionStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VersionStats").finish_non_exhaustive()
    }
}

impl VersionStats {
    pub fn new() -> Self {
        Self {
            ring: Mutex::new(Vec::new()),
        }
    }

    fn with_bucket(&self, now_ms: i64, f: impl FnOnce(&mut Bucket)) {
        let second = now_ms.div_euclid(1000);
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.is_empty() {
            ring.resize(HISTORY_SECS, Bucket::empty(i64::MIN));
        }
        let slot = second.rem_euclid(HISTORY_SECS as i64) as usize;
        let b = &mut ring[slot];
        if b.second != second {
            *b = Bucket::empty(second);
        }
        f(b);
    }

    /// One answered request: its latency and the class predicted per row.
    pub fn record(&self, now_ms: i64, latency_micros: u64, classes: &[usize]) {
        self.with_bucket(now_ms, |b| {
            b.requests += 1;
            b.latency[latency_bucket(latency_micros)] += 1;
            for &c in classes {
                let c = c.min(MAX_CLASSES - 1);
                if b.classes.len() <= c {
                    b.classes.resize(c + 1, 0);
                }
                b.classes[c] += 1;
            }
        });
    }

    /// One request that failed on the server's side (a client mistake is not the
    /// model's fault and is not counted).
    pub fn record_error(&self, now_ms: i64) {
        self.with_bucket(now_ms, |b| {
            b.requests += 1;
            b.errors += 1;
        });
    }

    /// Everything recorded from `since_ms` to `now_ms` (inclusive seconds).
    pub fn summary(&self, since_ms: i64, now_ms: i64) -> StatsSummary {
        let (from, to) = (since_ms.div_euclid(1000), now_ms.div_euclid(1000));
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = StatsSummary::default();
        let mut latency = [0u64; LATENCY_BUCKETS];
        for b in ring.iter().filter(|b| b.second >= from && b.second <= to) {
            out.requests += b.requests;
            out.errors += b.errors;
            for (acc, n) in latency.iter_mut().zip(b.latency.iter()) {
                *acc += u64::from(*n);
            }
            if out.classes.len() < b.classes.len() {
                out.classes.resize(b.classes.len(), 0);
            }
            for (acc, n) in out.classes.iter_mut().zip(&b.classes) {
                *acc += n;
            }
        }
        out.p50_ms = percentile_ms(&latency, 0.50);
        out.p95_ms = percentile_ms(&latency, 0.95);
        out.p99_ms = percentile_ms(&latency, 0.99);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_within_ten_percent_and_ranges_are_by_second() {
        let s = VersionStats::new();
        for i in 0..99 {
            s.record(1_000, 1_000, &[i % 2]);
        }
        s.record(1_500, 50_000, &[1]);
        s.record_error(2_000);
        let all = s.summary(0, 3_000);
        assert_eq!((all.requests, all.errors), (101, 1));
        assert_eq!(all.classes, vec![50, 50]);
        assert!((1.0..=1.1).contains(&all.p99_ms), "{}", all.p99_ms);
        let later = s.summary(2_000, 3_000);
        assert_eq!((later.requests, later.errors, later.p99_ms), (1, 1, 0.0));
        assert_eq!((later.p50_ms, later.p95_ms), (0.0, 0.0));
        // p50 and p95 fall in the 1 ms bucket; the one 50 ms request is the p100.
        assert!((1.0..=1.1).contains(&all.p50_ms), "{}", all.p50_ms);
        assert!((1.0..=1.1).contains(&all.p95_ms), "{}", all.p95_ms);
        // A bucket reused after the ring wraps forgets its old second.
        s.record(1_000 + HISTORY_SECS as i64 * 1000, 10, &[]);
        assert_eq!(s.summary(0, 1_999).requests, 0);
    }
}
