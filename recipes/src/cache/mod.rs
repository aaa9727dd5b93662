//! Caches of znodes kept in memory: [`TreeCache`] (a whole subtree), [`NodeCache`] (one
//! node) and [`ChildrenCache`] (one node's children) — the roles of Apache Curator's
//! `CuratorCache`/`TreeCache`, `NodeCache` and `PathChildrenCache`.
//!
//! All three are one engine: a background task follows the warden's recursive tree watch
//! ([`Warden::watch_tree_unlisted`](zkwarden::Warden::watch_tree_unlisted), one persistent
//! recursive watch, ZooKeeper 3.6+), reads the data of every node it hears about, and keeps
//! the result in memory. Queries answer from memory; changes are broadcast as
//! [`CacheEvent`]s to any number of subscribers.
//!
//! Loading and resyncing read the tree many nodes to a request (`multiRead`, data and stat
//! together; children are listed only for nodes that have some), with a bounded number of
//! reads in flight: [`DEFAULT_READS_IN_FLIGHT`] per cache, or one [`ReadLimit`] shared by
//! several caches so that all of a warden's caches resyncing at once stay within it. Changes
//! whose notifications arrive together (a burst of writes) are read together the same way,
//! rather than one round trip each, so a burst shows in the cache about as soon as its
//! writer has its replies. Each node costs its path, its stat and its data; small values
//! share blocks of memory rather than taking an allocation each.
//!
//! # Tree cache
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::cache::{CacheEvent, TreeCache};
//!
//! let cache = TreeCache::builder(&warden, "/services")
//!     .max_depth(2)
//!     .selector(|path| !path.ends_with("/tmp"))
//!     .start().await?;
//! let mut events = cache.events();
//! cache.initialized().await?;
//! for (name, node) in cache.children("/services") {
//!     println!("{name}: {} bytes", node.data.len());
//! }
//! while let Some(event) = events.next().await {
//!     match event {
//!         CacheEvent::Created { path, .. } => println!("+ {path}"),
//!         CacheEvent::Changed { path, node } => println!("~ {path} v{}", node.stat.version),
//!         CacheEvent::Deleted { path, .. } => println!("- {path}"),
//!         CacheEvent::Lagged { missed } => println!("missed {missed} events; rereading"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Node cache
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::cache::NodeCache;
//!
//! let cache = NodeCache::builder(&warden, "/app/leader").start().await?;
//! cache.initialized().await?;
//! match cache.get() {
//!     Some(node) => println!("leader: {:?}", node.data),
//!     None => println!("no leader"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Children cache
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::cache::ChildrenCache;
//!
//! let workers = ChildrenCache::builder(&warden, "/app/workers")
//!     .keep_data(false)
//!     .start().await?;
//! workers.initialized().await?;
//! println!("{} workers", workers.children().len());
//! # Ok(())
//! # }
//! ```
//!
//! # Change detection
//!
//! Changes are recognised by zxid, never by data version or by comparing bytes. A node whose
//! creation zxid (`czxid`) differs from the cached one was deleted and created again, and is
//! reported as `Deleted` then `Created` even when both happened while the cache could not see
//! the server. A newer modification zxid (`mzxid`) is a `Changed`. Children come and go as
//! nodes of their own, so a parent's `pzxid`/`cversion` changes show up as the children's
//! `Created` and `Deleted`.
//!
//! Events are applied to the cache and sent under one lock:
//! [`TreeCache::subscribe`] returns a snapshot and a subscription taken at the same moment,
//! and applying the subscription's events to the snapshot ([`Snapshot::apply`]) reproduces the
//! cache at every step.
//!
//! # Faults
//!
//! * **Not yet connected.** [`TreeCacheBuilder::start`] does not wait for the server. The
//!   cache keeps trying to list the tree (with a pause growing from 100 ms to 5 s between
//!   failures) and reports not initialized ([`TreeCache::is_initialized`]) until it has,
//!   then sends a `Created` for every node followed by one `Initialized`.
//! * **Missing root.** Not an error: the cache is initialized and empty, and fills as the
//!   root and its children are created.
//! * **`Suspended`** (connection lost, session maybe alive). The cache keeps showing the last
//!   state it read; nothing changes and no event is sent. Follow
//!   [`Warden::events`](zkwarden::Warden::events) to know the view may be stale.
//! * **`Reconnected`** to the same session, or a new session after **`Lost`**. The server does
//!   not replay what a persistent watch missed, so the tree is read again (data and stat of
//!   every node) and compared with the cache by `czxid`/`mzxid`; cached nodes it no longer
//!   finds are gone. The differences are sent as `Deleted`/`Created`/`Changed` events, then
//!   one `Resynced`. After `Resynced` the cache equals the server as read.
//! * **Read failures** past the warden's retry policy are retried by the cache (again with a
//!   growing pause); a node the session may not read (`NoAuth`) is left out.
//! * **Slow subscribers.** Subscribers share a bounded buffer
//!   ([`TreeCacheBuilder::event_capacity`]); one that falls behind gets
//!   [`CacheEvent::Lagged`] in place of what it missed, and the cache never waits for it.
//!   Memory is bounded by the cached data plus that buffer, not by history.
//!
//! # Limits
//!
//! * ZooKeeper 3.6 or later is best (persistent recursive watches, `multiRead`). On older
//!   servers the tree watch falls back to one-shot watches and the cache reads one node to a
//!   request.
//! * On servers before 3.9 a session keeps one watch mode per path: do not also use
//!   [`Warden::watch_data`](zkwarden::Warden::watch_data) or
//!   [`Warden::watch_children`](zkwarden::Warden::watch_children) on a cache's root path with
//!   the same warden. Below the root is fine.
//! * `max_depth` and the selector limit what is read and kept, but the watch still covers the
//!   whole subtree.

mod children;
mod engine;
mod events;
mod filter;
mod limit;
mod node;
mod snapshot;
mod store;
mod tree;

pub use children::{ChildrenCache, ChildrenCacheBuilder};
pub use events::{CacheEvent, CacheEvents};
pub use limit::{DEFAULT_READS_IN_FLIGHT, ReadLimit};
pub use node::{NodeCache, NodeCacheBuilder};
pub use snapshot::{CachedNode, Snapshot};
pub use tree::{DEFAULT_EVENT_CAPACITY, TreeCache, TreeCacheBuilder};
