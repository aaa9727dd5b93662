//! [`Mutex`]: a distributed lock that shares its znodes with Apache Curator's
//! `InterProcessMutex`.

use std::fmt;
use std::future::Future;

use tokio::time::Instant;
use zkwarden::warden::{LockSafety, ParentMode};
use zkwarden::{CreateMode, Error, Op, Result, SessionId, Stat, Warden};

use super::lost::{LostReason, LostWatch};
use super::naming::{LOCK_NAME, predecessor_of};

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
/// The mutex is not re-entrant (Curator's is, per thread): a second `lock` from the same
/// process waits for the first guard like any other contender.
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
    warden: Warden,
    path: String,
    payload: Vec<u8>,
    safety: LockSafety,
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("path", &self.path)
            .field("payload_len", &self.payload.len())
            .field("safety", &self.safety)
            .finish_non_exhaustive()
    }
}

/// This process's holder id: `host:pid`, the default payload of a lock node.
fn holder_id() -> Vec<u8> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host}:{}", std::process::id()).into_bytes()
}

/// How one round of contention ended.
enum Contended {
    Acquired(LockGuard),
    /// Someone else holds the lock (`try_lock` only).
    Busy,
    /// Our node is gone or belongs to an old session: make a new one.
    Again,
}

impl Mutex {
    /// A mutex on `path` (the parent of the contender nodes). Its payload is this process's
    /// holder id (`host:pid`); its safety is the warden's [`Warden::lock_safety`].
    pub fn new(warden: &Warden, path: impl Into<String>) -> Mutex {
        let mut path = path.into();
        while path.len() > 1 && path.ends_with('/') {
            path.pop();
        }
        Mutex {
            safety: warden.lock_safety(),
            warden: warden.clone(),
            path,
            payload: holder_id(),
        }
    }

    /// Sets the data every lock node of this mutex carries (Curator reads it as the
    /// participant id).
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Mutex {
        self.payload = payload.into();
        self
    }

    /// Sets when guards report the lock as lost (see [`LockGuard::lost`]).
    pub fn safety(mut self, safety: LockSafety) -> Mutex {
        self.safety = safety;
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.path
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

    async fn acquire(&self, deadline: Option<Instant>, wait: bool) -> Result<Option<LockGuard>> {
        let warden = match deadline {
            Some(at) => self.warden.with_deadline(at),
            None => self.warden.clone(),
        };
        let prefix = join(&self.path, LOCK_NAME);
        loop {
            // A create abandoned midway is the janitor's to clean up.
            let created = warden
                .create(&prefix, &self.payload)
                .mode(CreateMode::EphemeralSequential)
                .protected()
                .parents(ParentMode::Container)
                .await?;
            // From here on, dropping this future deletes the node.
            let mut own = OwnNode::arm(&self.warden, created);
            let session = warden.session_id();
            let outcome = self.contend(&warden, &own, session, deadline, wait).await;
            match outcome {
                Ok(Contended::Acquired(guard)) => {
                    own.disarm();
                    return Ok(Some(guard));
                }
                Ok(Contended::Busy) => {
                    own.delete().await;
                    return Ok(None);
                }
                Ok(Contended::Again) => own.delete().await,
                Err(e) => {
                    own.delete().await;
                    return Err(e);
                }
            }
        }
    }

    /// Waits until `own` is first (or, when `wait` is false, tells whether it is).
    async fn contend(
        &self,
        warden: &Warden,
        own: &OwnNode,
        created_in: SessionId,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<Contended> {
        let name = own.name();
        loop {
            if warden.session_id() != created_in && !self.owned(warden, own).await? {
                return Ok(Contended::Again);
            }
            let children = match warden.get_children(&self.path).await {
                Ok(children) => children,
                // The container went away, and our node with it.
                Err(Error::NoNode) => return Ok(Contended::Again),
                Err(e) => return Err(e),
            };
            let predecessor = match predecessor_of(&children, name) {
                Err(()) => return Ok(Contended::Again),
                Ok(predecessor) => predecessor,
            };
            let Some(predecessor) = predecessor else {
                return self.confirm(warden, own).await;
            };
            if !wait {
                return Ok(Contended::Busy);
            }
            let watched = join(&self.path, predecessor);
            let watcher = match warden.get_data_and_watch(&watched).await {
                Ok((_, _, watcher)) => watcher,
                // Gone between the listing and the read: look again.
                Err(Error::NoNode) => continue,
                Err(e) => return Err(e),
            };
            // Whatever fires (deletion, a data change, the end of the session), look again.
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = watcher => {}
                        () = tokio::time::sleep_until(at) => return Err(Error::Timeout),
                    }
                }
                None => {
                    let _ = watcher.await;
                }
            }
        }
    }

    /// Whether `own` exists and belongs to the warden's current session.
    async fn owned(&self, warden: &Warden, own: &OwnNode) -> Result<bool> {
        Ok(matches!(
            warden.exists(own.path()).await?,
            Some(stat) if stat.ephemeral_owner == warden.session_id().0
        ))
    }

    /// `own` is first: check that it is ours and hand out the guard.
    async fn confirm(&self, warden: &Warden, own: &OwnNode) -> Result<Contended> {
        // Subscribe before the check, so no connection change after it goes unseen.
        let events = self.warden.events();
        let Some(stat) = warden.exists(own.path()).await? else {
            return Ok(Contended::Again);
        };
        let now = self.warden.connection();
        if stat.ephemeral_owner != now.session_id.0 {
            // Left over from a session that is gone (or going): never trust it.
            return Ok(Contended::Again);
        }
        let lost = LostWatch::spawn(
            self.warden.clone(),
            own.path().to_owned(),
            now.session_id,
            now.generation,
            self.safety,
            events,
        );
        Ok(Contended::Acquired(LockGuard {
            warden: self.warden.clone(),
            node: own.path().to_owned(),
            stat,
            session: now.session_id,
            lost,
            released: false,
        }))
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Our contender node while we wait: deleted (guaranteed) if the wait is abandoned.
struct OwnNode {
    warden: Warden,
    path: String,
    armed: bool,
}

impl OwnNode {
    fn arm(warden: &Warden, path: String) -> OwnNode {
        OwnNode {
            warden: warden.clone(),
            path,
            armed: true,
        }
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Deletes the node now. Failures that may pass stay pending in the warden's
    /// background; if this future is dropped midway, `Drop` starts the delete again.
    async fn delete(&mut self) {
        match self.warden.delete_guaranteed(&self.path, None).await {
            Ok(()) | Err(Error::NoNode) => {}
            Err(e) => tracing::debug!(path = %self.path, error = %e, "lock node delete pending"),
        }
        self.armed = false;
    }
}

impl Drop for OwnNode {
    fn drop(&mut self) {
        if self.armed {
            delete_in_background(&self.warden, &self.path);
        }
    }
}

/// Starts a guaranteed delete of `path` without waiting for it.
fn delete_in_background(warden: &Warden, path: &str) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(%path, "no runtime to delete a lock node; it goes with the session");
        return;
    };
    let warden = warden.clone();
    let path = path.to_owned();
    runtime.spawn(async move {
        match warden.delete_guaranteed(&path, None).await {
            Ok(()) | Err(Error::NoNode) => {}
            Err(e) => tracing::debug!(%path, error = %e, "lock node delete pending"),
        }
    });
}

