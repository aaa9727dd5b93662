//! Prints a warden's connection state stream while you break things under it.
//!
//! ```text
//! cargo run --features testing --example warden_states                 # its own server
//! ZK_CONNECT=127.0.0.1:2181 cargo run --features testing --example warden_states
//! ```
//!
//! With its own server it runs a short show (an 8 s session): the server is stopped and
//! restarted within the session timeout (Suspended, then Reconnected to the same session), then stopped for longer
//! than the session timeout (Lost, by the client's own clock), then restarted (Reconnected
//! with a new session and generation). Against your server, kill and restart it yourself and
//! watch; Ctrl-C ends it.

use std::time::Duration;

use zkwarden::Warden;
use zkwarden::testing::ZkServer;
use zkwarden::warden::{ConnectionUpdate, RetryConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let own_server = std::env::var("ZK_CONNECT").is_err();
    let (connect, server) = match std::env::var("ZK_CONNECT") {
        Ok(connect) => (connect, None),
        Err(_) => {
            let server = tokio::task::spawn_blocking(|| {
                ZkServer::builder()
                    .max_session_timeout(Duration::from_secs(30))
                    .start()
            })
            .await??;
            (server.connect_string(), Some(server))
        }
    };
    let warden = Warden::builder(&connect)
        .session_timeout(Duration::from_secs(8))
        .connection_timeout(Duration::from_secs(30))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(200),
        })
        .start()
        .await?;
    println!(
        "warden started: session {} generation {}",
        warden.session_id(),
        warden.generation()
    );
    let mut events = warden.events();
    let started = tokio::time::Instant::now();
    let printer = tokio::spawn(async move {
        while let Some(update) = events.next_update().await {
            match update {
                ConnectionUpdate::Event(e) => println!(
                    "{:>7.3}s  state {:<11} session {} generation {}",
                    e.at.duration_since(started).as_secs_f64(),
                    format!("{:?}", e.state),
                    e.session_id,
                    e.generation
                ),
                ConnectionUpdate::Lagged { missed } => println!("(missed {missed} events)"),
            }
        }
    });

    match server {
        Some(mut server) if own_server => {
            println!(
                "{:>7.3}s  -- stopping the server for 1 s (shorter than the 8 s session)",
                started.elapsed().as_secs_f64()
            );
            server = pause_server(server, Duration::from_secs(1)).await?;
            println!(
                "{:>7.3}s  -- stopping the server for 10 s (longer than the session)",
                started.elapsed().as_secs_f64()
            );
            server = pause_server(server, Duration::from_secs(10)).await?;
            let stat = warden
                .create("/zkwarden-states-demo", b"")
                .idempotent()
                .await;
            println!("-- a write on the new session: {stat:?}");
            let _ = warden
                .delete("/zkwarden-states-demo", None)
                .idempotent()
                .await;
            warden.close().await?;
            drop(server);
        }
        _ => {
            println!("kill and restart your server and watch; Ctrl-C to stop");
            tokio::signal::ctrl_c().await?;
            warden.close().await?;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), printer).await;
    Ok(())
}

async fn pause_server(
    mut server: ZkServer,
    outage: Duration,
) -> Result<ZkServer, Box<dyn std::error::Error>> {
    server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await?;
    tokio::time::sleep(outage).await;
    let restarted = tokio::time::Instant::now();
    let server = tokio::task::spawn_blocking(move || server.restart().map(|()| server)).await??;
    println!(
        "           (server serving again after {:.3}s of restart)",
        restarted.elapsed().as_secs_f64()
    );
    // Give the warden a moment to report the reconnection before the next act.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(server)
}
