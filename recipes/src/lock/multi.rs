//! [`MultiLock`]: several locks taken as one, all or none (Curator's
//! `InterProcessMultiLock`, over any of this crate's lock recipes).
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use std::time::Duration;
//! use zkwarden_recipes::lock::{MultiLock, Mutex, ReadWriteLock};
//!
//! let both = MultiLock::new()
//!     .with(Mutex::new(&warden, "/accounts/alice/lock"))
//!     .with(ReadWriteLock::new(&warden, "/ledger/lock").write());
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
//! let guard = both.lock_until(deadline).await?;
//! warden
//!     .transaction()
//!     .fenced_by(&guard)
//!     .set_data("/accounts/alice", b"42".to_vec(), None)
//!     .commit()
//!     .await?;
//! guard.release().await?; // the ledger lock first, then alice's
//! # Ok(())
//! # }
//! ```
//!
//! # Behaviour
//!
//! The members are taken one after the other in the order they were added, each waiting as
//! its own recipe does. If one fails or the deadline passes, those already taken are
//! released in reverse order and the error is returned: the multi-lock is held with all its
//! members or not at all. Releasing (or dropping) the guard releases the members in
//! reverse order. Processes that take overlapping sets of locks must add them in one
//! global order, or two of them can each hold what the other waits for.
//!
//! # Suspended / Lost
//!
//! [`MultiGuard::lost`] resolves as soon as any member's
//! [`LockGuard::lost`] does (they all follow the same warden, so usually together), with
//! that member's reason. A transaction fenced by the guard checks every member's node.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::time::Instant;
use zkwarden::{Error, Op, Result};

use super::guard::LockGuard;
use super::lost::LostReason;
use super::mutex::Mutex;
use super::rwlock::{ReadLock, WriteLock};
use super::semaphore::Semaphore;

/// A boxed acquire future.
pub type AcquireFuture<'a> = Pin<Box<dyn Future<Output = Result<LockGuard>> + Send + 'a>>;

/// A lock recipe that can be a member of a [`MultiLock`].
pub trait Lockable: Send + Sync {
    /// Waits for the lock until `deadline` (or as long as it takes), failing with
    /// [`Error::Timeout`] at the deadline and leaving no node behind.
    fn lock_until(&self, deadline: Option<Instant>) -> AcquireFuture<'_>;
}

impl Lockable for Mutex {
    fn lock_until(&self, deadline: Option<Instant>) -> AcquireFuture<'_> {
        Box::pin(async move {
            match deadline {
                Some(at) => Mutex::lock_until(self, at).await,
                None => self.lock().await,
            }
        })
    }
}

impl Lockable for ReadLock {
    fn lock_until(&self, deadline: Option<Instant>) -> AcquireFuture<'_> {
        Box::pin(async move {
            match deadline {
                Some(at) => ReadLock::lock_until(self, at).await,
                None => self.lock().await,
            }
        })
    }
}

impl Lockable for WriteLock {
    fn lock_until(&self, deadline: Option<Instant>) -> AcquireFuture<'_> {
        Box::pin(async move {
            match deadline {
                Some(at) => WriteLock::lock_until(self, at).await,
                None => self.lock().await,
            }
        })
    }
}

/// One lease of the semaphore.
impl Lockable for Semaphore {
    fn lock_until(&self, deadline: Option<Instant>) -> AcquireFuture<'_> {
        Box::pin(async move {
            let lease = match deadline {
                Some(at) => self.acquire_until(at).await?,
                None => self.acquire().await?,
            };
            Ok(lease.into_guard())
        })
    }
}

/// Several locks held as one (see the [module docs](self)).
#[derive(Clone, Default)]
pub struct MultiLock {
    members: Vec<Arc<dyn Lockable>>,
}

impl fmt::Debug for MultiLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiLock")
            .field("members", &self.members.len())
            .finish()
    }
}

impl MultiLock {
    /// A multi-lock with no members yet.
    pub fn new() -> MultiLock {
        MultiLock::default()
    }

