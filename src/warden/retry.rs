//! Retry policies: how long to wait before trying an operation again, and when to stop.
//!
//! The set follows Apache Curator's: exponential backoff with jitter, bounded exponential,
//! n times, one time, until elapsed and forever. Each is configurable through serde as a
//! [`RetryConfig`] (`{ kind = "exponential", base = "100ms", max_retries = 10,
//! max_sleep = "30s" }`), or implement [`RetryPolicy`] yourself.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backoff::backoff::Backoff;
use serde::{Deserialize, Serialize};

/// Decides whether and when a failed operation is tried again.
///
/// A policy is shared; each logical operation asks it for a fresh [`RetrySchedule`], which
/// keeps that operation's state (such as the current backoff interval).
pub trait RetryPolicy: Send + Sync + fmt::Debug + 'static {
    /// A schedule for one logical operation.
    fn schedule(&self) -> Box<dyn RetrySchedule>;
}

/// The retry state of one logical operation.
pub trait RetrySchedule: Send {
    /// Called after an attempt failed with a retryable error. `retries` is how many retries
    /// were already made (0 after the first attempt), `elapsed` the time since the operation
    /// began. Returns the pause before the next attempt, or `None` to give up.
    fn next_delay(&mut self, retries: u32, elapsed: Duration) -> Option<Duration>;
}

/// Exponential backoff with jitter: the pause starts near `base`, grows by half again each
/// retry (randomized by ±50%), never exceeds `max_sleep`, and gives up after `max_retries`
/// retries. Built on the `backoff` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExponentialBackoffRetry {
    /// The first pause (before jitter).
    pub base: Duration,
    /// How many retries at most.
    pub max_retries: u32,
    /// The longest pause.
    pub max_sleep: Duration,
}

struct ExponentialSchedule {
    backoff: backoff::ExponentialBackoff,
    max_retries: u32,
}

impl RetryPolicy for ExponentialBackoffRetry {
    fn schedule(&self) -> Box<dyn RetrySchedule> {
        let backoff = backoff::ExponentialBackoff {
            current_interval: self.base,
            initial_interval: self.base,
            // The jitter is drawn below from `fastrand` (which a simulation seeds): the
            // crate's own would draw from a generator nobody can seed.
            randomization_factor: 0.0,
            multiplier: 1.5,
            max_interval: self.max_sleep,
            // Elapsed time is the caller's business (deadlines, UntilElapsed).
            max_elapsed_time: None,
            ..backoff::ExponentialBackoff::default()
        };
        Box::new(ExponentialSchedule {
            backoff,
            max_retries: self.max_retries,
        })
    }
}

impl RetrySchedule for ExponentialSchedule {
    fn next_delay(&mut self, retries: u32, _elapsed: Duration) -> Option<Duration> {
        if retries >= self.max_retries {
            return None;
        }
        // Half to one and a half of the step, as a randomization factor of 0.5 gives, and
        // never past the cap (a step near a huge cap must not overflow, either).
        let cap = self.backoff.max_interval;
        self.backoff.next_backoff().map(|step| {
            Duration::try_from_secs_f64(step.as_secs_f64() * (0.5 + fastrand::f64()))
                .map_or(cap, |pause| pause.min(cap))
        })
    }
}

/// Like [`ExponentialBackoffRetry`] without jitter: `base * 2^retries`, capped at `max_sleep`.
/// Predictable, for tests and for operators who want to know exactly when retries happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedExponentialBackoffRetry {
    /// The first pause.
    pub base: Duration,
    /// The longest pause.
    pub max_sleep: Duration,
    /// How many retries at most.
    pub max_retries: u32,
}

struct FnSchedule<F>(F);

impl<F: FnMut(u32, Duration) -> Option<Duration> + Send> RetrySchedule for FnSchedule<F> {
    fn next_delay(&mut self, retries: u32, elapsed: Duration) -> Option<Duration> {
        (self.0)(retries, elapsed)
    }
}

impl RetryPolicy for BoundedExponentialBackoffRetry {
    fn schedule(&self) -> Box<dyn RetrySchedule> {
        let policy = *self;
        Box::new(FnSchedule(move |retries: u32, _| {
            (retries < policy.max_retries).then(|| {
                let factor = 1u32.checked_shl(retries.min(31)).unwrap_or(u32::MAX);
                policy.base.saturating_mul(factor).min(policy.max_sleep)
            })
        }))
    }
}

/// Retries `n` times with a fixed pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryNTimes {
    /// How many retries.
    pub n: u32,
    /// The pause between attempts.
    pub sleep: Duration,
}

