//! Reads of many nodes as one logical operation: pipelined on the current session, and
//! retried by the warden's policy, so that a recipe reading many nodes needs neither the raw
//! client nor a retry loop of its own.

use bytes::Bytes;
use tracing::Instrument;

use super::handle::Warden;
use super::retry_loop::OpClass;
use crate::error::{Error, Result};
use crate::proto::Stat;

impl Warden {
    /// The data and stat of every node in `paths`, in the same order, read as one logical
    /// operation.
    ///
    /// The reads are pipelined: every read of a round is sent on the current session before
    /// the first reply is awaited, so a batch costs about one round trip, not one per path.
    /// Reads that fail for a reason the retry policy covers (a lost connection, a server
    /// timeout, an expired session: see [`Error::is_retryable`]) are sent again together, on
    /// the next connected session, after the policy's pause; the others keep their error.
    /// The whole batch draws on one retry budget (shared with an enclosing
    /// [`Warden::retrying`]) and ends at this handle's deadline.
    ///
    /// Each path has its own result: `NoNode`, `NoAuth` or `InvalidPath` for that path;
    /// connection errors once the retries are spent; `Timeout` past the deadline; `Closed`
    /// once the warden is closed.
    ///
    /// ```no_run
    /// # async fn demo(warden: zkwarden::Warden) {
    /// let paths = ["/config/a", "/config/b", "/config/missing"];
    /// for (path, read) in paths.iter().zip(warden.get_data_batch(&paths).await) {
    ///     match read {
    ///         Ok((data, stat)) => println!("{path}: {} bytes, version {}", data.len(), stat.version),
    ///         Err(zkwarden::Error::NoNode) => println!("{path}: missing"),
    ///         Err(e) => println!("{path}: {e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn get_data_batch<P: AsRef<str>>(&self, paths: &[P]) -> Vec<Result<(Bytes, Stat)>> {
        let mut results: Vec<Option<Result<(Bytes, Stat)>>> = paths.iter().map(|_| None).collect();
        // Each read is one operation to the metrics, timed from the batch's start.
        let timers: Vec<_> = paths
            .iter()
            .map(|_| self.inner.metrics.op_started("get_data"))
            .collect();
        let budget = self.budget();
        let span = tracing::debug_span!(
            "zk_batch",
            op = "get_data",
            count = paths.len(),
            attempt = tracing::field::Empty,
            session_id = tracing::field::Empty
        );
        async {
            // Indices of the paths still to read.
            let mut todo: Vec<usize> = (0..paths.len()).collect();
            let mut attempts = 0u32;
            while !todo.is_empty() {
                attempts += 1;
                let (failed, generation) = match self.connected_client().await {
                    Ok((client, generation)) => {
                        let span = tracing::Span::current();
                        span.record("attempt", attempts);
                        span.record("session_id", tracing::field::display(client.session_id()));
                        // Each request is sent when made: the whole round is in flight before
                        // the first reply is awaited.
                        let replies: Vec<_> = todo
                            .iter()
                            .map(|&i| client.get_data(paths[i].as_ref()))
                            .collect();
                        let mut failed = Vec::new();
                        for (&i, reply) in todo.iter().zip(replies) {
                            let read = match budget.deadline {
                                Some(deadline) => tokio::time::timeout_at(deadline, reply)
                                    .await
                                    .unwrap_or(Err(Error::Timeout)),
                                None => reply.await,
                            };
                            match read {
                                Err(error) if error.retryable_for(OpClass::Idempotent) => {
                                    failed.push((i, error));
                                }
                                done => results[i] = Some(done),
                            }
                        }
                        (failed, generation)
                    }
                    Err(error) => (todo.iter().map(|&i| (i, error.clone())).collect(), 0),
                };
                let Some((_, first)) = failed.first() else {
                    break;
                };
                // One decision per round: the round, not each of its reads, is the attempt
                // the budget counts.
                match self
                    .pause_before_retry(&budget, first, OpClass::Idempotent, generation)
                    .await
                {
                    Ok(()) => todo = failed.into_iter().map(|(i, _)| i).collect(),
                    Err(end) => {
                        for (i, error) in failed {
                            // Past the deadline every read ends with `Timeout`; otherwise each
                            // keeps the error it met.
                            results[i] = Some(Err(if end == Error::Timeout {
                                Error::Timeout
                            } else {
                                error
                            }));
                        }
                        break;
                    }
                }
            }
        }
        .instrument(span)
        .await;
        // Every index got its result: a read left without one would be a bug here, reported
        // as a typed error rather than a panic.
        results
            .into_iter()
            .zip(timers)
            .map(|(read, timer)| {
                let read = read.unwrap_or(Err(Error::NotConnected));
                timer.finish(&read);
                read
            })
            .collect()
    }
}
