//! Coordination recipes built on [`zkwarden`]'s [`Warden`](zkwarden::Warden): counters,
//! barriers, typed configuration, self-healing nodes, caches, locks and queues, sharing znodes
//! with Apache Curator where Curator has the same recipe.
//!
//! Every recipe uses only the warden's public API, and every recipe documents what it does
//! when the connection is `Suspended` or the session is `Lost`.
//!
//! # Constructing recipes
//!
//! Every recipe is made in one of two shapes, by whether it does anything on its own:
//!
//! * **Nothing until called**: `X::new(&warden, path, required..)`, then options as
//!   `self`-taking setters, then calls. Locks ([`Mutex`](lock::Mutex),
//!   [`ReadWriteLock`](lock::ReadWriteLock), [`Semaphore`](lock::Semaphore),
//!   [`SemaphoreMutex`](lock::SemaphoreMutex)), queues, [`Barrier`](barrier::Barrier) and
//!   [`DoubleBarrier`](barrier::DoubleBarrier), the atomic values and
//!   [`SharedCount`](counter::SharedCount), [`ServiceDiscovery`](discovery::ServiceDiscovery).
//!   `new` cannot fail and touches no server; errors come from the calls.
//! * **Runs in the background**: `X::builder(&warden, path, required..)`, then options,
//!   then `.start().await?`, which returns `Result<X>`; the background work lasts until
//!   `X` is closed or dropped. [`LeaderLatch`](leader::LeaderLatch),
//!   [`LeaderSelector`](leader::LeaderSelector) (whose `start` takes the scope it runs each
//!   term), [`ConfigWatch`](config::ConfigWatch), the caches
//!   ([`TreeCache`](cache::TreeCache), [`NodeCache`](cache::NodeCache),
//!   [`ChildrenCache`](cache::ChildrenCache), [`ServiceCache`](discovery::ServiceCache)),
//!   [`PersistentNode`](persistent_node::PersistentNode),
//!   [`PersistentTtlNode`](ttl_node::PersistentTtlNode), [`Group`](group::Group) and
//!   [`GroupMember`](group::GroupMember). `start` fails with
//!   [`Error::InvalidPath`](zkwarden::Error::InvalidPath) for a path the recipe could never
//!   use and [`Error::Closed`](zkwarden::Error::Closed) on a closed warden, instead of
//!   leaving a task that gives up silently. It waits for the server only where the recipe
//!   promises a value on return ([`ConfigWatch`](config::ConfigWatch)); the others say how
//!   to wait (`initialized()`, `wait_for_initial_create()`, `await_leadership()`).
//!
//! This is the shape of the warden itself: `Warden::builder(connect)`, options,
//! `.start().await?`.
//!
//! # Event streams
//!
//! Every stream of events a recipe hands out ([`ConfigEvents`](config::ConfigEvents),
//! [`CacheEvents`](cache::CacheEvents), [`NodeEvents`](persistent_node::NodeEvents),
//! [`CountWatch`](counter::CountWatch), [`ConsumerStream`](queue::ConsumerStream)) is a
//! [`futures_core::Stream`] and has an inherent `next()` yielding the same items, so it
//! needs no extension trait. Each ends (`None`) once the warden it depends on is closed,
//! even while the recipe is still held.
//!
//! # No `Reaper` or `ChildReaper`
//!
//! Curator's `Reaper` and `ChildReaper` delete parents that recipes leave empty (lock, leader
//! and barrier parents), from ZooKeeper versions before container nodes; Curator deprecated
//! them for containers. Here every parent a recipe creates is a container node, which the
//! server itself deletes once its last child is gone (ZooKeeper 3.5+, which this crate
//! requires), and what recipes leave below a parent is ephemeral (gone with its session) or
//! deleted by the recipe's `close` (atomic tickets). A parent that should go while it still has
//! children is not something a reaper can decide safely either (Curator's `ChildReaper` deletes
//! whatever children it finds); delete such a tree on purpose, with
//! [`DeleteBuilder::recursive`](zkwarden::warden::DeleteBuilder::recursive).
pub mod config;
pub mod group;
pub mod leader;
pub mod lock;
pub mod persistent_node;
pub mod queue;
pub mod ttl_node;

pub mod atomic;
pub mod barrier;
pub mod cache;
pub mod counter;
pub mod discovery;
mod events_end;
mod starting;
