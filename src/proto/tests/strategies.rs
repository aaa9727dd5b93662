//! Proptest strategies for the wire records. Records that borrow (`&'a str`, `&'a [u8]`) are
//! generated as owned values and borrowed inside each test.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use crate::proto::multi::OpResult;
use crate::proto::records::{ClientInfo, ConnectRequest, ConnectResponse, Password};
use crate::proto::{Acl, ErrorCode, Id, OpCode, Stat};

/// Any string, including multi-byte characters, control characters and the empty string.
pub(super) fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(?s).{0,12}",
        1 => "/[a-z0-9/._-]{0,20}",
    ]
}

/// Any buffer, including the empty one.
pub(super) fn blob() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

pub(super) fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..5)
}

pub(super) fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>()),
        (any::<i64>(), any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(
            |(
                (czxid, mzxid, ctime, mtime),
                (version, cversion, aversion),
                (ephemeral_owner, data_length, num_children, pzxid),
            )| Stat {
                czxid,
                mzxid,
                ctime,
                mtime,
                version,
                cversion,
                aversion,
                ephemeral_owner,
                data_length,
                num_children,
                pzxid,
            },
        )
}

pub(super) fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        Just(Id::ANYONE),
        Just(Id::AUTH),
        (text(), text()).prop_map(|(scheme, id)| Id::new(scheme, id)),
    ]
}

pub(super) fn acl() -> impl Strategy<Value = Acl> {
    (any::<i32>(), id()).prop_map(|(perms, id)| Acl::new(perms, id))
}

pub(super) fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(acl(), 0..4)
}

pub(super) fn password() -> impl Strategy<Value = Password> {
    blob().prop_map(|b| Password(Bytes::from(b)))
}

pub(super) fn connect_request() -> impl Strategy<Value = ConnectRequest> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        password(),
        any::<bool>(),
    )
        .prop_map(
            |(protocol_version, last_zxid_seen, timeout_ms, session_id, password, read_only)| {
                ConnectRequest {
                    protocol_version,
                    last_zxid_seen,
                    timeout_ms,
                    session_id,
                    password,
                    read_only,
                }
            },
        )
}

pub(super) fn connect_response() -> impl Strategy<Value = ConnectResponse> {
    (
        any::<i32>(),
        any::<i32>(),
        any::<i64>(),
        password(),
        any::<bool>(),
    )
        .prop_map(
            |(protocol_version, timeout_ms, session_id, password, read_only)| ConnectResponse {
                protocol_version,
                timeout_ms,
                session_id,
                password,
                read_only,
            },
        )
}

pub(super) fn client_info() -> impl Strategy<Value = ClientInfo> {
    (text(), text()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
}

/// An error code as a server could send it: any `i32`, but mostly the defined ones.
pub(super) fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        3 => (-130i32..=0).prop_map(ErrorCode::from_code),
        1 => any::<i32>().prop_map(ErrorCode::from_code),
    ]
}

/// One result of a multi or multiRead reply.
pub(super) fn op_result() -> impl Strategy<Value = OpResult> {
    prop_oneof![
        (text(), proptest::option::of(stat()))
            .prop_map(|(path, stat)| OpResult::Create { path, stat }),
        Just(OpResult::Delete),
        stat().prop_map(|stat| OpResult::SetData { stat }),
        Just(OpResult::Check),
        (blob(), stat()).prop_map(|(data, stat)| OpResult::GetData {
            data: Bytes::from(data),
            stat
        }),
        texts().prop_map(|children| OpResult::GetChildren { children }),
        error_code().prop_map(OpResult::Error),
    ]
}

/// An owned description of one op of a multi request; the test borrows a `MultiOpRecord` from
/// it.
#[derive(Debug, Clone)]
pub(super) enum OwnedOp {
    Create(OpCode, String, Vec<u8>, Vec<Acl>, i32),
    CreateTtl(String, Vec<u8>, Vec<Acl>, i32, i64),
    Delete(String, i32),
    SetData(String, Vec<u8>, i32),
    Check(String, i32),
    GetData(String, bool),
    GetChildren(String, bool),
}

pub(super) fn owned_op() -> impl Strategy<Value = OwnedOp> {
    let create_op = prop_oneof![
        Just(OpCode::Create),
        Just(OpCode::Create2),
        Just(OpCode::CreateContainer),
    ];
    prop_oneof![
        (create_op, text(), blob(), acls(), any::<i32>())
            .prop_map(|(op, p, d, a, f)| OwnedOp::Create(op, p, d, a, f)),
        (text(), blob(), acls(), any::<i32>(), any::<i64>())
            .prop_map(|(p, d, a, f, t)| OwnedOp::CreateTtl(p, d, a, f, t)),
        (text(), any::<i32>()).prop_map(|(p, v)| OwnedOp::Delete(p, v)),
        (text(), blob(), any::<i32>()).prop_map(|(p, d, v)| OwnedOp::SetData(p, d, v)),
        (text(), any::<i32>()).prop_map(|(p, v)| OwnedOp::Check(p, v)),
        (text(), any::<bool>()).prop_map(|(p, w)| OwnedOp::GetData(p, w)),
        (text(), any::<bool>()).prop_map(|(p, w)| OwnedOp::GetChildren(p, w)),
    ]
}
