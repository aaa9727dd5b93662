//! What the core knows about the one live connection: the requests waiting for replies (in
//! the order they were written, which is the order the server answers them), the auth
//! packets waiting for theirs, and when bytes last went each way.

use std::collections::VecDeque;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::client::command::{OnReply, Reply};
use crate::client::server_watches::Needs;
use crate::error::Error;
use crate::proto::OpCode;

/// A request written to the server, waiting for its reply.
pub(super) struct Pending {
    pub xid: i32,
    pub op: OpCode,
    /// `None` for requests the core sends on its own (watch removal, close).
    pub reply: Option<oneshot::Sender<Result<Reply, Error>>>,
    pub on_reply: OnReply,
    pub span: tracing::Span,
}

/// An auth packet written to the server, waiting for its reply (auth replies carry xid -4
/// and can overtake other replies, so they have their own queue).
pub(super) struct PendingAuth {
    pub scheme: String,
    pub auth: Vec<u8>,
    /// `None` for credentials re-sent after a reconnect.
    pub reply: Option<oneshot::Sender<Result<(), Error>>>,
}

/// One live connection, as the core sees it.
pub(super) struct Link {
    pub pending: VecDeque<Pending>,
    pub pending_auth: VecDeque<PendingAuth>,
    /// When the server last sent a byte.
    pub last_recv: Instant,
    /// When bytes were last queued or written.
    pub last_send: Instant,
    /// Set while a re-attached session waits for the server to prove it alive (see
    /// [`probe`](super::probe)).
    pub unproven: Option<super::probe::Unproven>,
    /// Whether SetWatches2 restored watches on this connection (see
    /// [`set_watches`](super::set_watches)).
    pub sent_set_watches2: bool,
}

impl Link {
    pub(super) fn new(now: Instant) -> Link {
        Link {
            pending: VecDeque::new(),
            pending_auth: VecDeque::new(),
            last_recv: now,
            last_send: now,
            unproven: None,
            sent_set_watches2: false,
        }
    }

    /// Answers everything still waiting with `cause`.
    pub(super) fn fail(&mut self, cause: &Error) {
        for pending in self.pending.drain(..) {
            if let Some(reply) = pending.reply {
                let _ = reply.send(Err(cause.clone()));
            }
        }
        for pending in self.pending_auth.drain(..) {
            if let Some(reply) = pending.reply {
                let _ = reply.send(Err(cause.clone()));
            }
        }
    }

    /// What the watching requests still waiting for their replies on `server_path` will
    /// need from the server once registered (abandoned ones aside).
    pub(super) fn needs_in_flight(&self, server_path: &str) -> Needs {
        let mut needs = Needs::default();
        for pending in &self.pending {
            if let OnReply::RegisterWatch {
                server_path: path,
                on_ok,
                sink,
                ..
            } = &pending.on_reply
                && path == server_path
                && !sink.is_closed()
            {
                needs.add(*on_ok);
            }
        }
        needs
    }
}
