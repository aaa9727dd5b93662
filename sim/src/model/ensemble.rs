//! The ensemble: N members that commit one log. The quorum (an abstract leader) orders the
//! transactions: the model's own tree is the committed state. Each member applies the
//! committed log in order, at once or `lag` behind (a slow follower), and serves reads and
//! fires its connections' watches from what it has applied, as a ZooKeeper server does. A
//! member can crash (it loses its connections and comes back with the committed log) or
//! stall (it neither serves nor applies for a while). Without a quorum of members up,
//! nothing commits: every member drops its clients and refuses new ones until the quorum is
//! back, and no session expires meanwhile (a new leader renews every session's timeout).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::tree::{Tree, Trigger};
use super::{Model, Out, notification};

/// One server of the ensemble.
#[derive(Debug, Clone)]
pub struct Member {
    /// Running (not crashed).
    pub up: bool,
    /// How long after a commit this member applies it (zero: at once).
    pub lag: Duration,
    /// Stalled (serving nothing, applying nothing) until then.
    pub stalled_until: Option<Instant>,
    /// Log entries applied (an absolute index into the log).
    applied: usize,
}

impl Member {
    fn new() -> Member {
        Member {
            up: true,
            lag: Duration::ZERO,
            stalled_until: None,
            applied: 0,
        }
    }

    /// Whether the member is stalled at `now`.
    pub fn stalled(&self, now: Instant) -> bool {
        self.stalled_until.is_some_and(|until| now < until)
    }
}

/// One committed batch of transactions (everything one model step committed).
#[derive(Debug)]
struct Commit {
    at: Instant,
    /// The committed tree after it.
    tree: Arc<Tree>,
    /// The watch triggers it fires.
    triggers: Vec<Trigger>,
}

/// The log the members apply, and what they need to serve a state behind the committed one.
#[derive(Debug)]
pub(super) struct Log {
    entries: VecDeque<Commit>,
    /// The absolute index of `entries[0]`.
    base: usize,
    /// The tree before `entries[0]`.
    base_tree: Arc<Tree>,
    /// The zxid of the last commit.
    zxid: i64,
    /// Triggers fired since the last commit.
    pub(super) pending: Vec<Trigger>,
}

impl Log {
    pub(super) fn new() -> Log {
        Log {
            entries: VecDeque::new(),
            base: 0,
            base_tree: Arc::new(Tree::default()),
            zxid: 0,
            pending: Vec::new(),
        }
    }

    fn end(&self) -> usize {
        self.base + self.entries.len()
    }
}

/// The members of a one-server model.
pub(super) fn members(n: usize) -> Vec<Member> {
    (0..n.max(1)).map(|_| Member::new()).collect()
}

impl Model {
    /// A model of an ensemble of `members` servers (1, 3 or 5), ticking every `tick`,
    /// started at `now`. [`Model::new`] is the one-member case.
    pub fn with_members(tick: Duration, now: Instant, members: usize) -> Model {
        let mut model = Model::new(tick, now);
        model.members = self::members(members);
        model
    }

    /// How many members the ensemble has.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Which members are up, by index.
    pub fn members_up(&self) -> Vec<bool> {
        self.members.iter().map(|m| m.up).collect()
    }

    /// The network heals: every crashed member restarts, stalls and an election end.
    pub fn restart_all(&mut self, now: Instant) {
        if self.election.is_some() {
            self.election = Some(now);
            self.end_election(now);
        }
        for m in 0..self.members.len() {
            self.members[m].stalled_until = None;
            if !self.members[m].up {
                self.restart(m, now);
            }
        }
    }

    /// Whether a majority of the members is up: only then do writes commit and members serve.
    pub fn has_quorum(&self) -> bool {
        self.members.iter().filter(|m| m.up).count() * 2 > self.members.len()
    }

