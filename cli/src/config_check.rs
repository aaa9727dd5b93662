//! `config check FILE`: validates a warden config and shows what its numbers mean in time.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use zkwarden::ClientBuilder;
use zkwarden::warden::{RetryConfig, WardenConfig};

use crate::connect::load_config;
use crate::exit::Failure;
use crate::output::Output;

/// Retries shown at most (a `forever` policy has no end).
const MAX_STEPS: u32 = 30;
/// Draws per retry for jittered policies: the pause shown is the longest drawn.
const DRAWS: usize = 1000;

/// One retry of the schedule.
#[derive(Debug, Clone, Copy)]
struct Step {
    shortest: Duration,
    longest: Duration,
    cumulative: Duration,
}

/// The pauses `retry` makes, retry by retry, with the shortest and longest of many draws
/// (equal unless the policy adds jitter), assuming every attempt fails at once. `truncated`
/// when the policy would go on past [`MAX_STEPS`].
fn schedule(retry: &RetryConfig) -> (Vec<Step>, bool) {
    let policy = retry.build();
    let mut schedules: Vec<_> = (0..DRAWS).map(|_| policy.schedule()).collect();
    let mut steps = Vec::new();
    let mut cumulative = Duration::ZERO;
    for retries in 0..MAX_STEPS {
        let drawn: Vec<Duration> = schedules
            .iter_mut()
            .filter_map(|s| s.next_delay(retries, cumulative))
            .collect();
        let (Some(&shortest), Some(&longest)) = (drawn.iter().min(), drawn.iter().max()) else {
            return (steps, false);
        };
        cumulative += longest;
        steps.push(Step {
            shortest,
            longest,
            cumulative,
        });
    }
    (steps, true)
}

/// A duration for people, to the millisecond.
fn human(d: Duration) -> String {
    let ms = Duration::from_millis(d.as_millis().min(u64::MAX as u128) as u64);
    if ms.is_zero() {
        "0ms".into()
    } else {
        humantime::format_duration(ms).to_string()
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// What the config means: schedule, worst case and warnings.
struct Report {
    steps: Vec<Step>,
    truncated: bool,
    read_timeout: Duration,
    connect_round: Duration,
    attempt: Duration,
    worst: Option<Duration>,
    warnings: Vec<String>,
}

fn analyse(config: &WardenConfig) -> Result<Report, Failure> {
    let (steps, truncated) = schedule(&config.retry);
    let builder =
        ClientBuilder::new(config.connect.clone()).session_timeout(config.session_timeout);
    let read_timeout = builder.read_timeout();
    let connect_round = builder
        .connect_round()
        .map_err(|e| Failure::Usage(format!("invalid settings: {e}")))?;
    // One attempt waits for a connected session (up to the connection timeout), then its
    // request can hang on a dead connection until the read timeout gives up on it.
    let attempt = config.connection_timeout + read_timeout;
    let budget = steps.last().map_or(Duration::ZERO, |s| s.cumulative);
    let attempts = u32::try_from(steps.len() + 1).unwrap_or(u32::MAX);
    let worst = (!truncated).then(|| attempt.saturating_mul(attempts) + budget);
    let mut warnings = Vec::new();
    if truncated {
        warnings.push(format!(
            "the policy retries without end (shown: the first {MAX_STEPS} retries): an operation \
             only stops at a deadline (Warden::with_timeout / with_deadline)"
        ));
    }
    if budget > config.session_timeout {
        warnings.push(format!(
            "the retry budget ({}) is longer than the session timeout ({}): an operation can \
             still be retrying after its session expired, and work tied to the session (locks, \
             ephemeral nodes) may be gone by the time it succeeds",
            human(budget),
            human(config.session_timeout)
        ));
    }
    if config.connection_timeout < connect_round {
        warnings.push(format!(
            "the connection timeout ({}) is shorter than one connect round ({}: every host of \
             the connect string tried once): the warden can give up before each server had \
             its turn",
            human(config.connection_timeout),
            human(connect_round)
        ));
    }
    Ok(Report {
        steps,
        truncated,
        read_timeout,
        connect_round,
        attempt,
        worst,
        warnings,
    })
}

/// `config check FILE`.
///
/// # Errors
/// [`Failure::Usage`] when the file cannot be read or parsed or a setting is invalid.
pub fn run(out: Output, file: &Path) -> Result<(), Failure> {
    let config = load_config(file)?;
    let report = analyse(&config)?;
    let mut text = vec![
        format!("{}: valid", file.display()),
        format!("  servers             {}", config.connect),
        format!("  session timeout     {}", human(config.session_timeout)),
        format!("  connection timeout  {}", human(config.connection_timeout)),
        format!(
            "  read timeout        {} (no byte for this long drops a connection)",
            human(report.read_timeout)
        ),
        format!("  one connect round   {}", human(report.connect_round)),
        format!(
            "  retry policy        {}",
            serde_json::to_string(&config.retry).unwrap_or_default()
        ),
        "retry schedule (pause before each retry; with jitter, the range of 1000 draws):".into(),
    ];
    if report.steps.is_empty() {
        text.push("  no retries".into());
    }
    for (i, step) in report.steps.iter().enumerate() {
        let pause = if step.shortest == step.longest {
            human(step.longest)
        } else {
            format!("{} .. {}", human(step.shortest), human(step.longest))
        };
        text.push(format!(
            "  retry {:>2}: after {pause:<22} total {}",
            i + 1,
            human(step.cumulative)
        ));
    }
    if report.truncated {
        text.push("  ... and so on, without end".into());
    }
    match report.worst {
        Some(worst) => text.push(format!(
            "worst case for one operation: {} ({} attempts x {} each [connection timeout + read \
             timeout] + {} of pauses)",
            human(worst),
            report.steps.len() + 1,
            human(report.attempt),
            human(report.steps.last().map_or(Duration::ZERO, |s| s.cumulative))
        )),
        None => text.push("worst case for one operation: unbounded (no deadline)".into()),
    }
    for warning in &report.warnings {
        text.push(format!("warning: {warning}"));
    }
    let value = json!({
        "valid": true,
        "file": file.display().to_string(),
        "connect": config.connect,
        "session_timeout_ms": millis(config.session_timeout),
        "connection_timeout_ms": millis(config.connection_timeout),
        "read_timeout_ms": millis(report.read_timeout),
        "connect_round_ms": millis(report.connect_round),
        "retry": config.retry,
        "schedule": report.steps.iter().enumerate().map(|(i, s)| json!({
            "retry": i + 1,
            "delay_min_ms": millis(s.shortest),
            "delay_max_ms": millis(s.longest),
            "cumulative_ms": millis(s.cumulative),
        })).collect::<Vec<_>>(),
        "schedule_truncated": report.truncated,
        "attempt_worst_ms": millis(report.attempt),
        "worst_case_ms": report.worst.map(millis),
        "warnings": report.warnings,
    });
    out.emit(text.join("\n"), &value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_schedule_doubles_and_sums() {
        let (steps, truncated) = schedule(&RetryConfig::BoundedExponential {
            base: Duration::from_millis(100),
            max_sleep: Duration::from_millis(300),
            max_retries: 3,
        });
        assert!(!truncated);
        let longest: Vec<u64> = steps.iter().map(|s| millis(s.longest)).collect();
        assert_eq!(longest, [100, 200, 300]);
        assert_eq!(millis(steps[2].cumulative), 600);
        let (_, forever) = schedule(&RetryConfig::Forever {
            sleep: Duration::from_millis(10),
        });
        assert!(forever);
    }
}
