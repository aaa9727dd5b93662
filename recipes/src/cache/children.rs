//! [`ChildrenCache`]: the children of one node, in memory.

use zkwarden::{Result, Warden};

use super::events::CacheEvents;
use super::snapshot::CachedNode;
use super::tree::{TreeCache, TreeCacheBuilder};

/// Settings for a [`ChildrenCache`], from [`ChildrenCache::builder`].
#[must_use = "a cache does nothing until started"]
#[derive(Debug)]
pub struct ChildrenCacheBuilder {
    tree: TreeCacheBuilder,
}

impl ChildrenCacheBuilder {
    /// Whether to keep the children's data (`true` unless set).
    pub fn keep_data(mut self, keep: bool) -> Self {
        self.tree = self.tree.keep_data(keep);
        self
    }

    /// Caches only the children whose path `select` accepts.
    pub fn selector(mut self, select: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.tree = self.tree.selector(select);
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
    pub async fn start(self) -> Result<ChildrenCache> {
        self.spawn()
    }

    /// What [`start`](Self::start) does; nothing in it waits.
    pub(crate) fn spawn(self) -> Result<ChildrenCache> {
        Ok(ChildrenCache {
            tree: self.tree.spawn()?,
        })
    }
}

/// The children of one node with their data and stats, kept in memory and up to date: a
/// [`TreeCache`] of depth 1 that leaves the parent itself out.
///
/// Its events name the children (full paths); the parent's own changes are not reported.
/// While the parent does not exist the cache is empty, and it fills once the parent and its
/// children are created.
#[derive(Debug)]
pub struct ChildrenCache {
    tree: TreeCache,
}

impl ChildrenCache {
    /// Settings for a cache of the children of `path` (which need not exist yet).
    pub fn builder(warden: &Warden, path: &str) -> ChildrenCacheBuilder {
        ChildrenCacheBuilder {
            tree: TreeCache::builder(warden, path).max_depth(1).skip_root(),
        }
    }

    /// The parent's path.
    pub fn path(&self) -> &str {
        self.tree.path()
    }

    /// The children as (name, node), in name order.
    pub fn children(&self) -> Vec<(String, CachedNode)> {
        self.tree.children(self.tree.path())
    }

    /// The child called `name`.
    pub fn get(&self, name: &str) -> Option<CachedNode> {
        let path = if self.tree.path() == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", self.tree.path())
        };
        self.tree.get(&path)
    }

    /// Whether the cache has read the children at least once.
    pub fn is_initialized(&self) -> bool {
        self.tree.is_initialized()
    }

    /// Resolves once the cache has read the children at least once.
    ///
    /// # Errors
    /// As [`TreeCache::initialized`].
    pub async fn initialized(&self) -> Result<()> {
        self.tree.initialized().await
    }

    /// Subscribes to the children's events from now on.
    pub fn events(&self) -> CacheEvents {
        self.tree.events()
    }

    /// The cache as a tree cache (for [`TreeCache::subscribe`] and the like).
    pub fn as_tree(&self) -> &TreeCache {
        &self.tree
    }
}
