//! The session task: the one owner of the socket and of all session state.
//!
//! It alternates between two phases. *Connecting*: try hosts in shuffled order until a
//! handshake succeeds, holding requests that arrive meanwhile. *Serving*: write requests as
//! they come (everything queued goes out in one write), read replies and notifications (many
//! per read), match replies to the queue of pending xids, ping when idle, and declare the
//! connection dead after two thirds of the session timeout without a byte from the server.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, trace, warn};

use super::config::{SessionConfig, Timers};
use super::connect::{self, AttemptError, Established, Handshake};
use super::rw_probe::Seeker;
use super::reader::{FrameReader, READ_CHUNK};
use super::shared::Shared;
use super::transport::Transport;
use crate::client::command::{Command, OnReply, Reply, Request};
use crate::client::state::{SessionId, SessionPassword, SessionState};
use crate::client::watch::{WatchKind, WatchRegistry, WatchedEvent};
use crate::error::Error;
use crate::proto::request::{EncodedBody, NoBody, encode_request};
use crate::proto::jute::{Jute, Reader, decode_exact};
use crate::proto::opcode::{XID_AUTH, XID_NOTIFICATION, XID_PING, XID_SET_WATCHES};
use crate::proto::records::{
    AuthPacket, ReplyHeader, Secret, SetWatches2, WatcherEvent, WatchesRequest,
};
use crate::proto::{ErrorCode, EventType, KeeperState, OpCode, WatcherType};

/// Largest SetWatches2 packet we send; more watches are split over several packets.
const SET_WATCHES_CHUNK: usize = 128 * 1024;
/// Commands taken from the channel in one go before writing them out.
const COMMAND_BATCH: usize = 4096;

/// How serving one connection ended.
enum Exit {
    /// The connection is gone; the session may live on: reconnect.
    Reconnect(String),
    /// The session is over.
    Terminal(Error),
}

impl From<Error> for Exit {
    fn from(e: Error) -> Self {
        Exit::Terminal(e)
    }
}

/// What woke the serving loop.
enum Wake {
    /// A read completed (0 bytes: the server closed the connection).
    Read(std::io::Result<usize>),
    /// A command from a handle (`None`: every handle is gone).
    Command(Option<Command>),
    /// The socket can take more of the send buffer.
    Writable,
    /// The connection failed (over TLS: reading or writing).
    Failed(String),
    /// A timer: read timeout or ping.
    Timer,
    /// While read-only: the background probe found a read-write server.
    ReadWriteFound(crate::client::connect_string::HostPort),
}

/// A request written to the server, waiting for its reply.
struct Pending {
    xid: i32,
    op: OpCode,
    reply: Option<oneshot::Sender<Result<Reply, Error>>>,
    on_reply: OnReply,
    span: tracing::Span,
}

/// An auth packet written to the server, waiting for its reply (auth replies carry xid -4 and
/// can overtake other replies, so they have their own queue).
struct PendingAuth {
    scheme: String,
    auth: Vec<u8>,
    /// `None` for credentials re-sent after a reconnect.
    reply: Option<oneshot::Sender<Result<(), Error>>>,
}