impl RetryPolicy for RetryNTimes {
    fn schedule(&self) -> Box<dyn RetrySchedule> {
        let policy = *self;
        Box::new(FnSchedule(move |retries: u32, _| {
            (retries < policy.n).then_some(policy.sleep)
        }))
    }
}

/// Retries once, after a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOneTime {
    /// The pause before the retry.
    pub sleep: Duration,
}

impl RetryPolicy for RetryOneTime {
    fn schedule(&self) -> Box<dyn RetrySchedule> {
        RetryNTimes {
            n: 1,
            sleep: self.sleep,
        }
        .schedule()
    }
}

/// Retries with a fixed pause until `max_elapsed` has passed since the operation began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryUntilElapsed {
    /// Give up once this much time has passed.
    pub max_elapsed: Duration,
    /// The pause between attempts.
    pub sleep: Duration,
}

impl RetryPolicy for RetryUntilElapsed {
    fn schedule(&self) -> Box<dyn RetrySchedule> {
        let policy = *self;
        Box::new(FnSchedule(move |_, elapsed: Duration| {
            (elapsed + policy.sleep <= policy.max_elapsed).then_some(policy.sleep)
        }))
    }
}

/// Retries forever with a fixed pause (bounded only by a deadline, if the call has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryForever {
    /// The pause between attempts.
    pub sleep: Duration,
}

impl RetryPolicy for RetryForever {
    fn schedule(&self) -> Box<dyn RetrySchedule> {
        let sleep = self.sleep;
        Box::new(FnSchedule(move |_, _| Some(sleep)))
    }
}

/// Never retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoRetry;

impl RetryPolicy for NoRetry {
    fn schedule(&self) -> Box<dyn RetrySchedule> {
        Box::new(FnSchedule(|_, _| None))
    }
}

/// A retry policy as configuration, for TOML, JSON or any serde format. Durations are written
/// as text: `"250ms"`, `"2s"`, `"1m 30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryConfig {
    /// [`ExponentialBackoffRetry`].
    Exponential {
        /// First pause.
        #[serde(with = "humantime_serde")]
        base: Duration,
        /// Most retries.
        max_retries: u32,
        /// Longest pause.
        #[serde(with = "humantime_serde", default = "default_max_sleep")]
        max_sleep: Duration,
    },
    /// [`BoundedExponentialBackoffRetry`].
    BoundedExponential {
        /// First pause.
        #[serde(with = "humantime_serde")]
        base: Duration,
        /// Longest pause.
        #[serde(with = "humantime_serde")]
        max_sleep: Duration,
        /// Most retries.
        max_retries: u32,
    },
    /// [`RetryNTimes`].
    NTimes {
        /// How many retries.
        n: u32,
        /// Pause between attempts.
        #[serde(with = "humantime_serde")]
        sleep: Duration,
    },
    /// [`RetryOneTime`].
    OneTime {
        /// Pause before the retry.
        #[serde(with = "humantime_serde")]
        sleep: Duration,
    },
    /// [`RetryUntilElapsed`].
    UntilElapsed {
        /// Give up after this long.
        #[serde(with = "humantime_serde")]
        max_elapsed: Duration,
        /// Pause between attempts.
        #[serde(with = "humantime_serde")]
        sleep: Duration,
    },
    /// [`RetryForever`].
    Forever {
        /// Pause between attempts.
        #[serde(with = "humantime_serde")]
        sleep: Duration,
    },
    /// [`NoRetry`].
    None,
}

fn default_max_sleep() -> Duration {
    Duration::from_secs(30)
}

impl Default for RetryConfig {
    /// Exponential from 100 ms, at most 10 retries, pauses of at most 30 s.
    fn default() -> Self {
        RetryConfig::Exponential {
            base: Duration::from_millis(100),
            max_retries: 10,
            max_sleep: default_max_sleep(),
        }
    }
}

