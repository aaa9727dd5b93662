//! What the benches that compare reconnect delays share: their settings from the environment.

use std::time::Duration;

/// The value of environment variable `name`, or `default` when it is unset or unreadable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The reconnect delays to compare: `ZKWARDEN_DELAYS_MS` (milliseconds, comma separated), or
/// `default`.
pub fn delays(default: &str) -> Vec<Duration> {
    let list = std::env::var("ZKWARDEN_DELAYS_MS").unwrap_or_else(|_| default.into());
    list.split(',')
        .map(|ms| Duration::from_millis(ms.trim().parse().expect("a delay in milliseconds")))
        .collect()
}

/// Runs `run` on a multi-thread runtime with two workers (the development machine's cores).
pub fn block_on<F: std::future::Future>(run: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run)
}
