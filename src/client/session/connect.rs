//! Opening one connection: resolve, connect, handshake.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::reader::{FrameReader, ReadError};
use super::transport::{Security, Transport, io_failure};
use crate::client::SaslConfig;
use crate::client::connect_string::HostPort;
use crate::client::state::{SessionId, SessionPassword};
use crate::error::Cause;
use crate::proto::jute::{Jute, Reader, decode_exact};
use crate::proto::records::{ConnectRequest, ConnectResponse, Password};
use crate::proto::request::{NoBody, encode_frame, encode_request};
use crate::proto::{DecodeError, FrameError};

/// A connection that completed its handshake.
#[derive(Debug)]
pub(crate) struct Established {
    pub stream: Transport,
    pub addr: SocketAddr,
    /// The connection's reader, holding whatever was read after the handshake (normally
    /// nothing).
    pub reader: FrameReader,
    pub session_id: SessionId,
    pub password: SessionPassword,
    pub negotiated: Duration,
    pub read_only: bool,
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// The server says the session has expired (negotiated timeout <= 0).
    Expired,
    /// The server refused the SASL credentials: the session ends, no other host is tried.
    AuthFailed,
    /// TLS refused to go on (a certificate refused by either side, an alert): try the next
    /// host, and name this reason if no host works.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Tls(Cause),
    /// Anything else: try the next host.
    Failed(Cause),
}

/// What the handshake asks for.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    pub last_zxid: i64,
    pub timeout: Duration,
    pub session_id: SessionId,
    pub password: SessionPassword,
    pub read_only: bool,
    pub max_frame_len: usize,
    /// SASL credentials to authenticate with before the connection serves.
    pub sasl: Option<crate::client::SaslConfig>,
}

/// Resolves `host` (every attempt, so DNS changes are seen), connects to the first address
/// that answers (over TLS when `security` says so) and performs the handshake.
pub(crate) async fn attempt(
    host: &HostPort,
    hs: &Handshake,
    security: &Security,
) -> Result<Established, AttemptError> {
    let addrs = resolve(host, security)
        .await
        .map_err(AttemptError::Failed)?;
    let mut last = AttemptError::Failed(format!("{host}: resolved to no address").into());
    for addr in addrs {
        match Transport::open(addr, host, security).await {
            Ok(mut stream) => {
                let (reply, reader) = handshake(&mut stream, &host.host, addr, hs).await?;
                return Ok(Established {
                    stream,
                    addr,
                    reader,
                    session_id: SessionId(reply.session_id),
                    password: SessionPassword(reply.password.0),
                    negotiated: Duration::from_millis(reply.timeout_ms as u64),
                    read_only: reply.read_only,
                });
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The addresses `host` resolves to now, by the session's resolver. (A dialer, too, is
/// handed resolved addresses: the transport does not change how names resolve.)
pub(crate) async fn resolve(
    host: &HostPort,
    security: &Security,
) -> Result<Vec<SocketAddr>, Cause> {
    security
        .resolver
        .resolve(host)
        .await
        .map_err(|e| Cause::with_source(format!("{host}: cannot resolve: {e}"), e))
}

/// Sends the ConnectRequest and reads the ConnectResponse, over any byte stream (plain TCP
/// or TLS) to `host` at `addr`, then runs SASL if configured. Returns the reply and the
/// reader holding whatever was read after it. A reply with a timeout <= 0 means the session
/// has expired.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    addr: SocketAddr,
    hs: &Handshake,
) -> Result<(ConnectResponse, FrameReader), AttemptError> {
    let failed = |what: &str, e: DecodeOrFrame| {
        AttemptError::Failed(Cause::with_source(format!("{addr}: {what}: {e}"), e))
    };
    let mut out = BytesMut::with_capacity(64);
    encode_frame(&mut out, &connect_request(hs), hs.max_frame_len)
        .map_err(|e| failed("handshake", DecodeOrFrame::Frame(e)))?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| io_failure(addr, "write handshake", e))?;
    // A no-op for TCP; pushes TLS records out of rustls's buffer.
    stream
        .flush()
        .await
        .map_err(|e| io_failure(addr, "write handshake", e))?;

    let mut reader = FrameReader::new(hs.max_frame_len);
    let frame = reader.read_frame(stream).await.map_err(|e| match e {
        ReadError::Frame(e) => failed("handshake reply", DecodeOrFrame::Frame(e)),
        ReadError::Io(e) => io_failure(addr, "read handshake", e),
        ReadError::Closed => AttemptError::Failed(
            format!("{addr}: server closed the connection during the handshake").into(),
        ),
    })?;
    let reply: ConnectResponse =
        decode_exact(&frame).map_err(|e| failed("handshake reply", DecodeOrFrame::Decode(e)))?;
    if reply.timeout_ms <= 0 {
        return Err(AttemptError::Expired);
    }
    super::sasl::authenticate(stream, &mut reader, hs, host, addr).await?;
    Ok((reply, reader))
}

/// The `ConnectRequest` that `hs` asks for (a new session sends 16 zero bytes as password).
fn connect_request(hs: &Handshake) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: hs.last_zxid,
        timeout_ms: hs.timeout.as_millis().min(i32::MAX as u128) as i32,
        session_id: hs.session_id.0,
        password: Password(if hs.password.0.is_empty() {
            Bytes::from_static(&[0u8; 16])
        } else {
            hs.password.0.clone()
        }),
        read_only: hs.read_only,
    }
}

