//! The [`FaultProxy`] handle and its accept loop.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tracing::debug;

use super::conn;
use super::state::{Live, Mode, ProxyStats, Settings, Shared};

/// Pause after a failed `accept` (say, out of file descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(20);

/// A TCP proxy on `127.0.0.1` between clients and one server, with switches for network
/// faults.
///
/// Point a client at [`connect_string`](Self::connect_string) instead of the server; every
/// connection it opens is relayed to the [`upstream`](Self::upstream) address on a
/// connection of its own. The test then changes how the relay behaves. Every switch takes
/// effect at once on the connections already open and on those opened later, and stays
/// until changed:
///
/// | switch | bytes to the server | bytes to the client | sockets |
/// |---|---|---|---|
/// | [`pass_through`](Self::pass_through) | forwarded | forwarded | open |
/// | [`set_latency`](Self::set_latency) | each chunk delayed | each chunk delayed | open |
/// | [`blackhole`](Self::blackhole) | **held** | **held** | open, silent |
/// | [`drop_replies`](Self::drop_replies) | forwarded | **discarded** | open |
/// | [`reset_all`](Self::reset_all) | - | - | all closed now, with a reset |
/// | [`refuse_new`](Self::refuse_new) | - | - | new ones reset on accept |
///
/// The proxy always reads what arrives on either side, whatever the faults: a stalled
/// client or server never sees its writes back up (up to 16 MiB held per direction per
/// connection; past that, reading pauses).
///
/// Several servers can each sit behind a proxy of their own, for ensemble tests:
/// [`start_many`](Self::start_many) and [`connect_string_of`].
///
/// Dropping the proxy stops accepting and closes every connection it relays. The proxy runs
/// on the tokio runtime it was started on and needs that runtime's `net` and `time`
/// drivers.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use zkwarden::testing::{FaultProxy, ZkServer};
/// use zkwarden::{Client, SessionState};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let server = ZkServer::start()?; // blocking: prefer spawn_blocking in real tests
/// let proxy = FaultProxy::start(server.addr()).await?;
/// let client = Client::builder(proxy.connect_string())
///     .session_timeout(Duration::from_secs(4))
///     .connect()
///     .await?;
/// let session = client.session_id();
///
/// // A partition: the connection stays open but goes quiet, and the client gives up on it
/// // after its read timeout (two thirds of the session timeout).
/// proxy.blackhole();
/// let mut states = client.state();
/// while states.borrow_and_update().state == SessionState::Connected {
///     states.changed().await?;
/// }
///
/// // The network heals before the session expires: the client resumes the same session.
/// proxy.pass_through();
/// client.wait_connected().await?;
/// assert_eq!(client.session_id(), session);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_loop: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free `127.0.0.1` port and relays every connection to `upstream`.
    ///
    /// The upstream connection is opened when a client connects; if the upstream refuses it,
    /// the client's connection is reset at once.
    ///
    /// # Errors
    ///
    /// The I/O error of binding the listening socket.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (it spawns its accept loop on the current one).
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        FaultProxy::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), upstream).await
    }

    /// As [`start`](Self::start), listening on `listen` instead of a free loopback port (port
    /// 0 picks a free one): for a proxy run on its own, such as `zkwarden chaos proxy`.
    ///
    /// # Errors
    ///
    /// The I/O error of binding the listening socket.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub async fn start_on(listen: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(upstream));
        let accept_loop = tokio::spawn(accept_loop(listener, shared.clone()));
        debug!(%addr, %upstream, "fault proxy listening");
        Ok(FaultProxy {
            addr,
            shared,
            accept_loop,
        })
    }

    /// One proxy per address, in order: for instance one per member of an ensemble
    /// (`ZkEnsemble::addr(i)`). Hand [`connect_string_of`] the result for a client.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start); the proxies already started are dropped.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub async fn start_many(upstreams: &[SocketAddr]) -> io::Result<Vec<FaultProxy>> {
        let mut proxies = Vec::with_capacity(upstreams.len());
        for &upstream in upstreams {
            proxies.push(FaultProxy::start(upstream).await?);
        }
        Ok(proxies)
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:PORT"` of [`addr`](Self::addr), ready for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// The server behind the proxy.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Back to a healthy network: forwards both ways without delay and accepts new
    /// connections. Clears every other switch (latency, blackhole, dropped replies, refusal).
    ///
    /// Bytes held by a blackhole are released, in order. A connection that lost replies to
    /// [`drop_replies`](Self::drop_replies) is closed with a reset instead, since its reply
    /// stream broke off mid-frame and cannot be resumed.
    pub fn pass_through(&self) {
        self.update(|s| {
            *s = Settings {
                epoch: s.epoch,
                ..Settings::default()
            }
        });
    }

    /// Delays every chunk of bytes, both ways, until `latency` after the proxy read it (order
    /// is kept). Applies to bytes already waiting too. Combines with the other switches;
    /// `Duration::ZERO` removes the delay.
    pub fn set_latency(&self, latency: Duration) {
        self.update(|s| s.latency = latency);
    }

    /// A partition: forwards nothing either way, but keeps every socket open and keeps
    /// reading, **holding** the bytes. Neither side sees an error, only silence; new
    /// connections are accepted and are just as silent.
    ///
    /// No byte is lost: [`pass_through`](Self::pass_through) (or
    /// [`drop_replies`](Self::drop_replies) for the requests) delivers what was held, in
    /// order, including a close that happened meanwhile. So a request made during a short
    /// blackhole completes afterwards; a longer one makes the client drop the connection on
    /// its read timeout, and the server sees that connection close only once released.
    pub fn blackhole(&self) {
        self.update(|s| s.mode = Mode::Blackhole);
    }

    /// Forwards requests to the server but **discards** every byte it sends back: a write
    /// lands, and its reply never arrives (nor pings' replies, nor watch events). The client
    /// sees silence and drops the connection after its read timeout. A server's close is
    /// still passed on.
    ///
    /// A connection that lost reply bytes is closed with a reset as soon as the proxy leaves
    /// this mode (by any switch but `drop_replies` itself), since the client could not make
    /// sense of a stream resuming mid-frame.
    pub fn drop_replies(&self) {
        self.update(|s| s.mode = Mode::DropReplies);
    }

    /// Closes every connection open now, both its sockets, with a reset (the client fails
    /// with "connection reset" at once; bytes still held are lost). New connections are
    /// accepted as the other switches say.
    pub fn reset_all(&self) {
        self.update(|s| s.epoch = s.epoch.wrapping_add(1));
    }

    /// While `true`, each new client connection is accepted and at once closed with a reset,
    /// so a connect attempt fails fast, much like "connection refused". Open connections are
    /// not touched (combine with [`reset_all`](Self::reset_all) to cut them too).
    pub fn refuse_new(&self, refuse: bool) {
        self.update(|s| s.refuse_new = refuse);
    }

    /// How many client connections are being relayed now.
    pub fn connection_count(&self) -> usize {
        self.shared.counters.live()
    }

    /// Bytes and connections handled so far.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    fn update(&self, change: impl FnOnce(&mut Settings)) {
        self.shared.settings.send_modify(change);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks; aborting it aborts them all, which
        // drops (closes) every socket.
        self.accept_loop.abort();
    }
}

/// Every proxy's `127.0.0.1:PORT`, comma separated, in order: a connect string for a client
/// of the servers behind them.
pub fn connect_string_of(proxies: &[FaultProxy]) -> String {
    let hosts: Vec<String> = proxies.iter().map(FaultProxy::connect_string).collect();
    hosts.join(",")
}

/// Accepts clients until aborted; owns every connection's task.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let settings = *shared.settings.borrow();
                    if settings.refuse_new {
                        debug!(%peer, "refusing a new connection");
                        shared.counters.refused();
                        conn::refuse(client);
                    } else {
                        let live = Live::new(shared.clone());
                        connections.spawn(conn::run(client, settings.epoch, shared.clone(), live));
                    }
                }
                Err(e) => {
                    debug!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
