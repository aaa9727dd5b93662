//! The byte stream under a connection: plain TCP, TLS over TCP (cargo feature `tls`), or a
//! stream a [`Dialer`] returns (cargo feature `sim`, and unit tests).
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

/// A byte stream a [`Dialer`] hands the client: anything that reads and writes (an in-memory
/// pipe of a simulation, a socket of another network stack).
#[cfg(any(feature = "sim", test))]
pub trait DialedStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

#[cfg(any(feature = "sim", test))]
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> DialedStream for T {}

/// What [`Dialer::dial`] returns.
#[cfg(any(feature = "sim", test))]
pub type DialFuture = Pin<Box<dyn Future<Output = io::Result<Box<dyn DialedStream>>> + Send>>;

/// Opens the byte stream to a server address in place of TCP (cargo feature `sim`): what a
/// deterministic simulation plugs in to run the real client over its own network. Set it
/// with [`ClientBuilder::dialer`](crate::ClientBuilder::dialer) or
/// [`WardenBuilder::dialer`](crate::warden::WardenBuilder::dialer). Host names are
/// resolved as usual first (an IP literal resolves to itself, without DNS); TLS is not
/// layered on a dialed stream.
#[cfg(any(feature = "sim", test))]
pub trait Dialer: Send + Sync + 'static {
    /// Opens a stream to `addr`. An error is a failed connection attempt (the next host is
    /// tried), as a refused TCP connection is.
    fn dial(&self, addr: SocketAddr) -> DialFuture;
}

/// A dialer shared by every connection of a session (and cloned into settings).
#[cfg(any(feature = "sim", test))]
#[derive(Clone)]
pub(crate) struct SharedDialer(pub std::sync::Arc<dyn Dialer>);

#[cfg(any(feature = "sim", test))]
impl std::fmt::Debug for SharedDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dialer")
    }
}

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
    /// A stream a [`Dialer`] opened.
    #[cfg(any(feature = "sim", test))]
    Dialed(Box<dyn DialedStream>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plain(_) => f.write_str("Transport::Plain"),
            #[cfg(feature = "tls")]
            Transport::Tls(_) => f.write_str("Transport::Tls"),
            #[cfg(any(feature = "sim", test))]
            Transport::Dialed(_) => f.write_str("Transport::Dialed"),
        }
    }
}

/// How a session reaches its servers: the resolver that turns names into addresses (asked
/// on every attempt), then plain TCP, TLS with these settings, or a [`Dialer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Security {
    pub resolver: SharedResolver,
    #[cfg(feature = "tls")]
    pub tls: Option<TlsSetup>,
    #[cfg(any(feature = "sim", test))]
    pub dialer: Option<SharedDialer>,
}

#[cfg(test)]
impl Security {
    /// Dials with `dialer` only (no TLS): the transport a driver test plays the server on.
    pub(crate) fn dialing(dialer: impl Dialer) -> Security {
        Security {
            resolver: SharedResolver::default(),
            #[cfg(feature = "tls")]
            tls: None,
            dialer: Some(SharedDialer(std::sync::Arc::new(dialer))),
        }
    }
}

impl Transport {
    /// The TCP stream, when the transport is plain TCP.
    pub(crate) fn as_plain(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(stream) => Some(stream),
            #[cfg(feature = "tls")]
            Transport::Tls(_) => None,
            #[cfg(any(feature = "sim", test))]
            Transport::Dialed(_) => None,
        }
    }

    /// Connects to `addr` (an address `host` resolved to) and, for TLS, completes the TLS
    /// handshake, checking the server's certificate against `host`.
    pub(crate) async fn open(
        addr: SocketAddr,
        host: &HostPort,
        security: &Security,
    ) -> Result<Transport, AttemptError> {
        #[cfg(any(feature = "sim", test))]
        if let Some(SharedDialer(dialer)) = &security.dialer {
            return dialer
                .dial(addr)
                .await
                .map(Transport::Dialed)
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

/// Waits until a transport that buffers its writes (TLS; a dialed stream) has taken everything
/// in `wbuf` it can (flushing TLS records to the socket as it goes) and, at the same time,
/// until a read into `rbuf` completes; returns that read. `wrote` is set whenever bytes are
/// handed over. An error of either direction ends the wait.
#[cfg(any(feature = "tls", feature = "sim", test))]
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
    #[cfg(any(feature = "tls", feature = "sim", test))]
    fn wants_flush(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.get_ref().1.wants_write(),
            #[cfg(any(feature = "sim", test))]
            Transport::Dialed(_) => false,
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
            #[cfg(any(feature = "sim", test))]
            Transport::Dialed(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            #[cfg(any(feature = "sim", test))]
            Transport::Dialed(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            #[cfg(any(feature = "sim", test))]
            Transport::Dialed(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            #[cfg(any(feature = "sim", test))]
            Transport::Dialed(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
