//! [`Leadership`]: proof of being the leader, and the means to notice when it ends.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use zkwarden::warden::{Fence, fenced};
use zkwarden::{Op, SessionId};

use crate::lock::LostReason;
use crate::lock::lost::LostWatch;

/// One term of leadership, handed out by [`LeaderLatch`](super::LeaderLatch) and
/// [`LeaderSelector`](super::LeaderSelector). Cloning is cheap; every clone describes the
/// same term.
///
/// A term begins when this participant's node is first in the queue *and* the node's
/// ephemeral owner is the warden's current session, and it ends when [`Leadership::lost`]
/// resolves: at `Suspended` by default, at the session deadline minus a margin under
/// [`LockSafety::SessionDeadline`](zkwarden::warden::LockSafety::SessionDeadline), and in
/// every case when the session is lost or replaced, the node is deleted, or the term is
/// given up (the latch closed, the selector's scope returned).
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    fencing_token: i64,
    session: SessionId,
    lost: Mutex<LostWatch>,
    /// Set once the term was given up (the watch no longer reports a reason then).
    ended: AtomicBool,
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("node", &self.inner.node)
            .field("fencing_token", &self.inner.fencing_token)
            .field("session", &self.inner.session)
            .field("lost", &self.lost_reason())
            .finish()
    }
}

impl Leadership {
    pub(crate) fn new(
        node: String,
        fencing_token: i64,
        session: SessionId,
        lost: LostWatch,
    ) -> Leadership {
        Leadership {
            inner: Arc::new(Inner {
                node,
                fencing_token,
                session,
                lost: Mutex::new(lost),
                ended: AtomicBool::new(false),
            }),
        }
    }

    fn watch(&self) -> MutexGuard<'_, LostWatch> {
        // The watch holds no invariant a panic could break.
        self.inner
            .lost
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A number that grows with every term, by anyone on this path: the zxid that created
    /// the leader's node. Hand it to the resource the leader writes to, so it can refuse a
    /// former leader.
    ///
    /// A latch that keeps its node through a suspension and finds itself still first after
    /// reconnecting starts a new term with the same token: nobody can have led in between,
    /// because the node never left the head of the queue.
    pub fn fencing_token(&self) -> i64 {
        self.inner.fencing_token
    }

    /// The full path of the leader's node.
    pub fn node_path(&self) -> &str {
        &self.inner.node
    }

    /// The session that owns the leader's node.
    pub fn session_id(&self) -> SessionId {
        self.inner.session
    }

    /// Resolves when this term can no longer be trusted, with the reason (see the type's
    /// docs). Connection events are followed from the moment the term began, so a
    /// suspension that is already over still counts. Resolves with
    /// [`LostReason::Released`] when the term was given up first.
    pub fn lost(&self) -> impl Future<Output = LostReason> + Send + 'static + use<> {
        self.watch().wait()
    }

    /// Why the term ended, if it has.
    pub fn lost_reason(&self) -> Option<LostReason> {
        let found = self.watch().reason();
        if found.is_none() && self.inner.ended.load(Ordering::SeqCst) {
            return Some(LostReason::Released);
        }
        found
    }

    /// Whether the term is still on (`lost()` has not resolved).
    pub fn is_valid(&self) -> bool {
        self.lost_reason().is_none()
    }

    /// `ops` with a check of the leader's node in front: committed with
    /// [`Warden::multi`](zkwarden::Warden::multi), the transaction fails on the server
    /// (`NoNode` on op 0) once the node is gone, so a former leader's write is refused.
    /// Prefer `warden.transaction().fenced_by(&leadership)` (a `Leadership` is a
    /// [`Fence`]), which reports the refusal as
    /// [`FencedOut`](zkwarden::Error::FencedOut).
    pub fn fence(&self, ops: Vec<Op>) -> Vec<Op> {
        fenced(self, ops)
    }

    /// Ends the term: pending and later `lost()` calls resolve (with `Released` unless a
    /// reason was found first).
    pub(crate) fn end(&self) {
        self.inner.ended.store(true, Ordering::SeqCst);
        self.watch().stop();
    }
}

/// A transaction [fenced](zkwarden::warden::Transaction::fenced_by) by a term is applied only
/// while the leader's node exists. It can still succeed after [`Leadership::lost`] fired at
/// `Suspended` if the session lived on: see [`Fence`].
impl Fence for Leadership {
    fn fence_checks(&self) -> Vec<Op> {
        vec![Op::check(self.inner.node.clone(), None)]
    }
}
