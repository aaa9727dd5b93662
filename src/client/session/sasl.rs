//! The SASL exchange of a connection, run inside the handshake: after the server's
//! `ConnectResponse` and before the connection serves any request, so that every connection
//! (a reconnect, a new session) is authenticated before anything else goes out.
//!
//! On the wire each step is a `sasl` request (op 102) carrying the client's token and a reply
//! carrying the server's. A ZooKeeper server that refuses the credentials answers with
//! `AuthFailed` (-115), or `SessionClosedRequireSaslAuth` (-124) when it requires SASL, and
//! then closes the connection; both end the session with [`Error::AuthFailed`]: the same
//! credentials would be refused again.
//!
//! [`Error::AuthFailed`]: crate::Error::AuthFailed

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::{debug, warn};

use super::connect::{AttemptError, Handshake};
use super::reader::FrameReader;
use crate::client::sasl::mechanism::{Mechanism, MechanismError};
use crate::proto::jute::{Jute, Reader, decode_exact};
use crate::proto::records::{GetSaslRequest, ReplyHeader, Secret, SetSaslResponse};
use crate::proto::request::encode_request;
use crate::proto::{ErrorCode, OpCode};

/// More round trips than any mechanism we speak needs: a server that keeps going is broken.
pub(crate) const MAX_STEPS: i32 = 8;

/// Runs the SASL exchange `hs` asks for on a freshly handshaken connection to `host` (nothing
/// when it asks for none), reading with the connection's `reader`.
pub(crate) async fn authenticate<S>(
    stream: &mut S,
    reader: &mut FrameReader,
    hs: &Handshake,
    host: &str,
    addr: SocketAddr,
) -> Result<(), AttemptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(config) = &hs.sasl else {
        return Ok(());
    };
    let mechanism_name = config.mechanism();
    let refused = |reason: &str| {
        // The reason names principals, users and Kerberos's own words; never a secret.
        warn!(%addr, mechanism = mechanism_name, %reason, "SASL authentication failed");
        AttemptError::AuthFailed
    };
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        AttemptError::Failed(format!("{addr}: SASL {what}: {e}").into())
    };
    let mechanism_failed = |e: MechanismError| match e {
        MechanismError::Refused(reason) => refused(&reason),
        MechanismError::Broken(reason) => failed(mechanism_name, &reason),
    };
    let mut mechanism = Mechanism::new(config, host).map_err(mechanism_failed)?;
    let who = mechanism.describe();
    let mut token = mechanism.initial().await.map_err(mechanism_failed)?;
    for xid in 1..=MAX_STEPS {
        send(stream, xid, &token, hs.max_frame_len)
            .await
            .map_err(|e| failed("write", &e))?;
        let frame = reader
            .read_frame(stream)
            .await
            .map_err(|e| failed("read", &e))?;
        let server_token = parse_reply(&frame, xid).map_err(|e| match e {
            Refusal::Refused(code) => refused(&format!(
                "server refused the credentials ({who}): {}",
                code.describe()
            )),
            Refusal::Other(msg) => AttemptError::Failed(format!("{addr}: SASL: {msg}").into()),
        })?;
        match mechanism
            .step(&server_token)
            .await
            .map_err(mechanism_failed)?
        {
            Some(next) => token = next,
            None => break,
        }
    }
    if !mechanism.is_complete() {
        return Err(AttemptError::Failed(
            format!("{addr}: SASL exchange did not complete in {MAX_STEPS} steps").into(),
        ));
    }
    debug!(%addr, mechanism = mechanism_name, %who, "SASL authenticated");
    Ok(())
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    xid: i32,
    token: &[u8],
    max_frame_len: usize,
) -> std::io::Result<()> {
    let mut out = BytesMut::with_capacity(16 + token.len());
    let request = GetSaslRequest {
        token: Secret(token.into()),
    };
    encode_request(&mut out, xid, OpCode::Sasl, &request, max_frame_len)
        .map_err(std::io::Error::other)?;
    stream.write_all(&out).await?;
    stream.flush().await
}

/// Why a SASL reply carries no token.
enum Refusal {
    /// The server refused the credentials.
    Refused(ErrorCode),
    /// Anything else.
    Other(String),
}

