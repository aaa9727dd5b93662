//! One error type for everything an operation can fail with: the codes a server returns and the
//! causes a client finds on its own.

use std::sync::Arc;

use crate::proto::{ErrorCode, FrameError, OpResult};
use crate::warden::OpClass;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a ZooKeeper operation.
///
/// The common server codes have their own variants so they can be matched directly
/// (`Err(Error::NoNode)`); the rest arrive as [`Error::Server`]. [`Error::code`] gives the
/// server code where there is one, and the `is_*` predicates answer the questions a retry layer
/// asks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The node does not exist.
    #[error("node does not exist")]
    NoNode,
    /// The node already exists.
    #[error("node already exists")]
    NodeExists,
    /// The version given does not match the node's.
    #[error("version does not match")]
    BadVersion,
    /// The session lacks the permission.
    #[error("not authorized")]
    NoAuth,
    /// The node has children.
    #[error("node has children")]
    NotEmpty,
    /// Ephemeral nodes may not have children.
    #[error("ephemeral nodes may not have children")]
    NoChildrenForEphemerals,
    /// The ACL is invalid (empty, or `auth` scheme with no authenticated identity).
    #[error("invalid ACL")]
    InvalidAcl,
    /// The session has expired; this client will not reconnect.
    #[error("session expired")]
    SessionExpired,
    /// The connection was lost before the reply arrived: the operation may or may not have
    /// been applied.
    #[error("connection lost")]
    ConnectionLoss,
    /// No connection to a server came up while the request waited: it was never sent, so it
    /// was certainly not applied. Safe to retry, even for writes.
    #[error("not connected: the request was not sent")]
    NotConnected,
    /// The server did not complete the operation in time.
    #[error("operation timed out on the server")]
    OperationTimeout,
    /// The session moved to another server.
    #[error("session moved to another server")]
    SessionMoved,
    /// A write reached a read-only server.
    #[error("server is read-only")]
    NotReadOnly,
    /// The server is throttling requests.
    #[error("request throttled by the server")]
    Throttled,
    /// A quota was exceeded.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// Authentication failed; this client will not reconnect.
    #[error("authentication failed")]
    AuthFailed,
    /// There is no such watch to remove.
    #[error("no such watcher")]
    NoWatcher,
    /// The server does not implement the operation (or needs a setting to allow it).
    #[error("operation not implemented by the server")]
    Unimplemented,
    /// The server rejected the arguments.
    #[error("bad arguments")]
    BadArguments,
    /// The server does not allow dynamic reconfiguration (`reconfigEnabled` is off).
    #[error("reconfiguration is disabled on the server")]
    ReconfigDisabled,
    /// The proposed configuration could not reach a quorum of its members; nothing changed.
    #[error("the new configuration has no quorum")]
    NewConfigNoQuorum,
    /// Another reconfiguration is under way; nothing changed.
    #[error("another reconfiguration is in progress")]
    ReconfigInProgress,
    /// Any other code the server returned.
    #[error("server error {}: {}", .0.code(), .0.describe())]
    Server(ErrorCode),
    /// A `multi` transaction failed: nothing was applied.
    #[error("transaction failed at op {index}: {}", .code.describe())]
    MultiFailed {
        /// Index of the first op that failed.
        index: usize,
        /// Why it failed.
        code: ErrorCode,
        /// Every op's result, as the server reported it.
        results: Arc<Vec<OpResult>>,
    },
    /// A transaction fenced by a lock or a leadership
    /// ([`Transaction::fenced_by`](crate::warden::Transaction::fenced_by)) was refused
    /// because the fence no longer holds: the node it stands on is gone (its session ended,
    /// or it was released). Nothing was applied; the writer is no longer the holder and must
    /// not retry as one.
    #[error("fenced out: {node} no longer holds ({})", .code.describe())]
    FencedOut {
        /// The fence node whose check failed.
        node: String,
        /// Why the check failed (`NoNode` when the node is gone).
        code: ErrorCode,
    },
    /// The path is not a valid ZooKeeper path; nothing was sent.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request is larger than the frame limit; nothing was sent.
    #[error("request of {len} bytes exceeds the frame limit of {limit} bytes")]
    DataTooLarge {
        /// Size of the encoded request.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// An argument is invalid (for example a TTL on a mode without one); nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server sent something this client cannot decode; the connection was dropped.
    /// The decoding error is the [`source`](std::error::Error::source) of the [`Cause`].
    #[error("malformed data from server: {0}")]
    MalformedFrame(#[source] Cause),
    /// No server could be reached in time.
    #[error("could not connect to any of {hosts:?} within {timeout_ms} ms: {last_error}")]
    ConnectFailed {
        /// The hosts that were tried.
        hosts: Vec<String>,
        /// The time allowed.
        timeout_ms: u64,
        /// The last failure seen: reads as its description; its
        /// [`source`](std::error::Error::source) is the I/O, TLS or decoding error behind it,
        /// when there is one.
        #[source]
        last_error: Cause,
    },
    /// No session came up within the connect timeout, and TLS was refused on the way: the
    /// server's certificate did not verify (unknown CA, a name it does not list, expired),
    /// or the server refused this client's certificate or TLS settings. Fix the TLS settings;
    /// retrying as they are will not help. Only with cargo feature `tls`.
    #[error("TLS failed with {hosts:?} (no session within {timeout_ms} ms): {reason}")]
    Tls {
        /// The hosts that were tried.
        hosts: Vec<String>,
        /// The time allowed.
        timeout_ms: u64,
        /// The TLS failure, naming the server (for example `invalid peer certificate:
        /// UnknownIssuer`); its [`source`](std::error::Error::source) is the TLS library's
        /// error.
        #[source]
        reason: Cause,
    },
    /// The connect string is invalid.
    #[error("invalid connect string {input:?}: {reason}")]
    InvalidConnectString {
        /// The connect string given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// A client-side deadline passed before the operation completed.
    #[error("timed out")]
    Timeout,
}

impl Error {
    /// The error for a non-zero code the server returned.
    pub fn from_code(code: ErrorCode) -> Error {
        match code {
            ErrorCode::NoNode => Error::NoNode,
            ErrorCode::NodeExists => Error::NodeExists,
            ErrorCode::BadVersion => Error::BadVersion,
            ErrorCode::NoAuth => Error::NoAuth,
            ErrorCode::NotEmpty => Error::NotEmpty,
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals,
            ErrorCode::InvalidAcl => Error::InvalidAcl,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::OperationTimeout => Error::OperationTimeout,
            ErrorCode::SessionMoved => Error::SessionMoved,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::Throttled => Error::Throttled,
            ErrorCode::QuotaExceeded => Error::QuotaExceeded,
            ErrorCode::AuthFailed => Error::AuthFailed,
            ErrorCode::NoWatcher => Error::NoWatcher,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::BadArguments => Error::BadArguments,
            ErrorCode::ReconfigDisabled => Error::ReconfigDisabled,
            ErrorCode::NewConfigNoQuorum => Error::NewConfigNoQuorum,
            ErrorCode::ReconfigInProgress => Error::ReconfigInProgress,
            other => Error::Server(other),
        }
    }

    /// The server error code this error stands for, if any. Client-side causes that mirror a
    /// server code (a lost connection, an expired session) report that code too.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Error::NoNode => ErrorCode::NoNode,
            Error::NodeExists => ErrorCode::NodeExists,
            Error::BadVersion => ErrorCode::BadVersion,
            Error::NoAuth => ErrorCode::NoAuth,
            Error::NotEmpty => ErrorCode::NotEmpty,
            Error::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
            Error::InvalidAcl => ErrorCode::InvalidAcl,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::OperationTimeout => ErrorCode::OperationTimeout,
            Error::SessionMoved => ErrorCode::SessionMoved,
            Error::NotReadOnly => ErrorCode::NotReadOnly,
            Error::Throttled => ErrorCode::Throttled,
            Error::QuotaExceeded => ErrorCode::QuotaExceeded,
            Error::AuthFailed => ErrorCode::AuthFailed,
            Error::NoWatcher => ErrorCode::NoWatcher,
            Error::Unimplemented => ErrorCode::Unimplemented,
            Error::BadArguments => ErrorCode::BadArguments,
            Error::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            Error::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Error::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            Error::Server(code) => *code,
            Error::MultiFailed { code, .. } => *code,
            Error::FencedOut { code, .. } => *code,
            Error::MalformedFrame(_) => ErrorCode::MarshallingError,
            Error::NotConnected => ErrorCode::ConnectionLoss,
            _ => return None,
        })
    }

    // What may be tried again is decided here and nowhere else: the warden's retry loop,
    // its background loops and the recipes all ask these predicates.

    /// The connection went away (or a reply could not be read) before the outcome was known:
    /// the operation may or may not have been applied. Safe to retry for reads and versioned
    /// writes, not for writes that must not happen twice. (`NotConnected` is not one: that
    /// request was never sent.)
    pub fn is_connection_loss(&self) -> bool {
        matches!(self, Error::ConnectionLoss | Error::MalformedFrame(_))
    }

    /// The request certainly was not applied, so even a non-idempotent write may be
    /// repeated: it was refused before sending (invalid, or no connection came up while it
    /// waited), or the server turned it away unprocessed (the session had moved to another
    /// server, or the server was throttling).
    pub fn is_not_applied(&self) -> bool {
        matches!(
            self,
            Error::NotConnected | Error::SessionMoved | Error::Throttled
        ) || self.is_invalid_request()
    }

    /// Worth retrying on the same session once it is connected, for an operation that is
    /// safe to repeat (a read, a versioned or idempotent write): the connection was lost, the
    /// server timed out, or the request was turned away unprocessed for a passing reason
    /// (not connected, session moved, throttled). A write that must not happen twice may be
    /// retried only when [`is_not_applied`](Error::is_not_applied) holds as well.
    pub fn is_retryable(&self) -> bool {
        self.is_connection_loss()
            || matches!(self, Error::OperationTimeout)
            || (self.is_not_applied() && !self.is_invalid_request())
    }

    /// The failure came from the connection, the session or a deadline, not from the request
    /// or the node: the same request can succeed later, on this session or (for a warden,
    /// which builds a new session when one expires) on the next. What loops that keep
    /// trying in the background ask, such as a guaranteed delete.
    pub fn is_transient(&self) -> bool {
        self.is_retryable() || self.is_retried_on_new_session() || matches!(self, Error::Timeout)
    }

    /// The session expired under the operation. A warden builds a new session when one
    /// expires and runs the operation again there, idempotent or not: a request fails this
    /// way only when it was held back unsent or the server had already ended the session
    /// ahead of it (replies come in order), so it was not applied. A plain client cannot
    /// continue.
    pub(crate) fn is_retried_on_new_session(&self) -> bool {
        matches!(self, Error::SessionExpired)
    }

    /// Whether the warden runs an operation of `class` again after this error (budget
    /// permitting): every [`is_retryable`](Error::is_retryable) error for an idempotent
    /// operation, only those that are also [`is_not_applied`](Error::is_not_applied) for a
    /// non-idempotent one, and an expired session for both, once the next session is in place.
    pub(crate) fn retryable_for(&self, class: OpClass) -> bool {
        let on_this_session = match class {
            OpClass::Idempotent => self.is_retryable(),
            OpClass::NonIdempotent => self.is_retryable() && self.is_not_applied(),
        };
        on_this_session || self.is_retried_on_new_session()
    }

    /// A fenced transaction was refused because its fence (a lock or a leadership) no
    /// longer holds: [`Error::FencedOut`]. Nothing was applied.
    pub fn is_fenced_out(&self) -> bool {
        matches!(self, Error::FencedOut { .. })
    }

    /// The session is gone for good: expired, failed authentication or closed. Only a new
    /// session can continue.
    pub fn is_session_terminal(&self) -> bool {
        matches!(
            self,
            Error::SessionExpired | Error::AuthFailed | Error::Closed
        )
    }

    /// The request was rejected before anything was sent (bad path, too large, bad argument).
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            Error::InvalidPath { .. } | Error::DataTooLarge { .. } | Error::InvalidArgument(_)
        )
    }

    /// A short name for the kind of error, for labels and machine-readable output: the
    /// server code's name when there is one (`NoNode`, `ConnectionLoss`), else the variant's
    /// name (`ConnectFailed`, `InvalidPath`). Never the details, which may carry paths, hosts
    /// or server messages.
    pub fn kind_name(&self) -> String {
        // The fence's own code (`NoNode`) would hide what happened.
        if self.is_fenced_out() {
            return "FencedOut".to_owned();
        }
        if let Some(code) = self.code() {
            return format!("{code:?}");
        }
        let shown = format!("{self:?}");
        let end = shown
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(shown.len());
        shown[..end].to_owned()
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(_) => Error::ConnectionLoss,
            other => Error::MalformedFrame(Cause::with_source(other.to_string(), other)),
        }
    }
}

