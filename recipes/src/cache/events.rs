//! What a cache reports: [`CacheEvent`], delivered through [`CacheEvents`].

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::snapshot::CachedNode;

/// A change to a cache, in the order the cache applied it.
///
/// Changes are detected by zxid, not by data version: a node whose creation zxid differs
/// from the cached one was deleted and created again (reported as `Deleted` then
/// `Created`, even when both happened while the cache could not see the server), and a node
/// whose modification zxid is newer was written (`Changed`, even if the bytes are the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEvent {
    /// A node entered the cache: it was created, or it existed when the cache was first
    /// filled or rebuilt.
    Created {
        /// The node's path.
        path: String,
        /// The node as cached now.
        node: CachedNode,
    },
    /// A cached node's data was written.
    Changed {
        /// The node's path.
        path: String,
        /// The node as cached now.
        node: CachedNode,
    },
    /// A node left the cache: it was deleted (or is no longer readable).
    Deleted {
        /// The node's path.
        path: String,
        /// The node as it was last cached.
        node: CachedNode,
    },
    /// The cache holds the whole tree for the first time: the `Created` events before this
    /// one are its initial content. Sent once.
    Initialized,
    /// The cache was rebuilt from a fresh read of the server, after a reconnection or on a
    /// new session (when changes may have gone unseen). The events just before this one
    /// explain every difference found; from here on the cache equals the server as read.
    Resynced {
        /// The generation of the warden's session the tree was read on.
        generation: u64,
    },
    /// This subscriber fell behind and `missed` events were dropped for it. The cache itself
    /// is complete: re-read what you need from its snapshot.
    Lagged {
        /// How many events this subscriber missed.
        missed: u64,
    },
}

impl CacheEvent {
    /// The path of a node event (`None` for the others).
    pub fn path(&self) -> Option<&str> {
        match self {
            CacheEvent::Created { path, .. }
            | CacheEvent::Changed { path, .. }
            | CacheEvent::Deleted { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The node of a node event: as cached now, or as last cached for `Deleted`.
    pub fn node(&self) -> Option<&CachedNode> {
        match self {
            CacheEvent::Created { node, .. }
            | CacheEvent::Changed { node, .. }
            | CacheEvent::Deleted { node, .. } => Some(node),
            _ => None,
        }
    }
}

/// A subscription to a cache's events from the moment it was taken, as a
/// [`Stream`](futures_core::Stream) and through [`CacheEvents::next`]. It ends when the cache
/// is dropped.
///
/// Events wait in a bounded buffer shared by all subscribers; a subscriber that falls more
/// than the buffer behind gets [`CacheEvent::Lagged`] in place of the events it missed. The
/// cache never waits for a subscriber.
pub struct CacheEvents {
    inner: BroadcastStream<CacheEvent>,
}

impl CacheEvents {
    pub(super) fn new(receiver: broadcast::Receiver<CacheEvent>) -> CacheEvents {
        CacheEvents {
            inner: BroadcastStream::new(receiver),
        }
    }

    /// The next event, or `None` once the cache has stopped (its warden closed, or the cache
    /// was dropped) and every event before that was read.
    pub async fn next(&mut self) -> Option<CacheEvent> {
        tokio_stream::StreamExt::next(self).await
    }
}

impl std::fmt::Debug for CacheEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheEvents").finish_non_exhaustive()
    }
}

impl futures_core::Stream for CacheEvents {
    type Item = CacheEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CacheEvent>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|result| match result {
                Ok(event) => event,
                Err(BroadcastStreamRecvError::Lagged(missed)) => CacheEvent::Lagged { missed },
            })
        })
    }
}
