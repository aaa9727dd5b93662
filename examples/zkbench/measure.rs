//! Measuring one timed section: wall time, CPU of the whole process (every thread, so a
//! client's background threads count too), allocations, and per-op latencies.

use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeValLike;

use crate::driver::{BenchError, BenchResult};

/// CPU seconds (user, system) this process has used so far.
fn cpu_now() -> BenchResult<(f64, f64)> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(|e| BenchError::new("getrusage", e))?;
    let secs = |tv: nix::sys::time::TimeVal| tv.num_microseconds() as f64 / 1e6;
    Ok((secs(usage.user_time()), secs(usage.system_time())))
}

/// Peak resident set size of this process, in KiB.
pub(crate) fn max_rss_kb() -> BenchResult<u64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(|e| BenchError::new("getrusage", e))?;
    Ok(u64::try_from(usage.max_rss()).unwrap_or(0))
}

/// Allocations (count, bytes) made by the whole process so far.
fn allocs_now() -> (u64, u64) {
    let stats = crate::ALLOCATOR.stats();
    (stats.allocations as u64, stats.bytes_allocated as u64)
}

/// What a timed section cost.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Operations completed.
    pub ops: u64,
    pub wall: Duration,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub allocs: u64,
    pub alloc_bytes: u64,
    /// Per-op latencies in nanoseconds, for the workloads where one op is one round trip.
    pub latencies_ns: Option<Vec<u64>>,
}

/// The readings at the start of a timed section. Start it after all setup, stop it before
/// any cleanup.
pub(crate) struct Probe {
    cpu: (f64, f64),
    allocs: (u64, u64),
    started: Instant,
}

impl Probe {
    pub(crate) fn start() -> BenchResult<Probe> {
        let allocs = allocs_now();
        let cpu = cpu_now()?;
        Ok(Probe {
            cpu,
            allocs,
            started: Instant::now(),
        })
    }

    pub(crate) fn stop(self, ops: u64, latencies_ns: Option<Vec<u64>>) -> BenchResult<Sample> {
        let wall = self.started.elapsed();
        let cpu = cpu_now()?;
        let allocs = allocs_now();
        Ok(Sample {
            ops,
            wall,
            cpu_user_s: (cpu.0 - self.cpu.0).max(0.0),
            cpu_sys_s: (cpu.1 - self.cpu.1).max(0.0),
            allocs: allocs.0.saturating_sub(self.allocs.0),
            alloc_bytes: allocs.1.saturating_sub(self.allocs.1),
            latencies_ns,
        })
    }
}

/// Latencies of ops done one at a time, in a buffer sized before the timed section so that
/// recording them allocates nothing.
pub(crate) struct Latencies(Vec<u64>);

impl Latencies {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Latencies(Vec::with_capacity(n))
    }

    pub(crate) fn record(&mut self, since: Instant) {
        self.0
            .push(u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    pub(crate) fn into_inner(self) -> Vec<u64> {
        self.0
    }
}

/// The `p`-quantile (0 < p <= 1) of `sorted` by nearest rank, in microseconds.
pub(crate) fn percentile_us(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[index] as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::percentile_us;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile_us(&v, 0.5), Some(50.0));
        assert_eq!(percentile_us(&v, 0.99), Some(99.0));
        assert_eq!(percentile_us(&[7000], 0.99), Some(7.0));
        assert_eq!(percentile_us(&[], 0.5), None);
    }
}
