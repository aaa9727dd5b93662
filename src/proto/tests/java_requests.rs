//! Request frames the real ZooKeeper 3.8.0 Java client sent (`fixtures/client_requests.txt`):
//! each is built again with the crate's records and encoded, and must come out byte for byte the
//! same. Each is also decoded with the crate's records, which must consume it exactly.

use std::borrow::Cow;
use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};

use super::fixtures::client_requests;
use super::hex;
use crate::proto::jute::{Jute, Reader, decode_exact, encode_to_bytes};
use crate::proto::multi::{MultiOpRecord, MultiRequest};
use crate::proto::opcode::{XID_AUTH, XID_PING};
use crate::proto::records::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, ConnectRequest, CreateRequest,
    CreateTtlRequest, DeleteRequest, PathRequest, PathWatchRequest, RequestHeader, Secret,
    SetAclRequest, SetDataRequest, SetWatches2, WatchesRequest,
};
use crate::proto::{Acl, AddWatchMode, CreateMode, Id, OpCode, Password, Perms, WatcherType};

/// Fixtures checked below; `every_fixture_is_checked` keeps this in step with the file.
const CHECKED: &[&str] = &[
    "connect_request",
    "connect_request_resume",
    "create_null_data",
    "create",
    "create_ephemeral",
    "create_sequential",
    "create_container",
    "create_ttl",
    "create2",
    "create_auth_acl",
    "get_data",
    "get_data_watch",
    "exists",
    "exists_watch",
    "get_children",
    "get_children2",
    "get_children2_watch",
    "get_acl",
    "set_data",
    "set_data_version",
    "set_acl",
    "sync",
    "get_all_children_number",
    "get_ephemerals",
    "add_watch_recursive",
    "add_watch_persistent",
    "remove_watches",
    "delete",
    "delete_version",
    "auth",
    "who_am_i",
    "ping",
    "close_session",
    "multi",
    "multi_read",
    "set_watches2",
];

/// The captured frame's header, checked to carry `op`.
fn header(name: &str, op: OpCode) -> (Bytes, RequestHeader) {
    let frame = client_requests().get(name);
    let mut r = Reader::new(&frame);
    let header = RequestHeader::read(&mut r).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(OpCode::from_code(header.op), Some(op), "{name}: op code");
    (frame, header)
}

/// Encodes `header` followed by `body`.
fn encode<'a>(header: RequestHeader, body: &impl Jute<'a>) -> Bytes {
    let mut buf = BytesMut::new();
    header.write(&mut buf);
    body.write(&mut buf);
    buf.freeze()
}

/// Checks that the Java client's frame `name` is `op` with body `expected`: our encoding of the
/// same header and record must equal the captured bytes, and decoding the captured body must
/// give back `expected` and consume the frame exactly.
macro_rules! check_request {
    ($name:expr, $op:expr, $ty:ty, $expected:expr) => {{
        let (frame, header) = header($name, $op);
        let expected: $ty = $expected;
        assert_eq!(
            hex(&encode(header, &expected)),
            hex(&frame),
            "{}: our encoding differs from the Java client's",
            $name
        );
        let mut r = Reader::new(&frame);
        RequestHeader::read(&mut r).unwrap();
        let decoded = <$ty as Jute>::read(&mut r).unwrap_or_else(|e| panic!("{}: {e}", $name));
        assert_eq!(r.remaining(), 0, "{}: trailing bytes", $name);
        assert_eq!(decoded, expected, "{}", $name);
    }};
}

/// Checks a request that is a header alone.
fn check_header_only(name: &str, op: OpCode, xid: Option<i32>) {
    let (frame, header) = header(name, op);
    assert_eq!(frame.len(), 8, "{name}: header only");
    if let Some(xid) = xid {
        assert_eq!(header.xid, xid, "{name}: xid");
    }
    assert_eq!(hex(&encode_to_bytes(&header)), hex(&frame));
}

fn world(perms: i32) -> Vec<Acl> {
    vec![Acl::new(perms, Id::ANYONE)]
}

#[test]
fn every_fixture_is_checked() {
    let in_file: BTreeSet<&str> = client_requests().names().collect();
    let checked: BTreeSet<&str> = CHECKED.iter().copied().collect();
    assert_eq!(checked.len(), CHECKED.len(), "CHECKED lists a name twice");
    assert_eq!(in_file, checked);
}

