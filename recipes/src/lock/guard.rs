//! [`LockGuard`]: a held lock node, shared by every lock recipe.

use std::fmt;
use std::future::Future;

use zkwarden::warden::{Fence, LockSafety, fenced};
use zkwarden::{Error, Op, Result, SessionId, Stat, Warden};

use super::internals::delete_in_background;
use super::lost::{LostReason, LostWatch};

/// A held lock ([`Mutex`](super::Mutex), either side of a
/// [`ReadWriteLock`](super::ReadWriteLock), the inner lock of a
/// [`Semaphore`](super::Semaphore)). Dropping it releases the lock in the background (a
/// guaranteed delete); [`LockGuard::release`] does the same and waits for it.
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
    /// Hands out the guard for `node` once it is confirmed to exist and to belong to the
    /// warden's current session; `Ok(None)` when it does not (a node left over from a
    /// session that is gone, or going, is never trusted). `warden` owns the guard's
    /// background work; `ops` (possibly bounded by a deadline) makes the check.
    pub(crate) async fn confirm(
        warden: &Warden,
        ops: &Warden,
        node: &str,
        safety: LockSafety,
    ) -> Result<Option<LockGuard>> {
        // Subscribe before the check, so no connection change after it goes unseen.
        let events = warden.events();
        let Some(stat) = ops.exists(node).await? else {
            return Ok(None);
        };
        let now = warden.connection();
        if stat.ephemeral_owner != now.session_id.0 {
            return Ok(None);
        }
        let lost = LostWatch::spawn(
            warden.clone(),
            node.to_owned(),
            now.session_id,
            now.generation,
            safety,
            events,
        );
        Ok(Some(LockGuard {
            warden: warden.clone(),
            node: node.to_owned(),
            stat,
            session: now.session_id,
            lost,
            released: false,
        }))
    }

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
    /// node is gone, so a write made after the lock was lost is refused. Prefer
    /// `warden.transaction().fenced_by(&guard)` (the guard is a [`Fence`]), which reports
    /// the refusal as [`Error::FencedOut`].
    pub fn fence(&self, ops: Vec<Op>) -> Vec<Op> {
        fenced(self, ops)
    }

    /// The check a fenced transaction carries in front of its ops.
    pub fn check(&self) -> Op {
        Op::check(self.node.clone(), None)
    }

    /// Gives the guard up without deleting the lock node: for a recipe that deleted the node
    /// itself, or whose node went with its session (the same path may belong to someone
    /// else by now, so it must not be deleted blindly).
    pub(crate) fn forget(mut self) {
        self.lost.stop();
        self.released = true;
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

/// A transaction [fenced](zkwarden::warden::Transaction::fenced_by) by the guard is applied
/// only while the lock node exists. It can still succeed after [`LockGuard::lost`] fired at
/// `Suspended` if the session lived on: see [`Fence`].
impl Fence for LockGuard {
    fn fence_checks(&self) -> Vec<Op> {
        vec![self.check()]
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
