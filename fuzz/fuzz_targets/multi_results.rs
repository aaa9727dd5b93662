//! Decodes the input both as the body of a `multi`/`multiRead` reply
//! (`decode_multi_results`) and as the body of a `multi`/`multiRead` request
//! (`MultiRequest`), and checks every successful decode.
//!
//! Checked: no panic; decode(encode(x)) == x; encoding is a fixed point; the encoding has the
//! input's length (every field has a fixed size or a length prefix, and a null `-1` length
//! re-encodes as 0 in the same four bytes). The bytes themselves may differ where the wire
//! carries what decoding drops: a header's `err` for a successful result, the `done` byte and
//! the op and err of the terminator.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zkwarden::proto::jute::{Jute, decode_exact, encode_to_bytes};
use zkwarden::proto::multi::{MULTI_TERMINATOR, MultiRequest, OpResult, decode_multi_results};
use zkwarden::proto::{
    Create2Response, CreateResponse, ErrorResponse, GetChildrenResponse, GetDataResponse,
    MultiHeader, OpCode, StatResponse,
};

/// Writes results the way a server does: a header before each (op code and error code; op -1
/// with an `ErrorResponse` body for a failed op), then the terminator.
fn encode_results(results: &[OpResult]) -> Bytes {
    let mut buf = BytesMut::new();
    for result in results {
        let (op, err) = match result {
            OpResult::Create { stat: None, .. } => (OpCode::Create, 0),
            OpResult::Create { stat: Some(_), .. } => (OpCode::Create2, 0),
            OpResult::Delete => (OpCode::Delete, 0),
            OpResult::SetData { .. } => (OpCode::SetData, 0),
            OpResult::Check => (OpCode::Check, 0),
            OpResult::GetData { .. } => (OpCode::GetData, 0),
            OpResult::GetChildren { .. } => (OpCode::GetChildren, 0),
            OpResult::Error(code) => (OpCode::Error, code.code()),
        };
        MultiHeader {
            op: op.code(),
            done: false,
            err,
        }
        .write(&mut buf);
        match result {
            OpResult::Create { path, stat: None } => {
                CreateResponse { path: path.clone() }.write(&mut buf)
            }
            OpResult::Create {
                path,
                stat: Some(stat),
            } => Create2Response {
                path: path.clone(),
                stat: *stat,
            }
            .write(&mut buf),
            OpResult::Delete | OpResult::Check => {}
            OpResult::SetData { stat } => StatResponse { stat: *stat }.write(&mut buf),
            OpResult::GetData { data, stat } => GetDataResponse {
                data: data.clone(),
                stat: *stat,
            }
            .write(&mut buf),
            OpResult::GetChildren { children } => GetChildrenResponse {
                children: children.clone(),
            }
            .write(&mut buf),
            OpResult::Error(code) => ErrorResponse { err: code.code() }.write(&mut buf),
        }
    }
    MULTI_TERMINATOR.write(&mut buf);
    buf.freeze()
}

fn check_results(input: &Bytes) {
    let Ok(results) = decode_multi_results(input) else {
        return;
    };
    let _ = format!("{results:?}");
    for result in &results {
        if let Some(code) = result.error() {
            assert_eq!(zkwarden::proto::ErrorCode::from_code(code.code()), code);
        }
    }
    let encoded = encode_results(&results);
    let again = decode_multi_results(&encoded).expect("re-encoded multi results decode");
    assert_eq!(again, results, "multi results: decode(encode(x)) != x");
    assert_eq!(
        encode_results(&again),
        encoded,
        "multi results: encoding not a fixed point"
    );
    assert_eq!(
        encoded.len(),
        input.len(),
        "multi results: encoding changed the length"
    );
}

fn check_request(input: &Bytes) {
    let Ok(request) = decode_exact::<MultiRequest>(input) else {
        return;
    };
    let _ = format!("{request:?}");
    let encoded = encode_to_bytes(&request);
    let again = decode_exact::<MultiRequest>(&encoded).expect("re-encoded multi request decodes");
    assert_eq!(again, request, "multi request: decode(encode(x)) != x");
    for (op, op_again) in request.ops.iter().zip(&again.ops) {
        assert_eq!(op.op_code(), op_again.op_code());
    }
    assert_eq!(
        encode_to_bytes(&again),
        encoded,
        "multi request: encoding not a fixed point"
    );
    assert_eq!(
        encoded.len(),
        input.len(),
        "multi request: encoding changed the length"
    );
}

fuzz_target!(|data: &[u8]| {
    let input = Bytes::copy_from_slice(data);
    check_results(&input);
    check_request(&input);
});
