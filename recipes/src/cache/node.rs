//! [`NodeCache`]: one node, in memory.

use zkwarden::{Result, Warden};

use super::events::CacheEvents;
use super::snapshot::CachedNode;
use super::tree::{TreeCache, TreeCacheBuilder};

/// Settings for a [`NodeCache`], from [`NodeCache::builder`].
#[must_use = "a cache does nothing until started"]
#[derive(Debug)]
pub struct NodeCacheBuilder {
    tree: TreeCacheBuilder,
}

impl NodeCacheBuilder {
    /// Whether to keep the node's data (`true` unless set).
    pub fn keep_data(mut self, keep: bool) -> Self {
        self.tree = self.tree.keep_data(keep);
        self
    }

    /// How many events subscribers may fall behind before they are told they lagged.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.tree = self.tree.event_capacity(capacity);
        self
    }

    /// Starts the cache without waiting for the server (see [`TreeCacheBuilder::start`]).
    ///
    /// # Errors
    /// As [`TreeCacheBuilder::start`].
    pub async fn start(self) -> Result<NodeCache> {
        Ok(NodeCache {
            tree: self.tree.start().await?,
        })
    }
}

/// One node's data and stat, kept in memory and up to date: a [`TreeCache`] of depth 0.
///
/// Its events are those of the node alone: `Created`, `Changed`, `Deleted`, `Initialized`,
/// `Resynced` and `Lagged`.
///
/// Like every cache it rests on one recursive watch, so the server also notifies it of
/// changes below the node (which it ignores): for a node with a large, busy subtree,
/// [`Warden::watch_data`](zkwarden::Warden::watch_data) is the lighter choice.
#[derive(Debug)]
pub struct NodeCache {
    tree: TreeCache,
}

impl NodeCache {
    /// Settings for a cache of the node at `path` (which need not exist yet).
    pub fn builder(warden: &Warden, path: &str) -> NodeCacheBuilder {
        NodeCacheBuilder {
            tree: TreeCache::builder(warden, path).max_depth(0),
        }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        self.tree.path()
    }

    /// The node, or `None` while it does not exist (or the cache is not initialized).
    pub fn get(&self) -> Option<CachedNode> {
        self.tree.get(self.tree.path())
    }

    /// Whether the cache has read the node at least once.
    pub fn is_initialized(&self) -> bool {
        self.tree.is_initialized()
    }

    /// Resolves once the cache has read the node at least once.
    ///
    /// # Errors
    /// As [`TreeCache::initialized`].
    pub async fn initialized(&self) -> Result<()> {
        self.tree.initialized().await
    }

    /// Subscribes to the node's events from now on.
    pub fn events(&self) -> CacheEvents {
        self.tree.events()
    }

    /// The cache as a tree cache (for [`TreeCache::subscribe`] and the like).
    pub fn as_tree(&self) -> &TreeCache {
        &self.tree
    }
}
