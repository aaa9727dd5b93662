//! Every event stream a recipe or the warden hands out ends (`None`) once the warden it
//! depends on is closed, even while the recipe's handle is still held: a program looping over
//! events does not hang after `Warden::close`. And every recipe that runs in the background
//! refuses to start, with a typed error, on a closed warden or a path it could never use.

mod common;

use common::{PATIENCE, start_server, unique_path, warden, within};
use futures_util::StreamExt;
use serde::Deserialize;
use zkwarden::warden::ConnectionUpdate;
use zkwarden::{AddWatchMode, ConnectionState, Error};
use zkwarden_recipes::cache::{ChildrenCache, NodeCache, TreeCache};
use zkwarden_recipes::config::ConfigWatch;
use zkwarden_recipes::counter::SharedCount;
use zkwarden_recipes::discovery::ServiceCache;
use zkwarden_recipes::group::{Group, GroupMember};
use zkwarden_recipes::leader::{LeaderLatch, LeaderSelector};
use zkwarden_recipes::persistent_node::{NodeMode, PersistentNode};
use zkwarden_recipes::queue::{DistributedQueue, Utf8Serializer};
use zkwarden_recipes::ttl_node::PersistentTtlNode;

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
    let count = SharedCount::new(&w, &format!("{base}/count"), 7);
    count.create_if_missing().await.unwrap();
    let mut count_values = count.watch();
    assert_eq!(
        within("the count", count_values.next())
            .await
            .map(|v| v.value),
        Some(7)
    );
    let mut data_watch = w.watch_data(&base);
    let mut children_watch = w.watch_children(&base);
    let mut tree_watch = w.watch_tree(&base);
    let mut persistent = w
        .add_watch(&base, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let queue = DistributedQueue::new(&w, &format!("{base}/queue"), Utf8Serializer);
    queue.create_paths().await.unwrap();
    let mut deliveries = queue.stream();

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
    drain("count values to end", &mut count_values).await;
    drain("data watch to end", &mut data_watch).await;
    drain("children watch to end", &mut children_watch).await;
    drain("tree watch to end", &mut tree_watch).await;
    drain("persistent watcher to end", &mut persistent).await;
    let mut last_delivery = None;
    within("deliveries to end", async {
        while let Some(delivery) = deliveries.next().await {
            last_delivery = Some(delivery.map(|d| d.item().clone()));
        }
    })
    .await;
    assert_eq!(last_delivery, Some(Err(Error::Closed)));

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_background_recipe_refuses_to_start_on_a_bad_path_or_a_closed_warden() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let ttl = std::time::Duration::from_secs(5);
    // Each `start` is checked against one path, on the warden given.
    macro_rules! starts {
        ($w:expr, $path:expr) => {{
            let (w, p): (&zkwarden::Warden, &str) = (&$w, $path);
            vec![
                ("tree cache", TreeCache::builder(w, p).start().await.err()),
                ("node cache", NodeCache::builder(w, p).start().await.err()),
                (
                    "children cache",
                    ChildrenCache::builder(w, p).start().await.err(),
                ),
                (
                    "service cache",
                    ServiceCache::<String>::builder(w, p).start().await.err(),
                ),
                ("latch", LeaderLatch::builder(w, p).start().await.err()),
                (
                    "selector",
                    LeaderSelector::builder(w, p)
                        .start(|_, _| async {})
                        .await
                        .err(),
                ),
                (
                    "persistent node",
                    PersistentNode::builder(w, p, NodeMode::Ephemeral)
                        .start()
                        .await
                        .err(),
                ),
                (
                    "ttl node",
                    PersistentTtlNode::builder(w, p, ttl).start().await.err(),
                ),
                ("group", Group::builder(w, p).start().await.err()),
                (
                    "member",
                    GroupMember::builder(w, p, "m").start().await.err(),
                ),
                (
                    "config watch",
                    ConfigWatch::<u32>::builder(w, p)
                        .default(1)
                        .start()
                        .await
                        .err(),
                ),
            ]
        }};
    }
    for (what, error) in starts!(w, "no-slash") {
        assert!(
            matches!(error, Some(Error::InvalidPath { .. })),
            "{what} on an invalid path: {error:?}"
        );
    }
    let path = unique_path("closed-start");
    w.close().await.unwrap();
    for (what, error) in starts!(w, &path) {
        assert_eq!(error, Some(Error::Closed), "{what} on a closed warden");
    }
}

/// The names the construction convention replaced still build working recipes (deprecated
/// forwarders), so code written against them keeps running while it moves over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(deprecated)]
async fn the_deprecated_constructors_still_start_working_recipes() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let base = unique_path("old-names");
    let node = PersistentNode::start(&w, &format!("{base}/node"), "n", NodeMode::Ephemeral);
    assert!(node.wait_for_initial_create(PATIENCE).await);
    let member = GroupMember::join(&w, &format!("{base}/group"), "m", "p");
    assert!(member.wait_joined(PATIENCE).await);
    let group = Group::watch(&w, &format!("{base}/group"));
    let mut members = group.members();
    within(
        "the member listed",
        members.wait_for(|m| m.contains_key("m")),
    )
    .await
    .unwrap();
    let services = ServiceCache::<String>::start(&w, &base).unwrap();
    within("service cache", services.initialized())
        .await
        .unwrap();
    let count = SharedCount::new(&w, &format!("{base}/count"), 3);
    count.start().await.unwrap();
    assert_eq!(count.get().await.unwrap().value, 3);
    let node_path = LeaderSelector::new(&w, format!("{base}/leader"))
        .run(|leadership, _| async move { leadership.node_path().to_owned() })
        .await
        .unwrap();
    assert!(
        node_path.starts_with(&format!("{base}/leader/")),
        "{node_path}"
    );
}
