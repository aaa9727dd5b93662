//! Watches against a real ZooKeeper 3.8: which event each kind of watch reports and how often,
//! persistent and recursive watches, removal (by dropping a handle or by `remove_watches`),
//! ordering against replies, the end of the session, and survival across a server restart.
//!
//! One client (`watcher`) holds the watches; a second client (`writer`) makes the changes, as
//! another process would.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::watching::*;
use common::*;
use futures_util::FutureExt;
use zkwarden::testing::ZkServer;
use zkwarden::{
    AddWatchMode, Client, Error, EventType, PersistentWatcher, SessionState, WatcherType,
};

/// How long a stream must stay silent for "no further event" checks. Only used where there is
/// no later event to order against.
const QUIET: Duration = Duration::from_millis(300);

/// Asserts that the stream delivers nothing for [`QUIET`].
async fn assert_quiet(stream: &mut PersistentWatcher, what: &str) {
    if let Ok(event) = tokio::time::timeout(QUIET, stream.next()).await {
        panic!("{what}: unexpected {event:?}");
    }
}

/// Polls `check_watches` until the server says it holds no such watch. Removal after a drop
/// is asynchronous (the handle only sends a message to the session task), so there is no
/// event to await; the loop is bounded by [`PATIENCE`].
async fn wait_for_no_watcher(client: &Client, path: &str, kind: WatcherType) {
    within(
        &format!("server forgets the {kind:?} watch on {path}"),
        async {
            loop {
                match client.check_watches(path, kind).await {
                    Err(Error::NoWatcher) => return,
                    Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(e) => panic!("check_watches({path}, {kind:?}) failed: {e:?}"),
                }
            }
        },
    )
    .await
}

// ----- one-shot watches: right event, fires once ----------------------------------------

