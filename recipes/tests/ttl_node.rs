//! TTL nodes on a real server that allows them (`extendedTypesEnabled`) and reaps expired ones
//! every 100 ms: a `PersistentTtlNode` lives while kept and goes once left; a `PersistentNode`
//! in a TTL mode is created as a TTL node and made again after the server reaps it.

mod common;

use std::time::Duration;

use common::{start_ttl_server, unique_path, warden, within};
use zkwarden::Warden;
use zkwarden::warden::DataEvent;
use zkwarden_recipes::persistent_node::{NodeEvent, NodeMode, PersistentNode};
use zkwarden_recipes::ttl_node::PersistentTtlNode;

/// Waits, by exists watches, until `path` is gone.
async fn await_gone(w: &Warden, path: &str) {
    within(&format!("{path} to go"), async {
        loop {
            let (stat, watcher) = w.exists_and_watch(path).await.unwrap();
            if stat.is_none() {
                return;
            }
            let _ = watcher.await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_node_lives_while_touched_and_goes_a_ttl_after_it_is_left() {
    let server = start_ttl_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("ttl");
    let ttl = Duration::from_millis(1000);
    let node = PersistentTtlNode::start(&w, &path, ttl, "kept");
    assert!(node.wait_for_initial_create(common::PATIENCE).await);
    let (data, created) = w.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"kept");
    // (The server shows TTL nodes with an ephemeral owner of 0, so only their going proves
    // they are TTL nodes.)

    // Five writes of the child, half a TTL apart: over two TTLs in which the server, looking
    // every 100 ms, would have reaped an unkept node.
    let mut touches = w.watch_data(node.touch_path());
    let mut child_czxids = Vec::new();
    within("five touches", async {
        while child_czxids.len() < 5 {
            if let Some(DataEvent::Changed { stat, .. }) = touches.next().await {
                child_czxids.push(stat.czxid);
            }
        }
    })
    .await;
    child_czxids.dedup();
    assert_eq!(child_czxids.len(), 1, "the kept child was never reaped");
    let (_, still) = w.get_data(&path).await.unwrap();
    assert_eq!(still.czxid, created.czxid, "the node was never reaped");
    drop(touches);

    let child_path = node.touch_path().to_owned();
    node.close();
    await_gone(&w, &child_path).await;
    await_gone(&w, &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_node_in_ttl_mode_is_made_again_after_the_server_reaps_it() {
    let server = start_ttl_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("ttl-mode");
    let ttl = Duration::from_millis(300);
    let node = PersistentNode::start(&w, &path, "x", NodeMode::PersistentWithTtl(ttl));
    let mut events = node.events();
    assert!(node.wait_for_initial_create(common::PATIENCE).await);
    let first = w.exists(&path).await.unwrap().expect("created");
    within("reaped and made again", async {
        let mut vanished = false;
        loop {
            match events.next().await.expect("node events") {
                NodeEvent::Vanished { .. } => vanished = true,
                NodeEvent::Created { .. } if vanished => return,
                _ => {}
            }
        }
    })
    .await;
    let again = w.exists(&path).await.unwrap().expect("made again");
    assert_ne!(again.czxid, first.czxid);
    node.close().await.unwrap();
    assert!(w.exists(&path).await.unwrap().is_none());
}
