//! [`DistributedPriorityQueue`]: Apache Curator's `DistributedPriorityQueue`.

use zkwarden::{Result, Warden};

use super::handle::Queue;
use super::naming::{Kind, priority_suffix};
use super::serializer::QueueSerializer;
use super::sink::PutSink;

/// The kind of a priority queue.
#[derive(Debug)]
pub enum Priority {}

/// A queue whose items are taken lowest priority first, sharing its znodes with Curator's
/// `DistributedPriorityQueue`: the priority is part of the node name
/// (`queue-<1 or 0><8 hex digits><sequence>`, so that name order is priority order), and
/// equal priorities go in put order.
///
/// A consumer lists the queue again whenever it changed, so an item put with a lower
/// priority overtakes the ones it has already seen (Curator's `refreshOnWatch`).
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::queue::{BytesSerializer, DistributedPriorityQueue};
///
/// let queue = DistributedPriorityQueue::new(&warden, "/app/urgent", BytesSerializer);
/// queue.put(&b"later".to_vec(), 10).await?;
/// queue.put(&b"first".to_vec(), -5).await?;
/// let first = queue.consumer().next().await?;
/// assert_eq!(first.item(), b"first");
/// # Ok(()) }
/// ```
///
/// # Under Suspended/Lost
///
/// As [`DistributedQueue`](super::DistributedQueue).
pub type DistributedPriorityQueue<T> = Queue<T, Priority>;

impl<T: Send + Sync + 'static> Queue<T, Priority> {
    /// A priority queue at `path` whose items `serializer` encodes.
    pub fn new(warden: &Warden, path: &str, serializer: impl QueueSerializer<T>) -> Self {
        Queue::with_kind(warden, path, serializer, Kind::Priority)
    }

    /// Queues `item` with `priority` (lower is taken first); returns the node's path.
    ///
    /// # Errors
    /// As [`DistributedQueue::put`](super::DistributedQueue::put).
    pub async fn put(&self, item: &T, priority: i32) -> Result<String> {
        self.core.put(&[item], &suffix(&priority)?).await
    }

    /// Queues `items` in one node with `priority`, as Curator's `putMulti`.
    ///
    /// # Errors
    /// As [`put`](Queue::put); `InvalidArgument` for no items.
    pub async fn put_multi(&self, items: &[T], priority: i32) -> Result<String> {
        self.put_slice(items, &suffix(&priority)?).await
    }

    /// [`put`](Queue::put) as a [`Sink`](futures_sink::Sink) of `(item, priority)`.
    pub fn sink(&self) -> PutSink<(T, i32)> {
        self.sink_with(suffix)
    }
}

/// The name of an item with `priority`, after the prefix.
fn suffix(priority: &i32) -> Result<String> {
    Ok(priority_suffix(*priority))
}