#[tokio::test]
async fn data_watch_fires_once_on_set_data() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("data-set"), b"v1").await;

    let (data, stat, watch) = watcher.get_data_and_watch(&path).await.unwrap();
    assert_eq!(&data[..], b"v1");
    assert_eq!(stat.version, 0);
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();

    let written = writer.set_data(&path, b"v2", None).await.unwrap();
    let event = fired(watch, "data watch on set_data").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);
    // ZooKeeper 3.8 stamps notifications with zxid -1; newer servers send the change's zxid.
    assert!(
        event.zxid == -1 || event.zxid == written.mzxid,
        "event zxid {} (write was {})",
        event.zxid,
        written.mzxid
    );

    // One-shot: the server dropped it when it fired, and a second change leaves it dropped.
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    writer.set_data(&path, b"v3", None).await.unwrap();
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn data_watch_fires_once_on_delete() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("data-delete"), b"").await;

    let (_, _, watch) = watcher.get_data_and_watch(&path).await.unwrap();
    writer.delete(&path, None).await.unwrap();
    let event = fired(watch, "data watch on delete").await;
    assert_eq!(event.event_type, EventType::NodeDeleted);
    assert_eq!(event.path, path);
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn exists_watch_on_a_missing_node_fires_once_on_create() {
    let (_server, watcher, writer) = setup().await;
    let path = unique_path("exists-missing");

    let (stat, watch) = watcher.exists_and_watch(&path).await.unwrap();
    assert_eq!(stat, None);
    // The server keeps an exists watch on a missing node as a data watch.
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();

    node(&writer, &path, b"new").await;
    let event = fired(watch, "exists watch on create").await;
    assert_eq!(event.event_type, EventType::NodeCreated);
    assert_eq!(event.path, path);
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    writer.delete(&path, None).await.unwrap();
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn exists_watch_on_an_existing_node_fires_once_on_data_change() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("exists-present"), b"v1").await;

    let (stat, watch) = watcher.exists_and_watch(&path).await.unwrap();
    assert_eq!(stat.expect("node exists").data_length, 2);
    writer.set_data(&path, b"v2", None).await.unwrap();
    let event = fired(watch, "exists watch on set_data").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn child_watches_fire_once_on_child_create_and_child_delete() {
    let (_server, watcher, writer) = setup().await;
    let parent = node(&writer, &unique_path("children"), b"").await;
    let child = format!("{parent}/kid");

    // get_children: a child appears.
    let (children, watch) = watcher.get_children_and_watch(&parent).await.unwrap();
    assert!(children.is_empty());
    watcher
        .check_watches(&parent, WatcherType::Children)
        .await
        .unwrap();
    node(&writer, &child, b"").await;
    let event = fired(watch, "get_children watch on child create").await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    assert_eq!(event.path, parent);
    assert_eq!(
        watcher.check_watches(&parent, WatcherType::Children).await,
        Err(Error::NoWatcher)
    );

    // get_children: the child goes.
    let (children, watch) = watcher.get_children_and_watch(&parent).await.unwrap();
    assert_eq!(children, vec!["kid".to_owned()]);
    writer.delete(&child, None).await.unwrap();
    let event = fired(watch, "get_children watch on child delete").await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    assert_eq!(event.path, parent);
    assert_eq!(
        watcher.check_watches(&parent, WatcherType::Children).await,
        Err(Error::NoWatcher)
    );

    // get_children2: a child appears.
    let (children, stat, watch) = watcher.get_children2_and_watch(&parent).await.unwrap();
    assert!(children.is_empty());
    assert_eq!(stat.num_children, 0);
    node(&writer, &child, b"").await;
    let event = fired(watch, "get_children2 watch on child create").await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    assert_eq!(event.path, parent);
    assert_eq!(
        watcher.check_watches(&parent, WatcherType::Children).await,
        Err(Error::NoWatcher)
    );

    // get_children2: the child goes.
    let (children, stat, watch) = watcher.get_children2_and_watch(&parent).await.unwrap();
    assert_eq!(children, vec!["kid".to_owned()]);
    assert_eq!(stat.num_children, 1);
    writer.delete(&child, None).await.unwrap();
    let event = fired(watch, "get_children2 watch on child delete").await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    assert_eq!(event.path, parent);
    assert_eq!(
        watcher.check_watches(&parent, WatcherType::Children).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn child_watch_fires_node_deleted_when_its_node_goes() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("children-gone"), b"").await;

    let (_, watch) = watcher.get_children_and_watch(&path).await.unwrap();
    let (_, _, watch2) = watcher.get_children2_and_watch(&path).await.unwrap();
    writer.delete(&path, None).await.unwrap();
    for (watch, what) in [(watch, "get_children"), (watch2, "get_children2")] {
        let event = fired(watch, what).await;
        assert_eq!(event.event_type, EventType::NodeDeleted, "{what}");
        assert_eq!(event.path, path, "{what}");
    }
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Children).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn several_local_watchers_on_one_path_all_fire_on_one_change() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("several"), b"v1").await;

    let (_, _, first) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, _, second) = watcher.get_data_and_watch(&path).await.unwrap();
    // An exists watch shares the server's one data watch with them.
    let (_, third) = watcher.exists_and_watch(&path).await.unwrap();

    writer.set_data(&path, b"v2", None).await.unwrap();
    let first = fired(first, "first get_data watch").await;
    let second = fired(second, "second get_data watch").await;
    let third = fired(third, "exists watch").await;
    assert_eq!(first.event_type, EventType::NodeDataChanged);
    assert_eq!(first.path, path);
    // All three were told about the same notification.
    assert_eq!(second, first);
    assert_eq!(third, first);
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
}

// ----- persistent and recursive watches ---------------------------------------------------

#[tokio::test]
async fn persistent_watch_reports_its_node_and_its_child_list_only() {
    let (_server, watcher, writer) = setup().await;
    let path = unique_path("persistent");
    let child = format!("{path}/c");
    let grandchild = format!("{child}/g");

    // The node need not exist yet.
    let mut stream = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();

    node(&writer, &path, b"").await;
    writer.set_data(&path, b"1", None).await.unwrap();
    writer.set_data(&path, b"2", None).await.unwrap();
    writer.set_data(&path, b"3", None).await.unwrap();
    node(&writer, &child, b"").await;
    // Below the node's own child list: none of these may be reported...
    writer.set_data(&child, b"x", None).await.unwrap();
    node(&writer, &grandchild, b"").await;
    writer.set_data(&grandchild, b"y", None).await.unwrap();
    writer.delete(&grandchild, None).await.unwrap();
    // ...which this change at the node proves, since events arrive in order.
    writer.set_data(&path, b"4", None).await.unwrap();
    writer.delete(&child, None).await.unwrap();
    writer.delete(&path, None).await.unwrap();
    // It stays after the node is gone and reports the node coming back.
    node(&writer, &path, b"again").await;

    let events = next_events(&mut stream, 9, "persistent watch").await;
    assert_eq!(
        events,
        vec![
            ev(EventType::NodeCreated, &path),
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeChildrenChanged, &path),
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeChildrenChanged, &path),
            ev(EventType::NodeDeleted, &path),
            ev(EventType::NodeCreated, &path),
        ]
    );
    watcher
        .check_watches(&path, WatcherType::Any)
        .await
        .unwrap();
}