    /// Whether `member` takes clients: it is up and part of a quorum.
    pub fn serving(&self, member: usize) -> bool {
        self.has_quorum()
            && self.election.is_none()
            && self.members.get(member).is_some_and(|m| m.up)
    }

    /// The leader is lost: every member drops its clients and serves none until `until`,
    /// when a new leader is elected and every session's timeout starts afresh.
    pub fn elect(&mut self, until: Instant) {
        self.election = Some(self.election.map_or(until, |u| u.max(until)));
        self.drop_clients(None);
    }

    /// Ends an election due by `now`.
    pub(super) fn end_election(&mut self, now: Instant) {
        if self.election.is_some_and(|until| now >= until) {
            self.election = None;
            for s in self.sessions.values_mut() {
                s.last_heard = now;
            }
        }
    }

    /// The zxid `member` has applied.
    pub fn member_zxid(&self, member: usize) -> i64 {
        self.view(member).zxid
    }

    /// The tree `member` serves: the committed one when it has applied everything.
    pub(super) fn view(&self, member: usize) -> &Tree {
        let Some(m) = self.members.get(member) else {
            return &self.tree;
        };
        let log = &self.log;
        if m.applied >= log.end() {
            &self.tree
        } else if m.applied <= log.base {
            &log.base_tree
        } else {
            &log.entries[m.applied - log.base - 1].tree
        }
    }

    /// Whether `member` is behind the committed state.
    pub(super) fn behind(&self, member: usize) -> bool {
        self.members
            .get(member)
            .is_some_and(|m| m.applied < self.log.end())
    }

    /// Commits what changed the tree since the last commit: appends it to the log, and the
    /// members that apply at once apply it (firing their connections' watches). Direct edits
    /// of [`Model::tree`] (a scenario's initial nodes) must be followed by this.
    pub fn commit(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if self.tree.zxid == self.log.zxid && self.log.pending.is_empty() {
            return;
        }
        self.log.zxid = self.tree.zxid;
        let triggers = std::mem::take(&mut self.log.pending);
        self.log.entries.push_back(Commit {
            at: now,
            tree: Arc::new(self.tree.clone()),
            triggers,
        });
        for m in 0..self.members.len() {
            let member = &self.members[m];
            if member.up && member.lag.is_zero() && !member.stalled(now) {
                self.advance(m, self.log.end());
            }
        }
        self.trim();
    }

    /// `member` applies the log up to `to` (an absolute index), firing the watches of its
    /// connections on the way.
    pub(super) fn advance(&mut self, member: usize, to: usize) {
        let from = self.members[member].applied.max(self.log.base);
        let to = to.min(self.log.end());
        for i in from..to {
            let entry = &self.log.entries[i - self.log.base];
            for trigger in &entry.triggers {
                for conn in self.conns.values_mut() {
                    if conn.member == member && conn.session.is_some() && conn.watches.fire(trigger)
                    {
                        let _ = conn.outbox.send(Out::Frame(notification(trigger)));
                    }
                }
            }
        }
        if to > self.members[member].applied {
            self.members[member].applied = to;
        }
    }

    /// `member` catches up with everything committed (a `sync`, or a write it forwarded).
    pub(super) fn catch_up(&mut self, member: usize) {
        self.advance(member, self.log.end());
        self.trim();
    }

    /// Drops the entries every running member has applied.
    fn trim(&mut self) {
        let end = self.log.end();
        let keep_from = self
            .members
            .iter()
            .filter(|m| m.up)
            .map(|m| m.applied)
            .min()
            .unwrap_or(end);
        while self.log.base < keep_from {
            let Some(entry) = self.log.entries.pop_front() else {
                break;
            };
            self.log.base_tree = entry.tree;
            self.log.base += 1;
        }
    }

    /// The lagging members apply what is due by `now`.
    pub(super) fn apply_due(&mut self, now: Instant) {
        for m in 0..self.members.len() {
            let member = &self.members[m];
            if !member.up || member.stalled(now) {
                continue;
            }
            let lag = member.lag;
            let mut to = member.applied.max(self.log.base);
            while to < self.log.end() && self.log.entries[to - self.log.base].at + lag <= now {
                to += 1;
            }
            self.advance(m, to);
        }
        self.trim();
    }

