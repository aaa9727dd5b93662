//! Locks that share their znodes with Apache Curator: [`Mutex`] (`InterProcessMutex`),
//! [`ReadWriteLock`] (`InterProcessReadWriteLock`), [`Semaphore`]
//! (`InterProcessSemaphoreV2`), and [`MultiLock`] over any of them
//! (`InterProcessMultiLock`).
//!
//! A [`LockGuard`] tells the truth about the lock: [`LockGuard::lost`] resolves when the lock
//! can no longer be trusted, [`LockGuard::fencing_token`] grows with every acquisition, and
//! [`LockGuard::fence`] makes a transaction fail on the server once the lock is gone. Every
//! recipe here hands out such guards (a [`Lease`] dereferences to one, a [`MultiGuard`]
//! holds several), and every recipe checks a node's ephemeral owner against the current
//! session before it calls the node its own.

mod guard;
mod internals;
pub(crate) mod lost;
pub mod multi;
mod mutex;
mod naming;
pub mod rwlock;
pub mod semaphore;

pub use guard::LockGuard;
pub use lost::LostReason;
pub use multi::{Lockable, MultiGuard, MultiLock};
pub use mutex::Mutex;
pub use naming::{
    LOCK_NAME, READ_NAME, WRITE_NAME, compare_sequences, sequence_of, sort_contenders,
};
pub use rwlock::{ReadLock, ReadWriteLock, WriteLock};
pub use semaphore::{Lease, Semaphore};
