//! A tree cache on the tree watch's one-shot fallback (for servers before ZooKeeper 3.6),
//! forced on our 3.8 test server through the warden's test hook: after rounds of random
//! creates, writes and deletes at two depths, and after a cut connection and an expired
//! session, the cache must equal a fresh listing of the server.

mod cache_support;
mod common;

use std::time::Duration;

use cache_support::{Rng, Truth, join, server_tree, truth_of, wait_for_state, wait_until};
use common::znodes::expire_and_await_new_session;
use common::{unique_path, warden, within};
use zkwarden::testing::{FaultProxy, ZkServer};
use zkwarden::warden::ConnectionState;
use zkwarden::{Error, Warden};
use zkwarden_recipes::cache::TreeCache;

/// `ops` random creates, writes and deletes under `root`, names on three levels.
async fn random_writes(w: &Warden, root: &str, seed: u64, ops: u32) {
    let mut rng = Rng(seed | 1);
    for _ in 0..ops {
        let mut path = join(root, &((b'a' + rng.below(5) as u8) as char).to_string());
        if rng.below(10) < 6 {
            path = join(&path, &rng.below(3).to_string());
            if rng.below(10) < 4 {
                path = join(&path, &rng.below(2).to_string());
            }
        }
        let data: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
        let result = match rng.below(20) {
            0..9 => w.create(&path, &data).await.map(|_| ()),
            9..15 => w.set_data(&path, &data, None).await.map(|_| ()),
            _ => w.delete(&path, None).await,
        };
        match result {
            Ok(()) | Err(Error::NoNode | Error::NodeExists | Error::NotEmpty) => {}
            Err(e) => panic!("writer: {path}: {e}"),
        }
    }
}

/// Waits until the cache equals `truth`.
async fn converged(cache: &TreeCache, truth: &Truth, what: &str) {
    wait_until(&format!("the cache equals the server after {what}"), || {
        truth_of(&cache.snapshot()) == *truth
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_cache_on_oneshot_watches_equals_the_server() {
    common::init_tracing();
    let server: ZkServer = common::blocking(|| {
        ZkServer::builder()
            .max_session_timeout(Duration::from_secs(30))
            .start()
            .expect("start ZooKeeper")
    })
    .await;
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let writer = warden(&server.connect_string()).await;
    let w = warden(&proxy.connect_string()).await;
    w.assume_server_without_persistent_watches();
    let root = unique_path("cache-fallback");
    writer.create(&root, b"").await.expect("root");
    // Something to list at the start.
    random_writes(&writer, &root, 3, 60).await;

    let cache = TreeCache::builder(&w, &root)
        .event_capacity(1 << 16)
        .start()
        .await
        .expect("start");
    within("initialized", cache.initialized())
        .await
        .expect("init");
    assert!(w.uses_oneshot_tree_watches(), "the fallback was taken");
    converged(&cache, &server_tree(&writer, &root).await, "the start").await;

    for (round, seed) in (7..10).enumerate() {
        random_writes(&writer, &root, seed, 150).await;
        let truth = server_tree(&writer, &root).await;
        assert!(truth.len() > 1, "the writes left something to cache");
        converged(&cache, &truth, &format!("writes of round {round}")).await;
    }

    // Writes across a cut connection.
    let mut connection = w.events();
    proxy.reset_all();
    random_writes(&writer, &root, 21, 100).await;
    wait_for_state(&mut connection, ConnectionState::Reconnected).await;
    random_writes(&writer, &root, 22, 100).await;
    converged(&cache, &server_tree(&writer, &root).await, "a reset").await;

    // Writes across an expired session.
    expire_and_await_new_session(&server.connect_string(), &w).await;
    random_writes(&writer, &root, 31, 150).await;
    converged(&cache, &server_tree(&writer, &root).await, "an expiry").await;
}
