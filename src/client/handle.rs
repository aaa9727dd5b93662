//! [`Client`]: the cheap, cloneable handle to one session.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::builder::ClientBuilder;
use super::command::{Command, OnReply, Reply, Request};
use super::connect_string::{ConnectString, HostPort};
use super::path::{Chroot, validate_path};
use super::session::{Shared, Spawned};
use super::state::{SessionId, SessionPassword, SessionState, SessionStatus};
use crate::error::{Error, Result};
use crate::proto::jute::{Jute, decode_exact};
use crate::proto::request::encode_body;
use crate::proto::{FrameError, OpCode};

/// A handle to one ZooKeeper session.
///
/// Cloning is cheap (one reference count); every clone talks to the same session task, which
/// owns the connection. Requests are queued when the method is *called* (not when the returned
/// future is first polled), so the server sees them in call order, and many can be in flight
/// at once. When the last handle is dropped the session is closed on the server.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) shared: Arc<Shared>,
    /// The session's host list; the session task follows every new value.
    hosts: watch::Sender<Vec<HostPort>>,
    pub(crate) chroot: Chroot,
    pub(crate) max_frame_len: usize,
    watch_ids: AtomicU64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = *self.inner.shared.status.borrow();
        f.debug_struct("Client")
            .field("session_id", &status.session_id)
            .field("state", &status.state)
            .field("chroot", &self.inner.chroot.prefix())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `connect_string` with default settings and waits for the session.
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub async fn connect(connect_string: &str) -> Result<Client> {
        ClientBuilder::new(connect_string).connect().await
    }

    /// Settings for a new client.
    pub fn builder(connect_string: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(connect_string)
    }

    pub(crate) fn from_parts(spawned: Spawned, chroot: Chroot, max_frame_len: usize) -> Client {
        Client {
            inner: Arc::new(Inner {
                commands: spawned.commands,
                shared: spawned.shared,
                hosts: spawned.hosts,
                chroot,
                max_frame_len,
                watch_ids: AtomicU64::new(1),
            }),
        }
    }

    /// The session's state and id, as a [`watch`] receiver: `borrow()` reads the current
    /// value, `changed()` waits for the next.
    pub fn state(&self) -> watch::Receiver<SessionStatus> {
        self.inner.shared.status.subscribe()
    }

    /// The current session state.
    pub fn session_state(&self) -> SessionState {
        self.inner.shared.status.borrow().state
    }

    /// The session id (0 before the first handshake).
    pub fn session_id(&self) -> SessionId {
        self.inner.shared.details().session_id
    }

    /// The session password, for handing the session to another connection (for example a
    /// fault tool that expires it). Never printed by `Debug`.
    pub fn session_password(&self) -> SessionPassword {
        self.inner.shared.details().password
    }

    /// The session timeout the server granted, once connected.
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        self.inner.shared.details().negotiated_timeout
    }

    /// When a server last answered this session (a handshake, a reply, a ping or a watch
    /// event), if one ever has.
    pub fn last_heard(&self) -> Option<tokio::time::Instant> {
        self.inner.shared.last_heard()
    }

    /// The latest instant at which the session may still be alive on the server: the last
    /// time a server answered plus the negotiated timeout. Past it, the server has expired the
    /// session unless a server heard from it since. `None` before the first connection.
    pub fn session_deadline(&self) -> Option<tokio::time::Instant> {
        let timeout = self.negotiated_timeout()?;
        Some(self.last_heard()? + timeout)
    }

    /// The server this session is connected to right now.
    pub fn connected_server(&self) -> Option<SocketAddr> {
        self.inner.shared.details().server
    }

    /// The hosts the session connects to: those of the connect string, or the latest list
    /// given to [`update_hosts`](Self::update_hosts).
    pub fn hosts(&self) -> Vec<HostPort> {
        self.inner.hosts.borrow().clone()
    }

    /// Replaces the hosts the session connects to (`host:port,host:port`), for example after
    /// the ensemble was reconfigured, so a host that was removed is no longer tried and an
    /// added one takes its share of sessions. Names are resolved on every attempt, as for
    /// the connect string.
    ///
    /// The session may move at once, so that sessions spread evenly over the new list
    /// without all of them reconnecting: each client decides by a weighted coin (ZooKeeper's
    /// own client rebalances the same way). When the list grows from `o` to `n` hosts, a
    /// session on a host that stays moves with probability `1 - o/n`, to one of the added
    /// hosts; when it does not grow, such a session stays. A session on a host that is no
    /// longer listed always moves, to the added hosts or the staying ones in the proportion
    /// that evens the load. A move is a reconnect with the same session, made once every
    /// request already sent has its reply (requests made meanwhile wait for the new
    /// connection), so it fails no request; watches are restored. While disconnected, the
    /// next round of attempts uses the new list.
    ///
    /// A [`Warden`](crate::Warden) calls this by itself when it follows the ensemble (see
    /// [`WardenConfig::follow_ensemble`](crate::WardenConfig::follow_ensemble)).
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] when `hosts` does not parse or names no host, and
    /// [`Error::InvalidArgument`] when it ends in a chroot other than this client's; nothing
    /// changes then.
    pub fn update_hosts(&self, hosts: &str) -> Result<()> {
        let parsed = ConnectString::parse(hosts)?;
        if !parsed.chroot.is_empty() && parsed.chroot != self.inner.chroot {
            return Err(Error::InvalidArgument(format!(
                "update_hosts: the chroot {:?} differs from the client's {:?}; a session keeps its chroot",
                parsed.chroot.prefix().unwrap_or("/"),
                self.inner.chroot.prefix().unwrap_or("/")
            )));
        }
        self.set_hosts(parsed.hosts);
        Ok(())
    }

    /// Replaces the host list (already parsed and non-empty).
    pub(crate) fn set_hosts(&self, hosts: Vec<HostPort>) {
        self.inner.hosts.send_if_modified(|current| {
            if *current == hosts {
                false
            } else {
                *current = hosts;
                true
            }
        });
    }

    /// The chroot applied to every path, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.inner.chroot.prefix()
    }

    /// Waits until the session is connected (to a read-write or read-only server).
    ///
    /// # Errors
    /// The error that ended the session if it ends first.
    pub async fn wait_connected(&self) -> Result<()> {
        let mut state = self.state();
        loop {
            let current = state.borrow_and_update().state;
            if current.is_connected() {
                return Ok(());
            }
            if current.is_terminal() {
                return Err(self.terminal_error());
            }
            if state.changed().await.is_err() {
                return Err(self.terminal_error());
            }
        }
    }

    /// Closes the session on the server (its ephemeral nodes go at once) and ends the task.
    /// Every other clone then fails with [`Error::Closed`]. Closing twice is harmless.
    ///
    /// # Errors
    /// None in practice: a session that already ended counts as closed.
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .commands
            .send(Command::Close { reply: tx })
            .is_err()
        {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// The error that ended the session (or `Closed` if it has not recorded one).
    pub(crate) fn terminal_error(&self) -> Error {
        self.inner.shared.terminal_error().unwrap_or(Error::Closed)
    }

    pub(crate) fn next_watch_id(&self) -> u64 {
        self.inner.watch_ids.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn weak_commands(&self) -> mpsc::WeakUnboundedSender<Command> {
        self.inner.commands.downgrade()
    }

    /// Validates a client path and gives its server form (borrowed when there is no chroot).
    pub(crate) fn server_path<'p>(&self, path: &'p str, sequential: bool) -> Result<Cow<'p, str>> {
        validate_path(path, sequential)?;
        Ok(if self.inner.chroot.is_empty() {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(self.inner.chroot.apply(path))
        })
    }

    /// Strips the chroot from a path the server returned.
    pub(crate) fn client_path(&self, server_path: String) -> String {
        self.inner.chroot.strip_owned(server_path)
    }

    /// Encodes a request, queues it on the session and returns the receiver of its reply.
    pub(crate) fn send<'r, R: Jute<'r>>(
        &self,
        op: OpCode,
        record: &R,
        size_hint: usize,
        on_reply: OnReply,
        span_path: &str,
    ) -> Result<oneshot::Receiver<Result<Reply>>> {
        // Encoded and size-checked here, so the caller learns of a request too large before
        // anything is queued; the session writes the header (with the xid) when it sends it.
        let body =
            encode_body(record, size_hint, self.inner.max_frame_len).map_err(|e| match e {
                FrameError::TooLarge { len, limit } => Error::DataTooLarge { len, limit },
                other => Error::from(other),
            })?;
        let (reply, rx) = oneshot::channel();
        let span = tracing::trace_span!(
            "zk_request",
            op = op.name(),
            path = span_path,
            xid = tracing::field::Empty
        );
        self.inner
            .commands
            .send(Command::Request(Box::new(Request {
                op,
                body,
                reply,
                on_reply,
                span,
            })))
            .map_err(|_| self.terminal_error())?;
        Ok(rx)
    }
}

