//! Request frames: the one place that writes a request's length prefix and header.
//!
//! A request on the wire is a frame holding a [`RequestHeader`] (xid, op) and the op's record.
//! Every request the client sends (operations, pings, auth, SetWatches2, RemoveWatches, close,
//! SASL steps) is written by [`encode_request`]; the handshake's `ConnectRequest`, the one frame
//! without a header, by [`encode_frame`]. Both check the frame limit and leave the buffer as it
//! was when the frame is too large, so a refused request is never half-written.

use bytes::BytesMut;

use super::frame::{FrameError, begin_frame, finish_frame};
use super::jute::Jute;
use super::opcode::OpCode;
use super::records::RequestHeader;

/// Bytes a [`RequestHeader`] takes on the wire (xid and op).
pub const REQUEST_HEADER_LEN: usize = 8;

/// What follows a request header: any jute record, a body encoded ahead of time
/// ([`EncodedBody`]), or nothing ([`NoBody`]).
pub trait RequestBody {
    /// Appends the body to `dst`.
    fn write_body(&self, dst: &mut BytesMut);
}

impl<'r, R: Jute<'r>> RequestBody for R {
    fn write_body(&self, dst: &mut BytesMut) {
        self.write(dst);
    }
}

/// A record already encoded (by a handle, so that a request over the limit is refused before
/// it is queued); the header goes in front of it when the session writes it.
#[derive(Debug, Clone, Copy)]
pub struct EncodedBody<'a>(pub &'a [u8]);

impl RequestBody for EncodedBody<'_> {
    fn write_body(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(self.0);
    }
}

/// The empty body of a ping, a close or a `whoAmI`.
#[derive(Debug, Clone, Copy)]
pub struct NoBody;

impl RequestBody for NoBody {
    fn write_body(&self, _dst: &mut BytesMut) {}
}

/// Appends one request frame (length, header with `xid` and `op`, body) to `dst`.
///
/// # Errors
/// [`FrameError::TooLarge`] when the frame would exceed `max_frame_len`; `dst` is then left as
/// it was.
pub fn encode_request(
    dst: &mut BytesMut,
    xid: i32,
    op: OpCode,
    body: &impl RequestBody,
    max_frame_len: usize,
) -> Result<(), FrameError> {
    let start = begin_frame(dst);
    RequestHeader { xid, op: op.code() }.write(dst);
    body.write_body(dst);
    finish_frame(dst, start, max_frame_len)
}

/// Appends one frame holding `body` alone (no request header: the handshake's
/// `ConnectRequest`) to `dst`.
///
/// # Errors
/// [`FrameError::TooLarge`] when the frame would exceed `max_frame_len`; `dst` is then left as
/// it was.
pub fn encode_frame(
    dst: &mut BytesMut,
    body: &impl RequestBody,
    max_frame_len: usize,
) -> Result<(), FrameError> {
    let start = begin_frame(dst);
    body.write_body(dst);
    finish_frame(dst, start, max_frame_len)
}

/// Encodes `record` as the body of an `op` request (header left to [`encode_request`]),
/// refusing it when the whole frame would exceed `max_frame_len`.
///
/// # Errors
/// [`FrameError::TooLarge`], naming the frame's length with its header.
pub fn encode_body<'r>(
    record: &impl Jute<'r>,
    size_hint: usize,
    max_frame_len: usize,
) -> Result<BytesMut, FrameError> {
    let mut body = BytesMut::with_capacity(size_hint + 16);
    record.write(&mut body);
    let len = body.len() + REQUEST_HEADER_LEN;
    if len > max_frame_len {
        return Err(FrameError::TooLarge {
            len,
            limit: max_frame_len,
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::jute::Reader;
    use crate::proto::records::{PathWatchRequest, RequestHeader};
    use bytes::Bytes;

    fn parse(frame: &[u8]) -> (RequestHeader, Bytes) {
        let len = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len, frame.len() - 4);
        let bytes = Bytes::copy_from_slice(&frame[4..]);
        let mut r = Reader::new(&bytes);
        let header = RequestHeader::read(&mut r).unwrap();
        (header, bytes.slice(r.position()..))
    }

    #[test]
    fn a_request_is_prefix_header_and_body() {
        let record = PathWatchRequest {
            path: "/a",
            watch: true,
        };
        let mut direct = BytesMut::new();
        encode_request(&mut direct, 7, OpCode::GetData, &record, 1024).unwrap();
        let (header, body) = parse(&direct);
        assert_eq!((header.xid, header.op), (7, OpCode::GetData.code()));
        // A body encoded ahead of time gives the same frame.
        let early = encode_body(&record, 0, 1024).unwrap();
        let mut later = BytesMut::new();
        encode_request(&mut later, 7, OpCode::GetData, &EncodedBody(&early), 1024).unwrap();
        assert_eq!(direct, later);
        assert_eq!(&body[..], &early[..]);
    }

    #[test]
    fn the_limit_counts_the_header_and_refuses_without_writing() {
        let record = PathWatchRequest {
            path: "/abcdefgh",
            watch: false,
        };
        // Body: 4 + 9 + 1 = 14 bytes; with the header 22.
        assert!(encode_body(&record, 0, 22).is_ok());
        assert_eq!(
            encode_body(&record, 0, 21).unwrap_err(),
            FrameError::TooLarge { len: 22, limit: 21 }
        );
        let mut dst = BytesMut::from(&b"xy"[..]);
        assert!(encode_request(&mut dst, 1, OpCode::GetData, &record, 21).is_err());
        assert_eq!(&dst[..], b"xy");
    }

    #[test]
    fn a_ping_has_no_body() {
        let mut dst = BytesMut::new();
        encode_request(&mut dst, -2, OpCode::Ping, &NoBody, 1024).unwrap();
        assert_eq!(&dst[..], &[0, 0, 0, 8, 255, 255, 255, 254, 0, 0, 0, 11]);
    }
}