/// A held [`Mutex`]. Dropping it releases the lock in the background (a guaranteed delete);
/// [`LockGuard::release`] does the same and waits for it.
pub struct LockGuard {
    warden: Warden,
    node: String,
    stat: Stat,
    session: SessionId,
    lost: LostWatch,
    released: bool,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("node", &self.node)
            .field("fencing_token", &self.stat.czxid)
            .field("session", &self.session)
            .field("lost", &self.lost.reason())
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    /// A number that grows with every acquisition of the lock, by anyone: the zxid that
    /// created the lock node. Hand it to the guarded resource so it can refuse a stale
    /// holder's writes.
    pub fn fencing_token(&self) -> i64 {
        self.stat.czxid
    }

    /// The lock node's full path.
    pub fn node_path(&self) -> &str {
        &self.node
    }

    /// The session that owns the lock node.
    pub fn session_id(&self) -> SessionId {
        self.session
    }

    /// Resolves when the lock can no longer be trusted: at once when the connection is
    /// `Suspended` ([`LockSafety::Suspend`], the default); when the session deadline minus
    /// the margin passes without a reconnection ([`LockSafety::SessionDeadline`]); and under
    /// every setting when the session is lost or replaced, the warden closes, or the node is
    /// deleted. Events are followed from the moment the lock was granted, so a brief
    /// suspension that is already over still counts. Resolves with
    /// [`LostReason::Released`] if the guard goes first.
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static + use<> {
        self.lost.wait()
    }

    /// Why the lock was lost, if it was.
    pub fn lost_reason(&self) -> Option<LostReason> {
        self.lost.reason()
    }

    /// `ops` with a check of the lock node in front: committed with
    /// [`Warden::multi`], the transaction fails on the server (`NoNode` on op 0) once the lock
    /// node is gone, so a write made after the lock was lost is refused.
    pub fn fence(&self, ops: Vec<Op>) -> Vec<Op> {
        let mut fenced = Vec::with_capacity(ops.len() + 1);
        fenced.push(Op::check(self.node.clone(), None));
        fenced.extend(ops);
        fenced
    }

    /// Releases the lock: deletes the lock node, and keeps trying in the background if the
    /// connection is down. Dropping this future midway leaves the delete to `Drop`.
    ///
    /// # Errors
    /// The immediate attempt's error when it may pass (connection errors, `SessionExpired`;
    /// the delete then goes on in the background), or `NoAuth`, `Closed`. A node already
    /// gone is success.
    pub async fn release(mut self) -> Result<()> {
        self.lost.stop();
        let result = match self.warden.delete_guaranteed(&self.node, None).await {
            Ok(()) | Err(Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        };
        self.released = true;
        result
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.lost.stop();
        if !self.released {
            delete_in_background(&self.warden, &self.node);
        }
    }
}
