//! The wire client: one ZooKeeper session over tokio.
//!
//! [`Client`] is a cheap handle to a task that owns the connection. See the crate docs for
//! the guarantees on ordering, watches and reconnection.

mod builder;
mod command;
pub mod connect_string;
mod handle;
mod ops;
pub mod path;
mod session;
mod state;
mod watch;

pub use builder::{ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SESSION_TIMEOUT};
pub(crate) use handle::close_session_allowing_read_only;
pub use handle::{Client, close_session};
pub use ops::{CreateOptions, MultiReadOp, Op};
pub use session::SessionEnd;
pub use state::{SessionId, SessionPassword, SessionState, SessionStatus};
pub use watch::{OneshotWatcher, PersistentWatcher, WatchedEvent};
