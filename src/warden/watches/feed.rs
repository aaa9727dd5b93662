//! What the three kinds of resilient watch share: the stream handed to the user, the task
//! that feeds it, the pause after failures, and finding which generation a session is.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, warn};

use crate::backoff::Backoff;
use crate::client::{Client, SessionId, SessionStatus};
use crate::error::{Error, Result};
use crate::warden::handle::{Inner, Warden};
use crate::warden::metrics::Metrics;
use crate::warden::retry_loop::OpClass;

/// How many events a stream holds for a consumer that is not reading. When it is full the
/// watch's task waits; data and children watches then report the newer state once there is
/// room, since each of their events carries the state in full.
const BUFFER: usize = 128;

/// The first pause after a failed read, doubled after each further failure up to
/// [`PAUSE_MAX`].
const PAUSE_FIRST: Duration = Duration::from_millis(100);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// The events of one resilient watch, as a [`Stream`](futures_core::Stream) and through
/// [`WatchStream::next`].
///
/// The stream lasts as long as the warden: it ends (`None`) once the warden is closed (or its
/// last handle dropped), or at once if the watch could never be set (an invalid path, or no
/// tokio runtime to run it on). Dropping the stream removes the watch, on the server too.
///
/// Events wait in a bounded buffer: a consumer that stops reading delays only this watch.
#[must_use = "a resilient watch is removed when its stream is dropped"]
pub struct WatchStream<E> {
    rx: mpsc::Receiver<E>,
    path: String,
    _live: Live,
}

impl<E> WatchStream<E> {
    /// The next event, or `None` once the warden has closed.
    pub async fn next(&mut self) -> Option<E> {
        self.rx.recv().await
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl<E> futures_core::Stream for WatchStream<E> {
    type Item = E;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<E>> {
        self.rx.poll_recv(cx)
    }
}

impl<E> fmt::Debug for WatchStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("path", &self.path)
            .field("buffered", &self.rx.len())
            .finish_non_exhaustive()
    }
}

/// Counts a resilient watch in the warden's metrics for as long as its stream exists.
struct Live {
    inner: Arc<Inner>,
}

impl Live {
    fn new(inner: &Arc<Inner>) -> Live {
        inner.metrics.live_watch(1);
        Live {
            inner: inner.clone(),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.inner.metrics.live_watch(-1);
    }
}

/// The sending side of a watch's stream, held by its task.
pub(super) struct Feed<E> {
    tx: mpsc::Sender<E>,
}

impl<E> Feed<E> {
    /// Hands `event` to the consumer, waiting while the buffer is full. `false` when the
    /// stream was dropped.
    pub(super) async fn send(&self, event: E) -> bool {
        let delivered = self.tx.send(event).await.is_ok();
        if delivered {
            Metrics::watch_event();
        }
        delivered
    }
}

/// Starts the task `body` for a watch of `kind` on `path` and returns its stream.
///
/// The task runs on a detached warden (it does not keep the warden open) and stops when the
/// stream is dropped, when the warden closes, or when `body` returns; whatever watch handles
/// it holds are dropped with it.
pub(super) fn start<E, F, Fut>(
    warden: &Warden,
    kind: &'static str,
    path: &str,
    body: F,
) -> WatchStream<E>
where
    E: Send + 'static,
    F: FnOnce(Warden, String, Feed<E>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(BUFFER);
    let stream = WatchStream {
        rx,
        path: path.to_owned(),
        _live: Live::new(&warden.inner),
    };
    if let Err(error) = crate::client::path::validate_path(path, false) {
        warn!(kind, path, %error, "resilient watch not started");
        return stream;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        warn!(kind, path, "resilient watch not started: no tokio runtime");
        return stream;
    };
    let warden = warden.detached();
    let shutdown = warden.inner.shutdown.subscribe();
    let closed = tx.clone();
    let task = body(warden, path.to_owned(), Feed { tx });
    let span = tracing::debug_span!("resilient_watch", kind, path);
    runtime.spawn(
        async move {
            tokio::select! {
                biased;
                () = task => {}
                () = closed.closed() => debug!("stream dropped; removing the watch"),
                () = warden_closed(shutdown) => debug!("warden closed; ending the stream"),
            }
        }
        .instrument(span),
    );
    stream
}

/// Resolves once the warden is closed.
async fn warden_closed(mut shutdown: watch::Receiver<bool>) {
    // An error means the warden is gone altogether, which counts as closed.
    let _ = shutdown.wait_for(|closed| *closed).await;
}

/// Bounded, growing pauses between failed attempts, so that a watch that cannot be read (no
/// permission, a server that refuses) retries slowly instead of spinning. Jittered, so the
/// watches of many clients do not come back in step.
pub(super) struct Pause {
    schedule: Backoff,
}

impl Pause {
    pub(super) fn new() -> Pause {
        Pause {
            schedule: Backoff::new(PAUSE_FIRST, PAUSE_MAX),
        }
    }

