//! The core between connections: how long each attempt may take, when to give up, and what
//! the failure then reports.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::{Exit, SessionCore};
use crate::client::session::config::Timers;
use crate::client::session::connect::AttemptError;
use crate::error::{Cause, Error};

impl SessionCore {
    /// Starts a connecting phase (the first, or after a connection was lost).
    pub(crate) fn begin_connecting(&mut self, now: Instant) {
        self.phase_start = now;
        self.last_error = Cause::new("no attempt made");
        self.last_tls_error = None;
    }

    /// The instant past which connecting must give up: the connect timeout for a first
    /// session, or the session's life (no server heard for the whole timeout, the
    /// client-side expiry) for an existing one.
    pub(crate) fn give_up_at(&self) -> Instant {
        if self.session_id.0 == 0 {
            self.phase_start + self.settings.connect_timeout
        } else {
            self.last_heard + self.timers.session
        }
    }

    /// The time the next attempt may take (`T / hosts`, see [`Timers::connect_per_host`],
    /// and never past [`give_up_at`](Self::give_up_at)), or the error the session ends with
    /// when that instant has passed.
    pub(crate) fn attempt_budget(&self, now: Instant, hosts: usize) -> Result<Duration, Error> {
        let give_up = self.give_up_at();
        if now >= give_up {
            return Err(self.give_up_error());
        }
        let per_host = Timers::connect_per_host(self.timers.session, hosts);
        Ok(per_host.min(give_up - now))
    }

    fn give_up_error(&self) -> Error {
        if let (0, Some(reason)) = (self.session_id.0, &self.last_tls_error) {
            Error::Tls {
                hosts: self.settings.host_names.clone(),
                timeout_ms: self.settings.connect_timeout.as_millis() as u64,
                reason: reason.clone(),
            }
        } else if self.session_id.0 == 0 {
            Error::ConnectFailed {
                hosts: self.settings.host_names.clone(),
                timeout_ms: self.settings.connect_timeout.as_millis() as u64,
                last_error: self.last_error.clone(),
            }
        } else {
            warn!(session_id = %self.session_id, "no server answered for the whole session timeout; session presumed expired");
            Error::SessionExpired
        }
    }

    /// Records a failed attempt. Errors when the failure ends the session: the server says it
    /// expired, or refused the credentials (every server would refuse them again).
    pub(crate) fn attempt_failed(&mut self, failure: AttemptError) -> Result<(), Error> {
        match failure {
            AttemptError::Expired => {
                info!(session_id = %self.session_id, "server reports the session expired");
                Err(Error::SessionExpired)
            }
            AttemptError::AuthFailed => Err(Error::AuthFailed),
            AttemptError::Failed(reason) => {
                tracing::debug!(%reason, "connection attempt failed");
                self.last_error = reason;
                Ok(())
            }
            AttemptError::Tls(reason) => {
                // A TLS refusal is a setting to fix, not an outage to wait out: if one
                // happened in this phase, it is what a failure reports.
                warn!(%reason, "TLS refused");
                self.last_error.clone_from(&reason);
                self.last_tls_error = Some(reason);
                Ok(())
            }
        }
    }

    /// Records an attempt that did not finish within its budget.
    pub(crate) fn attempt_timed_out(&mut self, host: &dyn std::fmt::Display, budget: Duration) {
        self.last_error = Cause::new(format!("{host}: no handshake within {budget:?}"));
        tracing::debug!(last_error = %self.last_error, "connection attempt timed out");
    }

    /// A whole round of hosts failed: whatever waited for a connection fails now with
    /// [`Error::NotConnected`] (the caller's retry policy decides what next). Returns the
    /// instant connecting gives up, which bounds the pause before the next round.
    pub(crate) fn round_failed(&mut self) -> Instant {
        self.fail_held(&Error::NotConnected);
        self.give_up_at()
    }

    /// Handles a command while no connection is up: requests and auth wait, a dropped
    /// watcher is forgotten, a close (or every handle gone) ends the session.
    pub(super) fn hold(
        &mut self,
        command: Option<crate::client::command::Command>,
    ) -> Result<(), Exit> {
        use super::Held;
        use crate::client::command::Command;
        match command {
            None => Err(Exit::Terminal(Error::Closed)),
            Some(Command::Request(request)) => {
                self.held.push_back(Held::Request(request));
                Ok(())
            }
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => {
                self.held.push_back(Held::Auth {
                    scheme,
                    auth,
                    reply,
                });
                Ok(())
            }
            Some(Command::Unwatch {
                id,
                kind,
                server_path,
            }) => {
                // No server-side removal needed: SetWatches on reconnect will not mention it.
                self.watches.unregister(id, kind, &server_path);
                Ok(())
            }
            Some(Command::Close { reply }) => {
                self.closing = Some(Some(reply));
                Err(Exit::Terminal(Error::Closed))
            }
        }
    }
}
