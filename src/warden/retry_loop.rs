//! Running an operation under the retry policy, with one retry budget per logical operation.
//!
//! An operation's budget is a [`RetrySchedule`] plus its start time and deadline. When an
//! operation runs inside [`Warden::retrying`], every operation within shares that one
//! budget (through a task-local), so a recipe that calls retrying operations inside its own
//! retry loop does not multiply attempts.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tracing::{Instrument, debug};

use super::handle::Warden;
use super::metrics::Counted;
use super::retry::RetrySchedule;
use super::state::ConnectionState;
use crate::client::Client;
use crate::error::{Error, Result};

tokio::task_local! {
    /// The budget of the enclosing logical operation, if any.
    static BUDGET: Arc<Budget>;
}

/// Whether an operation may be repeated after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpClass {
    /// Reads, and writes whose repetition is harmless or detectable: retried on every
    /// retryable error.
    Idempotent,
    /// Writes that could be applied twice (sequential creates, transactions): retried only
    /// when the failed attempt certainly did not reach the server.
    NonIdempotent,
}

/// The retry state of one logical operation.
pub(crate) struct Budget {
    schedule: Mutex<Box<dyn RetrySchedule>>,
    retries: Mutex<u32>,
    started: Instant,
    /// When the logical operation must be done (the handle's deadline).
    pub(super) deadline: Option<Instant>,
}

impl Budget {
    fn new(schedule: Box<dyn RetrySchedule>, deadline: Option<Instant>) -> Budget {
        Budget {
            schedule: Mutex::new(schedule),
            retries: Mutex::new(0),
            started: Instant::now(),
            deadline,
        }
    }

    /// The pause before the next retry, or `None` when the budget is spent.
    fn next_delay(&self) -> Option<std::time::Duration> {
        let mut retries = self.retries.lock().ok()?;
        let delay = self
            .schedule
            .lock()
            .ok()?
            .next_delay(*retries, self.started.elapsed())?;
        *retries += 1;
        Some(delay)
    }

    fn retries(&self) -> u32 {
        self.retries.lock().map(|r| *r).unwrap_or(0)
    }

    /// What to do after an attempt failed with `error`.
    pub(crate) fn decide(&self, error: &Error, class: OpClass) -> Decision {
        if !error.retryable_for(class) {
            return Decision::GiveUp;
        }
        let Some(delay) = self.next_delay() else {
            return Decision::GiveUp;
        };
        let wake = Instant::now() + delay;
        match self.deadline {
            Some(deadline) if wake >= deadline => Decision::Timeout,
            _ => Decision::RetryAt(wake),
        }
    }
}

/// When a call must be done: the handle's own deadline if it set one, else `default_timeout`
/// from now.
fn call_deadline(
    handle_deadline: Option<Instant>,
    default_timeout: std::time::Duration,
) -> Instant {
    handle_deadline.unwrap_or_else(|| Instant::now() + default_timeout)
}

/// The outcome of [`Budget::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Return the error.
    GiveUp,
    /// The next attempt would start after the deadline: fail with `Timeout`.
    Timeout,
    /// Sleep until then and try again.
    RetryAt(Instant),
}

impl Warden {
    /// The budget of the enclosing logical operation, or a fresh one from this handle's
    /// policy and deadline (the configured operation timeout from now when the handle set
    /// none, so that no call waits forever).
    pub(super) fn budget(&self) -> Arc<Budget> {
        if let Ok(budget) = BUDGET.try_with(Arc::clone) {
            return budget;
        }
        let policy = self.call.retry.as_ref().unwrap_or(&self.inner.policy);
        let deadline = call_deadline(self.call.deadline, self.inner.config.operation_timeout());
        Arc::new(Budget::new(policy.schedule(), Some(deadline)))
    }

