//! [`PutSink`]: a queue's `put` as a [`Sink`](futures_sink::Sink), one put in flight at a
//! time, so a bounded queue's back-pressure reaches whoever feeds the sink.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use zkwarden::{Error, Result};

/// A put in flight.
type Put = Pin<Box<dyn Future<Output = Result<String>> + Send>>;
/// Starts the put of one input.
type Start<I> = Arc<dyn Fn(I) -> Put + Send + Sync>;

/// A queue's `put` as a [`Sink`](futures_sink::Sink): `start_send` begins a put, and the
/// sink is ready again once it has landed (after waiting for room in a bounded queue). The
/// first failed put is the error of the next `poll_ready`, `poll_flush` or `poll_close`;
/// that input was not queued, or, after `ConnectionLoss`, may have been.
pub struct PutSink<I> {
    start: Start<I>,
    in_flight: Option<Put>,
}

impl<I> fmt::Debug for PutSink<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutSink")
            .field("in_flight", &self.in_flight.is_some())
            .finish_non_exhaustive()
    }
}

impl<I> PutSink<I> {
    pub(crate) fn new(start: impl Fn(I) -> Put + Send + Sync + 'static) -> PutSink<I> {
        PutSink {
            start: Arc::new(start),
            in_flight: None,
        }
    }

    /// Drives the put in flight to its end.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let Some(put) = self.in_flight.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let done = std::task::ready!(put.as_mut().poll(cx));
        self.in_flight = None;
        Poll::Ready(done.map(|_| ()))
    }
}

impl<I> Unpin for PutSink<I> {}

impl<I> futures_sink::Sink<I> for PutSink<I> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_in_flight(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<()> {
        let this = self.get_mut();
        if this.in_flight.is_some() {
            return Err(Error::InvalidArgument(
                "start_send before poll_ready reported ready".to_owned(),
            ));
        }
        this.in_flight = Some((this.start)(item));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_in_flight(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.get_mut().poll_in_flight(cx)
    }
}
