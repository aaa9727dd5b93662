//! The wire client: one ZooKeeper session over tokio.
//!
//! [`Client`] is a cheap handle to a task that owns the connection. See the crate docs for
//! the guarantees on ordering, watches and reconnection.

mod builder;
mod command;
pub mod connect_string;
mod credentials;
pub(crate) mod dynamic_config;
mod handle;
mod ops;
pub mod path;
pub(crate) mod resolver;
mod sasl;
mod server_watches;
pub(crate) mod session;
mod state;
#[cfg(feature = "tls")]
pub mod tls;
mod watch;

pub use builder::{
    ClientBuilder, DEFAULT_BACKOFF_PATIENCE, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LATER_MAX_BACKOFF,
    DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF, DEFAULT_RECONNECT_DELAY, DEFAULT_SESSION_TIMEOUT,
};
pub use connect_string::HostPort;
pub use credentials::Credentials;
pub use handle::{Client, close_session};
pub use ops::{CreateOptions, MultiReadOp, Op, Reconfig};
pub use resolver::{ResolveFuture, Resolver, SystemResolver};
pub use sasl::{GssapiConfig, SaslConfig};
pub use session::SessionEnd;
#[cfg(feature = "sim")]
pub use session::transport::{DialFuture, DialedStream, Dialer};
pub use state::{SessionId, SessionPassword, SessionState, SessionStatus};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use watch::{OneshotWatcher, PersistentWatcher, WatchedEvent};
