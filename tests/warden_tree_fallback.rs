//! The tree watch's fallback for servers without persistent recursive watches (before
//! ZooKeeper 3.6), forced on our 3.8 test server through the warden's test hook, which makes
//! the `addWatch` attempt fail with `Unimplemented` as an old server answers it.
//!
//! A warden holds the watch; a separate plain client (`writer`) makes the changes.
#![cfg(feature = "testing")]

mod common;

use std::collections::BTreeSet;

use common::*;
use zkwarden::testing::{FaultProxy, expire_session};
use zkwarden::warden::{TreeEvent, TreeWatch};
use zkwarden::{Client, CreateMode, Error, Warden};

/// A warden on `connect` whose tree watches use the one-shot fallback.
async fn fallback_warden(connect: &str) -> Warden {
    let warden = Warden::builder(connect)
        .session_timeout(SESSION_TIMEOUT)
        .start()
        .await
        .expect("start a warden");
    warden.assume_server_without_persistent_watches();
    warden
}

async fn node(client: &Client, path: &str) {
    client
        .create(path, b"", CreateMode::Persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e:?}"));
}

/// Every node at and below `root` as the server has it now.
async fn server_listing(client: &Client, root: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut level = vec![root.to_owned()];
    while let Some(path) = level.pop() {
        match client.get_children(&path).await {
            Ok(children) => {
                level.extend(children.iter().map(|c| format!("{path}/{c}")));
                out.insert(path);
            }
            Err(Error::NoNode) => {}
            Err(e) => panic!("list {path}: {e:?}"),
        }
    }
    out
}

/// What a consumer that applies the events knows of the subtree.
#[derive(Default)]
struct Model {
    nodes: BTreeSet<String>,
    resyncs: Vec<u64>,
    seen: Vec<TreeEvent>,
}

impl Model {
    fn apply(&mut self, event: TreeEvent) {
        match &event {
            TreeEvent::Resync { generation, nodes } => {
                self.nodes = nodes.keys().cloned().collect();
                self.resyncs.push(*generation);
            }
            TreeEvent::Created { path } => {
                self.nodes.insert(path.clone());
            }
            TreeEvent::Deleted { path } => {
                self.nodes.remove(path);
            }
            TreeEvent::Changed { .. } => {}
        }
        self.seen.push(event);
    }

    /// Applies events until `done` holds.
    async fn until(&mut self, watch: &mut TreeWatch, what: &str, done: impl Fn(&Model) -> bool) {
        within(what, async {
            while !done(self) {
                let event = watch.next().await.expect("the stream ended");
                self.apply(event);
            }
        })
        .await;
    }

    /// Applies events until `event` has been seen.
    async fn expect(&mut self, watch: &mut TreeWatch, event: TreeEvent) {
        self.expect_times(watch, event, 1).await;
    }

    /// Applies events until `event` has been seen `times` times in all.
    async fn expect_times(&mut self, watch: &mut TreeWatch, event: TreeEvent, times: usize) {
        let what = format!("{event:?} x{times}");
        self.until(watch, &what, |m| {
            m.seen.iter().filter(|e| **e == event).count() >= times
        })
        .await;
    }
}

fn created(path: &str) -> TreeEvent {
    TreeEvent::Created {
        path: path.to_owned(),
    }
}

fn deleted(path: &str) -> TreeEvent {
    TreeEvent::Deleted {
        path: path.to_owned(),
    }
}

fn changed(path: &str) -> TreeEvent {
    TreeEvent::Changed {
        path: path.to_owned(),
    }
}

