//! Resilient watches: streams of changes that outlive firings, reconnections and lost
//! sessions.
//!
//! [`Warden::watch_data`](super::Warden::watch_data),
//! [`Warden::watch_children`](super::Warden::watch_children) and
//! [`Warden::watch_tree`](super::Warden::watch_tree) each start a small background task that
//! holds the wire client's watch, re-arms it after every firing and after a new session, and
//! feeds a bounded channel that the returned [`WatchStream`] reads. User code therefore never
//! runs on the session's I/O task, and a consumer that falls behind only slows its own watch.
//!
//! Every stream starts with a `Resync` event carrying the state as it is now, and emits
//! another `Resync` whenever changes may have gone unseen (a new session, and for tree
//! watches also a reconnection). Dropping the stream stops the task, which drops the wire
//! client's watch handle, which removes the watch on the server.

mod children;
mod data;
mod fallback;
mod feed;
mod support;
mod tree;

pub use children::{ChildrenEvent, ChildrenWatch};
pub use data::{DataEvent, DataWatch};
pub use feed::WatchStream;
pub(crate) use support::WatchSupport;
pub use tree::{TreeEvent, TreeWatch};
