//! [`ReadLimit`]: how many reads caches keep in flight at once.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many reads a cache keeps in flight while it loads or resyncs, unless set with
/// [`TreeCacheBuilder::max_reads_in_flight`](super::TreeCacheBuilder::max_reads_in_flight)
/// or [`TreeCacheBuilder::read_limit`](super::TreeCacheBuilder::read_limit).
pub const DEFAULT_READS_IN_FLIGHT: usize = 2048;

/// A bound on the node reads in flight at once, shared by every cache built with a clone of
/// it.
///
/// Each cache loads and resyncs with its reads pipelined, up to its limit. Caches on the same
/// warden that all resync after the same reconnection would otherwise send their reads
/// together; giving them one `ReadLimit` bounds what the server sees at once, however many
/// caches there are. A read of a node's data and a listing of its children each count as one.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::cache::{ReadLimit, TreeCache};
///
/// let limit = ReadLimit::new(1000);
/// let mut caches = Vec::new();
/// for path in ["/a", "/b", "/c"] {
///     let builder = TreeCache::builder(&warden, path).read_limit(limit.clone());
///     caches.push(builder.start().await?);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ReadLimit {
    inner: Arc<Inner>,
}

struct Inner {
    permits: Arc<Semaphore>,
    max: usize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl fmt::Debug for ReadLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadLimit")
            .field("max", &self.inner.max)
            .field("in_flight", &self.in_flight())
            .field("peak", &self.peak())
            .finish()
    }
}

impl ReadLimit {
    /// A limit of `max` reads in flight (at least 1).
    pub fn new(max: usize) -> ReadLimit {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        ReadLimit {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max)),
                max,
                in_flight: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }),
        }
    }

    /// The most reads allowed in flight at once.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// The reads in flight now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// The most reads that were in flight at once since the limit was made or
    /// [`reset_peak`](Self::reset_peak) was last called.
    pub fn peak(&self) -> usize {
        self.inner.peak.load(Ordering::Relaxed)
    }

    /// Starts counting [`peak`](Self::peak) again from the reads in flight now.
    pub fn reset_peak(&self) {
        self.inner.peak.store(self.in_flight(), Ordering::Relaxed);
    }

    /// Waits until `count` more reads may be in flight (`count` is capped at the limit, so
    /// that a large batch cannot wait forever), and holds them until the returned pass is
    /// dropped.
    pub(super) async fn admit(&self, count: usize) -> Pass {
        let count = count.clamp(1, self.inner.max);
        // The semaphore is never closed, so acquiring only fails if it were.
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_many_owned(count as u32)
            .await
            .ok();
        let now = self.inner.in_flight.fetch_add(count, Ordering::Relaxed) + count;
        self.inner.peak.fetch_max(now, Ordering::Relaxed);
        Pass {
            inner: self.inner.clone(),
            count,
            _permit: permit,
        }
    }
}

/// Reads admitted by a [`ReadLimit`], released when dropped.
pub(super) struct Pass {
    inner: Arc<Inner>,
    count: usize,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.inner
            .in_flight
            .fetch_sub(self.count, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_are_bounded_and_counted() {
        let limit = ReadLimit::new(10);
        let a = limit.admit(6).await;
        let b = limit.admit(4).await;
        assert_eq!(limit.in_flight(), 10);
        // A third pass waits until one is dropped.
        let waiting = limit.admit(3);
        tokio::pin!(waiting);
        assert!(futures_util::poll!(&mut waiting).is_pending());
        drop(a);
        let c = waiting.await;
        assert_eq!(limit.in_flight(), 7);
        assert_eq!(limit.peak(), 10);
        drop((b, c));
        limit.reset_peak();
        assert_eq!(limit.peak(), 0);
        // More than the limit is capped rather than waiting forever.
        let big = limit.admit(50).await;
        assert_eq!(limit.in_flight(), 10);
        drop(big);
    }
}
