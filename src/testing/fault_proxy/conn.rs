//! One proxied connection: the client's socket, a new socket to the upstream server, and a
//! pump each way between them.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use super::pump::{self, End};
use super::state::{Direction, Live, Settings, Shared};

/// Proxies `client` until both directions have ended, a reset is requested or a socket
/// fails. `epoch` is the reset epoch when the client was accepted; `_live` counts the
/// connection while it lasts.
pub(super) async fn run(mut client: TcpStream, epoch: u64, shared: Arc<Shared>, _live: Live) {
    let mut server = match TcpStream::connect(shared.upstream).await {
        Ok(server) => server,
        Err(e) => {
            debug!(upstream = %shared.upstream, error = %e, "upstream refused; closing the client");
            close_abruptly(&client);
            return;
        }
    };
    // ZooKeeper's frames are small and latency-bound: do not let Nagle hold them back.
    // Failing to set it only costs speed.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);

    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let requests = pump::run(Direction::ToServer, client_read, server_write, &shared);
        let replies = pump::run(Direction::ToClient, server_read, client_write, &shared);
        tokio::select! {
            both = async { tokio::try_join!(requests, replies) } => both.err(),
            end = reset_requested(shared.settings.subscribe(), epoch) => Some(end),
        }
    };
    if let Some(end) = end {
        debug!(%end, "closing a proxied connection");
        close_abruptly(&client);
        close_abruptly(&server);
    }
    // Dropping the sockets closes them: with a reset after `close_abruptly`, else normally.
}

/// Closes a client connection the moment it was accepted.
pub(super) fn refuse(client: TcpStream) {
    close_abruptly(&client);
}

/// Makes the coming close of `stream` send a reset (RST) instead of an orderly FIN, so the
/// peer fails at once with "connection reset". A zero linger never blocks the close.
fn close_abruptly(stream: &TcpStream) {
    // Without it the peer still sees the close, as an end of stream.
    let _ = stream.set_zero_linger();
}

/// Resolves once `reset_all` was called after the connection was accepted.
async fn reset_requested(mut settings: watch::Receiver<Settings>, epoch: u64) -> End {
    match settings.wait_for(|s| s.epoch != epoch).await {
        Ok(_) => End::Reset,
        Err(_) => End::ProxyGone,
    }
}
