//! What the test switches (the fault settings) and what it reads back (the counters).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// What happens to bytes, apart from the latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Forward both ways.
    PassThrough,
    /// Forward nothing, hold everything.
    Blackhole,
    /// Forward requests, discard replies.
    DropReplies,
}

/// The fault settings. They live in a watch channel, so every connection, old or new, sees
/// a change the moment it is made.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub mode: Mode,
    /// Added to the time each chunk was read before it is forwarded.
    pub latency: Duration,
    /// Close new connections as soon as they are accepted.
    pub refuse_new: bool,
    /// Bumped by every reset; a connection accepted under an older epoch closes.
    pub epoch: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::PassThrough,
            latency: Duration::ZERO,
            refuse_new: false,
            epoch: 0,
        }
    }
}

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// Client to server: requests.
    ToServer,
    /// Server to client: replies and notifications.
    ToClient,
}

/// What to do with a chunk of data that is ready to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Forward,
    Hold,
    Discard,
}

impl Settings {
    pub(super) fn verdict(&self, dir: Direction) -> Verdict {
        match (self.mode, dir) {
            (Mode::PassThrough, _) | (Mode::DropReplies, Direction::ToServer) => Verdict::Forward,
            (Mode::Blackhole, _) => Verdict::Hold,
            (Mode::DropReplies, Direction::ToClient) => Verdict::Discard,
        }
    }
}

/// What one proxy's accept loop and connections share.
#[derive(Debug)]
pub(super) struct Shared {
    pub upstream: SocketAddr,
    pub settings: watch::Sender<Settings>,
    pub counters: Counters,
}

impl Shared {
    pub(super) fn new(upstream: SocketAddr) -> Shared {
        Shared {
            upstream,
            settings: watch::Sender::new(Settings::default()),
            counters: Counters::default(),
        }
    }
}

/// Running totals, updated with relaxed atomics (they are statistics, not synchronisation).
#[derive(Debug, Default)]
pub(super) struct Counters {
    live: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    to_server: AtomicU64,
    to_client: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    pub(super) fn forwarded(&self, dir: Direction, bytes: usize) {
        let counter = match dir {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        };
        counter.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn dropped(&self, bytes: usize) {
        self.dropped.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    pub(super) fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            bytes_to_server: self.to_server.load(Ordering::Relaxed),
            bytes_to_client: self.to_client.load(Ordering::Relaxed),
            bytes_dropped: self.dropped.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// Counts one accepted connection as live for as long as it is held. Dropping the connection's
/// task, however it ends (including by abort), drops this too.
#[derive(Debug)]
pub(super) struct Live(Arc<Shared>);

impl Live {
    pub(super) fn new(shared: Arc<Shared>) -> Live {
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        shared.counters.live.fetch_add(1, Ordering::Relaxed);
        Live(shared)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.counters.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a [`FaultProxy`](super::FaultProxy) has done so far, from
/// [`FaultProxy::stats`](super::FaultProxy::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Bytes written to the server (requests), over all connections.
    pub bytes_to_server: u64,
    /// Bytes written to clients (replies and notifications), over all connections.
    pub bytes_to_client: u64,
    /// Reply bytes discarded by [`drop_replies`](super::FaultProxy::drop_replies).
    pub bytes_dropped: u64,
    /// Client connections accepted and proxied.
    pub accepted: u64,
    /// Client connections closed at once because of
    /// [`refuse_new`](super::FaultProxy::refuse_new).
    pub refused: u64,
}
