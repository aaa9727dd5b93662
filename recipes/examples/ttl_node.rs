//! A node that lives while kept and goes a TTL after it is left, even if the process dies:
//! starts a `PersistentTtlNode` with a two-second TTL, keeps it for a while, lets go and
//! watches the server delete it.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example ttl_node [-- HOST:PORT]
//! ```
//!
//! The server must allow TTL nodes (`zookeeper.extendedTypesEnabled=true`); without an
//! address the example starts one that does.

mod support;

use std::time::{Duration, Instant};

use zkwarden_recipes::ttl_node::PersistentTtlNode;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (warden, _server) = support::warden().await?;
    let path = "/example/alive/worker";
    let node = PersistentTtlNode::builder(&warden, path, Duration::from_secs(2))
        .data("working")
        .start()
        .await?;
    if !node.wait_for_initial_create(Duration::from_secs(10)).await {
        return Err("the node was not created (does the server allow TTL nodes?)".into());
    }
    println!("{path} kept for five seconds (TTL 2 s)");
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("still there: {}", warden.exists(path).await?.is_some());
    node.close();
    let left = Instant::now();
    loop {
        let (stat, gone) = warden.exists_and_watch(path).await?;
        if stat.is_none() {
            break;
        }
        let _ = gone.await;
    }
    println!(
        "deleted by the server {:?} after it was left",
        left.elapsed()
    );
    warden.close().await?;
    Ok(())
}
