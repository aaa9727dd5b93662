//! Property tests: every record of the wire format, filled with arbitrary values, survives
//! encode → decode unchanged; the decoder consumes exactly the encoding; re-encoding the decoded
//! value gives the same bytes; and every strict prefix of the encoding fails to decode.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use super::encode_multi_results;
use super::strategies::*;
use crate::proto::jute::{Jute, Reader, decode_exact, encode_to_bytes};
use crate::proto::multi::{MultiOpRecord, MultiRequest, OpResult, decode_multi_results};
use crate::proto::records::*;
use crate::proto::{Acl, CreateMode, ErrorCode, EventType, Id, KeeperState, OpCode, Stat};

/// Round-trips `$value` (of record type `$ty`, whose lifetime, if any, is left to inference) and
/// checks the properties listed in the module doc. With `prefixes: except_last_byte`, the
/// prefix one byte short is allowed to decode: the handshake records' trailing `readOnly` flag
/// is optional on the wire.
macro_rules! roundtrip {
    ($ty:ty, $value:expr) => {
        roundtrip!($ty, $value, prefixes: all)
    };
    ($ty:ty, $value:expr, prefixes: $prefixes:ident) => {{
        let value: $ty = $value;
        let encoded = encode_to_bytes(&value);

        let mut r = Reader::new(&encoded);
        let decoded = <$ty>::read(&mut r)?;
        prop_assert_eq!(r.remaining(), 0, "the decoder left bytes unread");
        prop_assert_eq!(&decoded, &value);
        prop_assert_eq!(&decode_exact::<$ty>(&encoded)?, &value);
        prop_assert_eq!(encode_to_bytes(&decoded), encoded.clone(), "re-encoding differs");

        // One more byte is trailing garbage, never silently ignored.
        let mut longer = BytesMut::from(&encoded[..]);
        longer.extend_from_slice(&[0]);
        prop_assert_eq!(
            decode_exact::<$ty>(&longer.freeze()).err(),
            Some(crate::proto::DecodeError::TrailingBytes(1))
        );

        let lenient = roundtrip!(@lenient $prefixes);
        for len in 0..encoded.len() {
            if lenient && len + 1 == encoded.len() {
                continue;
            }
            let prefix = encoded.slice(..len);
            prop_assert!(
                decode_exact::<$ty>(&prefix).is_err(),
                "a {}-byte prefix of a {}-byte encoding decoded",
                len,
                encoded.len()
            );
        }
    }};
    (@lenient all) => {
        false
    };
    (@lenient except_last_byte) => {
        true
    };
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn primitives(
        a in any::<i32>(),
        b in any::<i64>(),
        c in any::<bool>(),
        s in text(),
        d in blob(),
        list in texts(),
    ) {
        roundtrip!(i32, a);
        roundtrip!(i64, b);
        roundtrip!(bool, c);
        roundtrip!(String, s.clone());
        roundtrip!(&str, &s);
        roundtrip!(Cow<'static, str>, Cow::Owned(s.clone()));
        roundtrip!(Bytes, Bytes::from(d.clone()));
        roundtrip!(&[u8], &d);
        roundtrip!(Vec<String>, list.clone());
        roundtrip!(Vec<i64>, vec![b; d.len() % 4]);
    }

    #[test]
    fn data_records(stat in stat(), id in id(), acl in acl(), acls in acls()) {
        roundtrip!(Stat, stat);
        roundtrip!(Id, id);
        roundtrip!(Acl, acl);
        roundtrip!(Vec<Acl>, acls);
    }

    #[test]
    fn handshake(request in connect_request(), response in connect_response()) {
        roundtrip!(Password, request.password.clone());
        roundtrip!(Secret, Secret(Cow::Borrowed(&request.password.0[..])));
        roundtrip!(ConnectRequest, request.clone(), prefixes: except_last_byte);
        roundtrip!(ConnectResponse, response.clone(), prefixes: except_last_byte);

        // Without the trailing flag (pre-3.4 peers) the records decode as not read-only.
        let encoded = encode_to_bytes(&request);
        let short = encoded.slice(..encoded.len() - 1);
        prop_assert_eq!(
            decode_exact::<ConnectRequest>(&short)?,
            ConnectRequest { read_only: false, ..request }
        );
        let encoded = encode_to_bytes(&response);
        let short = encoded.slice(..encoded.len() - 1);
        prop_assert_eq!(
            decode_exact::<ConnectResponse>(&short)?,
            ConnectResponse { read_only: false, ..response }
        );
    }

    #[test]
    fn headers(xid in any::<i32>(), op in any::<i32>(), zxid in any::<i64>(), err in any::<i32>(),
               done in any::<bool>()) {
        roundtrip!(RequestHeader, RequestHeader { xid, op });
        roundtrip!(ReplyHeader, ReplyHeader { xid, zxid, err });
        roundtrip!(MultiHeader, MultiHeader { op, done, err });
        roundtrip!(ErrorResponse, ErrorResponse { err });
    }

    #[test]
    fn create_requests(
        path in text(),
        data in blob(),
        acl in acls(),
        flags in any::<i32>(),
        ttl in any::<i64>(),
    ) {
        roundtrip!(CreateRequest, CreateRequest {
            path: &path,
            data: &data,
            acl: Cow::Borrowed(&acl),
            flags,
        });
        roundtrip!(CreateTtlRequest, CreateTtlRequest {
            path: &path,
            data: &data,
            acl: Cow::Borrowed(&acl),
            flags,
            ttl,
        });
    }

    #[test]
    fn path_requests(
        path in text(),
        data in blob(),
        acl in acls(),
        version in any::<i32>(),
        watch in any::<bool>(),
        kind in any::<i32>(),
        zxid in any::<i64>(),
        others in (text(), text()),
    ) {
        roundtrip!(DeleteRequest, DeleteRequest { path: &path, version });
        roundtrip!(PathWatchRequest, PathWatchRequest { path: &path, watch });
        roundtrip!(PathRequest, PathRequest { path: &path });
        roundtrip!(SetDataRequest, SetDataRequest { path: &path, data: &data, version });
        roundtrip!(SetAclRequest, SetAclRequest { path: &path, acl: Cow::Borrowed(&acl), version });
        roundtrip!(CheckVersionRequest, CheckVersionRequest { path: &path, version });
        roundtrip!(WatchesRequest, WatchesRequest { path: &path, kind });
        roundtrip!(AddWatchRequest, AddWatchRequest { path: &path, mode: kind });
        roundtrip!(AuthPacket, AuthPacket {
            kind,
            scheme: &path,
            auth: Secret(Cow::Borrowed(&data)),
        });
        roundtrip!(GetSaslRequest, GetSaslRequest {
            token: Secret(Cow::Borrowed(&data)),
        });
        roundtrip!(ReconfigRequest, ReconfigRequest {
            joining_servers: Some(&path),
            leaving_servers: Some(&others.0),
            new_members: None,
            cur_config_id: zxid,
        });
    }

    #[test]
    fn replies(
        path in text(),
        data in blob(),
        stat in stat(),
        acl in acls(),
        names in texts(),
        total in any::<i32>(),
        infos in vec(client_info(), 0..4),
    ) {
        roundtrip!(CreateResponse, CreateResponse { path: path.clone() });
        roundtrip!(Create2Response, Create2Response { path: path.clone(), stat });
        roundtrip!(StatResponse, StatResponse { stat });
        roundtrip!(GetDataResponse, GetDataResponse { data: Bytes::from(data), stat });
        roundtrip!(GetAclResponse, GetAclResponse { acl, stat });
        roundtrip!(GetChildrenResponse, GetChildrenResponse { children: names.clone() });
        roundtrip!(GetChildren2Response, GetChildren2Response { children: names.clone(), stat });
        roundtrip!(GetAllChildrenNumberResponse, GetAllChildrenNumberResponse { total });
        roundtrip!(GetEphemeralsResponse, GetEphemeralsResponse { ephemerals: names });
        roundtrip!(SyncResponse, SyncResponse { path });
        if let Some(info) = infos.first() {
            roundtrip!(ClientInfo, info.clone());
        }
        roundtrip!(WhoAmIResponse, WhoAmIResponse { client_info: infos });
    }

    #[test]
    fn watch_records(
        kind in any::<i32>(),
        state in any::<i32>(),
        path in text(),
        zxid in any::<i64>(),
        lists in (texts(), texts(), texts(), texts(), texts()),
    ) {
        roundtrip!(WatcherEvent, WatcherEvent { kind, state, path });
        let (data_watches, exist_watches, child_watches, persistent_watches,
             persistent_recursive_watches) = lists;
        roundtrip!(SetWatches, SetWatches {
            relative_zxid: zxid,
            data_watches: data_watches.clone(),
            exist_watches: exist_watches.clone(),
            child_watches: child_watches.clone(),
        });
        roundtrip!(SetWatches2, SetWatches2 {
            relative_zxid: zxid,
            data_watches,
            exist_watches,
            child_watches,
            persistent_watches,
            persistent_recursive_watches,
        });
    }

    #[test]
    fn multi_requests(owned in vec(owned_op(), 0..6)) {
        let ops: Vec<MultiOpRecord<'_>> = owned.iter().map(borrow_op).collect();
        // Every variant's op code is the one written in its header.
        for (op, owned) in ops.iter().zip(&owned) {
            let expected = match owned {
                OwnedOp::Create(code, ..) => *code,
                OwnedOp::CreateTtl(..) => OpCode::CreateTtl,
                OwnedOp::Delete(..) => OpCode::Delete,
                OwnedOp::SetData(..) => OpCode::SetData,
                OwnedOp::Check(..) => OpCode::Check,
                OwnedOp::GetData(..) => OpCode::GetData,
                OwnedOp::GetChildren(..) => OpCode::GetChildren,
            };
            prop_assert_eq!(op.op_code(), expected);
        }
        roundtrip!(MultiRequest, MultiRequest { ops });
    }

    #[test]
    fn multi_results(results in vec(op_result(), 0..6)) {
        let encoded = encode_multi_results(&results);
        prop_assert_eq!(&decode_multi_results(&encoded)?, &results);
        for len in 0..encoded.len() {
            prop_assert!(decode_multi_results(&encoded.slice(..len)).is_err());
        }
        let mut longer = BytesMut::from(&encoded[..]);
        longer.extend_from_slice(&[0]);
        prop_assert_eq!(
            decode_multi_results(&longer.freeze()).err(),
            Some(crate::proto::DecodeError::TrailingBytes(1))
        );
    }

    /// The create variants that always carry a stat all decode as a create with that stat, and a
    /// container delete as a delete.
    #[test]
    fn multi_result_op_aliases(path in text(), stat in stat(), which in 0usize..3) {
        let op = [OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl][which];
        let mut buf = BytesMut::new();
        MultiHeader { op: op.code(), done: false, err: 0 }.write(&mut buf);
        Create2Response { path: path.clone(), stat }.write(&mut buf);
        MultiHeader { op: OpCode::DeleteContainer.code(), done: false, err: 0 }.write(&mut buf);
        crate::proto::multi::MULTI_TERMINATOR.write(&mut buf);
        prop_assert_eq!(
            decode_multi_results(&buf.freeze())?,
            vec![OpResult::Create { path, stat: Some(stat) }, OpResult::Delete]
        );
    }

    #[test]
    fn codes_map_back_to_themselves(code in any::<i32>()) {
        prop_assert_eq!(ErrorCode::from_code(code).code(), code);
        if let Some(op) = OpCode::from_code(code) {
            prop_assert_eq!(op.code(), code);
        }
        if let Some(kind) = EventType::from_code(code) {
            prop_assert_eq!(kind.code(), code);
        }
        if let Some(state) = KeeperState::from_code(code) {
            prop_assert_eq!(state.code(), code);
        }
        if let Some(mode) = CreateMode::from_flags(code) {
            prop_assert_eq!(mode.flags(), code);
        }
    }
}

/// Borrows a request op from its owned description.
fn borrow_op(op: &OwnedOp) -> MultiOpRecord<'_> {
    match op {
        OwnedOp::Create(code, path, data, acl, flags) => MultiOpRecord::Create(
            *code,
            CreateRequest {
                path,
                data,
                acl: Cow::Borrowed(acl),
                flags: *flags,
            },
        ),
        OwnedOp::CreateTtl(path, data, acl, flags, ttl) => {
            MultiOpRecord::CreateTtl(CreateTtlRequest {
                path,
                data,
                acl: Cow::Borrowed(acl),
                flags: *flags,
                ttl: *ttl,
            })
        }
        OwnedOp::Delete(path, version) => MultiOpRecord::Delete(DeleteRequest {
            path,
            version: *version,
        }),
        OwnedOp::SetData(path, data, version) => MultiOpRecord::SetData(SetDataRequest {
            path,
            data,
            version: *version,
        }),
        OwnedOp::Check(path, version) => MultiOpRecord::Check(CheckVersionRequest {
            path,
            version: *version,
        }),
        OwnedOp::GetData(path, watch) => MultiOpRecord::GetData(PathWatchRequest {
            path,
            watch: *watch,
        }),
        OwnedOp::GetChildren(path, watch) => MultiOpRecord::GetChildren(PathWatchRequest {
            path,
            watch: *watch,
        }),
    }
}

#[test]
fn every_create_mode_has_distinct_flags() {
    use CreateMode::*;
    let modes = [
        Persistent,
        PersistentSequential,
        Ephemeral,
        EphemeralSequential,
        Container,
        PersistentWithTtl,
        PersistentSequentialWithTtl,
    ];
    for mode in modes {
        assert_eq!(CreateMode::from_flags(mode.flags()), Some(mode));
    }
    assert_eq!(CreateMode::from_flags(7), None);
    assert_eq!(CreateMode::from_flags(-1), None);
}
