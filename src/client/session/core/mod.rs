//! [`SessionCore`]: the session protocol as a state machine that does no I/O and reads no
//! clock.
//!
//! # Who owns what
//!
//! - **The core** (this module) owns everything the protocol decides: xids, the queue of
//!   requests waiting for replies (replies come back in request order), the pending auth
//!   packets, the watch registry, the last zxid seen, the credentials replayed after every
//!   reconnect, SetWatches / SetWatches2 and their chunking, the requests held while
//!   disconnected, the close, and every timer as a value (ping after T/3 without sending,
//!   read timeout after 2T/3 without hearing, client-side expiry at T since a server last
//!   answered, the time each connection attempt may take). It publishes the session's state to the handles
//!   ([`Shared`]) and answers them (oneshot and mpsc senders are not I/O).
//! - **The [connector](super::connector)** owns the host list (order, the failed host last,
//!   a found read-write host first), the transport, the handshake, SASL, the read-only probe
//!   and the pause between rounds.
//! - **The [driver](super::driver)** owns the socket and the clock: it reads bytes into the
//!   [frame reader](super::reader), writes what the core appended to its out buffer, and
//!   feeds the core its inputs with the current time.
//!
//! # Inputs and outputs
//!
//! Inputs: [`command`](SessionCore::command), [`connected`](SessionCore::connected),
//! [`received`](SessionCore::received) and [`frame`](SessionCore::frame),
//! [`sent`](SessionCore::sent), [`on_timer`](SessionCore::on_timer),
//! [`connection_lost`](SessionCore::connection_lost), and while connecting
//! [`attempt_failed`](SessionCore::attempt_failed) and
//! [`round_failed`](SessionCore::round_failed). Every time comes in as an argument.
//!
//! Outputs: bytes in [`out_mut`](SessionCore::out_mut), replies and events through the
//! handles' channels, [`next_deadline`](SessionCore::next_deadline) and
//! [`attempt_budget`](SessionCore::attempt_budget), and an [`Exit`] from any input that ends
//! the connection ("drop this connection, connect next") or the session.

mod connecting;
mod frames;
mod link;
mod probe;
mod set_watches;
#[cfg(test)]
mod tests;
mod watch_modes;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{info, trace};

use self::link::{Link, Pending, PendingAuth};
#[cfg(test)]
pub(crate) use self::probe::FIRST_PROBE_MAX;
use self::probe::ProbeSchedule;
use super::config::{SessionConfig, Timers};
use super::shared::Shared;
use crate::client::Credentials;
use crate::client::command::{Command, OnReply, Request};
use crate::client::path::Chroot;
use crate::client::server_watches::ServerWatches;
use crate::client::state::{SessionId, SessionPassword, SessionState};
use crate::client::watch::WatchRegistry;
use crate::error::{Cause, Error};
use crate::proto::OpCode;
use crate::proto::opcode::{XID_AUTH, XID_PING};
use crate::proto::records::{AuthPacket, Secret};
use crate::proto::request::{EncodedBody, NoBody, encode_request};

/// How an input ended the current connection.
#[derive(Debug)]
pub(crate) enum Exit {
    /// The connection is gone; the session may live on: connect to the next host.
    Reconnect(String),
    /// The session is over.
    Terminal(Error),
}

impl Exit {
    /// The error a session ends with when this exit comes while no connection is up (only
    /// a terminal one can).
    pub(crate) fn into_error(self) -> Error {
        match self {
            Exit::Terminal(cause) => cause,
            Exit::Reconnect(_) => Error::ConnectionLoss,
        }
    }
}

/// What the core needs from the session's settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The connect string's hosts, as named in errors.
    pub host_names: Vec<String>,
    pub chroot: Chroot,
    pub connect_timeout: Duration,
    pub max_frame_len: usize,
}

/// What a completed handshake established.
#[derive(Debug, Clone)]
pub(crate) struct Handshaken {
    pub session_id: SessionId,
    pub password: SessionPassword,
    pub negotiated: Duration,
    pub read_only: bool,
    pub addr: SocketAddr,
}

/// The session id and password the next handshake offers, and the last zxid seen.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub session_id: SessionId,
    pub password: SessionPassword,
    pub last_zxid: i64,
}

