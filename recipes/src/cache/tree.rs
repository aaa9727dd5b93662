//! [`TreeCache`]: every node at and below a path, in memory.

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zkwarden::{Error, Result, Warden};

use super::engine::{Engine, Shared};
use super::events::CacheEvents;
use super::filter::{Filter, Selector};
use super::snapshot::{CachedNode, Snapshot, children_of};

/// How many events the subscribers of a cache may fall behind, unless set with
/// [`TreeCacheBuilder::event_capacity`].
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// Settings for a [`TreeCache`], from [`TreeCache::builder`].
#[must_use = "a cache does nothing until started"]
pub struct TreeCacheBuilder {
    warden: Warden,
    filter: Filter,
    keep_data: bool,
    event_capacity: usize,
}

impl fmt::Debug for TreeCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeCacheBuilder")
            .field("filter", &self.filter)
            .field("keep_data", &self.keep_data)
            .field("event_capacity", &self.event_capacity)
            .finish_non_exhaustive()
    }
}

impl TreeCacheBuilder {
    /// Caches nodes at most `depth` levels below the root: 0 is the root alone, 1 the root
    /// and its children. Unlimited unless set.
    ///
    /// The underlying watch still covers the whole subtree (ZooKeeper's recursive watch has
    /// no depth), so deeper nodes cost notifications and listing, but not memory or reads.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.filter.max_depth = Some(depth);
        self
    }

    /// Caches only the nodes below the root for which `select(path)` is true, and nothing
    /// below a node it rejects. The root itself is always cached. `select` runs on the
    /// cache's task for every node event, so it should be quick.
    pub fn selector(mut self, select: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.filter.selector = Some(Arc::new(select) as Selector);
        self
    }

    /// Whether to keep each node's data (`true` unless set). Without it the cache holds
    /// stats only, and [`CachedNode::data`] is empty (the stat's `data_length` still tells the
    /// size).
    pub fn keep_data(mut self, keep: bool) -> Self {
        self.keep_data = keep;
        self
    }

    /// How many events the subscribers may fall behind before they are told they lagged
    /// ([`DEFAULT_EVENT_CAPACITY`] unless set).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    pub(super) fn skip_root(mut self) -> Self {
        self.filter.skip_root = true;
        self
    }

    /// Starts the cache and returns without waiting for the server; it fills in the background (see
    /// [`TreeCache::initialized`]). The root need not exist, and the server need not be
    /// reachable: the cache keeps trying, and stays not initialized until it has read the
    /// tree once.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid root path; [`Error::Closed`] when the warden is
    /// closed; [`Error::InvalidArgument`] when polled outside a tokio runtime.
    pub async fn start(self) -> Result<TreeCache> {
        self.spawn()
    }

    /// What [`start`](Self::start) does; nothing in it waits.
    pub(crate) fn spawn(self) -> Result<TreeCache> {
        crate::starting::check(&self.warden, &self.filter.root, false)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidArgument("a cache must be started inside a tokio runtime".into())
        })?;
        let (shared, events) = Shared::new(self.event_capacity);
        let shared = Arc::new(shared);
        let (initialized, ready) = watch::channel(false);
        let path = self.filter.root.clone();
        let watch = self.warden.watch_tree(&path);
        let engine = Engine::new(
            self.warden,
            shared.clone(),
            events,
            self.filter,
            self.keep_data,
            initialized,
        );
        let task = runtime.spawn(engine.run(watch));
        Ok(TreeCache {
            shared,
            ready,
            task,
            path,
        })
    }
}

/// Every node at and below a path, kept in memory and up to date (see the
/// [module docs](super) for its behaviour under faults).
///
/// Queries ([`get`](Self::get), [`children`](Self::children), [`snapshot`](Self::snapshot))
/// answer from memory and never wait for the server. Changes arrive as [`CacheEvents`].
/// Dropping the cache stops its task and removes its watch.
pub struct TreeCache {
    shared: Arc<Shared>,
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
    path: String,
}

impl fmt::Debug for TreeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeCache")
            .field("path", &self.path)
            .field("initialized", &self.is_initialized())
            .finish_non_exhaustive()
    }
}

impl TreeCache {
    /// Settings for a cache of the subtree at `path` (which need not exist yet).
    pub fn builder(warden: &Warden, path: &str) -> TreeCacheBuilder {
        TreeCacheBuilder {
            warden: warden.clone(),
            filter: Filter {
                root: path.to_owned(),
                max_depth: None,
                selector: None,
                skip_root: false,
            },
            keep_data: true,
            event_capacity: DEFAULT_EVENT_CAPACITY,
        }
    }

    /// The root path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the cache has read the tree at least once.
    pub fn is_initialized(&self) -> bool {
        *self.ready.borrow()
    }

    /// Resolves once the cache has read the tree at least once (at once if it has).
    ///
    /// # Errors
    /// [`Error::Closed`] when the cache stopped first (its warden closed).
    pub async fn initialized(&self) -> Result<()> {
        let mut ready = self.ready.clone();
        ready
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| Error::Closed)
    }

    /// The cached node at `path`.
    pub fn get(&self, path: &str) -> Option<CachedNode> {
        self.shared.lock().get(path).cloned()
    }

    /// The cached children of `path` as (name, node), in name order.
    pub fn children(&self, path: &str) -> Vec<(String, CachedNode)> {
        let nodes = self.shared.lock();
        children_of(nodes.map(), path)
            .map(|(name, node)| (name.to_owned(), node.clone()))
            .collect()
    }

    /// How many nodes are cached.
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// Whether no node is cached (the root does not exist, or the cache is not initialized).
    pub fn is_empty(&self) -> bool {
        self.shared.lock().is_empty()
    }

    /// A copy of every cached node.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock().clone()
    }

    /// Subscribes to the cache's events from now on.
    pub fn events(&self) -> CacheEvents {
        CacheEvents::new(self.shared.subscribe())
    }

    /// A snapshot and a subscription taken at the same moment: applying the subscription's
    /// events to the snapshot ([`Snapshot::apply`]) follows the cache exactly.
    pub fn subscribe(&self) -> (Snapshot, CacheEvents) {
        let (snapshot, receiver) = self.shared.snapshot_and_subscribe();
        (snapshot, CacheEvents::new(receiver))
    }
}

impl Drop for TreeCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}