#[tokio::test]
async fn recursive_watch_reports_the_whole_subtree_in_order() {
    let (_server, watcher, writer) = setup().await;
    let root = node(&writer, &unique_path("recursive"), b"").await;
    let a = format!("{root}/a");
    let b = format!("{a}/b");
    let c = format!("{b}/c");
    let done = format!("{root}/done");

    let mut stream = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    for path in [&a, &b, &c] {
        node(&writer, path, b"").await;
    }
    for path in [&root, &a, &b, &c] {
        writer.set_data(path, b"changed", None).await.unwrap();
    }
    for path in [&c, &b, &a] {
        writer.delete(path, None).await.unwrap();
    }
    // A last event to order against: anything unexpected (such as a NodeChildrenChanged for
    // the creates and deletes above) would arrive before it.
    node(&writer, &done, b"").await;

    let events = next_events(&mut stream, 11, "recursive watch").await;
    assert_eq!(
        events,
        vec![
            ev(EventType::NodeCreated, &a),
            ev(EventType::NodeCreated, &b),
            ev(EventType::NodeCreated, &c),
            ev(EventType::NodeDataChanged, &root),
            ev(EventType::NodeDataChanged, &a),
            ev(EventType::NodeDataChanged, &b),
            ev(EventType::NodeDataChanged, &c),
            ev(EventType::NodeDeleted, &c),
            ev(EventType::NodeDeleted, &b),
            ev(EventType::NodeDeleted, &a),
            ev(EventType::NodeCreated, &done),
        ]
    );
    // A sibling that merely shares the name prefix is outside the subtree.
    let sibling = format!("{root}-sibling");
    node(&writer, &sibling, b"").await;
    writer.set_data(&root, b"last", None).await.unwrap();
    assert_eq!(
        next_events(&mut stream, 1, "recursive watch after sibling").await,
        vec![ev(EventType::NodeDataChanged, &root)]
    );
}

// ----- removal by dropping the handle -----------------------------------------------------

#[tokio::test]
async fn dropping_a_oneshot_watcher_removes_it_from_the_server() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("drop-oneshot"), b"").await;
    let missing = unique_path("drop-exists");

    let (_, _, data_watch) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, child_watch) = watcher.get_children_and_watch(&path).await.unwrap();
    let (stat, exists_watch) = watcher.exists_and_watch(&missing).await.unwrap();
    assert_eq!(stat, None);
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();
    watcher
        .check_watches(&path, WatcherType::Children)
        .await
        .unwrap();
    watcher
        .check_watches(&missing, WatcherType::Data)
        .await
        .unwrap();

    drop(data_watch);
    wait_for_no_watcher(&watcher, &path, WatcherType::Data).await;
    // Only the data watch went: the child watch on the same path stays.
    watcher
        .check_watches(&path, WatcherType::Children)
        .await
        .unwrap();

    drop(child_watch);
    wait_for_no_watcher(&watcher, &path, WatcherType::Children).await;

    // An exists watch on a missing node is removed too.
    drop(exists_watch);
    wait_for_no_watcher(&watcher, &missing, WatcherType::Data).await;
}

#[tokio::test]
async fn dropping_one_of_two_watchers_keeps_the_server_watch_for_the_other() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("drop-one"), b"v1").await;

    let (_, _, dropped) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, _, kept) = watcher.get_data_and_watch(&path).await.unwrap();
    drop(dropped);
    // The drop message is queued before this request, so the task has seen it by the time
    // the reply comes; the server must still hold the watch.
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();

    writer.set_data(&path, b"v2", None).await.unwrap();
    let event = fired(kept, "remaining watcher").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);
}