fn parse_reply(frame: &Bytes, xid: i32) -> Result<Bytes, Refusal> {
    let mut reader = Reader::new(frame);
    let header = ReplyHeader::read(&mut reader)
        .map_err(|e| Refusal::Other(format!("bad reply header: {e}")))?;
    let code = ErrorCode::from_code(header.err);
    match code {
        ErrorCode::AuthFailed | ErrorCode::SessionClosedRequireSaslAuth => {
            return Err(Refusal::Refused(code));
        }
        ErrorCode::Ok => {}
        other => {
            return Err(Refusal::Other(format!(
                "server answered {}: {}",
                other.code(),
                other.describe()
            )));
        }
    }
    if header.xid != xid {
        return Err(Refusal::Other(format!(
            "reply with xid {} to SASL request {xid}",
            header.xid
        )));
    }
    let body = frame.slice(reader.position()..);
    let reply: SetSaslResponse =
        decode_exact(&body).map_err(|e| Refusal::Other(format!("bad reply: {e}")))?;
    Ok(reply.token)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, DuplexStream};

    use super::*;
    use crate::client::sasl::SaslConfig;
    use crate::client::state::{SessionId, SessionPassword};
    use crate::proto::frame::{begin_frame, finish_frame};

    fn handshake() -> Handshake {
        Handshake {
            last_zxid: 0,
            timeout: Duration::from_secs(10),
            session_id: SessionId(0),
            password: SessionPassword::default(),
            read_only: false,
            max_frame_len: 1 << 20,
            sasl: Some(SaslConfig::digest_md5("bob", "hunter2")),
        }
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:2181".parse().unwrap()
    }

    /// Reads one request frame from the client side of `server`; returns its xid.
    async fn read_request(server: &mut DuplexStream) -> i32 {
        let mut len = [0u8; 4];
        server.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        server.read_exact(&mut body).await.unwrap();
        assert_eq!(
            i32::from_be_bytes(body[4..8].try_into().unwrap()),
            OpCode::Sasl.code()
        );
        i32::from_be_bytes(body[0..4].try_into().unwrap())
    }

    async fn reply(server: &mut DuplexStream, xid: i32, err: i32, token: &[u8]) {
        let mut out = BytesMut::new();
        let start = begin_frame(&mut out);
        ReplyHeader { xid, zxid: 0, err }.write(&mut out);
        SetSaslResponse {
            token: Bytes::copy_from_slice(token),
        }
        .write(&mut out);
        finish_frame(&mut out, start, 1 << 20).unwrap();
        server.write_all(&out).await.unwrap();
    }

    /// Runs the exchange against `script`, which plays the server and owns its end (dropping
    /// it closes the connection).
    async fn run(script: impl AsyncFnOnce(DuplexStream)) -> Result<(), AttemptError> {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut reader = FrameReader::new(1 << 20);
        let hs = handshake();
        let (result, ()) = tokio::join!(
            authenticate(&mut client, &mut reader, &hs, "localhost", addr()),
            script(server)
        );
        result
    }

    const CHALLENGE: &[u8] =
        b"realm=\"zk-sasl-md5\",nonce=\"abc\",charset=utf-8,algorithm=md5-sess";

    #[tokio::test]
    async fn refused_credentials_are_terminal() {
        for code in [-115, -124] {
            let result = run(async move |mut s: DuplexStream| {
                let xid = read_request(&mut s).await;
                reply(&mut s, xid, 0, CHALLENGE).await;
                let xid = read_request(&mut s).await;
                reply(&mut s, xid, code, b"").await;
            })
            .await;
            assert!(
                matches!(result, Err(AttemptError::AuthFailed)),
                "{result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_false_server_proof_is_terminal() {
        let result = run(async |mut s: DuplexStream| {
            let xid = read_request(&mut s).await;
            reply(&mut s, xid, 0, CHALLENGE).await;
            let xid = read_request(&mut s).await;
            reply(&mut s, xid, 0, b"rspauth=00000000000000000000000000000000").await;
        })
        .await;
        assert!(
            matches!(result, Err(AttemptError::AuthFailed)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn broken_exchanges_try_the_next_host() {
        let closes = run(async |mut s: DuplexStream| {
            read_request(&mut s).await;
        });
        let no_challenge = run(async |mut s: DuplexStream| {
            let xid = read_request(&mut s).await;
            reply(&mut s, xid, 0, b"").await;
        });
        let wrong_xid = run(async |mut s: DuplexStream| {
            let xid = read_request(&mut s).await;
            reply(&mut s, xid + 7, 0, CHALLENGE).await;
        });
        let other_error = run(async |mut s: DuplexStream| {
            let xid = read_request(&mut s).await;
            reply(&mut s, xid, -6, b"").await;
        });
        for result in [
            closes.await,
            no_challenge.await,
            wrong_xid.await,
            other_error.await,
        ] {
            assert!(matches!(result, Err(AttemptError::Failed(_))), "{result:?}");
        }
    }

    #[tokio::test]
    async fn no_sasl_configured_sends_nothing() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let hs = Handshake {
            sasl: None,
            ..handshake()
        };
        authenticate(
            &mut client,
            &mut FrameReader::new(1 << 20),
            &hs,
            "localhost",
            addr(),
        )
        .await
        .unwrap();
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
