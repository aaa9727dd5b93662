//! Following the ensemble: the warden watches `/zookeeper/config` and keeps its host list
//! equal to the members' client addresses, so that sessions leave removed members, spread
//! onto added ones, and new sessions are built on the current membership.
//!
//! One task per warden, holding at most one watch: it reads the configuration with a watch,
//! applies it, and waits for that watch to fire (or for the session to be replaced, or the
//! warden to close) before reading again. A watch that fired is gone on the server, and
//! one on a replaced session went with it, so nothing piles up however often the
//! configuration changes. Servers without a dynamic configuration naming client addresses
//! (standalone, a static ensemble, before 3.5) are read once, without a watch, and then
//! left alone: there is nothing to follow and no watch is left on them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info};

use super::handle::{Inner, Slot};
use crate::backoff::Backoff;
use crate::client::Client;
use crate::client::dynamic_config::client_hosts;
use crate::error::Error;

/// Pause after a failed read of the configuration: from here, doubling to the cap.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Whether this warden follows the ensemble: asked to, and not over TLS (the configuration
/// names the members' plain client ports only).
pub(crate) fn should_follow(inner: &Inner) -> bool {
    #[cfg(feature = "tls")]
    if inner.tls.is_some() {
        return false;
    }
    inner.config.follow_ensemble
}

/// Runs until the warden closes.
pub(crate) async fn follow(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut slot = inner.slot.subscribe();
    let mut pause = Backoff::new(RETRY_PAUSE, RETRY_PAUSE_MAX);
    let mut dynamic = false;
    loop {
        let Some((client, generation)) = connected(&mut slot, &mut shutdown).await else {
            return;
        };
        if !dynamic {
            match client.get_config().await {
                Ok((config, _)) if client_hosts(&config).is_empty() => {
                    debug!(
                        "the servers name no client addresses in their configuration; not following"
                    );
                    return;
                }
                Ok(_) => dynamic = true,
                Err(Error::NoNode) => return,
                Err(e) => {
                    debug!(error = %e, "reading the ensemble's configuration failed");
                    tokio::select! {
                        biased;
                        () = tokio::time::sleep(pause.next_pause()) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            }
        }
        match client.get_config_and_watch().await {
            Ok((config, _, watcher)) => {
                pause.reset();
                apply(&inner, &client, &config);
                tokio::select! {
                    biased;
                    // Fired, or failed because the session ended: read again either way.
                    _ = watcher => {}
                    () = replaced(&mut slot, generation) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                debug!(error = %e, "reading the ensemble's configuration failed");
                tokio::select! {
                    biased;
                    () = tokio::time::sleep(pause.next_pause()) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Makes the members of `config` the host list of `client` and of the sessions the warden
/// builds later. A configuration naming no client address (a server without dynamic
/// configuration) changes nothing.
fn apply(inner: &Inner, client: &Client, config: &[u8]) {
    let hosts = client_hosts(config);
    if hosts.is_empty() {
        return;
    }
    if let Ok(mut followed) = inner.followed_hosts.lock() {
        *followed = Some(hosts.clone());
    }
    if client.hosts() != hosts {
        let shown: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        info!(hosts = %shown.join(","), "following the ensemble's membership");
        client.set_hosts(hosts);
    }
}

/// Waits for a connected session; `None` once the warden closes.
async fn connected(
    slot: &mut watch::Receiver<Slot>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(Client, u64)> {
    loop {
        if *shutdown.borrow_and_update() {
            return None;
        }
        {
            let current = slot.borrow_and_update();
            if let Some(client) = &current.client {
                if client.session_state().is_connected() {
                    return Some((client.clone(), current.generation));
                }
            }
        }
        tokio::select! {
            biased;
            changed = slot.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
            _ = shutdown.changed() => {}
        }
    }
}

/// Completes once the warden's session is no longer the one of `generation`.
async fn replaced(slot: &mut watch::Receiver<Slot>, generation: u64) {
    loop {
        {
            let current = slot.borrow_and_update();
            if current.generation != generation || current.client.is_none() {
                return;
            }
        }
        if slot.changed().await.is_err() {
            // The warden is gone: nothing more to follow; the shutdown branch ends the task.
            std::future::pending::<()>().await;
        }
    }
}
