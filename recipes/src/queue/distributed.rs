//! [`DistributedQueue`]: Apache Curator's `DistributedQueue`, first in, first out.

use zkwarden::{Result, Warden};

use super::handle::Queue;
use super::naming::Kind;
use super::serializer::QueueSerializer;
use super::sink::PutSink;

/// The kind of a plain first-in-first-out queue.
#[derive(Debug)]
pub enum Fifo {}

/// A first-in-first-out queue sharing its znodes with Curator's `DistributedQueue`: every
/// `put` creates the persistent sequential node `<path>/queue-<sequence>` holding the item
/// in Curator's item format, and consumers take nodes in sequence order.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::queue::{DistributedQueue, JsonSerializer};
///
/// let queue = DistributedQueue::new(&warden, "/app/jobs", JsonSerializer::<String>::new())
///     .lock_path("/app/jobs-locks");
/// queue.put(&"resize image 7".to_owned()).await?;
/// let mut consumer = queue.consumer();
/// let job = consumer.next().await?;
/// println!("working on {}", job.item());
/// job.ack().await?;
/// # Ok(()) }
/// ```
///
/// # Under Suspended/Lost
///
/// Items are persistent nodes: neither state loses one. A `put` waits for the connection
/// while `Suspended` and is retried within the warden's policy; a `put` whose reply was lost
/// is not repeated (it may have created a node: a second one would be a duplicate) and fails
/// with `ConnectionLoss`: the item may or may not be queued, as with Curator. Consumers:
/// see [`Consumer`](super::Consumer).
pub type DistributedQueue<T> = Queue<T, Fifo>;

impl<T: Send + Sync + 'static> Queue<T, Fifo> {
    /// A queue at `path` whose items `serializer` encodes.
    pub fn new(warden: &Warden, path: &str, serializer: impl QueueSerializer<T>) -> Self {
        Queue::with_kind(warden, path, serializer, Kind::Plain)
    }

    /// Queues `item`, after waiting for room when the queue is bounded; returns the item
    /// node's path.
    ///
    /// # Errors
    /// `DataTooLarge` when the encoded item exceeds the warden's frame limit (nothing is
    /// queued); `InvalidArgument` when the serializer refuses it; `NoAuth`;
    /// `ConnectionLoss` when the reply was lost (the item may be queued); other connection
    /// errors once the warden's retries are spent; `Closed`.
    pub async fn put(&self, item: &T) -> Result<String> {
        self.core.put(&[item], "").await
    }

    /// Queues `items` in one node, as Curator's `putMulti` (a consumer takes them together).
    ///
    /// # Errors
    /// As [`put`](Queue::put); `InvalidArgument` for no items.
    pub async fn put_multi(&self, items: &[T]) -> Result<String> {
        self.put_slice(items, "").await
    }

    /// [`put`](Queue::put) as a [`Sink`](futures_sink::Sink) of items.
    pub fn sink(&self) -> PutSink<T> {
        let queue = self.clone();
        PutSink::new(move |item: T| {
            let queue = queue.clone();
            Box::pin(async move { queue.put(&item).await })
        })
    }
}
