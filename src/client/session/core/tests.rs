//! Unit tests of the session core: no server, no runtime, no clock (every instant is made
//! from one base). Server frames are built with the protocol's own encoders.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::Decoder;

use super::{Exit, Handshaken, SessionCore};
use crate::client::command::{Command, OnReply, Reply, Request};
use crate::client::path::Chroot;
use crate::client::session::config::SessionConfig;
use crate::client::session::connect::AttemptError;
use crate::client::session::shared::Shared;
use crate::client::state::{SessionId, SessionPassword, SessionState};
use crate::client::watch::{WatchKind, WatchSink, WatchedEvent};
use crate::error::Error;
use crate::proto::jute::{Jute, Reader, decode_exact};
use crate::proto::opcode::{XID_AUTH, XID_NOTIFICATION, XID_PING, XID_SET_WATCHES};
use crate::proto::records::{
    AddWatchRequest, AuthPacket, PathWatchRequest, ReplyHeader, RequestHeader, SetWatches,
    SetWatches2, WatcherEvent, WatchesRequest,
};
use crate::proto::request::{RequestBody, encode_body};
use crate::proto::{
    AddWatchMode, ErrorCode, EventType, FrameCodec, KeeperState, OpCode, WatcherType,
};

const T: Duration = Duration::from_secs(6);
const MS: Duration = Duration::from_millis(1);
const SESSION: SessionId = SessionId(0x1234);

// ----- helpers ----------------------------------------------------------------------------

fn config(hosts: usize) -> SessionConfig {
    SessionConfig::for_tests(hosts, T)
}

/// A core for `config` at time `t0`, and the state it publishes.
struct Harness {
    core: SessionCore,
    shared: Arc<Shared>,
    t0: Instant,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(config(3))
    }

    fn with(config: SessionConfig) -> Harness {
        let shared = Arc::new(Shared::new());
        let t0 = Instant::now();
        Harness {
            core: SessionCore::new(&config, shared.clone(), t0),
            shared,
            t0,
        }
    }

    /// Connected at `t0` (read-write, timeout T).
    fn connected() -> Harness {
        let mut h = Harness::new();
        h.connect_at(h.t0);
        h
    }

    fn connect_at(&mut self, at: Instant) {
        self.connect_as(at, SESSION, false);
    }

    fn connect_as(&mut self, at: Instant, session_id: SessionId, read_only: bool) {
        self.core.begin_connecting(at);
        self.core.connected(
            &Handshaken {
                session_id,
                password: SessionPassword(Bytes::from_static(b"0123456789abcdef")),
                negotiated: T,
                read_only,
                addr: "127.0.0.1:2181".parse().unwrap(),
            },
            at,
        );
    }

    fn at(&self, offset: Duration) -> Instant {
        self.t0 + offset
    }

    fn state(&self) -> SessionState {
        self.shared.status.borrow().state
    }

    /// Takes the frames the core wrote, as (header, body).
    fn written(&mut self) -> Vec<(RequestHeader, Bytes)> {
        let mut codec = FrameCodec::new(usize::MAX >> 1);
        let out = self.core.out_mut();
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(out).unwrap() {
            let mut r = Reader::new(&frame);
            let header = RequestHeader::read(&mut r).unwrap();
            frames.push((header, frame.slice(r.position()..)));
        }
        assert!(out.is_empty(), "a partial frame was written");
        frames
    }

    fn written_xids(&mut self) -> Vec<i32> {
        self.written().into_iter().map(|(h, _)| h.xid).collect()
    }

    /// Sends a getData for `path` and returns its reply receiver.
    fn get(&mut self, path: &str) -> oneshot::Receiver<Result<Reply, Error>> {
        let (command, rx) = request(OpCode::GetData, path, OnReply::Nothing);
        self.core.command(Some(command)).unwrap();
        rx
    }

    /// Sends a watching getData and returns (reply, watch event) receivers.
    fn watch(&mut self, id: u64, path: &str) -> (ReplyRx, EventRx) {
        let (sink, events) = oneshot::channel();
        let (command, rx) = request(
            OpCode::GetData,
            path,
            OnReply::RegisterWatch {
                id,
                server_path: path.to_owned(),
                on_ok: WatchKind::Data,
                on_no_node: Some(WatchKind::Exist),
                sink: WatchSink::Oneshot(sink),
            },
        );
        self.core.command(Some(command)).unwrap();
        (rx, events)
    }

    /// A watch already confirmed by the server.
    fn registered_watch(
        &mut self,
        id: u64,
        path: &str,
    ) -> oneshot::Receiver<Result<WatchedEvent, Error>> {
        let (mut rx, events) = self.watch(id, path);
        let xid = self.written().last().unwrap().0.xid;
        self.core.frame(reply(xid, 10, 0, &Nothing)).unwrap();
        assert!(rx.try_recv().unwrap().is_ok());
        events
    }

    /// Asks the session to authenticate with `(scheme, auth)`; returns the answer's receiver.
    fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> oneshot::Receiver<Result<(), Error>> {
        let (reply, rx) = oneshot::channel();
        self.core
            .command(Some(Command::Auth {
                scheme: scheme.into(),
                auth: auth.to_vec(),
                reply,
            }))
            .unwrap();
        rx
    }

    fn feed(&mut self, frame: Bytes) -> Result<(), Exit> {
        self.core.frame(frame)
    }
}

type ReplyRx = oneshot::Receiver<Result<Reply, Error>>;
type EventRx = oneshot::Receiver<Result<WatchedEvent, Error>>;

fn request(
    op: OpCode,
    path: &str,
    on_reply: OnReply,
) -> (Command, oneshot::Receiver<Result<Reply, Error>>) {
    let record = PathWatchRequest { path, watch: false };
    let body = encode_body(&record, 0, 1 << 20).unwrap();
    let (reply, rx) = oneshot::channel();
    let command = Command::Request(Box::new(Request {
        op,
        body,
        reply,
        on_reply,
        span: tracing::Span::none(),
    }));
    (command, rx)
}

/// A body-less reply record.
struct Nothing;

impl RequestBody for Nothing {
    fn write_body(&self, _dst: &mut BytesMut) {}
}

/// A server frame (without length prefix): reply header and body.
fn reply(xid: i32, zxid: i64, err: i32, body: &impl RequestBody) -> Bytes {
    let mut buf = BytesMut::new();
    ReplyHeader { xid, zxid, err }.write(&mut buf);
    body.write_body(&mut buf);
    buf.freeze()
}

fn notification(zxid: i64, kind: EventType, state: KeeperState, path: &str) -> Bytes {
    let event = WatcherEvent {
        kind: kind.code(),
        state: state.code(),
        path: path.to_owned(),
    };
    reply(XID_NOTIFICATION, zxid, 0, &event)
}

/// The shared state keeps `last_heard` in whole microseconds.
fn assert_heard_at(h: &Harness, at: Instant) {
    let heard = h.shared.last_heard().expect("heard");
    let gap = if heard > at { heard - at } else { at - heard };
    assert!(
        gap < Duration::from_micros(2),
        "heard at {heard:?}, expected {at:?}"
    );
}

fn reconnect(exit: Result<(), Exit>) -> String {
    match exit {
        Err(Exit::Reconnect(reason)) => reason,
        other => panic!("expected a reconnect, got {other:?}"),
    }
}

