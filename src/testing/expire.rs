//! Expiring a session the way a real outage does: on the server.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::client::{Client, ClientBuilder, SessionEnd, SessionId, SessionPassword};
use crate::error::{Error, Result};
use crate::warden::Warden;

/// How long [`expire_session`] keeps trying before it gives up.
const EXPIRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Ends session `session_id` on the server behind `connect_string`: a second connection
/// resumes the session with its id and password and closes it in the same write. The server
/// drops the session's ephemeral nodes and its other connection, so the original client
/// finds out exactly as it would after a real expiry (its next handshake is refused as
/// expired).
///
/// Returns only once the server has said the session is expired: after a close it attaches
/// once more with the id and password (again with a close in the same write, so this check
/// cannot revive the session) and expects an expired handshake. Succeeds too when the session
/// had already expired.
///
/// On ZooKeeper 3.8, a client that re-attaches at the very moment the session is closed can be
/// left on a connection the server neither answers nor closes; a zkwarden client finds out
/// when its re-attach probe goes unanswered (within 250 ms at first), and its pause before
/// re-attaching ([`ClientBuilder::reconnect_delay`]) makes that moment rare.
///
/// # Errors
/// `InvalidConnectString`; `ConnectFailed` if no server answers, or the session is not
/// confirmed gone, within ten seconds.
pub async fn expire_session(
    connect_string: &str,
    session_id: SessionId,
    password: &SessionPassword,
) -> Result<()> {
    expire_session_with(&ClientBuilder::new(connect_string), session_id, password).await
}

/// As [`expire_session`], connecting with `builder`'s settings (its connect string, and TLS
/// when it is set up for it) for the closing connection.
///
/// # Errors
/// `InvalidConnectString`, `InvalidArgument` for bad settings; `ConnectFailed` if no server
/// answers, or the session is not confirmed gone, within ten seconds.
pub async fn expire_session_with(
    builder: &ClientBuilder,
    session_id: SessionId,
    password: &SessionPassword,
) -> Result<()> {
    let deadline = Instant::now() + EXPIRY_TIMEOUT;
    let mut closes = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::ConnectFailed {
                hosts: Vec::new(),
                timeout_ms: EXPIRY_TIMEOUT.as_millis() as u64,
                last_error: format!(
                    "session {session_id} still alive after {closes} confirmed closes"
                )
                .into(),
            });
        }
        match builder.close_session(session_id, password, left).await? {
            SessionEnd::AlreadyExpired => {
                debug!(%session_id, closes, "the server confirms the session expired");
                return Ok(());
            }
            SessionEnd::Closed => {
                closes += 1;
                if closes > 1 {
                    warn!(%session_id, closes, "a confirmed close left the session alive");
                }
            }
        }
    }
}

/// Expires `client`'s session on the server it is connected to, in one call: the same as
/// [`expire_session`] with that server's address and the client's id and password. Returns
/// the session id that was expired.
///
/// # Errors
/// [`Error::NotConnected`] when the client has no connection (there is no server to ask);
/// otherwise as [`expire_session`].
pub async fn expire_client(client: &Client) -> Result<SessionId> {
    let server = client.connected_server().ok_or(Error::NotConnected)?;
    let session_id = client.session_id();
    expire_session(&server.to_string(), session_id, &client.session_password()).await?;
    Ok(session_id)
}

/// Expires the session `warden` runs on now, on the server it is connected to and with the
/// warden's own TLS settings, in one call. Returns once the server has confirmed the
/// expiry, with the session id that was expired; the warden then reports `Lost` and builds a
/// new session as it would after a real expiry.
///
/// # Errors
/// [`Error::NotConnected`] while the warden has no connected session; otherwise as
/// [`expire_session_with`].
pub async fn expire_warden(warden: &Warden) -> Result<SessionId> {
    let client = warden.client().ok_or(Error::NotConnected)?;
    let server = client.connected_server().ok_or(Error::NotConnected)?;
    let session_id = client.session_id();
    // TLS as the warden has it, but no SASL: the close goes out in the same write as the
    // handshake, so the warden's own client cannot re-attach in between (a SASL exchange
    // first would leave it that gap; see `ClientBuilder::close_session`).
    #[allow(unused_mut)]
    let mut builder = ClientBuilder::new(server.to_string());
    #[cfg(feature = "tls")]
    if let Some(tls) = &warden.inner.tls {
        builder = builder.tls(tls.clone());
    }
    expire_session_with(&builder, session_id, &client.session_password()).await?;
    Ok(session_id)
}