impl From<crate::proto::DecodeError> for Error {
    fn from(e: crate::proto::DecodeError) -> Self {
        Error::MalformedFrame(Cause::with_source(e.to_string(), e))
    }
}

/// Why something failed, as a description for people (naming the host and what was being
/// done) and, when there is one, the typed error behind it (an [`std::io::Error`], a TLS
/// error, a [`DecodeError`](crate::proto::DecodeError)), reachable through
/// [`source`](std::error::Error::source).
///
/// It reads like the string it describes (`Deref<Target = str>`, `Display`), and compares by
/// its description, so [`Error`] stays `Clone` and `Eq`.
#[derive(Clone)]
pub struct Cause {
    description: String,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// A cause with no typed error behind it.
    pub fn new(description: impl Into<String>) -> Cause {
        Cause {
            description: description.into(),
            source: None,
        }
    }

    /// A cause described by `description`, whose source is `source`.
    pub fn with_source(
        description: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Cause {
        Cause {
            description: description.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A cause whose source is an already boxed error (as [`std::io::Error::into_inner`]
    /// gives).
    pub fn with_boxed_source(
        description: impl Into<String>,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    ) -> Cause {
        Cause {
            description: description.into(),
            source: Some(Arc::from(source)),
        }
    }

    /// The description.
    pub fn as_str(&self) -> &str {
        &self.description
    }
}

impl std::ops::Deref for Cause {
    type Target = str;

    fn deref(&self) -> &str {
        &self.description
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Cause");
        d.field("description", &self.description);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        self.description == other.description
    }
}

impl Eq for Cause {}

impl PartialEq<str> for Cause {
    fn eq(&self, other: &str) -> bool {
        self.description == other
    }
}

impl PartialEq<&str> for Cause {
    fn eq(&self, other: &&str) -> bool {
        self.description == *other
    }
}

impl From<String> for Cause {
    fn from(description: String) -> Cause {
        Cause::new(description)
    }
}

impl From<&str> for Cause {
    fn from(description: &str) -> Cause {
        Cause::new(description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_codes_or_variants_never_details() {
        assert_eq!(Error::NoNode.kind_name(), "NoNode");
        assert_eq!(Error::NotConnected.kind_name(), "ConnectionLoss");
        let failed = Error::ConnectFailed {
            hosts: vec!["secret-host:2181".into()],
            timeout_ms: 10,
            last_error: "refused".into(),
        };
        assert_eq!(failed.kind_name(), "ConnectFailed");
        assert_eq!(
            Error::InvalidArgument("x".into()).kind_name(),
            "InvalidArgument"
        );
    }

    #[test]
    fn server_codes_map_to_variants_and_back() {
        for raw in -130..0 {
            let code = ErrorCode::from_code(raw);
            let err = Error::from_code(code);
            assert_eq!(err.code(), Some(code), "{err}");
        }
    }

    #[test]
    fn causes_are_reachable_through_source() {
        use std::error::Error as _;

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::ConnectFailed {
            hosts: vec!["zk1:2181".into()],
            timeout_ms: 10,
            last_error: Cause::with_source("zk1:2181: cannot connect: refused", io),
        };
        assert_eq!(
            err.to_string(),
            "could not connect to any of [\"zk1:2181\"] within 10 ms: zk1:2181: cannot connect: refused"
        );
        let cause = err.source().expect("the cause");
        assert_eq!(cause.to_string(), "zk1:2181: cannot connect: refused");
        let io = cause
            .source()
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .expect("the I/O error");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);

        let decode = crate::proto::DecodeError::InvalidLength(-7);
        let err = Error::from(decode.clone());
        let found = err
            .source()
            .and_then(|c| c.source())
            .and_then(|e| e.downcast_ref::<crate::proto::DecodeError>());
        assert_eq!(found, Some(&decode));

        // Without a typed error the chain ends at the description.
        let err = Error::MalformedFrame("negative count".into());
        assert!(err.source().expect("the cause").source().is_none());
        assert_eq!(err.clone(), err);
    }

    #[test]
    fn fenced_out_is_named_for_what_happened() {
        let fenced = Error::FencedOut {
            node: "/lock/n".into(),
            code: ErrorCode::NoNode,
        };
        assert!(fenced.is_fenced_out());
        assert!(!Error::NoNode.is_fenced_out());
        assert_eq!(fenced.kind_name(), "FencedOut");
        assert_eq!(fenced.code(), Some(ErrorCode::NoNode));
    }

    #[test]
    fn predicates() {
        assert!(Error::ConnectionLoss.is_retryable());
        assert!(!Error::NoNode.is_retryable());
        assert!(Error::SessionExpired.is_session_terminal());
        assert!(
            Error::InvalidPath {
                path: "x".into(),
                reason: "r"
            }
            .is_invalid_request()
        );
    }

    /// One row per error: (error, maybe applied, certainly not applied, retried when
    /// idempotent, retried when not idempotent, transient).
    #[test]
    fn classification_table() {
        let multi = Error::MultiFailed {
            index: 0,
            code: ErrorCode::BadVersion,
            results: Arc::new(Vec::new()),
        };
        let invalid = Error::InvalidPath {
            path: "x".into(),
            reason: "r",
        };
        let fenced = Error::FencedOut {
            node: "/lock/n".into(),
            code: ErrorCode::NoNode,
        };
        let table: [(Error, bool, bool, bool, bool, bool); 21] = [
            (Error::ConnectionLoss, true, false, true, false, true),
            (
                Error::MalformedFrame("x".into()),
                true,
                false,
                true,
                false,
                true,
            ),
            (Error::NotConnected, false, true, true, true, true),
            (Error::SessionMoved, false, true, true, true, true),
            (Error::Throttled, false, true, true, true, true),
            (Error::OperationTimeout, false, false, true, false, true),
            (Error::SessionExpired, false, false, true, true, true),
            (Error::Timeout, false, false, false, false, true),
            (Error::Closed, false, false, false, false, false),
            (Error::AuthFailed, false, false, false, false, false),
            (Error::NoNode, false, false, false, false, false),
            (Error::NodeExists, false, false, false, false, false),
            (Error::BadVersion, false, false, false, false, false),
            (Error::NoAuth, false, false, false, false, false),
            (Error::NotEmpty, false, false, false, false, false),
            // A refused reconfig is the operator's to look at, never retried by itself.
            (Error::ReconfigDisabled, false, false, false, false, false),
            (Error::NewConfigNoQuorum, false, false, false, false, false),
            (Error::ReconfigInProgress, false, false, false, false, false),
            (multi, false, false, false, false, false),
            (fenced, false, false, false, false, false),
            (invalid, false, true, false, false, false),
        ];
        for (error, maybe_applied, not_applied, idempotent, non_idempotent, transient) in table {
            assert_eq!(
                error.is_connection_loss(),
                maybe_applied,
                "{error}: maybe applied"
            );
            assert_eq!(error.is_not_applied(), not_applied, "{error}: not applied");
            assert_eq!(
                error.retryable_for(OpClass::Idempotent),
                idempotent,
                "{error}: idempotent"
            );
            assert_eq!(
                error.retryable_for(OpClass::NonIdempotent),
                non_idempotent,
                "{error}: non-idempotent"
            );
            assert_eq!(error.is_transient(), transient, "{error}: transient");
            // Nothing is both maybe applied and certainly not applied.
            assert!(!(maybe_applied && not_applied), "{error}");
        }
    }
}
