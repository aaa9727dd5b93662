//! How fast a warden recovers from server-side session expiries: over many expiries of a busy
//! warden on one real ZooKeeper server, the time from the confirmed expiry (the return of
//! `testing::expire_session`, which waits until the server refuses the session) to the
//! warden's new session (`Reconnected` with a new generation), as p50, p99 and max. It also
//! counts the expiries in which the warden reported the expired session `Reconnected`
//! between `Suspended` and `Lost` (the ZooKeeper 3.8 re-attach race).
//!
//! ```text
//! cargo bench --bench expiry_recovery --features testing
//! ZKWARDEN_EXPIRIES=100 cargo bench --bench expiry_recovery --features testing
//! ```
//!
//! It only prints; the suite's tests/expire_stress.rs asserts the behaviour. CI only builds
//! this.

use std::time::Duration;

use tokio::time::Instant;
use zkwarden::Warden;
use zkwarden::testing::{ZkServer, expire_session};
use zkwarden::warden::ConnectionState;

/// The session timeout the warden asks for (the suite's).
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);
/// Bound on one expiry's recovery; past it the run fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn expiries() -> usize {
    std::env::var("ZKWARDEN_EXPIRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let server = tokio::task::spawn_blocking(|| ZkServer::builder().start())
        .await
        .expect("server start task")
        .expect("start ZooKeeper (run scripts/install-zookeeper.sh)");
    let connect = server.connect_string();
    let warden = Warden::builder(&connect)
        .session_timeout(SESSION_TIMEOUT)
        .start()
        .await
        .expect("start the warden");
    let path = "/expiry-recovery";
    let _ = warden.create(path, b"x").await;
    // Keep the session busy, as a cache under a writer would, so that it re-attaches at once
    // when its connection is cut.
    let busy = {
        let warden = warden.clone();
        tokio::spawn(async move {
            loop {
                let _ = warden.get_data(path).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let n = expiries();
    let mut recoveries = Vec::with_capacity(n);
    let mut flickers = 0;
    for _ in 0..n {
        let mut events = warden.events();
        let generation = warden.generation();
        let client = warden.client().expect("a client");
        expire_session(&connect, client.session_id(), &client.session_password())
            .await
            .expect("expire the session");
        let confirmed = Instant::now();
        let mut old_reconnected = false;
        let arrived = tokio::time::timeout(PATIENCE, async {
            while let Some(event) = events.next().await {
                match event.state {
                    ConnectionState::Reconnected if event.generation > generation => {
                        return event.at;
                    }
                    ConnectionState::Reconnected => old_reconnected = true,
                    _ => {}
                }
            }
            panic!("event stream ended");
        })
        .await
        .expect("a new session within the patience");
        flickers += usize::from(old_reconnected);
        recoveries.push(arrived.saturating_duration_since(confirmed));
    }
    busy.abort();
    recoveries.sort();
    let pick = |q: f64| recoveries[((recoveries.len() - 1) as f64 * q).round() as usize];
    println!(
        "expiries: {n}; confirmed expiry -> new session: p50 {:?}, p99 {:?}, max {:?}; \
         within 0.5 s: {}; old session reported reconnected: {flickers}",
        pick(0.5),
        pick(0.99),
        pick(1.0),
        recoveries
            .iter()
            .filter(|d| **d <= Duration::from_millis(500))
            .count(),
    );
    let _ = warden.close().await;
}
