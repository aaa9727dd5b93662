//! zkwarden: a ZooKeeper client for Rust that keeps its promises when the network, the servers
//! and the sessions misbehave.
//!
//! The crate is layered; each layer is usable on its own:
//!
//! * [`proto`]: the wire format (jute records, op codes, error codes, length-prefixed frames).
//!   No I/O; malformed input is an error, never a panic.
//! * [`client`]: one ZooKeeper session over tokio. A [`Client`] is a cheap handle to a task
//!   that owns the connection, pipelines requests, delivers watches and moves to the next host
//!   when a server dies, keeping the session.
//! * [`acl`]: ACL entries for ZooKeeper's schemes, and digest ids as the server computes them.
//! * `testing` (cargo feature `testing`): real ZooKeeper servers and ensembles for tests, started
//!   from Debian's packages.
//! * `client::tls` (cargo feature `tls`): TLS to ZooKeeper's secure client port with rustls,
//!   including mutual TLS; see `client::TlsConfig`.
//!
//! # Example
//!
//! ```
//! use zkwarden::{Client, CreateMode};
//!
//! # async fn demo(connect: &str) -> zkwarden::Result<()> {
//! let client = Client::connect(connect).await?;
//! let path = client.create("/greeting", b"hello", CreateMode::Ephemeral).await?;
//!
//! // Read it and leave a watch; the watch resolves on the next change.
//! let (data, stat, watch) = client.get_data_and_watch(&path).await?;
//! assert_eq!(&data[..], b"hello");
//! client.set_data(&path, b"hello again", Some(stat.version)).await?;
//! let event = watch.await?;
//! assert_eq!(event.event_type, zkwarden::EventType::NodeDataChanged);
//!
//! client.close().await?; // the ephemeral node goes with the session
//! # Ok(())
//! # }
//! # #[cfg(feature = "testing")]
//! # fn main() {
//! #     let server = zkwarden::testing::ZkServer::start().expect("ZooKeeper for the doc test");
//! #     let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! #     rt.block_on(demo(&server.connect_string())).unwrap();
//! # }
//! # #[cfg(not(feature = "testing"))]
//! # fn main() {}
//! ```
//!
//! # Behaviour
//!
//! **Ordering.** Requests are queued when an operation is *called*, not when its future is
//! first polled, so the server receives them in call order. Replies complete in that order.
//! Many requests can be in flight; everything queued is written in one go.
//!
//! **Watches.** One-shot watches ([`client::OneshotWatcher`]) come back with the reply that set
//! them; persistent and recursive watches ([`client::PersistentWatcher`]) are streams. A watch
//! event is delivered before the reply to any request read after it. Dropping a watch handle
//! unregisters it, and removes it on the server once no other local watcher needs it.
//!
//! **Connection loss.** When a connection dies (closed, reset, or two thirds of the session
//! timeout without a byte from the server), the state becomes
//! [`SessionState::Disconnected`] at once, requests in flight fail with
//! [`Error::ConnectionLoss`] (they may or may not have been applied), and the client tries the
//! next host with the same session, re-sending credentials and then its watches with the last
//! zxid it saw, so changes it missed fire. When no server has answered for the whole session
//! timeout, the client declares the session expired without waiting to be told.
//!
//! **Terminal states.** [`SessionState::Expired`], [`SessionState::AuthFailed`] and
//! [`SessionState::Closed`] end the client: pending and later operations fail with that cause.
//! A new session needs a new client (the supervisor layer does this for you).
//!
//! **Deadlines.** A [`Warden`] call never waits forever: without a deadline of its own
//! ([`Warden::with_deadline`]) it gets the configured `operation_timeout` (twice the
//! connection timeout by default, 30 s), and fails with [`Error::Timeout`] past it. A
//! [`Client`] call is bounded by the session itself: it fails when its connection is lost.
//!
//! **Refused credentials.** When the servers refuse a warden's credentials while it builds a
//! new session (a rotated password, a revoked user), it stops retrying: the connection
//! state becomes [`ConnectionState::AuthFailed`] and waiting and later calls fail with
//! [`Error::AuthFailed`], until new credentials are supplied with [`Warden::set_sasl`] or
//! [`Warden::set_auth`], which start a new attempt.
//!
//! **Bad input.** Invalid paths, data over the frame limit and invalid options are refused
//! before anything is sent, with a typed error; the session is unaffected. A malformed frame
//! from a server drops only that connection.

#![warn(missing_docs)]

pub mod acl;
pub mod backoff;
pub mod client;
pub mod error;
pub mod proto;
#[cfg(feature = "testing")]
pub mod testing;
pub mod warden;

pub use backoff::Backoff;
pub use client::{
    Client, ClientBuilder, CreateOptions, GssapiConfig, HostPort, MultiReadOp, OneshotWatcher, Op,
    PersistentWatcher, Reconfig, Resolver, SaslConfig, SessionId, SessionPassword, SessionState,
    SessionStatus, WatchedEvent,
};
pub use error::{Cause, Error, Result};
pub use proto::{
    Acl, AddWatchMode, CreateMode, ErrorCode, EventType, Id, OpResult, Perms, Stat, WatcherType,
};
pub use warden::{ConnectionEvent, ConnectionState, Warden, WardenConfig};

/// The README's Rust examples, compiled by `cargo test --doc` so that they stay true (and
/// free of unused imports, which a reader would copy).
#[cfg(doctest)]
#[doc(test(attr(deny(unused_imports))))]
#[doc = include_str!("../README.md")]
pub struct ReadmeExamples;
