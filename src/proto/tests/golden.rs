//! Golden tests: reply frames captured from a real ZooKeeper 3.8.0 server
//! (`fixtures/server_replies.txt`). Each frame is decoded with the crate's records, its fields
//! are checked against what the capturing session did, and — where jute has only one way to
//! write the value — the decoded records are re-encoded and compared byte for byte.

use std::collections::BTreeSet;
use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use super::fixtures::server_replies;
use super::{encode_multi_results, hex};
use crate::proto::jute::{Jute, Reader, decode_exact};
use crate::proto::multi::{OpResult, decode_multi_results};
use crate::proto::opcode::{XID_AUTH, XID_NOTIFICATION, XID_PING, XID_SET_WATCHES};
use crate::proto::records::{
    ClientInfo, ConnectResponse, Create2Response, CreateResponse, ErrorResponse, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse, GetDataResponse,
    GetEphemeralsResponse, ReplyHeader, StatResponse, SyncResponse, WatcherEvent, WhoAmIResponse,
};
use crate::proto::{Acl, ErrorCode, EventType, KeeperState, Stat};

/// Every fixture in the file, each checked by a test below. A fixture added to the file without a
/// test (or a test for a fixture that is gone) fails `every_fixture_is_checked`.
const CHECKED: &[&str] = &[
    "connect_response",
    "connect_response_resumed",
    "connect_response_expired",
    "create",
    "create2",
    "create_sequential",
    "create_ephemeral",
    "create_ttl",
    "create_container",
    "create_null_data",
    "get_data",
    "get_data_null",
    "exists",
    "exists_missing",
    "get_children",
    "get_children2",
    "get_children_empty",
    "get_acl",
    "set_data",
    "set_acl",
    "get_acl_read_only",
    "multi_ok",
    "multi_fail",
    "multi_read",
    "event_data_changed",
    "event_created",
    "event_deleted",
    "event_children_changed",
    "event_recursive_data_changed",
    "ping",
    "get_all_children_number",
    "get_ephemerals",
    "sync",
    "add_watch",
    "remove_watches_persistent_unsupported",
    "remove_watches",
    "check_watches_none",
    "set_watches2",
    "who_am_i_anonymous",
    "auth",
    "who_am_i",
    "err_node_exists",
    "err_no_node",
    "err_bad_version",
    "err_not_empty",
    "err_no_auth",
    "close_session",
];

/// The two handshake replies are bare records; every other frame starts with a reply header.
const HANDSHAKES: &[&str] = &[
    "connect_response",
    "connect_response_resumed",
    "connect_response_expired",
];

/// A captured reply split into its header and body.
struct Reply {
    name: &'static str,
    frame: Bytes,
    header: ReplyHeader,
    body: Bytes,
}

fn reply(name: &'static str) -> Reply {
    let frame = server_replies().get(name);
    let mut r = Reader::new(&frame);
    let header = ReplyHeader::read(&mut r).unwrap_or_else(|e| panic!("{name}: reply header: {e}"));
    let body = frame.slice(r.position()..);
    Reply {
        name,
        frame,
        header,
        body,
    }
}

impl Reply {
    /// Decodes the body as a `T` that must fill it, and checks that encoding the header and that
    /// `T` again yields exactly the captured frame.
    fn canonical<T>(&self) -> T
    where
        T: for<'a> Jute<'a> + Debug,
    {
        let body: T = decode_exact(&self.body)
            .unwrap_or_else(|e| panic!("{}: body does not decode: {e}", self.name));
        self.assert_reencodes(|buf| body.write(buf));
        body
    }

    /// Checks the reply has no body and that its header re-encodes to the captured frame.
    fn header_only(&self) -> &ReplyHeader {
        assert!(
            self.body.is_empty(),
            "{}: unexpected body {}",
            self.name,
            hex(&self.body)
        );
        self.assert_reencodes(|_| {});
        &self.header
    }

    /// Checks the reply failed with `code` (and so, like every failed reply, has no body).
    fn assert_error(&self, code: ErrorCode) {
        assert_eq!(
            ErrorCode::from_code(self.header.err),
            code,
            "{}: error code",
            self.name
        );
        assert!(self.header.xid > 0, "{}: ordinary xid", self.name);
        self.header_only();
    }

