//! One direction of a proxied connection.
//!
//! The reading side reads whatever arrives, at once, and queues it with the time it was read;
//! it never waits for a fault to clear, so a held or delayed stream does not slow the reading.
//! The delivery side takes the chunks in order and asks the settings what to do with each:
//! forward it once `read_at + latency` has passed, hold it while blackholed, or discard it
//! (replies only, while replies are dropped). Order is kept because one task delivers the
//! chunks one after another.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::state::{Counters, Direction, Mode, Settings, Shared, Verdict};

/// Most bytes taken in one read.
const READ_CHUNK: usize = 16 * 1024;
/// Most chunks queued per direction (at most 16 MiB). When they are all held, reading stops
/// and the sender's TCP window fills, as on a stalled link.
const QUEUED_CHUNKS: usize = 1024;

/// Why a connection closes abruptly. Every one of these closes both sockets with a reset.
#[derive(Debug)]
pub(super) enum End {
    /// The test called `reset_all`.
    Reset,
    /// Replies were discarded and the proxy left drop-replies mode: the client's stream lost
    /// bytes mid-frame and cannot be resumed.
    Torn,
    /// A socket failed (typically the peer reset it).
    Io(io::Error),
    /// The proxy was dropped.
    ProxyGone,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Reset => f.write_str("reset requested"),
            End::Torn => f.write_str("replies were discarded; the stream cannot resume"),
            End::Io(e) => write!(f, "socket failed: {e}"),
            End::ProxyGone => f.write_str("the proxy was dropped"),
        }
    }
}

/// Something read from one side.
enum Chunk {
    Data {
        bytes: Bytes,
        read_at: Instant,
    },
    /// The sender closed its half of the connection.
    Eof {
        read_at: Instant,
    },
}

/// Moves bytes from `reader` to `writer` until the reader's end of stream has been passed on
/// (`Ok`) or the connection must close (`Err`).
pub(super) async fn run(
    dir: Direction,
    reader: ReadHalf<'_>,
    writer: WriteHalf<'_>,
    shared: &Shared,
) -> Result<(), End> {
    let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
    let delivery = Delivery {
        dir,
        writer,
        chunks: rx,
        settings: shared.settings.subscribe(),
        counters: &shared.counters,
        torn: false,
    };
    tokio::try_join!(read_side(reader, tx), delivery.run()).map(|_| ())
}

/// Reads until end of stream, queueing every chunk.
async fn read_side(mut reader: ReadHalf<'_>, chunks: mpsc::Sender<Chunk>) -> Result<(), End> {
    loop {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let n = reader.read_buf(&mut buf).await.map_err(End::Io)?;
        let read_at = Instant::now();
        let chunk = if n == 0 {
            Chunk::Eof { read_at }
        } else {
            Chunk::Data {
                bytes: buf.freeze(),
                read_at,
            }
        };
        // A closed queue means delivery has finished; nothing more can be passed on.
        if chunks.send(chunk).await.is_err() || n == 0 {
            return Ok(());
        }
    }
}

/// Takes queued chunks in order and forwards, delays, holds or discards them.
struct Delivery<'a> {
    dir: Direction,
    writer: WriteHalf<'a>,
    chunks: mpsc::Receiver<Chunk>,
    settings: watch::Receiver<Settings>,
    counters: &'a Counters,
    /// Set once a chunk was discarded: from then on the stream can only be closed.
    torn: bool,
}

impl Delivery<'_> {
    async fn run(mut self) -> Result<(), End> {
        loop {
            let chunk = tokio::select! {
                chunk = self.chunks.recv() => chunk,
                // A torn stream must close as soon as the proxy leaves drop-replies mode, even
                // if nothing more arrives to be discarded.
                changed = self.settings.changed(), if self.torn => {
                    changed.map_err(|_| End::ProxyGone)?;
                    let settings = *self.settings.borrow_and_update();
                    self.check_torn(&settings)?;
                    continue;
                }
            };
            match chunk {
                Some(Chunk::Data { bytes, read_at }) => self.deliver(Some(&bytes), read_at).await?,
                Some(Chunk::Eof { read_at }) => {
                    self.deliver(None, read_at).await?;
                    return Ok(());
                }
                // The reading side failed; its error ends the connection.
                None => return Ok(()),
            }
        }
    }

    /// Delivers one chunk, or the end of the stream (`None`), as the settings say; waits
    /// while they say hold or not yet.
    async fn deliver(&mut self, data: Option<&Bytes>, read_at: Instant) -> Result<(), End> {
        loop {
            let settings = *self.settings.borrow_and_update();
            self.check_torn(&settings)?;
            match settings.verdict(self.dir) {
                Verdict::Hold => self.settings_changed().await?,
                Verdict::Discard if data.is_some() => {
                    self.torn = true;
                    self.counters.dropped(data.map_or(0, Bytes::len));
                    return Ok(());
                }
                // The end of the stream is never discarded: the client learns that the
                // server closed, as it would through a lossy network eventually.
                Verdict::Forward | Verdict::Discard => {
                    let due = read_at + settings.latency;
                    if Instant::now() < due {
                        // Wait out the latency, but look again if the settings change
                        // meanwhile (a blackhole or a new latency applies to this chunk too).
                        tokio::select! {
                            () = tokio::time::sleep_until(due) => {}
                            changed = self.settings.changed() => {
                                changed.map_err(|_| End::ProxyGone)?;
                            }
                        }
                        continue;
                    }
                    return self.write(data).await;
                }
            }
        }
    }

    async fn write(&mut self, data: Option<&Bytes>) -> Result<(), End> {
        match data {
            Some(bytes) => {
                self.writer.write_all(bytes).await.map_err(End::Io)?;
                self.counters.forwarded(self.dir, bytes.len());
            }
            None => self.writer.shutdown().await.map_err(End::Io)?,
        }
        Ok(())
    }

    async fn settings_changed(&mut self) -> Result<(), End> {
        self.settings.changed().await.map_err(|_| End::ProxyGone)
    }

    fn check_torn(&self, settings: &Settings) -> Result<(), End> {
        if self.torn && settings.mode != Mode::DropReplies {
            Err(End::Torn)
        } else {
            Ok(())
        }
    }
}