#[tokio::test]
async fn dropping_a_persistent_watcher_removes_it_from_the_server() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("drop-persistent"), b"").await;
    let root = node(&writer, &unique_path("drop-recursive"), b"").await;

    let persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    watcher
        .check_watches(&path, WatcherType::Any)
        .await
        .unwrap();
    watcher
        .check_watches(&root, WatcherType::Any)
        .await
        .unwrap();

    drop(persistent);
    wait_for_no_watcher(&watcher, &path, WatcherType::Any).await;
    // The other path's watch is untouched.
    watcher
        .check_watches(&root, WatcherType::Any)
        .await
        .unwrap();

    drop(recursive);
    wait_for_no_watcher(&watcher, &root, WatcherType::Any).await;

    // Dropping and at once watching the same path again: the removal goes out before the new
    // request, so the new watch stands.
    let old = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    drop(old);
    let mut again = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    watcher
        .check_watches(&path, WatcherType::Any)
        .await
        .unwrap();
    writer.set_data(&path, b"x", None).await.unwrap();
    assert_eq!(
        next_events(&mut again, 1, "persistent watch added again").await,
        vec![ev(EventType::NodeDataChanged, &path)]
    );
}

#[tokio::test]
async fn dropping_a_persistent_watcher_spares_a_oneshot_on_the_same_path() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("drop-shared"), b"v1").await;

    let persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (_, _, oneshot) = watcher.get_data_and_watch(&path).await.unwrap();
    // A 3.8 server can only remove a persistent watch as "any", which would take the one-shot
    // with it; the client must leave the server's watch alone.
    drop(persistent);
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();

    writer.set_data(&path, b"v2", None).await.unwrap();
    let event = fired(oneshot, "one-shot after its neighbour was dropped").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);
}

#[tokio::test]
async fn cancelling_a_watching_read_before_its_reply_leaves_no_watch() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("cancelled"), b"").await;
    let root = node(&writer, &unique_path("cancelled-recursive"), b"").await;

    // Each request is queued when called; dropping the future drops its watcher before the
    // server has answered.
    drop(watcher.get_data_and_watch(&path));
    drop(watcher.get_children_and_watch(&path));
    drop(watcher.add_watch(&root, AddWatchMode::PersistentRecursive));
    wait_for_no_watcher(&watcher, &path, WatcherType::Any).await;
    wait_for_no_watcher(&watcher, &root, WatcherType::Any).await;

    // A watch set afterwards on the same path works normally.
    let mut stream = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    writer.set_data(&root, b"x", None).await.unwrap();
    assert_eq!(
        next_events(&mut stream, 1, "recursive watch set after a cancelled one").await,
        vec![ev(EventType::NodeDataChanged, &root)]
    );
}

#[tokio::test]
async fn dropping_an_old_watcher_spares_a_new_one_still_in_flight() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("renew"), b"v1").await;
    let root = node(&writer, &unique_path("renew-recursive"), b"").await;

    // Re-arming: the new watch is requested before the old handle goes, so the removal the
    // drop causes would reach the server after the new request.
    let (_, _, old) = watcher.get_data_and_watch(&path).await.unwrap();
    let renewed = watcher.get_data_and_watch(&path);
    drop(old);
    let (_, _, new) = renewed.await.unwrap();
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();

    let old_stream = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let renewed = watcher.add_watch(&root, AddWatchMode::PersistentRecursive);
    drop(old_stream);
    let mut new_stream = renewed.await.unwrap();
    watcher
        .check_watches(&root, WatcherType::Any)
        .await
        .unwrap();

    writer.set_data(&path, b"v2", None).await.unwrap();
    writer.set_data(&root, b"x", None).await.unwrap();
    let event = fired(new, "renewed one-shot").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);
    assert_eq!(
        next_events(&mut new_stream, 1, "renewed recursive watch").await,
        vec![ev(EventType::NodeDataChanged, &root)]
    );
}

