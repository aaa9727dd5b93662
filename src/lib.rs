//! zkwarden: a ZooKeeper client for Rust.

pub mod client;
pub mod error;
pub mod proto;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{Client, ClientBuilder, CreateOptions, Op, SessionState};
pub use error::{Error, Result};
pub use proto::{Acl, AddWatchMode, CreateMode, EventType, Id, Perms, Stat, WatcherType};
