//! [`LostReason`] and the background watch behind [`LockGuard::lost`](super::LockGuard::lost).
//!
//! One task per guard follows the warden's connection events from just before the lock was
//! confirmed, so a disconnection is never missed, however late `lost()` is first called. It
//! also keeps a watch on the lock node, so a node deleted by someone else counts as lost.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zkwarden::warden::{ConnectionEvents, ConnectionUpdate, LockSafety};
use zkwarden::{ConnectionState, EventType, SessionId, Warden};

/// Why a lock guard may no longer be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// The connection was suspended (under [`LockSafety::Suspend`], the default). The
    /// session may live on, but another process may hold the lock as soon as it expires, and
    /// a disconnected client cannot know when that is.
    Suspended,
    /// The connection stayed down until the session deadline minus the margin (under
    /// [`LockSafety::SessionDeadline`]).
    SessionDeadline,
    /// The session that owns the lock node was lost.
    Lost,
    /// The warden now runs another session than the one that owns the lock node.
    NewSession,
    /// The lock node was deleted (by someone else: an administrator, or the server
    /// removing it with its session).
    Deleted,
    /// The warden was closed.
    Closed,
    /// The guard was released or dropped before anything else happened.
    Released,
}

/// The task behind one guard; aborted when the guard goes.
pub(crate) struct LostWatch {
    rx: watch::Receiver<Option<LostReason>>,
    task: Option<JoinHandle<()>>,
}

impl LostWatch {
    /// Starts watching. `events` must have been subscribed before the lock node's ownership
    /// was confirmed, so nothing after that moment is missed.
    pub(crate) fn spawn(
        warden: Warden,
        node: String,
        session: SessionId,
        generation: u64,
        safety: LockSafety,
        events: ConnectionEvents,
    ) -> LostWatch {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            let reason = follow(&warden, &node, session, generation, safety, events).await;
            tx.send_replace(Some(reason));
            // Keep the sender alive so late `lost()` calls see the reason, not `Released`.
            std::future::pending::<()>().await;
        });
        LostWatch {
            rx,
            task: Some(task),
        }
    }

    /// The reason, once there is one.
    pub(crate) fn reason(&self) -> Option<LostReason> {
        *self.rx.borrow()
    }

    /// A future resolving with the reason.
    pub(crate) fn wait(&self) -> impl Future<Output = LostReason> + Send + 'static + use<> {
        let mut rx = self.rx.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(reason) => reason.unwrap_or(LostReason::Released),
                Err(_) => LostReason::Released,
            }
        }
    }

    /// Stops the task; pending `lost()` futures resolve with `Released` (or the reason
    /// already found).
    pub(crate) fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for LostWatch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the connection's state means for the lock under `safety`: `Err` with the reason the
/// lock is lost, `Ok(Some(instant))` for a deadline to wait for, `Ok(None)` when all is well.
fn judge(
    warden: &Warden,
    state: ConnectionState,
    safety: LockSafety,
) -> Result<Option<Instant>, LostReason> {
    match state {
        // Refused credentials come after the session was lost.
        ConnectionState::Lost | ConnectionState::AuthFailed => Err(LostReason::Lost),
        ConnectionState::Closed => Err(LostReason::Closed),
        ConnectionState::Connected | ConnectionState::Reconnected => Ok(None),
        // A read-only server cannot take writes: the lock is as doubtful as when suspended.
        ConnectionState::Suspended | ConnectionState::ReadOnly => match safety {
            LockSafety::Suspend => Err(LostReason::Suspended),
            LockSafety::SessionDeadline { margin } => match warden.session_deadline() {
                Some(deadline) => Ok(Some(
                    deadline.checked_sub(margin).unwrap_or_else(Instant::now),
                )),
                None => Err(LostReason::SessionDeadline),
            },
            LockSafety::Lost => Ok(None),
        },
    }
}

async fn follow(
    warden: &Warden,
    node: &str,
    session: SessionId,
    generation: u64,
    safety: LockSafety,
    mut events: ConnectionEvents,
) -> LostReason {
    // Where the connection stood when the lock was confirmed.
    let now = warden.connection();
    if now.session_id != session || now.generation != generation {
        return LostReason::NewSession;
    }
    let mut deadline = match judge(warden, now.state, safety) {
        Err(reason) => return reason,
        Ok(until) => until,
    };
    let mut node_watch: Pin<Box<dyn Future<Output = LostReason> + Send>> =
        Box::pin(watch_node(warden.clone(), node.to_owned()));
    loop {
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            update = events.next_update() => {
                let event = match update {
                    None => return LostReason::Closed,
                    Some(ConnectionUpdate::Event(event)) => event,
                    Some(ConnectionUpdate::Lagged { .. }) => {
                        // Events were missed; a suspension among them cannot be ruled out.
                        if safety == LockSafety::Suspend {
                            return LostReason::Suspended;
                        }
                        warden.connection()
                    }
                };
                if event.state == ConnectionState::Lost && event.session_id == session {
                    return LostReason::Lost;
                }
                if event.session_id != session || event.generation != generation {
                    return LostReason::NewSession;
                }
                match judge(warden, event.state, safety) {
                    Err(reason) => return reason,
                    // A new suspension starts a deadline; a reconnection clears it.
                    Ok(until) => deadline = until,
                }
            }
            () = sleep => return LostReason::SessionDeadline,
            reason = &mut node_watch => return reason,
        }
    }
}

/// Resolves with `Deleted` once the lock node is gone; never resolves when the watch is
/// ended by the session (the connection events report that).
async fn watch_node(warden: Warden, node: String) -> LostReason {
    loop {
        match warden.exists_and_watch(&node).await {
            Ok((None, _)) => return LostReason::Deleted,
            Ok((Some(_), watcher)) => match watcher.await {
                Ok(event) if event.event_type == EventType::NodeDeleted => {
                    return LostReason::Deleted;
                }
                Ok(_) => continue,
                Err(_) => std::future::pending().await,
            },
            Err(_) => std::future::pending().await,
        }
    }
}
