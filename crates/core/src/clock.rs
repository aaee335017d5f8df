//! Time comes in through a [`Clock`] so that time-based logic (commit latency bounds,
//! retention, partition dates) is testable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of wall-clock time in microseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_micros(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        chrono::Utc::now().timestamp_micros()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Default, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_micros: i64) -> Self {
        Self(Arc::new(AtomicI64::new(start_micros)))
    }
    pub fn advance_micros(&self, by: i64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Days since the Unix epoch for a timestamp in microseconds (UTC), as Delta stores dates.
pub fn micros_to_epoch_days(micros: i64) -> i32 {
    micros.div_euclid(86_400_000_000) as i32
}