    fn assert_ok(&self) {
        assert_eq!(self.header.err, 0, "{}: expected success", self.name);
    }

    fn assert_reencodes(&self, write_body: impl FnOnce(&mut BytesMut)) {
        let mut buf = BytesMut::new();
        self.header.write(&mut buf);
        write_body(&mut buf);
        assert_eq!(
            hex(&buf),
            hex(&self.frame),
            "{}: re-encoding differs",
            self.name
        );
    }

    /// Decodes the body of a `multi` / `multiRead` reply and checks the results re-encode to it.
    fn multi_results(&self) -> Vec<OpResult> {
        self.assert_ok();
        let results = decode_multi_results(&self.body)
            .unwrap_or_else(|e| panic!("{}: multi results: {e}", self.name));
        assert_eq!(
            hex(&encode_multi_results(&results)),
            hex(&self.body),
            "{}: re-encoding differs",
            self.name
        );
        results
    }
}

/// A handshake reply, a bare [`ConnectResponse`], checked to re-encode canonically.
fn connect_response(name: &str) -> ConnectResponse {
    let frame = server_replies().get(name);
    let response: ConnectResponse = decode_exact(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        hex(&crate::proto::jute::encode_to_bytes(&response)),
        hex(&frame),
        "{name}: re-encoding differs"
    );
    response
}

fn sorted(names: &[String]) -> Vec<&str> {
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    names
}

/// A freshly created node's stat, with the fields every such stat shares checked.
fn assert_fresh(stat: &Stat, zxid: i64, data_len: i32) {
    assert_eq!(stat.czxid, zxid, "czxid");
    assert_eq!(stat.mzxid, zxid, "mzxid");
    assert_eq!(stat.pzxid, zxid, "pzxid");
    assert_eq!(stat.ctime, stat.mtime);
    assert!(
        stat.ctime > 1_600_000_000_000,
        "ctime is epoch milliseconds"
    );
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(stat.data_length, data_len, "data length");
    assert_eq!(stat.num_children, 0);
}

#[test]
fn every_fixture_is_checked() {
    let in_file: BTreeSet<&str> = server_replies().names().collect();
    let checked: BTreeSet<&str> = CHECKED.iter().copied().collect();
    assert_eq!(checked.len(), CHECKED.len(), "CHECKED lists a name twice");
    assert_eq!(in_file, checked);
}

#[test]
fn every_reply_header_has_a_known_error_code() {
    for name in CHECKED.iter().filter(|n| !HANDSHAKES.contains(n)) {
        let code = ErrorCode::from_code(reply(name).header.err);
        assert!(!matches!(code, ErrorCode::Unknown(_)), "{name}: {code:?}");
    }
}

#[test]
fn handshake_replies() {
    let first = connect_response("connect_response");
    assert_eq!(first.protocol_version, 0);
    assert_eq!(
        first.timeout_ms, 4000,
        "the requested timeout, within the server's bounds"
    );
    assert_ne!(first.session_id, 0);
    assert_eq!(first.password.0.len(), 16);
    assert!(!first.read_only);
    // The server writes the trailing one-byte readOnly flag.
    let frame = server_replies().get("connect_response");
    assert_eq!(frame.len(), 4 + 4 + 8 + 4 + 16 + 1);
    assert_eq!(frame.last(), Some(&0));

    // Resuming the session on a new connection gives back the same id and password.
    let resumed = connect_response("connect_response_resumed");
    assert_eq!(resumed, first);

    // Resuming it after it was closed: the expired-session answer.
    let expired = connect_response("connect_response_expired");
    assert_eq!(expired.timeout_ms, 0);
    assert_eq!(expired.session_id, 0);
    assert_eq!(&expired.password.0[..], &[0u8; 16]);
    assert!(!expired.read_only);
}

#[test]
fn handshake_reply_without_read_only_flag_still_decodes() {
    // Servers before 3.4 did not send the flag; dropping it must decode as `false`.
    let frame = server_replies().get("connect_response");
    let old = frame.slice(..frame.len() - 1);
    let response: ConnectResponse = decode_exact(&old).unwrap();
    assert_eq!(response, connect_response("connect_response"));
}

