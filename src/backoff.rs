//! The one growing-pause schedule every loop that waits before trying again uses: the session's
//! rounds of connection attempts, the read-write probe, the warden rebuilding a session, the
//! guaranteed delete, watch feeds and the recipes' background loops.
//!
//! The doubling itself comes from the `backoff` crate (the same crate as
//! [`ExponentialBackoffRetry`](crate::warden::retry::ExponentialBackoffRetry)); the jitter is ours,
//! drawn from `fastrand`, so a test or a simulation that seeds `fastrand` gets the same pauses
//! every run.

use std::time::Duration;

use backoff::backoff::Backoff as _;

/// A pause that starts at `min`, doubles after every use up to `max`, and starts over on
/// [`reset`](Backoff::reset).
///
/// With jitter (the default) each pause is drawn between half and all of the current step, so
/// many clients that lost the same server do not all come back at the same instant. With
/// [`patience`](Backoff::patience), the steps go on doubling past `max` once that many pauses
/// were taken in a row: quick retries through a short outage, wide ones (which spread many
/// clients thinly) through a long one.
///
/// ```
/// use std::time::Duration;
/// use zkwarden::Backoff;
///
/// let mut pauses = Backoff::new(Duration::from_millis(100), Duration::from_millis(300))
///     .without_jitter();
/// assert_eq!(pauses.next_pause(), Duration::from_millis(100));
/// assert_eq!(pauses.next_pause(), Duration::from_millis(200));
/// assert_eq!(pauses.next_pause(), Duration::from_millis(300));
/// assert_eq!(pauses.next_pause(), Duration::from_millis(300));
/// pauses.reset();
/// assert_eq!(pauses.next_pause(), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    steps: backoff::ExponentialBackoff,
    jitter: bool,
    /// The cap of the first pauses.
    max: Duration,
    /// After this many pauses in a row, the cap becomes `later_max`.
    patience: u32,
    later_max: Duration,
    /// Pauses taken since the last reset.
    taken: u32,
}

impl Backoff {
    /// A schedule from `min` doubling up to `max` (`min` when `max` is smaller), with jitter.
    #[must_use]
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let steps = backoff::ExponentialBackoff {
            current_interval: min,
            initial_interval: min,
            // The crate's own jitter would draw from a generator nobody can seed.
            randomization_factor: 0.0,
            multiplier: 2.0,
            max_interval: max.max(min),
            max_elapsed_time: None,
            ..backoff::ExponentialBackoff::default()
        };
        Backoff {
            steps,
            jitter: true,
            max: max.max(min),
            patience: u32::MAX,
            later_max: max.max(min),
            taken: 0,
        }
    }

    /// The same schedule whose steps, after `pauses` pauses in a row, go on doubling up to
    /// `later_max` (not below the first cap).
    ///
    /// ```
    /// use std::time::Duration;
    /// use zkwarden::Backoff;
    ///
    /// let ms = Duration::from_millis;
    /// let mut pauses = Backoff::new(ms(100), ms(200)).patience(3, ms(700)).without_jitter();
    /// let seen: Vec<_> = (0..6).map(|_| pauses.next_pause()).collect();
    /// assert_eq!(seen, [ms(100), ms(200), ms(200), ms(400), ms(700), ms(700)]);
    /// ```
    #[must_use]
    pub fn patience(mut self, pauses: u32, later_max: Duration) -> Backoff {
        self.patience = pauses;
        self.later_max = later_max.max(self.max);
        self
    }

    /// The same schedule with every pause exactly its step: for loops whose timing a user or
    /// a test should be able to predict.
    #[must_use]
    pub fn without_jitter(mut self) -> Backoff {
        self.jitter = false;
        self
    }

    /// The pause to take now; the next one will be twice as long, up to the maximum.
    pub fn next_pause(&mut self) -> Duration {
        if self.taken == self.patience && self.later_max > self.max {
            self.steps.max_interval = self.later_max;
            // A step held at the first cap goes on doubling from here.
            if self.steps.current_interval >= self.max {
                self.steps.current_interval = (self.max * 2).min(self.later_max);
            }
        }
        self.taken = self.taken.saturating_add(1);
        let step = self.steps.next_backoff().unwrap_or(self.steps.max_interval);
        if self.jitter { jittered(step) } else { step }
    }

    /// Starts over from the shortest pause (after a success).
    pub fn reset(&mut self) {
        self.taken = 0;
        self.steps.max_interval = self.max;
        self.steps.reset();
    }
}

/// A pause between half and all of `step`.
fn jittered(step: Duration) -> Duration {
    let micros = u64::try_from(step.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(micros / 2 + fastrand::u64(0..=micros / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_and_starts_over() {
        let mut b = Backoff::new(10 * MS, 45 * MS).without_jitter();
        let seen: Vec<_> = (0..5).map(|_| b.next_pause()).collect();
        assert_eq!(seen, [10 * MS, 20 * MS, 40 * MS, 45 * MS, 45 * MS]);
        b.reset();
        assert_eq!(b.next_pause(), 10 * MS);
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_step() {
        let mut b = Backoff::new(100 * MS, 400 * MS);
        for step in [100, 200, 400, 400] {
            let pause = b.next_pause();
            assert!(
                pause >= step * MS / 2 && pause <= step * MS,
                "{pause:?} for step {step} ms"
            );
        }
    }

    #[test]
    fn patience_raises_the_cap_until_a_reset() {
        let mut b = Backoff::new(10 * MS, 20 * MS)
            .patience(2, 100 * MS)
            .without_jitter();
        let seen: Vec<_> = (0..6).map(|_| b.next_pause()).collect();
        assert_eq!(
            seen,
            [10 * MS, 20 * MS, 40 * MS, 80 * MS, 100 * MS, 100 * MS]
        );
        b.reset();
        let seen: Vec<_> = (0..3).map(|_| b.next_pause()).collect();
        assert_eq!(seen, [10 * MS, 20 * MS, 40 * MS]);
        // A later cap below the first is the first.
        let mut b = Backoff::new(10 * MS, 20 * MS)
            .patience(1, MS)
            .without_jitter();
        let seen: Vec<_> = (0..3).map(|_| b.next_pause()).collect();
        assert_eq!(seen, [10 * MS, 20 * MS, 20 * MS]);
    }

    #[test]
    fn a_cap_below_the_start_is_the_start() {
        let mut b = Backoff::new(50 * MS, 10 * MS).without_jitter();
        assert_eq!(b.next_pause(), 50 * MS);
        assert_eq!(b.next_pause(), 50 * MS);
    }

    #[test]
    fn seeded_jitter_repeats() {
        let draw = || {
            fastrand::seed(7);
            let mut b = Backoff::new(100 * MS, 10_000 * MS);
            (0..6).map(|_| b.next_pause()).collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
    }
}