fn terminal(exit: Result<(), Exit>) -> Error {
    match exit {
        Err(Exit::Terminal(cause)) => cause,
        other => panic!("expected the session to end, got {other:?}"),
    }
}

fn err<T: std::fmt::Debug>(rx: &mut oneshot::Receiver<Result<T, Error>>) -> Error {
    rx.try_recv().expect("answered").expect_err("an error")
}

// ----- replies ----------------------------------------------------------------------------

#[test]
fn replies_are_matched_to_requests_in_order() {
    let mut h = Harness::connected();
    let mut a = h.get("/a");
    let mut b = h.get("/b");
    let xids = h.written_xids();
    assert_eq!(xids, [1, 2]);
    h.feed(reply(1, 5, 0, &"A".to_owned())).unwrap();
    assert!(b.try_recv().is_err(), "b answered before its reply");
    h.feed(reply(2, 6, 0, &"B".to_owned())).unwrap();
    let a = a.try_recv().unwrap().unwrap();
    let b = b.try_recv().unwrap().unwrap();
    assert_eq!((a.zxid, b.zxid), (5, 6));
    assert_eq!(decode_exact::<String>(&a.body).unwrap(), "A");
    assert_eq!(decode_exact::<String>(&b.body).unwrap(), "B");
}

#[test]
fn an_error_code_answers_its_request_only() {
    let mut h = Harness::connected();
    let mut a = h.get("/a");
    h.written();
    h.feed(reply(1, 5, ErrorCode::NoNode.code(), &Nothing))
        .unwrap();
    assert_eq!(err(&mut a), Error::NoNode);
    assert_eq!(h.state(), SessionState::Connected);
}

/// A connected session with two gets (`/a`, xid 1; `/b`, xid 2) written and unanswered.
fn two_in_flight() -> (Harness, ReplyRx, ReplyRx) {
    let mut h = Harness::connected();
    let a = h.get("/a");
    let b = h.get("/b");
    h.written();
    (h, a, b)
}

#[test]
fn an_xid_mismatch_drops_only_the_connection() {
    let (mut h, mut a, mut b) = two_in_flight();
    let reason = reconnect(h.feed(reply(2, 5, 0, &Nothing)));
    assert!(reason.contains("expected xid 1, got 2"), "{reason}");
    assert_eq!(h.core.connection_lost(&reason), None);
    assert_eq!(err(&mut a), Error::ConnectionLoss);
    assert_eq!(err(&mut b), Error::ConnectionLoss);
    assert_eq!(h.state(), SessionState::Disconnected);
    // The session lives on: the next handshake offers it.
    assert_eq!(h.core.offer().session_id, SESSION);
}

#[test]
fn session_moved_answers_its_request_and_drops_the_connection() {
    let (mut h, mut a, mut b) = two_in_flight();
    let reason = reconnect(h.feed(reply(1, 5, ErrorCode::SessionMoved.code(), &Nothing)));
    assert!(reason.contains("session moved"), "{reason}");
    assert_eq!(h.core.connection_lost(&reason), None);
    assert_eq!(err(&mut a), Error::SessionMoved);
    // What was sent after it on the stale connection is lost with it.
    assert_eq!(err(&mut b), Error::ConnectionLoss);
    // The session lives on: the next handshake offers it again, taking it back.
    assert_eq!(h.core.offer().session_id, SESSION);
}

#[test]
fn a_reply_to_nothing_drops_the_connection() {
    let mut h = Harness::connected();
    reconnect(h.feed(reply(9, 5, 0, &Nothing)));
}

#[test]
fn the_state_is_disconnected_before_requests_hear_of_the_loss() {
    let mut h = Harness::connected();
    let mut a = h.get("/a");
    let mut status = h.shared.status.subscribe();
    h.core.connection_lost("test");
    assert_eq!(err(&mut a), Error::ConnectionLoss);
    assert_eq!(status.borrow_and_update().state, SessionState::Disconnected);
    assert_eq!(h.shared.details().server, None);
}

#[test]
fn xids_count_up_and_special_xids_stay_apart() {
    let mut h = Harness::connected();
    let _replies: Vec<_> = (0..3).map(|_| h.get("/x")).collect();
    h.core.on_timer(h.at(T / 3)).unwrap();
    let xids = h.written_xids();
    assert_eq!(xids, [1, 2, 3, XID_PING]);
}

#[test]
fn a_watch_event_is_delivered_before_replies_read_after_it() {
    let mut h = Harness::connected();
    let mut events = h.registered_watch(1, "/w");
    let mut later = h.get("/w");
    h.written();
    h.feed(notification(
        11,
        EventType::NodeDataChanged,
        KeeperState::SyncConnected,
        "/w",
    ))
    .unwrap();
    // The event is out while the reply read after it is not yet.
    let event = events.try_recv().unwrap().unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.zxid, 11);
    assert!(later.try_recv().is_err());
    h.feed(reply(2, 12, 0, &Nothing)).unwrap();
    assert!(later.try_recv().unwrap().is_ok());
}

#[test]
fn event_paths_lose_the_chroot() {
    let mut config = config(1);
    config.chroot = Chroot::new("/app").unwrap();
    let mut h = Harness::with(config);
    h.connect_at(h.t0);
    let mut events = h.registered_watch(1, "/app/w");
    h.feed(notification(
        11,
        EventType::NodeDeleted,
        KeeperState::SyncConnected,
        "/app/w",
    ))
    .unwrap();
    assert_eq!(events.try_recv().unwrap().unwrap().path, "/w");
}

#[test]
fn a_watching_request_that_fails_registers_nothing() {
    let mut h = Harness::connected();
    let (mut rx, mut events) = h.watch(1, "/w");
    h.written();
    h.feed(reply(1, 5, ErrorCode::NoAuth.code(), &Nothing))
        .unwrap();
    assert_eq!(err(&mut rx), Error::NoAuth);
    h.feed(notification(
        6,
        EventType::NodeDataChanged,
        KeeperState::SyncConnected,
        "/w",
    ))
    .unwrap();
    assert!(events.try_recv().is_err());
}

// ----- timers -----------------------------------------------------------------------------

#[test]
fn a_ping_goes_out_after_a_third_of_the_timeout_idle() {
    let mut h = Harness::connected();
    h.written();
    assert_eq!(h.core.next_deadline(), Some(h.at(T / 3)));
    h.core.on_timer(h.at(T / 3 - MS)).unwrap();
    assert!(h.written().is_empty());
    h.core.on_timer(h.at(T / 3)).unwrap();
    let frames = h.written();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.xid, XID_PING);
    assert_eq!(frames[0].0.op, OpCode::Ping.code());
    // The next ping is due a third of the timeout later.
    assert_eq!(h.core.next_deadline(), Some(h.at(T * 2 / 3)));
}

#[test]
fn sending_postpones_the_ping() {
    let mut h = Harness::connected();
    h.core.received(h.at(2 * T / 3 - MS));
    h.core.sent(h.at(T / 6));
    assert_eq!(h.core.next_deadline(), Some(h.at(T / 6 + T / 3)));
    h.core.on_timer(h.at(T / 3)).unwrap();
    assert!(h.written().is_empty());
}

#[test]
fn silence_for_two_thirds_of_the_timeout_drops_the_connection() {
    let mut h = Harness::connected();
    // Pings go out but nothing comes back.
    h.core.on_timer(h.at(T / 3)).unwrap();
    assert_eq!(h.core.next_deadline(), Some(h.at(T * 2 / 3)));
    h.core.on_timer(h.at(T * 2 / 3 - MS)).unwrap();
    let reason = reconnect(h.core.on_timer(h.at(T * 2 / 3)));
    assert!(reason.contains("read timeout"), "{reason}");
}

