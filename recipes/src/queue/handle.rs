//! [`Queue`]: what every Curator-layout queue kind offers, whatever its `put` looks like.

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;

use zkwarden::warden::LockSafety;
use zkwarden::{Result, Warden};

use super::consumer::{Consumer, ConsumerStream};
use super::core::Core;
use super::naming::Kind;
use super::serializer::QueueSerializer;
use super::sink::PutSink;
use crate::lock::internals::trim_path;

/// A queue on Apache Curator's layout; `K` is the kind, which decides how items are put and
/// ordered: [`DistributedQueue`](super::DistributedQueue),
/// [`DistributedPriorityQueue`](super::DistributedPriorityQueue),
/// [`DistributedDelayQueue`](super::DistributedDelayQueue) and
/// [`DistributedIdQueue`](super::DistributedIdQueue).
///
/// One value serves producers and consumers alike, and clones share nothing but settings.
pub struct Queue<T, K> {
    pub(crate) core: Core<T>,
    kind: PhantomData<fn() -> K>,
}

impl<T, K> Clone for Queue<T, K> {
    fn clone(&self) -> Self {
        Queue {
            core: self.core.clone(),
            kind: PhantomData,
        }
    }
}

impl<T, K> fmt::Debug for Queue<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl<T: Send + 'static, K> Queue<T, K> {
    pub(crate) fn with_kind(
        warden: &Warden,
        path: &str,
        serializer: impl QueueSerializer<T>,
        kind: Kind,
    ) -> Queue<T, K> {
        Queue {
            core: Core::new(warden, path, serializer, kind),
            kind: PhantomData,
        }
    }

    /// Makes consumers lock-safe (Curator's `lockPath`): an item is locked by the ephemeral
    /// node `<lock_path>/<item name>` while its delivery is out, and deleted only when it is
    /// acked (see [`Consumer`]). Curator consumers on the same queue must use the same lock
    /// path, and every consumer of a queue must be lock-safe for the guarantee to hold. The
    /// lock path must not be the queue's own path (its lock nodes would look like items).
    pub fn lock_path(mut self, lock_path: &str) -> Self {
        self.core.lock_path = Some(trim_path(lock_path.to_owned()));
        self
    }

    /// Bounds the queue (Curator's `maxItems`): `put` waits while the queue node has
    /// `max_items` children or more. Several producers may overshoot the bound together by
    /// at most one item each.
    pub fn max_items(mut self, max_items: NonZeroUsize) -> Self {
        self.core.max_items = Some(max_items.get());
        self
    }

    /// When a delivery's [`LockGuard::lost`](crate::lock::LockGuard::lost) resolves
    /// (default: the warden's [`Warden::lock_safety`]). It does not change what an ack does.
    pub fn lock_safety(mut self, safety: LockSafety) -> Self {
        self.core.safety = safety;
        self
    }

    /// The queue node's path.
    pub fn path(&self) -> &str {
        &self.core.path
    }

    /// Creates the queue node (and the lock node, if any) as Curator's `start` does:
    /// persistent, with missing parents as containers. Optional: `put` and consumers make
    /// them when they find them missing.
    ///
    /// # Errors
    /// `NoAuth`; `InvalidPath`; connection errors once the warden's retries are spent;
    /// `Closed`.
    pub async fn create_paths(&self) -> Result<()> {
        self.core.ensure_paths().await
    }

    /// The number of items queued now (lock-safe deliveries not yet acked included).
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent; `Closed`.
    pub async fn len(&self) -> Result<usize> {
        self.core.len().await
    }

    /// A consumer of this queue.
    pub fn consumer(&self) -> Consumer<T> {
        Consumer::new(self.core.clone())
    }

    /// A consumer of this queue as a [`Stream`](futures_core::Stream).
    pub fn stream(&self) -> ConsumerStream<T> {
        self.consumer().into_stream()
    }
}

impl<T: Send + Sync + 'static, K> Queue<T, K> {
    /// Puts the items of one node named by `suffix` (see [`Core::put`]).
    pub(crate) async fn put_slice(&self, items: &[T], suffix: &str) -> Result<String> {
        let items: Vec<&T> = items.iter().collect();
        self.core.put(&items, suffix).await
    }

    /// A sink of `(item, key)`, each put in a node named by `suffix(&key)`.
    pub(crate) fn sink_with<I: Send + 'static>(
        &self,
        suffix: fn(&I) -> Result<String>,
    ) -> PutSink<(T, I)> {
        let core = self.core.clone();
        PutSink::new(move |(item, key): (T, I)| {
            let core = core.clone();
            Box::pin(async move { core.put(&[&item], &suffix(&key)?).await })
        })
    }
}
