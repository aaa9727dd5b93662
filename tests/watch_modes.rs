//! Watches of different modes on one path of one session, against a real ZooKeeper 3.8.
//!
//! A 3.8 server keeps one mode per path, connection and table (data, child), and the last
//! registration sets it (ZOOKEEPER-4466): a one-shot read watch turns a persistent watch
//! one-shot, a persistent watch added after a recursive one ends the recursive events, and so
//! on. The client must never let that cost a watcher an event. Each test below is one such
//! combination; most lost events before the client guarded against it (docs/watches.md), the
//! rest check the client-side one-shots and derived child-list events the guard relies on.
//!
//! One client (`watcher`) holds the watches; a second (`writer`) makes the changes.
#![cfg(feature = "testing")]

mod common;

use common::watching::*;
use common::*;
use zkwarden::testing::FaultProxy;
use zkwarden::{AddWatchMode, EventType, WatcherType};

#[tokio::test]
async fn a_get_data_watch_does_not_make_a_persistent_watch_one_shot() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("p-getdata"), b"").await;
    let mut persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (_, _, oneshot) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, exists) = watcher.exists_and_watch(&path).await.unwrap();

    writer.set_data(&path, b"1", None).await.unwrap();
    writer.set_data(&path, b"2", None).await.unwrap();
    assert_eq!(
        next_events(&mut persistent, 2, "persistent watch").await,
        vec![
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeDataChanged, &path)
        ]
    );
    for (watch, what) in [(oneshot, "get_data watch"), (exists, "exists watch")] {
        let event = fired(watch, what).await;
        assert_eq!(event.event_type, EventType::NodeDataChanged, "{what}");
    }
}

#[tokio::test]
async fn a_get_children_watch_does_not_make_a_persistent_watch_one_shot() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("p-children"), b"").await;
    let mut persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (_, oneshot) = watcher.get_children_and_watch(&path).await.unwrap();

    node(&writer, &format!("{path}/a"), b"").await;
    node(&writer, &format!("{path}/b"), b"").await;
    assert_eq!(
        next_events(&mut persistent, 2, "persistent watch").await,
        vec![
            ev(EventType::NodeChildrenChanged, &path),
            ev(EventType::NodeChildrenChanged, &path)
        ]
    );
    let event = fired(oneshot, "child watch").await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
}

#[tokio::test]
async fn a_get_data_watch_does_not_end_a_recursive_watch() {
    let (_server, watcher, writer) = setup().await;
    let root = node(&writer, &unique_path("r-getdata"), b"").await;
    let mut recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let (_, _, oneshot) = watcher.get_data_and_watch(&root).await.unwrap();

    let kid = node(&writer, &format!("{root}/kid"), b"").await;
    writer.set_data(&root, b"1", None).await.unwrap();
    writer.set_data(&kid, b"1", None).await.unwrap();
    assert_eq!(
        next_events(&mut recursive, 3, "recursive watch").await,
        vec![
            ev(EventType::NodeCreated, &kid),
            ev(EventType::NodeDataChanged, &root),
            ev(EventType::NodeDataChanged, &kid)
        ]
    );
    let event = fired(oneshot, "get_data watch").await;
    assert_eq!(
        (event.event_type, event.path),
        ev(EventType::NodeDataChanged, &root)
    );
}

#[tokio::test]
async fn a_persistent_watch_does_not_end_a_recursive_one_on_the_same_path() {
    let (_server, watcher, writer) = setup().await;
    let root = node(&writer, &unique_path("r-then-p"), b"").await;
    let mut recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let mut persistent = watcher
        .add_watch(&root, AddWatchMode::Persistent)
        .await
        .unwrap();

    let kid = node(&writer, &format!("{root}/kid"), b"").await;
    writer.set_data(&kid, b"1", None).await.unwrap();
    writer.delete(&kid, None).await.unwrap();
    assert_eq!(
        next_events(&mut recursive, 3, "recursive watch").await,
        vec![
            ev(EventType::NodeCreated, &kid),
            ev(EventType::NodeDataChanged, &kid),
            ev(EventType::NodeDeleted, &kid)
        ]
    );
    assert_eq!(
        next_events(&mut persistent, 2, "persistent watch").await,
        vec![
            ev(EventType::NodeChildrenChanged, &root),
            ev(EventType::NodeChildrenChanged, &root)
        ]
    );
}

#[tokio::test]
async fn a_recursive_watch_does_not_end_child_events_of_a_persistent_one() {
    let (_server, watcher, writer) = setup().await;
    let root = node(&writer, &unique_path("p-then-r"), b"").await;
    let mut persistent = watcher
        .add_watch(&root, AddWatchMode::Persistent)
        .await
        .unwrap();
    let mut recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    let kid = node(&writer, &format!("{root}/kid"), b"").await;
    writer.set_data(&root, b"1", None).await.unwrap();
    writer.delete(&kid, None).await.unwrap();
    assert_eq!(
        next_events(&mut persistent, 3, "persistent watch").await,
        vec![
            ev(EventType::NodeChildrenChanged, &root),
            ev(EventType::NodeDataChanged, &root),
            ev(EventType::NodeChildrenChanged, &root)
        ]
    );
    assert_eq!(
        next_events(&mut recursive, 3, "recursive watch").await,
        vec![
            ev(EventType::NodeCreated, &kid),
            ev(EventType::NodeDataChanged, &root),
            ev(EventType::NodeDeleted, &kid)
        ]
    );
}

