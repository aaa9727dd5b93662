//! What a session is doing, as seen through [`Client::state`](super::Client::state).

use std::fmt;

use bytes::Bytes;

/// The state of one client's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Establishing the first connection.
    Connecting,
    /// Connected to a server that is part of a quorum.
    Connected,
    /// Connected to a server in read-only mode (writes fail with `NotReadOnly`).
    ConnectedReadOnly,
    /// The connection was lost; the client is trying the next host with the same session.
    Disconnected,
    /// The session expired (reported by a server, or presumed by the client after hearing from
    /// no server for the whole session timeout). Terminal.
    Expired,
    /// Authentication was refused. Terminal.
    AuthFailed,
    /// The client closed the session. Terminal.
    Closed,
}

impl SessionState {
    /// Whether requests can be sent now.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    /// Whether the session has ended for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }
}

/// A session state together with the session it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionStatus {
    /// The state.
    pub state: SessionState,
    /// The session id (0 until the first handshake completes).
    pub session_id: SessionId,
    /// How many connections this client has established so far. A watcher that sees the
    /// count grow knows a connection was lost in between, even if it never saw
    /// `Disconnected` (a watch channel keeps only the latest value).
    pub connections: u64,
}

/// A session id, shown in hex as ZooKeeper's own logs do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SessionId(pub i64);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A session's password, needed to resume (or expire) the session from another connection.
/// `Debug` and `Display` never show it; [`SessionPassword::expose`] does, deliberately.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SessionPassword(pub(crate) Bytes);

impl SessionPassword {
    /// Wraps raw password bytes.
    pub fn new(bytes: impl Into<Bytes>) -> SessionPassword {
        SessionPassword(bytes.into())
    }

    /// The password bytes. Handle with care: they let anyone take over the session.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionPassword(<redacted>)")
    }
}

impl fmt::Display for SessionPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_never_printed() {
        let pw = SessionPassword::new(&b"hunter2-secret"[..]);
        assert!(!format!("{pw:?}").contains("hunter2"));
        assert!(!format!("{pw}").contains("hunter2"));
        assert_eq!(pw.expose(), b"hunter2-secret");
    }

    #[test]
    fn session_id_is_hex() {
        assert_eq!(format!("{}", SessionId(255)), "0xff");
    }
}
