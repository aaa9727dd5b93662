//! Session behaviour against real servers: ephemerals, pipelining, expiry, reconnection,
//! unreachable servers and servers that misbehave.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::scripted::{self, Misbehaviour};
use common::*;
use zkwarden::testing::expire_session;
use zkwarden::{Client, CreateMode, Error, EventType, SessionState};

#[tokio::test]
async fn ephemeral_disappears_when_its_session_closes() {
    let server = start_server().await;
    let owner = connect(&server.connect_string()).await;
    let observer = connect(&server.connect_string()).await;
    let path = unique_path("ephemeral");
    owner
        .create(&path, b"mine", CreateMode::Ephemeral)
        .await
        .unwrap();
    let stat = observer
        .exists(&path)
        .await
        .unwrap()
        .expect("node exists while owner lives");
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);

    owner.close().await.unwrap();
    assert_eq!(owner.session_state(), SessionState::Closed);
    // Closing is synchronous on the server: the node is gone as soon as close returns.
    assert_eq!(observer.exists(&path).await.unwrap(), None);
    assert_eq!(owner.get_data(&path).await.unwrap_err(), Error::Closed);
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_session() {
    let server = start_server().await;
    let observer = connect(&server.connect_string()).await;
    let path = unique_path("dropped");
    let (_, watch) = {
        let owner = connect(&server.connect_string()).await;
        owner
            .create(&path, b"", CreateMode::Ephemeral)
            .await
            .unwrap();
        observer.exists_and_watch(&path).await.unwrap()
    };
    // The owner was dropped; its session closes and the ephemeral goes without waiting for
    // the session timeout.
    let event = within("ephemeral deleted after drop", watch).await.unwrap();
    assert_eq!(event.event_type, EventType::NodeDeleted);
}

#[tokio::test]
async fn ten_thousand_pipelined_requests_complete_in_call_order() {
    let server = start_server().await;
    let client = connect(&server.connect_string()).await;
    let path = unique_path("pipeline");
    client
        .create(&path, b"", CreateMode::Persistent)
        .await
        .unwrap();

    // Issue every write before awaiting any: each is queued at call time.
    let writes: Vec<_> = (0..10_000u32)
        .map(|i| client.set_data(&path, &i.to_be_bytes(), None))
        .collect();
    for (i, write) in writes.into_iter().enumerate() {
        let stat = write.await.unwrap();
        // The server applied them in call order: write i made version i + 1.
        assert_eq!(stat.version, i as i32 + 1);
    }
    let (data, stat) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], &9_999u32.to_be_bytes());
    assert_eq!(stat.version, 10_000);
}

#[tokio::test]
async fn session_expired_by_the_server_is_terminal() {
    let server = start_server().await;
    let client = connect(&server.connect_string()).await;
    let mut states = client.state();
    let path = unique_path("expiry");
    client
        .create(&path, b"", CreateMode::Persistent)
        .await
        .unwrap();
    let (_, _, watch) = client.get_data_and_watch(&path).await.unwrap();
    let old_id = client.session_id();

    expire_session(
        &server.connect_string(),
        client.session_id(),
        &client.session_password(),
    )
    .await
    .unwrap();
    // The server closes the old connection; the client notices at once and learns on its
    // next handshake that the session is gone.
    wait_for_state(&mut states, "connection dropped", |s| {
        s != SessionState::Connected
    })
    .await;
    // The client may briefly win the session back before the server applies the close (a
    // real race between two connections of one session), so an op issued now either fails
    // with the session or with the connection it was sent on; it never succeeds after the
    // expiry and never hangs.
    let pending = client.get_data(&path);
    let outcome = within("op during expiry", pending).await;
    assert!(
        matches!(
            outcome,
            Err(Error::SessionExpired) | Err(Error::ConnectionLoss)
        ),
        "{outcome:?}"
    );
    let status = wait_for_state(&mut states, "Expired", |s| s == SessionState::Expired).await;
    assert_eq!(status.session_id, old_id);
    assert_eq!(watch.await.unwrap_err(), Error::SessionExpired);
    assert_eq!(
        client.exists(&path).await.unwrap_err(),
        Error::SessionExpired
    );
    assert!(Error::SessionExpired.is_session_terminal());
}

#[tokio::test]
async fn restarted_server_keeps_the_session_and_its_watches() {
    let mut server = start_server_for_restarts().await;
    let client = connect_for_restarts(&server.connect_string()).await;
    let mut states = client.state();
    let path = unique_path("restart");
    client
        .create(&path, b"v1", CreateMode::Persistent)
        .await
        .unwrap();
    let (_, _, watch) = client.get_data_and_watch(&path).await.unwrap();
    let session = client.session_id();

    let mut server = blocking(move || {
        server.stop();
        server
    })
    .await;
    wait_for_state(&mut states, "Disconnected", |s| {
        s == SessionState::Disconnected
    })
    .await;
    let server = blocking(move || {
        server.restart().expect("restart");
        server
    })
    .await;
    wait_for_state(&mut states, "Connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(client.session_id(), session, "same session after reconnect");

    // The watch was re-registered with SetWatches and still fires.
    let writer = connect(&server.connect_string()).await;
    writer.set_data(&path, b"v2", None).await.unwrap();
    let event = within("watch fires after reconnect", watch).await.unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);
}