    /// Runs `attempt` on a connected session, retrying by the budget.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        class: OpClass,
        op: &'static str,
        path: &str,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let timer = self.inner.metrics.op_started(op);
        let budget = self.budget();
        let span = tracing::debug_span!(
            "zk_op",
            op,
            path,
            attempt = tracing::field::Empty,
            session_id = tracing::field::Empty
        );
        let result = async move {
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                let outcome = match self.connected_client().await {
                    Ok((client, generation)) => {
                        let span = tracing::Span::current();
                        span.record("attempt", attempts);
                        span.record("session_id", tracing::field::display(client.session_id()));
                        let result = match budget.deadline {
                            Some(deadline) => tokio::time::timeout_at(deadline, attempt(client))
                                .await
                                .unwrap_or(Err(Error::Timeout)),
                            None => attempt(client).await,
                        };
                        result.map_err(|e| (e, generation))
                    }
                    Err(e) => Err((e, 0)),
                };
                let (error, generation) = match outcome {
                    Ok(value) => return Ok(value),
                    Err(failure) => failure,
                };
                self.pause_before_retry(&budget, &error, class, generation)
                    .await?;
            }
        }
        .instrument(span)
        .await;
        timer.finish(&result);
        result
    }

    /// After an attempt of `class` on session `generation` failed with `error`: waits until
    /// the next attempt may start (the policy's pause, then, after an expired session, the
    /// next session) and returns `Ok`, or returns the error to end with (`error` itself when
    /// it is not retried or the budget is spent, `Timeout` when the next attempt would start
    /// past the deadline).
    pub(super) async fn pause_before_retry(
        &self,
        budget: &Budget,
        error: &Error,
        class: OpClass,
        generation: u64,
    ) -> Result<()> {
        match budget.decide(error, class) {
            Decision::GiveUp => {
                debug!(%error, retries = budget.retries(), "not retrying");
                return Err(error.clone());
            }
            Decision::Timeout => return Err(Error::Timeout),
            Decision::RetryAt(wake) => {
                self.inner.metrics.count(Counted::Retry);
                debug!(%error, retries = budget.retries(), "retrying");
                tokio::time::sleep_until(wake).await;
            }
        }
        if error.is_retried_on_new_session() {
            self.wait_for_generation_after(generation).await;
        }
        Ok(())
    }

    /// Waits (bounded by the connection timeout) until a session newer than `generation` is
    /// in place, or until the warden stopped building one because the servers refused its
    /// credentials (the next attempt then fails with `AuthFailed` at once).
    async fn wait_for_generation_after(&self, generation: u64) {
        let mut slot = self.inner.slot.subscribe();
        let _ = tokio::time::timeout(self.inner.config.connection_timeout, async {
            loop {
                {
                    let now = slot.borrow_and_update();
                    if now.generation > generation || now.state == ConnectionState::AuthFailed {
                        return;
                    }
                }
                if slot.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Runs `body` as one logical operation with one retry budget: the operations it calls
    /// share the budget (they do not each get a fresh one), and `body` itself is run again
    /// while it fails with a retryable error and the budget allows. The whole body shares one
    /// deadline too: the handle's, else the configured operation timeout from the call.
    ///
    /// Use it for read-modify-write sequences and in recipes. `body` may run more than once,
    /// also after an attempt whose write was applied but whose reply was lost, so what it
    /// does must be safe to repeat. Here, adding a member to a list is: a repeat finds the
    /// member there and changes nothing. The versioned write makes a concurrent change
    /// (`BadVersion`) a reason to read again rather than to overwrite it.
    ///
    /// ```no_run
    /// # async fn demo(warden: zkwarden::warden::Warden) -> zkwarden::Result<()> {
    /// use zkwarden::Error;
    ///
    /// let members = warden
    ///     .retrying(|w| async move {
    ///         loop {
    ///             let (data, stat) = w.get_data("/members").await?;
    ///             let mut list = String::from_utf8(data.to_vec())
    ///                 .map_err(|_| Error::InvalidArgument("/members is not UTF-8".into()))?;
    ///             if list.split(',').any(|m| m == "worker-7") {
    ///                 return Ok(list); // already there (perhaps by an earlier attempt)
    ///             }
    ///             if !list.is_empty() {
    ///                 list.push(',');
    ///             }
    ///             list.push_str("worker-7");
    ///             match w.set_data("/members", list.as_bytes(), Some(stat.version)).await {
    ///                 Ok(_) => return Ok(list),
    ///                 Err(Error::BadVersion) => continue, // changed since the read
    ///                 Err(e) => return Err(e),
    ///             }
    ///         }
    ///     })
    ///     .await?;
    /// # let _ = members; Ok(()) }
    /// ```
    ///
    /// A counter is *not* safe to repeat this way: after a lost reply, a second attempt
    /// would read the first one's value and count it twice. Use
    /// `zkwarden_recipes::atomic::AtomicLong`, which proves which write landed, or a counter
    /// written under a lock with a fenced transaction (see
    /// [`Transaction::fenced_by`](super::Transaction::fenced_by) and the crate's
    /// `recipes/examples/service.rs`).
    ///
    /// # Errors
    /// The last error when it is not retryable or the budget is spent.
    pub async fn retrying<T, F, Fut>(&self, mut body: F) -> Result<T>
    where
        F: FnMut(Warden) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let budget = self.budget();
        BUDGET
            .scope(budget.clone(), async move {
                loop {
                    let generation = self.generation();
                    let error = match body(self.clone()).await {
                        Ok(value) => return Ok(value),
                        Err(error) => error,
                    };
                    self.pause_before_retry(&budget, &error, OpClass::Idempotent, generation)
                        .await?;
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::warden::retry::{BoundedExponentialBackoffRetry, RetryNTimes, RetryPolicy};

    /// Plays an operation that always fails with `error` against a budget, sleeping as told,
    /// and returns (attempts made, final decision, time spent) on tokio's paused clock.
    async fn play(budget: &Budget, error: Error, class: OpClass) -> (u32, Decision, Duration) {
        let start = Instant::now();
        let mut attempts = 1;
        loop {
            match budget.decide(&error, class) {
                Decision::RetryAt(wake) => {
                    tokio::time::sleep_until(wake).await;
                    attempts += 1;
                }
                other => return (attempts, other, start.elapsed()),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_timing_follows_the_policy() {
        let policy = BoundedExponentialBackoffRetry {
            base: Duration::from_millis(100),
            max_sleep: Duration::from_millis(400),
            max_retries: 4,
        };
        let budget = Budget::new(policy.schedule(), None);
        let (attempts, decision, spent) =
            play(&budget, Error::ConnectionLoss, OpClass::Idempotent).await;
        assert_eq!(attempts, 5, "one attempt plus four retries");
        assert_eq!(decision, Decision::GiveUp);
        // 100 + 200 + 400 + 400 ms of pauses, exactly, on the paused clock.
        assert_eq!(spent, Duration::from_millis(1100));
    }

    #[tokio::test(start_paused = true)]
    async fn non_retryable_errors_return_with_zero_retries() {
        let budget = Budget::new(
            RetryNTimes {
                n: 5,
                sleep: Duration::from_secs(1),
            }
            .schedule(),
            None,
        );
        for error in [
            Error::NoNode,
            Error::NodeExists,
            Error::BadVersion,
            Error::NoAuth,
            Error::NotEmpty,
        ] {
            let (attempts, decision, spent) = play(&budget, error, OpClass::Idempotent).await;
            assert_eq!(
                (attempts, decision, spent),
                (1, Decision::GiveUp, Duration::ZERO)
            );
        }
        assert_eq!(budget.retries(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn ambiguous_failures_of_non_idempotent_writes_are_not_repeated() {
        let budget = Budget::new(
            RetryNTimes {
                n: 5,
                sleep: Duration::from_millis(10),
            }
            .schedule(),
            None,
        );
        let (attempts, _, _) = play(&budget, Error::ConnectionLoss, OpClass::NonIdempotent).await;
        assert_eq!(attempts, 1);
        let (attempts, _, _) = play(&budget, Error::NotConnected, OpClass::NonIdempotent).await;
        assert_eq!(
            attempts, 6,
            "a request that was never sent is safe to repeat"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_shared_budget_is_spent_once() {
        let budget = Budget::new(
            RetryNTimes {
                n: 3,
                sleep: Duration::from_millis(10),
            }
            .schedule(),
            None,
        );
        // Two inner operations of one logical operation draw from the same budget.
        let (first, _, _) = play(&budget, Error::ConnectionLoss, OpClass::Idempotent).await;
        let (second, decision, _) = play(&budget, Error::ConnectionLoss, OpClass::Idempotent).await;
        assert_eq!((first, second, decision), (4, 1, Decision::GiveUp));
        assert_eq!(budget.retries(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_without_a_deadline_gets_the_default_one() {
        let timeout = Duration::from_secs(30);
        let forever = || {
            RetryNTimes {
                n: u32::MAX,
                sleep: Duration::from_secs(1),
            }
            .schedule()
        };
        // A policy that would retry for 136 years still ends, with Timeout, once the next
        // pause would cross the default deadline: 29 pauses of 1 s, the 30th would reach it.
        let budget = Budget::new(forever(), Some(call_deadline(None, timeout)));
        let (attempts, decision, spent) =
            play(&budget, Error::ConnectionLoss, OpClass::Idempotent).await;
        assert_eq!(
            (attempts, decision, spent),
            (30, Decision::Timeout, Duration::from_secs(29))
        );
        // The handle's own deadline wins, whether it is shorter or longer.
        for own in [Duration::from_millis(2_500), Duration::from_millis(45_500)] {
            let deadline = call_deadline(Some(Instant::now() + own), timeout);
            let budget = Budget::new(forever(), Some(deadline));
            let (_, decision, spent) =
                play(&budget, Error::ConnectionLoss, OpClass::Idempotent).await;
            assert_eq!(decision, Decision::Timeout);
            assert_eq!(spent, Duration::from_secs(own.as_secs()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_cuts_the_schedule_short() {
        let deadline = Instant::now() + Duration::from_millis(250);
        let budget = Budget::new(
            RetryNTimes {
                n: 100,
                sleep: Duration::from_millis(100),
            }
            .schedule(),
            Some(deadline),
        );
        let (attempts, decision, spent) =
            play(&budget, Error::ConnectionLoss, OpClass::Idempotent).await;
        assert_eq!((attempts, decision), (3, Decision::Timeout));
        assert_eq!(spent, Duration::from_millis(200));
    }
}
