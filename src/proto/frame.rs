//! Length-prefixed framing: every packet is a big-endian `i32` length followed by that many
//! bytes. The decoder says "need more" for an incomplete frame and rejects a length over the
//! configured limit before buffering it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Default limit on a frame's length, the same as the server's default `jute.maxbuffer`
/// (`0xfffff`, one byte short of 1 MiB).
pub const DEFAULT_MAX_FRAME_LEN: usize = 0xfffff;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced (or built) length.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The length prefix is negative.
    #[error("negative frame length {0}")]
    NegativeLength(i32),
    /// The connection closed in the middle of a frame.
    #[error("connection closed inside a frame ({0} bytes buffered)")]
    Truncated(usize),
    /// An I/O error while reading or writing frames.
    #[error("i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e.to_string())
    }
}

/// A [`Decoder`]/[`Encoder`] for ZooKeeper's length-prefixed frames.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameCodec {
    /// A codec refusing frames longer than `max_frame_len` bytes (excluding the prefix).
    pub fn new(max_frame_len: usize) -> Self {
        FrameCodec { max_frame_len }
    }

    /// The configured limit.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Reads the length prefix at the start of `src`, if four bytes are there, and checks it.
    fn peek_len(&self, src: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = src.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len < 0 {
            return Err(FrameError::NegativeLength(len));
        }
        let len = len as usize;
        if len > self.max_frame_len {
            return Err(FrameError::TooLarge {
                len,
                limit: self.max_frame_len,
            });
        }
        Ok(Some(len))
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(len) = self.peek_len(src)? else {
            return Ok(None);
        };
        if src.len() < 4 + len {
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated(src.len())),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        if item.len() > self.max_frame_len {
            return Err(FrameError::TooLarge {
                len: item.len(),
                limit: self.max_frame_len,
            });
        }
        dst.reserve(4 + item.len());
        dst.put_i32(item.len() as i32);
        dst.put_slice(&item);
        Ok(())
    }
}

/// Starts a frame in place: reserves the length prefix and returns where the frame begins.
/// Write the record after it, then call [`finish_frame`].
pub fn begin_frame(dst: &mut BytesMut) -> usize {
    let start = dst.len();
    dst.put_i32(0);
    start
}

/// Completes a frame begun at `start` by filling in its length. If the frame is over
/// `max_frame_len` it is removed from `dst` again and an error returned, so a refused request
/// leaves the buffer as it was.
pub fn finish_frame(
    dst: &mut BytesMut,
    start: usize,
    max_frame_len: usize,
) -> Result<(), FrameError> {
    let len = dst.len() - start - 4;
    if len > max_frame_len {
        dst.truncate(start);
        return Err(FrameError::TooLarge {
            len,
            limit: max_frame_len,
        });
    }
    dst[start..start + 4].copy_from_slice(&(len as i32).to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_frames_wait_for_more() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 1, 2][..]);
        assert_eq!(codec.decode(&mut buf), Ok(None));
        buf.put_u8(3);
        assert_eq!(
            codec.decode(&mut buf),
            Ok(Some(Bytes::from_static(&[1, 2, 3])))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_length_is_refused_before_buffering() {
        let mut codec = FrameCodec::new(16);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 17][..]);
        assert_eq!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge { len: 17, limit: 16 })
        );
    }

    #[test]
    fn negative_length_is_refused() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert_eq!(codec.decode(&mut buf), Err(FrameError::NegativeLength(-1)));
    }

    #[test]
    fn truncated_frame_at_eof_is_an_error() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 5, 1][..]);
        assert_eq!(codec.decode_eof(&mut buf), Err(FrameError::Truncated(5)));
    }

    #[test]
    fn in_place_frames_are_length_prefixed_and_rolled_back_when_too_big() {
        let mut buf = BytesMut::new();
        let start = begin_frame(&mut buf);
        buf.put_slice(b"abc");
        finish_frame(&mut buf, start, 10).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 3, b'a', b'b', b'c']);
        let start = begin_frame(&mut buf);
        buf.put_slice(&[0u8; 11]);
        assert!(finish_frame(&mut buf, start, 10).is_err());
        assert_eq!(buf.len(), 7);
    }

    #[test]
    fn encoder_and_decoder_agree() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"hello"), &mut buf)
            .unwrap();
        codec.encode(Bytes::from_static(b""), &mut buf).unwrap();
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"hello"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b""[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }
}