#[test]
fn create_replies() {
    let session = connect_response("connect_response").session_id;

    let create = reply("create");
    create.assert_ok();
    assert_eq!(create.header.xid, 1, "first request of the session");
    let body: CreateResponse = create.canonical();
    assert_eq!(body.path, "/zkw");

    let create2 = reply("create2");
    create2.assert_ok();
    let body: Create2Response = create2.canonical();
    assert_eq!(body.path, "/zkw/c2");
    assert_fresh(&body.stat, create2.header.zxid, 3);
    assert_eq!(body.stat.ephemeral_owner, 0);

    let seq = reply("create_sequential");
    let body: CreateResponse = seq.canonical();
    let suffix = body
        .path
        .strip_prefix("/zkw/seq-")
        .expect("sequential prefix");
    assert_eq!(suffix.len(), 10);
    assert!(suffix.bytes().all(|b| b.is_ascii_digit()), "{suffix}");

    let eph = reply("create_ephemeral");
    let body: Create2Response = eph.canonical();
    assert_eq!(body.path, "/zkw/eph");
    assert_fresh(&body.stat, eph.header.zxid, 1);
    assert_eq!(
        body.stat.ephemeral_owner, session,
        "owned by the creating session"
    );

    let ttl = reply("create_ttl");
    let body: Create2Response = ttl.canonical();
    assert_eq!(body.path, "/zkw/ttl");
    assert_fresh(&body.stat, ttl.header.zxid, 1);

    let container = reply("create_container");
    let body: Create2Response = container.canonical();
    assert_eq!(body.path, "/zkw/box");
    assert_fresh(&body.stat, container.header.zxid, 0);

    let null = reply("create_null_data");
    let body: Create2Response = null.canonical();
    assert_eq!(body.path, "/zkw/nul");
    assert_fresh(&body.stat, null.header.zxid, 0);

    // Each create is its own transaction.
    let zxids = [&create, &create2, &seq, &eph, &ttl, &container, &null].map(|r| r.header.zxid);
    assert!(zxids.windows(2).all(|w| w[0] + 1 == w[1]), "{zxids:?}");
}

#[test]
fn get_data_reply() {
    let r = reply("get_data");
    r.assert_ok();
    let body: GetDataResponse = r.canonical();
    assert_eq!(&body.data[..], b"hello");
    assert_eq!(body.stat.data_length, 5);
    assert_eq!(body.stat.version, 0);
    assert_eq!(body.stat.num_children, 6, "c2, seq-, eph, ttl, box, nul");
    assert_eq!(body.stat.czxid, reply("create").header.zxid);
    // The data is sliced out of the frame, not copied.
    assert_eq!(body.data.as_ptr(), r.body[4..].as_ptr());
}

#[test]
fn get_data_of_null_data_reads_as_empty() {
    // A node created with null data comes back as a null (-1 length) buffer. That decodes as
    // empty data; re-encoding writes a zero length instead, so this one is not canonical.
    let r = reply("get_data_null");
    r.assert_ok();
    assert_eq!(&r.body[..4], &[0xff; 4]);
    let body: GetDataResponse = decode_exact(&r.body).unwrap();
    assert!(body.data.is_empty());
    assert_eq!(body.stat.data_length, 0);
    let mut expected = r.body.to_vec();
    expected[..4].copy_from_slice(&[0; 4]);
    assert_eq!(
        hex(&crate::proto::jute::encode_to_bytes(&body)),
        hex(&expected)
    );
}

#[test]
fn exists_replies() {
    let r = reply("exists");
    r.assert_ok();
    let body: StatResponse = r.canonical();
    assert_eq!(body.stat.data_length, 3);
    assert_eq!(body.stat.czxid, reply("create2").header.zxid);

    // A missing node is an error reply with no body, not an empty stat.
    reply("exists_missing").assert_error(ErrorCode::NoNode);
}

#[test]
fn children_replies() {
    let expected = ["box", "c2", "eph", "nul", "seq-0000000001", "ttl"];

    let r = reply("get_children");
    r.assert_ok();
    let body: GetChildrenResponse = r.canonical();
    assert_eq!(sorted(&body.children), expected);

    let r = reply("get_children2");
    r.assert_ok();
    let body: GetChildren2Response = r.canonical();
    assert_eq!(sorted(&body.children), expected);
    assert_eq!(body.stat.num_children, 6);
    assert_eq!(body.stat.cversion, 6, "six children created");

    let r = reply("get_children_empty");
    r.assert_ok();
    let body: GetChildrenResponse = r.canonical();
    assert!(body.children.is_empty());
}

