//! The supervisor task: follows the current session, reports its state, and builds a new
//! session when it is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::handle::Inner;
use super::metrics::Counted;
use super::state::ConnectionState;
use crate::backoff::Backoff;
use crate::client::{Client, SessionId, SessionPassword, SessionState};
use crate::error::Error;

/// Pause between failed attempts to build a new session: starts here, doubles to the cap
/// (jittered, so the wardens that lost one server do not all come back in step).
const REBUILD_PAUSE: Duration = Duration::from_millis(100);
const REBUILD_PAUSE_MAX: Duration = Duration::from_secs(2);

/// How following one session ended.
enum Followed {
    /// The warden is closing.
    Shutdown,
    /// The session ended for good.
    Ended,
}

/// The state to report for a session that has just connected: `ReadOnly` when a read-only
/// server serves it, else `fresh`.
pub(crate) fn arrival_state(client: &Client, fresh: ConnectionState) -> ConnectionState {
    if client.session_state() == SessionState::ConnectedReadOnly {
        ConnectionState::ReadOnly
    } else {
        fresh
    }
}

/// Runs until the warden closes: follows `client`, then each session built after it.
/// `reported` is the state already reported for `client`.
pub(crate) async fn supervise(
    inner: Arc<Inner>,
    mut client: Client,
    mut generation: u64,
    mut reported: ConnectionState,
) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let read_only = reported == ConnectionState::ReadOnly;
        match follow(&inner, &client, &mut generation, read_only, &mut shutdown).await {
            Followed::Shutdown => break,
            Followed::Ended => {
                let lost_id = client.session_id();
                let password = client.session_password();
                inner.slot.send_modify(|slot| slot.client = None);
                inner.emit(ConnectionState::Lost, lost_id, generation);
                inner.metrics.count(Counted::Rebuild);
                match rebuild(&inner, lost_id, password, generation, &mut shutdown).await {
                    Some(new_client) => {
                        client = new_client;
                        generation += 1;
                        let id = client.session_id();
                        // Client, id and generation change together: nobody may see the new
                        // client with the old generation.
                        inner.slot.send_modify(|slot| {
                            slot.client = Some(client.clone());
                            slot.session_id = id;
                            slot.generation = generation;
                        });
                        reported = arrival_state(&client, ConnectionState::Reconnected);
                        inner.emit(reported, id, generation);
                    }
                    None => break,
                }
            }
        }
    }
    // Closed is reported before the server is asked to close the session: whatever
    // depends on the session (a lock guard, a leadership) must stop believing in it before
    // its ephemeral nodes go and another process may take over (found by the simulation).
    inner.emit(ConnectionState::Closed, client.session_id(), generation);
    let _ = client.close().await;
    inner.slot.send_modify(|slot| slot.client = None);
}

/// Reports the states of one client until its session ends or the warden closes.
///
/// A client may replace its session without ending: one made by a read-only server is not
/// known to the quorum, so the client asks for a new session when it reaches a read-write
/// server. That is reported like a rebuilt session: `Lost` for the old id, then the new id
/// under the next generation (advanced in `generation`).
async fn follow(
    inner: &Inner,
    client: &Client,
    generation: &mut u64,
    mut read_only: bool,
    shutdown: &mut watch::Receiver<bool>,
) -> Followed {
    let mut states = client.state();
    let mut suspended = false;
    let mut connections = states.borrow().connections;
    let mut known_id = states.borrow().session_id;
    // Set when the client replaced its session: the next connected state is not a reconnect.
    let mut replaced = false;
    loop {
        if *shutdown.borrow_and_update() {
            return Followed::Shutdown;
        }
        let status = *states.borrow_and_update();
        let id = status.session_id;
        if status.state.is_connected() && id != known_id {
            if known_id.0 != 0 {
                if !suspended {
                    inner.emit(ConnectionState::Suspended, known_id, *generation);
                }
                inner.emit(ConnectionState::Lost, known_id, *generation);
                inner.metrics.count(Counted::Rebuild);
                *generation += 1;
                replaced = true;
                info!(old = %known_id, new = %id, generation = *generation, "the client replaced its read-only session");
                // Connected again, under a new session: reported below as such.
                suspended = true;
            }
            known_id = id;
        }
        let generation = *generation;
        // A connection came and went between two looks: the loss still happened.
        if status.connections > connections && !suspended {
            inner.emit(ConnectionState::Suspended, id, generation);
            suspended = true;
        }
        connections = status.connections;
        match status.state {
            SessionState::Disconnected | SessionState::Connecting => {
                if !suspended {
                    inner.emit(ConnectionState::Suspended, id, generation);
                    suspended = true;
                }
            }
            SessionState::Connected => {
                if suspended || read_only {
                    if !std::mem::take(&mut replaced) {
                        inner.metrics.count(Counted::Reconnect);
                    }
                    inner.emit(ConnectionState::Reconnected, id, generation);
                }
                suspended = false;
                read_only = false;
            }
            SessionState::ConnectedReadOnly => {
                if suspended || !read_only {
                    inner.emit(ConnectionState::ReadOnly, id, generation);
                }
                replaced = false;
                suspended = false;
                read_only = true;
            }
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed => {
                if !suspended {
                    // The loss comes first, even when the end was reported in one step.
                    inner.emit(ConnectionState::Suspended, id, generation);
                }
                return Followed::Ended;
            }
        }
        tokio::select! {
            biased;
            changed = states.changed() => {
                if changed.is_err() {
                    return Followed::Ended;
                }
            }
            _ = shutdown.changed() => {}
        }
    }
}

