//! The ZooKeeper model: one server's sessions, connections and tree, as a state machine that
//! takes decoded frames and returns encoded replies. It does no I/O and reads no clock (the
//! time comes with every call); [`conn`] runs it over a byte stream.
//!
//! What it follows from ZooKeeper 3.8: session ids, passwords, negotiated timeouts (2 to 20
//! ticks) and expiry; a zxid per transaction (a failed write uses one too); full stats,
//! sequential names from the parent's `cversion`; ephemeral, container and TTL nodes;
//! `multi` (all or nothing, one zxid) and `multiRead`; one-shot, persistent and recursive
//! watches held per connection and restored with `setWatches2`; `addAuth` (digest); ping and
//! close. What it leaves out is listed in docs/simulation.md.

pub mod conn;
pub mod ensemble;
mod ops;
pub mod tree;
pub mod watches;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zkwarden::proto::frame::{begin_frame, finish_frame};
use zkwarden::proto::{
    ConnectRequest, ConnectResponse, EventType, Id, Jute, KeeperState, Password, ReplyHeader,
    WatcherEvent,
};

use self::ensemble::{Log, Member};
use self::tree::{Tree, Trigger};
use self::watches::Watches;

/// What a connection task is told to do.
#[derive(Debug)]
pub enum Out {
    /// Write this frame.
    Frame(Bytes),
    /// Close the connection (after the frames before this one).
    Close,
}

/// A session the server knows.
#[derive(Debug)]
struct Session {
    password: [u8; 16],
    timeout: Duration,
    last_heard: Instant,
    /// The connection serving it.
    conn: Option<u64>,
    /// The member it is attached to (its owner, in ZooKeeper's terms): requests that go
    /// through the quorum from a connection on another member fail with "session moved".
    member: usize,
    /// `addAuth` identities.
    auth: Vec<Id>,
}

/// A client connection.
#[derive(Debug)]
struct Conn {
    session: Option<i64>,
    /// The member it is connected to.
    member: usize,
    outbox: mpsc::UnboundedSender<Out>,
    watches: Watches,
}

/// A successful write, as the invariant checker reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its zxid.
    pub zxid: i64,
    /// The session that wrote.
    pub session: i64,
    /// `create`, `set` or `delete`.
    pub kind: &'static str,
    /// The node (for a create, its final name).
    pub path: String,
    /// The data written (empty for a delete).
    pub data: Bytes,
}

/// The server: an ensemble of one member unless built [`Model::with_members`].
#[derive(Debug)]
pub struct Model {
    /// The committed tree (what the quorum agreed on; members may lag behind it).
    pub tree: Tree,
    sessions: BTreeMap<i64, Session>,
    conns: BTreeMap<u64, Conn>,
    next_session: i64,
    next_conn: u64,
    tick: Duration,
    /// When the model started (times in stats count from here).
    epoch: Instant,
    /// Every successful write, in zxid order.
    pub applied: Vec<Applied>,
    /// Whether `createTTL` and TTL modes are allowed (`extendedTypesEnabled`).
    pub extended_types: bool,
    /// Sessions ended, with when and why (for traces).
    pub ended: Vec<(i64, Instant, &'static str)>,
    /// The members.
    members: Vec<Member>,
    /// The committed log the members apply.
    log: Log,
    /// The latest time the model was told of.
    now: Instant,
    /// A leader election under way, until then: no member serves, nothing commits.
    election: Option<Instant>,
}

/// Encodes a reply frame: `header`, then whatever `body` writes.
pub fn reply_frame(header: ReplyHeader, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::new();
    let start = begin_frame(&mut buf);
    header.write(&mut buf);
    body(&mut buf);
    // The model's replies are built from requests that fit a frame; nothing it sends comes
    // near the limit.
    finish_frame(&mut buf, start, i32::MAX as usize).expect("a model reply fits a frame");
    buf.freeze()
}

impl Model {
    /// A server with an empty tree, ticking every `tick`, started at `now`.
    pub fn new(tick: Duration, now: Instant) -> Model {
        Model {
            tree: Tree::default(),
            sessions: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_session: 0x0100_0000_0000_0000,
            next_conn: 1,
            tick,
            epoch: now,
            applied: Vec::new(),
            extended_types: true,
            ended: Vec::new(),
            members: ensemble::members(1),
            log: Log::new(),
            now,
            election: None,
        }
    }