#[test]
fn acl_replies() {
    let r = reply("get_acl");
    r.assert_ok();
    let body: GetAclResponse = r.canonical();
    assert_eq!(body.acl, Acl::OPEN_UNSAFE);
    assert_eq!(body.stat.aversion, 0);

    let r = reply("set_acl");
    r.assert_ok();
    let body: StatResponse = r.canonical();
    assert_eq!(body.stat.aversion, 1);
    assert_eq!(body.stat.version, 0, "setACL leaves the data version alone");

    let r = reply("get_acl_read_only");
    let body: GetAclResponse = r.canonical();
    assert_eq!(body.acl, Acl::READ_UNSAFE);
    assert_eq!(body.stat.aversion, 1);
}

#[test]
fn set_data_reply() {
    let r = reply("set_data");
    r.assert_ok();
    let body: StatResponse = r.canonical();
    assert_eq!(body.stat.version, 1);
    assert_eq!(body.stat.data_length, 6, "two-v1");
    assert_eq!(body.stat.mzxid, r.header.zxid);
    assert!(body.stat.mtime >= body.stat.ctime);
}

#[test]
fn successful_multi() {
    let r = reply("multi_ok");
    let results = r.multi_results();
    assert_eq!(results.len(), 4);
    // ZooKeeper 3.8.0 answers a create2 inside multi with a plain `create` result (no stat).
    assert_eq!(
        results[0],
        OpResult::Create {
            path: "/zkw/m1".into(),
            stat: None
        }
    );
    let OpResult::SetData { stat } = &results[1] else {
        panic!("expected a setData result, got {:?}", results[1]);
    };
    assert_eq!(stat.version, 1);
    assert_eq!(stat.data_length, 2);
    assert_eq!(
        stat.mzxid, r.header.zxid,
        "the whole multi is one transaction"
    );
    assert_eq!(&results[2..], &[OpResult::Delete, OpResult::Check]);
}