/// Something waiting for a connection.
enum Held {
    Request(Box<Request>),
    Auth {
        scheme: String,
        auth: Vec<u8>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// The session protocol: see the [module docs](self).
pub(crate) struct SessionCore {
    settings: Settings,
    shared: Arc<Shared>,
    session_id: SessionId,
    password: SessionPassword,
    timers: Timers,
    last_zxid: i64,
    /// When a server last answered this session (a handshake or any frame).
    last_heard: Instant,
    /// Whether a read-write server has ever accepted this session. A session a read-only
    /// server created is known to that server alone: it is not offered to the next server
    /// (a new session is asked for instead), as ZooKeeper's own client does.
    seen_rw: bool,
    next_xid: i32,
    watches: WatchRegistry,
    /// The persistent modes the server holds per watched path (see [`watch_modes`]).
    server_watches: ServerWatches,
    /// Credentials the server accepted, re-sent after every reconnect.
    auth: Credentials,
    held: VecDeque<Held>,
    /// Set once a close was requested; the reply goes here.
    closing: Option<Option<oneshot::Sender<Result<(), Error>>>>,
    /// The live connection, if any.
    link: Option<Link>,
    /// Bytes to write, in order.
    out: BytesMut,
    /// When the current connecting phase started.
    phase_start: Instant,
    /// The last attempt's failure, and the last TLS refusal, of this connecting phase.
    last_error: Cause,
    last_tls_error: Option<Cause>,
    /// How long the next re-attach probe may wait for its answer.
    probe_schedule: ProbeSchedule,
    /// Whether a server answered SetWatches2 `Unimplemented` (before 3.6): watches are then
    /// restored with SetWatches alone (see [`set_watches`]).
    set_watches2_refused: bool,
}

impl SessionCore {
    /// A session about to connect for the first time (or to resume `config.resume`).
    pub(crate) fn new(config: &SessionConfig, shared: Arc<Shared>, now: Instant) -> SessionCore {
        let (session_id, password) = config.resume.clone().unwrap_or_default();
        SessionCore {
            settings: Settings {
                host_names: config.hosts.iter().map(ToString::to_string).collect(),
                chroot: config.chroot.clone(),
                connect_timeout: config.connect_timeout,
                max_frame_len: config.max_frame_len,
            },
            shared,
            session_id,
            password,
            timers: Timers::new(config.session_timeout),
            last_zxid: 0,
            last_heard: now,
            // A resumed session was made by some server; assume a read-write one.
            seen_rw: config.resume.is_some(),
            next_xid: 1,
            watches: WatchRegistry::default(),
            server_watches: ServerWatches::default(),
            auth: config.auth.clone(),
            held: VecDeque::new(),
            closing: None,
            link: None,
            // Grows with the requests queued at once; an idle session keeps it small.
            out: BytesMut::new(),
            phase_start: now,
            last_error: Cause::new("no attempt made"),
            last_tls_error: None,
            probe_schedule: ProbeSchedule::new(config.session_timeout),
            set_watches2_refused: false,
        }
    }

    /// The bytes to write. The driver takes from the front as the socket accepts them.
    pub(crate) fn out_mut(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// The session id (0 before the first handshake).
    pub(crate) fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// What the next handshake offers: this session, or a new one while only read-only
    /// servers have known it.
    pub(crate) fn offer(&self) -> Offer {
        let (session_id, password) = if self.seen_rw {
            (self.session_id, self.password.clone())
        } else {
            (SessionId(0), SessionPassword::default())
        };
        Offer {
            session_id,
            password,
            last_zxid: self.last_zxid,
        }
    }

    fn next_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        xid
    }

    // ----- connection up ----------------------------------------------------------------

    /// A handshake completed at `now`: publishes the session, then queues the prelude
    /// (credentials, SetWatches, everything held) in that order. A re-attached session (not a
    /// new one) gets a probe after SetWatches and is published connected only once the
    /// server answers it (see [`probe`]).
    pub(crate) fn connected(&mut self, hs: &Handshaken, now: Instant) {
        let new_session = self.session_id != hs.session_id;
        if new_session && self.session_id.0 != 0 {
            // Only a session no read-write server knew is replaced this way; see `seen_rw`.
            info!(old_session_id = %self.session_id, new_session_id = %hs.session_id, "read-only session replaced by a new session");
        }
        self.session_id = hs.session_id;
        self.password = hs.password.clone();
        self.timers = Timers::new(hs.negotiated);
        self.last_heard = now;
        self.shared.heard_at(now);
        self.seen_rw |= !hs.read_only;
        self.shared.update(|d| {
            d.session_id = hs.session_id;
            d.password = hs.password.clone();
            d.negotiated_timeout = Some(hs.negotiated);
            d.server = Some(hs.addr);
        });
        if new_session {
            tracing::Span::current().record("session_id", tracing::field::display(self.session_id));
        }
        info!(session_id = %self.session_id, addr = %hs.addr, timeout = ?hs.negotiated, read_only = hs.read_only, new_session, "connected");
        self.out.clear();
        self.link = Some(Link::new(now));
        let state = if hs.read_only {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        };
        self.write_prelude();
        if new_session {
            self.shared.set_state(state, self.session_id);
        } else {
            self.send_probe(now, state);
        }
        self.write_held();
    }

    /// Re-sends credentials and watches.
    fn write_prelude(&mut self) {
        for (scheme, auth) in self.auth.clone() {
            self.write_auth(scheme, auth, None);
        }
        self.restore_watches();
    }

    /// Sends everything held while disconnected, in order.
    fn write_held(&mut self) {
        while let Some(held) = self.held.pop_front() {
            match held {
                Held::Request(request) => self.write_request(*request),
                Held::Auth {
                    scheme,
                    auth,
                    reply,
                } => self.write_auth(scheme, auth, Some(reply)),
            }
        }
    }

    /// Bytes arrived from the server at `now` (before their frames are handed over).
    pub(crate) fn received(&mut self, now: Instant) {
        if let Some(link) = &mut self.link {
            link.last_recv = now;
        }
        self.last_heard = now;
        self.shared.heard_at(now);
    }

    /// Bytes from the out buffer reached the socket at `now`.
    pub(crate) fn sent(&mut self, now: Instant) {
        if let Some(link) = &mut self.link {
            link.last_send = now;
        }
    }

    /// True when no request or auth packet sent on the live connection waits for its reply
    /// (and when no connection is up).
    pub(crate) fn is_idle(&self) -> bool {
        self.link
            .as_ref()
            .is_none_or(|l| l.pending.is_empty() && l.pending_auth.is_empty())
    }

    /// When [`on_timer`](Self::on_timer) must run next: the read timeout, the ping, or a
    /// re-attach probe's deadline, while connected.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let link = self.link.as_ref()?;
        // The probe's deadline comes before the read timeout, and no ping is needed while
        // the probe waits for its answer.
        if let Some(probe) = self.probe_deadline() {
            return Some(probe);
        }
        Some((link.last_recv + self.timers.read).min(link.last_send + self.timers.ping))
    }

    /// Fires the timers due at `now`: the read timeout drops the connection, an idle one
    /// gets a ping.
    ///
    /// # Errors
    /// [`Exit::Reconnect`] after 2T/3 without a byte from the server, or when a re-attach
    /// probe went unanswered past its deadline.
    pub(crate) fn on_timer(&mut self, now: Instant) -> Result<(), Exit> {
        self.check_probe(now)?;
        let Some(link) = &mut self.link else {
            return Ok(());
        };
        if now >= link.last_recv + self.timers.read {
            return Err(Exit::Reconnect(format!(
                "no reply from the server for {:?} (read timeout)",
                now - link.last_recv
            )));
        }
        if link.unproven.is_none() && now >= link.last_send + self.timers.ping {
            // An empty body always fits.
            let _ = encode_request(&mut self.out, XID_PING, OpCode::Ping, &NoBody, usize::MAX);
            link.last_send = now;
        }
        Ok(())
    }

    // ----- commands ---------------------------------------------------------------------

    /// A command from a handle (`None`: every handle is gone). Held while disconnected.
    ///
    /// # Errors
    /// [`Exit::Terminal`] when the command ends the session (a close while disconnected).
    pub(crate) fn command(&mut self, command: Option<Command>) -> Result<(), Exit> {
        if self.link.is_none() {
            return self.hold(command);
        }
        match command {
            Some(Command::Request(request)) => {
                if request.op == OpCode::CloseSession {
                    self.closing.get_or_insert(None);
                }
                self.write_request(*request);
            }
            Some(Command::Auth {
                scheme,
                auth,
                reply,
            }) => self.write_auth(scheme, auth, Some(reply)),
            Some(Command::Unwatch {
                id,
                kind,
                server_path,
            }) => self.unwatch(id, kind, &server_path),
            Some(Command::Close { reply }) => self.start_close(Some(reply)),
            None => {
                // Every handle is gone: nobody can use the session any more, so end it now
                // rather than leave its ephemerals until the timeout.
                if self.closing.is_none() {
                    self.start_close(None);
                }
            }
        }
        Ok(())
    }

    fn push_pending(&mut self, pending: Pending) {
        if let Some(link) = &mut self.link {
            link.pending.push_back(pending);
        }
    }

    fn write_request(&mut self, request: Request) {
        let Request {
            mut op,
            mut body,
            reply,
            on_reply,
            span,
        } = request;
        let xid = self.next_xid();
        self.shape_watch_request(xid, &mut op, &mut body, &on_reply);
        // The body was checked against the limit when it was queued.
        let _ = encode_request(
            &mut self.out,
            xid,
            op,
            &EncodedBody(&body),
            self.settings.max_frame_len,
        );
        span.record("xid", xid);
        trace!(parent: &span, xid, op = op.name(), "request written");
        self.push_pending(Pending {
            xid,
            op,
            reply: Some(reply),
            on_reply,
            span,
        });
    }

    fn write_auth(
        &mut self,
        scheme: String,
        auth: Vec<u8>,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    ) {
        let packet = AuthPacket {
            kind: 0,
            scheme: &scheme,
            auth: Secret(std::borrow::Cow::Borrowed(&auth)),
        };
        // Credentials were size-checked when they were given.
        let _ = encode_request(
            &mut self.out,
            XID_AUTH,
            OpCode::Auth,
            &packet,
            self.settings.max_frame_len,
        );
        if let Some(link) = &mut self.link {
            link.pending_auth.push_back(PendingAuth {
                scheme,
                auth,
                reply,
            });
        }
    }

    fn start_close(&mut self, reply: Option<oneshot::Sender<Result<(), Error>>>) {
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
            &mut self.out,
            xid,
            OpCode::CloseSession,
            &NoBody,
            self.settings.max_frame_len,
        );
        self.push_pending(Pending {
            xid,
            op: OpCode::CloseSession,
            reply: None,
            on_reply: OnReply::Nothing,
            span: tracing::Span::none(),
        });
    }

