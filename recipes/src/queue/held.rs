//! An item lock held by a lock-safe consumer, and the session-pinned transactions that end
//! it. Every write here goes to the session that created the lock node: the node's path is
//! the item's name, so once that session is gone the same path may be another consumer's
//! lock, and nothing may be deleted in its name.

use zkwarden::{Error, ErrorCode, Op, Result, SessionId, Warden};

use crate::lock::LockGuard;

/// How a session-pinned transaction ended.
enum Outcome {
    /// Applied.
    Done,
    /// Refused by the server (nothing applied this time); `maybe_applied` when an earlier
    /// send of the same ops lost its reply.
    Refused { error: Error, maybe_applied: bool },
    /// The lock's session ended first.
    SessionGone { maybe_applied: bool },
    /// Another failure: the warden closed, the retry budget ran out, or a bad request.
    Failed { error: Error },
}

/// Runs `ops` as one transaction on `session` only, repeating it across reconnections of
/// that session; never on a later session.
async fn on_session(warden: &Warden, session: SessionId, ops: &[Op], probe: &str) -> Outcome {
    let mut maybe_applied = false;
    loop {
        let Some(client) = warden.client().filter(|c| c.session_id() == session) else {
            return Outcome::SessionGone { maybe_applied };
        };
        let error = match client.multi(ops).await {
            Ok(_) => return Outcome::Done,
            Err(error @ Error::MultiFailed { .. }) => {
                return Outcome::Refused {
                    error,
                    maybe_applied,
                };
            }
            Err(Error::SessionExpired) => return Outcome::SessionGone { maybe_applied },
            Err(error) if error.is_invalid_request() || error == Error::Closed => {
                return Outcome::Failed { error };
            }
            Err(error) => error,
        };
        if error != Error::NotConnected {
            // The reply was lost: the transaction may have been applied.
            maybe_applied = true;
        }
        // Wait for a connection the warden's way (its retry policy and timeouts), then look
        // at which session it is.
        if let Err(error) = warden.exists(probe).await {
            return Outcome::Failed { error };
        }
    }
}

/// The lock a lock-safe consumer holds on one item node.
pub(crate) struct Held {
    warden: Warden,
    item: String,
    guard: LockGuard,
}

impl Held {
    pub(crate) fn new(warden: &Warden, item: String, guard: LockGuard) -> Held {
        Held {
            warden: warden.clone(),
            item,
            guard,
        }
    }

    pub(crate) fn guard(&self) -> &LockGuard {
        &self.guard
    }

    /// Deletes the item together with `extra` ops and the lock, in one transaction on the
    /// lock's session (Curator's lock-safe consumer deletes the item, then the lock).
    ///
    /// `Err(SessionExpired)`: the lock went with its session before the item was deleted;
    /// the item stays for another consumer. `Err(ConnectionLoss)`: the session ended while
    /// the outcome of a sent transaction was unknown, and the item is gone (deleted by it,
    /// or taken by another consumer after the lock lapsed). `Err(NoNode)`: someone removed
    /// the item without its lock (a consumer that is not lock-safe).
    pub(crate) async fn finish(self, extra: Vec<Op>) -> Result<()> {
        let Held {
            warden,
            item,
            guard,
        } = self;
        let session = guard.session_id();
        let lock = guard.node_path().to_owned();
        // The guard's own cleanup deletes by path on any session: not for a shared path.
        guard.forget();
        let mut ops = Vec::with_capacity(extra.len() + 2);
        ops.push(Op::delete(item.clone(), None));
        ops.extend(extra);
        ops.push(Op::delete(lock.clone(), None));
        match on_session(&warden, session, &ops, &item).await {
            Outcome::Done => Ok(()),
            Outcome::Refused {
                error:
                    Error::MultiFailed {
                        index: 0,
                        code: ErrorCode::NoNode,
                        ..
                    },
                maybe_applied,
            } => {
                // The item is gone. If our lock is gone too, an earlier send did it all.
                let lock_left = warden.exists(&lock).await?.is_some();
                if maybe_applied && !lock_left {
                    return Ok(());
                }
                unlock(&warden, session, &lock).await;
                Err(Error::NoNode)
            }
            Outcome::Refused { error, .. } | Outcome::Failed { error } => {
                unlock(&warden, session, &lock).await;
                Err(error)
            }
            Outcome::SessionGone {
                maybe_applied: false,
            } => Err(Error::SessionExpired),
            Outcome::SessionGone {
                maybe_applied: true,
            } => match warden.exists(&item).await? {
                Some(_) => Err(Error::SessionExpired),
                None => Err(Error::ConnectionLoss),
            },
        }
    }

    /// Gives the item back: deletes only the lock (on its session; a lock whose session is
    /// gone went with it).
    pub(crate) async fn release(self) {
        let session = self.guard.session_id();
        let lock = self.guard.node_path().to_owned();
        self.guard.forget();
        unlock(&self.warden, session, &lock).await;
    }

    /// [`Held::release`] in the background, for a holder dropped without a decision.
    pub(crate) fn release_in_background(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(self.release());
            }
            Err(_) => {
                tracing::warn!(item = %self.item, "no runtime to unlock a queue item; the lock goes with the session");
                self.guard.forget();
            }
        }
    }
}

/// Deletes the lock node `lock` on `session`; a failure leaves it to the session's end.
async fn unlock(warden: &Warden, session: SessionId, lock: &str) {
    match on_session(warden, session, &[Op::delete(lock, None)], lock).await {
        Outcome::Done | Outcome::SessionGone { .. } => {}
        Outcome::Refused { error, .. } | Outcome::Failed { error } => {
            tracing::debug!(%lock, %error, "queue item lock not deleted; it goes with the session");
        }
    }
}
