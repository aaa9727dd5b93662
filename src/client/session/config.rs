//! Settings a session task runs with.

use std::time::Duration;

use super::transport::Security;
use crate::client::Credentials;
use crate::client::connect_string::HostPort;
use crate::client::path::Chroot;
use crate::client::state::{SessionId, SessionPassword};

/// Everything the session task needs to know, fixed when the client is built. `Debug` leaves
/// out the credentials.
#[derive(Clone)]
pub(crate) struct SessionConfig {
    pub hosts: Vec<HostPort>,
    pub chroot: Chroot,
    pub session_timeout: Duration,
    pub connect_timeout: Duration,
    pub read_only: bool,
    pub max_frame_len: usize,
    /// Resume this session instead of creating one.
    pub resume: Option<(SessionId, SessionPassword)>,
    /// Credentials sent right after every handshake.
    pub auth: Credentials,
    /// SASL credentials, presented on every connection before anything else.
    pub sasl: Option<crate::client::SaslConfig>,
    /// Pause after a full failed round of hosts, doubled each round up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// After this many failed rounds in a row the pause goes on doubling up to
    /// `later_max_backoff` (see [`Backoff::patience`](crate::Backoff::patience)).
    pub backoff_patience: u32,
    pub later_max_backoff: Duration,
    /// The pause before re-attaching after a connection that completed its handshake was
    /// lost: drawn between half and all of this (see [`Connector`](super::connector::Connector)).
    pub reconnect_delay: Duration,
    /// Plain TCP or TLS.
    pub security: Security,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("hosts", &self.hosts)
            .field("chroot", &self.chroot)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_only", &self.read_only)
            .field("max_frame_len", &self.max_frame_len)
            .field("resume", &self.resume.as_ref().map(|(id, _)| *id))
            .field("auth", &self.auth)
            .field("sasl", &self.sasl)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// Frames from a server may exceed the configured limit by this much: a reply carries a
/// header and a stat around data that was itself at the limit, and what a client could write
/// it must be able to read back.
pub(crate) const READ_SLACK: usize = 4096;

/// Timers derived from the negotiated session timeout `T`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    /// The negotiated timeout.
    pub session: Duration,
    /// Silence longer than this (2T/3) means the connection is dead.
    pub read: Duration,
    /// Send a ping after this long (T/3) without sending anything.
    pub ping: Duration,
}

impl Timers {
    pub(crate) fn new(session: Duration) -> Timers {
        Timers {
            session,
            read: session * 2 / 3,
            ping: session / 3,
        }
    }

    /// Time allowed for one connection attempt: T divided among the hosts, at least 250 ms
    /// and at most 5 s. A handshake takes milliseconds; one that has not finished in seconds
    /// is stuck (a server still starting or dying, a half-open path), and a fresh connection
    /// is the better bet, even with a single host and a long session.
    pub(crate) fn connect_per_host(session: Duration, hosts: usize) -> Duration {
        let per_host = session / hosts.max(1) as u32;
        per_host.clamp(Duration::from_millis(250), Duration::from_secs(5))
    }
}

#[cfg(test)]
impl SessionConfig {
    /// Settings for unit tests: `hosts` hosts `10.0.0.1`, `10.0.0.2`... (IP literals, so
    /// that they resolve without DNS), session timeout
    /// `session_timeout`, a 15 s connect timeout and the defaults for the rest.
    pub(crate) fn for_tests(hosts: usize, session_timeout: Duration) -> SessionConfig {
        SessionConfig {
            hosts: (0..hosts)
                .map(|i| HostPort {
                    host: format!("10.0.0.{}", i + 1),
                    port: 2181,
                })
                .collect(),
            chroot: Chroot::none(),
            session_timeout,
            connect_timeout: Duration::from_secs(15),
            read_only: false,
            max_frame_len: 1 << 20,
            resume: None,
            auth: Credentials::new(),
            sasl: None,
            min_backoff: crate::client::DEFAULT_MIN_BACKOFF,
            max_backoff: crate::client::DEFAULT_MAX_BACKOFF,
            backoff_patience: crate::client::DEFAULT_BACKOFF_PATIENCE,
            later_max_backoff: crate::client::DEFAULT_LATER_MAX_BACKOFF,
            reconnect_delay: crate::client::DEFAULT_RECONNECT_DELAY,
            security: Security::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_follow_the_negotiated_timeout() {
        let t = Timers::new(Duration::from_secs(6));
        assert_eq!(t.read, Duration::from_secs(4));
        assert_eq!(t.ping, Duration::from_secs(2));
        assert_eq!(
            Timers::connect_per_host(Duration::from_secs(6), 3),
            Duration::from_secs(2)
        );
        assert_eq!(
            Timers::connect_per_host(Duration::from_millis(600), 3),
            Duration::from_millis(250)
        );
        assert_eq!(
            Timers::connect_per_host(Duration::from_secs(60), 1),
            Duration::from_secs(5)
        );
    }
}
