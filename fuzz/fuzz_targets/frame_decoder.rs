//! Feeds a byte stream to `FrameCodec` in chunks whose sizes the input chooses, and checks the
//! frames and the final outcome against a one-pass reading of the whole stream.
//!
//! Input layout:
//! * byte 0: how many chunk-size bytes follow (`b % 16`); none means the whole stream at once;
//! * byte 1: a third frame limit to test, 0..=255 (besides 4096 and the default);
//! * the chunk-size bytes, used in turn and cycled: `b < 0x80` feeds `b + 1` bytes, otherwise
//!   `(b - 0x7f) * 97` bytes;
//! * the rest: the stream, as the server would send it (length-prefixed frames).
//!
//! Checked for each limit:
//! * the decoder never panics, and `decode` either returns a frame or leaves the buffer alone;
//! * every frame is at most the limit;
//! * bytes fed = bytes consumed by frames (4 + length each) + bytes still buffered, always;
//! * the frames and the final outcome (clean end, or which error) are the same as reading the
//!   whole stream in one pass, however it was split;
//! * re-encoding the frames (with `Encoder::encode` and with `begin_frame`/`finish_frame`)
//!   gives back exactly the consumed part of the stream;
//! * the encoder refuses a frame one byte over the limit and leaves its buffer as it was.

#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};
use zkwarden::proto::frame::{begin_frame, finish_frame};
use zkwarden::proto::{DEFAULT_MAX_FRAME_LEN, FrameCodec, FrameError};

/// How a stream ended.
#[derive(Debug, PartialEq)]
enum End {
    /// Every byte belonged to a complete frame.
    Clean,
    /// The decoder (or `decode_eof`) reported this error.
    Failed(FrameError),
}

/// Reads the whole stream in one pass, independently of the codec.
fn reference(stream: &[u8], limit: usize) -> (Vec<&[u8]>, End) {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        let Some(prefix) = rest.first_chunk::<4>() else {
            let end = if rest.is_empty() {
                End::Clean
            } else {
                End::Failed(FrameError::Truncated(rest.len()))
            };
            return (frames, end);
        };
        let len = i32::from_be_bytes(*prefix);
        if len < 0 {
            return (frames, End::Failed(FrameError::NegativeLength(len)));
        }
        let len = len as usize;
        if len > limit {
            return (frames, End::Failed(FrameError::TooLarge { len, limit }));
        }
        if rest.len() - 4 < len {
            return (frames, End::Failed(FrameError::Truncated(rest.len())));
        }
        frames.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
}

fn chunk_size(b: u8) -> usize {
    if b < 0x80 {
        usize::from(b) + 1
    } else {
        usize::from(b - 0x7f) * 97
    }
}

/// Feeds `stream` to a codec with `limit` in chunks, decoding after each, as a connection does.
fn chunked(stream: &[u8], plan: &[u8], limit: usize) -> (Vec<Bytes>, End, usize) {
    let mut codec = FrameCodec::new(limit);
    assert_eq!(codec.max_frame_len(), limit);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    let mut consumed = 0;
    let mut sizes = plan.iter().copied().map(chunk_size).cycle();

    let mut take = |frame: Bytes, consumed: &mut usize| {
        assert!(
            frame.len() <= limit,
            "frame of {} bytes over limit {limit}",
            frame.len()
        );
        *consumed += 4 + frame.len();
        frames.push(frame);
    };

    while fed < stream.len() {
        let step = sizes.next().unwrap_or(stream.len()).min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + step]);
        fed += step;
        loop {
            let before = buf.len();
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => take(frame, &mut consumed),
                Ok(None) => {
                    assert_eq!(buf.len(), before, "decode returned None but consumed bytes");
                    break;
                }
                Err(e) => return (frames, End::Failed(e), consumed),
            }
            assert_eq!(
                fed,
                consumed + buf.len(),
                "bytes fed != consumed + buffered"
            );
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => take(frame, &mut consumed),
            Ok(None) => {
                assert!(buf.is_empty(), "decode_eof ended cleanly with bytes left");
                break;
            }
            Err(e) => return (frames, End::Failed(e), consumed),
        }
        assert_eq!(
            fed,
            consumed + buf.len(),
            "bytes fed != consumed + buffered at eof"
        );
    }
    assert_eq!(consumed, fed);
    (frames, End::Clean, consumed)
}

fn check(stream: &[u8], plan: &[u8], limit: usize) {
    let (frames, end, consumed) = chunked(stream, plan, limit);
    let (expected_frames, expected_end) = reference(stream, limit);
    assert_eq!(
        end, expected_end,
        "outcome depends on how the stream was split"
    );
    assert_eq!(
        frames.len(),
        expected_frames.len(),
        "frame count depends on the split"
    );
    for (got, want) in frames.iter().zip(&expected_frames) {
        assert_eq!(&got[..], *want, "frame content depends on the split");
    }

    // The encoder and the in-place framing write back exactly what was read.
    let mut codec = FrameCodec::new(limit);
    let mut encoded = BytesMut::new();
    let mut in_place = BytesMut::new();
    for frame in &frames {
        codec
            .encode(frame.clone(), &mut encoded)
            .expect("a decoded frame re-encodes");
        let start = begin_frame(&mut in_place);
        in_place.put_slice(frame);
        finish_frame(&mut in_place, start, limit).expect("a decoded frame fits in place");
    }
    assert_eq!(&encoded[..], &stream[..consumed]);
    assert_eq!(&in_place[..], &stream[..consumed]);
}

fuzz_target!(|data: &[u8]| {
    let [plan_len, small_limit, rest @ ..] = data else {
        return;
    };
    let plan_len = usize::from(*plan_len % 16).min(rest.len());
    let (plan, stream) = rest.split_at(plan_len);

    check(stream, plan, 4096);
    check(stream, plan, DEFAULT_MAX_FRAME_LEN);
    let small_limit = usize::from(*small_limit);
    check(stream, plan, small_limit);

    // One byte over the limit is refused, and the refusal leaves the buffer alone.
    let mut codec = FrameCodec::new(small_limit);
    let mut dst = BytesMut::from(stream);
    let too_big = Bytes::from(vec![0u8; small_limit + 1]);
    assert_eq!(
        codec.encode(too_big, &mut dst),
        Err(FrameError::TooLarge {
            len: small_limit + 1,
            limit: small_limit
        })
    );
    assert_eq!(&dst[..], stream);
    let start = begin_frame(&mut dst);
    dst.put_bytes(0, small_limit + 1);
    assert!(finish_frame(&mut dst, start, small_limit).is_err());
    assert_eq!(&dst[..], stream);
});