    /// Back to the shortest pause (after a success).
    pub(super) fn reset(&mut self) {
        self.schedule.reset();
    }

    /// Decides what to do after `error`: `false` when the watch should end (the warden
    /// closed, or the request can never succeed); otherwise waits the next pause and returns
    /// `true`.
    pub(super) async fn after(&mut self, warden: &Warden, error: &Error) -> bool {
        if warden.is_closed() {
            return false;
        }
        if error.is_invalid_request() {
            warn!(%error, "resilient watch cannot be set; ending its stream");
            return false;
        }
        let pause = self.wait();
        warn!(%error, ?pause, "resilient watch could not read; trying again");
        tokio::time::sleep(pause).await;
        true
    }

    /// The next pause, growing the one after it.
    pub(super) fn wait(&mut self) -> Duration {
        self.schedule.next_pause()
    }
}

impl Warden {
    /// Runs `read` under the retry policy and reports which session answered it, so the
    /// caller can tell a new session (and the watch it left belongs to that session).
    pub(super) async fn read_on_session<T, F, Fut>(
        &self,
        op: &'static str,
        path: &str,
        mut read: F,
    ) -> Result<(SessionId, T)>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.run(OpClass::Idempotent, op, path, |client| {
            let session = client.session_id();
            let attempt = read(client);
            async move { attempt.await.map(|value| (session, value)) }
        })
        .await
    }

    /// The generation of `session`, a session this warden has used.
    ///
    /// The warden installs a new session's client a moment before it publishes the session's
    /// id and generation, so a read can run on a session whose generation is not out yet:
    /// wait for it (briefly). If `session` has already been replaced, the current generation
    /// is the best answer; the watch that session left then ends and a further resync
    /// follows.
    pub(super) async fn generation_of(&self, session: SessionId) -> u64 {
        let mut slot = self.inner.slot.subscribe();
        let waited = tokio::time::timeout(self.inner.config.connection_timeout, async {
            loop {
                {
                    let now = slot.borrow_and_update();
                    let installed = now.client.as_ref().map(Client::session_id);
                    if now.session_id == session || installed != Some(session) {
                        return now.generation;
                    }
                }
                if slot.changed().await.is_err() {
                    return self.generation();
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| self.generation())
    }
}

/// What became of the connection a watch was listed on.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reconnection {
    /// Connected again after more than the given number of connections: notifications may
    /// have been missed in between, so the watch lists again.
    Reconnected,
    /// The session's client is gone (its watches end with it).
    ClientGone,
}

/// Waits on `status` until the session connects again after `connections` connections, or
/// its client goes away. Cancel-safe: status changes it consumed are only those that are
/// neither.
pub(super) async fn reconnection(
    status: &mut watch::Receiver<SessionStatus>,
    connections: u64,
) -> Reconnection {
    loop {
        if status.changed().await.is_err() {
            return Reconnection::ClientGone;
        }
        let now = *status.borrow_and_update();
        if now.state.is_connected() && now.connections > connections {
            debug!("reconnected; listing the subtree again");
            return Reconnection::Reconnected;
        }
    }
}