#[test]
fn failed_multi() {
    let r = reply("multi_fail");
    // The header reports success; the failure is in the results.
    let results = r.multi_results();
    assert_eq!(
        results,
        [
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::NodeExists),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert_eq!(
        results
            .iter()
            .filter_map(OpResult::error)
            .collect::<Vec<_>>(),
        [
            ErrorCode::Ok,
            ErrorCode::NodeExists,
            ErrorCode::RuntimeInconsistency,
            ErrorCode::RuntimeInconsistency
        ]
    );
}

#[test]
fn multi_read() {
    let r = reply("multi_read");
    let results = r.multi_results();
    assert_eq!(results.len(), 3);
    let OpResult::GetData { data, stat } = &results[0] else {
        panic!("expected a getData result, got {:?}", results[0]);
    };
    assert_eq!(&data[..], b"hello");
    assert_eq!(stat.num_children, 7);
    let OpResult::GetChildren { children } = &results[1] else {
        panic!("expected a getChildren result, got {:?}", results[1]);
    };
    assert_eq!(
        sorted(children),
        ["box", "c2", "eph", "m1", "nul", "ro", "ttl"]
    );
    assert_eq!(results[2], OpResult::Error(ErrorCode::NoNode));
}

#[test]
fn watch_notifications() {
    let cases = [
        ("event_data_changed", EventType::NodeDataChanged, "/zkw/c2"),
        ("event_created", EventType::NodeCreated, "/zkw/w"),
        ("event_deleted", EventType::NodeDeleted, "/zkw/w"),
        (
            "event_children_changed",
            EventType::NodeChildrenChanged,
            "/zkw",
        ),
        (
            "event_recursive_data_changed",
            EventType::NodeDataChanged,
            "/zkw/kid",
        ),
    ];
    for (name, kind, path) in cases {
        let r = reply(name);
        assert_eq!(r.header.xid, XID_NOTIFICATION, "{name}");
        assert_eq!(r.header.zxid, -1, "{name}: notifications carry no zxid");
        r.assert_ok();
        let event: WatcherEvent = r.canonical();
        assert_eq!(EventType::from_code(event.kind), Some(kind), "{name}");
        assert_eq!(
            KeeperState::from_code(event.state),
            Some(KeeperState::SyncConnected),
            "{name}"
        );
        assert_eq!(event.path, path, "{name}");
    }
}

#[test]
fn special_xid_replies() {
    let ping = reply("ping");
    assert_eq!(ping.header_only().xid, XID_PING);
    ping.assert_ok();
    assert!(ping.header.zxid > 0);

    let auth = reply("auth");
    assert_eq!(auth.header_only().xid, XID_AUTH);
    auth.assert_ok();
    assert_eq!(auth.header.zxid, 0, "3.8.0 sends auth replies with zxid 0");

    let set_watches = reply("set_watches2");
    assert_eq!(set_watches.header_only().xid, XID_SET_WATCHES);
    set_watches.assert_ok();
}

#[test]
fn misc_replies() {
    let r = reply("get_all_children_number");
    r.assert_ok();
    let body: GetAllChildrenNumberResponse = r.canonical();
    assert_eq!(body.total, 8, "box c2 eph kid m1 nul ro ttl");

    let r = reply("get_ephemerals");
    r.assert_ok();
    let body: GetEphemeralsResponse = r.canonical();
    assert_eq!(body.ephemerals, ["/zkw/eph"]);

    let r = reply("sync");
    r.assert_ok();
    let body: SyncResponse = r.canonical();
    assert_eq!(body.path, "/zkw");

    let r = reply("close_session");
    r.assert_ok();
    r.header_only();
}

#[test]
fn watch_management_replies() {
    // addWatch is answered with an ErrorResponse body holding 0, not with an empty body.
    let r = reply("add_watch");
    r.assert_ok();
    let body: ErrorResponse = r.canonical();
    assert_eq!(body.err, 0);

    let r = reply("remove_watches");
    r.assert_ok();
    r.header_only();

    // 3.8 does not know the persistent watcher types of removeWatches (added in 3.9) and fails
    // the request with a marshalling error.
    reply("remove_watches_persistent_unsupported").assert_error(ErrorCode::MarshallingError);

    reply("check_watches_none").assert_error(ErrorCode::NoWatcher);
}

#[test]
fn who_am_i_replies() {
    let ip = ClientInfo {
        auth_scheme: "ip".into(),
        user: "127.0.0.1".into(),
    };
    let r = reply("who_am_i_anonymous");
    r.assert_ok();
    let body: WhoAmIResponse = r.canonical();
    assert_eq!(body.client_info, std::slice::from_ref(&ip));

    let r = reply("who_am_i");
    r.assert_ok();
    let body: WhoAmIResponse = r.canonical();
    assert_eq!(
        body.client_info,
        [
            ip,
            ClientInfo {
                auth_scheme: "digest".into(),
                user: "user".into()
            }
        ]
    );
}

#[test]
fn error_replies() {
    reply("err_node_exists").assert_error(ErrorCode::NodeExists);
    reply("err_no_node").assert_error(ErrorCode::NoNode);
    reply("err_bad_version").assert_error(ErrorCode::BadVersion);
    reply("err_not_empty").assert_error(ErrorCode::NotEmpty);
    reply("err_no_auth").assert_error(ErrorCode::NoAuth);
}

#[test]
fn truncated_golden_frames_fail_to_decode() {
    // Every strict prefix of a captured body is an error, never a panic or a shorter record.
    fn check<T: for<'a> Jute<'a> + Debug>(name: &'static str) {
        let body = reply(name).body;
        for len in 0..body.len() {
            let prefix = body.slice(..len);
            assert!(
                decode_exact::<T>(&prefix).is_err(),
                "{name}: a {len}-byte prefix decoded"
            );
        }
    }
    check::<Create2Response>("create2");
    check::<GetDataResponse>("get_data");
    check::<GetChildren2Response>("get_children2");
    check::<GetAclResponse>("get_acl");
    check::<WatcherEvent>("event_data_changed");
    check::<WhoAmIResponse>("who_am_i");
    for name in ["multi_ok", "multi_fail", "multi_read"] {
        let body = reply(name).body;
        for len in 0..body.len() {
            assert!(
                decode_multi_results(&body.slice(..len)).is_err(),
                "{name}: a {len}-byte prefix decoded"
            );
        }
    }
}
