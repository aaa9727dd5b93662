//! Resilient watches (`Warden::watch_data`, `watch_children`, `watch_tree`) against a real
//! ZooKeeper: every change reported, re-armed after each firing, kept across a server
//! restart, resynced after session expiry, removed on the server when dropped, and a slow
//! consumer that delays nobody else.
//!
//! A warden holds the watches; a separate plain client (`writer`) makes the changes, as
//! another process would.
#![cfg(feature = "testing")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use zkwarden::testing::ZkServer;
use zkwarden::warden::{ChildrenEvent, DataEvent, TreeEvent, WatchStream};
use zkwarden::{Client, ConnectionState, CreateMode, Error, Stat, Warden, WatcherType};

/// A warden with the tests' session timeout.
async fn start_warden(connect: &str) -> Warden {
    Warden::builder(connect)
        .session_timeout(SESSION_TIMEOUT)
        .start()
        .await
        .expect("start a warden")
}

/// A server, a warden on it, and a client that changes things.
async fn setup() -> (ZkServer, Warden, Client) {
    let server = start_server().await;
    let warden = start_warden(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    (server, warden, writer)
}

async fn node(client: &Client, path: &str, data: &[u8]) -> String {
    client
        .create(path, data, CreateMode::Persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e:?}"))
}

/// The next event of a watch stream, failing the test if it ends or takes too long.
async fn next<E>(stream: &mut WatchStream<E>, what: &str) -> E {
    within(what, stream.next())
        .await
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

/// Waits until `stream` ends, skipping whatever it still holds.
async fn ended<E>(stream: &mut WatchStream<E>, what: &str) {
    within(what, async { while stream.next().await.is_some() {} }).await;
}

fn names(children: &[&str]) -> Vec<String> {
    children.iter().map(|c| c.to_string()).collect()
}

/// Asserts a data event is `Changed` with `data`, returning its stat.
#[track_caller]
fn changed(event: DataEvent, data: &str) -> Stat {
    match event {
        DataEvent::Changed { data: got, stat } if got[..] == *data.as_bytes() => stat,
        other => panic!("expected Changed({data:?}), got {other:?}"),
    }
}

fn tree_paths(nodes: &BTreeMap<String, Stat>) -> Vec<String> {
    nodes.keys().cloned().collect()
}

/// Polls (there is no event to wait for) until the server holds no watch of `kind` on
/// `path` for the warden's session.
async fn server_watch_gone(warden: &Warden, path: &str, kind: WatcherType) {
    let client = warden.client().expect("the warden has a session");
    within(&format!("{kind:?} watch on {path} removed"), async {
        loop {
            match client.check_watches(path, kind).await {
                Err(Error::NoWatcher) => return,
                Ok(()) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => panic!("check_watches({path}, {kind:?}): {e:?}"),
            }
        }
    })
    .await;
}

// ----- what each kind reports ----------------------------------------------------------------

#[tokio::test]
async fn data_watch_reports_every_write_deletion_and_creation() {
    let (_server, warden, writer) = setup().await;
    let path = node(&writer, &unique_path("data"), b"v0").await;
    let mut watch = warden.watch_data(&path);
    assert_eq!(watch.path(), path);

    match next(&mut watch, "initial resync").await {
        DataEvent::Resync {
            generation: 1,
            node: Some((data, stat)),
        } => {
            assert_eq!(&data[..], b"v0");
            assert_eq!(stat.version, 0);
        }
        other => panic!("expected the initial Resync, got {other:?}"),
    }
    // One change at a time: each must be reported, so the watch is re-armed after each.
    for version in 1..=3 {
        let written = format!("v{version}");
        writer
            .set_data(&path, written.as_bytes(), None)
            .await
            .unwrap();
        let stat = changed(next(&mut watch, &written).await, &written);
        assert_eq!(stat.version, version);
    }
    writer.delete(&path, None).await.unwrap();
    assert_eq!(next(&mut watch, "deleted").await, DataEvent::Deleted);
    writer
        .create(&path, b"again", CreateMode::Persistent)
        .await
        .unwrap();
    match next(&mut watch, "created again").await {
        DataEvent::Created { data, stat } => {
            assert_eq!(&data[..], b"again");
            assert_eq!(stat.version, 0);
        }
        other => panic!("expected Created, got {other:?}"),
    }
    writer.set_data(&path, b"last", None).await.unwrap();
    changed(next(&mut watch, "write after re-creation").await, "last");
    assert_eq!(warden.metrics().live_watches, 1);
}

#[tokio::test]
async fn data_watch_on_a_missing_node_waits_for_its_creation() {
    let (_server, warden, writer) = setup().await;
    let path = unique_path("data-missing");
    // Used as a `Stream`, as combinators would.
    let mut watch = warden.watch_data(&path);
    let first = within("initial resync", StreamExt::next(&mut watch)).await;
    assert_eq!(
        first,
        Some(DataEvent::Resync {
            generation: 1,
            node: None
        })
    );
    node(&writer, &path, b"born").await;
    match next(&mut watch, "created").await {
        DataEvent::Created { data, .. } => assert_eq!(&data[..], b"born"),
        other => panic!("expected Created, got {other:?}"),
    }
    writer.set_data(&path, b"grown", None).await.unwrap();
    changed(next(&mut watch, "written").await, "grown");
}

#[tokio::test]
async fn children_watch_reports_the_list_after_every_change() {
    let (_server, warden, writer) = setup().await;
    let path = node(&writer, &unique_path("children"), b"").await;
    node(&writer, &format!("{path}/a"), b"").await;
    let mut watch = warden.watch_children(&path);

    assert_eq!(
        next(&mut watch, "initial resync").await,
        ChildrenEvent::Resync {
            generation: 1,
            children: Some(names(&["a"]))
        }
    );
    node(&writer, &format!("{path}/b"), b"").await;
    assert_eq!(
        next(&mut watch, "b added").await,
        ChildrenEvent::Changed {
            children: names(&["a", "b"])
        }
    );
    // Data changes of the node or its children are not list changes.
    writer.set_data(&path, b"x", None).await.unwrap();
    writer.delete(&format!("{path}/a"), None).await.unwrap();
    assert_eq!(
        next(&mut watch, "a removed").await,
        ChildrenEvent::Changed {
            children: names(&["b"])
        }
    );
    writer.delete(&format!("{path}/b"), None).await.unwrap();
    assert_eq!(
        next(&mut watch, "b removed").await,
        ChildrenEvent::Changed { children: vec![] }
    );
    writer.delete(&path, None).await.unwrap();
    assert_eq!(next(&mut watch, "deleted").await, ChildrenEvent::Deleted);
    node(&writer, &path, b"").await;
    assert_eq!(
        next(&mut watch, "created again").await,
        ChildrenEvent::Changed { children: vec![] }
    );
    node(&writer, &format!("{path}/c"), b"").await;
    assert_eq!(
        next(&mut watch, "c added").await,
        ChildrenEvent::Changed {
            children: names(&["c"])
        }
    );
}

#[tokio::test]
async fn tree_watch_lists_the_subtree_then_reports_changes_anywhere_in_it() {
    let (_server, warden, writer) = setup().await;
    let root = node(&writer, &unique_path("tree"), b"").await;
    let a = node(&writer, &format!("{root}/a"), b"").await;
    let x = node(&writer, &format!("{a}/x"), b"").await;
    let mut watch = warden.watch_tree(&root);

    match next(&mut watch, "initial resync").await {
        TreeEvent::Resync {
            generation: 1,
            nodes,
        } => {
            assert_eq!(tree_paths(&nodes), vec![root.clone(), a.clone(), x.clone()]);
            assert_eq!(nodes[&a].num_children, 1);
        }
        other => panic!("expected the initial Resync, got {other:?}"),
    }
    let b = node(&writer, &format!("{root}/b"), b"").await;
    let y = node(&writer, &format!("{a}/y"), b"").await;
    writer.set_data(&x, b"1", None).await.unwrap();
    writer.delete(&x, None).await.unwrap();
    writer.set_data(&root, b"r", None).await.unwrap();
    writer.delete(&y, None).await.unwrap();
    let expected = vec![
        TreeEvent::Created { path: b },
        TreeEvent::Created { path: y.clone() },
        TreeEvent::Changed { path: x.clone() },
        TreeEvent::Deleted { path: x },
        TreeEvent::Changed { path: root },
        TreeEvent::Deleted { path: y },
    ];
    for want in expected {
        assert_eq!(next(&mut watch, &format!("{want:?}")).await, want);
    }
}

#[tokio::test]
async fn unlisted_tree_watch_resyncs_empty_then_reports_changes() {
    let (_server, warden, writer) = setup().await;
    let root = node(&writer, &unique_path("tree-unlisted"), b"").await;
    let a = node(&writer, &format!("{root}/a"), b"").await;
    let mut watch = warden.watch_tree_unlisted(&root);

    assert_eq!(
        next(&mut watch, "initial resync").await,
        TreeEvent::Resync {
            generation: 1,
            nodes: Default::default(),
        }
    );
    let b = node(&writer, &format!("{a}/b"), b"").await;
    writer.set_data(&a, b"1", None).await.unwrap();
    writer.delete(&b, None).await.unwrap();
    let expected = vec![
        TreeEvent::Created { path: b.clone() },
        TreeEvent::Changed { path: a },
        TreeEvent::Deleted { path: b },
    ];
    for want in expected {
        assert_eq!(next(&mut watch, &format!("{want:?}")).await, want);
    }
}

#[tokio::test]
async fn tree_watch_on_a_missing_root_sees_it_created() {
    let (_server, warden, writer) = setup().await;
    let root = unique_path("tree-missing");
    let mut watch = warden.watch_tree(&root);
    assert_eq!(
        next(&mut watch, "initial resync").await,
        TreeEvent::Resync {
            generation: 1,
            nodes: BTreeMap::new()
        }
    );
    node(&writer, &root, b"").await;
    let kid = node(&writer, &format!("{root}/kid"), b"").await;
    assert_eq!(
        next(&mut watch, "root created").await,
        TreeEvent::Created { path: root }
    );
    assert_eq!(
        next(&mut watch, "kid created").await,
        TreeEvent::Created { path: kid }
    );
}

// ----- session expiry and server restart --------------------------------------------------

/// The nodes of the expiry and restart tests: `root` holds a data node `d` and a
/// directory `dir` with a child `a`. The tree watch follows `root`, the children watch `dir`
/// and the data watch `d`: servers before 3.9 keep one watch mode per path and session, so
/// a tree watch and another watch of the same warden must not share a path.
struct Layout {
    root: String,
    d: String,
    dir: String,
    a: String,
}

async fn layout(writer: &Client, prefix: &str) -> Layout {
    let root = node(writer, &unique_path(prefix), b"").await;
    let d = node(writer, &format!("{root}/d"), b"d0").await;
    let dir = node(writer, &format!("{root}/dir"), b"").await;
    let a = node(writer, &format!("{dir}/a"), b"").await;
    Layout { root, d, dir, a }
}

#[tokio::test]
async fn watches_resync_on_a_new_session_after_expiry() {
    let (server, warden, writer) = setup().await;
    let Layout { root, d, dir, a } = layout(&writer, "expiry").await;
    // Owned by the warden's first session: the expiry deletes it, and only a resync can tell.
    let eph = warden
        .create(&format!("{dir}/eph"), b"")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();

    let mut data = warden.watch_data(&d);
    let mut children = warden.watch_children(&dir);
    let mut tree = warden.watch_tree(&root);
    assert!(matches!(
        next(&mut data, "data resync").await,
        DataEvent::Resync { generation: 1, node: Some((bytes, _)) } if bytes[..] == *b"d0"
    ));
    assert_eq!(
        next(&mut children, "children resync").await,
        ChildrenEvent::Resync {
            generation: 1,
            children: Some(names(&["a", "eph"]))
        }
    );
    match next(&mut tree, "tree resync").await {
        TreeEvent::Resync {
            generation: 1,
            nodes,
        } => assert_eq!(
            tree_paths(&nodes),
            vec![root.clone(), d.clone(), dir.clone(), a.clone(), eph.clone()]
        ),
        other => panic!("expected the initial Resync, got {other:?}"),
    }

    let client = warden.client().unwrap();
    zkwarden::testing::expire_session(
        &server.connect_string(),
        warden.session_id(),
        &client.session_password(),
    )
    .await
    .unwrap();
    // Made while the warden has no live session: no watch of the old session can see it.
    writer.set_data(&d, b"d1", None).await.unwrap();

    // Each stream resyncs on the new session with what is there now.
    match next(&mut data, "data resync after expiry").await {
        DataEvent::Resync {
            generation,
            node: Some((bytes, _)),
        } => {
            assert!(generation > 1, "generation {generation}");
            // The write may land just after the resync's read; then it follows as a change.
            if bytes[..] != *b"d1" {
                assert_eq!(&bytes[..], b"d0");
                changed(next(&mut data, "d1 after the resync").await, "d1");
            }
        }
        other => panic!("expected a Resync, got {other:?}"),
    }
    match next(&mut children, "children resync after expiry").await {
        ChildrenEvent::Resync {
            generation,
            children,
        } => {
            assert!(generation > 1, "generation {generation}");
            assert_eq!(children, Some(names(&["a"])), "the ephemeral went");
        }
        other => panic!("expected a Resync, got {other:?}"),
    }
    // Expiring the session takes its connection away first; the warden's client may get back
    // in before the session ends, and the tree relists after such a reconnection too.
    let nodes = within("tree resync after expiry", async {
        loop {
            match tree.next().await.expect("tree stream") {
                TreeEvent::Resync { generation: 1, .. } => continue,
                TreeEvent::Resync { nodes, .. } => return nodes,
                other => panic!("expected a Resync, got {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(
        tree_paths(&nodes),
        vec![root.clone(), d.clone(), dir.clone(), a]
    );
    assert!(warden.generation() > 1);
    assert_eq!(warden.metrics().live_watches, 3);

    // And later changes still arrive, on the new session.
    let b = node(&writer, &format!("{dir}/b"), b"").await;
    writer.set_data(&d, b"d2", None).await.unwrap();
    changed(next(&mut data, "d2").await, "d2");
    assert_eq!(
        next(&mut children, "b added").await,
        ChildrenEvent::Changed {
            children: names(&["a", "b"])
        }
    );
    // The tree may repeat the d1 write if its notification raced the listing.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = next(&mut tree, "tree changes after expiry").await;
        if event == (TreeEvent::Changed { path: d.clone() }) && seen.is_empty() {
            continue;
        }
        seen.push(event);
    }
    assert_eq!(
        seen,
        vec![
            TreeEvent::Created { path: b },
            TreeEvent::Changed { path: d },
        ]
    );
}

/// Session timeout for the restart test, generous: the session must outlive a JVM restart on
/// a busy machine, and ZooKeeper 3.8 may leave a handshake that arrives while it starts up
/// hanging (a NullPointerException before its database is loaded), which costs the client a
/// connect attempt's full budget.
const RESTART_SESSION_TIMEOUT: Duration = Duration::from_secs(40);

#[tokio::test]
async fn watches_survive_a_server_restart_within_the_session() {
    init_tracing();
    let mut server = blocking(|| {
        ZkServer::builder()
            .max_session_timeout(RESTART_SESSION_TIMEOUT)
            .start()
    })
    .await
    .expect("start ZooKeeper (run scripts/install-zookeeper.sh)");
    let warden = Warden::builder(server.connect_string())
        .session_timeout(RESTART_SESSION_TIMEOUT)
        .start()
        .await
        .unwrap();
    let session = warden.session_id();
    let Layout { root, d, dir, a } = {
        let writer = connect(&server.connect_string()).await;
        let layout = layout(&writer, "restart").await;
        writer.close().await.unwrap();
        layout
    };
    let mut data = warden.watch_data(&d);
    let mut children = warden.watch_children(&dir);
    let mut tree = warden.watch_tree(&root);
    for (what, first) in [
        (
            "data",
            format!("{:?}", next(&mut data, "data resync").await),
        ),
        (
            "children",
            format!("{:?}", next(&mut children, "children resync").await),
        ),
        (
            "tree",
            format!("{:?}", next(&mut tree, "tree resync").await),
        ),
    ] {
        assert!(
            first.starts_with("Resync { generation: 1"),
            "{what}: {first}"
        );
    }

    let mut events = warden.events();
    server = blocking(move || {
        server.stop();
        server
    })
    .await;
    within("Suspended", async {
        while events.next().await.map(|e| e.state) != Some(ConnectionState::Suspended) {}
    })
    .await;
    server = blocking(move || {
        server.restart().expect("restart ZooKeeper");
        server
    })
    .await;
    let back = within("Reconnected", async {
        loop {
            let event = events.next().await.expect("warden events");
            if event.state == ConnectionState::Reconnected {
                return event;
            }
        }
    })
    .await;
    assert_eq!(back.generation, 1, "same session");
    assert_eq!(back.session_id, session);

    // The server replays nothing a persistent watch missed while disconnected, so the tree
    // lists itself again, on the same session.
    match next(&mut tree, "tree relisted after the reconnection").await {
        TreeEvent::Resync {
            generation: 1,
            nodes,
        } => assert_eq!(
            tree_paths(&nodes),
            vec![root.clone(), d.clone(), dir.clone(), a]
        ),
        other => panic!("expected a same-session Resync, got {other:?}"),
    }

    let writer = connect(&server.connect_string()).await;
    writer.set_data(&d, b"d1", None).await.unwrap();
    let b = node(&writer, &format!("{dir}/b"), b"").await;
    // No resync on the one-shot streams: their watches were kept by SetWatches.
    changed(next(&mut data, "d1 after restart").await, "d1");
    assert_eq!(
        next(&mut children, "b added after restart").await,
        ChildrenEvent::Changed {
            children: names(&["a", "b"])
        }
    );
    assert_eq!(
        next(&mut tree, "d written after restart").await,
        TreeEvent::Changed { path: d }
    );
    assert_eq!(
        next(&mut tree, "b created after restart").await,
        TreeEvent::Created { path: b }
    );
    assert_eq!(warden.generation(), 1);
}

// ----- removal, closing, slow consumers -----------------------------------------------------

#[tokio::test]
async fn dropping_a_stream_removes_its_server_watch() {
    let (_server, warden, writer) = setup().await;
    let path = node(&writer, &unique_path("drop"), b"").await;
    // A separate root for the tree: the server keeps one data-watch mode per path.
    let root = node(&writer, &unique_path("drop-tree"), b"").await;
    let mut data = warden.watch_data(&path);
    let mut children = warden.watch_children(&path);
    let mut tree = warden.watch_tree(&root);
    next(&mut data, "data resync").await;
    next(&mut children, "children resync").await;
    next(&mut tree, "tree resync").await;
    assert_eq!(warden.metrics().live_watches, 3);
    let client = warden.client().unwrap();
    client
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();
    client
        .check_watches(&path, WatcherType::Children)
        .await
        .unwrap();
    client.check_watches(&root, WatcherType::Any).await.unwrap();

    drop(data);
    assert_eq!(warden.metrics().live_watches, 2);
    server_watch_gone(&warden, &path, WatcherType::Data).await;
    client
        .check_watches(&path, WatcherType::Children)
        .await
        .expect("the children watch is still there");

    drop(children);
    server_watch_gone(&warden, &path, WatcherType::Children).await;
    drop(tree);
    server_watch_gone(&warden, &root, WatcherType::Any).await;
    assert_eq!(warden.metrics().live_watches, 0);

    // While the node is missing the watch is an exists watch; dropping removes that too.
    let missing = unique_path("drop-missing");
    let mut data = warden.watch_data(&missing);
    assert_eq!(
        next(&mut data, "missing resync").await,
        DataEvent::Resync {
            generation: 1,
            node: None
        }
    );
    client
        .check_watches(&missing, WatcherType::Data)
        .await
        .unwrap();
    drop(data);
    server_watch_gone(&warden, &missing, WatcherType::Data).await;
    assert_eq!(warden.metrics().live_watches, 0);
}

#[tokio::test]
async fn streams_end_when_the_warden_closes() {
    let (_server, warden, writer) = setup().await;
    let path = node(&writer, &unique_path("close"), b"").await;
    let mut data = warden.watch_data(&path);
    let mut children = warden.watch_children(&path);
    let mut tree = warden.watch_tree(&path);
    next(&mut data, "data resync").await;
    warden.close().await.unwrap();
    ended(&mut data, "data stream ends").await;
    ended(&mut children, "children stream ends").await;
    ended(&mut tree, "tree stream ends").await;

    // The streams do not keep a warden open: dropping its last handle ends them too.
    let warden = start_warden(&_server.connect_string()).await;
    let mut data = warden.watch_data(&path);
    next(&mut data, "data resync").await;
    drop(warden);
    ended(&mut data, "data stream ends with the warden").await;
}

#[tokio::test]
async fn an_invalid_path_ends_the_stream_at_once() {
    let (_server, warden, _writer) = setup().await;
    let mut data = warden.watch_data("no-leading-slash");
    assert_eq!(within("invalid data watch", data.next()).await, None);
    let mut tree = warden.watch_tree("/trailing/");
    assert_eq!(within("invalid tree watch", tree.next()).await, None);
}

#[tokio::test]
async fn a_slow_consumer_delays_only_its_own_watch() {
    let (_server, warden, writer) = setup().await;
    let slow_path = node(&writer, &unique_path("slow"), b"0").await;
    let fast_path = node(&writer, &unique_path("fast"), b"0").await;
    let mut slow = warden.watch_data(&slow_path);
    let mut fast = warden.watch_data(&fast_path);
    next(&mut slow, "slow resync").await;
    next(&mut fast, "fast resync").await;

    // Flood the slow watch while nobody reads it (requests are sent as they are made).
    const WRITES: i32 = 500;
    let writes: Vec<_> = (1..=WRITES)
        .map(|i| writer.set_data(&slow_path, i.to_string().as_bytes(), None))
        .collect();
    for write in writes {
        write.await.unwrap();
    }

    // The other watch keeps delivering, every time.
    for round in 1..=10 {
        let written = format!("fast{round}");
        writer
            .set_data(&fast_path, written.as_bytes(), None)
            .await
            .unwrap();
        changed(next(&mut fast, &written).await, &written);
    }

    // The slow one catches up with the latest state, in order, whenever it reads.
    let mut last = 0;
    while last < WRITES {
        let stat = match next(&mut slow, "slow stream catching up").await {
            DataEvent::Changed { stat, .. } => stat,
            other => panic!("expected Changed, got {other:?}"),
        };
        assert!(stat.version > last, "versions go forward");
        last = stat.version;
    }
}
