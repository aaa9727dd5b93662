//! State the session task publishes for its handles.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use crate::client::state::{SessionId, SessionPassword, SessionState, SessionStatus};
use crate::error::Error;

/// What handles may read about the session; written only by the session task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub status: watch::Sender<SessionStatus>,
    details: Mutex<Details>,
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
        });
        Shared {
            status,
            details: Mutex::new(Details::default()),
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
            let next = SessionStatus { state, session_id };
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
