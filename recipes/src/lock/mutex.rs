//! [`Mutex`]: a distributed lock that shares its znodes with Apache Curator's
//! `InterProcessMutex`.

use std::fmt;

use tokio::time::Instant;
use zkwarden::warden::LockSafety;
use zkwarden::{Error, Result, Warden};

use super::guard::LockGuard;
use super::internals::{Driver, LockInternals};
use super::naming::{LOCK_NAME, predecessor_among_any, predecessor_of};

/// A mutual-exclusion lock on a ZooKeeper path, compatible with Curator's
/// `InterProcessMutex` on the same path.
///
/// # Protocol
///
/// Each contender creates an ephemeral sequential node `<path>/_c_<uuid>-lock-<sequence>`
/// (a protected create, so a lost reply never leaves a second node; missing parents are
/// created as containers, which the server removes when idle and this recipe recreates).
/// Contenders are ordered by the number after the last `lock-` (see
/// [`sort_contenders`](super::sort_contenders)); the first holds the lock. Every other
/// contender sets a data watch on the one node just before its own and waits for it to go,
/// so a release wakes exactly one waiter.
///
/// # Re-entrancy
///
/// Curator's `InterProcessMutex` is re-entrant per *thread*: a thread holding it may acquire
/// it again, and must release it as many times. Tokio gives no such owner to key on: a task
/// moves between worker threads at every `.await`, one thread runs many tasks, and a task
/// has no identity a library could check. So this mutex is not re-entrant: a second `lock`
/// on the same path from this process, whatever task makes it, is one more contender and
/// queues behind the held guard (in the task that holds the guard, that waits forever, as
/// with `tokio::sync::Mutex`). Code that needs the lock in nested calls takes it once and
/// passes the [`LockGuard`] (or `&LockGuard`) down: holding the guard *is* holding the lock,
/// and fencing by it (`transaction().fenced_by(&guard)`) works from any task it is lent to. Re-entrancy never crosses
/// processes in Curator either, so mixed Rust and Curator contenders exclude each other
/// either way.
///
/// # Behaviour
///
/// * **Cancellation.** Every acquire future can be dropped at any point without leaving a
///   node: a create in flight is cleaned up by the warden's janitor, a node already made is
///   deleted with [`Warden::delete_guaranteed`].
/// * **Ownership.** The lock is granted only after the node's ephemeral owner is compared
///   with the warden's current session. A node left by a previous session is deleted
///   before the mutex contends again with a new one.
/// * **Suspended / Lost while waiting.** Waiting continues; operations wait for the
///   connection. A waiter whose node vanished with its session creates a new one.
/// * **Suspended / Lost while holding.** The guard's [`LockGuard::lost`] resolves as the
///   configured [`LockSafety`] says (by default at `Suspended`).
#[derive(Clone)]
pub struct Mutex {
    internals: LockInternals,
    driver: Exclusive,
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("path", &self.internals.path)
            .field("payload_len", &self.internals.payload.len())
            .field("safety", &self.internals.safety)
            .field("with_kazoo", &self.driver.with_kazoo)
            .finish_non_exhaustive()
    }
}

/// The mutex's rule: the first node holds the lock; every other watches the one before it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Exclusive {
    /// Whether kazoo's `__lock__` nodes count as contenders.
    with_kazoo: bool,
}

impl Driver for Exclusive {
    fn standing<'a>(&self, children: &'a [String], own: &str) -> Result<Option<&'a str>, ()> {
        if self.with_kazoo {
            predecessor_among_any(children, own)
        } else {
            predecessor_of(children, own)
        }
    }
}

impl Mutex {
    /// A mutex on `path` (the parent of the contender nodes). Its payload is this process's
    /// holder id (`host:pid`); its safety is the warden's [`Warden::lock_safety`].
    pub fn new(warden: &Warden, path: impl Into<String>) -> Mutex {
        Mutex {
            internals: LockInternals::new(warden, path.into(), LOCK_NAME),
            driver: Exclusive::default(),
        }
    }

    /// Also queues behind nodes of kazoo's `Lock` recipe (`<hex>__lock__<sequence>`) on the
    /// same path, ordered with the Curator-format nodes by sequence number. Off by default.
    ///
    /// This makes *our* contenders wait for kazoo holders. It does not make kazoo wait for
    /// ours: an unmodified kazoo `Lock` only looks at `__lock__` nodes, so a kazoo contender
    /// can enter while a Curator-format holder (ours or Curator's) holds the lock. For mutual
    /// exclusion both ways, construct kazoo's lock with `extra_lock_patterns=["-lock-"]`.
    pub fn with_kazoo_contenders(mut self, recognise: bool) -> Mutex {
        self.driver.with_kazoo = recognise;
        self
    }

    /// Sets the data every lock node of this mutex carries (Curator reads it as the
    /// participant id).
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Mutex {
        self.internals.payload = payload.into();
        self
    }

    /// Sets when guards report the lock as lost (see [`LockGuard::lost`]).
    pub fn safety(mut self, safety: LockSafety) -> Mutex {
        self.internals.safety = safety;
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.internals.path
    }

    /// Waits for the lock as long as it takes.
    ///
    /// # Errors
    /// `NoAuth`, `InvalidAcl`, `InvalidPath`, `NoChildrenForEphemerals` (the path is an
    /// ephemeral node); connection errors once the warden's retries are spent; `Closed`.
    pub async fn lock(&self) -> Result<LockGuard> {
        self.acquire(None, true).await?.ok_or(Error::Timeout)
    }

    /// Waits for the lock until `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the deadline passes first (no node is left behind);
    /// otherwise as [`Mutex::lock`].
    pub async fn lock_until(&self, deadline: Instant) -> Result<LockGuard> {
        self.acquire(Some(deadline), true)
            .await?
            .ok_or(Error::Timeout)
    }

    /// Takes the lock if nobody holds it or waits for it: `Ok(None)` otherwise (the node
    /// made to ask is deleted again).
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub async fn try_lock(&self) -> Result<Option<LockGuard>> {
        self.acquire(None, false).await
    }

    pub(crate) async fn acquire(
        &self,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<Option<LockGuard>> {
        self.internals.acquire(&self.driver, deadline, wait).await
    }
}
