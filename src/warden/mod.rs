//! The supervisor: a [`Warden`] holds a ZooKeeper session on behalf of its users. It waits
//! for a connected session before it sends anything, retries what may be retried by a
//! configurable [`RetryPolicy`], rebuilds the session when it is lost,
//! re-arms resilient watches, and reports every connection change in order.
//!
//! | the server / connection says | the warden does |
//! |---|---|
//! | not yet connected | holds new work until connected, up to the connection timeout |
//! | disconnected | `Suspended`; in-flight ops fail with ConnectionLoss and are retried by policy once reconnected |
//! | connected again, same session | `Reconnected`; one-shot watches were kept by SetWatches |
//! | expired, or no server heard for the session timeout | `Lost`; the old session is closed on the server if it may still live; a new one is built with the same settings and credentials; resilient watches re-arm and resync; `Reconnected` with the new session id and a higher generation |
//! | connected to a read-only server (with [`WardenConfig::read_only`]) | `ReadOnly`; reads work, writes fail with NotReadOnly at once |
//! | the client left a read-only server for a read-write one | `Reconnected` for the same session; for a session the read-only server made, `Lost` then `Reconnected` with the new session id and a higher generation |
//! | ConnectionLoss / OperationTimeout / SessionMoved / Throttled / NotConnected | retried by the policy; a write that must not happen twice (sequential create, transaction) only when it certainly was not applied ([`Error::is_not_applied`](crate::Error::is_not_applied)) |
//! | SessionExpired on an op | retried by the policy on the next session, once it is built |
//! | NoNode, NodeExists, BadVersion, NoAuth, ... | returned at once |

mod batch;
mod config;
mod config_file;
mod create;
mod ensemble;
mod fence;
mod guaranteed;
mod handle;
mod janitor;
mod metrics;
mod ops;
pub mod retry;
mod retry_loop;
mod state;
mod supervisor;
mod transaction;
mod watches;
mod write;

#[cfg(feature = "tls")]
pub use config::TlsFiles;
pub use config::{AuthConfig, LockSafety, ReconnectBackoff, WardenBuilder, WardenConfig};
pub use config_file::CONNECT_ENV;
pub use create::{CreateBuilder, PROTECTED_PREFIX, ParentMode};
pub use fence::{Fence, fenced};
pub use handle::Warden;
pub use metrics::MetricsSnapshot;
pub use retry::{RetryConfig, RetryPolicy, RetrySchedule};
pub(crate) use retry_loop::OpClass;
pub use state::{ConnectionEvent, ConnectionEvents, ConnectionState, ConnectionUpdate};
pub use transaction::Transaction;
pub use watches::{
    ChildrenEvent, ChildrenWatch, DataEvent, DataWatch, TreeEvent, TreeWatch, WatchStream,
};
pub use write::{DeleteBuilder, SetDataBuilder};