    /// `member` crashes: its connections drop. Losing the quorum drops every member's.
    pub fn crash(&mut self, member: usize, now: Instant) {
        self.now = self.now.max(now);
        let had_quorum = self.has_quorum();
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        m.up = false;
        m.stalled_until = None;
        if had_quorum && !self.has_quorum() {
            self.drop_clients(None);
        } else {
            self.drop_clients(Some(member));
        }
        self.trim();
    }

    /// `member` comes back with the committed log. Regaining the quorum renews every session
    /// (a new leader starts their timeouts afresh).
    pub fn restart(&mut self, member: usize, now: Instant) {
        self.now = self.now.max(now);
        let had_quorum = self.has_quorum();
        let end = self.log.end();
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        m.up = true;
        m.applied = end;
        if !had_quorum && self.has_quorum() {
            for s in self.sessions.values_mut() {
                s.last_heard = now;
            }
        }
    }

    /// `member` stalls until `until`: it serves and applies nothing meanwhile.
    pub fn stall(&mut self, member: usize, until: Instant) {
        if let Some(m) = self.members.get_mut(member) {
            m.stalled_until = Some(until);
        }
    }

    /// When `member` stops being stalled, if it is stalled at `now`.
    pub fn stalled_until(&self, member: usize, now: Instant) -> Option<Instant> {
        self.members
            .get(member)
            .filter(|m| m.stalled(now))
            .and_then(|m| m.stalled_until)
    }

    /// Sets how far behind the commits `member` applies them.
    pub fn set_lag(&mut self, member: usize, lag: Duration) {
        if let Some(m) = self.members.get_mut(member) {
            m.lag = lag;
        }
    }