    fn now_ms(&self, now: Instant) -> i64 {
        1_700_000_000_000 + (now - self.epoch).as_millis() as i64
    }

    /// Registers a new connection to member 0 whose frames go to `outbox`; returns its id.
    pub fn open(&mut self, outbox: mpsc::UnboundedSender<Out>) -> u64 {
        self.open_on(0, outbox)
    }

    /// Registers a new connection to `member` whose frames go to `outbox`; returns its id.
    pub fn open_on(&mut self, member: usize, outbox: mpsc::UnboundedSender<Out>) -> u64 {
        // Direct edits of the tree before the first client (a scenario's initial nodes)
        // are committed here, so that every member starts from them.
        self.commit(self.now);
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                session: None,
                member,
                outbox,
                watches: Watches::default(),
            },
        );
        id
    }

    /// The member `conn` is connected to.
    pub fn member_of(&self, conn: u64) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.member)
    }

    /// The connection is gone: its watches go with it; its session stays (until it expires).
    pub fn closed(&mut self, conn: u64) {
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(s) = c.session.and_then(|id| self.sessions.get_mut(&id)) {
                if s.conn == Some(conn) {
                    s.conn = None;
                }
            }
        }
    }

    /// The session `conn` serves.
    pub fn session_of(&self, conn: u64) -> Option<i64> {
        self.conns.get(&conn).and_then(|c| c.session)
    }

    /// The live sessions.
    pub fn sessions(&self) -> Vec<i64> {
        self.sessions.keys().copied().collect()
    }

    /// The handshake: a new session, or `request.session_id` taken over by `conn` (its old
    /// connection is closed). An unknown session or a wrong password gets timeout 0; a
    /// refusal without an answer (see [`Model::handshake`]) gets timeout 0 too.
    pub fn connect(
        &mut self,
        conn: u64,
        request: &ConnectRequest,
        now: Instant,
    ) -> ConnectResponse {
        self.handshake(conn, request, now).unwrap_or_else(refused)
    }

    /// The handshake, as [`Model::connect`]; `None` when the member closes the connection
    /// without answering: the client has seen a zxid newer than the member has applied
    /// (ZooKeeper's "client must try another server"), or the member is not serving (down,
    /// or without a quorum).
    pub fn handshake(
        &mut self,
        conn: u64,
        request: &ConnectRequest,
        now: Instant,
    ) -> Option<ConnectResponse> {
        self.now = self.now.max(now);
        let member = self.member_of(conn)?;
        if !self.serving(member) || request.last_zxid_seen > self.member_zxid(member) {
            return None;
        }
        let min = self.tick * 2;
        let max = self.tick * 20;
        let asked = Duration::from_millis(request.timeout_ms.max(0) as u64);
        let timeout = asked.clamp(min, max);
        let id = if request.session_id == 0 {
            let id = self.next_session;
            self.next_session += 1;
            self.sessions.insert(
                id,
                Session {
                    password: password_of(id),
                    timeout,
                    last_heard: now,
                    conn: None,
                    member,
                    auth: Vec::new(),
                },
            );
            id
        } else {
            match self.sessions.get(&request.session_id) {
                Some(s) if request.password.0.as_ref() == s.password => request.session_id,
                _ => return Some(refused()),
            }
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return Some(refused());
        };
        session.last_heard = now;
        session.member = member;
        // The session moves. Its old connection on this member is closed, as ZooKeeper
        // does; one on another member stays open, stale, until a request of it reaches the
        // quorum (see `request`).
        if let Some(old) = session.conn.replace(conn) {
            if self.conns.get(&old).is_some_and(|c| c.member == member) {
                if let Some(c) = self.conns.remove(&old) {
                    let _ = c.outbox.send(Out::Close);
                }
            }
        }
        let timeout = session.timeout;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
        Some(ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout.as_millis() as i32,
            session_id: id,
            password: Password(Bytes::copy_from_slice(&password_of(id))),
            read_only: false,
        })
    }

    /// Something arrived from `conn`'s session: it is alive.
    pub fn heard(&mut self, conn: u64, now: Instant) {
        if let Some(s) = self
            .session_of(conn)
            .and_then(|id| self.sessions.get_mut(&id))
        {
            s.last_heard = now;
        }
    }

    /// Ends `session`: its ephemerals are deleted in one transaction, watchers hear of it,
    /// its connection is closed. `why` goes to the trace.
    pub fn end_session(&mut self, session: i64, now: Instant, why: &'static str) {
        if self.sessions.remove(&session).is_none() {
            return;
        }
        self.ended.push((session, now, why));
        let ephemerals = self.tree.ephemerals_of(session);
        self.tree.zxid += 1;
        let zxid = self.tree.zxid;
        let mut triggers = Vec::new();
        for path in ephemerals {
            if self.tree.delete(&path, -1, zxid, &mut triggers).is_ok() {
                self.applied.push(Applied {
                    zxid,
                    session,
                    kind: "expire",
                    path,
                    data: Bytes::new(),
                });
            }
        }
        self.fire(&triggers);
        // Every member closes the session's connections (a stale one on another member too).
        for c in self.conns.values_mut() {
            if c.session == Some(session) {
                c.session = None;
                let _ = c.outbox.send(Out::Close);
            }
        }
        self.commit(now);
    }

    /// Expires the sessions not heard from within their timeout, and deletes containers and
    /// TTL nodes that are due.
    /// Without a quorum nothing expires (there is no leader to expire it). The lagging
    /// members apply what is due.
    pub fn tick(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.end_election(now);
        let due: Vec<i64> = if self.has_quorum() && self.election.is_none() {
            self.sessions
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_heard) > s.timeout)
                .map(|(id, _)| *id)
                .collect()
        } else {
            Vec::new()
        };
        for id in due {
            self.end_session(id, now, "expired");
        }
        let now_ms = self.now_ms(now);
        for path in self.tree.expired_extended(now_ms) {
            self.tree.zxid += 1;
            let zxid = self.tree.zxid;
            let mut triggers = Vec::new();
            if self.tree.delete(&path, -1, zxid, &mut triggers).is_ok() {
                self.fire(&triggers);
            }
        }
        self.commit(now);
        self.apply_due(now);
    }

    /// Queues the watch events of `triggers` for the next commit: each member fires them
    /// to its connections' watches when it applies that commit.
    fn fire(&mut self, triggers: &[Trigger]) {
        self.log.pending.extend_from_slice(triggers);
    }
}