#[tokio::test]
async fn dropping_a_oneshot_spares_a_persistent_watch_on_the_same_path() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("shared-persistent"), b"").await;
    let root = node(&writer, &unique_path("shared-recursive"), b"").await;

    // The server keeps one entry per path and session for data watches of every mode, so
    // removing the one-shot's "data watch" would also strip the persistent watches.
    let (_, _, oneshot) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, child_oneshot) = watcher.get_children_and_watch(&path).await.unwrap();
    let mut persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (_, _, root_oneshot) = watcher.get_data_and_watch(&root).await.unwrap();
    let mut recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    drop(oneshot);
    drop(child_oneshot);
    drop(root_oneshot);
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();
    watcher
        .check_watches(&path, WatcherType::Children)
        .await
        .unwrap();
    watcher
        .check_watches(&root, WatcherType::Data)
        .await
        .unwrap();

    writer.set_data(&path, b"x", None).await.unwrap();
    node(&writer, &format!("{path}/kid"), b"").await;
    writer.set_data(&root, b"x", None).await.unwrap();
    assert_eq!(
        next_events(&mut persistent, 2, "persistent watch").await,
        vec![
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeChildrenChanged, &path),
        ]
    );
    assert_eq!(
        next_events(&mut recursive, 1, "recursive watch").await,
        vec![ev(EventType::NodeDataChanged, &root)]
    );
}

// ----- removal by remove_watches ------------------------------------------------------------

#[tokio::test]
async fn remove_data_watches_resolves_pending_data_watchers() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("remove-data"), b"").await;

    let (_, _, data_watch) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, exists_watch) = watcher.exists_and_watch(&path).await.unwrap();
    let (_, child_watch) = watcher.get_children_and_watch(&path).await.unwrap();

    watcher
        .remove_watches(&path, WatcherType::Data)
        .await
        .unwrap();
    for (watch, what) in [(data_watch, "get_data"), (exists_watch, "exists")] {
        let event = fired(watch, what).await;
        assert_eq!(event.event_type, EventType::DataWatchRemoved, "{what}");
        assert_eq!(event.path, path, "{what}");
        assert_eq!(event.zxid, -1, "{what}");
    }
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );

    // The child watch was not touched: it is still pending and still on the server.
    let mut child_watch = child_watch;
    assert!((&mut child_watch).now_or_never().is_none());
    watcher
        .check_watches(&path, WatcherType::Children)
        .await
        .unwrap();
    watcher
        .remove_watches(&path, WatcherType::Children)
        .await
        .unwrap();
    let event = fired(child_watch, "child watch").await;
    assert_eq!(event.event_type, EventType::ChildWatchRemoved);
    assert_eq!(event.path, path);
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Any).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn remove_any_watches_ends_a_persistent_stream() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("remove-any"), b"").await;

    let mut stream = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    watcher
        .remove_watches(&path, WatcherType::Any)
        .await
        .unwrap();
    let removed = next_event(&mut stream, "removal notice").await;
    assert_eq!(removed.event_type, EventType::PersistentWatchRemoved);
    assert_eq!(removed.path, path);
    // Nothing is left to feed the stream.
    assert_eq!(within("stream end", stream.next()).await, None);
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Any).await,
        Err(Error::NoWatcher)
    );
}

#[tokio::test]
async fn remove_persistent_watches_is_unimplemented_on_3_8_and_removes_nothing() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("remove-persistent"), b"").await;

    let mut stream = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    for kind in [WatcherType::Persistent, WatcherType::PersistentRecursive] {
        assert_eq!(
            watcher.remove_watches(&path, kind).await,
            Err(Error::Unimplemented),
            "{kind:?}"
        );
    }
    // The session survived the refusal, and the watch is intact on both sides.
    watcher
        .check_watches(&path, WatcherType::Any)
        .await
        .unwrap();
    writer.set_data(&path, b"still", None).await.unwrap();
    assert_eq!(
        next_events(&mut stream, 1, "persistent watch after the refusal").await,
        vec![ev(EventType::NodeDataChanged, &path)]
    );
}

