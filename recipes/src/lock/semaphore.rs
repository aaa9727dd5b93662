//! [`Semaphore`]: at most N leases at a time, on the znodes of Apache Curator's
//! `InterProcessSemaphoreV2`.
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::lock::Semaphore;
//!
//! // Three workers at most may talk to the licence server at once.
//! let licences = Semaphore::new(&warden, "/app/licences", 3).payload("worker-7");
//! let lease = licences.acquire().await?;
//! tokio::select! {
//!     reason = lease.lost() => eprintln!("lease lost ({reason:?}): stop using the licence"),
//!     () = async { /* use the licence */ } => {}
//! }
//! lease.release().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Protocol
//!
//! The semaphore at `<path>` keeps a [`Mutex`] at `<path>/locks` and its
//! leases as ephemeral sequential nodes `<path>/leases/_c_<uuid>-lease-<sequence>`. To take
//! one lease a contender takes the `locks` mutex, creates its lease node, and lists
//! `<path>/leases` with a child watch: while there are more than N children it waits for the
//! watch and lists again; once there are at most N its lease is granted. It then releases
//! the `locks` mutex. Only the holder of the mutex ever waits on the leases, so waiting
//! contenders queue fairly on the mutex, and a release of any lease wakes exactly that one.
//!
//! The limit N is each contender's own: Curator's semaphore keeps it the same way (or in an
//! optional shared count node, which this recipe does not read). All contenders on one path
//! must agree on N.
//!
//! # Behaviour
//!
//! * **Cancellation.** An acquire can be dropped at any point: its lease node and its node
//!   on the `locks` mutex are deleted (guaranteed), a create in flight goes to the warden's
//!   janitor.
//! * **Ownership.** A lease is granted only after its node's ephemeral owner is compared
//!   with the current session; a lease node of a previous session is deleted and the lease
//!   taken again from the start.
//! * **Many leases.** [`Semaphore::acquire_many`] takes them one after the other and returns
//!   all or none (on an error or timeout it releases those it took).
//!
//! # Suspended / Lost
//!
//! While waiting, operations wait for the connection; a lease node that vanished with an
//! expired session is made again. A held [`Lease`] reports through [`LockGuard::lost`] (it
//! dereferences to a [`LockGuard`]) as the configured [`LockSafety`] says: at `Suspended` by
//! default, and always when the session is lost or the node deleted. Once lost, more than N
//! processes may believe they hold a lease; fence writes with
//! `warden.transaction().fenced_by(&lease)` (a lease is a [`Fence`](zkwarden::warden::Fence)).

use std::fmt;
use std::ops::Deref;

use tokio::time::Instant;
use zkwarden::warden::{LockSafety, ParentMode};
use zkwarden::{CreateMode, Error, Result, SessionId, Warden};

use super::guard::LockGuard;
use super::internals::{OwnNode, holder_id, join, owned, trim_path, wait_until};
use super::mutex::Mutex;

/// The child of the semaphore path holding the `locks` mutex (Curator's `LOCK_PARENT`).
pub const SEMAPHORE_LOCKS: &str = "locks";
/// The child of the semaphore path holding the lease nodes (Curator's `LEASE_PARENT`).
pub const SEMAPHORE_LEASES: &str = "leases";
/// The name of a lease node before its sequence number (Curator's `LEASE_BASE_NAME`).
pub const LEASE_NAME: &str = "lease-";

/// A counting semaphore on a ZooKeeper path, compatible with Curator's
/// `InterProcessSemaphoreV2` (see the [module docs](self)).
#[derive(Clone)]
pub struct Semaphore {
    warden: Warden,
    path: String,
    leases: String,
    max_leases: usize,
    payload: Vec<u8>,
    safety: LockSafety,
    lock: Mutex,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("path", &self.path)
            .field("max_leases", &self.max_leases)
            .field("payload_len", &self.payload.len())
            .field("safety", &self.safety)
            .finish_non_exhaustive()
    }
}

/// How one attempt at a lease ended.
enum Leasing {
    Granted(LockGuard),
    /// More than N leases (`try_acquire` only).
    Full,
    /// Our node is gone or belongs to an old session: start again.
    Again,
}

impl Semaphore {
    /// A semaphore on `path` allowing `max_leases` leases at once. Lease nodes carry this
    /// process's holder id (`host:pid`); the safety is the warden's
    /// [`Warden::lock_safety`].
    pub fn new(warden: &Warden, path: impl Into<String>, max_leases: usize) -> Semaphore {
        let path = trim_path(path.into());
        let safety = warden.lock_safety();
        Semaphore {
            lock: Mutex::new(warden, join(&path, SEMAPHORE_LOCKS)).safety(safety),
            leases: join(&path, SEMAPHORE_LEASES),
            warden: warden.clone(),
            path,
            max_leases,
            payload: holder_id(),
            safety,
        }
    }

    /// Sets the data every lease node carries (Curator's `setNodeData`).
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Semaphore {
        self.payload = payload.into();
        self.lock = self.lock.payload(self.payload.clone());
        self
    }

    /// Sets when leases report themselves lost (see [`LockGuard::lost`]).
    pub fn safety(mut self, safety: LockSafety) -> Semaphore {
        self.safety = safety;
        self.lock = self.lock.safety(safety);
        self
    }

    /// The semaphore's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How many leases may be held at once.
    pub fn max_leases(&self) -> usize {
        self.max_leases
    }

