//! Helpers for the watch tests: a server with a watching and a writing client, nodes, and
//! waiting for watch events (never sleeping instead).

use zkwarden::testing::ZkServer;
use zkwarden::{Client, CreateMode, EventType, OneshotWatcher, PersistentWatcher, WatchedEvent};

use super::{connect, start_server, within};

/// A server, the client that watches, and the client that changes things.
pub async fn setup() -> (ZkServer, Client, Client) {
    let server = start_server().await;
    let watcher = connect(&server.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    (server, watcher, writer)
}

/// Creates a persistent node with `data` and returns its path.
pub async fn node(client: &Client, path: &str, data: &[u8]) -> String {
    client
        .create(path, data, CreateMode::Persistent)
        .await
        .unwrap_or_else(|e| panic!("create {path}: {e:?}"))
}

/// Awaits a one-shot watch, failing the test if it errs or takes longer than [`PATIENCE`].
pub async fn fired(watch: OneshotWatcher, what: &str) -> WatchedEvent {
    within(what, watch)
        .await
        .unwrap_or_else(|e| panic!("{what}: watch failed with {e:?}"))
}

/// The next event of a persistent watch.
pub async fn next_event(stream: &mut PersistentWatcher, what: &str) -> WatchedEvent {
    within(what, stream.next())
        .await
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
}

/// The next `n` events of a persistent watch, as (type, path) pairs. Also checks that their
/// zxids never go backwards.
pub async fn next_events(
    stream: &mut PersistentWatcher,
    n: usize,
    what: &str,
) -> Vec<(EventType, String)> {
    let mut events = Vec::with_capacity(n);
    let mut last_zxid = i64::MIN;
    for i in 0..n {
        let event = next_event(stream, &format!("{what} (event {i})")).await;
        assert!(
            event.zxid == -1 || event.zxid >= last_zxid,
            "{what}: zxid went backwards at {event:?}"
        );
        last_zxid = last_zxid.max(event.zxid);
        events.push((event.event_type, event.path));
    }
    events
}

/// An expected event, as (type, path).
pub fn ev(event_type: EventType, path: &str) -> (EventType, String) {
    (event_type, path.to_owned())
}