#[tokio::test]
async fn client_declares_expiry_when_no_server_answers_for_the_session_timeout() {
    let mut server = start_server().await;
    let client = Client::builder(server.connect_string())
        .session_timeout(Duration::from_millis(1500))
        .connect()
        .await
        .unwrap();
    let mut states = client.state();
    let id = client.session_id();
    let server = blocking(move || {
        server.stop();
        server
    })
    .await;
    wait_for_state(&mut states, "Disconnected", |s| {
        s == SessionState::Disconnected
    })
    .await;
    // Nobody will ever tell this client its session is gone: it must conclude so itself.
    let status = wait_for_state(&mut states, "Expired by the client's deadline", |s| {
        s == SessionState::Expired
    })
    .await;
    assert_eq!(status.session_id, id);
    assert_eq!(
        client.get_data("/").await.unwrap_err(),
        Error::SessionExpired
    );
    drop(server);
}

#[tokio::test]
async fn no_live_server_is_a_clear_error_within_the_deadline() {
    init_tracing();
    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let connect_string = format!("127.0.0.1:{port}");
    let err = within(
        "connect gives up",
        Client::builder(&connect_string)
            .connect_timeout(Duration::from_secs(2))
            .connect(),
    )
    .await
    .unwrap_err();
    match err {
        Error::ConnectFailed {
            hosts,
            timeout_ms,
            last_error,
        } => {
            assert_eq!(hosts, vec![connect_string]);
            assert_eq!(timeout_ms, 2000);
            assert!(last_error.contains("cannot connect"), "{last_error}");
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_is_a_clear_error() {
    init_tracing();
    let addr = scripted::start(Misbehaviour::SilentHandshake).await;
    let err = within(
        "connect gives up",
        Client::builder(&addr)
            .session_timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(3))
            .connect(),
    )
    .await
    .unwrap_err();
    match err {
        Error::ConnectFailed { last_error, .. } => {
            assert!(last_error.contains("no handshake"), "{last_error}")
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

/// Connects to a scripted peer, sends one request and returns its outcome and the state
/// changes seen.
async fn one_request_against(
    behaviour: Misbehaviour,
) -> (zkwarden::Result<Option<zkwarden::Stat>>, Client) {
    init_tracing();
    let addr = scripted::start(behaviour).await;
    let client = Client::builder(&addr)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .expect("handshake with the scripted peer");
    let mut states = client.state();
    let outcome = within("request against a misbehaving peer", client.exists("/x")).await;
    if outcome.is_err() {
        // The bad connection is dropped and reported at once.
        wait_for_state(&mut states, "Disconnected or reconnecting", |s| {
            s != SessionState::Closed
        })
        .await;
    }
    (outcome, client)
}

#[tokio::test]
async fn server_closing_mid_request_is_connection_loss() {
    let (outcome, client) = one_request_against(Misbehaviour::CloseOnRequest).await;
    assert_eq!(outcome.unwrap_err(), Error::ConnectionLoss);
    // The session is not over: the client is reconnecting with the same session.
    assert!(!client.session_state().is_terminal());
}

#[tokio::test]
async fn oversized_frame_drops_the_connection_with_a_typed_error() {
    let (outcome, client) = one_request_against(Misbehaviour::OversizedFrame).await;
    assert_eq!(outcome.unwrap_err(), Error::ConnectionLoss);
    assert!(!client.session_state().is_terminal());
}

#[tokio::test]
async fn truncated_frame_drops_the_connection_with_a_typed_error() {
    let (outcome, _client) = one_request_against(Misbehaviour::TruncatedFrame).await;
    assert_eq!(outcome.unwrap_err(), Error::ConnectionLoss);
}

#[tokio::test]
async fn reply_to_an_unknown_xid_drops_the_connection() {
    let (outcome, _client) = one_request_against(Misbehaviour::UnknownXid).await;
    assert_eq!(outcome.unwrap_err(), Error::ConnectionLoss);
}

#[tokio::test]
async fn unknown_event_type_is_ignored_and_the_session_survives() {
    let (outcome, client) = one_request_against(Misbehaviour::UnknownEventType).await;
    assert!(
        outcome.unwrap().is_some(),
        "the reply after the odd event still arrives"
    );
    assert_eq!(client.session_state(), SessionState::Connected);
}

#[tokio::test]
async fn missed_change_fires_the_watch_after_reconnect() {
    let server = start_server().await;
    let proxy = zkwarden::testing::FaultProxy::start(server.addr())
        .await
        .unwrap();
    let watcher = connect(&proxy.connect_string()).await;
    let writer = connect(&server.connect_string()).await;
    let mut states = watcher.state();
    let session = watcher.session_id();
    let path = unique_path("missed");
    writer
        .create(&path, b"before", CreateMode::Persistent)
        .await
        .unwrap();
    let (_, _, watch) = watcher.get_data_and_watch(&path).await.unwrap();

    // Cut the watcher off and keep it off while the node changes.
    proxy.refuse_new(true);
    proxy.reset_all();
    wait_for_state(&mut states, "Disconnected", |s| {
        s == SessionState::Disconnected
    })
    .await;
    writer.set_data(&path, b"after", None).await.unwrap();

    // The server sent the notification to nobody. On reconnect the client sends SetWatches
    // with the last zxid it saw, older than the change, so the server fires the watch then.
    proxy.refuse_new(false);
    let status = wait_for_state(&mut states, "Connected again", |s| {
        s == SessionState::Connected
    })
    .await;
    assert_eq!(status.session_id, session, "same session after reconnect");
    let event = within("the missed change fires the watch", watch)
        .await
        .unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, path);
}
