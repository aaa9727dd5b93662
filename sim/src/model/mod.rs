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
    /// `addAuth` identities.
    auth: Vec<Id>,
}

/// A client connection.
#[derive(Debug)]
struct Conn {
    session: Option<i64>,
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

/// The server.
#[derive(Debug)]
pub struct Model {
    /// The tree.
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
        }
    }

    fn now_ms(&self, now: Instant) -> i64 {
        1_700_000_000_000 + (now - self.epoch).as_millis() as i64
    }

    /// Registers a new connection whose frames go to `outbox`; returns its id.
    pub fn open(&mut self, outbox: mpsc::UnboundedSender<Out>) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                session: None,
                outbox,
                watches: Watches::default(),
            },
        );
        id
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
    /// connection is closed). An unknown session or a wrong password gets timeout 0.
    pub fn connect(
        &mut self,
        conn: u64,
        request: &ConnectRequest,
        now: Instant,
    ) -> ConnectResponse {
        let refused = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            password: Password(Bytes::from_static(&[0; 16])),
            read_only: false,
        };
        if request.last_zxid_seen > self.tree.zxid {
            // The client has seen more than this server: ZooKeeper closes without answering;
            // with one member this cannot happen unless the model lost a write.
            return refused;
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
                    auth: Vec::new(),
                },
            );
            id
        } else {
            match self.sessions.get(&request.session_id) {
                Some(s) if request.password.0.as_ref() == s.password => request.session_id,
                _ => return refused,
            }
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return refused;
        };
        session.last_heard = now;
        // The session moves: its old connection is closed, as ZooKeeper does.
        if let Some(old) = session.conn.replace(conn) {
            if let Some(c) = self.conns.remove(&old) {
                let _ = c.outbox.send(Out::Close);
            }
        }
        let timeout = session.timeout;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
        ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout.as_millis() as i32,
            session_id: id,
            password: Password(Bytes::copy_from_slice(&password_of(id))),
            read_only: false,
        }
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
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
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
        if let Some(conn) = s.conn {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.session = None;
                let _ = c.outbox.send(Out::Close);
            }
        }
    }

    /// Expires the sessions not heard from within their timeout, and deletes containers and
    /// TTL nodes that are due.
    pub fn tick(&mut self, now: Instant) {
        let due: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_heard) > s.timeout)
            .map(|(id, _)| *id)
            .collect();
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
    }

    /// Sends the watch events of `triggers` to the connections whose watches they fire.
    fn fire(&mut self, triggers: &[Trigger]) {
        for trigger in triggers {
            for conn in self.conns.values_mut() {
                if conn.session.is_some() && conn.watches.fire(trigger) {
                    let _ = conn.outbox.send(Out::Frame(notification(trigger)));
                }
            }
        }
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
