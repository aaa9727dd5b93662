//! Expiring a session the way a real outage does: on the server.

use std::time::Duration;

use crate::client::{ClientBuilder, SessionId, SessionPassword, close_session};
use crate::error::Result;

/// Ends session `session_id` on the server behind `connect_string`: a second connection
/// resumes the session with its id and password and closes it in the same write. The server
/// drops the session's ephemeral nodes and its other connection, so the original client
/// finds out exactly as it would after a real expiry (its next handshake is refused as
/// expired).
///
/// Succeeds too when the session had already expired.
///
/// # Errors
/// `InvalidConnectString`; `ConnectFailed` if no server answers within ten seconds.
pub async fn expire_session(
    connect_string: &str,
    session_id: SessionId,
    password: &SessionPassword,
) -> Result<()> {
    close_session(
        connect_string,
        session_id,
        password,
        Duration::from_secs(10),
    )
    .await?;
    Ok(())
}

/// As [`expire_session`], connecting with `builder`'s settings (its connect string, and TLS
/// when it is set up for it) for the closing connection.
///
/// # Errors
/// `InvalidConnectString`, `InvalidArgument` for bad settings; `ConnectFailed` if no server
/// answers within ten seconds.
pub async fn expire_session_with(
    builder: &ClientBuilder,
    session_id: SessionId,
    password: &SessionPassword,
) -> Result<()> {
    builder
        .close_session(session_id, password, Duration::from_secs(10))
        .await?;
    Ok(())
}
