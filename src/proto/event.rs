//! The codes inside a [`WatcherEvent`](super::WatcherEvent): what happened and the state of the
//! session when it was sent.

/// What happened to the watched node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `-1`: a session state change, not a node event.
    None,
    /// `1`: the node was created.
    NodeCreated,
    /// `2`: the node was deleted.
    NodeDeleted,
    /// `3`: the node's data changed.
    NodeDataChanged,
    /// `4`: the node's list of children changed.
    NodeChildrenChanged,
    /// `5`: a data watch was removed.
    DataWatchRemoved,
    /// `6`: a child watch was removed.
    ChildWatchRemoved,
    /// `7`: a persistent watch was removed.
    PersistentWatchRemoved,
}

impl EventType {
    /// The type for a wire code.
    pub fn from_code(code: i32) -> Option<EventType> {
        Some(match code {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            5 => EventType::DataWatchRemoved,
            6 => EventType::ChildWatchRemoved,
            7 => EventType::PersistentWatchRemoved,
            _ => return None,
        })
    }

    /// The wire code.
    pub fn code(self) -> i32 {
        match self {
            EventType::None => -1,
            EventType::NodeCreated => 1,
            EventType::NodeDeleted => 2,
            EventType::NodeDataChanged => 3,
            EventType::NodeChildrenChanged => 4,
            EventType::DataWatchRemoved => 5,
            EventType::ChildWatchRemoved => 6,
            EventType::PersistentWatchRemoved => 7,
        }
    }
}

/// The session state a server reports in a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeeperState {
    /// `-1`: unknown.
    Unknown,
    /// `0`: disconnected.
    Disconnected,
    /// `1`: no sync connection (unused).
    NoSyncConnected,
    /// `3`: connected.
    SyncConnected,
    /// `4`: authentication failed.
    AuthFailed,
    /// `5`: connected to a read-only server.
    ConnectedReadOnly,
    /// `6`: SASL authentication succeeded.
    SaslAuthenticated,
    /// `-112`: the session expired.
    Expired,
    /// `7`: the client closed the session.
    Closed,
}

impl KeeperState {
    /// The state for a wire code.
    pub fn from_code(code: i32) -> Option<KeeperState> {
        Some(match code {
            -1 => KeeperState::Unknown,
            0 => KeeperState::Disconnected,
            1 => KeeperState::NoSyncConnected,
            3 => KeeperState::SyncConnected,
            4 => KeeperState::AuthFailed,
            5 => KeeperState::ConnectedReadOnly,
            6 => KeeperState::SaslAuthenticated,
            -112 => KeeperState::Expired,
            7 => KeeperState::Closed,
            _ => return None,
        })
    }

    /// The wire code.
    pub fn code(self) -> i32 {
        match self {
            KeeperState::Unknown => -1,
            KeeperState::Disconnected => 0,
            KeeperState::NoSyncConnected => 1,
            KeeperState::SyncConnected => 3,
            KeeperState::AuthFailed => 4,
            KeeperState::ConnectedReadOnly => 5,
            KeeperState::SaslAuthenticated => 6,
            KeeperState::Expired => -112,
            KeeperState::Closed => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in -200..20 {
            if let Some(t) = EventType::from_code(code) {
                assert_eq!(t.code(), code);
            }
            if let Some(s) = KeeperState::from_code(code) {
                assert_eq!(s.code(), code);
            }
        }
    }
}
