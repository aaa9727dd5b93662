//! How the sessions of many clients come back after their server restarts (a full-ensemble
//! restart, with one server): the spread of their reconnections and the busiest 100 ms of it,
//! for several settings of the reconnect delay
//! ([`ClientBuilder::reconnect_delay`](zkwarden::ClientBuilder::reconnect_delay)), in
//! interleaved passes.
//!
//! Each pass connects `ZKWARDEN_SESSIONS` clients (default 300) with a 20 s session timeout,
//! stops the server, starts it again on the same data (the sessions survive), and records when
//! each client is connected again, counted from the first client back.
//!
//! ```text
//! cargo bench --bench restart_storm --features testing
//! ZKWARDEN_SESSIONS=1000 ZKWARDEN_PASSES=3 ZKWARDEN_DELAYS_MS=0,100 \
//!     cargo bench --bench restart_storm --features testing
//! ```
//!
//! It only prints. CI only builds this.

mod common;

use std::time::Duration;

use common::{block_on, delays, env_or};
use tokio::time::Instant;
use zkwarden::testing::ZkServer;
use zkwarden::{Client, SessionState};

const SESSION_TIMEOUT: Duration = Duration::from_secs(20);
const WINDOW: Duration = Duration::from_millis(100);

fn main() {
    block_on(run());
}

async fn run() {
    let mut server = tokio::task::spawn_blocking(|| {
        ZkServer::builder()
            .max_session_timeout(Duration::from_secs(30))
            // Every client connects from loopback: lift the per-address limit.
            .extra_config("maxClientCnxns", "0")
            .start()
    })
    .await
    .expect("server start task")
    .expect("start ZooKeeper (run scripts/install-zookeeper.sh)");
    let sessions = env_or("ZKWARDEN_SESSIONS", 300usize);
    let passes = env_or("ZKWARDEN_PASSES", 2usize);
    let delays = delays("0,100");
    println!(
        "{sessions} sessions, {passes} passes per delay; reconnections counted from the first \
         client back"
    );
    println!("| reconnect delay | median | last | busiest {WINDOW:?} |");
    println!("|---|---|---|---|");
    for _ in 0..passes {
        for &delay in &delays {
            let (back, s) = restart(server, sessions, delay).await;
            server = s;
            let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
            println!(
                "| {delay:?} | {} | {} | {} of {sessions} |",
                ms(back[back.len() / 2]),
                ms(back[back.len() - 1]),
                busiest(&back),
            );
        }
    }
}

/// One pass: `sessions` clients, a restart, the sorted reconnection times.
async fn restart(
    mut server: ZkServer,
    sessions: usize,
    delay: Duration,
) -> (Vec<Duration>, ZkServer) {
    let connect = server.connect_string();
    let mut clients = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let client = Client::builder(&connect)
            .session_timeout(SESSION_TIMEOUT)
            .reconnect_delay(delay)
            .connect()
            .await
            .expect("connect");
        clients.push(client);
    }
    // Each client reports when it is connected again after having been disconnected.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for client in &clients {
        let mut states = client.state();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = states
                .wait_for(|s| s.state == SessionState::Disconnected)
                .await;
            let _ = states
                .wait_for(|s| s.state == SessionState::Connected)
                .await;
            let _ = tx.send(Instant::now());
        });
    }
    drop(tx);
    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        server.restart().expect("restart ZooKeeper");
        server
    })
    .await
    .expect("restart task");
    let mut back = Vec::with_capacity(sessions);
    while let Some(at) = rx.recv().await {
        back.push(at);
    }
    assert_eq!(back.len(), sessions, "every session came back");
    back.sort();
    let back: Vec<Duration> = back.iter().map(|at| *at - back[0]).collect();
    for client in clients {
        let _ = client.close().await;
    }
    (back, server)
}

/// The most reconnections within any [`WINDOW`].
fn busiest(sorted: &[Duration]) -> usize {
    let mut best = 0;
    let mut start = 0;
    for (end, at) in sorted.iter().enumerate() {
        while *at - sorted[start] > WINDOW {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}