/// Something waiting for a connection.
enum Held {
    Request(Request),
    Auth {
        scheme: String,
        auth: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// One live connection.
struct Conn {
    stream: Transport,
    reader: FrameReader,
    wbuf: BytesMut,
    pending: VecDeque<Pending>,
    pending_auth: VecDeque<PendingAuth>,
    last_recv: Instant,
    last_send: Instant,
}

impl Conn {
    fn new(est: Established) -> Conn {
        let now = Instant::now();
        let mut reader = est.reader;
        reader.reserve_chunk();
        Conn {
            stream: est.stream,
            reader,
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            pending: VecDeque::new(),
            pending_auth: VecDeque::new(),
            last_recv: now,
            last_send: now,
        }
    }

    /// Writes as much of the send buffer as the socket takes without blocking. (A TLS stream
    /// writes while the serving loop waits instead: see [`transport::tls_io`].)
    fn flush(&mut self) -> Result<(), Exit> {
        let Some(stream) = self.stream.as_plain() else {
            return Ok(());
        };
        while !self.wbuf.is_empty() {
            match stream.try_write(&self.wbuf) {
                Ok(0) => return Err(Exit::Reconnect("socket accepted no bytes".into())),
                Ok(n) => {
                    self.wbuf.advance(n);
                    self.last_send = Instant::now();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(Exit::Reconnect(format!("write failed: {e}"))),
            }
        }
        Ok(())
    }

    fn next_deadline(&self, timers: &Timers) -> Instant {
        (self.last_recv + timers.read).min(self.last_send + timers.ping)
    }
}

/// The task behind a [`Client`](crate::client::Client).
pub(crate) struct SessionTask {
    config: SessionConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    session_id: SessionId,
    password: SessionPassword,
    timers: Timers,
    last_zxid: i64,
    /// When a server last answered this session (a handshake or any frame).
    last_heard: Instant,
    ever_connected: bool,
    /// The host of the connection that just died: tried last in the next round, so a dead
    /// server does not eat the time the session has left before the healthy ones are tried.
    last_host: Option<crate::client::connect_string::HostPort>,
    /// Whether a read-write server has ever accepted this session. A session a read-only
    /// server created is known to that server alone: it is not offered to the next server
    /// (a new session is asked for instead), as ZooKeeper's own client does.
    seen_rw: bool,
    /// A host found read-write while connected read-only: tried first on the next round.
    prefer_host: Option<crate::client::connect_string::HostPort>,
    /// Looks for a read-write server while the connection is read-only.
    rw_seek: Seeker,
    next_xid: i32,
    watches: WatchRegistry,
    /// Credentials the server accepted, re-sent after every reconnect.
    auth: Vec<(String, Vec<u8>)>,
    held: VecDeque<Held>,
    /// Set once a close was requested; the reply goes here.
    closing: Option<Option<oneshot::Sender<Result<(), Error>>>>,
}

impl SessionTask {
    pub(crate) fn new(
        config: SessionConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        shared: Arc<Shared>,
    ) -> Self {
        let (session_id, password) = config.resume.clone().unwrap_or_default();
        let auth = config.auth.clone();
        // A resumed session was made by some server; assume a read-write one.
        let seen_rw = config.resume.is_some();
        SessionTask {
            timers: Timers::new(config.session_timeout),
            config,
            commands,
            shared,
            session_id,
            password,
            last_zxid: 0,
            last_heard: Instant::now(),
            ever_connected: false,
            last_host: None,
            seen_rw,
            prefer_host: None,
            rw_seek: Seeker::idle(),
            next_xid: 1,
            watches: WatchRegistry::default(),
            auth,
            held: VecDeque::new(),
            closing: None,
        }
    }

    /// Runs the session until it ends.
    pub(crate) async fn run(mut self) {
        let cause = loop {
            let est = match self.connect_phase().await {
                Ok(est) => est,
                Err(cause) => break cause,
            };
            match self.serve(est).await {
                Exit::Reconnect(reason) => {
                    info!(session_id = %self.session_id, %reason, "connection lost; trying the next host");
                    if let Some(reply) = self.closing.take() {
                        // Closing and the connection went away: the close is as done as it gets.
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(()));
                        }
                        break Error::Closed;
                    }
                }
                Exit::Terminal(cause) => break cause,
            }
        };
        self.terminate(cause);
    }

    fn next_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        xid
    }

    // ----- connecting -------------------------------------------------------------------

    /// The instant past which this phase must give up: the connect timeout for a first
    /// session, or the session's life (no server heard for the whole timeout) for an
    /// existing one.
    fn give_up_at(&self, phase_start: Instant) -> Instant {
        if self.session_id.0 == 0 {
            phase_start + self.config.connect_timeout
        } else {
            self.last_heard + self.timers.session
        }
    }

    fn give_up_error(&self, last_error: &str, tls_error: Option<&str>) -> Error {
        if let (0, Some(reason)) = (self.session_id.0, tls_error) {
            Error::Tls {
                hosts: self.config.hosts.iter().map(ToString::to_string).collect(),
                timeout_ms: self.config.connect_timeout.as_millis() as u64,
                reason: reason.to_owned(),
            }
        } else if self.session_id.0 == 0 {
            Error::ConnectFailed {
                hosts: self.config.hosts.iter().map(ToString::to_string).collect(),
                timeout_ms: self.config.connect_timeout.as_millis() as u64,
                last_error: last_error.to_owned(),
            }
        } else {
            warn!(session_id = %self.session_id, "no server answered for the whole session timeout; session presumed expired");
            Error::SessionExpired
        }
    }