    // ----- connection down and the end --------------------------------------------------

    /// The connection is gone (`reason` is logged). Requests in flight fail with
    /// [`Error::ConnectionLoss`]. Returns the error ending the session when it should end
    /// here: a close was under way, and a lost connection is as closed as it gets.
    pub(crate) fn connection_lost(&mut self, reason: &str) -> Option<Error> {
        info!(session_id = %self.session_id, %reason, "connection lost; trying the next host");
        self.out.clear();
        if let Some(mut link) = self.link.take() {
            // The state changes before anyone hears of a failed request, so whoever gets a
            // ConnectionLoss already sees Disconnected.
            self.shared.update(|d| d.server = None);
            if self.closing.is_none() {
                self.shared
                    .set_state(SessionState::Disconnected, self.session_id);
            }
            link.fail(&Error::ConnectionLoss);
        }
        if let Some(reply) = self.closing.take() {
            if let Some(reply) = reply {
                let _ = reply.send(Ok(()));
            }
            return Some(Error::Closed);
        }
        None
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

    /// Ends the session with `cause`: everything waiting fails with it, watchers end, the
    /// commands still queued (`leftover`, drained from the closed channel) are answered, and
    /// the final state is published last, so whoever sees it also finds the cause.
    pub(crate) fn terminate(&mut self, cause: Error, leftover: impl Iterator<Item = Command>) {
        if let Some(mut link) = self.link.take() {
            link.fail(&cause);
        }
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
        for command in leftover {
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
        self.shared.set_state(state, self.session_id);
    }
}