#[tokio::test]
async fn fallback_reports_changes_at_every_depth() {
    let server = start_server().await;
    let warden = fallback_warden(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    let root = unique_path("fallback-depths");
    let mut watch = warden.watch_tree(&root);
    let mut model = Model::default();
    // The root does not exist yet: the first listing is empty.
    model
        .until(&mut watch, "first resync", |m| !m.resyncs.is_empty())
        .await;
    assert!(model.nodes.is_empty());
    assert!(warden.uses_oneshot_tree_watches(), "the fallback was taken");

    node(&writer, &root).await;
    model.expect(&mut watch, created(&root)).await;
    let a = format!("{root}/a");
    let b = format!("{a}/b");
    let c = format!("{b}/c");
    node(&writer, &a).await;
    model.expect(&mut watch, created(&a)).await;
    node(&writer, &b).await;
    model.expect(&mut watch, created(&b)).await;
    node(&writer, &c).await;
    model.expect(&mut watch, created(&c)).await;
    // Every write of every node is reported: each firing re-arms the watch.
    for round in 1..=3 {
        for path in [&root, &a, &b, &c] {
            writer.set_data(path, b"x", None).await.unwrap();
            model.expect_times(&mut watch, changed(path), round).await;
        }
    }
    // Every child added is reported, again and again.
    for n in 0..3 {
        let child = format!("{b}/n{n}");
        node(&writer, &child).await;
        model.expect(&mut watch, created(&child)).await;
        writer.delete(&child, None).await.unwrap();
        model.expect(&mut watch, deleted(&child)).await;
    }
    // A child and a grandchild made back to back: the grandchild may exist before the
    // child is watched, and must be found all the same.
    let x = format!("{root}/x");
    let y = format!("{x}/y");
    let z = format!("{y}/z");
    node(&writer, &x).await;
    node(&writer, &y).await;
    node(&writer, &z).await;
    for path in [&x, &y, &z] {
        model.expect(&mut watch, created(path)).await;
    }
    // Deletions, deepest first as the server requires.
    for path in [&c, &z, &y, &b] {
        writer.delete(path, None).await.unwrap();
        model.expect(&mut watch, deleted(path)).await;
    }
    // Deleted and created again: the new node is watched too.
    writer.delete(&x, None).await.unwrap();
    node(&writer, &x).await;
    model.expect(&mut watch, deleted(&x)).await;
    model
        .until(&mut watch, "x back", |m| m.nodes.contains(&x))
        .await;
    writer.set_data(&x, b"again", None).await.unwrap();
    model.expect(&mut watch, changed(&x)).await;

    assert_eq!(model.nodes, server_listing(&writer, &root).await);
    assert_eq!(
        model.resyncs,
        vec![1],
        "no resync without a connection change"
    );
}

#[tokio::test]
async fn fallback_resyncs_after_reconnect_and_new_session() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let warden = fallback_warden(&proxy.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    let root = unique_path("fallback-faults");
    node(&writer, &root).await;
    node(&writer, &format!("{root}/a")).await;
    let mut watch = warden.watch_tree(&root);
    let mut model = Model::default();
    model
        .until(&mut watch, "first resync", |m| m.resyncs == [1])
        .await;
    assert_eq!(model.nodes.len(), 2);

    // A reconnection to the same session: listed again, with a change made meanwhile.
    proxy.reset_all();
    let r1 = format!("{root}/a/r1");
    node(&writer, &r1).await;
    model
        .until(&mut watch, "resync after reconnect", |m| {
            m.resyncs.len() >= 2
        })
        .await;
    assert_eq!(model.resyncs[1], 1, "same session");
    model
        .until(&mut watch, "caught up after reconnect", |m| {
            m.nodes.contains(&r1)
        })
        .await;
    // The watches set by that listing work.
    let r2 = format!("{r1}/r2");
    node(&writer, &r2).await;
    model.expect(&mut watch, created(&r2)).await;

    // A new session: listed again on it, with what changed while there was none.
    let client = warden.client().expect("a session");
    expire_session(
        &server.connect_string(),
        warden.session_id(),
        &client.session_password(),
    )
    .await
    .unwrap();
    writer.delete(&r2, None).await.unwrap();
    let r3 = format!("{root}/r3");
    node(&writer, &r3).await;
    model
        .until(&mut watch, "resync on the new session", |m| {
            m.resyncs.last().is_some_and(|g| *g >= 2)
        })
        .await;
    let listing = server_listing(&writer, &root).await;
    model
        .until(&mut watch, "caught up on the new session", |m| {
            m.nodes == listing
        })
        .await;
    let r4 = format!("{r3}/r4");
    node(&writer, &r4).await;
    model.expect(&mut watch, created(&r4)).await;
    writer.set_data(&r3, b"new", None).await.unwrap();
    model.expect(&mut watch, changed(&r3)).await;
    assert_eq!(model.nodes, server_listing(&writer, &root).await);
}
