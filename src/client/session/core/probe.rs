//! Proving a re-attached session alive before calling it connected.
//!
//! ZooKeeper 3.8 can let a client re-attach to a session at the very moment the session is
//! closed (a server-side expiry): the handshake succeeds, but every request that follows is
//! dropped without a reply ("Dropping request": the server no longer knows the session), and
//! the connection is never closed. A ping goes through the same request pipeline as any other
//! request, so it is as good a probe as an `exists` and cheaper: on such a connection it is
//! never answered, on a live one it is answered in milliseconds.
//!
//! So after a handshake that resumed an existing session the core sends a ping right after
//! the credentials and SetWatches, keeps the session's state unconnected, and calls the
//! session connected only when the server answers something that went through its request
//! pipeline (not an auth reply, which the server sends before its pipeline, nor a
//! notification). Silence past the probe's deadline drops the connection; the next handshake
//! then hears that the session expired.
//!
//! The deadline starts at `min(T/3, 250 ms)` (a healthy server answers a ping in a few
//! milliseconds, and an expiry must be recovered from within half a second) and doubles after
//! every probe that went unanswered, up to the read timeout (2T/3): a server too busy to
//! answer within the short deadline costs a reconnect or two, never the session. An answered
//! probe starts the schedule over.

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use super::{Exit, SessionCore};
use crate::Backoff;
use crate::client::session::config::Timers;
use crate::client::state::SessionState;
use crate::proto::OpCode;
use crate::proto::opcode::XID_PING;
use crate::proto::request::{NoBody, encode_request};

/// The longest a first probe waits for its answer.
pub(crate) const FIRST_PROBE_MAX: Duration = Duration::from_millis(250);

/// A re-attached connection not yet proved alive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unproven {
    /// Past this, without an answer, the connection is dropped.
    pub deadline: Instant,
    /// The state to publish once the server answers.
    pub state: SessionState,
}

/// How long each probe may wait: doubling after every unanswered one.
pub(super) struct ProbeSchedule {
    /// The session timeout the schedule was made for.
    timeout: Duration,
    backoff: Backoff,
}

impl ProbeSchedule {
    pub(super) fn new(timeout: Duration) -> ProbeSchedule {
        let timers = Timers::new(timeout);
        ProbeSchedule {
            timeout,
            backoff: Backoff::new(timers.ping.min(FIRST_PROBE_MAX), timers.read).without_jitter(),
        }
    }

    /// The wait for the next probe under session timeout `timeout`.
    fn next(&mut self, timeout: Duration) -> Duration {
        if timeout != self.timeout {
            *self = ProbeSchedule::new(timeout);
        }
        self.backoff.next_pause()
    }
}

impl SessionCore {
    /// Sends the probe on a re-attached connection and keeps `state` until it is answered.
    pub(super) fn send_probe(&mut self, now: Instant, state: SessionState) {
        let wait = self.probe_schedule.next(self.timers.session);
        // An empty body always fits.
        let _ = encode_request(&mut self.out, XID_PING, OpCode::Ping, &NoBody, usize::MAX);
        if let Some(link) = &mut self.link {
            link.last_send = now;
            link.unproven = Some(Unproven {
                deadline: now + wait,
                state,
            });
        }
    }

    /// The server answered through its request pipeline: a re-attached connection is proved
    /// alive, and the session is connected.
    pub(super) fn prove(&mut self) {
        let Some(unproven) = self.link.as_mut().and_then(|link| link.unproven.take()) else {
            return;
        };
        self.probe_schedule.backoff.reset();
        info!(session_id = %self.session_id, "re-attached session answered");
        self.shared.set_state(unproven.state, self.session_id);
    }

    /// Drops a re-attached connection whose probe went unanswered past its deadline.
    pub(super) fn check_probe(&self, now: Instant) -> Result<(), Exit> {
        match self.link.as_ref().and_then(|link| link.unproven) {
            Some(unproven) if now >= unproven.deadline => Err(Exit::Reconnect(
                "the server did not answer the re-attached session's probe (it may have just \
                 closed the session)"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the live connection is proved alive: a new session's, or a re-attached one
    /// whose probe the server answered. Losing one that is not costs no pause before the next
    /// attempt (the pause is for connections that were serving; see the driver).
    pub(crate) fn connection_proven(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|link| link.unproven.is_none())
    }

    /// The probe's deadline, while one runs.
    pub(super) fn probe_deadline(&self) -> Option<Instant> {
        self.link
            .as_ref()
            .and_then(|link| link.unproven)
            .map(|u| u.deadline)
    }
}
