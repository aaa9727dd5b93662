//! Regression scenarios for ZOOKEEPER-4466, found by the differential test: the model keeps
//! watches as a ZooKeeper 3.8 server does (one mode per path and table, the last registration
//! wins), and the client must still give every watcher all its events. Each scenario lost
//! events before the client guarded against it (docs/watches.md); tests/watch_modes.rs checks
//! the same against a real server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zkwarden::proto::{AddWatchMode, CreateMode, EventType};
use zkwarden::{Client, OneshotWatcher, PersistentWatcher};
use zkwarden_sim::model::Model;
use zkwarden_sim::net::{FaultRates, Plan, SimNet};
use zkwarden_sim::trace::Trace;

/// Longest wait for one event (the model answers at once; this only bounds a failure).
const PATIENCE: Duration = Duration::from_secs(5);

/// Runs `scenario` with a watching and a writing client on one model server.
fn run<F, Fut>(scenario: F)
where
    F: FnOnce(Client, Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let net = SimNet {
            model: Arc::new(Mutex::new(Model::new(
                Duration::from_millis(200),
                tokio::time::Instant::now(),
            ))),
            plan: Arc::new(Mutex::new(Plan::new(
                0,
                FaultRates::NONE,
                Duration::from_secs(4),
            ))),
            trace: Trace::new(false),
        };
        let connect = |net: SimNet| async move {
            Client::builder("10.0.0.1:2181")
                .dialer(net)
                .connect()
                .await
                .expect("a session on the model")
        };
        let watcher = connect(net.clone()).await;
        let writer = connect(net).await;
        writer
            .create("/n", b"", CreateMode::Persistent)
            .await
            .expect("create /n");
        scenario(watcher, writer).await;
    });
}

/// The next `n` events of a stream as (type, path); fails if one does not come.
async fn next(stream: &mut PersistentWatcher, n: usize) -> Vec<(EventType, String)> {
    let mut events = Vec::new();
    for _ in 0..n {
        let event = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("an event the model's server-side watch should have sent")
            .expect("the stream ended");
        events.push((event.event_type, event.path));
    }
    events
}

async fn fired(watch: OneshotWatcher) -> EventType {
    tokio::time::timeout(PATIENCE, watch)
        .await
        .expect("the one-shot watch fired")
        .expect("the one-shot watch failed")
        .event_type
}

fn ev(event_type: EventType, path: &str) -> (EventType, String) {
    (event_type, path.to_owned())
}

#[test]
fn a_read_watch_leaves_a_persistent_watch_persistent() {
    run(|watcher, writer| async move {
        let mut persistent = watcher
            .add_watch("/n", AddWatchMode::Persistent)
            .await
            .unwrap();
        let (_, _, data) = watcher.get_data_and_watch("/n").await.unwrap();
        let (_, child) = watcher.get_children_and_watch("/n").await.unwrap();
        writer.set_data("/n", b"1", None).await.unwrap();
        writer.set_data("/n", b"2", None).await.unwrap();
        writer
            .create("/n/a", b"", CreateMode::Persistent)
            .await
            .unwrap();
        writer
            .create("/n/b", b"", CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(
            next(&mut persistent, 4).await,
            vec![
                ev(EventType::NodeDataChanged, "/n"),
                ev(EventType::NodeDataChanged, "/n"),
                ev(EventType::NodeChildrenChanged, "/n"),
                ev(EventType::NodeChildrenChanged, "/n"),
            ]
        );
        assert_eq!(fired(data).await, EventType::NodeDataChanged);
        assert_eq!(fired(child).await, EventType::NodeChildrenChanged);
    });
}

#[test]
fn a_read_watch_or_a_persistent_watch_leaves_a_recursive_watch_recursive() {
    run(|watcher, writer| async move {
        let mut recursive = watcher
            .add_watch("/n", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let (_, _, data) = watcher.get_data_and_watch("/n").await.unwrap();
        let mut persistent = watcher
            .add_watch("/n", AddWatchMode::Persistent)
            .await
            .unwrap();
        writer
            .create("/n/a", b"", CreateMode::Persistent)
            .await
            .unwrap();
        writer.set_data("/n/a", b"1", None).await.unwrap();
        writer.set_data("/n", b"1", None).await.unwrap();
        assert_eq!(
            next(&mut recursive, 3).await,
            vec![
                ev(EventType::NodeCreated, "/n/a"),
                ev(EventType::NodeDataChanged, "/n/a"),
                ev(EventType::NodeDataChanged, "/n"),
            ]
        );
        assert_eq!(
            next(&mut persistent, 2).await,
            vec![
                ev(EventType::NodeChildrenChanged, "/n"),
                ev(EventType::NodeDataChanged, "/n"),
            ]
        );
        assert_eq!(fired(data).await, EventType::NodeDataChanged);
    });
}

#[test]
fn dropping_the_recursive_watch_leaves_the_persistent_one_whole() {
    run(|watcher, writer| async move {
        let mut persistent = watcher
            .add_watch("/n", AddWatchMode::Persistent)
            .await
            .unwrap();
        let recursive = watcher
            .add_watch("/n", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        drop(recursive);
        writer
            .create("/n/a", b"", CreateMode::Persistent)
            .await
            .unwrap();
        writer.delete("/n/a", None).await.unwrap();
        assert_eq!(
            next(&mut persistent, 2).await,
            vec![
                ev(EventType::NodeChildrenChanged, "/n"),
                ev(EventType::NodeChildrenChanged, "/n"),
            ]
        );
    });
}
