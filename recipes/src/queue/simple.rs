//! [`SimpleDistributedQueue`]: the ZooKeeper recipe's queue of byte strings, as Apache
//! Curator's `SimpleDistributedQueue` and ZooKeeper's own `DistributedQueue` recipe lay it
//! out.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use zkwarden::client::OneshotWatcher;
use zkwarden::warden::ParentMode;
use zkwarden::{CreateMode, Error, Result, Warden};

use crate::lock::internals::{join, trim_path};

/// The node name prefix of Curator's and ZooKeeper's simple queue.
pub const SIMPLE_PREFIX: &str = "qn-";

/// A queue of byte strings in the ZooKeeper recipe's layout: every item is a persistent
/// sequential child `<path>/qn-<sequence>` holding the bytes as they are, taken in name
/// order. Curator's `SimpleDistributedQueue` shares it; kazoo's `Queue` takes these nodes
/// too (it takes every child in name order), and with
/// [`with_prefix`](SimpleDistributedQueue::with_prefix)`("entry-100-")` this queue reads
/// and writes kazoo's default-priority entries.
///
/// Taking an item reads it, then deletes it: there is no lock, and an item whose taker dies
/// before using it is lost (as in Curator and kazoo). When two takers race for one node,
/// the one whose delete succeeds gets it.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::queue::SimpleDistributedQueue;
///
/// let queue = SimpleDistributedQueue::new(&warden, "/app/inbox");
/// queue.offer(b"hello").await?;
/// assert_eq!(queue.take().await?, &b"hello"[..]);
/// # Ok(()) }
/// ```
///
/// # Under Suspended/Lost
///
/// Calls wait for the connection while `Suspended` (within the warden's retry policy) and
/// continue on the new session after `Lost`. A delete whose reply was lost and that finds
/// the node gone on its retry counts as someone else's: the item is then lost, as the
/// recipe documents.
#[derive(Debug, Clone)]
pub struct SimpleDistributedQueue {
    warden: Warden,
    path: String,
    prefix: String,
}

impl SimpleDistributedQueue {
    /// A queue at `path` with Curator's `qn-` node names.
    pub fn new(warden: &Warden, path: &str) -> SimpleDistributedQueue {
        SimpleDistributedQueue::with_prefix(warden, path, SIMPLE_PREFIX)
    }

    /// A queue at `path` whose nodes are named `prefix` + sequence number (kazoo's `Queue`
    /// writes `entry-<priority, 3 digits>-`); only children with that prefix are taken.
    pub fn with_prefix(warden: &Warden, path: &str, prefix: &str) -> SimpleDistributedQueue {
        SimpleDistributedQueue {
            warden: warden.clone(),
            path: trim_path(path.to_owned()),
            prefix: prefix.to_owned(),
        }
    }

    /// The queue node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Queues `data` (creating the queue node and its parents as containers, as Curator
    /// does); returns the item node's path.
    ///
    /// # Errors
    /// `DataTooLarge` over the warden's frame limit (nothing queued); `InvalidPath` for a
    /// prefix that makes no valid name; `NoAuth`; `ConnectionLoss` when the reply was lost
    /// (the item may be queued); other connection errors once retries are spent; `Closed`.
    pub async fn offer(&self, data: &[u8]) -> Result<String> {
        self.warden
            .create(&join(&self.path, &self.prefix), data)
            .mode(CreateMode::PersistentSequential)
            .parents(ParentMode::Container)
            .await
    }

    /// The head of the queue without taking it; `None` when the queue is empty.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn peek(&self) -> Result<Option<Bytes>> {
        Ok(self.head(false, false).await?.0)
    }

    /// Takes the head of the queue; `None` when the queue is empty.
    ///
    /// # Errors
    /// As [`peek`](SimpleDistributedQueue::peek).
    pub async fn poll(&self) -> Result<Option<Bytes>> {
        Ok(self.head(true, false).await?.0)
    }

    /// The head of the queue without taking it (Curator's `element`).
    ///
    /// # Errors
    /// `NoNode` when the queue is empty; otherwise as [`peek`](SimpleDistributedQueue::peek).
    pub async fn element(&self) -> Result<Bytes> {
        self.peek().await?.ok_or(Error::NoNode)
    }

    /// Takes the head of the queue (Curator's `remove`).
    ///
    /// # Errors
    /// `NoNode` when the queue is empty; otherwise as [`peek`](SimpleDistributedQueue::peek).
    pub async fn remove(&self) -> Result<Bytes> {
        self.poll().await?.ok_or(Error::NoNode)
    }

    /// Takes the head of the queue, waiting (by child watches) for an item to arrive.
    ///
    /// # Errors
    /// As [`peek`](SimpleDistributedQueue::peek).
    pub async fn take(&self) -> Result<Bytes> {
        loop {
            if let Some(found) = self.take_or_wait(None).await? {
                return Ok(found);
            }
        }
    }

    /// Takes the head of the queue, waiting up to `timeout` for one; `None` when none came.
    ///
    /// # Errors
    /// As [`peek`](SimpleDistributedQueue::peek).
    pub async fn poll_timeout(&self, timeout: Duration) -> Result<Option<Bytes>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.take_or_wait(Some(deadline)).await? {
                return Ok(Some(found));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Takes the head, or waits for the queue to change (until `deadline`) and returns `None`.
    async fn take_or_wait(&self, deadline: Option<Instant>) -> Result<Option<Bytes>> {
        let (found, watcher) = self.head(true, true).await?;
        if found.is_some() {
            return Ok(found);
        }
        if let Some(watcher) = watcher {
            // Whatever fires (a change, the session's end, the deadline), look again.
            match deadline {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at, watcher).await;
                }
                None => {
                    let _ = watcher.await;
                }
            }
        }
        Ok(None)
    }

    /// The first item in name order (taken when `take`), with a watch on the queue's
    /// children (or on the queue node's creation while it is missing) when `watch`.
    async fn head(
        &self,
        take: bool,
        watch: bool,
    ) -> Result<(Option<Bytes>, Option<OneshotWatcher>)> {
        let (mut children, watcher) = if watch {
            match self.warden.get_children_and_watch(&self.path).await {
                Ok((children, watcher)) => (children, Some(watcher)),
                Err(Error::NoNode) => {
                    let (stat, watcher) = self.warden.exists_and_watch(&self.path).await?;
                    // Created meanwhile: the caller looks again at once.
                    let watcher = if stat.is_some() { None } else { Some(watcher) };
                    (Vec::new(), watcher)
                }
                Err(e) => return Err(e),
            }
        } else {
            match self.warden.get_children(&self.path).await {
                Ok(children) => (children, None),
                Err(Error::NoNode) => (Vec::new(), None),
                Err(e) => return Err(e),
            }
        };
        children.retain(|c| c.starts_with(&self.prefix));
        children.sort();
        for name in children {
            let node = join(&self.path, &name);
            let (data, stat) = match self.warden.get_data(&node).await {
                Ok(found) => found,
                // Taken by someone else: try the next.
                Err(Error::NoNode) => continue,
                Err(e) => return Err(e),
            };
            if take {
                match self.warden.delete(&node, Some(stat.version)).await {
                    Ok(()) => {}
                    Err(Error::NoNode | Error::BadVersion) => continue,
                    Err(e) => return Err(e),
                }
            }
            return Ok((Some(data), watcher));
        }
        Ok((None, watcher))
    }
}
