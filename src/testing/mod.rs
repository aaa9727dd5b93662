//! Real ZooKeeper servers for tests (cargo feature `testing`).
//!
//! [`ZkServer`] starts a standalone server and [`ZkEnsemble`] a quorum of servers, each a
//! JVM running Debian's ZooKeeper (`scripts/install-zookeeper.sh` installs it) on free
//! `127.0.0.1` ports with its own temporary data directory. They are plain blocking calls
//! built on `std::net` and `std::process`: call them from synchronous tests, or from async
//! ones directly or through `tokio::task::spawn_blocking`. They never start or block on a
//! runtime of their own.
//!
//! # What you get
//!
//! * `start` returns only once the server serves (`ruok` answers `imok` and `srvr` reports
//!   `Mode: standalone`, or `leader`/`follower` for ensemble members); if the JVM dies first,
//!   the error carries the end of its log.
//! * Short timers by default: `tickTime` 200 ms, so sessions may time out after 400 ms to 4 s.
//! * The server log goes to `zookeeper.log` in the data directory, not to the test output.
//! * A stopped server can be restarted on the same port with the same data, so znodes and
//!   unexpired sessions survive; an ensemble member can be killed (SIGKILL) and restarted.
//! * Four-letter words (`ruok`, `srvr`, `cons`, `mntr`, ...) for looking inside.
//!
//! # Network faults
//!
//! [`FaultProxy`] is the one async piece: a loopback TCP proxy (on the current tokio runtime)
//! to put between a client and a server, or one per ensemble member. The test switches it
//! between passing bytes, adding latency, a blackhole (sockets open, bytes held), dropping
//! replies (writes land, answers vanish), resetting every connection and refusing new ones.
//!
//! # No orphaned JVMs
//!
//! Dropping a server kills its JVM and removes its data. A JVM also dies when the test
//! process dies without dropping anything (a panic with `panic = "abort"`, SIGKILL, a
//! crash): each JVM runs under a small `sh` wrapper in its own process group, and the
//! wrapper kills the group as soon as the pipe on its stdin, held only by the test process,
//! is closed.
//!
//! # TLS
//!
//! [`TlsMaterial`] makes a test CA with server and client certificates (rcgen); a server or
//! ensemble built with `.tls(&material, TlsClientAuth::None)` (or `Need` for mutual TLS)
//! also serves TLS on a secure client port, through the Netty connection factory, and
//! `secure_connect_string()` names it. With cargo feature `tls`,
//! `material.client_config()` gives a client that trusts the CA.
//!
//! # Kerberos
//!
//! [`Kdc`] runs a throwaway MIT Kerberos KDC on loopback with the realm [`TEST_REALM`], the
//! service principal `zookeeper/localhost` and a client principal, keytabs made at start;
//! a server or ensemble built with `.kerberos(&kdc)` accepts SASL GSSAPI logins through a
//! JAAS `Krb5LoginModule` with the service keytab.
//!
//! # Finding ZooKeeper
//!
//! `java` is taken from `$JAVA_HOME`, `$PATH` or `/usr/bin/java`. The class path is
//! `$ZOOKEEPER_CLASSPATH` when set, otherwise the jars under `/usr/share/java` that Debian's
//! `zookeeper` package installs (plus `slf4j-simple`, so the server log is written).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use zkwarden::testing::{ZkEnsemble, ZkServer};
//!
//! # fn main() -> Result<(), zkwarden::testing::TestingError> {
//! let mut server = ZkServer::builder()
//!     .tick_time(Duration::from_millis(100))
//!     .extra_config("maxClientCnxns", "0")
//!     .start()?;
//! assert_eq!(server.four_letter("ruok")?, "imok");
//! let connect = server.connect_string(); // "127.0.0.1:PORT", hand it to a client
//! # let _ = connect;
//! server.restart()?; // same port, same data
//!
//! let mut ensemble = ZkEnsemble::start(3)?;
//! if let Some(leader) = ensemble.leader() {
//!     ensemble.kill(leader)?;
//!     ensemble.restart(leader)?; // back as a follower (or leader again)
//! }
//! # Ok(())
//! # }
//! ```

mod config;
mod ensemble;
mod error;
mod expire;
mod fault_proxy;
mod java;
mod kdc;
mod node;
mod ports;
mod probe;
mod process;
mod server;
mod tls;

pub use ensemble::{ZkEnsemble, ZkEnsembleBuilder};
pub use error::TestingError;
pub use expire::{expire_client, expire_session, expire_session_with, expire_warden};
pub use fault_proxy::{FaultProxy, ProxyStats, connect_string_of};
pub use java::CLASSPATH_ENV;
pub use kdc::{CLIENT_PRINCIPAL, Kdc, SERVICE_PRINCIPAL, TEST_REALM};
pub use probe::four_letter_word;
pub use server::{ZkServer, ZkServerBuilder};
pub use tls::{TlsClientAuth, TlsMaterial};
