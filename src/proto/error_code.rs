//! The error codes a server puts in `ReplyHeader.err` and in multi results.

/// A ZooKeeper error code, as the server sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `0`: success (appears inside multi results).
    Ok,
    /// `-1`: a system or server-side error.
    SystemError,
    /// `-2`: a runtime inconsistency; in a failed multi, the ops that were not attempted.
    RuntimeInconsistency,
    /// `-3`: a data inconsistency was found.
    DataInconsistency,
    /// `-4`: the connection to the server was lost.
    ConnectionLoss,
    /// `-5`: error while marshalling or unmarshalling data.
    MarshallingError,
    /// `-6`: the operation is not implemented by this server.
    Unimplemented,
    /// `-7`: the operation timed out.
    OperationTimeout,
    /// `-8`: invalid arguments.
    BadArguments,
    /// `-12`: unknown session (internal).
    UnknownSession,
    /// `-13`: a reconfiguration found no quorum for the new config.
    NewConfigNoQuorum,
    /// `-14`: another reconfiguration is in progress.
    ReconfigInProgress,
    /// `-100`: API error.
    ApiError,
    /// `-101`: the node does not exist.
    NoNode,
    /// `-102`: not authorized.
    NoAuth,
    /// `-103`: the expected version does not match.
    BadVersion,
    /// `-108`: ephemeral nodes may not have children.
    NoChildrenForEphemerals,
    /// `-110`: the node already exists.
    NodeExists,
    /// `-111`: the node has children.
    NotEmpty,
    /// `-112`: the session has expired.
    SessionExpired,
    /// `-113`: invalid callback.
    InvalidCallback,
    /// `-114`: invalid ACL.
    InvalidAcl,
    /// `-115`: authentication failed.
    AuthFailed,
    /// `-118`: the session moved to another server.
    SessionMoved,
    /// `-119`: a write was sent to a read-only server.
    NotReadOnly,
    /// `-120`: an ephemeral was requested on a local session.
    EphemeralOnLocalSession,
    /// `-121`: no such watcher to remove.
    NoWatcher,
    /// `-122`: the request timed out on the server.
    RequestTimeout,
    /// `-123`: reconfiguration is disabled.
    ReconfigDisabled,
    /// `-124`: the session is closed and requires SASL authentication.
    SessionClosedRequireSaslAuth,
    /// `-125`: a quota was exceeded.
    QuotaExceeded,
    /// `-127`: the server is throttling requests.
    Throttled,
    /// A code this client does not know.
    Unknown(i32),
}

impl ErrorCode {
    /// The code for a wire value.
    pub fn from_code(code: i32) -> ErrorCode {
        use ErrorCode::*;
        match code {
            0 => Ok,
            -1 => SystemError,
            -2 => RuntimeInconsistency,
            -3 => DataInconsistency,
            -4 => ConnectionLoss,
            -5 => MarshallingError,
            -6 => Unimplemented,
            -7 => OperationTimeout,
            -8 => BadArguments,
            -12 => UnknownSession,
            -13 => NewConfigNoQuorum,
            -14 => ReconfigInProgress,
            -100 => ApiError,
            -101 => NoNode,
            -102 => NoAuth,
            -103 => BadVersion,
            -108 => NoChildrenForEphemerals,
            -110 => NodeExists,
            -111 => NotEmpty,
            -112 => SessionExpired,
            -113 => InvalidCallback,
            -114 => InvalidAcl,
            -115 => AuthFailed,
            -118 => SessionMoved,
            -119 => NotReadOnly,
            -120 => EphemeralOnLocalSession,
            -121 => NoWatcher,
            -122 => RequestTimeout,
            -123 => ReconfigDisabled,
            -124 => SessionClosedRequireSaslAuth,
            -125 => QuotaExceeded,
            -127 => Throttled,
            other => Unknown(other),
        }
    }

    /// The server no longer knows the session: `SessionExpired`, or `UnknownSession` (its
    /// word for a session it has already closed).
    pub fn means_session_gone(self) -> bool {
        matches!(self, ErrorCode::SessionExpired | ErrorCode::UnknownSession)
    }

    /// The wire value.
    pub fn code(self) -> i32 {
        use ErrorCode::*;
        match self {
            Ok => 0,
            SystemError => -1,
            RuntimeInconsistency => -2,
            DataInconsistency => -3,
            ConnectionLoss => -4,
            MarshallingError => -5,
            Unimplemented => -6,
            OperationTimeout => -7,
            BadArguments => -8,
            UnknownSession => -12,
            NewConfigNoQuorum => -13,
            ReconfigInProgress => -14,
            ApiError => -100,
            NoNode => -101,
            NoAuth => -102,
            BadVersion => -103,
            NoChildrenForEphemerals => -108,
            NodeExists => -110,
            NotEmpty => -111,
            SessionExpired => -112,
            InvalidCallback => -113,
            InvalidAcl => -114,
            AuthFailed => -115,
            SessionMoved => -118,
            NotReadOnly => -119,
            EphemeralOnLocalSession => -120,
            NoWatcher => -121,
            RequestTimeout => -122,
            ReconfigDisabled => -123,
            SessionClosedRequireSaslAuth => -124,
            QuotaExceeded => -125,
            Throttled => -127,
            Unknown(code) => code,
        }
    }

    /// A short description, in the words a log reader needs.
    pub fn describe(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Ok => "ok",
            SystemError => "system error",
            RuntimeInconsistency => "runtime inconsistency",
            DataInconsistency => "data inconsistency",
            ConnectionLoss => "connection loss",
            MarshallingError => "marshalling error",
            Unimplemented => "unimplemented",
            OperationTimeout => "operation timeout",
            BadArguments => "bad arguments",
            UnknownSession => "unknown session",
            NewConfigNoQuorum => "no quorum for new config",
            ReconfigInProgress => "reconfiguration in progress",
            ApiError => "API error",
            NoNode => "node does not exist",
            NoAuth => "not authorized",
            BadVersion => "bad version",
            NoChildrenForEphemerals => "ephemeral nodes may not have children",
            NodeExists => "node exists",
            NotEmpty => "node has children",
            SessionExpired => "session expired",
            InvalidCallback => "invalid callback",
            InvalidAcl => "invalid ACL",
            AuthFailed => "authentication failed",
            SessionMoved => "session moved",
            NotReadOnly => "not a read-only call",
            EphemeralOnLocalSession => "ephemeral on local session",
            NoWatcher => "no such watcher",
            RequestTimeout => "request timeout",
            ReconfigDisabled => "reconfiguration disabled",
            SessionClosedRequireSaslAuth => "session closed: SASL authentication required",
            QuotaExceeded => "quota exceeded",
            Throttled => "request throttled",
            Unknown(_) => "unknown error code",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in -200..=0 {
            assert_eq!(ErrorCode::from_code(code).code(), code);
        }
    }
}