    /// The names of the lease nodes now present (held leases, and at most one contender
    /// still checking the count).
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent; `Closed`.
    pub async fn lease_nodes(&self) -> Result<Vec<String>> {
        match self.warden.get_children(&self.leases).await {
            Ok(children) => Ok(children),
            Err(Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Waits for one lease as long as it takes.
    ///
    /// # Errors
    /// `NoAuth`, `InvalidAcl`, `InvalidPath`, `NoChildrenForEphemerals`; connection errors
    /// once the warden's retries are spent; `Closed`.
    pub async fn acquire(&self) -> Result<Lease> {
        self.acquire_one(None, true).await?.ok_or(Error::Timeout)
    }

    /// Waits for one lease until `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the deadline passes first (no node is left behind);
    /// otherwise as [`Semaphore::acquire`].
    pub async fn acquire_until(&self, deadline: Instant) -> Result<Lease> {
        self.acquire_one(Some(deadline), true)
            .await?
            .ok_or(Error::Timeout)
    }

    /// Takes a lease without waiting: `Ok(None)` when N leases are held, or when another
    /// contender is taking one right now (it holds the `locks` mutex, as in Curator with a
    /// zero wait).
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub async fn try_acquire(&self) -> Result<Option<Lease>> {
        self.acquire_one(None, false).await
    }

    /// Takes `n` leases, one after the other, waiting until `deadline` (if any): all of them
    /// or none.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `n` is more than the semaphore's limit (it could
    /// never be granted); [`Error::Timeout`] at the deadline; otherwise as
    /// [`Semaphore::acquire`]. Leases taken before an error are released first.
    pub async fn acquire_many(&self, n: usize, deadline: Option<Instant>) -> Result<Vec<Lease>> {
        if n > self.max_leases {
            return Err(Error::InvalidArgument(format!(
                "{n} leases asked of a semaphore allowing {}",
                self.max_leases
            )));
        }
        let mut leases: Vec<Lease> = Vec::with_capacity(n);
        while leases.len() < n {
            match self.acquire_one(deadline, true).await {
                Ok(Some(lease)) => leases.push(lease),
                outcome => {
                    for lease in leases.into_iter().rev() {
                        let _ = lease.release().await;
                    }
                    return Err(outcome.err().unwrap_or(Error::Timeout));
                }
            }
        }
        Ok(leases)
    }

    async fn acquire_one(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<Lease>> {
        loop {
            let Some(inner) = self.lock.acquire(deadline, wait).await? else {
                return Ok(None);
            };
            // Dropping this future while holding `inner` releases it in the background.
            let outcome = self.lease_under_lock(deadline, wait).await;
            if let Err(e) = inner.release().await {
                tracing::debug!(path = %self.path, error = %e, "semaphore lock release pending");
            }
            match outcome? {
                Leasing::Granted(guard) => return Ok(Some(Lease(guard))),
                Leasing::Full => return Ok(None),
                Leasing::Again => {}
            }
        }
    }

    /// Makes a lease node and waits until at most N lease nodes exist (the caller holds the
    /// `locks` mutex).
    async fn lease_under_lock(&self, deadline: Option<Instant>, wait: bool) -> Result<Leasing> {
        let warden = match deadline {
            Some(at) => self.warden.with_deadline(at),
            None => self.warden.clone(),
        };
        let created = warden
            .create(&join(&self.leases, LEASE_NAME), &self.payload)
            .mode(CreateMode::EphemeralSequential)
            .protected()
            .parents(ParentMode::Container)
            .await?;
        let mut own = OwnNode::arm(&self.warden, created);
        let session = warden.session_id();
        let outcome = self.count(&warden, &own, session, deadline, wait).await;
        match outcome {
            Ok(Leasing::Granted(guard)) => {
                own.disarm();
                Ok(Leasing::Granted(guard))
            }
            Ok(other) => {
                own.delete().await;
                Ok(other)
            }
            Err(e) => {
                own.delete().await;
                Err(e)
            }
        }
    }

    /// Lists the leases until ours is among at most N.
    async fn count(
        &self,
        warden: &Warden,
        own: &OwnNode,
        created_in: SessionId,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<Leasing> {
        loop {
            if warden.session_id() != created_in && !owned(warden, own.path()).await? {
                return Ok(Leasing::Again);
            }
            let (children, watcher) = match warden.get_children_and_watch(&self.leases).await {
                Ok(found) => found,
                Err(Error::NoNode) => return Ok(Leasing::Again),
                Err(e) => return Err(e),
            };
            if !children.iter().any(|c| c == own.name()) {
                return Ok(Leasing::Again);
            }
            if children.len() <= self.max_leases {
                return Ok(
                    match LockGuard::confirm(&self.warden, warden, own.path(), self.safety).await? {
                        Some(guard) => Leasing::Granted(guard),
                        None => Leasing::Again,
                    },
                );
            }
            if !wait {
                return Ok(Leasing::Full);
            }
            wait_until(watcher, deadline).await?;
        }
    }
}

/// A held lease of a [`Semaphore`]: a [`LockGuard`] on the lease node (it dereferences to
/// one, for [`LockGuard::lost`], [`LockGuard::fencing_token`] and [`LockGuard::fence`]).
/// Dropping it releases the lease in the background.
#[derive(Debug)]
pub struct Lease(LockGuard);

impl Lease {
    /// Releases the lease (deletes its node; see [`LockGuard::release`]).
    ///
    /// # Errors
    /// As [`LockGuard::release`].
    pub async fn release(self) -> Result<()> {
        self.0.release().await
    }

    /// The guard on the lease node.
    pub fn into_guard(self) -> LockGuard {
        self.0
    }
}

/// Fences by the lease node, as its [`LockGuard`] does.
impl zkwarden::warden::Fence for Lease {
    fn fence_checks(&self) -> Vec<zkwarden::Op> {
        self.0.fence_checks()
    }
}

impl Deref for Lease {
    type Target = LockGuard;

    fn deref(&self) -> &LockGuard {
        &self.0
    }
}