/// The notification frame for `trigger` (zxid -1, as 3.8 servers send).
pub fn notification(trigger: &Trigger) -> Bytes {
    reply_frame(
        ReplyHeader {
            xid: zkwarden::proto::opcode::XID_NOTIFICATION,
            zxid: -1,
            err: 0,
        },
        |buf| {
            WatcherEvent {
                kind: trigger.event.code(),
                state: KeeperState::SyncConnected.code(),
                path: trigger.path.clone(),
            }
            .write(buf)
        },
    )
}

/// The answer to a handshake for a session the server does not know: timeout 0.
fn refused() -> ConnectResponse {
    ConnectResponse {
        protocol_version: 0,
        timeout_ms: 0,
        session_id: 0,
        password: Password(Bytes::from_static(&[0; 16])),
        read_only: false,
    }
}

/// A session's password: derived from its id, so that runs replay.
fn password_of(id: i64) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&id.to_be_bytes());
    p[8..].copy_from_slice(&(!id).to_be_bytes());
    p
}

/// An event a connection is owed, for traces.
pub fn describe(trigger: &Trigger) -> String {
    let kind = match trigger.event {
        EventType::NodeCreated => "created",
        EventType::NodeDeleted => "deleted",
        EventType::NodeDataChanged => "changed",
        EventType::NodeChildrenChanged => "children",
        _ => "other",
    };
    format!("{kind} {}", trigger.path)
}
