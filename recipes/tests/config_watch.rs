//! `ConfigWatch` against a real ZooKeeper: typed values, invalid data, a missing node with and
//! without a default, TOML, and a change made while the session is rebuilt.

mod common;

use std::time::Duration;

use common::{PATIENCE, start_server, unique_path, warden, within};
use serde::Deserialize;
use zkwarden::{Client, ConnectionState, CreateMode, Error, Warden};
use zkwarden_recipes::config::{ConfigEvent, ConfigEvents, ConfigWatch, Format};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Settings {
    name: String,
    limit: u32,
}

fn settings(name: &str, limit: u32) -> Settings {
    Settings {
        name: name.to_owned(),
        limit,
    }
}

async fn plain(connect: &str) -> Client {
    Client::connect(connect).await.expect("plain client")
}

/// A watch of the JSON settings at `path`, without a default.
async fn watch_settings(w: &Warden, path: &str) -> ConfigWatch<Settings> {
    ConfigWatch::<Settings>::builder(w, path)
        .start()
        .await
        .expect("start the config watch")
}

/// The next event that `pick` accepts (earlier ones are skipped).
async fn expect_event(
    events: &mut ConfigEvents,
    what: &str,
    pick: impl Fn(&ConfigEvent) -> bool,
) -> ConfigEvent {
    within(what, async {
        loop {
            let event = events.next().await.expect("config events ended");
            if pick(&event) {
                return event;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_values_updates_invalid_data_and_deletion() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let client = plain(&server.connect_string()).await;
    let path = unique_path("config-json");
    client
        .create(&path, br#"{"name":"a","limit":1}"#, CreateMode::Persistent)
        .await
        .unwrap();

    let config = ConfigWatch::<Settings>::builder(&w, &path)
        .format(Format::Json)
        .start()
        .await
        .unwrap();
    let mut rx = config.receiver();
    assert_eq!(*rx.borrow_and_update(), settings("a", 1));
    let mut events = config.events();

    // An update reaches the receiver.
    client
        .set_data(&path, br#"{"name":"b","limit":2}"#, None)
        .await
        .unwrap();
    let event = expect_event(&mut events, "update", |e| {
        matches!(e, ConfigEvent::Updated { .. })
    })
    .await;
    assert_eq!(event, ConfigEvent::Updated { version: 1 });
    assert_eq!(config.get(), settings("b", 2));
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), settings("b", 2));

    // Invalid data is reported and does not replace the good value.
    client
        .set_data(&path, br#"{"name":"c","limit":"#, None)
        .await
        .unwrap();
    let event = expect_event(&mut events, "invalid", |e| {
        matches!(e, ConfigEvent::Invalid { .. })
    })
    .await;
    let ConfigEvent::Invalid { error, version } = event else {
        unreachable!()
    };
    assert_eq!(version, 2);
    assert!(!error.is_empty());
    assert_eq!(config.get(), settings("b", 2));
    assert!(!rx.has_changed().unwrap());

    // Valid again.
    client
        .set_data(&path, br#"{"name":"d","limit":4}"#, None)
        .await
        .unwrap();
    expect_event(&mut events, "valid again", |e| {
        *e == ConfigEvent::Updated { version: 3 }
    })
    .await;
    assert_eq!(config.get(), settings("d", 4));

    // Deleted without a default: Missing, the last value stays.
    client.delete(&path, None).await.unwrap();
    expect_event(&mut events, "missing", |e| *e == ConfigEvent::Missing).await;
    assert_eq!(config.get(), settings("d", 4));

    // Dropping the watch stops its task: the receiver sees its sender go.
    rx.borrow_and_update();
    drop(config);
    within("sender dropped", rx.changed()).await.unwrap_err();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_while_the_node_is_absent() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let client = plain(&server.connect_string()).await;
    let path = unique_path("config-default");
    let fallback = settings("default", 0);

    // Absent at start: start returns with the default at once.
    let config = ConfigWatch::<Settings>::builder(&w, &path)
        .default(fallback.clone())
        .start()
        .await
        .unwrap();
    assert_eq!(config.get(), fallback);
    let mut events = config.events();
    let mut rx = config.receiver();

    client
        .create(&path, br#"{"name":"x","limit":9}"#, CreateMode::Persistent)
        .await
        .unwrap();
    within("created value", rx.wait_for(|v| *v == settings("x", 9)))
        .await
        .unwrap();
    expect_event(&mut events, "created", |e| {
        *e == ConfigEvent::Updated { version: 0 }
    })
    .await;

    // Deleted: back to the default, reported as Missing.
    client.delete(&path, None).await.unwrap();
    expect_event(&mut events, "missing", |e| *e == ConfigEvent::Missing).await;
    assert_eq!(config.get(), fallback);

    // Created with invalid data: reported, the default stays.
    client
        .create(&path, b"not json", CreateMode::Persistent)
        .await
        .unwrap();
    expect_event(&mut events, "invalid", |e| {
        matches!(e, ConfigEvent::Invalid { version: 0, .. })
    })
    .await;
    assert_eq!(config.get(), fallback);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_default_start_waits_for_a_valid_value() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let client = plain(&server.connect_string()).await;
    let path = unique_path("config-wait");

    // Nothing there: a bounded start times out.
    let err = ConfigWatch::<Settings>::builder(&w, &path)
        .timeout(Duration::from_millis(300))
        .start()
        .await
        .unwrap_err();
    assert_eq!(err, Error::Timeout);

    // Invalid data is not a first value either; valid data is.
    client
        .create(&path, b"{", CreateMode::Persistent)
        .await
        .unwrap();
    let starting = tokio::spawn({
        let w = w.clone();
        let path = path.clone();
        async move {
            ConfigWatch::<Settings>::builder(&w, &path)
                .timeout(PATIENCE)
                .start()
                .await
        }
    });
    // The starting watch may read the invalid data first or only the valid data: either
    // way it must return with the valid value.
    client
        .set_data(&path, br#"{"name":"late","limit":3}"#, None)
        .await
        .unwrap();
    let config = within("start", starting).await.unwrap().unwrap();
    assert_eq!(config.get(), settings("late", 3));
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Service {
    endpoint: String,
    timeout_ms: u64,
    features: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toml_values() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let client = plain(&server.connect_string()).await;
    let path = unique_path("config-toml");
    client
        .create(
            &path,
            b"endpoint = \"http://a\"\ntimeout_ms = 250\nfeatures = [\"x\"]\n",
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let config = ConfigWatch::<Service>::builder(&w, &path)
        .format(Format::Toml)
        .start()
        .await
        .unwrap();
    assert_eq!(config.get().timeout_ms, 250);
    let mut events = config.events();

    client
        .set_data(
            &path,
            b"endpoint = \"http://b\"\ntimeout_ms = 500\nfeatures = [\"x\", \"y\"]\n",
            None,
        )
        .await
        .unwrap();
    expect_event(&mut events, "toml update", |e| {
        *e == ConfigEvent::Updated { version: 1 }
    })
    .await;
    assert_eq!(
        config.get(),
        Service {
            endpoint: "http://b".into(),
            timeout_ms: 500,
            features: vec!["x".into(), "y".into()],
        }
    );

    // JSON is not TOML.
    client
        .set_data(&path, br#"{"endpoint":"http://c"}"#, None)
        .await
        .unwrap();
    expect_event(&mut events, "toml invalid", |e| {
        matches!(e, ConfigEvent::Invalid { version: 2, .. })
    })
    .await;
    assert_eq!(config.get().endpoint, "http://b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_the_session_rebuild_is_picked_up() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let client = plain(&server.connect_string()).await;
    let path = unique_path("config-expire");
    client
        .create(
            &path,
            br#"{"name":"before","limit":1}"#,
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let config = watch_settings(&w, &path).await;
    let mut events = config.events();
    let mut connection = w.events();
    let generation = w.generation();

    common::znodes::expire(&server.connect_string(), &w).await;
    // The old session is gone: write while the warden notices and rebuilds.
    client
        .set_data(&path, br#"{"name":"during","limit":2}"#, None)
        .await
        .unwrap();
    within("new session", async {
        loop {
            let event = connection.next().await.expect("warden events");
            if event.state == ConnectionState::Reconnected && event.generation > generation {
                return;
            }
        }
    })
    .await;
    expect_event(
        &mut events,
        "resync",
        |e| matches!(e, ConfigEvent::Resynced { generation: g } if *g > generation),
    )
    .await;
    let mut rx = config.receiver();
    within("value written during the rebuild", async {
        rx.wait_for(|v| *v == settings("during", 2))
            .await
            .map(|_| ())
    })
    .await
    .unwrap();

    // And a change after the rebuild.
    client
        .set_data(&path, br#"{"name":"after","limit":3}"#, None)
        .await
        .unwrap();
    within("value written after the rebuild", async {
        rx.wait_for(|v| *v == settings("after", 3))
            .await
            .map(|_| ())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_that_finds_the_same_value_reports_no_update() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let path = unique_path("config-resync");
    w.create(&path, br#"{"name":"same","limit":1}"#)
        .await
        .unwrap();
    let config = watch_settings(&w, &path).await;
    let mut events = config.events();
    let generation = w.generation();

    common::znodes::expire_and_await_new_session(&server.connect_string(), &w).await;
    // Read again on the new session (and perhaps on a reconnection of the old one before):
    // only resyncs, since the node did not change.
    within("the resync on the new session", async {
        loop {
            let event = events.next().await.expect("config events");
            match event {
                ConfigEvent::Resynced { generation: g } if g > generation => return,
                ConfigEvent::Resynced { .. } => {}
                other => panic!("the unchanged node was reported again: {other:?}"),
            }
        }
    })
    .await;
    // The next event is the next change, not a repeat of the value already reported.
    w.set_data(&path, br#"{"name":"next","limit":2}"#, None)
        .await
        .unwrap();
    let next = within("the update", events.next()).await;
    assert_eq!(next, Some(ConfigEvent::Updated { version: 1 }));
    assert_eq!(config.get(), settings("next", 2));
}