    async fn connect_phase(&mut self) -> Result<Established, Error> {
        let phase_start = Instant::now();
        let mut backoff = self.config.min_backoff;
        let mut last_error = String::from("no attempt made");
        // A TLS refusal is a setting to fix, not an outage to wait out: if one happened in
        // this phase, it is what a failure reports.
        let mut last_tls_error: Option<String> = None;
        // Cloned (reference counts) so attempts can run while commands are held.
        let security = self.config.security.clone();
        loop {
            let mut order = self.config.hosts.clone();
            fastrand::shuffle(&mut order);
            if let Some(last) = self.last_host.take() {
                if let Some(i) = order.iter().position(|h| *h == last) {
                    let host = order.remove(i);
                    order.push(host);
                }
            }
            if let Some(preferred) = self.prefer_host.take() {
                if let Some(i) = order.iter().position(|h| *h == preferred) {
                    let host = order.remove(i);
                    order.insert(0, host);
                }
            }
            let per_host = Timers::connect_per_host(self.timers.session, order.len());
            for host in &order {
                let give_up = self.give_up_at(phase_start);
                let now = Instant::now();
                if now >= give_up {
                    return Err(self.give_up_error(&last_error, last_tls_error.as_deref()));
                }
                let budget = per_host.min(give_up - now);
                let (session_id, password) = self.session_to_offer();
                let hs = Handshake {
                    last_zxid: self.last_zxid,
                    timeout: self.config.session_timeout,
                    session_id,
                    password,
                    read_only: self.config.read_only,
                    max_frame_len: self.config.max_frame_len,
                    sasl: self.config.sasl.clone(),
                };
                debug!(%host, ?budget, session_id = %self.session_id, "connecting");
                let attempt = tokio::time::timeout(budget, connect::attempt(host, &hs, &security));
                tokio::pin!(attempt);
                let outcome = loop {
                    tokio::select! {
                        outcome = &mut attempt => break outcome,
                        command = self.commands.recv() => self.hold(command)?,
                    }
                };
                match outcome {
                    Ok(Ok(est)) => {
                        self.last_host = Some(host.clone());
                        return Ok(est);
                    }
                    Ok(Err(AttemptError::Expired)) => {
                        info!(session_id = %self.session_id, "server reports the session expired");
                        return Err(Error::SessionExpired);
                    }
                    Ok(Err(AttemptError::AuthFailed)) => {
                        // The same credentials would be refused by every server again.
                        return Err(Error::AuthFailed);
                    }
                    Ok(Err(AttemptError::Failed(reason))) => {
                        debug!(%reason, "connection attempt failed");
                        last_error = reason;
                    }
                    Ok(Err(AttemptError::Tls(reason))) => {
                        warn!(%reason, "TLS refused");
                        last_error.clone_from(&reason);
                        last_tls_error = Some(reason);
                    }
                    Err(_) => {
                        last_error = format!("{host}: no handshake within {budget:?}");
                        debug!(%last_error, "connection attempt timed out");
                    }
                }
            }
            // A whole round failed: whatever waited for a connection fails now (the caller's
            // retry policy decides what next), then pause before the next round.
            self.fail_held(&Error::NotConnected);
            let give_up = self.give_up_at(phase_start);
            let pause = jitter(backoff);
            backoff = (backoff * 2).min(self.config.max_backoff);
            let wake = (Instant::now() + pause).min(give_up);
            let sleep = tokio::time::sleep_until(wake);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    command = self.commands.recv() => self.hold(command)?,
                }
            }
        }
    }

    /// The session id and password the next handshake offers: ours, or zeros (a new session)
    /// while only read-only servers have known it.
    fn session_to_offer(&self) -> (SessionId, SessionPassword) {
        if self.seen_rw {
            (self.session_id, self.password.clone())
        } else {
            (SessionId(0), SessionPassword::default())
        }
    }

    /// Handles a command while no connection is up.
    fn hold(&mut self, command: Option<Command>) -> Result<(), Error> {
        match command {
            None => Err(Error::Closed),
            Some(Command::Request(request)) => {
                self.held.push_back(Held::Request(request));
                Ok(())
            }
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => {
                self.held.push_back(Held::Auth {
                    scheme,
                    auth,
                    reply,
                });
                Ok(())
            }
            Some(Command::Unwatch {
                id,
                kind,
                server_path,
            }) => {
                // No server-side removal needed: SetWatches on reconnect will not mention it.
                self.watches.unregister(id, kind, &server_path);
                Ok(())
            }
            Some(Command::Close { reply }) => {
                self.closing = Some(Some(reply));
                Err(Error::Closed)
            }
        }
    }

    fn fail_held(&mut self, cause: &Error) {
        for held in self.held.drain(..) {
            match held {
                Held::Request(r) => {
                    let _ = r.reply.send(Err(cause.clone()));
                }
                Held::Auth { reply, .. } => {
                    let _ = reply.send(Err(cause.clone()));
                }
            }
        }
    }

    // ----- serving ----------------------------------------------------------------------

    async fn serve(&mut self, est: Established) -> Exit {
        let new_session = self.session_id != est.session_id;
        if new_session && self.session_id.0 != 0 {
            // Only a session no read-write server knew is replaced this way; see `seen_rw`.
            info!(old_session_id = %self.session_id, new_session_id = %est.session_id, "read-only session replaced by a new session");
        }
        self.session_id = est.session_id;
        self.password = est.password.clone();
        self.timers = Timers::new(est.negotiated);
        self.last_heard = Instant::now();
        self.shared.heard_at(self.last_heard);
        self.ever_connected = true;
        let addr = est.addr;
        let read_only = est.read_only;
        self.seen_rw |= !read_only;
        self.shared.update(|d| {
            d.session_id = est.session_id;
            d.password = est.password.clone();
            d.negotiated_timeout = Some(est.negotiated);
            d.server = Some(addr);
        });
        if new_session {
            tracing::Span::current().record("session_id", tracing::field::display(self.session_id));
        }
        info!(session_id = %self.session_id, %addr, timeout = ?est.negotiated, read_only, new_session, "connected");
        let mut conn = Conn::new(est);

        self.write_prelude(&mut conn);
        self.shared.set_state(
            if read_only {
                SessionState::ConnectedReadOnly
            } else {
                SessionState::Connected
            },
            self.session_id,
        );
        self.rw_seek = if read_only {
            Seeker::start(&self.config.hosts, self.last_host.as_ref())
        } else {
            Seeker::idle()
        };
        let exit = self.serve_loop(&mut conn).await;
        self.rw_seek = Seeker::idle();
        match exit {
            Exit::Reconnect(reason) => {
                // The state changes before anyone hears of a failed request, so whoever gets a
                // ConnectionLoss already sees Disconnected.
                self.shared.update(|d| d.server = None);
                if self.closing.is_none() {
                    self.shared
                        .set_state(SessionState::Disconnected, self.session_id);
                }
                fail_pending(&mut conn, &Error::ConnectionLoss);
                Exit::Reconnect(reason)
            }
            Exit::Terminal(cause) => {
                fail_pending(&mut conn, &cause);
                Exit::Terminal(cause)
            }
        }
    }

    /// Re-sends credentials and watches, then everything held while disconnected.
    fn write_prelude(&mut self, conn: &mut Conn) {
        for (scheme, auth) in self.auth.clone() {
            write_auth(conn, &scheme, &auth, self.config.max_frame_len);
            conn.pending_auth.push_back(PendingAuth {
                scheme,
                auth,
                reply: None,
            });
        }
        if !self.watches.is_empty() {
            self.write_set_watches(conn);
        }
        while let Some(held) = self.held.pop_front() {
            match held {
                Held::Request(request) => self.write_request(conn, request),
                Held::Auth {
                    scheme,
                    auth,
                    reply,
                } => self.write_new_auth(conn, scheme, auth, reply),
            }
        }
    }

    fn write_set_watches(&mut self, conn: &mut Conn) {
        let paths = self.watches.paths();
        let mut chunk = SetWatches2 {
            relative_zxid: self.last_zxid,
            data_watches: Vec::new(),
            exist_watches: Vec::new(),
            child_watches: Vec::new(),
            persistent_watches: Vec::new(),
            persistent_recursive_watches: Vec::new(),
        };
        let mut chunk_len = 0;
        let lists = [
            (0, paths.data),
            (1, paths.exist),
            (2, paths.child),
            (3, paths.persistent),
            (4, paths.recursive),
        ];
        for (which, list) in lists {
            for path in list {
                if chunk_len + path.len() + 4 > SET_WATCHES_CHUNK {
                    write_set_watches_packet(conn, &chunk, self.config.max_frame_len);
                    chunk.data_watches.clear();
                    chunk.exist_watches.clear();
                    chunk.child_watches.clear();
                    chunk.persistent_watches.clear();
                    chunk.persistent_recursive_watches.clear();
                    chunk_len = 0;
                }
                chunk_len += path.len() + 4;
                match which {
                    0 => chunk.data_watches.push(path),
                    1 => chunk.exist_watches.push(path),
                    2 => chunk.child_watches.push(path),
                    3 => chunk.persistent_watches.push(path),
                    _ => chunk.persistent_recursive_watches.push(path),
                }
            }
        }
        if chunk_len > 0 {
            write_set_watches_packet(conn, &chunk, self.config.max_frame_len);
        }
    }

    fn write_request(&mut self, conn: &mut Conn, request: Request) {
        let xid = self.next_xid();
        // The body was checked against the limit when it was queued.
        let _ = encode_request(
            &mut conn.wbuf,
            xid,
            request.op,
            &EncodedBody(&request.body),
            self.config.max_frame_len,
        );
        request.span.record("xid", xid);
        trace!(parent: &request.span, xid, op = request.op.name(), "request written");
        conn.pending.push_back(Pending {
            xid,
            op: request.op,
            reply: Some(request.reply),
            on_reply: request.on_reply,
            span: request.span,
        });
    }

    fn write_new_auth(
        &mut self,
        conn: &mut Conn,
        scheme: String,
        auth: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        write_auth(conn, &scheme, &auth, self.config.max_frame_len);
        conn.pending_auth.push_back(PendingAuth {
            scheme,
            auth,
            reply: Some(reply),
        });
    }

    /// Sends a request whose reply nobody awaits (watch removal after a handle was dropped).
    fn write_internal(&mut self, conn: &mut Conn, op: OpCode, record: &WatchesRequest<'_>) {
        let xid = self.next_xid();
        if encode_request(&mut conn.wbuf, xid, op, record, self.config.max_frame_len).is_err() {
            return;
        }
        conn.pending.push_back(Pending {
            xid,
            op,
            reply: None,
            on_reply: OnReply::Nothing,
            span: tracing::Span::none(),
        });
    }

    fn handle_command(&mut self, conn: &mut Conn, command: Option<Command>) -> Result<(), Exit> {
        match command {
            Some(Command::Request(request)) => {
                if request.op == OpCode::CloseSession {
                    self.closing.get_or_insert(None);
                }
                self.write_request(conn, request);
            }
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => self.write_new_auth(conn, scheme, auth, reply),
            Some(Command::Unwatch {
                id,
                kind,
                server_path,
            }) => self.unwatch(conn, id, kind, &server_path),
            Some(Command::Close { reply }) => self.start_close(conn, Some(reply)),
            None => {
                // Every handle is gone: nobody can use the session any more, so end it now
                // rather than leave its ephemerals until the timeout.
                if self.closing.is_none() {
                    self.start_close(conn, None);
                }
            }
        }
        Ok(())
    }

    /// Forgets a dropped watcher and removes the server's watch once nothing of this session
    /// needs it any more.
    fn unwatch(&mut self, conn: &mut Conn, id: u64, kind: WatchKind, server_path: &str) {
        let Some(mut watcher_type) = self.watches.unregister(id, kind, server_path) else {
            return;
        };
        if matches!(
            watcher_type,
            WatcherType::Persistent | WatcherType::PersistentRecursive
        ) {
            // Servers before 3.9 remove persistent watches only as "any": do that when
            // nothing else is watched on the path, else leave the server's watch in place
            // (its events then find no local watcher).
            if self.watches.watches_path(server_path) {
                return;
            }
            watcher_type = WatcherType::Any;
        }
        if watch_in_flight(conn, server_path, watcher_type) {
            return;
        }
        let record = WatchesRequest {
            path: server_path,
            kind: watcher_type.code(),
        };
        self.write_internal(conn, OpCode::RemoveWatches, &record);
    }

    fn start_close(&mut self, conn: &mut Conn, reply: Option<oneshot::Sender<Result<(), Error>>>) {
        if let Some(existing) = &mut self.closing {
            // Already closing: answer this one when the first completes.
            if let (None, Some(reply)) = (existing.as_ref(), reply) {
                *existing = Some(reply);
            }
            return;
        }
        self.closing = Some(reply);
        let xid = self.next_xid();
        let _ = encode_request(
            &mut conn.wbuf,
            xid,
            OpCode::CloseSession,
            &NoBody,
            self.config.max_frame_len,
        );
        conn.pending.push_back(Pending {
            xid,
            op: OpCode::CloseSession,
            reply: None,
            on_reply: OnReply::Nothing,
            span: tracing::Span::none(),
        });
    }

    async fn serve_loop(&mut self, conn: &mut Conn) -> Exit {
        let timers = self.timers;
        let sleep = tokio::time::sleep_until(conn.next_deadline(&timers));
        tokio::pin!(sleep);
        let mut commands_open = true;
        loop {
            if let Err(exit) = conn.flush() {
                return exit;
            }
            conn.reader.reserve_chunk();
            let wake = match &mut conn.stream {
                Transport::Plain(stream) => {
                    let want_write = !conn.wbuf.is_empty();
                    // Read through AsyncRead rather than `try_read`: after a short read tokio
                    // knows the socket is drained and waits for the next readiness event,
                    // instead of making us find out with a read that returns EAGAIN (one
                    // syscall per wake-up saved).
                    let (mut reader, writer) = stream.split();
                    tokio::select! {
                        biased;
                        read = reader.read_buf(conn.reader.buffer_mut()) => Wake::Read(read),
                        command = self.commands.recv(), if commands_open => Wake::Command(command),
                        ready = writer.as_ref().writable(), if want_write => match ready {
                            Ok(()) => Wake::Writable,
                            Err(e) => Wake::Failed(format!("socket error: {e}")),
                        },
                        () = &mut sleep => Wake::Timer,
                        host = self.rw_seek.found() => Wake::ReadWriteFound(host),
                    }
                }
                #[cfg(feature = "tls")]
                Transport::Tls(stream) => {
                    let io = super::transport::tls_io(
                        stream,
                        &mut conn.wbuf,
                        conn.reader.buffer_mut(),
                        &mut conn.last_send,
                    );
                    tokio::select! {
                        biased;
                        read = io => match read {
                            Ok(n) => Wake::Read(Ok(n)),
                            Err(e) => Wake::Failed(format!("TLS connection failed: {e}")),
                        },
                        command = self.commands.recv(), if commands_open => Wake::Command(command),
                        () = &mut sleep => Wake::Timer,
                        host = self.rw_seek.found() => Wake::ReadWriteFound(host),
                    }
                }
            };
            match wake {
                Wake::Read(Ok(0)) => {
                    // Replies that arrived before the close still count.
                    if let Err(exit) = self.process_frames(conn) {
                        return exit;
                    }
                    return Exit::Reconnect("server closed the connection".into());
                }
                Wake::Read(Ok(_)) => {
                    let now = Instant::now();
                    conn.last_recv = now;
                    self.last_heard = now;
                    self.shared.heard_at(now);
                    if let Err(exit) = self.process_frames(conn) {
                        return exit;
                    }
                }
                Wake::Read(Err(e)) => return Exit::Reconnect(format!("read failed: {e}")),
                Wake::Failed(reason) => return Exit::Reconnect(reason),
                Wake::Command(command) => {
                    commands_open = command.is_some();
                    if let Err(exit) = self.handle_command(conn, command) {
                        return exit;
                    }
                    // Take whatever else is queued so it all goes out in one write.
                    for _ in 0..COMMAND_BATCH {
                        match self.commands.try_recv() {
                            Ok(command) => {
                                if let Err(exit) = self.handle_command(conn, Some(command)) {
                                    return exit;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Wake::Writable => {}
                Wake::Timer => {
                    let now = Instant::now();
                    if now >= conn.last_recv + timers.read {
                        return Exit::Reconnect(format!(
                            "no reply from the server for {:?} (read timeout)",
                            now - conn.last_recv
                        ));
                    }
                    if now >= conn.last_send + timers.ping {
                        write_ping(conn);
                        conn.last_send = now;
                    }
                    sleep.as_mut().reset(conn.next_deadline(&timers));
                }
                Wake::ReadWriteFound(host) => {
                    // Requests still in flight on the read-only server fail with
                    // ConnectionLoss (as on any reconnect); the next round tries `host` first.
                    let reason =
                        format!("read-write server {host} found; leaving the read-only server");
                    self.prefer_host = Some(host);
                    return Exit::Reconnect(reason);
                }
            }
        }
    }

    fn process_frames(&mut self, conn: &mut Conn) -> Result<(), Exit> {
        loop {
            let frame = match conn.reader.next_buffered() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => return Err(Exit::Reconnect(format!("bad frame from server: {e}"))),
            };
            self.handle_frame(conn, frame)?;
        }
    }

    fn handle_frame(&mut self, conn: &mut Conn, frame: Bytes) -> Result<(), Exit> {
        let mut reader = Reader::new(&frame);
        let header = ReplyHeader::read(&mut reader)
            .map_err(|e| Exit::Reconnect(format!("bad reply header: {e}")))?;
        let body = frame.slice(reader.position()..);
        if header.zxid > self.last_zxid {
            self.last_zxid = header.zxid;
        }
        if header.err == ErrorCode::SessionClosedRequireSaslAuth.code() {
            // The server requires SASL and this session did not authenticate: it answers
            // whatever comes first with this code and closes. Reconnecting cannot help.
            warn!(session_id = %self.session_id, "server requires SASL authentication");
            return Err(Exit::Terminal(Error::AuthFailed));
        }
        match header.xid {
            XID_NOTIFICATION => self.handle_notification(header.zxid, &body),
            // As for a request's reply (see handle_reply): the server no longer knows the
            // session, though this connection is still open. Nothing else would tell us.
            XID_PING | XID_SET_WATCHES if ErrorCode::from_code(header.err).means_session_gone() => {
                warn!(session_id = %self.session_id, xid = header.xid, "server answered with session expired");
                Err(Exit::Terminal(Error::SessionExpired))
            }
            XID_PING => Ok(()),
            XID_AUTH => self.handle_auth_reply(conn, header.err),
            XID_SET_WATCHES => {
                if header.err != 0 {
                    warn!(err = header.err, "server refused to restore watches");
                }
                Ok(())
            }
            xid => self.handle_reply(conn, xid, header, body),
        }
    }

    fn handle_reply(
        &mut self,
        conn: &mut Conn,
        xid: i32,
        header: ReplyHeader,
        body: Bytes,
    ) -> Result<(), Exit> {
        let Some(pending) = conn.pending.pop_front() else {
            return Err(Exit::Reconnect(format!(
                "reply with xid {xid} to no request"
            )));
        };
        if pending.xid != xid {
            let expected = pending.xid;
            conn.pending.push_front(pending);
            return Err(Exit::Reconnect(format!(
                "reply out of order: expected xid {expected}, got {xid}"
            )));
        }
        let code = ErrorCode::from_code(header.err);
        trace!(parent: &pending.span, xid, op = pending.op.name(), err = header.err, "reply");
        match pending.on_reply {
            OnReply::Nothing => {}
            OnReply::RegisterWatch {
                id,
                server_path,
                on_ok,
                on_no_node,
                sink,
            } => {
                let kind = match code {
                    ErrorCode::Ok => Some(on_ok),
                    ErrorCode::NoNode => on_no_node,
                    _ => None,
                };
                if let Some(kind) = kind {
                    // A handle dropped before this reply sent its Unwatch too early to find
                    // anything; undo the registration now, on the server too.
                    let abandoned = sink.is_closed();
                    self.watches.register(kind, server_path.clone(), id, sink);
                    if abandoned {
                        self.unwatch(conn, id, kind, &server_path);
                    }
                }
            }
            OnReply::RemoveLocalWatches {
                server_path,
                client_path,
                watcher_type,
            } => {
                if code == ErrorCode::Ok {
                    self.watches
                        .remove_all(&server_path, watcher_type, &client_path);
                }
            }
        }
        if let Some(reply) = pending.reply {
            let result = if code == ErrorCode::Ok {
                Ok(Reply {
                    zxid: header.zxid,
                    body,
                })
            } else if code == ErrorCode::UnknownSession {
                // The server's word for a session it has already closed.
                Err(Error::SessionExpired)
            } else {
                Err(Error::from_code(code))
            };
            let _ = reply.send(result);
        }
        if pending.op == OpCode::CloseSession {
            if let Some(Some(reply)) = self.closing.take() {
                let _ = reply.send(Ok(()));
            }
            return Err(Exit::Terminal(Error::Closed));
        }
        if code.means_session_gone() {
            // The quorum no longer knows this session, though this server let the connection
            // in (a follower can finish a reconnect that the leader validated just before the
            // session was closed). Such a connection is never closed by the server: end here.
            warn!(session_id = %self.session_id, xid, "server answered a request with session expired");
            return Err(Exit::Terminal(Error::SessionExpired));
        }
        Ok(())
    }

    fn handle_auth_reply(&mut self, conn: &mut Conn, err: i32) -> Result<(), Exit> {
        let pending = conn.pending_auth.pop_front();
        let code = ErrorCode::from_code(err);
        if code == ErrorCode::AuthFailed {
            if let Some(PendingAuth {
                reply: Some(reply), ..
            }) = pending
            {
                let _ = reply.send(Err(Error::AuthFailed));
            }
            warn!(session_id = %self.session_id, "authentication failed");
            return Err(Exit::Terminal(Error::AuthFailed));
        }
        let Some(pending) = pending else {
            warn!("auth reply with no auth request");
            return Ok(());
        };
        if code == ErrorCode::Ok {
            let known = self
                .auth
                .iter()
                .any(|(s, a)| *s == pending.scheme && *a == pending.auth);
            if !known {
                self.auth.push((pending.scheme, pending.auth));
            }
            if let Some(reply) = pending.reply {
                let _ = reply.send(Ok(()));
            }
        } else if let Some(reply) = pending.reply {
            let _ = reply.send(Err(Error::from_code(code)));
        }
        Ok(())
    }

    fn handle_notification(&mut self, zxid: i64, body: &Bytes) -> Result<(), Exit> {
        let event: WatcherEvent =
            decode_exact(body).map_err(|e| Exit::Reconnect(format!("bad notification: {e}")))?;
        let Some(event_type) = EventType::from_code(event.kind) else {
            warn!(kind = event.kind, path = %event.path, "ignoring notification of unknown type");
            return Ok(());
        };
        if event_type == EventType::None {
            return match KeeperState::from_code(event.state) {
                Some(KeeperState::Expired) => Err(Exit::Terminal(Error::SessionExpired)),
                Some(KeeperState::AuthFailed) => Err(Exit::Terminal(Error::AuthFailed)),
                _ => Ok(()),
            };
        }
        let client_path = self.config.chroot.strip_owned(event.path.clone());
        trace!(?event_type, path = %client_path, "watch event");
        let delivered = WatchedEvent {
            event_type,
            path: client_path,
            zxid,
        };
        self.watches.dispatch(event_type, &event.path, &delivered);
        Ok(())
    }

    // ----- the end ----------------------------------------------------------------------

    fn terminate(mut self, cause: Error) {
        let state = match cause {
            Error::SessionExpired => SessionState::Expired,
            Error::AuthFailed => SessionState::AuthFailed,
            _ => SessionState::Closed,
        };
        info!(session_id = %self.session_id, ?state, %cause, "session ended");
        self.shared.update(|d| {
            d.terminal = Some(cause.clone());
            d.server = None;
        });
        self.fail_held(&cause);
        self.watches.fail_all(&cause);
        if let Some(Some(reply)) = self.closing.take() {
            let _ = reply.send(if state == SessionState::Closed {
                Ok(())
            } else {
                Err(cause.clone())
            });
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Request(r) => {
                    let _ = r.reply.send(Err(cause.clone()));
                }
                Command::Auth { reply, .. } => {
                    let _ = reply.send(Err(cause.clone()));
                }
                Command::Close { reply } => {
                    let _ = reply.send(Ok(()));
                }
                Command::Unwatch { .. } => {}
            }
        }
        // Published last, so whoever sees the state also finds the cause.
        self.shared.set_state(state, self.session_id);
    }
}

/// Whether a watching request still waiting for its reply has (re)set a server watch on
/// `server_path` that removing `watcher_type` there would take away from its live watcher.
/// (The server keeps persistent watches in the same entries as one-shot ones.)
fn watch_in_flight(conn: &Conn, server_path: &str, watcher_type: WatcherType) -> bool {
    conn.pending.iter().any(|p| match &p.on_reply {
        OnReply::RegisterWatch {
            server_path: path,
            on_ok,
            sink,
            ..
        } if path == server_path && !sink.is_closed() => !matches!(
            (watcher_type, on_ok),
            (WatcherType::Data, WatchKind::Child)
                | (WatcherType::Children, WatchKind::Data | WatchKind::Exist)
        ),
        _ => false,
    })
}

fn fail_pending(conn: &mut Conn, cause: &Error) {
    for pending in conn.pending.drain(..) {
        if let Some(reply) = pending.reply {
            let _ = reply.send(Err(cause.clone()));
        }
    }
    for pending in conn.pending_auth.drain(..) {
        if let Some(reply) = pending.reply {
            let _ = reply.send(Err(cause.clone()));
        }
    }
}

fn write_ping(conn: &mut Conn) {
    // An empty body always fits.
    let _ = encode_request(&mut conn.wbuf, XID_PING, OpCode::Ping, &NoBody, usize::MAX);
}

fn write_auth(conn: &mut Conn, scheme: &str, auth: &[u8], max_frame_len: usize) {
    let packet = AuthPacket {
        kind: 0,
        scheme,
        auth: Secret(std::borrow::Cow::Borrowed(auth)),
    };
    // Credentials were size-checked when they were given.
    let _ = encode_request(&mut conn.wbuf, XID_AUTH, OpCode::Auth, &packet, max_frame_len);
}

fn write_set_watches_packet(conn: &mut Conn, record: &SetWatches2, max_frame_len: usize) {
    if encode_request(
        &mut conn.wbuf,
        XID_SET_WATCHES,
        OpCode::SetWatches2,
        record,
        max_frame_len,
    )
    .is_err()
    {
        warn!("watch list too large to restore in one packet; some watches are lost");
    }
}

/// A pause between 50% and 100% of `base`, so clients that lost the same server do not all
/// return at the same instant.
fn jitter(base: Duration) -> Duration {
    let millis = base.as_millis().max(1) as u64;
    Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
}
