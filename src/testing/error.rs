//! The one error type of the test harness.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What the install hint says wherever Java or ZooKeeper is missing.
const INSTALL_HINT: &str =
    "run scripts/install-zookeeper.sh (Debian: apt-get install zookeeper default-jre-headless)";

/// Why a ZooKeeper server or ensemble could not be started, probed or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// No `java` executable was found (`$JAVA_HOME/bin/java`, `$PATH`, `/usr/bin/java`).
    #[error("no java executable found (looked at {searched}); {INSTALL_HINT}")]
    JavaNotFound {
        /// The places that were looked at.
        searched: String,
    },

    /// The ZooKeeper server jar is missing and `ZOOKEEPER_CLASSPATH` is not set.
    #[error("ZooKeeper jar {} not found and ZOOKEEPER_CLASSPATH is not set; {INSTALL_HINT}", path.display())]
    JarNotFound {
        /// The jar that was expected.
        path: PathBuf,
    },

    /// An I/O operation of the harness failed (writing the config, spawning, talking to a server).
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The server process ended before it was serving.
    #[error("ZooKeeper process exited early ({status}); last lines of its log:\n{log_tail}")]
    Exited {
        /// The exit status as the OS reported it.
        status: String,
        /// The last lines of the server's log.
        log_tail: String,
    },

    /// The server did not reach the wanted state within the start timeout.
    #[error(
        "ZooKeeper did not become ready ({wanted}) within {waited:?}; last answer: {last_answer:?}; last lines of its log:\n{log_tail}"
    )]
    Timeout {
        /// The state that was waited for, e.g. `"Mode: standalone"`.
        wanted: String,
        /// How long the harness waited.
        waited: Duration,
        /// The last `srvr`/`ruok` answer (or error) seen.
        last_answer: String,
        /// The last lines of the server's log.
        log_tail: String,
    },

    /// An ensemble member index was out of range.
    #[error("no ensemble member {index} (the ensemble has {len})")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
        /// The number of members.
        len: usize,
    },

    /// The operation needs a running server, and this one is stopped.
    #[error("ZooKeeper server on port {port} is not running")]
    NotRunning {
        /// The server's client port.
        port: u16,
    },

    /// The ensemble started but did not settle with exactly one leader.
    #[error("ensemble did not elect exactly one leader within {waited:?} (modes: {modes})")]
    NoLeader {
        /// How long the harness waited.
        waited: Duration,
        /// The mode each member reported, in member order.
        modes: String,
    },

    /// An ensemble needs at least one member.
    #[error("an ensemble needs at least one member")]
    EmptyEnsemble,

    /// Spare members join by `reconfig`: the ensemble needs
    /// [`reconfig_enabled`](super::ZkEnsembleBuilder::reconfig_enabled).
    #[error("spare members need an ensemble with reconfig enabled")]
    SparesNeedReconfig,

    /// [`ZkEnsemble::start_spare`](super::ZkEnsemble::start_spare) was asked to start a
    /// member that is not a spare waiting to join.
    #[error("member {index} is not a spare waiting to join")]
    NotASpare {
        /// The member asked for.
        index: usize,
    },
}

impl TestingError {
    /// Wraps an I/O error with what the harness was doing.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        TestingError::Io {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_installation_points_at_the_install_script() {
        let errors = [
            TestingError::JavaNotFound {
                searched: "$PATH".to_owned(),
            },
            TestingError::JarNotFound {
                path: PathBuf::from("/usr/share/java/zookeeper.jar"),
            },
        ];
        for e in errors {
            assert!(
                e.to_string().contains("scripts/install-zookeeper.sh"),
                "{e}"
            );
        }
    }
}