#[tokio::test]
async fn remove_watches_without_a_watch_is_no_watcher() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("remove-none"), b"").await;

    for kind in [WatcherType::Data, WatcherType::Children, WatcherType::Any] {
        assert_eq!(
            watcher.remove_watches(&path, kind).await,
            Err(Error::NoWatcher),
            "{kind:?}"
        );
    }
    // A watch of another kind does not count.
    let (_, _, data_watch) = watcher.get_data_and_watch(&path).await.unwrap();
    assert_eq!(
        watcher.remove_watches(&path, WatcherType::Children).await,
        Err(Error::NoWatcher)
    );
    let mut data_watch = data_watch;
    assert!((&mut data_watch).now_or_never().is_none());
    // A path that does not exist at all has no watches either.
    assert_eq!(
        watcher
            .remove_watches(&unique_path("remove-missing"), WatcherType::Any)
            .await,
        Err(Error::NoWatcher)
    );
}

// ----- ordering, session end, restart ---------------------------------------------------------

#[tokio::test]
async fn watch_event_is_delivered_before_a_later_read_reply() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("ordering"), b"0").await;

    for round in 1..=50u32 {
        let (_, _, watch) = watcher.get_data_and_watch(&path).await.unwrap();
        let written = round.to_string();
        writer
            .set_data(&path, written.as_bytes(), None)
            .await
            .unwrap();
        // The write is done; this read's reply comes after the notification on the socket.
        let (data, stat) = watcher.get_data(&path).await.unwrap();
        assert_eq!(&data[..], written.as_bytes(), "round {round}");
        assert_eq!(stat.version, round as i32, "round {round}");
        match watch.now_or_never() {
            Some(Ok(event)) => {
                assert_eq!(
                    event.event_type,
                    EventType::NodeDataChanged,
                    "round {round}"
                );
                assert_eq!(event.path, path, "round {round}");
            }
            other => panic!("round {round}: watch not resolved before the reply: {other:?}"),
        }
    }
}

#[tokio::test]
async fn closing_the_session_ends_every_watch() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("close"), b"").await;
    let missing = unique_path("close-missing");

    let (_, _, data_watch) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, child_watch) = watcher.get_children_and_watch(&path).await.unwrap();
    let (_, exists_watch) = watcher.exists_and_watch(&missing).await.unwrap();
    let mut persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let mut recursive = watcher
        .add_watch(&path, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    watcher.close().await.unwrap();
    assert_eq!(watcher.session_state(), SessionState::Closed);
    for (watch, what) in [
        (data_watch, "data"),
        (child_watch, "child"),
        (exists_watch, "exists"),
    ] {
        assert_eq!(
            within(what, watch).await,
            Err(Error::Closed),
            "{what} watch"
        );
    }
    assert_eq!(within("persistent end", persistent.next()).await, None);
    assert_eq!(within("recursive end", recursive.next()).await, None);

    // Changes after the close reach nobody (the streams stay ended).
    writer.set_data(&path, b"late", None).await.unwrap();
    assert_eq!(persistent.next().await, None);
}

