//! Every event stream a recipe hands out ends (`None`) once the warden it depends on is
//! closed, even while the recipe's handle is still held: a program looping over events does
//! not hang after `Warden::close`.

mod common;

use common::{PATIENCE, start_server, unique_path, warden, within};
use futures_util::StreamExt;
use serde::Deserialize;
use zkwarden::ConnectionState;
use zkwarden::warden::ConnectionUpdate;
use zkwarden_recipes::cache::TreeCache;
use zkwarden_recipes::config::ConfigWatch;
use zkwarden_recipes::persistent_node::{NodeMode, PersistentNode};

#[derive(Debug, Clone, Deserialize)]
struct Settings {
    #[allow(dead_code)] // only decoded
    limit: u32,
}

/// Reads `stream` to its end (bounded by the tests' patience); returns how many items came.
async fn drain<S: futures_util::Stream + Unpin>(what: &str, stream: &mut S) -> usize {
    within(what, async {
        let mut items = 0;
        while stream.next().await.is_some() {
            items += 1;
        }
        items
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_ends_when_the_warden_closes() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let base = unique_path("streams-end");
    w.create(&base, br#"{"limit":1}"#).await.unwrap();
    let config = ConfigWatch::<Settings>::builder(&w, &base)
        .start()
        .await
        .unwrap();
    let node = PersistentNode::builder(&w, &format!("{base}/node"), NodeMode::Ephemeral)
        .data("x")
        .start()
        .await
        .expect("start");
    assert!(node.wait_for_initial_create(PATIENCE).await);
    let cache = TreeCache::builder(&w, &base).start().await.unwrap();
    within("cache initialized", cache.initialized())
        .await
        .unwrap();
    let mut config_events = config.events();
    let mut node_events = node.events();
    let mut cache_events = cache.events();
    let mut connection = w.events();
    let mut values = config.receiver();

    w.close().await.unwrap();

    // Each ends after what was already on its way, with its handle still held.
    drain("config events to end", &mut config_events).await;
    drain("node events to end", &mut node_events).await;
    drain("cache events to end", &mut cache_events).await;
    let mut last = None;
    within("connection events to end", async {
        while let Some(update) = connection.next_update().await {
            last = Some(update);
        }
    })
    .await;
    match last {
        Some(ConnectionUpdate::Event(event)) => assert_eq!(event.state, ConnectionState::Closed),
        other => panic!("the last connection update was {other:?}, not Closed"),
    }
    assert!(
        within("config values to end", values.changed())
            .await
            .is_err()
    );

    // Subscriptions made after the close end at once.
    assert_eq!(
        drain("a late config subscription", &mut config.events()).await,
        0
    );
    assert_eq!(
        drain("a late node subscription", &mut node.events()).await,
        0
    );
    assert_eq!(
        drain("a late cache subscription", &mut cache.events()).await,
        0
    );
    assert_eq!(
        drain("a late connection subscription", &mut w.events()).await,
        0
    );
}
