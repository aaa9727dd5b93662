//! Counters a warden keeps, and the snapshot it hands out.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Live counters, updated as things happen.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub ops: AtomicU64,
    pub retries: AtomicU64,
    pub reconnects: AtomicU64,
    pub rebuilds: AtomicU64,
    pub live_watches: AtomicI64,
    pub janitor_backlog: AtomicI64,
    pub pending_deletes: AtomicI64,
    suspended: Mutex<SuspendedClock>,
}

#[derive(Debug, Default)]
struct SuspendedClock {
    total: Duration,
    since: Option<Instant>,
}

impl Metrics {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts counting time without a connection (idempotent).
    pub(crate) fn suspended_now(&self) {
        if let Ok(mut clock) = self.suspended.lock() {
            clock.since.get_or_insert_with(Instant::now);
        }
    }

    /// Stops counting time without a connection.
    pub(crate) fn connected_now(&self) {
        if let Ok(mut clock) = self.suspended.lock() {
            if let Some(since) = clock.since.take() {
                clock.total += since.elapsed();
            }
        }
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let time_suspended = self
            .suspended
            .lock()
            .map(|c| c.total + c.since.map_or(Duration::ZERO, |s| s.elapsed()))
            .unwrap_or_default();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let load_signed = |c: &AtomicI64| c.load(Ordering::Relaxed).max(0) as u64;
        MetricsSnapshot {
            ops: load(&self.ops),
            retries: load(&self.retries),
            reconnects: load(&self.reconnects),
            rebuilds: load(&self.rebuilds),
            time_suspended,
            live_watches: load_signed(&self.live_watches),
            janitor_backlog: load_signed(&self.janitor_backlog),
            pending_deletes: load_signed(&self.pending_deletes),
        }
    }
}

/// What a warden has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetricsSnapshot {
    /// Logical operations started.
    pub ops: u64,
    /// Retries made (attempts beyond the first).
    pub retries: u64,
    /// Reconnections to the same session.
    pub reconnects: u64,
    /// New sessions built after a loss.
    pub rebuilds: u64,
    /// Total time without a connection.
    pub time_suspended: Duration,
    /// Resilient watches alive now.
    pub live_watches: u64,
    /// Abandoned nodes waiting for the janitor.
    pub janitor_backlog: u64,
    /// Guaranteed deletes not yet done.
    pub pending_deletes: u64,
}
