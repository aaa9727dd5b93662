//! Expiring a session the way a real outage does: on the server.

use std::time::Duration;

use crate::client::{ClientBuilder, SessionId, SessionPassword};
use crate::error::{Error, Result};

/// How many times to try before giving up: the session's own client reconnects the moment
/// the server drops it for ours, and can win the race for the session.
const ATTEMPTS: usize = 20;

/// Ends session `session_id` on the server behind `connect_string`: opens a second connection
/// that resumes the session with its id and password, then closes it. The server drops the
/// session's ephemeral nodes and closes its other connection, so the original client finds
/// out exactly as it would after a real expiry.
///
/// Returns once the server confirms the session is gone (a further attempt to resume it is
/// refused as expired).
///
/// # Errors
/// `ConnectFailed` if no server answers within ten seconds; `Timeout` if the session could not
/// be ended after repeated attempts.
pub async fn expire_session(
    connect_string: &str,
    session_id: SessionId,
    password: &SessionPassword,
) -> Result<()> {
    for _ in 0..ATTEMPTS {
        let hijacker = ClientBuilder::new(connect_string)
            .resume_session(session_id, password.clone())
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await;
        match hijacker {
            Ok(hijacker) => {
                // The close can be lost if the owner took the session back first; the next
                // round checks.
                let _ = hijacker.close().await;
            }
            Err(Error::SessionExpired) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Timeout)
}
