//! The zkwarden demo: connect, create, watch, update, and print what happened.
//!
//! ```text
//! cargo run --features testing --example quickstart            # starts its own ZooKeeper
//! ZK_CONNECT=127.0.0.1:2181 cargo run --features testing --example quickstart
//! ```
//!
//! Without `ZK_CONNECT` it starts a throwaway ZooKeeper server (Debian's package; see
//! `scripts/install-zookeeper.sh`) on a free loopback port and stops it at the end.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zkwarden::testing::ZkServer;
use zkwarden::{AddWatchMode, Client, CreateMode, Op};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the server (if we started one) alive until the end of main.
    let (connect, _server) = match std::env::var("ZK_CONNECT") {
        Ok(connect) => (connect, None),
        Err(_) => {
            println!("ZK_CONNECT is not set: starting a ZooKeeper server for the demo...");
            let server = tokio::task::spawn_blocking(ZkServer::start).await??;
            println!("  server up at {}", server.connect_string());
            (server.connect_string(), Some(server))
        }
    };

    let client = Client::builder(&connect)
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await?;
    println!(
        "connected: session {} (timeout {:?}) on {:?}",
        client.session_id(),
        client.negotiated_timeout(),
        client.connected_server()
    );

    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let root = client
        .create(
            &format!("/zkwarden-demo-{stamp}"),
            b"demo",
            CreateMode::Persistent,
        )
        .await?;
    println!("created {root}");

    // A persistent recursive watch sees everything below the root.
    let mut tree = client
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await?;

    let config = format!("{root}/config");
    client
        .create(&config, b"color=blue", CreateMode::Persistent)
        .await?;
    let (data, stat, changed) = client.get_data_and_watch(&config).await?;
    println!(
        "read {config}: {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );

    // Update with the version we read: a concurrent writer would make this fail BadVersion.
    let stat = client
        .set_data(&config, b"color=green", Some(stat.version))
        .await?;
    println!("updated {config} to version {}", stat.version);
    let event = changed.await?;
    println!(
        "one-shot watch fired: {:?} on {}",
        event.event_type, event.path
    );

    let member = client
        .create(
            &format!("{root}/member-"),
            b"me",
            CreateMode::EphemeralSequential,
        )
        .await?;
    println!("joined as {member} (ephemeral, goes away with the session)");

    // Clean up atomically.
    client
        .multi(&[
            Op::delete(member.as_str(), None),
            Op::delete(config.as_str(), None),
            Op::delete(root.as_str(), None),
        ])
        .await?;
    println!("deleted the demo nodes in one transaction");

    for _ in 0..6 {
        match tokio::time::timeout(Duration::from_secs(2), tree.next()).await {
            Ok(Some(event)) => {
                println!("recursive watch saw: {:?} {}", event.event_type, event.path)
            }
            _ => break,
        }
    }
    client.close().await?;
    println!("closed the session; bye");
    Ok(())
}
