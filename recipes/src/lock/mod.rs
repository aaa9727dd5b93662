//! Locks that share their znodes with Apache Curator: [`Mutex`] (Curator's
//! `InterProcessMutex`).
//!
//! A [`LockGuard`] tells the truth about the lock: [`LockGuard::lost`] resolves when the lock
//! can no longer be trusted, [`LockGuard::fencing_token`] grows with every acquisition, and
//! [`LockGuard::fence`] makes a transaction fail on the server once the lock is gone.

pub(crate) mod lost;
mod mutex;
mod naming;

pub use lost::LostReason;
pub use mutex::{LockGuard, Mutex};
pub use naming::{LOCK_NAME, compare_sequences, sequence_of, sort_contenders};
