//! [`DistributedIdQueue`]: Apache Curator's `DistributedIdQueue`.

use zkwarden::{CreateMode, Error, Op, Result, Warden};

use super::handle::Queue;
use super::naming::{Kind, fix_id, id_suffix, parse_id};
use super::serializer::QueueSerializer;
use super::sink::PutSink;
use crate::lock::internals::join;

/// The kind of an id queue.
#[derive(Debug)]
pub enum Id {}

/// A first-in-first-out queue whose items carry an id, so that queued items can be removed
/// by id; shares its znodes with Curator's `DistributedIdQueue` (`queue-|<id>|<sequence>`,
/// with `/` and `|` in ids replaced by `_`).
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::queue::{DistributedIdQueue, JsonSerializer};
///
/// let queue = DistributedIdQueue::new(&warden, "/app/mail", JsonSerializer::<String>::new());
/// queue.put(&"hello".to_owned(), "msg-1").await?;
/// assert_eq!(queue.remove("msg-1").await?, 1);
/// # Ok(()) }
/// ```
///
/// # Under Suspended/Lost
///
/// As [`DistributedQueue`](super::DistributedQueue); see [`remove`](Queue::remove).
pub type DistributedIdQueue<T> = Queue<T, Id>;

impl<T: Send + Sync + 'static> Queue<T, Id> {
    /// An id queue at `path` whose items `serializer` encodes.
    pub fn new(warden: &Warden, path: &str, serializer: impl QueueSerializer<T>) -> Self {
        Queue::with_kind(warden, path, serializer, Kind::Id)
    }

    /// Queues `item` under `id`; returns the node's path.
    ///
    /// # Errors
    /// `InvalidArgument` for an empty id; otherwise as
    /// [`DistributedQueue::put`](super::DistributedQueue::put).
    pub async fn put(&self, item: &T, id: &str) -> Result<String> {
        self.core.put(&[item], &suffix(id)?).await
    }

    /// [`put`](Queue::put) as a [`Sink`](futures_sink::Sink) of `(item, id)`.
    pub fn sink(&self) -> PutSink<(T, String)> {
        self.sink_with(|id: &String| suffix(id))
    }

    /// Removes the queued items with `id` and returns how many this call removed. With a
    /// lock path, an item being processed (its lock taken) is left alone, and the others are
    /// locked while they are removed, as Curator does.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent (some items may have
    /// been removed); `Closed`.
    pub async fn remove(&self, id: &str) -> Result<usize> {
        let wanted = fix_id(id);
        let warden = &self.core.warden;
        let children = match warden.get_children(&self.core.path).await {
            Ok(children) => children,
            Err(Error::NoNode) => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for name in self.core.kind.sort(children) {
            if parse_id(&name).0 != wanted {
                continue;
            }
            let item = self.core.item_path(&name);
            let ops = match &self.core.lock_path {
                // Lock, delete and unlock in one step: nobody else holds the lock meanwhile.
                Some(lock_path) => {
                    let lock = join(lock_path, &name);
                    vec![
                        Op::create(lock.clone(), Vec::new(), CreateMode::Ephemeral),
                        Op::delete(item, None),
                        Op::delete(lock, None),
                    ]
                }
                None => vec![Op::delete(item, None)],
            };
            match warden.multi(&ops).await {
                Ok(_) => removed += 1,
                // Locked by a consumer, or already gone.
                Err(Error::MultiFailed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// The name of an item with `id`, after the prefix; an empty id is refused.
fn suffix(id: &str) -> Result<String> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(
            "an item id must not be empty".to_owned(),
        ));
    }
    Ok(id_suffix(id))
}