/// Session timeout for the restart test: a JVM restart on a machine busy with many test
/// servers can take far longer than [`SESSION_TIMEOUT`] (20 s was seen on two loaded cores),
/// and the session must outlive it.
const RESTART_SESSION_TIMEOUT: Duration = Duration::from_secs(60);

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
    let watcher = Client::builder(server.connect_string())
        .session_timeout(RESTART_SESSION_TIMEOUT)
        .connect()
        .await
        .unwrap();
    assert_eq!(watcher.negotiated_timeout(), Some(RESTART_SESSION_TIMEOUT));
    let mut states = watcher.state();
    let session = watcher.session_id();
    // Separate nodes, so each watch is restored on its own (the server merges watches of
    // different modes on one path).
    let (data_node, parent, root) = {
        let writer = connect(&server.connect_string()).await;
        let data_node = node(&writer, &unique_path("restart-data"), b"v1").await;
        let parent = node(&writer, &unique_path("restart-parent"), b"").await;
        let root = node(&writer, &unique_path("restart-root"), b"").await;
        node(&writer, &format!("{root}/kid"), b"").await;
        writer.close().await.unwrap();
        (data_node, parent, root)
    };
    let kid = format!("{root}/kid");

    let (_, _, oneshot) = watcher.get_data_and_watch(&data_node).await.unwrap();
    let (_, child_watch) = watcher.get_children_and_watch(&parent).await.unwrap();
    let mut recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    server = blocking(move || {
        server.stop();
        server
    })
    .await;
    wait_for_state(&mut states, "Disconnected", |s| {
        s == SessionState::Disconnected
    })
    .await;
    server = blocking(move || {
        server.restart().expect("restart ZooKeeper");
        server
    })
    .await;
    wait_for_state(&mut states, "Connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(watcher.session_id(), session, "same session after restart");

    // SetWatches2 re-registered all three on the restarted server.
    let writer = connect(&server.connect_string()).await;
    writer.set_data(&data_node, b"v2", None).await.unwrap();
    node(&writer, &format!("{parent}/new"), b"").await;
    writer.set_data(&kid, b"k", None).await.unwrap();
    writer.set_data(&root, b"r", None).await.unwrap();
    writer.delete(&kid, None).await.unwrap();

    let event = fired(oneshot, "one-shot after restart").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, data_node);
    let event = fired(child_watch, "child watch after restart").await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    assert_eq!(event.path, parent);
    assert_eq!(
        next_events(&mut recursive, 3, "recursive watch after restart").await,
        vec![
            ev(EventType::NodeDataChanged, &kid),
            ev(EventType::NodeDataChanged, &root),
            ev(EventType::NodeDeleted, &kid),
        ]
    );
    assert_quiet(&mut recursive, "recursive watch after the expected events").await;
}

// ----- servers before 3.6 -------------------------------------------------------------------

/// A session with a one-shot and a persistent watch moves to a server before 3.6 (a scripted
/// one: none is installed here). That server answers SetWatches2 `Unimplemented` and closes the
/// connection; the client then restores the one-shot watch with SetWatches on its next
/// connection, reports the persistent watch removed (it cannot be restored there) and ends its
/// stream, and keeps using SetWatches on every later connection.
#[tokio::test]
async fn a_server_before_3_6_gets_set_watches_and_persistent_watches_are_reported_removed() {
    init_tracing();
    let mut peer = pre36::Pre36Peer::start().await;
    let client = Client::builder(&peer.addr)
        .session_timeout(SESSION_TIMEOUT)
        .connect()
        .await
        .expect("connect to the scripted peer");
    let (stat, later) = client.exists_and_watch("/later").await.unwrap();
    assert_eq!(stat, None);
    let mut persistent = client
        .add_watch("/p", AddWatchMode::Persistent)
        .await
        .unwrap();
    peer.cut();
    let mut seen = Vec::new();
    let restored = within("SetWatches on a later connection", async {
        loop {
            let received = peer.next().await;
            seen.push((received.connection, received.op));
            if let Some(lists) = received.set_watches {
                return lists;
            }
        }
    })
    .await;
    // exists and addWatch on the first connection, SetWatches2 (refused) on the second,
    // SetWatches on the third.
    assert_eq!(seen, [(1, 3), (1, 106), (2, 105), (3, 101)]);
    assert_eq!(restored, [vec![], vec!["/later".to_owned()], vec![]]);
    wait_for_state(&mut client.state(), "connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    let removed = within("the persistent watch's removal", persistent.next())
        .await
        .expect("an event before the end");
    assert_eq!(
        (removed.event_type, removed.path.as_str()),
        (EventType::PersistentWatchRemoved, "/p")
    );
    assert_eq!(
        within("the end of its stream", persistent.next()).await,
        None
    );
    // The one-shot watch was restored: the server's notification reaches it.
    peer.created("/later");
    let fired = within("the restored watch", later).await.unwrap();
    assert_eq!(
        (fired.event_type, fired.path.as_str()),
        (EventType::NodeCreated, "/later")
    );
    // Remembered: the next reconnection goes straight to SetWatches.
    let (_, _again) = client.exists_and_watch("/again").await.unwrap();
    assert_eq!(peer.next().await.op, 3);
    peer.cut();
    let next = within("the next restore", peer.next()).await;
    assert_eq!((next.connection, next.op), (4, 101));
    assert_eq!(
        next.set_watches,
        Some([vec![], vec!["/again".to_owned()], vec![]])
    );
    client.close().await.unwrap();
}
