//! The byte stream under a connection: plain TCP, or TLS over TCP (cargo feature `tls`).
//!
//! The plain arm is what the serving loop was tuned for: it writes with `try_write` (one
//! write per batch of queued requests) and reads through `AsyncRead::read_buf`, so it costs
//! nothing to have a TLS arm beside it. TLS cannot write that way: rustls encrypts into its
//! own buffer and the records must be flushed to the socket, so the TLS arm writes, flushes
//! and reads in one future ([`buffered_io`]) that the serving loop waits on instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::connect::AttemptError;
use crate::client::connect_string::HostPort;
use crate::client::resolver::SharedResolver;
#[cfg(feature = "tls")]
use crate::client::tls::{TlsSetup, is_tls_error};
use crate::error::Cause;

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
    /// An in-memory pipe whose other end a test plays the server on.
    #[cfg(test)]
    Memory(tokio::io::DuplexStream),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plain(_) => f.write_str("Transport::Plain"),
            #[cfg(feature = "tls")]
            Transport::Tls(_) => f.write_str("Transport::Tls"),
            #[cfg(test)]
            Transport::Memory(_) => f.write_str("Transport::Memory"),
        }
    }
}

/// How a session reaches its servers: the resolver that turns names into addresses (asked
/// on every attempt), then plain TCP, or TLS with these settings (or, in unit tests, an
/// in-memory network).
#[derive(Debug, Clone, Default)]
pub(crate) struct Security {
    pub resolver: SharedResolver,
    #[cfg(feature = "tls")]
    pub tls: Option<TlsSetup>,
    #[cfg(test)]
    pub memory: Option<MemoryNet>,
}

#[cfg(test)]
impl Security {
    /// Dials over `net` only (no TLS): the transport a driver test plays the server on.
    pub(crate) fn in_memory(net: MemoryNet) -> Security {
        Security {
            resolver: SharedResolver::default(),
            #[cfg(feature = "tls")]
            tls: None,
            memory: Some(net),
        }
    }
}

/// A network of in-memory pipes for tests: every dial makes a pipe and hands its server end
/// (with the host dialed) to the test; once the test drops its receiver, dials are refused.
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) struct MemoryNet {
    pub accept: tokio::sync::mpsc::UnboundedSender<(HostPort, tokio::io::DuplexStream)>,
}

#[cfg(test)]
impl MemoryNet {
    fn dial(&self, host: &HostPort) -> io::Result<tokio::io::DuplexStream> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.accept
            .send((host.clone(), server))
            .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        Ok(client)
    }
}

impl Transport {
    /// The TCP stream, when the transport is plain TCP.
    pub(crate) fn as_plain(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(stream) => Some(stream),
            #[cfg(feature = "tls")]
            Transport::Tls(_) => None,
            #[cfg(test)]
            Transport::Memory(_) => None,
        }
    }

    /// Connects to `addr` (an address `host` resolved to) and, for TLS, completes the TLS
    /// handshake, checking the server's certificate against `host`.
    pub(crate) async fn open(
        addr: SocketAddr,
        host: &HostPort,
        security: &Security,
    ) -> Result<Transport, AttemptError> {
        #[cfg(test)]
        if let Some(net) = &security.memory {
            return net
                .dial(host)
                .map(Transport::Memory)
                .map_err(|e| cannot_connect(host, e));
        }
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| cannot_connect(host, e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| io_failure(addr, "set_nodelay", e))?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &security.tls {
            return match tls.connect(&host.host, stream).await {
                Ok(tls) => Ok(Transport::Tls(Box::new(tls))),
                Err(e) => Err(io_failure(addr, "TLS handshake", e)),
            };
        }
        #[cfg(not(feature = "tls"))]
        let _ = security;
        Ok(Transport::Plain(stream))
    }
}

/// An I/O error during an attempt: a TLS refusal (certificate, alert) is told apart from the
/// network failing, so that the error the client finally reports can say so.
/// The error is kept as the cause's source: for TLS, the TLS library's own error.
pub(crate) fn io_failure(addr: SocketAddr, what: &str, e: io::Error) -> AttemptError {
    let description = format!("{addr}: {what}: {e}");
    #[cfg(feature = "tls")]
    if is_tls_error(&e) {
        return AttemptError::Tls(match e.into_inner() {
            Some(tls) => Cause::with_boxed_source(description, tls),
            None => Cause::new(description),
        });
    }
    AttemptError::Failed(Cause::with_source(description, e))
}

fn cannot_connect(host: &HostPort, e: io::Error) -> AttemptError {
    AttemptError::Failed(Cause::with_source(
        format!("{host}: cannot connect: {e}"),
        e,
    ))
}

/// Waits until a transport that buffers its writes (TLS; a test's pipe) has taken everything
/// in `wbuf` it can (flushing TLS records to the socket as it goes) and, at the same time,
/// until a read into `rbuf` completes; returns that read. `wrote` is set whenever bytes are
/// handed over. An error of either direction ends the wait.
#[cfg(any(feature = "tls", test))]
pub(crate) fn buffered_io<'a>(
    transport: &'a mut Transport,
    wbuf: &'a mut bytes::BytesMut,
    rbuf: &'a mut bytes::BytesMut,
    wrote: &'a mut bool,
) -> impl Future<Output = io::Result<usize>> + 'a {
    use bytes::Buf;

    std::future::poll_fn(move |cx| {
        let mut stream = Pin::new(&mut *transport);
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
                    *wrote = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        // Records rustls encrypted but the socket did not take yet (and anything rustls
        // itself must send) go out here; Pending leaves the waker with the socket.
        if stream.wants_flush() {
            if let Poll::Ready(Err(e)) = stream.as_mut().poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
        }
        tokio_util::io::poll_read_buf(stream, cx, rbuf)
    })
}

impl Transport {
    /// Whether the transport holds written bytes that only a flush sends on.
    #[cfg(any(feature = "tls", test))]
    fn wants_flush(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.get_ref().1.wants_write(),
            #[cfg(test)]
            Transport::Memory(_) => false,
        }
    }
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
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_read(cx, buf),
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
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(test)]
            Transport::Memory(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
