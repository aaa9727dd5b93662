//! Coordination recipes built on [`zkwarden`]'s [`Warden`](zkwarden::Warden): counters,
//! barriers, typed configuration, self-healing nodes, caches, locks and queues, sharing znodes
//! with Apache Curator where Curator has the same recipe.
//!
//! Every recipe uses only the warden's public API, and every recipe documents what it does
//! when the connection is `Suspended` or the session is `Lost`.
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
