//! TTL nodes on a real server that allows them (`extendedTypesEnabled`) and reaps expired ones
//! every 100 ms: a `PersistentTtlNode` lives while kept and goes once left, also when a
//! Curator `PersistentTtlNode` (`tests/java/CuratorTtlPeer.java`) keeps the same path after
//! ours stops; a `PersistentNode` in a TTL mode is created as a TTL node and made again after
//! the server reaps it.

mod common;

use std::time::Duration;

use common::java_peer::{self, Scratch};
use common::znodes::await_gone;
use common::{start_ttl_server, unique_path, warden, within};
use zkwarden::warden::DataEvent;
use zkwarden::{Error, Warden};
use zkwarden_recipes::persistent_node::{NodeEvent, NodeMode, PersistentNode};
use zkwarden_recipes::ttl_node::PersistentTtlNode;

/// Waits for `n` writes of the child at `path`, all to one node (never reaped meanwhile).
async fn await_touches_of_one_child(w: &Warden, path: &str, n: usize) {
    let mut touches = w.watch_data(path);
    let mut czxids = Vec::new();
    within(&format!("{n} touches of {path}"), async {
        while czxids.len() < n {
            if let Some(DataEvent::Changed { stat, .. }) = touches.next().await {
                czxids.push(stat.czxid);
            }
        }
    })
    .await;
    czxids.dedup();
    assert_eq!(czxids.len(), 1, "the kept child was reaped and made again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_node_lives_while_touched_and_goes_a_ttl_after_it_is_left() {
    let server = start_ttl_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("ttl");
    let ttl = Duration::from_millis(1000);
    let node = PersistentTtlNode::builder(&w, &path, ttl)
        .data("kept")
        .start()
        .await
        .expect("start");
    assert!(node.wait_for_initial_create(common::PATIENCE).await);
    let (data, created) = w.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"kept");
    // (The server shows TTL nodes with an ephemeral owner of 0, so only their going proves
    // they are TTL nodes.)

    // Five writes of the child, half a TTL apart: over two TTLs in which the server, looking
    // every 100 ms, would have reaped an unkept node.
    await_touches_of_one_child(&w, node.touch_path(), 5).await;
    let (_, still) = w.get_data(&path).await.unwrap();
    assert_eq!(still.czxid, created.czxid, "the node was never reaped");

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
    let node = PersistentNode::builder(&w, &path, NodeMode::PersistentWithTtl(ttl))
        .data("x")
        .start()
        .await
        .expect("start");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curators_ttl_node_keeps_ours_on_the_same_layout() {
    let server = start_ttl_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let path = unique_path("ttl-curator");
    let ttl = Duration::from_millis(1000);
    let scratch = Scratch::new("ttl-curator");
    let classpath = java_peer::prepare("CuratorTtlPeer.java", &scratch).await;
    let args = [connect.clone(), path.clone(), ttl.as_millis().to_string()];
    let mut peer = java_peer::start(&classpath, &scratch.0, "CuratorTtlPeer", &args).await;

    let ours = PersistentTtlNode::builder(&w, &path, ttl)
        .data("rust")
        .start()
        .await
        .expect("start");
    assert!(ours.wait_for_initial_create(common::PATIENCE).await);
    peer.send("start").await;
    assert_eq!(peer.line().await, "started");
    let touch = ours.touch_path().to_owned();
    let (_, created) = w.get_data(&path).await.unwrap();

    // Ours stops; Curator's writes of the same child keep the node for two more TTLs.
    ours.close();
    await_touches_of_one_child(&w, &touch, 5).await;
    let (_, still) = w.get_data(&path).await.unwrap();
    assert_eq!(still.czxid, created.czxid, "the node was never reaped");

    peer.send("close").await;
    assert_eq!(peer.line().await, "closed");
    await_gone(&w, &touch).await;
    await_gone(&w, &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_ttl_nodes_refuses_them_and_the_node_reports_it() {
    let server = common::start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("ttl-refused");
    let refused = w
        .create(&path, b"")
        .mode(zkwarden::CreateMode::PersistentWithTtl)
        .ttl(Duration::from_secs(1))
        .await;
    assert_eq!(refused, Err(Error::Unimplemented));
    let node = PersistentTtlNode::builder(&w, &path, Duration::from_secs(1))
        .data("x")
        .start()
        .await
        .expect("start");
    let mut events = node.events();
    let first = within("the node's first event", events.next()).await;
    assert_eq!(
        first,
        Some(NodeEvent::Failed {
            error: Error::Unimplemented.to_string()
        })
    );
    assert!(w.exists(&path).await.unwrap().is_none());
    node.close();
}