/// Waits for a reply sent with [`Client::send`].
pub(crate) async fn await_reply(sent: Result<oneshot::Receiver<Result<Reply>>>) -> Result<Reply> {
    match sent?.await {
        Ok(result) => result,
        // The task answers every request before it goes away; this is a task that died.
        Err(_) => Err(Error::Closed),
    }
}

/// Decodes a reply body that must hold exactly one `T`.
pub(crate) fn decode<T: for<'a> Jute<'a>>(reply: &Reply) -> Result<T> {
    Ok(decode_exact(&reply.body)?)
}

/// Ends session `session_id` on the servers of `connect_string`, from a new connection that
/// sends its handshake and a close request in one write (so another connection of the session
/// cannot get in between). Returns whether the session was closed or had already expired.
///
/// Useful to end a session whose client is gone (its ephemeral nodes go at once, not at the
/// server's timeout), and for fault injection.
///
/// # Errors
/// [`Error::InvalidConnectString`]; [`Error::ConnectFailed`] when no server answered within
/// `timeout`.
pub async fn close_session(
    connect_string: &str,
    session_id: SessionId,
    password: &SessionPassword,
    timeout: Duration,
) -> Result<super::SessionEnd> {
    super::ClientBuilder::new(connect_string)
        .close_session(session_id, password, timeout)
        .await
}
