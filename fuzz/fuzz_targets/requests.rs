//! Decodes the input as one of the records a client sends, with the same checks as
//! `reply_decoders`. A server never sends these, but the crate decodes them in its tests and
//! a proxy or test server built on it would decode them from untrusted peers.
//!
//! Input layout: byte 0 is a selector, the rest is the record.
//! * `selector & 0x7f` (modulo the number of records) picks the record type from `RECORDS`;
//! * with `selector & 0x80` set, the rest starts with a `RequestHeader` (xid, op), and the
//!   body after it is decoded as the chosen record.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zkwarden::proto::jute::{Jute, Reader};
use zkwarden::proto::multi::MultiRequest;
use zkwarden::proto::*;
use zkwarden_fuzz::round_trip;

/// The selectable records, in selector order. `seed_corpus.py` uses the same order: change
/// both together.
const RECORDS: &[&str] = &[
    "ConnectRequest",      // 0
    "RequestHeader",       // 1
    "CreateRequest",       // 2
    "CreateTtlRequest",    // 3
    "DeleteRequest",       // 4
    "PathWatchRequest",    // 5
    "PathRequest",         // 6
    "SetDataRequest",      // 7
    "SetAclRequest",       // 8
    "CheckVersionRequest", // 9
    "WatchesRequest",      // 10
    "AddWatchRequest",     // 11
    "AuthPacket",          // 12
    "SetWatches2",         // 13
    "ReconfigRequest",     // 14
    "MultiRequest",        // 15
];

fn check_record(kind: usize, body: &Bytes) {
    match kind {
        0 => {
            round_trip!(ConnectRequest, body, true);
        }
        1 => {
            if let Some(h) = round_trip!(RequestHeader, body)
                && let Some(op) = OpCode::from_code(h.op)
            {
                assert_eq!(op.code(), h.op);
                let _ = op.name();
            }
        }
        2 => {
            round_trip!(CreateRequest<'_>, body);
        }
        3 => {
            round_trip!(CreateTtlRequest<'_>, body);
        }
        4 => {
            round_trip!(DeleteRequest<'_>, body);
        }
        5 => {
            round_trip!(PathWatchRequest<'_>, body);
        }
        6 => {
            round_trip!(PathRequest<'_>, body);
        }
        7 => {
            round_trip!(SetDataRequest<'_>, body);
        }
        8 => {
            round_trip!(SetAclRequest<'_>, body);
        }
        9 => {
            round_trip!(CheckVersionRequest<'_>, body);
        }
        10 => {
            round_trip!(WatchesRequest<'_>, body);
        }
        11 => {
            round_trip!(AddWatchRequest<'_>, body);
        }
        12 => {
            round_trip!(AuthPacket<'_>, body);
        }
        13 => {
            round_trip!(SetWatches2, body);
        }
        14 => {
            round_trip!(ReconfigRequest<'_>, body);
        }
        15 => {
            // Header fields decoding drops (the err of each op header, the terminator's op
            // and err) make the byte comparison of `round_trip!` inapplicable: see the
            // `multi_results` target, which checks this record on its own.
            if let Ok(request) = zkwarden::proto::jute::decode_exact::<MultiRequest>(body) {
                let encoded = zkwarden::proto::jute::encode_to_bytes(&request);
                let again: MultiRequest = zkwarden::proto::jute::decode_exact(&encoded)
                    .expect("re-encoded multi request decodes");
                assert_eq!(again, request);
            }
        }
        _ => unreachable!("selector reduced modulo RECORDS.len()"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let kind = usize::from(selector & 0x7f) % RECORDS.len();
    let frame = Bytes::copy_from_slice(rest);
    if selector & 0x80 == 0 {
        check_record(kind, &frame);
        return;
    }
    let mut reader = Reader::new(&frame);
    let Ok(_header) = RequestHeader::read(&mut reader) else {
        assert!(frame.len() < 8, "an 8-byte request header failed to decode");
        return;
    };
    let body = frame.slice(reader.position()..);
    check_record(kind, &body);
});