/// A handshake reply this client could not take.
#[derive(Debug, thiserror::Error)]
enum DecodeOrFrame {
    #[error(transparent)]
    Decode(DecodeError),
    #[error(transparent)]
    Frame(FrameError),
}

/// How [`close_session`](crate::client::close_session) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The session was alive and is now closed.
    Closed,
    /// The server said the session had already expired.
    AlreadyExpired,
}

/// Why [`close_session`] could not close a session.
#[derive(Debug)]
pub(crate) enum CloseError {
    /// A server refused the SASL credentials: no other host is tried (they share them).
    AuthFailed,
    /// No host answered in time; the last failure.
    Failed(String),
}

/// Closes session `session_id` on the server from a new connection. Without SASL the connect
/// request and the close request go out in one write, so no other connection of the session
/// can get in between; with SASL the close waits for the connection to authenticate, as a
/// server that requires SASL takes nothing else before (if the session's own client takes it
/// back meanwhile, the close is tried again). Tries one host at a time until `deadline`.
/// With `read_only`, servers in read-only mode are asked too (they answer only for sessions
/// they made, and call any other local session expired).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn close_session(
    hosts: &[HostPort],
    session_id: SessionId,
    password: &SessionPassword,
    timeout: Duration,
    max_frame_len: usize,
    security: &Security,
    read_only: bool,
    sasl: Option<&SaslConfig>,
) -> Result<SessionEnd, CloseError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = String::from("no host tried");
    // 50 to 100 ms between rounds: the one jittered pause (`Backoff`), held flat.
    let mut between_rounds =
        crate::Backoff::new(Duration::from_millis(100), Duration::from_millis(100));
    let close = CloseRequest {
        session_id,
        password,
        max_frame_len,
        read_only,
        sasl,
    };
    loop {
        let mut order = hosts.to_vec();
        fastrand::shuffle(&mut order);
        for host in &order {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(CloseError::Failed(last_error));
            }
            let attempt = close_on_host(host, &close, security);
            match tokio::time::timeout(deadline - now, attempt).await {
                Ok(Ok(end)) => return Ok(end),
                Ok(Err(CloseError::AuthFailed)) => return Err(CloseError::AuthFailed),
                Ok(Err(CloseError::Failed(e))) => {
                    debug!(%session_id, error = %e, "close attempt failed");
                    last_error = e;
                }
                Err(_) => last_error = format!("{host}: no answer in time"),
            }
        }
        let pause = between_rounds.next_pause();
        if tokio::time::Instant::now() + pause >= deadline {
            return Err(CloseError::Failed(last_error));
        }
        tokio::time::sleep(pause).await;
    }
}

/// What closing a session needs, for each host tried.
struct CloseRequest<'a> {
    session_id: SessionId,
    password: &'a SessionPassword,
    max_frame_len: usize,
    read_only: bool,
    sasl: Option<&'a SaslConfig>,
}

/// The xid of the close request: after those of any SASL exchange before it.
const CLOSE_XID: i32 = super::sasl::MAX_STEPS + 1;

