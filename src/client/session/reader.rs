//! The one frame reader: length-prefixed frames from any byte stream, through [`FrameCodec`].
//!
//! The handshake, the SASL exchange, `close_session` and the session driver all read with it.
//! One reader lives for a whole connection, so bytes read past one phase's last frame (a
//! server may send the first notification right behind its handshake reply) are the next
//! phase's first.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::Decoder;

use super::config::READ_SLACK;
use crate::proto::{FrameCodec, FrameError};

/// The most free buffer space one read is offered: enough for a few hundred replies, so a
/// busy pipelined session reads many frames per syscall.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// The free space a fresh connection's reads are offered: room for a handshake reply and
/// many pings or notifications. An idle session (most of them, in a process holding
/// thousands) never needs more, and resident memory is paid per session; a busy one doubles
/// it within a few reads.
const FIRST_CHUNK: usize = 512;

/// Why no frame could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The bytes were not a frame this client accepts (too long, negative length).
    Frame(FrameError),
    /// The stream failed.
    Io(io::Error),
    /// The peer closed the stream before a whole frame arrived.
    Closed,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Frame(e) => e.fmt(f),
            ReadError::Io(e) => e.fmt(f),
            ReadError::Closed => f.write_str("server closed the connection"),
        }
    }
}

/// A connection's read buffer and frame decoder.
#[derive(Debug)]
pub(crate) struct FrameReader {
    codec: FrameCodec,
    buf: BytesMut,
    /// The free space reads are offered now: doubled (up to [`READ_CHUNK`]) whenever a read
    /// fills all that was offered, since more was then likely waiting.
    chunk: usize,
    /// The free space the last [`reserve_chunk`](Self::reserve_chunk) left.
    offered: usize,
}

impl FrameReader {
    /// A reader accepting frames up to `max_frame_len` plus [`READ_SLACK`] (a reply wraps
    /// data that was itself at the limit).
    pub(crate) fn new(max_frame_len: usize) -> FrameReader {
        FrameReader {
            codec: FrameCodec::new(max_frame_len.saturating_add(READ_SLACK)),
            buf: BytesMut::with_capacity(FIRST_CHUNK),
            chunk: FIRST_CHUNK,
            offered: FIRST_CHUNK,
        }
    }

    /// The next whole frame already buffered, if any.
    ///
    /// # Errors
    /// The codec's refusal of a bad length prefix.
    pub(crate) fn next_buffered(&mut self) -> Result<Option<Bytes>, FrameError> {
        self.codec.decode(&mut self.buf)
    }

    /// The buffer to read into (the driver reads through it directly, many frames per read).
    pub(crate) fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Makes room for the next read when little is left, so one read can take many frames.
    pub(crate) fn reserve_chunk(&mut self) {
        if self.buf.capacity() - self.buf.len() < self.chunk / 4 {
            self.buf.reserve(self.chunk);
        }
        self.offered = self.buf.capacity() - self.buf.len();
    }

    /// Tells the reader that a read into [`buffer_mut`](Self::buffer_mut) after
    /// [`reserve_chunk`](Self::reserve_chunk) took `n` bytes: one that filled the space offered
    /// doubles the next offer, so a busy session soon reads [`READ_CHUNK`] at a time.
    pub(crate) fn note_read(&mut self, n: usize) {
        if n >= self.offered && self.chunk < READ_CHUNK {
            self.chunk = (self.chunk * 2).min(READ_CHUNK);
        }
    }

    /// Reads from `stream` until a whole frame is buffered and returns it.
    ///
    /// # Errors
    /// [`ReadError::Closed`] at end of stream, [`ReadError::Io`] when reading fails,
    /// [`ReadError::Frame`] for a bad length prefix.
    pub(crate) async fn read_frame<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Bytes, ReadError> {
        loop {
            if let Some(frame) = self.next_buffered().map_err(ReadError::Frame)? {
                return Ok(frame);
            }
            let n = stream
                .read_buf(&mut self.buf)
                .await
                .map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Closed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::proto::request::{EncodedBody, encode_frame};

    #[tokio::test]
    async fn frames_split_and_joined_arrive_whole() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let mut wire = BytesMut::new();
        encode_frame(&mut wire, &EncodedBody(b"one"), 1024).unwrap();
        encode_frame(&mut wire, &EncodedBody(b"two"), 1024).unwrap();
        let writer = tokio::spawn(async move {
            // One frame and a half, then the rest, then the end of the stream.
            server.write_all(&wire[..10]).await.unwrap();
            server.write_all(&wire[10..]).await.unwrap();
        });
        let mut reader = FrameReader::new(1024);
        assert_eq!(&reader.read_frame(&mut client).await.unwrap()[..], b"one");
        assert_eq!(&reader.read_frame(&mut client).await.unwrap()[..], b"two");
        writer.await.unwrap();
        assert!(matches!(
            reader.read_frame(&mut client).await,
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn reads_are_offered_more_room_only_after_filling_what_they_had() {
        let mut reader = FrameReader::new(1024);
        reader.reserve_chunk();
        let first = reader.offered;
        assert!(first < READ_CHUNK, "an idle session starts small");
        // A short read: the offer stays.
        reader.note_read(first / 2);
        assert_eq!(reader.chunk, FIRST_CHUNK);
        // Reads that fill the offer double it, up to READ_CHUNK.
        for _ in 0..16 {
            reader.reserve_chunk();
            let offered = reader.offered;
            reader.note_read(offered);
            reader.buffer_mut().clear();
        }
        reader.reserve_chunk();
        assert_eq!(reader.chunk, READ_CHUNK);
        assert!(reader.offered >= READ_CHUNK / 4);
    }

    #[tokio::test]
    async fn an_oversized_prefix_is_refused() {
        let (mut client, mut server) = tokio::io::duplex(64);
        server.write_all(&[0x7f, 0, 0, 0]).await.unwrap();
        let mut reader = FrameReader::new(1024);
        assert!(matches!(
            reader.read_frame(&mut client).await,
            Err(ReadError::Frame(FrameError::TooLarge { .. }))
        ));
    }
}
