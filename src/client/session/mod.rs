//! The task that owns one session's connection, and what it shares with its handles.

pub(crate) mod config;
pub(crate) mod connect;
pub(crate) mod rw_probe;
pub(crate) mod reader;
pub(crate) mod sasl;
pub(crate) mod shared;
pub(crate) mod task;
pub(crate) mod transport;

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::Instrument;

pub(crate) use config::SessionConfig;
pub use connect::SessionEnd;
pub(crate) use shared::Shared;

use super::command::Command;

/// Starts a session task on the current tokio runtime.
pub(crate) fn spawn(config: SessionConfig) -> (mpsc::UnboundedSender<Command>, Arc<Shared>) {
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::new());
    let span = tracing::info_span!("zk_session", session_id = tracing::field::Empty);
    let task = task::SessionTask::new(config, commands_rx, shared.clone());
    tokio::spawn(task.run().instrument(span));
    (commands_tx, shared)
}