async fn close_on_host(
    host: &HostPort,
    close: &CloseRequest<'_>,
    security: &Security,
) -> Result<SessionEnd, CloseError> {
    let mut last = format!("{host}: resolved to no address");
    let addrs = resolve(host, security)
        .await
        .map_err(|e| CloseError::Failed(e.to_string()))?;
    for addr in addrs {
        match Transport::open(addr, host, security).await {
            Ok(mut stream) => return close_over(&mut stream, host, addr, close).await,
            Err(AttemptError::Failed(e) | AttemptError::Tls(e)) => last = e.to_string(),
            Err(AttemptError::Expired) => return Ok(SessionEnd::AlreadyExpired),
            Err(AttemptError::AuthFailed) => return Err(CloseError::AuthFailed),
        }
    }
    Err(CloseError::Failed(last))
}

/// Attaches to the session over `stream` and closes it: the connect request and the close
/// request in one write when no SASL is needed, else the handshake and SASL exchange of a
/// normal connection first. Waits for the close to be answered.
async fn close_over<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &HostPort,
    addr: SocketAddr,
    close: &CloseRequest<'_>,
) -> Result<SessionEnd, CloseError> {
    use crate::proto::records::ReplyHeader;
    use crate::proto::{ErrorCode, OpCode};

    let failed = |e: String| CloseError::Failed(e);
    let hs = Handshake {
        last_zxid: 0,
        timeout: Duration::from_secs(30),
        session_id: close.session_id,
        password: close.password.clone(),
        read_only: close.read_only,
        max_frame_len: close.max_frame_len,
        sasl: close.sasl.cloned(),
    };
    let mut out = BytesMut::with_capacity(96);
    let mut reader = if hs.sasl.is_some() {
        match handshake(stream, &host.host, addr, &hs).await {
            Ok((_, reader)) => reader,
            Err(AttemptError::Expired) => return Ok(SessionEnd::AlreadyExpired),
            Err(AttemptError::AuthFailed) => return Err(CloseError::AuthFailed),
            Err(AttemptError::Failed(e) | AttemptError::Tls(e)) => {
                return Err(failed(e.to_string()));
            }
        }
    } else {
        encode_frame(&mut out, &connect_request(&hs), close.max_frame_len)
            .map_err(|e| failed(e.to_string()))?;
        FrameReader::new(close.max_frame_len)
    };
    encode_request(
        &mut out,
        CLOSE_XID,
        OpCode::CloseSession,
        &NoBody,
        close.max_frame_len,
    )
    .map_err(|e| failed(e.to_string()))?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| failed(format!("{host}: write: {e}")))?;
    stream
        .flush()
        .await
        .map_err(|e| failed(format!("{host}: write: {e}")))?;

    let mut handshake_done = hs.sasl.is_some();
    loop {
        let frame = match reader.read_frame(stream).await {
            Ok(frame) => frame,
            // Closed before the close was answered: another connection of the session may
            // have taken it over first. Try again (the next try finds it expired if the close
            // did land).
            Err(ReadError::Closed) => {
                return Err(failed(format!(
                    "{host}: connection closed before the close was confirmed"
                )));
            }
            Err(ReadError::Io(e)) => return Err(failed(format!("{host}: read: {e}"))),
            Err(ReadError::Frame(e)) => return Err(failed(e.to_string())),
        };
        if !handshake_done {
            let reply: ConnectResponse = decode_exact(&frame).map_err(|e| failed(e.to_string()))?;
            if reply.timeout_ms <= 0 {
                return Ok(SessionEnd::AlreadyExpired);
            }
            handshake_done = true;
            continue;
        }
        // Only the answer to our close says how it went; anything else (a notification,
        // say) is not a confirmation.
        let header = ReplyHeader::read(&mut Reader::new(&frame))
            .map_err(|e| failed(format!("{host}: bad reply header: {e}")))?;
        if header.xid != CLOSE_XID {
            continue;
        }
        return match ErrorCode::from_code(header.err) {
            ErrorCode::Ok => Ok(SessionEnd::Closed),
            code if code.means_session_gone() => Ok(SessionEnd::AlreadyExpired),
            code => Err(failed(format!("{host}: close refused: {code:?}"))),
        };
    }
}