#[tokio::test]
async fn a_recursive_watch_does_not_swallow_a_child_watch_set_before_it() {
    let (_server, watcher, writer) = setup().await;
    let root = node(&writer, &unique_path("c-then-r"), b"").await;
    let (_, oneshot) = watcher.get_children_and_watch(&root).await.unwrap();
    let mut recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();

    let kid = node(&writer, &format!("{root}/kid"), b"").await;
    let event = fired(oneshot, "child watch").await;
    assert_eq!(
        (event.event_type, event.path),
        ev(EventType::NodeChildrenChanged, &root)
    );
    assert_eq!(
        next_events(&mut recursive, 1, "recursive watch").await,
        vec![ev(EventType::NodeCreated, &kid)]
    );
}

#[tokio::test]
async fn removing_data_watches_keeps_a_persistent_watch_whole() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("remove-under-p"), b"").await;
    let mut persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (_, _, oneshot) = watcher.get_data_and_watch(&path).await.unwrap();

    watcher
        .remove_watches(&path, WatcherType::Data)
        .await
        .unwrap();
    let event = fired(oneshot, "removed get_data watch").await;
    assert_eq!(event.event_type, EventType::DataWatchRemoved);

    writer.set_data(&path, b"1", None).await.unwrap();
    node(&writer, &format!("{path}/kid"), b"").await;
    assert_eq!(
        next_events(&mut persistent, 2, "persistent watch").await,
        vec![
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeChildrenChanged, &path)
        ]
    );
}

#[tokio::test]
async fn one_shots_outlive_the_persistent_watch_that_served_them() {
    let (_server, watcher, writer) = setup().await;
    let path = node(&writer, &unique_path("outlive"), b"").await;
    let persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (_, _, data) = watcher.get_data_and_watch(&path).await.unwrap();
    let (_, child) = watcher.get_children_and_watch(&path).await.unwrap();
    drop(persistent);
    // Any request after the drop is ordered after the removal it causes.
    watcher
        .check_watches(&path, WatcherType::Data)
        .await
        .unwrap();
    watcher
        .check_watches(&path, WatcherType::Children)
        .await
        .unwrap();

    writer.set_data(&path, b"1", None).await.unwrap();
    node(&writer, &format!("{path}/kid"), b"").await;
    let event = fired(data, "get_data watch").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    let event = fired(child, "child watch").await;
    assert_eq!(event.event_type, EventType::NodeChildrenChanged);
    // They were one-shots on the server again: nothing is left.
    assert_eq!(
        watcher.check_watches(&path, WatcherType::Any).await,
        Err(zkwarden::Error::NoWatcher)
    );
}

#[tokio::test]
async fn a_persistent_watch_outlives_the_recursive_watch_on_its_path() {
    let (_server, watcher, writer) = setup().await;
    let root = node(&writer, &unique_path("p-outlives-r"), b"").await;
    let mut persistent = watcher
        .add_watch(&root, AddWatchMode::Persistent)
        .await
        .unwrap();
    let recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    drop(recursive);

    node(&writer, &format!("{root}/a"), b"").await;
    node(&writer, &format!("{root}/b"), b"").await;
    assert_eq!(
        next_events(&mut persistent, 2, "persistent watch").await,
        vec![
            ev(EventType::NodeChildrenChanged, &root),
            ev(EventType::NodeChildrenChanged, &root)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_restores_the_persistent_watch_not_the_one_shot_mode() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let watcher = connect(&proxy.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    let path = node(&writer, &unique_path("restore"), b"").await;
    let mut persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (_, _, data) = watcher.get_data_and_watch(&path).await.unwrap();

    reset_and_await_reconnect(&proxy, &watcher).await;

    writer.set_data(&path, b"1", None).await.unwrap();
    writer.set_data(&path, b"2", None).await.unwrap();
    node(&writer, &format!("{path}/kid"), b"").await;
    assert_eq!(
        next_events(&mut persistent, 3, "persistent watch after reconnect").await,
        vec![
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeDataChanged, &path),
            ev(EventType::NodeChildrenChanged, &path)
        ]
    );
    let event = fired(data, "get_data watch after reconnect").await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
}

#[tokio::test]
async fn a_child_watch_set_under_a_recursive_watch_fires_on_a_new_child() {
    let (_server, watcher, writer) = setup().await;
    let root = node(&writer, &unique_path("r-then-c"), b"").await;
    let mut recursive = watcher
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let (_, oneshot) = watcher.get_children_and_watch(&root).await.unwrap();

    let kid = node(&writer, &format!("{root}/kid"), b"").await;
    writer.set_data(&kid, b"1", None).await.unwrap();
    let event = fired(oneshot, "child watch").await;
    assert_eq!(
        (event.event_type, event.path),
        ev(EventType::NodeChildrenChanged, &root)
    );
    // The recursive watch still has its subtree and no child-list event.
    assert_eq!(
        next_events(&mut recursive, 2, "recursive watch").await,
        vec![
            ev(EventType::NodeCreated, &kid),
            ev(EventType::NodeDataChanged, &kid)
        ]
    );
}

#[tokio::test]
async fn an_exists_watch_on_a_missing_node_under_a_persistent_watch_fires_on_create() {
    let (_server, watcher, writer) = setup().await;
    let path = unique_path("p-exists-missing");
    let mut persistent = watcher
        .add_watch(&path, AddWatchMode::Persistent)
        .await
        .unwrap();
    let (stat, exists) = watcher.exists_and_watch(&path).await.unwrap();
    assert!(stat.is_none());

    node(&writer, &path, b"").await;
    writer.set_data(&path, b"1", None).await.unwrap();
    let event = fired(exists, "exists watch").await;
    assert_eq!(event.event_type, EventType::NodeCreated);
    assert_eq!(
        next_events(&mut persistent, 2, "persistent watch").await,
        vec![
            ev(EventType::NodeCreated, &path),
            ev(EventType::NodeDataChanged, &path)
        ]
    );
}
