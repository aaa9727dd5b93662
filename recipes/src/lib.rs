//! Coordination recipes built on [`zkwarden`]'s [`Warden`](zkwarden::Warden): counters,
//! barriers, typed configuration, self-healing nodes, caches and locks, sharing znodes with
//! Apache Curator where Curator has the same recipe.
//!
//! Every recipe uses only the warden's public API, and every recipe documents what it does
//! when the connection is `Suspended` or the session is `Lost`.
pub mod config;
pub mod group;
pub mod leader;
pub mod lock;
pub mod persistent_node;

pub mod barrier;
pub mod cache;
pub mod counter;
mod events_end;