/// Closes the lost session on the server if it may still be alive there, then builds a new
/// session. Returns `None` if the warden closes first.
///
/// When the servers refuse the credentials, retrying would only be refused again: the
/// warden reports [`ConnectionState::AuthFailed`] and waits for new credentials
/// ([`Warden::set_sasl`](super::Warden::set_sasl), [`Warden::set_auth`](super::Warden::set_auth)).
async fn rebuild(
    inner: &Inner,
    lost_id: SessionId,
    password: SessionPassword,
    generation: u64,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Client> {
    let mut pause = Backoff::new(REBUILD_PAUSE, REBUILD_PAUSE_MAX);
    let mut old_session = Some((lost_id, password));
    let mut credentials = inner.credentials_changed.subscribe();
    loop {
        if *shutdown.borrow_and_update() {
            return None;
        }
        // Credentials replaced from here on count as new, even while an attempt runs.
        credentials.borrow_and_update();
        let mut refused = false;
        if let Some((id, password)) = old_session.take() {
            match close_old_session(inner, id, password.clone()).await {
                Ok(()) => {}
                Err(Error::AuthFailed) => {
                    refused = true;
                    old_session = Some((id, password));
                }
                Err(Error::ConnectFailed { .. }) if !inner.config.read_only => {
                    // No server reachable yet: try again before building the new session, so
                    // the old session's ephemerals are gone when the new one starts.
                    old_session = Some((id, password));
                }
                // With read-only mode allowed, a server without a quorum refuses the old
                // session (read-only servers take only sessions they made) and may be all
                // there is: build the new session now. The old one's ephemerals then go at
                // the quorum's timeout, and the new session cannot make any until it reaches
                // a read-write server.
                Err(e) => warn!(session_id = %id, error = %e, "could not close the lost session"),
            }
        }
        if old_session.is_none() {
            match inner.client_builder().connect().await {
                Ok(client) => {
                    info!(session_id = %client.session_id(), "new session built");
                    return Some(client);
                }
                Err(Error::AuthFailed) => refused = true,
                Err(e) => warn!(error = %e, "building a new session failed; retrying"),
            }
        }
        if refused {
            warn!("the servers refused the credentials; waiting for new ones");
            inner.emit(ConnectionState::AuthFailed, lost_id, generation);
            tokio::select! {
                biased;
                changed = credentials.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow_and_update() {
                return None;
            }
            // The session is still gone and a new one is being built again: calls wait for it
            // instead of failing with AuthFailed.
            info!("credentials replaced; trying again");
            inner.emit(ConnectionState::Lost, lost_id, generation);
            pause.reset();
            continue;
        }
        let sleep = tokio::time::sleep(pause.next_pause());
        tokio::select! {
            biased;
            () = sleep => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Ends a session that this warden presumes lost but that may still be alive on the server
/// (when the client gave up on it by its own clock), so its ephemeral nodes go now rather
/// than at the server's timeout.
async fn close_old_session(
    inner: &Inner,
    id: SessionId,
    password: SessionPassword,
) -> Result<(), Error> {
    // The warden's own client settings, so the close goes over TLS when sessions do.
    let end = inner
        .client_builder()
        .close_session(id, &password, inner.config.connection_timeout)
        .await?;
    info!(session_id = %id, ?end, "ended the lost session on the server");
    Ok(())
}
