//! Decodes the input as one of the records a client receives (or, for `SetWatches2`, sends
//! after a reconnect) and checks what comes back.
//!
//! Input layout: byte 0 is a selector, the rest is the record.
//! * `selector & 0x7f` (modulo the number of records) picks the record type from `RECORDS`;
//! * with `selector & 0x80` set, the rest is a whole reply frame: a `ReplyHeader` read with a
//!   `Reader`, then the body (sliced after the header, as the session task does) decoded as the
//!   chosen record. Without it, the rest is the bare record.
//!
//! Checked on every successful decode (see `zkwarden_fuzz::round_trip!`): decode(encode(x)) == x,
//! encoding is a fixed point, the encoding equals the input except for null (-1) lengths and
//! booleans above 1, and `Debug` works. Also: error, event-type and state codes map back to
//! the integer they came from, and data buffers are slices of the received frame.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zkwarden::proto::jute::{Jute, Reader};
use zkwarden::proto::*;
use zkwarden_fuzz::round_trip;

/// The selectable records, in selector order. `seed_corpus.py` uses the same order: change
/// both together.
const RECORDS: &[&str] = &[
    "ReplyHeader",                  // 0
    "ConnectResponse",              // 1
    "CreateResponse",               // 2
    "Create2Response",              // 3
    "StatResponse",                 // 4
    "GetDataResponse",              // 5
    "GetAclResponse",               // 6
    "GetChildrenResponse",          // 7
    "GetChildren2Response",         // 8
    "GetAllChildrenNumberResponse", // 9
    "GetEphemeralsResponse",        // 10
    "SyncResponse",                 // 11
    "WhoAmIResponse",               // 12
    "ClientInfo",                   // 13
    "WatcherEvent",                 // 14
    "ErrorResponse",                // 15
    "SetWatches2",                  // 16
    "MultiHeader",                  // 17
    "Stat",                         // 18
    "Acl",                          // 19
    "Id",                           // 20
    "SetSaslResponse",              // 21
];

/// A decoded buffer must share the frame's memory, not be a copy (or point elsewhere).
fn assert_sliced_from(data: &Bytes, frame: &Bytes) {
    if data.is_empty() {
        return;
    }
    let start = frame.as_ptr() as usize;
    let at = data.as_ptr() as usize;
    assert!(
        at >= start && at + data.len() <= start + frame.len(),
        "data buffer is not a slice of the frame"
    );
}

fn check_error_code(err: i32) {
    assert_eq!(
        ErrorCode::from_code(err).code(),
        err,
        "error code {err} does not map back"
    );
    let _ = ErrorCode::from_code(err).describe();
}

fn check_record(kind: usize, body: &Bytes) {
    match kind {
        0 => {
            if let Some(h) = round_trip!(ReplyHeader, body) {
                check_error_code(h.err);
            }
        }
        1 => {
            round_trip!(ConnectResponse, body, true);
        }
        2 => {
            round_trip!(CreateResponse, body);
        }
        3 => {
            round_trip!(Create2Response, body);
        }
        4 => {
            round_trip!(StatResponse, body);
        }
        5 => {
            if let Some(r) = round_trip!(GetDataResponse, body) {
                assert_sliced_from(&r.data, body);
            }
        }
        6 => {
            round_trip!(GetAclResponse, body);
        }
        7 => {
            round_trip!(GetChildrenResponse, body);
        }
        8 => {
            round_trip!(GetChildren2Response, body);
        }
        9 => {
            round_trip!(GetAllChildrenNumberResponse, body);
        }
        10 => {
            round_trip!(GetEphemeralsResponse, body);
        }
        11 => {
            round_trip!(SyncResponse, body);
        }
        12 => {
            round_trip!(WhoAmIResponse, body);
        }
        13 => {
            round_trip!(ClientInfo, body);
        }
        14 => {
            if let Some(event) = round_trip!(WatcherEvent, body) {
                if let Some(t) = EventType::from_code(event.kind) {
                    assert_eq!(t.code(), event.kind);
                }
                if let Some(s) = KeeperState::from_code(event.state) {
                    assert_eq!(s.code(), event.state);
                }
            }
        }
        15 => {
            if let Some(r) = round_trip!(ErrorResponse, body) {
                check_error_code(r.err);
            }
        }
        16 => {
            round_trip!(SetWatches2, body);
        }
        17 => {
            round_trip!(MultiHeader, body);
        }
        18 => {
            round_trip!(Stat, body);
        }
        19 => {
            round_trip!(Acl, body);
        }
        20 => {
            round_trip!(Id, body);
        }
        21 => {
            if let Some(r) = round_trip!(SetSaslResponse, body) {
                assert_sliced_from(&r.token, body);
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
    // A whole reply frame: header first, then the body, as the session task reads it.
    let mut reader = Reader::new(&frame);
    let Ok(header) = ReplyHeader::read(&mut reader) else {
        assert!(frame.len() < 16, "a 16-byte reply header failed to decode");
        return;
    };
    assert_eq!(reader.position(), 16);
    assert_eq!(reader.remaining(), frame.len() - 16);
    check_error_code(header.err);
    let body = frame.slice(reader.position()..);
    check_record(kind, &body);
});
