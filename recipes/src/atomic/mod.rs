//! Values in one znode changed atomically, on the layout of Apache Curator's
//! `DistributedAtomicValue`, `DistributedAtomicInteger` and `DistributedAtomicLong`: the node
//! at the counter's path holds the value itself (numbers as big-endian bytes, four for an
//! `int`, eight for a `long`; a node without data reads as zero), it has no children, and
//! every change is a versioned `setData`, so Rust and Curator processes share one counter.
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::atomic::{DistributedAtomicInteger, PromotedToLock};
//!
//! let hits = DistributedAtomicInteger::new(&warden, "/app/hits")
//!     .optimistic_tries(5)
//!     .promoted(PromotedToLock::new("/app/hits-lock"));
//! let result = hits.increment().await?;
//! if result.succeeded {
//!     println!("{} -> {} ({:?})", result.pre, result.post, result.stats);
//! }
//! hits.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Modes
//!
//! * **Optimistic** (Curator's default): read the value and its version, write the new value
//!   at that version, and start over when another writer came first. By default the loop
//!   runs until the change lands; [`optimistic_tries`](DistributedAtomicValue::optimistic_tries)
//!   bounds it as Curator's retry policy does, and a change that runs out reports
//!   `succeeded == false`.
//! * **Promoted to a mutex** ([`PromotedToLock`], Curator's promoted mode): once the
//!   optimistic tries are spent, take a [`Mutex`](crate::lock::Mutex) at a separate lock
//!   path (Curator's `InterProcessMutex`: Curator processes promoted on the same path queue
//!   with ours) and try again while holding it. Writers that are not promoted still write
//!   optimistically, so even then a try can lose.
//!
//! # Exactly once
//!
//! A versioned write whose reply was lost is ambiguous: the warden repeats it, and a repeat
//! fails `BadVersion` whether the first send landed or another writer came first. Curator
//! then tries again, and so may apply a change twice. By default every write here is instead
//! a transaction that also bumps a *ticket* node owned by this handle, and after a lost reply
//! the ticket's version says whether the write landed: each change is applied exactly once
//! however connections drop or sessions expire. Tickets are persistent nodes named
//! [`TICKET_PREFIX`] + a UUID under `<path>-tickets` (a container beside the counter, never
//! below it; [`ticket_parent`](DistributedAtomicValue::ticket_parent) moves them), deleted by
//! `close`. [`exactly_once(false)`](DistributedAtomicValue::exactly_once) makes plain
//! versioned writes, as Curator.
//!
//! # Suspended / Lost
//!
//! The value and the tickets are persistent nodes, so neither state loses anything. While
//! `Suspended` a change waits for the connection and is retried within the warden's budget;
//! across a `Lost` session it continues on the new one, first checking its ticket when a
//! write was in flight. A promotion mutex held when the connection goes is released as
//! [`LockGuard`](crate::lock::LockGuard) describes; the try under it is a versioned write
//! like any other, so a lost mutex never makes a change apply twice.

mod engine;
mod number;
mod value;

pub use engine::{AtomicStats, AtomicValue, PromotedToLock, TICKET_PREFIX};
pub use number::{
    AtomicLong, AtomicNumber, AtomicResult, DistributedAtomicInteger, DistributedAtomicLong,
    DistributedAtomicNumber,
};
pub use value::DistributedAtomicValue;

pub(crate) use engine::create_if_missing;
