//! The connection state every recipe follows: an ordered, lossless stream of
//! [`ConnectionEvent`]s, each naming the session and its generation.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::client::SessionId;

/// What the warden's connection is doing, in Curator's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// The first session is connected.
    Connected,
    /// The connection was lost; the session may still be alive. Anything that depends on the
    /// session (a lock, a leadership) must be treated as doubtful from now on.
    Suspended,
    /// Connected again: to the same session (its ephemerals and watches intact), or to a new
    /// session after `Lost` (the generation tells which).
    Reconnected,
    /// The session is gone (expired on the server, or presumed expired after hearing from no
    /// server for the whole session timeout). Its ephemeral nodes are gone or going.
    Lost,
    /// Connected to a read-only server: reads work, writes fail with `NotReadOnly`.
    ReadOnly,
    /// Building a new session failed because the servers refused the credentials (a rotated
    /// password, a revoked user). Follows `Lost`. The warden does not try again on its own:
    /// calls fail with [`Error::AuthFailed`](crate::Error::AuthFailed) until new credentials
    /// are supplied ([`Warden::set_sasl`](super::Warden::set_sasl),
    /// [`Warden::set_auth`](super::Warden::set_auth)); then it reports `Lost` again while it
    /// tries with them, and `Reconnected` with the next generation once they work.
    AuthFailed,
    /// The warden was closed. Reported before the session is closed on the server, so that
    /// a lock or a leadership that depends on the session ends before its nodes go.
    Closed,
}

/// One change of connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionEvent {
    /// The new state.
    pub state: ConnectionState,
    /// The session it concerns (for `Lost`, the session that was lost).
    pub session_id: SessionId,
    /// Which session of this warden: 1 for the first, one more for every rebuild.
    pub generation: u64,
    /// When the warden observed the change.
    pub at: Instant,
}

/// An item of a [`ConnectionEvents`] stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionUpdate {
    /// The next event, in order.
    Event(ConnectionEvent),
    /// The subscriber fell behind and `missed` events were dropped; the current state is in
    /// [`Warden::connection`](super::Warden::connection).
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// The stream of connection events from the moment of subscription, a
/// [`Stream`](futures_core::Stream) of [`ConnectionEvent`]s. Events arrive in the order they
/// happened; a subscriber that falls behind by more than the buffer misses the oldest, and
/// [`next_update`](ConnectionEvents::next_update) then reports a
/// [`ConnectionUpdate::Lagged`] instead of missing them silently. The stream ends after
/// the [`ConnectionState::Closed`] event (at once for a subscription made after it).
pub struct ConnectionEvents {
    inner: BroadcastStream<ConnectionEvent>,
    /// What is left of the stream once the warden closed.
    end: End,
}

/// How far a [`ConnectionEvents`] is from its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The warden is open: wait for events.
    Open,
    /// Subscribed after the warden closed: deliver what is buffered, then end (the `Closed`
    /// event may have been sent before the subscription).
    Draining,
    /// The `Closed` event was delivered: nothing follows.
    Ended,
}

impl std::fmt::Debug for ConnectionEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionEvents").finish_non_exhaustive()
    }
}

impl ConnectionEvents {
    /// A stream of what `rx` receives; `closed` when the warden had closed before `rx`
    /// subscribed.
    pub(crate) fn new(rx: broadcast::Receiver<ConnectionEvent>, closed: bool) -> Self {
        ConnectionEvents {
            inner: BroadcastStream::new(rx),
            end: if closed { End::Draining } else { End::Open },
        }
    }

    /// The next event, or `None` once the warden is closed (after its `Closed` event) or
    /// gone. Lag notices are skipped: a subscriber that fell behind continues with the
    /// oldest event still buffered, and [`Warden::connection`](super::Warden::connection)
    /// has the current state. Use [`next_update`](ConnectionEvents::next_update) to be told
    /// about the lag. The same as `StreamExt::next` on the stream.
    pub async fn next(&mut self) -> Option<ConnectionEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The next update: an event, or a notice that events were dropped because this
    /// subscriber fell behind. `None` when [`next`](ConnectionEvents::next) returns `None`.
    pub async fn next_update(&mut self) -> Option<ConnectionUpdate> {
        std::future::poll_fn(|cx| self.poll_update(cx)).await
    }

    fn poll_update(&mut self, cx: &mut Context<'_>) -> Poll<Option<ConnectionUpdate>> {
        if self.end == End::Ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => {
                // `Closed` is the warden's last event.
                if event.state == ConnectionState::Closed {
                    self.end = End::Ended;
                }
                Poll::Ready(Some(ConnectionUpdate::Event(event)))
            }
            Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(missed)))) => {
                Poll::Ready(Some(ConnectionUpdate::Lagged { missed }))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending if self.end == End::Draining => {
                self.end = End::Ended;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Yields [`ConnectionEvent`]s, skipping lag notices (see [`ConnectionEvents::next`]).
impl futures_core::Stream for ConnectionEvents {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
        loop {
            match std::task::ready!(self.poll_update(cx)) {
                Some(ConnectionUpdate::Event(event)) => return Poll::Ready(Some(event)),
                Some(ConnectionUpdate::Lagged { .. }) => continue,
                None => return Poll::Ready(None),
            }
        }
    }
}