    /// Adds a member; members are taken in the order they were added.
    pub fn with(mut self, lock: impl Lockable + 'static) -> MultiLock {
        self.members.push(Arc::new(lock));
        self
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Waits for every member as long as it takes.
    ///
    /// # Errors
    /// The first member's error (those taken before it are released first).
    pub async fn lock(&self) -> Result<MultiGuard> {
        self.acquire(None).await
    }

    /// Waits for every member until `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the deadline passes first, or the first member's error; the
    /// members taken before are released first, so nothing is held.
    pub async fn lock_until(&self, deadline: Instant) -> Result<MultiGuard> {
        self.acquire(Some(deadline)).await
    }

    async fn acquire(&self, deadline: Option<Instant>) -> Result<MultiGuard> {
        // Dropping this future drops the guard, which releases what was taken in reverse.
        let mut held = MultiGuard {
            guards: Vec::with_capacity(self.members.len()),
        };
        for member in &self.members {
            match member.lock_until(deadline).await {
                Ok(guard) => held.guards.push(guard),
                Err(e) => {
                    let _ = held.release_all().await;
                    return Err(e);
                }
            }
        }
        Ok(held)
    }
}

/// A held [`MultiLock`]: every member's [`LockGuard`], in acquisition order. Dropping it
/// releases them in reverse order in the background.
pub struct MultiGuard {
    guards: Vec<LockGuard>,
}

impl fmt::Debug for MultiGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiGuard")
            .field("guards", &self.guards)
            .finish()
    }
}

impl MultiGuard {
    /// The members' guards, in acquisition order.
    pub fn guards(&self) -> &[LockGuard] {
        &self.guards
    }

    /// Every member's fencing token, in acquisition order.
    pub fn fencing_tokens(&self) -> Vec<i64> {
        self.guards.iter().map(LockGuard::fencing_token).collect()
    }

    /// Resolves, with that member's reason, as soon as any member's lock can no longer be
    /// trusted (see [`LockGuard::lost`]).
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static + use<> {
        let mut waits: Vec<Pin<Box<dyn Future<Output = LostReason> + Send>>> = self
            .guards
            .iter()
            .map(|g| Box::pin(g.lost()) as Pin<Box<dyn Future<Output = LostReason> + Send>>)
            .collect();
        std::future::poll_fn(move |cx| {
            if waits.is_empty() {
                return Poll::Ready(LostReason::Released);
            }
            for wait in &mut waits {
                if let Poll::Ready(reason) = wait.as_mut().poll(cx) {
                    return Poll::Ready(reason);
                }
            }
            Poll::Pending
        })
    }

    /// The first reason any member's lock was lost, if one was.
    pub fn lost_reason(&self) -> Option<LostReason> {
        self.guards.iter().find_map(LockGuard::lost_reason)
    }

    /// `ops` with a check of every member's node in front (see [`LockGuard::fence`]).
    /// Prefer `warden.transaction().fenced_by(&guard)` (the guard is a
    /// [`Fence`](zkwarden::warden::Fence)), which reports a refusal as
    /// [`FencedOut`](zkwarden::Error::FencedOut).
    pub fn fence(&self, ops: Vec<Op>) -> Vec<Op> {
        zkwarden::warden::fenced(self, ops)
    }

    /// Releases every member, the last taken first.
    ///
    /// # Errors
    /// The first error of a member's [`LockGuard::release`] (the others are still
    /// released; failed deletes go on in the background).
    pub async fn release(mut self) -> Result<()> {
        self.release_all().await
    }

    async fn release_all(&mut self) -> Result<()> {
        let mut first: Option<Error> = None;
        while let Some(guard) = self.guards.pop() {
            if let Err(e) = guard.release().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// A transaction fenced by a multi-lock guard is applied only while every member's node
/// exists.
impl zkwarden::warden::Fence for MultiGuard {
    fn fence_checks(&self) -> Vec<Op> {
        self.guards.iter().map(LockGuard::check).collect()
    }
}

impl Drop for MultiGuard {
    fn drop(&mut self) {
        if self.guards.is_empty() {
            return;
        }
        let mut guards = std::mem::take(&mut self.guards);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    while let Some(guard) = guards.pop() {
                        let _ = guard.release().await;
                    }
                });
            }
            // Each guard's own drop starts its delete (or leaves it to the session).
            Err(_) => guards.reverse(),
        }
    }
}
