//! An item lock held by a lock-safe consumer, and the session-pinned transactions that end
//! it. Every write here goes to the session that created the lock node: the node's path is
//! the item's name, so once that session is gone the same path may be another consumer's
//! lock, and nothing may be deleted in its name.

use zkwarden::warden::LockSafety;
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
        let error = match warden.multi_on_session(session, ops).await {
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

/// The lock a lock-safe consumer took on one item node. Until a transaction deletes it (or
/// its session ends), dropping this deletes the lock node in the background, on the session
/// that made it: a consumer cancelled midway never leaves an item locked.
pub(crate) struct Held {
    warden: Warden,
    item: String,
    lock: String,
    /// The consumer's mark in its lock nodes.
    holder: Vec<u8>,
    session: SessionId,
    /// Set once the lock is confirmed as this session's.
    guard: Option<LockGuard>,
    /// Whether the lock node may still need deleting by us.
    armed: bool,
}

impl Held {
    /// The lock node `lock` on `item` that this consumer (marked `holder`) creates now on
    /// the warden's current session: made before the create is sent, so a create cancelled
    /// midway is cleaned up too.
    pub(crate) fn creating(warden: &Warden, item: String, lock: String, holder: &[u8]) -> Held {
        let session = warden.operating_session_id();
        Held {
            warden: warden.clone(),
            item,
            lock,
            holder: holder.to_vec(),
            session,
            guard: None,
            armed: true,
        }
    }

    /// Confirms the lock node as the current session's (and starts following whether it
    /// may be lost); `false` when it belongs to a session that is gone.
    pub(crate) async fn confirm(&mut self, safety: LockSafety) -> Result<bool> {
        let confirmed = LockGuard::confirm(&self.warden, &self.warden, &self.lock, safety).await?;
        Ok(match confirmed {
            Some(guard) => {
                self.session = guard.session_id();
                self.guard = Some(guard);
                true
            }
            None => false,
        })
    }

    /// The lock node turned out to be someone else's: leave it alone.
    pub(crate) fn disarm(&mut self) {
        self.forget_guard();
        self.armed = false;
    }

    pub(crate) fn guard(&self) -> Option<&LockGuard> {
        self.guard.as_ref()
    }

    /// Stops following the lock: the guard's own cleanup deletes by path on any session,
    /// which a shared path must not get.
    fn forget_guard(&mut self) {
        if let Some(guard) = self.guard.take() {
            guard.forget();
        }
    }

    /// Deletes the item together with `extra` ops and the lock, in one transaction on the
    /// lock's session (Curator's lock-safe consumer deletes the item, then the lock).
    ///
    /// `Err(SessionExpired)`: the lock went with its session before the item was deleted;
    /// the item stays for another consumer. `Err(ConnectionLoss)`: the session ended while
    /// the outcome of a sent transaction was unknown, and the item is gone (deleted by it,
    /// or taken by another consumer after the lock lapsed). `Err(NoNode)`: someone removed
    /// the item without its lock (a consumer that is not lock-safe).
    pub(crate) async fn finish(&mut self, extra: Vec<Op>) -> Result<()> {
        self.forget_guard();
        let mut ops = Vec::with_capacity(extra.len() + 2);
        ops.push(Op::delete(self.item.clone(), None));
        ops.extend(extra);
        ops.push(Op::delete(self.lock.clone(), None));
        let outcome = on_session(&self.warden, self.session, &ops, &self.item).await;
        let result = match outcome {
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
                let lock_left = self.warden.exists(&self.lock).await?.is_some();
                if maybe_applied && !lock_left {
                    Ok(())
                } else {
                    self.release().await;
                    Err(Error::NoNode)
                }
            }
            Outcome::Refused { error, .. } | Outcome::Failed { error } => {
                self.release().await;
                Err(error)
            }
            Outcome::SessionGone {
                maybe_applied: false,
            } => Err(Error::SessionExpired),
            Outcome::SessionGone {
                maybe_applied: true,
            } => match self.warden.exists(&self.item).await? {
                Some(_) => Err(Error::SessionExpired),
                None => Err(Error::ConnectionLoss),
            },
        };
        self.armed = false;
        result
    }

    /// Gives the item back: deletes only the lock (on its session; a lock whose session is
    /// gone went with it).
    pub(crate) async fn release(&mut self) {
        self.forget_guard();
        unlock(&self.warden, self.session, &self.lock, &self.holder).await;
        self.armed = false;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.forget_guard();
        if !self.armed {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (warden, session) = (self.warden.clone(), self.session);
                let (lock, holder) = (self.lock.clone(), std::mem::take(&mut self.holder));
                runtime.spawn(async move { unlock(&warden, session, &lock, &holder).await });
            }
            Err(_) => {
                tracing::warn!(lock = %self.lock, "no runtime to unlock a queue item; the lock goes with the session");
            }
        }
    }
}

/// Deletes the lock node `lock` if it is still the one `holder` made on `session`, and
/// only on that session: by now the same path may be another consumer's lock. A failure
/// leaves the node to the session's end.
async fn unlock(warden: &Warden, session: SessionId, lock: &str, holder: &[u8]) {
    let version = match warden.get_data(lock).await {
        Ok((data, stat)) if stat.ephemeral_owner == session.0 && data[..] == holder[..] => {
            stat.version
        }
        Ok(_) | Err(Error::NoNode) => return,
        Err(error) => {
            tracing::debug!(%lock, %error, "queue item lock not read; it goes with the session");
            return;
        }
    };
    match on_session(warden, session, &[Op::delete(lock, Some(version))], lock).await {
        Outcome::Done | Outcome::SessionGone { .. } => {}
        Outcome::Refused { error, .. } | Outcome::Failed { error } => {
            tracing::debug!(%lock, %error, "queue item lock not deleted; it goes with the session");
        }
    }
}
