//! The task that owns one session's connection, and what it shares with its handles.
//!
//! The session is split three ways: the [`core`] (the protocol, no I/O, no clock), the
//! [`connector`] (hosts, transport, handshake, SASL, read-only probe) and the [`driver`]
//! (the tokio task moving bytes and time between them and the socket).

pub(crate) mod config;
pub(crate) mod connect;
pub(crate) mod connector;
pub(crate) mod core;
pub(crate) mod driver;
pub(crate) mod reader;
pub(crate) mod rebalance;
pub(crate) mod rw_probe;
pub(crate) mod sasl;
pub(crate) mod shared;
pub(crate) mod transport;

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

pub(crate) use config::SessionConfig;
pub use connect::SessionEnd;
pub(crate) use shared::Shared;

use super::command::Command;
use super::connect_string::HostPort;

/// The handles' ends of a new session task.
pub(crate) struct Spawned {
    pub commands: mpsc::UnboundedSender<Command>,
    pub shared: Arc<Shared>,
    /// The host list: a new value replaces the session's hosts (see
    /// [`Connector::update_hosts`](connector::Connector::update_hosts)).
    pub hosts: watch::Sender<Vec<HostPort>>,
}

/// Starts a session task on the current tokio runtime.
pub(crate) fn spawn(config: SessionConfig) -> Spawned {
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (hosts_tx, hosts_rx) = watch::channel(config.hosts.clone());
    let shared = Arc::new(Shared::new());
    let span = tracing::info_span!("zk_session", session_id = tracing::field::Empty);
    let driver = driver::Driver::new(&config, commands_rx, hosts_rx, shared.clone());
    tokio::spawn(driver.run().instrument(span));
    Spawned {
        commands: commands_tx,
        shared,
        hosts: hosts_tx,
    }
}
