//! The codec test suite.
//!
//! - [`golden`]: reply frames a real ZooKeeper 3.8.0 server sent, decoded and re-encoded.
//! - [`java_requests`]: request frames the real Java client sent, compared with our encoder's.
//! - [`roundtrip`]: property tests that every record survives encode → decode unchanged.
//! - [`robustness`]: property tests that decoders and the frame codec never panic, and that the
//!   frame codec does not care how its input is split.
//!
//! The fixtures live in `src/proto/fixtures/`; their header comments say how they were captured.

mod fixtures;
mod golden;
mod java_requests;
mod robustness;
mod roundtrip;
mod strategies;

use bytes::{Bytes, BytesMut};

use super::jute::Jute;
use super::multi::{MULTI_TERMINATOR, OpResult};
use super::records::{
    Create2Response, CreateResponse, ErrorResponse, GetChildrenResponse, GetDataResponse,
    MultiHeader, StatResponse,
};
use super::{ErrorCode, OpCode};

/// Encodes multi results the way a server does: a [`MultiHeader`] and a body per result, then
/// the terminator. The crate only ever decodes results, so the encoder lives here.
///
/// A create without a stat is written as a plain `create` result, one with a stat as `create2`;
/// an error result carries its code both in the header and in its body, as the server's does.
pub(super) fn encode_multi_results(results: &[OpResult]) -> Bytes {
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

/// Lower-case hex, so that failed byte comparisons print something a person can diff.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn error_codes_survive_the_multi_result_encoder() {
    // Sanity check of the helper itself against a hand-written frame.
    let encoded = encode_multi_results(&[OpResult::Error(ErrorCode::NoNode)]);
    assert_eq!(
        hex(&encoded),
        "ffffffff00ffffff9bffffff9b\
         ffffffff01ffffffff"
    );
}
