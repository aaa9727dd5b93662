//! The byte stream under a connection: plain TCP, or TLS over TCP (cargo feature `tls`).
//!
//! The plain arm is what the serving loop was tuned for: it writes with `try_write` (one
//! write per batch of queued requests) and reads through `AsyncRead::read_buf`, so it costs
//! nothing to have a TLS arm beside it. TLS cannot write that way: rustls encrypts into its
//! own buffer and the records must be flushed to the socket, so the TLS arm writes, flushes
//! and reads in one future ([`tls_io`]) that the serving loop waits on instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::connect::AttemptError;
use crate::client::connect_string::HostPort;
#[cfg(feature = "tls")]
use crate::client::tls::{TlsSetup, is_tls_error};

/// TLS over TCP.
#[cfg(feature = "tls")]
pub(crate) type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// One connection's byte stream. `Debug` names the kind only (no TLS session state).
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: rustls's connection state is large).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plain(_) => f.write_str("Transport::Plain"),
            #[cfg(feature = "tls")]
            Transport::Tls(_) => f.write_str("Transport::Tls"),
        }
    }
}

/// How a session reaches its servers: plain TCP, or TLS with these settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Security {
    #[cfg(feature = "tls")]
    pub tls: Option<TlsSetup>,
}

impl Transport {
    /// The TCP stream, when the transport is plain TCP.
    pub(crate) fn as_plain(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(stream) => Some(stream),
            #[cfg(feature = "tls")]
            Transport::Tls(_) => None,
        }
    }

    /// Connects to `addr` (an address `host` resolved to) and, for TLS, completes the TLS
    /// handshake, checking the server's certificate against `host`.
    pub(crate) async fn open(
        addr: SocketAddr,
        host: &HostPort,
        security: &Security,
    ) -> Result<Transport, AttemptError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| AttemptError::Failed(format!("{host}: cannot connect: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| AttemptError::Failed(format!("{addr}: set_nodelay: {e}")))?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &security.tls {
            return match tls.connect(&host.host, stream).await {
                Ok(tls) => Ok(Transport::Tls(Box::new(tls))),
                Err(e) => Err(io_failure(addr, "TLS handshake", &e)),
            };
        }
        #[cfg(not(feature = "tls"))]
        let _ = security;
        Ok(Transport::Plain(stream))
    }
}

/// An I/O error during an attempt: a TLS refusal (certificate, alert) is told apart from the
/// network failing, so that the error the client finally reports can say so.
pub(crate) fn io_failure(addr: SocketAddr, what: &str, e: &io::Error) -> AttemptError {
    #[cfg(feature = "tls")]
    if is_tls_error(e) {
        return AttemptError::Tls(format!("{addr}: {what}: {e}"));
    }
    AttemptError::Failed(format!("{addr}: {what}: {e}"))
}

/// Waits until the TLS stream has taken everything in `wbuf` it can (flushing rustls's
/// records to the socket as it goes) and, at the same time, until a read into `rbuf`
/// completes; returns that read. `last_send` moves whenever bytes are handed over. An error
/// of either direction ends the wait.
#[cfg(feature = "tls")]
pub(crate) fn tls_io<'a>(
    tls: &'a mut TlsStream,
    wbuf: &'a mut bytes::BytesMut,
    rbuf: &'a mut bytes::BytesMut,
    last_send: &'a mut tokio::time::Instant,
) -> impl Future<Output = io::Result<usize>> + 'a {
    use bytes::Buf;

    std::future::poll_fn(move |cx| {
        let mut stream = Pin::new(&mut *tls);
        while !wbuf.is_empty() {
            match stream.as_mut().poll_write(cx, wbuf) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "TLS stream accepted no bytes",
                    )));
                }
                Poll::Ready(Ok(n)) => {
                    wbuf.advance(n);
                    *last_send = tokio::time::Instant::now();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        // Records rustls encrypted but the socket did not take yet (and anything rustls
        // itself must send) go out here; Pending leaves the waker with the socket.
        if stream.get_ref().1.wants_write() {
            if let Poll::Ready(Err(e)) = stream.as_mut().poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
        }
        tokio_util::io::poll_read_buf(stream, cx, rbuf)
    })
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