#[test]
fn connect_requests() {
    let frame = client_requests().get("connect_request");
    let fresh = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        password: Password(Bytes::from_static(&[0; 16])),
        read_only: false,
    };
    assert_eq!(hex(&encode_to_bytes(&fresh)), hex(&frame));
    assert_eq!(decode_exact::<ConnectRequest>(&frame), Ok(fresh));

    // The resuming request carries the session's id, password and last zxid.
    let frame = client_requests().get("connect_request_resume");
    let resume: ConnectRequest = decode_exact(&frame).unwrap();
    assert_eq!(resume.protocol_version, 0);
    assert!(resume.last_zxid_seen > 0);
    assert_eq!(resume.timeout_ms, 4000, "the timeout the server negotiated");
    assert_ne!(resume.session_id, 0);
    assert_eq!(resume.password.0.len(), 16);
    assert!(!resume.read_only);
    let rebuilt = ConnectRequest {
        password: Password(Bytes::copy_from_slice(&resume.password.0)),
        ..resume.clone()
    };
    assert_eq!(hex(&encode_to_bytes(&rebuilt)), hex(&frame));
}

#[test]
fn create_requests() {
    let open = world(Perms::ALL);
    let create = |path, data, flags| CreateRequest {
        path,
        data,
        acl: Cow::Borrowed(&open[..]),
        flags,
    };
    check_request!(
        "create",
        OpCode::Create,
        CreateRequest,
        create("/j/a", b"hello", CreateMode::Persistent.flags())
    );
    check_request!(
        "create_ephemeral",
        OpCode::Create,
        CreateRequest,
        create("/j/eph", b"e", CreateMode::Ephemeral.flags())
    );
    check_request!(
        "create_sequential",
        OpCode::Create,
        CreateRequest,
        create("/j/seq-", b"s", CreateMode::PersistentSequential.flags())
    );
    check_request!(
        "create2",
        OpCode::Create2,
        CreateRequest,
        create("/m", b"root", CreateMode::Persistent.flags())
    );
    check_request!(
        "create_ttl",
        OpCode::CreateTtl,
        CreateTtlRequest,
        CreateTtlRequest {
            path: "/j/ttl",
            data: b"t",
            acl: Cow::Borrowed(&open[..]),
            flags: CreateMode::PersistentWithTtl.flags(),
            ttl: 60_000,
        }
    );
    check_request!(
        "create_auth_acl",
        OpCode::Create,
        CreateRequest,
        CreateRequest {
            path: "/j/secure",
            data: b"x",
            acl: Cow::Borrowed(Acl::CREATOR_ALL),
            flags: 0,
        }
    );
}

#[test]
fn creates_with_null_data() {
    // zkCli sends a null (-1 length) buffer when given no data. We decode that as empty data
    // and always encode empty data with a zero length, which the server treats the same way;
    // so our bytes differ from the Java client's in exactly those four bytes.
    let open = world(Perms::ALL);
    for (name, op, path, flags) in [
        ("create_null_data", OpCode::Create, "/j", 0),
        ("create_container", OpCode::CreateContainer, "/j/box", 4),
    ] {
        let (frame, header) = header(name, op);
        let mut r = Reader::new(&frame);
        RequestHeader::read(&mut r).unwrap();
        let decoded = CreateRequest::read(&mut r).unwrap();
        r.finish().unwrap();
        let expected = CreateRequest {
            path,
            data: b"",
            acl: Cow::Borrowed(&open[..]),
            flags,
        };
        assert_eq!(decoded, expected, "{name}");
        let data_at = 8 + 4 + path.len();
        assert_eq!(
            &frame[data_at..data_at + 4],
            &[0xff; 4],
            "{name}: null buffer"
        );
        let mut java_with_empty_data = frame.to_vec();
        java_with_empty_data[data_at..data_at + 4].copy_from_slice(&[0; 4]);
        assert_eq!(
            hex(&encode(header, &expected)),
            hex(&java_with_empty_data),
            "{name}"
        );
    }
}

#[test]
fn read_requests() {
    let pw = |path, watch| PathWatchRequest { path, watch };
    check_request!(
        "get_data",
        OpCode::GetData,
        PathWatchRequest,
        pw("/j/a", false)
    );
    check_request!(
        "get_data_watch",
        OpCode::GetData,
        PathWatchRequest,
        pw("/j/a", true)
    );
    check_request!(
        "exists",
        OpCode::Exists,
        PathWatchRequest,
        pw("/j/a", false)
    );
    check_request!(
        "exists_watch",
        OpCode::Exists,
        PathWatchRequest,
        pw("/j/a", true)
    );
    check_request!(
        "get_children",
        OpCode::GetChildren,
        PathWatchRequest,
        pw("/m", false)
    );
    check_request!(
        "get_children2",
        OpCode::GetChildren2,
        PathWatchRequest,
        pw("/j", false)
    );
    check_request!(
        "get_children2_watch",
        OpCode::GetChildren2,
        PathWatchRequest,
        pw("/j", true)
    );
    // The watch flag is one byte, not the int32 of the C client's header.
    assert_eq!(client_requests().get("get_data_watch").len(), 8 + 4 + 4 + 1);

    let p = |path| PathRequest { path };
    check_request!("get_acl", OpCode::GetAcl, PathRequest, p("/j/a"));
    check_request!("sync", OpCode::Sync, PathRequest, p("/j"));
    check_request!(
        "get_all_children_number",
        OpCode::GetAllChildrenNumber,
        PathRequest,
        p("/j")
    );
    check_request!(
        "get_ephemerals",
        OpCode::GetEphemerals,
        PathRequest,
        p("/j")
    );
}