impl RetryConfig {
    /// Checks the numbers make sense.
    ///
    /// # Errors
    /// A description of the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            RetryConfig::Exponential {
                base, max_sleep, ..
            }
            | RetryConfig::BoundedExponential {
                base, max_sleep, ..
            } => {
                if base.is_zero() {
                    return Err("retry base must be positive".into());
                }
                if max_sleep < base {
                    return Err(format!(
                        "retry max_sleep ({max_sleep:?}) is shorter than base ({base:?})"
                    ));
                }
                Ok(())
            }
            RetryConfig::UntilElapsed { max_elapsed, .. } if max_elapsed.is_zero() => {
                Err("retry max_elapsed must be positive".into())
            }
            _ => Ok(()),
        }
    }

    /// The policy this configuration describes.
    pub fn build(&self) -> Arc<dyn RetryPolicy> {
        match *self {
            RetryConfig::Exponential {
                base,
                max_retries,
                max_sleep,
            } => Arc::new(ExponentialBackoffRetry {
                base,
                max_retries,
                max_sleep,
            }),
            RetryConfig::BoundedExponential {
                base,
                max_sleep,
                max_retries,
            } => Arc::new(BoundedExponentialBackoffRetry {
                base,
                max_sleep,
                max_retries,
            }),
            RetryConfig::NTimes { n, sleep } => Arc::new(RetryNTimes { n, sleep }),
            RetryConfig::OneTime { sleep } => Arc::new(RetryOneTime { sleep }),
            RetryConfig::UntilElapsed { max_elapsed, sleep } => {
                Arc::new(RetryUntilElapsed { max_elapsed, sleep })
            }
            RetryConfig::Forever { sleep } => Arc::new(RetryForever { sleep }),
            RetryConfig::None => Arc::new(NoRetry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(policy: &dyn RetryPolicy, max: u32) -> Vec<Option<Duration>> {
        let mut schedule = policy.schedule();
        (0..max)
            .map(|i| schedule.next_delay(i, Duration::ZERO))
            .collect()
    }

    #[test]
    fn exponential_grows_with_jitter_and_stops() {
        let policy = ExponentialBackoffRetry {
            base: Duration::from_millis(100),
            max_retries: 5,
            max_sleep: Duration::from_millis(400),
        };
        let got = delays(&policy, 7);
        assert_eq!(got[5], None);
        let first = got[0].unwrap();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
        for d in got.iter().take(5).flatten() {
            assert!(
                *d <= Duration::from_millis(600),
                "{d:?} beyond max_sleep plus jitter"
            );
        }
    }

    #[test]
    fn exponential_jitter_never_passes_the_cap_even_a_huge_one() {
        for max_sleep in [Duration::from_millis(150), Duration::MAX] {
            let policy = ExponentialBackoffRetry {
                base: Duration::from_millis(100),
                max_retries: 50,
                max_sleep,
            };
            let mut schedule = policy.schedule();
            for retry in 0..50 {
                let pause = schedule.next_delay(retry, Duration::ZERO);
                assert!(pause.is_some_and(|p| p <= max_sleep), "{retry}: {pause:?}");
            }
        }
    }

    #[test]
    fn bounded_exponential_doubles_up_to_the_cap() {
        let policy = BoundedExponentialBackoffRetry {
            base: Duration::from_millis(10),
            max_sleep: Duration::from_millis(50),
            max_retries: 5,
        };
        let ms: Vec<_> = delays(&policy, 6)
            .into_iter()
            .map(|d| d.map(|d| d.as_millis()))
            .collect();
        assert_eq!(ms, [Some(10), Some(20), Some(40), Some(50), Some(50), None]);
    }

    #[test]
    fn fixed_policies() {
        let s = Duration::from_millis(5);
        assert_eq!(
            delays(&RetryNTimes { n: 2, sleep: s }, 3),
            [Some(s), Some(s), None]
        );
        assert_eq!(delays(&RetryOneTime { sleep: s }, 2), [Some(s), None]);
        assert_eq!(delays(&RetryForever { sleep: s }, 3), [Some(s); 3]);
        assert_eq!(delays(&NoRetry, 1), [None]);
        let mut until = RetryUntilElapsed {
            max_elapsed: Duration::from_millis(20),
            sleep: s,
        }
        .schedule();
        assert_eq!(until.next_delay(0, Duration::from_millis(10)), Some(s));
        assert_eq!(until.next_delay(1, Duration::from_millis(16)), None);
    }

    #[test]
    fn config_reads_toml_and_json_with_text_durations() {
        let toml_text = r#"kind = "exponential"
base = "100ms"
max_retries = 10
max_sleep = "30s""#;
        let from_toml: RetryConfig = toml::from_str(toml_text).unwrap();
        assert_eq!(from_toml, RetryConfig::default());
        let json = serde_json::to_string(&from_toml).unwrap();
        let back: RetryConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, from_toml);
        let forever: RetryConfig =
            serde_json::from_str(r#"{"kind":"forever","sleep":"250ms"}"#).unwrap();
        assert_eq!(
            forever,
            RetryConfig::Forever {
                sleep: Duration::from_millis(250)
            }
        );
    }

    #[test]
    fn config_rejects_nonsense() {
        assert!(serde_json::from_str::<RetryConfig>(r#"{"kind":"sometimes"}"#).is_err());
        assert!(
            serde_json::from_str::<RetryConfig>(r#"{"kind":"one_time","sleep":"soon"}"#).is_err()
        );
        let bad = RetryConfig::Exponential {
            base: Duration::from_secs(2),
            max_retries: 1,
            max_sleep: Duration::from_secs(1),
        };
        assert!(bad.validate().is_err());
    }
}
