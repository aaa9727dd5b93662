//! Messages from [`Client`](super::Client) handles to the session task.

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

use super::watch::{WatchKind, WatchSink};
use crate::error::Result;
use crate::proto::{OpCode, WatcherType};

/// What a session task is asked to do. `Debug` never shows credentials.
pub(crate) enum Command {
    /// Send a request and route its reply.
    ///
    /// Boxed: tokio's channel allocates its slots a block at a time, eagerly, so every
    /// session pays for a block of the largest variant even when idle; a box keeps a slot at
    /// the size of [`Command::Auth`] (one allocation per request, beside the body and the
    /// reply channel it already has).
    Request(Box<Request>),
    /// Authenticate this session (xid -4); the credentials are re-sent on every reconnect once
    /// the server has accepted them.
    Auth {
        scheme: String,
        auth: Vec<u8>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// A watch handle was dropped before it fired.
    Unwatch {
        id: u64,
        kind: WatchKind,
        server_path: String,
    },
    /// Close the session on the server and stop.
    Close { reply: oneshot::Sender<Result<()>> },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Request(r) => f.debug_tuple("Request").field(r).finish(),
            Command::Auth { scheme, .. } => f
                .debug_struct("Auth")
                .field("scheme", scheme)
                .finish_non_exhaustive(),
            Command::Unwatch {
                id,
                kind,
                server_path,
            } => f
                .debug_struct("Unwatch")
                .field("id", id)
                .field("kind", kind)
                .field("server_path", server_path)
                .finish(),
            Command::Close { .. } => f.write_str("Close"),
        }
    }
}

/// A request, already encoded by the caller.
#[derive(Debug)]
pub(crate) struct Request {
    /// The op, for logs and reply handling.
    pub op: OpCode,
    /// The encoded record, checked against the frame limit; the session writes the header
    /// in front of it (see [`encode_request`](crate::proto::request::encode_request)).
    pub body: BytesMut,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Result<Reply>>,
    /// What the task does besides answering, once the reply arrives.
    pub on_reply: OnReply,
    /// The caller's span for this request.
    pub span: tracing::Span,
}

/// A successful reply: its zxid and the body after the reply header.
#[derive(Debug)]
pub(crate) struct Reply {
    #[allow(dead_code)] // kept for callers that want the server's zxid
    pub zxid: i64,
    pub body: Bytes,
}

/// Side effects of a reply that the session task performs itself, so they happen in order
/// with the notifications it reads.
#[derive(Debug)]
pub(crate) enum OnReply {
    /// Nothing beyond answering.
    Nothing,
    /// Register a watch: as `on_ok` when the request succeeded, as `on_no_node` (if set) when
    /// it failed with NoNode (an exists watch on a missing node).
    RegisterWatch {
        id: u64,
        server_path: String,
        on_ok: WatchKind,
        on_no_node: Option<WatchKind>,
        sink: WatchSink,
    },
    /// After a successful removeWatches, drop the matching local watchers too.
    RemoveLocalWatches {
        server_path: String,
        client_path: String,
        watcher_type: WatcherType,
    },
}
