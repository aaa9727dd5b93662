//! State the session task publishes for its handles.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;

use crate::client::state::{SessionId, SessionPassword, SessionState, SessionStatus};
use crate::error::Error;

/// What handles may read about the session; written only by the session task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub status: watch::Sender<SessionStatus>,
    details: Mutex<Details>,
    /// The base for `last_heard_micros`.
    epoch: Instant,
    /// When a server last answered, in microseconds after `epoch` (0: never). Written on every
    /// read, so it is an atomic rather than part of `details`.
    last_heard_micros: AtomicU64,
}

/// Session details that change rarely (on handshakes and at the end).
#[derive(Debug, Clone, Default)]
pub(crate) struct Details {
    pub session_id: SessionId,
    pub password: SessionPassword,
    pub negotiated_timeout: Option<Duration>,
    pub server: Option<SocketAddr>,
    pub terminal: Option<Error>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        let (status, _) = watch::channel(SessionStatus {
            state: SessionState::Connecting,
            session_id: SessionId(0),
            connections: 0,
        });
        Shared {
            status,
            details: Mutex::new(Details::default()),
            epoch: Instant::now(),
            last_heard_micros: AtomicU64::new(0),
        }
    }

    /// Records that a server answered at `at`.
    pub(crate) fn heard_at(&self, at: Instant) {
        let micros = at.saturating_duration_since(self.epoch).as_micros() as u64;
        self.last_heard_micros
            .store(micros.max(1), Ordering::Relaxed);
    }

    /// When a server last answered this session, if ever.
    pub(crate) fn last_heard(&self) -> Option<Instant> {
        match self.last_heard_micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(self.epoch + Duration::from_micros(micros)),
        }
    }

    /// A copy of the details.
    pub(crate) fn details(&self) -> Details {
        match self.details.lock() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Details)) {
        match self.details.lock() {
            Ok(mut d) => f(&mut d),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Publishes a state change (only when it is one).
    pub(crate) fn set_state(&self, state: SessionState, session_id: SessionId) {
        self.status.send_if_modified(|s| {
            let connected = state.is_connected() && !s.state.is_connected();
            let next = SessionStatus {
                state,
                session_id,
                connections: s.connections + u64::from(connected),
            };
            if *s == next {
                false
            } else {
                *s = next;
                true
            }
        });
    }

    /// The error that ended the session, if it has ended.
    pub(crate) fn terminal_error(&self) -> Option<Error> {
        self.details().terminal
    }
}
