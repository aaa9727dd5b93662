//! Locks that share their znodes with Apache Curator: [`Mutex`] (`InterProcessMutex`),
//! [`ReadWriteLock`] (`InterProcessReadWriteLock`), [`Semaphore`]
//! (`InterProcessSemaphoreV2`), [`SemaphoreMutex`] (`InterProcessSemaphoreMutex`), and
//! [`MultiLock`] over any of them (`InterProcessMultiLock`).
//!
//! A [`LockGuard`] tells the truth about the lock: [`LockGuard::lost`] resolves when the lock
//! can no longer be trusted, [`LockGuard::fencing_token`] grows with every acquisition, and
//! a guard is a [`Fence`](zkwarden::warden::Fence): `warden.transaction().fenced_by(&guard)`
//! makes a transaction fail on the server, with
//! [`Error::FencedOut`](zkwarden::Error::FencedOut), once the lock is gone. A fenced write
//! can still succeed after `lost()` fired at `Suspended` while the session lived: `lost()`
//! says when to stop starting work, the fence that no write lands once the lock is really
//! gone; use both. Every
//! recipe here hands out such guards (a [`Lease`] dereferences to one, a [`MultiGuard`]
//! holds several), and every recipe checks a node's ephemeral owner against the current
//! session before it calls the node its own.
//!
//! # Other clients on the same path
//!
//! * **Apache Curator**: same node names (`_c_<uuid>-lock-<seq>`, `__READ__`, `__WRIT__`,
//!   `leases/`), same order, so Rust and Java contenders exclude each other.
//! * **go-zookeeper** (`_c_<32 hex>-lock-<seq>`): ordered correctly, since only the text after
//!   the last `lock-` counts.
//! * **kazoo**: its `Lock` names nodes `<32 hex>__lock__<seq>`. [`Mutex::with_kazoo_contenders`]
//!   makes our mutex queue behind them. **Unmodified kazoo does not exclude Curator-format
//!   contenders**: a kazoo `Lock` only looks at `__lock__` nodes and walks in while one of ours
//!   (or Curator's) holds the lock. Build kazoo's lock with `extra_lock_patterns=["-lock-"]`
//!   for exclusion both ways (`recipes/tests/kazoo_lock.rs` shows both).

mod guard;
pub(crate) mod internals;
pub(crate) mod lost;
pub mod multi;
mod mutex;
pub(crate) mod naming;
pub mod rwlock;
pub mod semaphore;
mod semaphore_mutex;

pub use guard::LockGuard;
pub use lost::LostReason;
pub use multi::{Lockable, MultiGuard, MultiLock};
pub use mutex::Mutex;
pub use naming::{
    KAZOO_LOCK_NAME, LOCK_NAME, READ_NAME, WRITE_NAME, compare_sequences, sequence_of,
    sequence_of_any, sort_contenders,
};
pub use rwlock::{ReadLock, ReadWriteLock, WriteLock};
pub use semaphore::{Lease, Semaphore};
pub use semaphore_mutex::SemaphoreMutex;
