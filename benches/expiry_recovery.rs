//! How fast a warden recovers from server-side session expiries, and whether it reports them
//! cleanly, for several settings of the reconnect delay
//! ([`WardenBuilder::reconnect_delay`](zkwarden::warden::WardenBuilder::reconnect_delay)).
//!
//! For each delay a busy warden (a reader every millisecond, a tree watch) on one real
//! ZooKeeper server has its session expired many times (`testing::expire_session`, which
//! returns once the server refuses the session). Per expiry it records the time from the start
//! of the expiry to the warden's new session (`Reconnected` with a new generation) and to the
//! tree watch's `Resync` on that generation, and whether the warden's events read exactly
//! `Suspended, Lost, Reconnected` (a re-attach that won the race against the close shows up
//! as `Reconnected` of the expired session in between). The delays are run in interleaved
//! passes; the figures are over all passes.
//!
//! ```text
//! cargo bench --bench expiry_recovery --features testing
//! ZKWARDEN_EXPIRIES=40 ZKWARDEN_PASSES=3 ZKWARDEN_DELAYS_MS=0,50,100 \
//!     cargo bench --bench expiry_recovery --features testing
//! # a delay over 2 s needs a longer session (the delay is capped at a third of it):
//! ZKWARDEN_SESSION_TIMEOUT_SECS=30 ZKWARDEN_DELAYS_MS=6000 ZKWARDEN_EXPIRIES=10 \
//!     cargo bench --bench expiry_recovery --features testing
//! ```
//!
//! It only prints; the suite's tests/expire_stress.rs asserts the behaviour. CI only builds
//! this.

mod common;

use std::time::Duration;

use common::{block_on, delays, env_or};
use tokio::sync::mpsc;
use tokio::time::Instant;
use zkwarden::Warden;
use zkwarden::testing::{ZkServer, expire_session};
use zkwarden::warden::{ConnectionState, TreeEvent};

/// The session timeout the warden asks for unless `ZKWARDEN_SESSION_TIMEOUT_SECS` says
/// otherwise (the suite's).
const SESSION_TIMEOUT_SECS: u64 = 6;
/// Bound on one expiry's recovery; past it the run fails.
const PATIENCE: Duration = Duration::from_secs(30);
/// The recovery target of issue 15.
const TARGET: Duration = Duration::from_millis(500);

/// What one delay gave, over all passes.
#[derive(Default)]
struct Tally {
    session: Vec<Duration>,
    resync: Vec<Duration>,
    /// Expiries whose events were not exactly `Suspended, Lost, Reconnected`.
    unclean: usize,
}

fn main() {
    block_on(run());
}

async fn run() {
    let timeout_secs = env_or("ZKWARDEN_SESSION_TIMEOUT_SECS", SESSION_TIMEOUT_SECS);
    let timeout = Duration::from_secs(timeout_secs);
    let server = tokio::task::spawn_blocking(move || {
        let builder = ZkServer::builder();
        // Past the suite's timeout the server's default bound (20 ticks) would clamp it.
        if timeout_secs > SESSION_TIMEOUT_SECS {
            builder.max_session_timeout(timeout).start()
        } else {
            builder.start()
        }
    })
    .await
    .expect("server start task")
    .expect("start ZooKeeper (run scripts/install-zookeeper.sh)");
    let connect = server.connect_string();
    let delays = delays("0,50,100,200");
    let expiries = env_or("ZKWARDEN_EXPIRIES", 40usize);
    let passes = env_or("ZKWARDEN_PASSES", 3usize);
    let mut tallies: Vec<Tally> = delays.iter().map(|_| Tally::default()).collect();
    for _ in 0..passes {
        for (delay, tally) in delays.iter().zip(&mut tallies) {
            pass(&connect, timeout, *delay, expiries, tally).await;
        }
    }
    println!(
        "{expiries} expiries x {passes} passes per delay, session timeout {timeout:?}; times from \
         the start of the expiry (p50 / p99 / max, and how many within {TARGET:?})"
    );
    println!("| reconnect delay | new session | tree resync | not Suspended, Lost, Reconnected |");
    println!("|---|---|---|---|");
    for (delay, tally) in delays.iter().zip(&mut tallies) {
        let n = tally.session.len();
        println!(
            "| {delay:?} | {} | {} | {} of {n} |",
            summary(&mut tally.session),
            summary(&mut tally.resync),
            tally.unclean,
        );
    }
}

/// One pass: a fresh warden with `timeout` and `delay`, `expiries` expiries.
async fn pass(
    connect: &str,
    timeout: Duration,
    delay: Duration,
    expiries: usize,
    tally: &mut Tally,
) {
    let warden = Warden::builder(connect)
        .session_timeout(timeout)
        .reconnect_delay(delay)
        .start()
        .await
        .expect("start the warden");
    let path = "/expiry-recovery";
    let _ = warden.create(path, b"x").await;
    // A tree watch reports each resync; the reader keeps the session busy, as a cache under a
    // writer would.
    let (resyncs_tx, mut resyncs) = mpsc::unbounded_channel();
    let mut tree = warden.watch_tree(path);
    let watcher = tokio::spawn(async move {
        while let Some(event) = tree.next().await {
            if let TreeEvent::Resync { generation, .. } = event {
                let _ = resyncs_tx.send((generation, Instant::now()));
            }
        }
    });
    let busy = {
        let warden = warden.clone();
        tokio::spawn(async move {
            loop {
                let _ = warden.get_data(path).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    for _ in 0..expiries {
        let mut events = warden.events();
        let generation = warden.generation();
        let client = warden.client().expect("a client");
        let started = Instant::now();
        expire_session(connect, client.session_id(), &client.session_password())
            .await
            .expect("expire the session");
        let mut seen = Vec::new();
        let (session_at, resync_at) = tokio::time::timeout(PATIENCE, async {
            let session_at = loop {
                let event = events.next().await.expect("the warden's events");
                seen.push((event.state, event.generation));
                if event.state == ConnectionState::Reconnected && event.generation > generation {
                    break event.at;
                }
            };
            let resync_at = loop {
                let (resynced, at) = resyncs.recv().await.expect("the tree watch");
                if resynced > generation {
                    break at;
                }
            };
            (session_at, resync_at)
        })
        .await
        .expect("a new session and a resync within the patience");
        let clean = [
            (ConnectionState::Suspended, generation),
            (ConnectionState::Lost, generation),
            (ConnectionState::Reconnected, generation + 1),
        ];
        tally.unclean += usize::from(seen != clean);
        tally.session.push(session_at - started);
        tally.resync.push(resync_at - started);
    }
    busy.abort();
    watcher.abort();
    let _ = warden.close().await;
}

/// `p50 / p99 / max (k within TARGET)` of `times`.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    format!(
        "{} / {} / {} ({} within)",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(1.0)),
        times.iter().filter(|d| **d <= TARGET).count()
    )
}
