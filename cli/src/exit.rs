//! Exit codes, and the one failure type every command returns.

use std::fmt;

use zkwarden::Error;

/// Success.
pub const OK: u8 = 0;
/// ZooKeeper refused the operation (NoNode, NodeExists, BadVersion, ...).
pub const ZOOKEEPER: u8 = 1;
/// Bad arguments or input files (clap uses the same code for its own usage errors).
pub const USAGE: u8 = 2;
/// No server answered in time, or the session ended.
pub const CONNECTION: u8 = 3;
/// `lock` / `leader`: lost while COMMAND ran; COMMAND was stopped.
pub const LOST: u8 = 4;
/// `lock` / `leader`: not acquired within `--wait`.
pub const NOT_ACQUIRED: u8 = 5;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or input.
    Usage(String),
    /// An operation failed; `context` says which.
    Zk {
        /// What was being done.
        context: String,
        /// What went wrong.
        error: Error,
    },
    /// A server could not be reached (outside a ZooKeeper session, e.g. a four-letter word).
    Connection(String),
    /// `lock` / `leader`: not acquired within `--wait`.
    NotAcquired,
}

impl Failure {
    /// A failed ZooKeeper operation.
    pub fn zk(context: impl Into<String>, error: Error) -> Failure {
        Failure::Zk {
            context: context.into(),
            error,
        }
    }

    /// The exit code this failure means.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Connection(_) => CONNECTION,
            Failure::NotAcquired => NOT_ACQUIRED,
            Failure::Zk { error, .. } => code_of(error),
        }
    }

    /// The ZooKeeper error's name, for JSON output.
    pub fn error_name(&self) -> String {
        match self {
            Failure::Usage(_) => "Usage".into(),
            Failure::Connection(_) => "Connection".into(),
            Failure::NotAcquired => "NotAcquired".into(),
            Failure::Zk { error, .. } => error.kind_name(),
        }
    }
}

/// Sorts an error into an exit code: the caller's fault (2), the connection's (3), or
/// ZooKeeper's answer (1).
fn code_of(error: &Error) -> u8 {
    if error.is_invalid_request() || matches!(error, Error::InvalidConnectString { .. }) {
        USAGE
    } else if error.is_retryable()
        || error.is_session_terminal()
        || matches!(
            error,
            Error::ConnectFailed { .. } | Error::Tls { .. } | Error::Timeout
        )
    {
        CONNECTION
    } else {
        ZOOKEEPER
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(msg) | Failure::Connection(msg) => f.write_str(msg),
            Failure::Zk { context, error } => write!(f, "{context}: {error}"),
            Failure::NotAcquired => f.write_str("not acquired within --wait"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_documented_codes() {
        assert_eq!(Failure::zk("get", Error::NoNode).exit_code(), ZOOKEEPER);
        assert_eq!(Failure::zk("set", Error::BadVersion).exit_code(), ZOOKEEPER);
        assert_eq!(
            Failure::zk("x", Error::SessionExpired).exit_code(),
            CONNECTION
        );
        assert_eq!(Failure::zk("x", Error::Timeout).exit_code(), CONNECTION);
        assert_eq!(
            Failure::zk("x", Error::InvalidArgument("bad".into())).exit_code(),
            USAGE
        );
        assert_eq!(Failure::zk("x", Error::NoNode).error_name(), "NoNode");
    }
}