    /// Closes the connections of `member` (of every member with `None`).
    fn drop_clients(&mut self, member: Option<usize>) {
        for conn in self.conns.values() {
            if member.is_none_or(|m| conn.member == m) {
                let _ = conn.outbox.send(Out::Close);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use tokio::sync::mpsc;
    use zkwarden::proto::{
        ConnectRequest, CreateMode, Jute, OpCode, Password, PathRequest, RequestHeader,
    };

    use super::*;
    use crate::model::tree::CreateArgs;

    const TICK: Duration = Duration::from_millis(200);

    fn create(model: &mut Model, path: &str, now: Instant) {
        model.tree.zxid += 1;
        let zxid = model.tree.zxid;
        let args = CreateArgs {
            path,
            data: b"",
            acl: vec![],
            mode: CreateMode::Persistent,
            ttl: 0,
        };
        model
            .tree
            .create(&args, 0, zxid, 0, &mut Vec::new())
            .expect("a create under /");
        model.commit(now);
    }

    fn offer(session_id: i64, last_zxid_seen: i64) -> ConnectRequest {
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen,
            timeout_ms: 2_000,
            session_id,
            password: Password(Bytes::copy_from_slice(&super::super::password_of(
                session_id,
            ))),
            read_only: false,
        }
    }

    fn sync_frame() -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader {
            xid: 1,
            op: OpCode::Sync as i32,
        }
        .write(&mut buf);
        PathRequest { path: "/" }.write(&mut buf);
        buf.freeze()
    }

    fn closed(out: &mut mpsc::UnboundedReceiver<Out>) -> bool {
        std::iter::from_fn(|| out.try_recv().ok()).any(|o| matches!(o, Out::Close))
    }

    #[test]
    fn a_lagging_member_serves_what_it_applied_until_the_commit_is_due() {
        let t0 = Instant::now();
        let mut model = Model::with_members(TICK, t0, 3);
        model.set_lag(1, Duration::from_secs(1));
        create(&mut model, "/x", t0);
        assert_eq!(model.member_zxid(0), model.tree.zxid);
        assert!(model.member_zxid(1) < model.tree.zxid);
        assert!(model.view(1).get("/x").is_none());
        model.tick(t0 + Duration::from_millis(500));
        assert!(model.view(1).get("/x").is_none());
        model.tick(t0 + Duration::from_secs(1));
        assert!(model.view(1).get("/x").is_some());
        assert_eq!(model.member_zxid(1), model.tree.zxid);
    }

    #[test]
    fn a_member_behind_the_client_closes_its_handshake_unanswered() {
        let t0 = Instant::now();
        let mut model = Model::with_members(TICK, t0, 3);
        model.set_lag(1, Duration::from_secs(1));
        create(&mut model, "/x", t0);
        let seen = model.tree.zxid;
        let (tx, _rx) = mpsc::unbounded_channel();
        let behind = model.open_on(1, tx.clone());
        assert!(model.handshake(behind, &offer(0, seen), t0).is_none());
        let caught_up = model.open_on(0, tx);
        assert!(model.handshake(caught_up, &offer(0, seen), t0).is_some());
    }

    #[test]
    fn a_stale_connection_is_dropped_unanswered_when_its_sync_reaches_the_quorum() {
        let t0 = Instant::now();
        let mut model = Model::with_members(TICK, t0, 3);
        let (tx_a, mut rx_a) = mpsc::unbounded_channel();
        let a = model.open_on(0, tx_a);
        let session = model.handshake(a, &offer(0, 0), t0).expect("a session");
        let (tx_b, _rx_b) = mpsc::unbounded_channel();
        let b = model.open_on(1, tx_b);
        let moved = model.handshake(b, &offer(session.session_id, 0), t0);
        assert_eq!(moved.map(|r| r.session_id), Some(session.session_id));
        // The old member does not know yet: the connection stays open...
        assert!(!closed(&mut rx_a));
        // ...until a request of it reaches the quorum.
        let handled = model.request(a, &sync_frame(), t0);
        assert!(handled.moved && handled.close && handled.reply.is_none());
        let handled = model.request(b, &sync_frame(), t0);
        assert!(!handled.moved && handled.reply.is_some());
    }

    #[test]
    fn without_a_quorum_members_drop_their_clients_and_no_session_expires() {
        let t0 = Instant::now();
        let mut model = Model::with_members(TICK, t0, 3);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = model.open_on(0, tx);
        model.handshake(conn, &offer(0, 0), t0).expect("a session");
        model.crash(1, t0);
        assert!(model.has_quorum() && !closed(&mut rx));
        model.crash(2, t0);
        assert!(!model.has_quorum() && !model.serving(0));
        assert!(closed(&mut rx));
        let later = t0 + Duration::from_secs(60);
        model.tick(later);
        assert_eq!(model.sessions().len(), 1, "expired without a leader");
        // Back with a quorum: the session's timeout starts afresh.
        model.restart(1, later);
        model.tick(later + Duration::from_secs(1));
        assert_eq!(model.sessions().len(), 1);
        model.tick(later + Duration::from_secs(3));
        assert!(model.sessions().is_empty());
    }

    #[test]
    fn an_election_drops_every_client_then_renews_the_sessions() {
        let t0 = Instant::now();
        let mut model = Model::with_members(TICK, t0, 3);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = model.open_on(2, tx);
        model.handshake(conn, &offer(0, 0), t0).expect("a session");
        let done = t0 + Duration::from_secs(10);
        model.elect(done);
        assert!(closed(&mut rx) && !model.serving(2));
        model.tick(done - Duration::from_millis(1));
        assert_eq!(model.sessions().len(), 1, "expired during the election");
        model.tick(done);
        assert!(model.serving(2));
        model.tick(done + Duration::from_secs(1));
        assert_eq!(model.sessions().len(), 1, "not renewed by the new leader");
    }
}
