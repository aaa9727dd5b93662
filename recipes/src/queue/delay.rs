//! [`DistributedDelayQueue`]: Apache Curator's `DistributedDelayQueue`.

use std::time::{SystemTime, UNIX_EPOCH};

use zkwarden::{Error, Result, Warden};

use super::handle::Queue;
use super::naming::{Kind, due_suffix};
use super::serializer::QueueSerializer;
use super::sink::PutSink;

/// The kind of a delay queue.
#[derive(Debug)]
pub enum Delay {}

/// A queue whose items are taken only once their due time has passed, earliest first,
/// sharing its znodes with Curator's `DistributedDelayQueue`: the due time (milliseconds
/// since the Unix epoch, in hex between `|` separators) is part of the node name.
///
/// Due times are compared with the consumer's wall clock, as in Curator: clocks of
/// producers and consumers should agree.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use std::time::{Duration, SystemTime};
/// use zkwarden_recipes::queue::{DistributedDelayQueue, JsonSerializer};
///
/// let queue = DistributedDelayQueue::new(&warden, "/app/retries", JsonSerializer::<u64>::new());
/// queue.put(&42, SystemTime::now() + Duration::from_secs(30)).await?;
/// let due = queue.consumer().next().await?; // in about 30 seconds
/// due.ack().await?;
/// # Ok(()) }
/// ```
///
/// # Under Suspended/Lost
///
/// As [`DistributedQueue`](super::DistributedQueue).
pub type DistributedDelayQueue<T> = Queue<T, Delay>;

impl<T: Send + Sync + 'static> Queue<T, Delay> {
    /// A delay queue at `path` whose items `serializer` encodes.
    pub fn new(warden: &Warden, path: &str, serializer: impl QueueSerializer<T>) -> Self {
        Queue::with_kind(warden, path, serializer, Kind::Delay)
    }

    /// Queues `item`, to be taken no earlier than `due`; returns the node's path.
    ///
    /// # Errors
    /// `InvalidArgument` for a due time at or before the Unix epoch (Curator refuses it
    /// too); otherwise as [`DistributedQueue::put`](super::DistributedQueue::put).
    pub async fn put(&self, item: &T, due: SystemTime) -> Result<String> {
        self.core.put(&[item], &checked(&due)?).await
    }

    /// Queues `items` in one node, due at `due`, as Curator's `putMulti`.
    ///
    /// # Errors
    /// As [`put`](Queue::put); `InvalidArgument` for no items.
    pub async fn put_multi(&self, items: &[T], due: SystemTime) -> Result<String> {
        self.put_slice(items, &checked(&due)?).await
    }

    /// [`put`](Queue::put) as a [`Sink`](futures_sink::Sink) of `(item, due)`.
    pub fn sink(&self) -> PutSink<(T, SystemTime)> {
        self.sink_with(checked)
    }
}

/// The name suffix for `due`, refusing times Curator refuses.
fn checked(due: &SystemTime) -> Result<String> {
    match due.duration_since(UNIX_EPOCH) {
        Ok(since) if since.as_millis() > 0 => Ok(due_suffix(*due)),
        _ => Err(Error::InvalidArgument(
            "a delay queue's due time must be after the Unix epoch".to_owned(),
        )),
    }
}