#[test]
fn write_requests() {
    check_request!(
        "set_data",
        OpCode::SetData,
        SetDataRequest,
        SetDataRequest {
            path: "/j/a",
            data: b"world",
            version: -1
        }
    );
    check_request!(
        "set_data_version",
        OpCode::SetData,
        SetDataRequest,
        SetDataRequest {
            path: "/j/a",
            data: b"again",
            version: 1
        }
    );
    let read_only = world(Perms::READ);
    check_request!(
        "set_acl",
        OpCode::SetAcl,
        SetAclRequest,
        SetAclRequest {
            path: "/j/a",
            acl: Cow::Borrowed(&read_only[..]),
            version: -1
        }
    );
    check_request!(
        "delete",
        OpCode::Delete,
        DeleteRequest,
        DeleteRequest {
            path: "/j/box",
            version: -1
        }
    );
    check_request!(
        "delete_version",
        OpCode::Delete,
        DeleteRequest,
        DeleteRequest {
            path: "/j/ttl",
            version: 0
        }
    );
}

#[test]
fn watch_requests() {
    check_request!(
        "add_watch_recursive",
        OpCode::AddWatch,
        AddWatchRequest,
        AddWatchRequest {
            path: "/j",
            mode: AddWatchMode::PersistentRecursive.code()
        }
    );
    check_request!(
        "add_watch_persistent",
        OpCode::AddWatch,
        AddWatchRequest,
        AddWatchRequest {
            path: "/j/a",
            mode: AddWatchMode::Persistent.code()
        }
    );
    check_request!(
        "remove_watches",
        OpCode::RemoveWatches,
        WatchesRequest,
        WatchesRequest {
            path: "/j/a",
            kind: WatcherType::Any.code()
        }
    );
    let none: Vec<String> = Vec::new();
    check_request!(
        "set_watches2",
        OpCode::SetWatches2,
        SetWatches2,
        SetWatches2 {
            relative_zxid: 6,
            data_watches: none.clone(),
            exist_watches: vec!["/m/later".into()],
            child_watches: none.clone(),
            persistent_watches: none,
            persistent_recursive_watches: vec!["/m".into()],
        }
    );
}

#[test]
fn session_requests() {
    let (_, header) = header("auth", OpCode::Auth);
    assert_eq!(header.xid, XID_AUTH);
    check_request!(
        "auth",
        OpCode::Auth,
        AuthPacket,
        AuthPacket {
            kind: 0,
            scheme: "digest",
            auth: Secret(Cow::Borrowed(b"user:secret")),
        }
    );
    check_header_only("ping", OpCode::Ping, Some(XID_PING));
    check_header_only("who_am_i", OpCode::WhoAmI, None);
    check_header_only("close_session", OpCode::CloseSession, None);
}

#[test]
fn multi_requests() {
    let open = world(Perms::ALL);
    check_request!(
        "multi",
        OpCode::Multi,
        MultiRequest,
        MultiRequest {
            ops: vec![
                MultiOpRecord::Create(
                    OpCode::Create,
                    CreateRequest {
                        path: "/m/a",
                        data: b"a",
                        acl: Cow::Borrowed(&open[..]),
                        flags: 0,
                    }
                ),
                MultiOpRecord::SetData(SetDataRequest {
                    path: "/m/a",
                    data: b"b",
                    version: 0
                }),
                MultiOpRecord::Check(CheckVersionRequest {
                    path: "/m",
                    version: 1
                }),
                MultiOpRecord::Delete(DeleteRequest {
                    path: "/m/a",
                    version: -1
                }),
            ],
        }
    );
    check_request!(
        "multi_read",
        OpCode::MultiRead,
        MultiRequest,
        MultiRequest {
            ops: vec![
                MultiOpRecord::GetData(PathWatchRequest {
                    path: "/m",
                    watch: false
                }),
                MultiOpRecord::GetChildren(PathWatchRequest {
                    path: "/m",
                    watch: false
                }),
            ],
        }
    );
}
