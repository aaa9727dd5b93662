//! [`Consumer`]: takes items off a Curator-layout queue one node at a time, as a plain or a
//! lock-safe consumer, and hands them out as [`Delivery`]s (also as a
//! [`Stream`](futures_core::Stream): [`ConsumerStream`]).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use zkwarden::client::OneshotWatcher;
use zkwarden::{CreateMode, Error, Op, Result};

use super::core::Core;
use super::held::Held;
use super::items;
use super::naming::ITEM_PREFIX;
use crate::lock::LockGuard;
use crate::lock::internals::{holder_id, join};

/// Takes items off a queue, in the queue's order: the next due item of the lowest priority
/// or sequence number first. Made by the queue's `consumer()`.
///
/// # Plain and lock-safe consumers
///
/// A plain consumer (no `lock_path` on the queue) reads an item node and deletes it
/// *before* handing it out, as Curator's consumer does without a lock path: an item whose
/// consumer dies before it has been processed is lost.
///
/// A lock-safe consumer (with `lock_path`, Curator's `lockPath`) first creates the ephemeral
/// node `<lock_path>/<item name>`, then reads the item and hands it out still queued. The
/// item is deleted only by [`Delivery::ack`], in one transaction with the lock node, and only
/// on the session that made the lock: an item whose handler did not finish is never deleted
/// by this consumer. A consumer that dies (or whose session expires) leaves its lock to
/// vanish with the session, and the item to the next consumer. Items locked by others
/// (Curator processes included) are skipped.
///
/// # Under Suspended/Lost
///
/// While `Suspended`, [`next`](Consumer::next) waits for the connection (within the warden's
/// retry policy). Across a `Lost` session it continues on the new session and lists the
/// queue again. A delivery's lock, and with it the right to delete the item, belongs to the
/// session that made it: [`Delivery::lock`] tells when that is in doubt
/// ([`LockGuard::lost`]), and after the session is gone [`Delivery::ack`] fails with
/// `SessionExpired` and leaves the item queued for another consumer. Processing an item
/// whose lock lapsed therefore cannot be made exactly-once by the queue alone: the item is
/// delivered again, and it is the ack that happens once. Fence the handler's own ZooKeeper
/// writes by the lock (`warden.transaction().fenced_by(guard)`) to make them conditional on it.
///
/// Several consumers may share a warden: each marks its locks as its own.
///
/// # Cancellation
///
/// [`next`](Consumer::next) may be dropped at any point. A lock-safe consumer then leaves
/// the item queued (a lock it made is deleted in the background). A plain consumer that had
/// already deleted the item loses it, exactly as when its process dies there.
pub struct Consumer<T> {
    core: Core<T>,
    /// Item names from the last listing not tried yet, in order.
    batch: VecDeque<String>,
    /// Whether `batch` comes from a listing that is still worth working through; once it
    /// is used up, the consumer waits for a change before it lists again.
    listed: bool,
    /// The child watch set by the last listing.
    changed: Option<OneshotWatcher>,
    /// Lock nodes of items skipped since the last listing because someone else held them:
    /// their deletion, not a change of the queue, makes those items available again.
    locked: Vec<String>,
    /// The data of this consumer's lock nodes: tells them from other consumers' nodes made
    /// on the same session.
    holder: Vec<u8>,
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.core)
            .field("listed", &self.batch.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Consumer<T> {
    pub(crate) fn new(core: Core<T>) -> Consumer<T> {
        let mut holder = holder_id();
        holder.push(b':');
        holder.extend_from_slice(crate::barrier::random_uuid().as_bytes());
        Consumer {
            core,
            batch: VecDeque::new(),
            listed: false,
            changed: None,
            locked: Vec::new(),
            holder,
        }
    }

    /// Waits for the next item and takes it (see the type's docs for what taking means in
    /// each mode).
    ///
    /// # Errors
    /// `InvalidArgument` for a node that is not an item of this queue's encoding (Curator's
    /// consumer logs and deletes such nodes; so does this one, and the next call goes on
    /// with the next item); `NoAuth`; connection errors once the warden's retries are spent;
    /// `Closed`.
    pub async fn next(&mut self) -> Result<Delivery<T>> {
        loop {
            if !self.listed || (self.core.kind.relists_on_change() && self.changed_now()) {
                self.list().await?;
                self.listed = true;
            }
            let Some(first) = self.batch.front() else {
                self.wait(None).await;
                continue;
            };
            if let Some(wait) = self.core.kind.wait_for(first, SystemTime::now()) {
                // The earliest item is not due: nor is any after it.
                self.wait(Some(wait)).await;
                continue;
            }
            let Some(name) = self.batch.pop_front() else {
                continue;
            };
            if let Some(delivery) = self.take(name).await? {
                return Ok(delivery);
            }
        }
    }

    /// The items as a [`Stream`](futures_core::Stream) of [`next`](Consumer::next)'s results;
    /// it ends after yielding `Err(Closed)`.
    pub fn into_stream(self) -> ConsumerStream<T> {
        ConsumerStream {
            consumer: Some(self),
            pending: None,
        }
    }

    /// Lists the queue and sets a watch on its children.
    async fn list(&mut self) -> Result<()> {
        self.batch.clear();
        self.changed = None;
        self.locked.clear();
        match self
            .core
            .warden
            .get_children_and_watch(&self.core.path)
            .await
        {
            Ok((children, watcher)) => {
                self.batch = self.core.kind.sort(children).into();
                self.changed = Some(watcher);
                Ok(())
            }
            // Curator's consumer makes the queue's nodes when it starts; so does ours.
            Err(Error::NoNode) => self.core.ensure_paths().await,
            Err(e) => Err(e),
        }
    }

    /// Whether the watch set by the last listing has fired (without waiting for it).
    fn changed_now(&mut self) -> bool {
        let Some(watcher) = self.changed.as_mut() else {
            return true;
        };
        let mut cx = Context::from_waker(Waker::noop());
        if Pin::new(watcher).poll(&mut cx).is_ready() {
            self.changed = None;
            return true;
        }
        false
    }

    /// Waits until the queue changes or a lock this consumer ran into is deleted (at most
    /// `limit`), then forgets the listing.
    async fn wait(&mut self, limit: Option<Duration>) {
        self.batch.clear();
        self.listed = false;
        let mut watchers: Vec<OneshotWatcher> = self.changed.take().into_iter().collect();
        for lock in std::mem::take(&mut self.locked) {
            match self.core.warden.exists_and_watch(&lock).await {
                Ok((Some(_), watcher)) => watchers.push(watcher),
                // Gone already, or no way to watch it: list again at once.
                Ok((None, _)) | Err(_) => return,
            }
        }
        if watchers.is_empty() {
            return;
        }
        // Whatever ends the wait (a change, the session's end, the time), list again.
        let any = std::future::poll_fn(|cx| {
            if watchers.iter_mut().any(|w| Pin::new(w).poll(cx).is_ready()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        match limit {
            Some(limit) => {
                let _ = tokio::time::timeout(limit, any).await;
            }
            None => any.await,
        }
    }

    /// Tries to take the item `name`: `Ok(None)` when someone else got it first.
    async fn take(&mut self, name: String) -> Result<Option<Delivery<T>>> {
        let item = self.core.item_path(&name);
        let Some(lock_path) = self.core.lock_path.clone() else {
            return self.take_plain(name, item).await;
        };
        let warden = &self.core.warden;
        let lock = join(&lock_path, &name);
        // From here on, dropping `held` (this future cancelled included) unlocks the item if
        // the lock node is ours.
        let mut held = Held::creating(warden, item.clone(), lock.clone(), &self.holder);
        match warden
            .create(&lock, &self.holder)
            .mode(CreateMode::Ephemeral)
            .await
        {
            Ok(_) => {}
            // Someone's lock, or ours from a create whose reply was lost: ours only if it
            // holds this consumer's mark (the guard then checks the session).
            Err(Error::NodeExists) => match warden.get_data(&lock).await {
                Ok((data, _)) if data[..] == self.holder[..] => {}
                other => {
                    held.disarm();
                    return match other {
                        Ok(_) => {
                            self.locked.push(lock);
                            Ok(None)
                        }
                        Err(Error::NoNode) => Ok(None),
                        Err(e) => Err(e),
                    };
                }
            },
            Err(Error::NoNode) => {
                held.disarm();
                self.core.ensure_paths().await?;
                return Ok(None);
            }
            // The create may have landed: `held` deletes the node if it is ours.
            Err(e) => return Err(e),
        }
        if !held.confirm(self.core.safety).await? {
            // Made on a session that is gone: it went (or goes) with it.
            return Ok(None);
        }
        let data = match warden.get_data(&item).await {
            Ok((data, _)) => data,
            Err(e) => {
                held.release().await;
                return match e {
                    Error::NoNode => Ok(None),
                    e => Err(e),
                };
            }
        };
        self.deliver(name, data, Some(held)).await
    }

    /// Curator's plain consumer: read, delete at the version read, then hand out.
    async fn take_plain(&mut self, name: String, item: String) -> Result<Option<Delivery<T>>> {
        let warden = &self.core.warden;
        let (data, stat) = match warden.get_data(&item).await {
            Ok(found) => found,
            Err(Error::NoNode) => return Ok(None),
            Err(e) => return Err(e),
        };
        match warden.delete(&item, Some(stat.version)).await {
            Ok(()) => {}
            // Another consumer got it (or our own delete landed before its reply was lost,
            // and the item is lost as Curator documents for this mode).
            Err(Error::NoNode | Error::BadVersion) => return Ok(None),
            Err(e) => return Err(e),
        }
        self.deliver(name, data, None).await
    }

    /// Decodes a taken node into a delivery. A node that does not decode is removed (as
    /// Curator does) and reported; a node without items is removed quietly.
    async fn deliver(
        &mut self,
        name: String,
        data: Bytes,
        held: Option<Held>,
    ) -> Result<Option<Delivery<T>>> {
        let decoded = items::decode(&data)
            .map_err(|why| {
                Error::InvalidArgument(format!("queue node {name} is not a queue item: {why}"))
            })
            .and_then(|parts| {
                parts
                    .iter()
                    .map(|part| self.core.serializer.deserialize(part))
                    .collect::<Result<Vec<T>>>()
            });
        let mut decoded = match decoded {
            Ok(items) => items.into_iter(),
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "removing an undecodable queue node");
                if let Some(mut held) = held {
                    held.finish(Vec::new()).await?;
                }
                return Err(e);
            }
        };
        let Some(first) = decoded.next() else {
            if let Some(mut held) = held {
                held.finish(Vec::new()).await?;
            }
            return Ok(None);
        };
        Ok(Some(Delivery {
            first,
            more: decoded.collect(),
            name,
            data,
            core: self.core.clone(),
            held,
        }))
    }
}

/// One item node taken by a [`Consumer`]: its item (Curator's `putMulti` can store several
/// in one node; [`items`](Delivery::items) has them all) and, for a lock-safe consumer, the
/// lock that keeps others off it until [`ack`](Delivery::ack),
/// [`requeue`](Delivery::requeue) or [`release`](Delivery::release).
///
/// Dropping an undecided lock-safe delivery (or an `ack` future before it ends) releases the
/// lock in the background: the item stays queued. A plain consumer's delivery is already off the queue.
#[must_use = "a lock-safe delivery stays queued until it is acked"]
pub struct Delivery<T> {
    first: T,
    more: Vec<T>,
    name: String,
    data: Bytes,
    core: Core<T>,
    held: Option<Held>,
}

impl<T> fmt::Debug for Delivery<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("name", &self.name)
            .field("items", &(1 + self.more.len()))
            .field("locked", &self.held.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: 'static> Delivery<T> {
    /// The (first) item.
    pub fn item(&self) -> &T {
        &self.first
    }

    /// Every item of the node, in the order they were put.
    pub fn items(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// The item node's name (`queue-...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lock on the item (lock-safe consumers only): [`LockGuard::lost`] resolves when it
    /// may have lapsed, and a transaction fenced by it (`fenced_by`) depends on it.
    pub fn lock(&self) -> Option<&LockGuard> {
        self.held.as_ref().and_then(Held::guard)
    }

    /// Done with the item: a lock-safe consumer deletes it and its lock, atomically and only
    /// on the session that locked it. A plain consumer's item is already gone: `Ok` at once.
    ///
    /// # Errors
    /// `SessionExpired`: the lock's session ended first; the item is still queued and will
    /// be delivered again (maybe to another consumer). `ConnectionLoss`: the session ended
    /// while the outcome of the delete was unknown, and the item is gone. `NoNode`: someone
    /// removed the item without taking its lock. `NoAuth`; `Closed`; connection errors once
    /// the warden's retries are spent (the lock then goes with the session).
    pub async fn ack(mut self) -> Result<()> {
        match self.held.as_mut() {
            Some(held) => held.finish(Vec::new()).await,
            None => Ok(()),
        }
    }

    /// The handler failed: puts the node's data back at the end of the queue as a new item
    /// (Curator's `ErrorMode.REQUEUE`; an id queue keeps the id, other kinds drop priority
    /// or due time, as Curator does). A lock-safe consumer swaps the nodes in one
    /// transaction on the lock's session.
    ///
    /// # Errors
    /// As [`ack`](Delivery::ack); a plain consumer's requeue is a new `put` (see the
    /// queue's `put`).
    pub async fn requeue(mut self) -> Result<()> {
        let suffix = self.core.kind.requeue_suffix(&self.name);
        match self.held.as_mut() {
            Some(held) => {
                let again = join(&self.core.path, &format!("{ITEM_PREFIX}{suffix}"));
                held.finish(vec![Op::create(
                    again,
                    self.data.to_vec(),
                    CreateMode::PersistentSequential,
                )])
                .await
            }
            None => self.core.create_item(&suffix, &self.data).await.map(|_| ()),
        }
    }

    /// Gives a lock-safe item back untouched: its lock is deleted and the item is the next
    /// consumer's (this one's included). Nothing to do for a plain consumer's item.
    pub async fn release(mut self) {
        if let Some(held) = self.held.as_mut() {
            held.release().await;
        }
    }
}

/// One [`Consumer::next`] call in flight, owning the consumer until it ends.
type Pending<T> = Pin<Box<dyn Future<Output = (Consumer<T>, Result<Delivery<T>>)> + Send>>;

/// A [`Consumer`] as a [`Stream`](futures_core::Stream) of deliveries
/// ([`Consumer::into_stream`]). It ends after yielding `Err(Closed)`; other errors are
/// yielded and the stream goes on.
pub struct ConsumerStream<T> {
    consumer: Option<Consumer<T>>,
    pending: Option<Pending<T>>,
}

impl<T> fmt::Debug for ConsumerStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerStream")
            .field("waiting", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> ConsumerStream<T> {
    /// The next delivery (or error) from [`Consumer::next`]; `None` after `Err(Closed)` was
    /// yielded, which happens once the warden is closed. The same as `StreamExt::next` on
    /// the stream.
    pub async fn next(&mut self) -> Option<Result<Delivery<T>>> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl<T: Send + 'static> futures_core::Stream for ConsumerStream<T> {
    type Item = Result<Delivery<T>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pending.is_none() {
            let Some(mut consumer) = self.consumer.take() else {
                return Poll::Ready(None);
            };
            self.pending = Some(Box::pin(async move {
                let next = consumer.next().await;
                (consumer, next)
            }));
        }
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        let (consumer, next) = std::task::ready!(pending.as_mut().poll(cx));
        self.pending = None;
        if next.as_ref().err() != Some(&Error::Closed) {
            self.consumer = Some(consumer);
        }
        Poll::Ready(Some(next))
    }
}
