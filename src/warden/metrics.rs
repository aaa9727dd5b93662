//! Counters a warden keeps, and the snapshot it hands out; with cargo feature `metrics`, the
//! same events also go to the [`metrics`](https://docs.rs/metrics) facade, so an application
//! exports them with the recorder it installs (Prometheus, OpenTelemetry, StatsD, ...).
//!
//! | name (Prometheus: dots become `_`) | kind | labels | what |
//! |---|---|---|---|
//! | `db.client.operation.duration` | histogram, seconds | `db.system.name`, `db.operation.name`, `error.type` on failure | one logical operation, retries included |
//! | `zkwarden.operations` | counter | `db.operation.name`, `outcome` (`ok` or the error) | logical operations finished |
//! | `zkwarden.operations.in_flight` | gauge | | logical operations running now |
//! | `zkwarden.retries` | counter | | attempts beyond the first |
//! | `zkwarden.reconnects` | counter | | reconnections to the same session |
//! | `zkwarden.sessions.rebuilt` | counter | | new sessions built after a loss |
//! | `zkwarden.connection.transitions` | counter | `state` | connection state changes |
//! | `zkwarden.connection.suspended.time` | gauge, seconds | | total time without a connection, added at each reconnection |
//! | `zkwarden.watch.events` | counter | | events handed to resilient watch streams |
//! | `zkwarden.watches.live` | gauge | | resilient watches alive |

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

/// What the facade is told about; each also has its field in [`Metrics`] (or is an
/// operation, which [`Metrics::op_started`] follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Attempts beyond the first.
    Retry,
    /// Reconnections to the same session.
    Reconnect,
    /// New sessions after a loss.
    Rebuild,
}

impl Metrics {
    /// Counts one `what`.
    pub(crate) fn count(&self, what: Counted) {
        let (field, _name) = match what {
            Counted::Retry => (&self.retries, "zkwarden.retries"),
            Counted::Reconnect => (&self.reconnects, "zkwarden.reconnects"),
            Counted::Rebuild => (&self.rebuilds, "zkwarden.sessions.rebuilt"),
        };
        field.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::counter!(_name).increment(1);
    }

    /// A logical operation `op` begins; the returned guard records how it ended.
    pub(crate) fn op_started(&self, op: &'static str) -> OpTimer {
        self.ops.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::gauge!("zkwarden.operations.in_flight").increment(1.0);
        OpTimer {
            op,
            started: Instant::now(),
        }
    }

    /// The connection changed to `state`.
    pub(crate) fn transition(&self, state: super::ConnectionState) {
        use super::ConnectionState as S;
        match state {
            S::Suspended | S::Lost | S::AuthFailed => self.suspended_now(),
            S::Connected | S::Reconnected | S::ReadOnly => self.connected_now(),
            S::Closed => {}
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("zkwarden.connection.transitions", "state" => state_label(state))
            .increment(1);
    }

    /// One event handed to a resilient watch's stream.
    pub(crate) fn watch_event() {
        #[cfg(feature = "metrics")]
        metrics::counter!("zkwarden.watch.events").increment(1);
    }

    /// A resilient watch started (`+1`) or ended (`-1`).
    pub(crate) fn live_watch(&self, change: i64) {
        let _now = self.live_watches.fetch_add(change, Ordering::Relaxed) + change;
        #[cfg(feature = "metrics")]
        metrics::gauge!("zkwarden.watches.live").set(_now.max(0) as f64);
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
                let _suspended = since.elapsed();
                clock.total += _suspended;
                #[cfg(feature = "metrics")]
                metrics::gauge!("zkwarden.connection.suspended.time")
                    .increment(_suspended.as_secs_f64());
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

/// Follows one logical operation; [`OpTimer::finish`] records its outcome and duration.
#[derive(Debug)]
pub(crate) struct OpTimer {
    op: &'static str,
    started: Instant,
}

impl OpTimer {
    /// The operation ended with `result`.
    pub(crate) fn finish<T>(self, result: &crate::error::Result<T>) {
        let _ = (self.op, self.started);
        #[cfg(feature = "metrics")]
        {
            let seconds = self.started.elapsed().as_secs_f64();
            let name = ("db.operation.name", self.op);
            match result {
                Ok(_) => {
                    metrics::histogram!("db.client.operation.duration",
                        "db.system.name" => "zookeeper", name.0 => name.1)
                    .record(seconds);
                    metrics::counter!("zkwarden.operations", name.0 => name.1, "outcome" => "ok")
                        .increment(1);
                }
                Err(error) => {
                    let kind = error.kind_name();
                    metrics::histogram!("db.client.operation.duration",
                        "db.system.name" => "zookeeper", name.0 => name.1, "error.type" => kind.clone())
                    .record(seconds);
                    metrics::counter!("zkwarden.operations", name.0 => name.1, "outcome" => kind)
                        .increment(1);
                }
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = result;
    }
}

#[cfg(feature = "metrics")]
impl Drop for OpTimer {
    fn drop(&mut self) {
        // Finished or cancelled (its future dropped), the operation is no longer in flight.
        metrics::gauge!("zkwarden.operations.in_flight").decrement(1.0);
    }
}

/// The state's name as a label.
#[cfg(feature = "metrics")]
fn state_label(state: super::ConnectionState) -> &'static str {
    use super::ConnectionState as S;
    match state {
        S::Connected => "connected",
        S::Suspended => "suspended",
        S::Reconnected => "reconnected",
        S::Lost => "lost",
        S::ReadOnly => "read_only",
        S::AuthFailed => "auth_failed",
        S::Closed => "closed",
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