#[test]
fn hearing_from_the_server_postpones_the_read_timeout() {
    let mut h = Harness::connected();
    h.core.sent(h.at(T));
    h.core.received(h.at(T / 2));
    h.core.on_timer(h.at(T * 2 / 3)).unwrap();
    assert_eq!(h.core.next_deadline(), Some(h.at(T / 2 + T * 2 / 3)));
    assert_heard_at(&h, h.at(T / 2));
}

#[test]
fn no_deadline_while_disconnected() {
    let mut h = Harness::connected();
    h.core.connection_lost("test");
    assert_eq!(h.core.next_deadline(), None);
    h.core.on_timer(h.at(T * 10)).unwrap();
    assert!(h.core.out_mut().is_empty());
}

#[test]
fn each_attempt_gets_the_timeout_divided_among_the_hosts() {
    let h = Harness::new();
    assert_eq!(h.core.attempt_budget(h.t0, 3), Ok(T / 3));
    assert_eq!(h.core.attempt_budget(h.t0, 1), Ok(Duration::from_secs(5)));
    assert_eq!(
        h.core.attempt_budget(h.t0, 100),
        Ok(Duration::from_millis(250))
    );
}

#[test]
fn a_first_session_gives_up_at_the_connect_timeout() {
    let mut h = Harness::new();
    h.core.begin_connecting(h.t0);
    h.core
        .attempt_failed(AttemptError::Failed("zk0: refused".into()))
        .unwrap();
    // The last attempt is cut to what is left.
    assert_eq!(
        h.core.attempt_budget(h.at(Duration::from_secs(15) - MS), 3),
        Ok(MS)
    );
    match h.core.attempt_budget(h.at(Duration::from_secs(15)), 3) {
        Err(Error::ConnectFailed {
            hosts, last_error, ..
        }) => {
            assert_eq!(hosts.len(), 3);
            assert_eq!(last_error, "zk0: refused");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_attempt_that_timed_out_is_what_the_failure_names() {
    let mut h = Harness::new();
    h.core.attempt_timed_out(&"zk1:2181", T / 3);
    match h.core.attempt_budget(h.at(Duration::from_secs(20)), 3) {
        Err(Error::ConnectFailed { last_error, .. }) => {
            assert!(last_error.contains("zk1:2181: no handshake within"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_tls_refusal_is_what_a_first_session_reports() {
    let mut h = Harness::new();
    h.core
        .attempt_failed(AttemptError::Tls("zk0: bad certificate".into()))
        .unwrap();
    h.core
        .attempt_failed(AttemptError::Failed("zk1: refused".into()))
        .unwrap();
    match h.core.attempt_budget(h.at(Duration::from_secs(15)), 3) {
        Err(Error::Tls { reason, .. }) => assert_eq!(reason, "zk0: bad certificate"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn with_no_server_the_session_expires_at_its_timeout() {
    let mut h = Harness::connected();
    h.core.received(h.at(T / 2));
    reconnect(h.core.on_timer(h.at(T / 2 + T * 2 / 3)));
    assert_eq!(h.core.connection_lost("read timeout"), None);
    h.core.begin_connecting(h.at(T / 2 + T * 2 / 3));
    // An existing session's deadline is T after a server last answered, not the connect
    // timeout.
    assert_eq!(h.core.attempt_budget(h.at(T / 2 + T - MS), 3), Ok(MS));
    assert_eq!(
        h.core.attempt_budget(h.at(T / 2 + T), 3),
        Err(Error::SessionExpired)
    );
    assert_eq!(h.core.round_failed(), h.at(T / 2 + T));
}

#[test]
fn the_server_saying_expired_at_the_handshake_ends_the_session() {
    let mut h = Harness::connected();
    h.core.connection_lost("test");
    assert_eq!(
        h.core.attempt_failed(AttemptError::Expired),
        Err(Error::SessionExpired)
    );
    assert_eq!(
        h.core.attempt_failed(AttemptError::AuthFailed),
        Err(Error::AuthFailed)
    );
}

// ----- reconnect: auth, watches, held requests --------------------------------------------

#[test]
fn set_watches_follows_auth_and_precedes_held_requests() {
    let mut config = config(3);
    config.auth = crate::client::Credentials::new().with("digest", "u:p");
    let mut h = Harness::with(config);
    h.connect_at(h.t0);
    let auth = h.written();
    assert_eq!(auth[0].0.xid, XID_AUTH);
    h.feed(reply(XID_AUTH, 0, 0, &Nothing)).unwrap();
    let _events = h.registered_watch(1, "/w");
    h.feed(reply(XID_PING, 42, 0, &Nothing)).unwrap();
    h.core.connection_lost("test");
    let mut held = h.get("/held");
    assert!(h.core.out_mut().is_empty(), "sent while disconnected");
    h.connect_at(h.at(MS));
    let frames = h.written();
    let kinds: Vec<_> = frames.iter().map(|(hd, _)| (hd.xid, hd.op)).collect();
    assert_eq!(
        kinds,
        [
            (XID_AUTH, OpCode::Auth.code()),
            (XID_SET_WATCHES, OpCode::SetWatches.code()),
            (XID_PING, OpCode::Ping.code()),
            (2, OpCode::GetData.code()),
        ]
    );
    let packet: AuthPacket<'_> = decode_exact(&frames[0].1).unwrap();
    assert_eq!((packet.scheme, &packet.auth.0[..]), ("digest", &b"u:p"[..]));
    let set: SetWatches = decode_exact(&frames[1].1).unwrap();
    assert_eq!(set.relative_zxid, 42);
    assert_eq!(set.data_watches, ["/w"]);
    h.feed(reply(XID_AUTH, 43, 0, &Nothing)).unwrap();
    h.feed(reply(XID_SET_WATCHES, 43, 0, &Nothing)).unwrap();
    h.feed(reply(XID_PING, 43, 0, &Nothing)).unwrap();
    h.feed(reply(2, 44, 0, &Nothing)).unwrap();
    assert!(held.try_recv().unwrap().is_ok());
}

#[test]
fn set_watches_is_relative_to_the_last_zxid_seen_anywhere() {
    let mut h = Harness::connected();
    let _events = h.registered_watch(1, "/w");
    h.feed(notification(
        77,
        EventType::NodeChildrenChanged,
        KeeperState::SyncConnected,
        "/other",
    ))
    .unwrap();
    h.core.connection_lost("test");
    assert_eq!(h.core.offer().last_zxid, 77);
    h.connect_at(h.at(MS));
    let frames = h.written();
    let set: SetWatches = decode_exact(&frames[0].1).unwrap();
    assert_eq!(set.relative_zxid, 77);
}

#[test]
fn a_large_watch_list_is_split_into_packets() {
    let mut h = Harness::connected();
    let long = "x".repeat(1000);
    let mut events = Vec::new();
    for i in 0..300 {
        events.push(h.registered_watch(i, &format!("/{long}{i}")));
    }
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    let mut frames = h.written();
    // The re-attach probe comes last.
    assert_eq!(frames.pop().map(|(hd, _)| hd.xid), Some(XID_PING));
    assert!(frames.len() >= 3, "{} packets", frames.len());
    let mut paths = 0;
    for (header, body) in &frames {
        assert_eq!(header.xid, XID_SET_WATCHES);
        assert!(body.len() <= super::set_watches::SET_WATCHES_CHUNK + 64);
        let set: SetWatches = decode_exact(body).unwrap();
        paths += set.data_watches.len();
    }
    assert_eq!(paths, 300);
}

#[test]
fn no_set_watches_without_watches() {
    let mut h = Harness::connected();
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    assert_eq!(h.written_xids(), [XID_PING]);
}

#[test]
fn every_kind_of_watch_is_restored_in_its_list() {
    let mut h = Harness::connected();
    let _data = h.registered_watch(1, "/d");
    // An exists watch on a missing node.
    let (_rx, _exist) = h.watch(2, "/e");
    let xid = h.written().last().unwrap().0.xid;
    h.feed(reply(xid, 5, ErrorCode::NoNode.code(), &Nothing))
        .unwrap();
    let _persistent = h.registered_stream(3, WatchKind::Persistent, "/p");
    let _recursive = h.registered_stream(4, WatchKind::Recursive, "/r");
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    let frames = h.written();
    assert_eq!(frames[0].0.op, OpCode::SetWatches2.code());
    let set: SetWatches2 = decode_exact(&frames[0].1).unwrap();
    assert_eq!(set.data_watches, ["/d"]);
    assert_eq!(set.exist_watches, ["/e"]);
    assert_eq!(set.persistent_watches, ["/p"]);
    assert_eq!(set.persistent_recursive_watches, ["/r"]);
}

/// The first frame `h` wrote (the rest are dropped), which must be a SetWatches packet.
fn set_watches_written(h: &mut Harness) -> SetWatches {
    let frames = h.written();
    assert_eq!(
        (frames[0].0.xid, frames[0].0.op),
        (XID_SET_WATCHES, OpCode::SetWatches.code())
    );
    decode_exact(&frames[0].1).unwrap()
}

#[test]
fn one_shot_watches_alone_are_restored_with_set_watches_which_every_server_takes() {
    let mut h = Harness::connected();
    let _data = h.registered_watch(1, "/d");
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    assert_eq!(set_watches_written(&mut h).data_watches, ["/d"]);
}

#[test]
fn a_server_refusing_set_watches2_gets_set_watches_and_persistent_watches_end() {
    let mut h = Harness::connected();
    let mut data = h.registered_watch(1, "/d");
    let mut persistent = h.registered_stream(2, WatchKind::Persistent, "/p");
    let mut recursive = h.registered_stream(3, WatchKind::Recursive, "/r");
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    let frames = h.written();
    assert_eq!(frames[0].0.op, OpCode::SetWatches2.code());
    // A server before 3.6 answers Unimplemented (and closes the connection).
    let code = ErrorCode::Unimplemented.code();
    let reason = reconnect(h.feed(reply(XID_SET_WATCHES, 0, code, &Nothing)));
    assert!(reason.contains("SetWatches2"), "{reason}");
    assert_eq!(h.state(), SessionState::Disconnected);
    h.core.connection_lost(&reason);
    // From now on: SetWatches with the one-shot watch; the persistent and recursive watches
    // are removed, as the server would remove them, and their streams end.
    for attempt in 2..4 {
        h.connect_at(h.at(attempt * MS));
        assert_eq!(set_watches_written(&mut h).data_watches, ["/d"]);
        h.feed(reply(XID_SET_WATCHES, 0, 0, &Nothing)).unwrap();
        h.feed(reply(XID_PING, 0, 0, &Nothing)).unwrap();
        assert_eq!(h.state(), SessionState::Connected);
        h.core.connection_lost("test");
    }
    for (stream, path) in [(&mut persistent, "/p"), (&mut recursive, "/r")] {
        let removed = stream.try_recv().unwrap();
        assert_eq!(
            (removed.event_type, removed.path.as_str()),
            (EventType::PersistentWatchRemoved, path)
        );
        assert!(matches!(
            stream.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
    // The one-shot watch lives on.
    assert!(matches!(
        data.try_recv(),
        Err(oneshot::error::TryRecvError::Empty)
    ));
}

#[test]
fn unimplemented_for_set_watches_is_only_logged() {
    // SetWatches is older than any server this client can reach; a refusal of it must not
    // start a loop of reconnects.
    let mut h = Harness::connected();
    let _data = h.registered_watch(1, "/d");
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    assert_eq!(h.written()[0].0.op, OpCode::SetWatches.code());
    let code = ErrorCode::Unimplemented.code();
    h.feed(reply(XID_SET_WATCHES, 0, code, &Nothing)).unwrap();
}

#[test]
fn held_requests_go_out_in_order_on_connect() {
    let mut h = Harness::new();
    let mut a = h.get("/a");
    let mut b = h.get("/b");
    assert!(h.core.out_mut().is_empty());
    h.connect_at(h.t0);
    assert_eq!(h.written_xids(), [1, 2]);
    h.feed(reply(1, 1, 0, &Nothing)).unwrap();
    h.feed(reply(2, 2, 0, &Nothing)).unwrap();
    assert!(a.try_recv().unwrap().is_ok());
    assert!(b.try_recv().unwrap().is_ok());
}

#[test]
fn held_requests_fail_not_connected_after_a_failed_round() {
    let mut h = Harness::new();
    let mut a = h.get("/a");
    let mut auth = h.add_auth("digest", b"u:p");
    h.core.round_failed();
    assert_eq!(err(&mut a), Error::NotConnected);
    assert_eq!(auth.try_recv().unwrap(), Err(Error::NotConnected));
    // Requests made after the round wait for the next one.
    let mut b = h.get("/b");
    assert!(b.try_recv().is_err());
    h.connect_at(h.t0);
    // Xids are given as requests are written: the failed one never took one.
    assert_eq!(h.written_xids(), [1]);
}

#[test]
fn requests_in_flight_fail_with_connection_loss_and_are_not_resent() {
    let mut h = Harness::connected();
    let mut a = h.get("/a");
    h.written();
    h.core.connection_lost("test");
    assert_eq!(err(&mut a), Error::ConnectionLoss);
    h.connect_at(h.at(MS));
    assert_eq!(h.written_xids(), [XID_PING]);
}

#[test]
fn accepted_credentials_are_replayed_after_a_reconnect() {
    let mut h = Harness::connected();
    let mut answer = h.add_auth("digest", b"u:p");
    assert_eq!(h.written_xids(), [XID_AUTH]);
    h.feed(reply(XID_AUTH, 1, 0, &Nothing)).unwrap();
    assert_eq!(answer.try_recv().unwrap(), Ok(()));
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    let frames = h.written();
    assert_eq!(frames.len(), 2, "the auth packet and the probe");
    let packet: AuthPacket<'_> = decode_exact(&frames[0].1).unwrap();
    assert_eq!(packet.scheme, "digest");
    // The replayed auth's reply answers nobody.
    h.feed(reply(XID_AUTH, 2, 0, &Nothing)).unwrap();
}

#[test]
fn refused_credentials_are_not_replayed() {
    let mut h = Harness::connected();
    let mut answer = h.add_auth("nope", b"x");
    h.written();
    h.feed(reply(XID_AUTH, 1, ErrorCode::BadArguments.code(), &Nothing))
        .unwrap();
    assert_eq!(answer.try_recv().unwrap(), Err(Error::BadArguments));
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    assert_eq!(h.written_xids(), [XID_PING]);
}

#[test]
fn auth_failed_is_terminal() {
    let mut h = Harness::connected();
    let mut answer = h.add_auth("digest", b"u:bad");
    let cause = terminal(h.feed(reply(XID_AUTH, 1, ErrorCode::AuthFailed.code(), &Nothing)));
    assert_eq!(cause, Error::AuthFailed);
    assert_eq!(answer.try_recv().unwrap(), Err(Error::AuthFailed));
    h.core.terminate(cause, std::iter::empty());
    assert_eq!(h.state(), SessionState::AuthFailed);
}

#[test]
fn the_sasl_required_code_on_any_frame_is_terminal() {
    let mut h = Harness::connected();
    let _a = h.get("/a");
    let code = ErrorCode::SessionClosedRequireSaslAuth.code();
    assert_eq!(
        terminal(h.feed(reply(1, 0, code, &Nothing))),
        Error::AuthFailed
    );
}

// ----- the server saying the session is gone ----------------------------------------------

#[test]
fn session_gone_on_a_ping_reply_ends_the_session() {
    for code in [ErrorCode::SessionExpired, ErrorCode::UnknownSession] {
        let mut h = Harness::connected();
        assert_eq!(
            terminal(h.feed(reply(XID_PING, 0, code.code(), &Nothing))),
            Error::SessionExpired
        );
    }
}

#[test]
fn session_gone_on_a_set_watches_reply_ends_the_session() {
    let mut h = Harness::connected();
    let code = ErrorCode::SessionExpired.code();
    assert_eq!(
        terminal(h.feed(reply(XID_SET_WATCHES, 0, code, &Nothing))),
        Error::SessionExpired
    );
}

#[test]
fn another_set_watches_error_is_only_logged() {
    let mut h = Harness::connected();
    let code = ErrorCode::BadArguments.code();
    h.feed(reply(XID_SET_WATCHES, 0, code, &Nothing)).unwrap();
    assert_eq!(h.state(), SessionState::Connected);
}

#[test]
fn session_gone_on_a_reply_ends_the_session_after_answering() {
    let mut h = Harness::connected();
    let mut a = h.get("/a");
    let mut b = h.get("/b");
    h.written();
    let code = ErrorCode::SessionExpired.code();
    let cause = terminal(h.feed(reply(1, 0, code, &Nothing)));
    assert_eq!(cause, Error::SessionExpired);
    assert_eq!(err(&mut a), Error::SessionExpired);
    h.core.terminate(cause, std::iter::empty());
    assert_eq!(err(&mut b), Error::SessionExpired);
    assert_eq!(h.state(), SessionState::Expired);
    assert_eq!(h.shared.terminal_error(), Some(Error::SessionExpired));
}

#[test]
fn unknown_session_on_a_reply_reads_as_session_expired() {
    let mut h = Harness::connected();
    let mut a = h.get("/a");
    h.written();
    let code = ErrorCode::UnknownSession.code();
    assert_eq!(
        terminal(h.feed(reply(1, 0, code, &Nothing))),
        Error::SessionExpired
    );
    assert_eq!(err(&mut a), Error::SessionExpired);
}

#[test]
fn a_notification_of_expiry_ends_the_session() {
    let mut h = Harness::connected();
    let frame = notification(0, EventType::None, KeeperState::Expired, "");
    assert_eq!(terminal(h.feed(frame)), Error::SessionExpired);
    let mut h = Harness::connected();
    let frame = notification(0, EventType::None, KeeperState::AuthFailed, "");
    assert_eq!(terminal(h.feed(frame)), Error::AuthFailed);
    let mut h = Harness::connected();
    let frame = notification(0, EventType::None, KeeperState::SyncConnected, "");
    h.feed(frame).unwrap();
}

#[test]
fn a_notification_of_unknown_type_is_ignored() {
    let mut h = Harness::connected();
    let event = WatcherEvent {
        kind: 99,
        state: 3,
        path: "/w".into(),
    };
    h.feed(reply(XID_NOTIFICATION, 1, 0, &event)).unwrap();
}

// ----- malformed frames -------------------------------------------------------------------

#[test]
fn a_frame_too_short_for_a_header_drops_the_connection() {
    let mut h = Harness::connected();
    let mut a = h.get("/a");
    let reason = reconnect(h.feed(Bytes::from_static(&[0, 0, 0])));
    assert!(reason.contains("bad reply header"), "{reason}");
    h.core.connection_lost(&reason);
    assert_eq!(err(&mut a), Error::ConnectionLoss);
}

#[test]
fn a_malformed_notification_drops_the_connection() {
    let mut h = Harness::connected();
    let frame = reply(XID_NOTIFICATION, 1, 0, &7i32);
    let reason = reconnect(h.feed(frame));
    assert!(reason.contains("bad notification"), "{reason}");
}

// ----- close ------------------------------------------------------------------------------

#[test]
fn close_ends_the_session_when_the_server_answers() {
    let mut h = Harness::connected();
    let (tx, mut closed) = oneshot::channel();
    h.core.command(Some(Command::Close { reply: tx })).unwrap();
    let frames = h.written();
    assert_eq!(frames[0].0.op, OpCode::CloseSession.code());
    let cause = terminal(h.feed(reply(frames[0].0.xid, 9, 0, &Nothing)));
    assert_eq!(cause, Error::Closed);
    assert_eq!(closed.try_recv().unwrap(), Ok(()));
    h.core.terminate(cause, std::iter::empty());
    assert_eq!(h.state(), SessionState::Closed);
}

#[test]
fn a_second_close_is_answered_with_the_first_and_sends_nothing() {
    let mut h = Harness::connected();
    let (tx1, mut first) = oneshot::channel();
    let (tx2, mut second) = oneshot::channel();
    h.core.command(Some(Command::Close { reply: tx1 })).unwrap();
    h.core.command(Some(Command::Close { reply: tx2 })).unwrap();
    let frames = h.written();
    assert_eq!(frames.len(), 1);
    // The second is let go at once: `Client::close` reads an answer channel closed
    // unanswered as "closed".
    assert!(matches!(
        second.try_recv(),
        Err(oneshot::error::TryRecvError::Closed)
    ));
    terminal(h.feed(reply(frames[0].0.xid, 9, 0, &Nothing)));
    assert_eq!(first.try_recv().unwrap(), Ok(()));
}

#[test]
fn a_close_after_every_handle_left_gets_its_answer() {
    let mut h = Harness::connected();
    // Every handle gone: the core closes on its own.
    h.core.command(None).unwrap();
    let frames = h.written();
    assert_eq!(frames[0].0.op, OpCode::CloseSession.code());
    let (tx, mut late) = oneshot::channel();
    h.core.command(Some(Command::Close { reply: tx })).unwrap();
    assert!(h.written().is_empty());
    terminal(h.feed(reply(frames[0].0.xid, 9, 0, &Nothing)));
    assert_eq!(late.try_recv().unwrap(), Ok(()));
}

#[test]
fn close_while_disconnected_ends_the_session_at_once() {
    let mut h = Harness::connected();
    h.core.connection_lost("test");
    let mut held = h.get("/a");
    let (tx, mut closed) = oneshot::channel();
    let cause = terminal(h.core.command(Some(Command::Close { reply: tx })));
    assert_eq!(cause, Error::Closed);
    h.core.terminate(cause, std::iter::empty());
    assert_eq!(closed.try_recv().unwrap(), Ok(()));
    assert_eq!(err(&mut held), Error::Closed);
    assert_eq!(h.state(), SessionState::Closed);
}

#[test]
fn every_handle_gone_while_disconnected_ends_the_session() {
    let mut h = Harness::new();
    assert_eq!(terminal(h.core.command(None)), Error::Closed);
}

#[test]
fn losing_the_connection_while_closing_counts_as_closed() {
    let mut h = Harness::connected();
    let (tx, mut closed) = oneshot::channel();
    h.core.command(Some(Command::Close { reply: tx })).unwrap();
    assert_eq!(h.core.connection_lost("test"), Some(Error::Closed));
    assert_eq!(closed.try_recv().unwrap(), Ok(()));
    // Closing: the state does not flap to Disconnected on the way out.
    assert_eq!(h.state(), SessionState::Connected);
}

#[test]
fn the_end_answers_everything_still_waiting() {
    let mut h = Harness::connected();
    let mut events = h.registered_watch(1, "/w");
    let mut in_flight = h.get("/a");
    h.core.connection_lost("test");
    let _ = err(&mut in_flight);
    let mut held = h.get("/b");
    let (late, mut late_rx) = request(OpCode::GetData, "/c", OnReply::Nothing);
    h.core
        .terminate(Error::SessionExpired, std::iter::once(late));
    assert_eq!(err(&mut held), Error::SessionExpired);
    assert_eq!(err(&mut late_rx), Error::SessionExpired);
    assert_eq!(err(&mut events), Error::SessionExpired);
    assert_eq!(h.state(), SessionState::Expired);
}

// ----- unwatch ----------------------------------------------------------------------------

fn unwatch(id: u64, kind: WatchKind, path: &str) -> Option<Command> {
    Some(Command::Unwatch {
        id,
        kind,
        server_path: path.to_owned(),
    })
}

#[test]
fn dropping_the_last_watcher_removes_the_server_watch() {
    let mut h = Harness::connected();
    let events = h.registered_watch(1, "/w");
    drop(events);
    h.core.command(unwatch(1, WatchKind::Data, "/w")).unwrap();
    let frames = h.written();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.op, OpCode::RemoveWatches.code());
    let record: WatchesRequest<'_> = decode_exact(&frames[0].1).unwrap();
    assert_eq!((record.path, record.kind), ("/w", WatcherType::Data.code()));
    // Its reply answers nobody.
    h.feed(reply(frames[0].0.xid, 3, 0, &Nothing)).unwrap();
}

#[test]
fn a_watcher_left_on_the_path_keeps_the_server_watch() {
    let mut h = Harness::connected();
    let _one = h.registered_watch(1, "/w");
    let _two = h.registered_watch(2, "/w");
    h.core.command(unwatch(1, WatchKind::Data, "/w")).unwrap();
    assert!(h.written().is_empty());
}

#[test]
fn no_removal_while_a_watching_request_is_in_flight() {
    let mut h = Harness::connected();
    let _events = h.registered_watch(1, "/w");
    // A second watching read on the same path, not yet answered.
    let (_rx, _second) = h.watch(2, "/w");
    h.written();
    h.core.command(unwatch(1, WatchKind::Data, "/w")).unwrap();
    assert!(h.written().is_empty());
}

#[test]
fn unwatch_while_disconnected_forgets_without_sending() {
    let mut h = Harness::connected();
    let _events = h.registered_watch(1, "/w");
    h.core.connection_lost("test");
    h.core.command(unwatch(1, WatchKind::Data, "/w")).unwrap();
    h.connect_at(h.at(MS));
    // Nothing to restore and nothing to remove: only the re-attach probe.
    assert_eq!(h.written_xids(), [XID_PING]);
}

#[test]
fn a_watch_whose_handle_left_before_the_reply_is_removed_again() {
    let mut h = Harness::connected();
    let (_rx, events) = h.watch(1, "/w");
    h.written();
    drop(events);
    h.feed(reply(1, 5, 0, &Nothing)).unwrap();
    let frames = h.written();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.op, OpCode::RemoveWatches.code());
}

impl Harness {
    /// A persistent watch of `kind` on `path`, confirmed by the server; returns its stream.
    fn registered_stream(
        &mut self,
        id: u64,
        kind: WatchKind,
        path: &str,
    ) -> mpsc::UnboundedReceiver<WatchedEvent> {
        let (sink, stream) = mpsc::unbounded_channel();
        let (command, mut rx) = request(
            OpCode::AddWatch,
            path,
            OnReply::RegisterWatch {
                id,
                server_path: path.into(),
                on_ok: kind,
                on_no_node: None,
                sink: WatchSink::Stream(sink),
            },
        );
        self.core.command(Some(command)).unwrap();
        let xid = self.written()[0].0.xid;
        self.feed(reply(xid, 5, 0, &Nothing)).unwrap();
        assert!(rx.try_recv().unwrap().is_ok());
        stream
    }
}

/// Sends a read of `op` on `path` with its watch flag set, registering a one-shot `kind`.
fn watching_read(
    h: &mut Harness,
    op: OpCode,
    id: u64,
    kind: WatchKind,
    path: &str,
) -> (ReplyRx, EventRx) {
    let (sink, events) = oneshot::channel();
    let body = encode_body(&PathWatchRequest { path, watch: true }, 0, 1 << 20).unwrap();
    let (reply, rx) = oneshot::channel();
    let on_reply = OnReply::RegisterWatch {
        id,
        server_path: path.to_owned(),
        on_ok: kind,
        on_no_node: None,
        sink: WatchSink::Oneshot(sink),
    };
    h.core
        .command(Some(Command::Request(Box::new(Request {
            op,
            body,
            reply,
            on_reply,
            span: tracing::Span::none(),
        }))))
        .unwrap();
    (rx, events)
}

/// The watch flag of the one read the core just wrote.
fn written_watch_flag(h: &mut Harness) -> (i32, bool) {
    let frames = h.written();
    assert_eq!(frames.len(), 1);
    let record: PathWatchRequest<'_> = decode_exact(&frames[0].1).unwrap();
    (frames[0].0.xid, record.watch)
}

#[test]
fn a_one_shot_under_a_persistent_watch_is_kept_client_side_and_armed_when_it_goes() {
    let mut h = Harness::connected();
    let _stream = h.registered_stream(5, WatchKind::Persistent, "/p");
    let (_reply, mut data) = watching_read(&mut h, OpCode::GetData, 6, WatchKind::Data, "/p");
    // Covered: the read goes without its watch flag, which would make the server's entry
    // one-shot (ZOOKEEPER-4466).
    let (xid, watch) = written_watch_flag(&mut h);
    assert!(!watch);
    h.feed(reply(xid, 6, 0, &Nothing)).unwrap();
    // The persistent watch's events fire it.
    h.feed(notification(
        7,
        EventType::NodeDataChanged,
        KeeperState::SyncConnected,
        "/p",
    ))
    .unwrap();
    assert!(data.try_recv().unwrap().is_ok());

    // Another one-shot, then the persistent watch goes: the server's entries step down to a
    // one-shot data entry in place (a watching exists) and no child entry.
    let (_reply, _data) = watching_read(&mut h, OpCode::GetData, 8, WatchKind::Data, "/p");
    let (xid, _) = written_watch_flag(&mut h);
    h.feed(reply(xid, 8, 0, &Nothing)).unwrap();
    h.core
        .command(unwatch(5, WatchKind::Persistent, "/p"))
        .unwrap();
    let frames = h.written();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].0.op, OpCode::Exists.code());
    let armed: PathWatchRequest<'_> = decode_exact(&frames[0].1).unwrap();
    assert!(armed.watch);
    assert_eq!(frames[1].0.op, OpCode::RemoveWatches.code());
    let removed: WatchesRequest<'_> = decode_exact(&frames[1].1).unwrap();
    assert_eq!(removed.kind, WatcherType::Children.code());
    // Uncovered now: the one-shot's own removal goes to the server.
    h.core.command(unwatch(8, WatchKind::Data, "/p")).unwrap();
    let frames = h.written();
    let record: WatchesRequest<'_> = decode_exact(&frames[0].1).unwrap();
    assert_eq!(record.kind, WatcherType::Data.code());
}

#[test]
fn a_persistent_watch_under_a_recursive_one_is_sent_recursive_and_hears_child_lists() {
    let mut h = Harness::connected();
    let mut recursive = h.registered_stream(5, WatchKind::Recursive, "/p");
    let mut persistent = h.registered_stream(6, WatchKind::Persistent, "/p");
    // (registered_stream sends the harness's body; the core re-encodes the mode it sends.)
    h.feed(notification(
        7,
        EventType::NodeCreated,
        KeeperState::SyncConnected,
        "/p/c",
    ))
    .unwrap();
    assert_eq!(recursive.try_recv().unwrap().path, "/p/c");
    let derived = persistent.try_recv().unwrap();
    assert_eq!(derived.event_type, EventType::NodeChildrenChanged);
    assert_eq!((derived.path.as_str(), derived.zxid), ("/p", 7));
    // Not for grandchildren.
    h.feed(notification(
        8,
        EventType::NodeDeleted,
        KeeperState::SyncConnected,
        "/p/c/d",
    ))
    .unwrap();
    assert!(persistent.try_recv().is_err());

    // The recursive watch goes: the entry steps down to persistent in place; events read
    // before that reply still came from the recursive entry.
    h.core
        .command(unwatch(5, WatchKind::Recursive, "/p"))
        .unwrap();
    let frames = h.written();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0.op, OpCode::AddWatch.code());
    let added: AddWatchRequest<'_> = decode_exact(&frames[0].1).unwrap();
    assert_eq!(added.mode, AddWatchMode::Persistent.code());
    h.feed(notification(
        9,
        EventType::NodeDeleted,
        KeeperState::SyncConnected,
        "/p/c",
    ))
    .unwrap();
    assert_eq!(
        persistent.try_recv().unwrap().event_type,
        EventType::NodeChildrenChanged
    );
    h.feed(reply(frames[0].0.xid, 9, 0, &Nothing)).unwrap();
    h.feed(notification(
        10,
        EventType::NodeCreated,
        KeeperState::SyncConnected,
        "/p/e",
    ))
    .unwrap();
    assert!(persistent.try_recv().is_err());
}

#[test]
fn an_add_watch_under_a_recursive_entry_is_rewritten_recursive() {
    let mut h = Harness::connected();
    let _recursive = h.registered_stream(5, WatchKind::Recursive, "/p");
    let (sink, _stream) = mpsc::unbounded_channel();
    let body = encode_body(
        &AddWatchRequest {
            path: "/p",
            mode: AddWatchMode::Persistent.code(),
        },
        0,
        1 << 20,
    )
    .unwrap();
    let (reply_tx, _rx) = oneshot::channel();
    h.core
        .command(Some(Command::Request(Box::new(Request {
            op: OpCode::AddWatch,
            body,
            reply: reply_tx,
            on_reply: OnReply::RegisterWatch {
                id: 6,
                server_path: "/p".into(),
                on_ok: WatchKind::Persistent,
                on_no_node: None,
                sink: WatchSink::Stream(sink),
            },
            span: tracing::Span::none(),
        }))))
        .unwrap();
    let frames = h.written();
    let sent: AddWatchRequest<'_> = decode_exact(&frames[0].1).unwrap();
    assert_eq!(sent.mode, AddWatchMode::PersistentRecursive.code());
}

#[test]
fn a_one_shot_sent_under_a_failed_add_watch_is_armed_after_all() {
    let mut h = Harness::connected();
    let (sink, _stream) = mpsc::unbounded_channel();
    let (command, _added) = request(
        OpCode::AddWatch,
        "/p",
        OnReply::RegisterWatch {
            id: 5,
            server_path: "/p".into(),
            on_ok: WatchKind::Persistent,
            on_no_node: None,
            sink: WatchSink::Stream(sink),
        },
    );
    h.core.command(Some(command)).unwrap();
    let (_reply, _data) = watching_read(&mut h, OpCode::GetData, 6, WatchKind::Data, "/p");
    let frames = h.written();
    let read: PathWatchRequest<'_> = decode_exact(&frames[1].1).unwrap();
    assert!(!read.watch, "covered by the addWatch in flight");
    // A server before 3.6 refuses addWatch: the one-shot is armed on the server after all.
    h.feed(reply(
        frames[0].0.xid,
        5,
        ErrorCode::Unimplemented.code(),
        &Nothing,
    ))
    .unwrap();
    let armed = h.written();
    assert_eq!(armed.len(), 1);
    assert_eq!(armed[0].0.op, OpCode::Exists.code());
    let record: PathWatchRequest<'_> = decode_exact(&armed[0].1).unwrap();
    assert!(record.watch);
}

#[test]
fn after_a_reconnect_the_restored_persistent_watch_still_covers_its_path() {
    let mut h = Harness::connected();
    let _stream = h.registered_stream(5, WatchKind::Persistent, "/p");
    let (_reply, _data) = watching_read(&mut h, OpCode::GetData, 6, WatchKind::Data, "/p");
    let (xid, _) = written_watch_flag(&mut h);
    h.feed(reply(xid, 6, 0, &Nothing)).unwrap();
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    let frames = h.written();
    let restore = frames
        .iter()
        .find(|(header, _)| header.xid == XID_SET_WATCHES)
        .expect("a watch restore");
    // One-shots first, persistent last: the server's entry ends persistent.
    let set: SetWatches2 = decode_exact(&restore.1).unwrap();
    assert_eq!(set.data_watches, ["/p"]);
    assert_eq!(set.persistent_watches, ["/p"]);
    h.feed(reply(XID_SET_WATCHES, 6, 0, &Nothing)).unwrap();
    let (_reply, _again) = watching_read(&mut h, OpCode::GetData, 7, WatchKind::Data, "/p");
    let frames = h.written();
    let last: PathWatchRequest<'_> = decode_exact(&frames.last().unwrap().1).unwrap();
    assert!(!last.watch, "the restored persistent watch covers the path");
}

#[test]
fn a_lone_persistent_watch_is_removed_as_any() {
    let mut h = Harness::connected();
    let _stream = h.registered_stream(5, WatchKind::Recursive, "/p");
    h.core
        .command(unwatch(5, WatchKind::Recursive, "/p"))
        .unwrap();
    let frames = h.written();
    let record: WatchesRequest<'_> = decode_exact(&frames[0].1).unwrap();
    assert_eq!(record.kind, WatcherType::Any.code());
}

// ----- sessions offered -------------------------------------------------------------------

#[test]
fn a_session_only_read_only_servers_knew_is_not_offered_again() {
    let mut config = config(3);
    config.read_only = true;
    let mut h = Harness::with(config);
    assert_eq!(h.core.offer().session_id, SessionId(0));
    h.connect_as(h.t0, SessionId(7), true);
    h.core.connection_lost("test");
    assert_eq!(h.core.offer().session_id, SessionId(0));
    assert!(h.core.offer().password.0.is_empty());
    // Once a read-write server has it, it is offered everywhere.
    h.connect_as(h.at(MS), SessionId(8), false);
    h.core.connection_lost("test");
    assert_eq!(h.core.offer().session_id, SessionId(8));
}

#[test]
fn a_resumed_session_is_offered() {
    let mut config = config(1);
    config.resume = Some((SessionId(99), SessionPassword(Bytes::from_static(b"pw"))));
    let h = Harness::with(config);
    let offer = h.core.offer();
    assert_eq!(offer.session_id, SessionId(99));
    assert_eq!(&offer.password.0[..], b"pw");
}

#[test]
fn connecting_publishes_the_session_and_its_mode() {
    let mut h = Harness::new();
    h.connect_as(h.t0, SESSION, true);
    assert_eq!(h.state(), SessionState::ConnectedReadOnly);
    let details = h.shared.details();
    assert_eq!(details.session_id, SESSION);
    assert_eq!(details.negotiated_timeout, Some(T));
    assert_heard_at(&h, h.t0);
}

// ----- re-attach probe --------------------------------------------------------------------

/// A core that was connected at `t0`, lost its connection, and re-attached to its session at
/// `t0 + 1 ms`; the frames written on connect are taken.
fn reattached() -> Harness {
    let mut h = Harness::connected();
    h.core.connection_lost("test");
    h.connect_at(h.at(MS));
    h
}

#[test]
fn a_new_session_is_connected_at_once_without_a_probe() {
    let h = Harness::connected();
    assert_eq!(h.state(), SessionState::Connected);
    assert!(h.core.probe_deadline().is_none());
    let mut h = Harness::new();
    h.connect_at(h.t0);
    assert!(
        h.core.out_mut().is_empty(),
        "a new session sends nothing at once"
    );
}

#[test]
fn the_reattach_probe_follows_auth_and_set_watches_and_precedes_held_requests() {
    let mut config = config(3);
    config.auth = crate::client::Credentials::new().with("digest", "u:p");
    let mut h = Harness::with(config);
    h.connect_at(h.t0);
    h.written();
    h.feed(reply(XID_AUTH, 0, 0, &Nothing)).unwrap();
    let _events = h.registered_watch(1, "/w");
    h.core.connection_lost("test");
    let _held = h.get("/held");
    h.connect_at(h.at(MS));
    assert_eq!(h.written_xids(), [XID_AUTH, XID_SET_WATCHES, XID_PING, 2]);
}

#[test]
fn a_reattached_session_stays_unconnected_until_the_server_answers() {
    let mut h = Harness::connected();
    let _events = h.registered_watch(1, "/w");
    let mut status = h.shared.status.subscribe();
    let connections = status.borrow_and_update().connections;
    h.core.connection_lost("test");
    h.add_auth("digest", b"u:p");
    h.connect_at(h.at(MS));
    assert_eq!(h.state(), SessionState::Disconnected);
    // Neither an auth reply (sent before the server's request pipeline) nor a notification
    // proves that the server still knows the session.
    h.feed(reply(XID_AUTH, 1, 0, &Nothing)).unwrap();
    h.feed(notification(
        2,
        EventType::NodeDataChanged,
        KeeperState::SyncConnected,
        "/w",
    ))
    .unwrap();
    assert_eq!(h.state(), SessionState::Disconnected);
    h.feed(reply(XID_SET_WATCHES, 3, 0, &Nothing)).unwrap();
    assert_eq!(h.state(), SessionState::Connected);
    assert_eq!(status.borrow_and_update().connections, connections + 1);
    // The probe's own answer changes nothing more.
    h.feed(reply(XID_PING, 3, 0, &Nothing)).unwrap();
    assert!(!status.has_changed().unwrap());
    assert!(h.core.probe_deadline().is_none());
}

#[test]
fn the_probe_reply_proves_a_reattached_read_only_session() {
    // A session a read-write server made, moving to a read-only server.
    let mut h = Harness::connected();
    h.core.connection_lost("test");
    h.connect_as(h.at(MS), SESSION, true);
    assert_eq!(h.state(), SessionState::Disconnected);
    h.feed(reply(XID_PING, 1, 0, &Nothing)).unwrap();
    assert_eq!(h.state(), SessionState::ConnectedReadOnly);
}

#[test]
fn silence_past_the_probe_deadline_drops_the_connection() {
    let mut h = reattached();
    assert_eq!(h.written_xids(), [XID_PING]);
    let deadline = h.at(MS + super::probe::FIRST_PROBE_MAX);
    assert_eq!(h.core.next_deadline(), Some(deadline));
    h.core.on_timer(deadline - MS).unwrap();
    let reason = reconnect(h.core.on_timer(deadline));
    assert!(reason.contains("probe"), "{reason}");
    assert_eq!(h.state(), SessionState::Disconnected);
}

#[test]
fn an_expired_answer_to_the_probe_ends_the_session_unconnected() {
    let mut h = reattached();
    let cause = terminal(h.feed(reply(
        XID_PING,
        1,
        ErrorCode::SessionExpired.code(),
        &Nothing,
    )));
    assert_eq!(cause, Error::SessionExpired);
    assert_eq!(h.state(), SessionState::Disconnected);
}

#[test]
fn each_unanswered_probe_doubles_the_next_wait_and_an_answer_starts_over() {
    let first = super::probe::FIRST_PROBE_MAX;
    let mut h = reattached();
    let mut at = h.at(MS);
    for wait in [first, first * 2, first * 4] {
        assert_eq!(h.core.next_deadline(), Some(at + wait));
        reconnect(h.core.on_timer(at + wait));
        h.core.connection_lost("probe");
        at += wait;
        h.connect_at(at);
    }
    // Never longer than the read timeout.
    for _ in 0..10 {
        let deadline = h.core.next_deadline().unwrap();
        assert!(deadline - at <= T * 2 / 3);
        reconnect(h.core.on_timer(deadline));
        h.core.connection_lost("probe");
        at = deadline;
        h.connect_at(at);
    }
    assert_eq!(h.core.next_deadline(), Some(at + T * 2 / 3));
    h.feed(reply(XID_PING, 1, 0, &Nothing)).unwrap();
    h.core.connection_lost("test");
    h.connect_at(at + MS);
    assert_eq!(h.core.next_deadline(), Some(at + MS + first));
}

#[test]
fn the_first_probe_waits_a_third_of_a_short_session_timeout() {
    let short = Duration::from_millis(600);
    let mut h = Harness::with(SessionConfig::for_tests(1, short));
    let hs = || Handshaken {
        session_id: SESSION,
        password: SessionPassword(Bytes::from_static(b"0123456789abcdef")),
        negotiated: short,
        read_only: false,
        addr: "127.0.0.1:2181".parse().unwrap(),
    };
    h.core.connected(&hs(), h.t0);
    h.core.connection_lost("test");
    h.core.connected(&hs(), h.at(MS));
    assert_eq!(h.core.next_deadline(), Some(h.at(MS + short / 3)));
}
