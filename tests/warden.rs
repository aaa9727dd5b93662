//! The warden against real servers and real faults: waiting, retrying, rebuilding, and the
//! exact sequence of connection states each fault produces.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::*;
use zkwarden::testing::expire_session;
use zkwarden::warden::{ConnectionEvents, ConnectionState, RetryConfig};
use zkwarden::{CreateMode, Error, Warden};

fn warden_for(connect: &str) -> zkwarden::warden::WardenBuilder {
    Warden::builder(connect)
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(Duration::from_secs(20))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
}

/// The next `n` states from `events`, failing the test if they take longer than PATIENCE.
async fn next_states(events: &mut ConnectionEvents, n: usize) -> Vec<(ConnectionState, u64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let event = within("connection event", events.next())
            .await
            .expect("event stream open");
        out.push((event.state, event.generation));
    }
    out
}

#[tokio::test]
async fn start_waits_for_a_server_that_comes_up_within_the_timeout() {
    let mut server = start_server().await;
    let connect = server.connect_string();
    server = blocking(move || {
        server.stop();
        server
    })
    .await;
    let starting = tokio::spawn(warden_for(&connect).start());
    // Bring the server back while the warden is waiting for it.
    let server = blocking(move || {
        server.restart().expect("restart");
        server
    })
    .await;
    let warden = within("warden start", starting)
        .await
        .unwrap()
        .expect("started");
    assert_eq!(warden.connection().state, ConnectionState::Connected);
    assert_eq!(warden.generation(), 1);
    warden.create("/started", b"").await.unwrap();
    drop(server);
}

#[tokio::test]
async fn start_without_a_server_fails_naming_the_hosts() {
    init_tracing();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let connect = format!("127.0.0.1:{port},127.0.0.1:{}", port.wrapping_add(1).max(1));
    let err = within(
        "start gives up",
        Warden::builder(&connect)
            .connection_timeout(Duration::from_secs(1))
            .start(),
    )
    .await
    .unwrap_err();
    match err {
        Error::ConnectFailed { hosts, .. } => {
            assert_eq!(hosts.len(), 2);
            assert!(hosts.iter().any(|h| h.ends_with(&port.to_string())));
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn expired_session_is_rebuilt_with_a_new_id_and_generation() {
    let server = start_server().await;
    let warden = warden_for(&server.connect_string()).start().await.unwrap();
    let mut events = warden.events();
    let first_id = warden.session_id();
    let path = unique_path("expiry");
    warden.create(&path, b"v1").await.unwrap();
    let ephemeral = warden
        .create(&format!("{path}-eph"), b"")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();

    let client = warden.client().unwrap();
    expire_session(
        &server.connect_string(),
        client.session_id(),
        &client.session_password(),
    )
    .await
    .unwrap();
    // Operations issued during the rebuild wait for the new session and succeed.
    let read = warden.get_data(&path);
    // Until the server applies the close, the old client may win its session back for a
    // moment (Suspended, Reconnected, Suspended...): all in generation 1. Then the loss,
    // then the new session.
    let mut seen = Vec::new();
    loop {
        let (state, generation) = next_states(&mut events, 1).await[0];
        seen.push((state, generation));
        if state == ConnectionState::Lost {
            break;
        }
        assert_eq!(
            generation, 1,
            "nothing of generation 2 before the loss: {seen:?}"
        );
        assert!(
            matches!(
                state,
                ConnectionState::Suspended | ConnectionState::Reconnected
            ),
            "{seen:?}"
        );
    }
    assert_eq!(seen.first(), Some(&(ConnectionState::Suspended, 1)));
    assert_eq!(seen.last(), Some(&(ConnectionState::Lost, 1)));
    assert_eq!(
        next_states(&mut events, 1).await,
        [(ConnectionState::Reconnected, 2)]
    );
    let (data, _) = within("read across the rebuild", read).await.unwrap();
    assert_eq!(&data[..], b"v1");
    assert_ne!(warden.session_id(), first_id);
    assert_eq!(warden.generation(), 2);
    // The expired session's ephemeral is gone; the new session can write.
    assert_eq!(warden.exists(&ephemeral).await.unwrap(), None);
    warden.set_data(&path, b"v2", None).await.unwrap();
    let metrics = warden.metrics();
    assert_eq!(metrics.rebuilds, 1);
}

#[tokio::test]
async fn restarted_server_means_suspended_then_reconnected_to_the_same_session() {
    let mut server = start_server_for_restarts().await;
    let warden = warden_for(&server.connect_string())
        .session_timeout(RESTART_SESSION_TIMEOUT)
        .start()
        .await
        .unwrap();
    let mut events = warden.events();
    let id = warden.session_id();
    let path = unique_path("restart");
    warden.create(&path, b"kept").await.unwrap();

    server = blocking(move || {
        server.stop();
        server
    })
    .await;
    assert_eq!(
        next_states(&mut events, 1).await,
        [(ConnectionState::Suspended, 1)]
    );
    // A read issued while suspended waits for the connection instead of failing.
    let read = tokio::spawn({
        let warden = warden.clone();
        let path = path.clone();
        async move { warden.get_data(&path).await }
    });
    let server = blocking(move || {
        server.restart().expect("restart");
        server
    })
    .await;
    assert_eq!(
        next_states(&mut events, 1).await,
        [(ConnectionState::Reconnected, 1)]
    );
    assert_eq!(warden.session_id(), id);
    let (data, _) = within("suspended read completes", read)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&data[..], b"kept");
    assert_eq!(warden.metrics().reconnects, 1);
    drop(server);
}

#[tokio::test]
async fn a_long_outage_is_lost_by_the_clients_clock_and_the_old_session_is_closed() {
    let mut server = start_server().await;
    let connect = server.connect_string();
    let warden = Warden::builder(&connect)
        .session_timeout(Duration::from_millis(1500))
        .connection_timeout(Duration::from_secs(20))
        .start()
        .await
        .unwrap();
    let mut events = warden.events();
    let old_id = warden.session_id();
    let path = unique_path("presumed");
    warden
        .create(&path, b"")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();

    server = blocking(move || {
        server.stop();
        server
    })
    .await;
    // Nobody can tell the warden the session is gone; its own clock must.
    assert_eq!(
        next_states(&mut events, 2).await,
        [(ConnectionState::Suspended, 1), (ConnectionState::Lost, 1)]
    );
    assert!(
        !server.is_running(),
        "Lost was reported while the server was still down"
    );

    let mut server = server;
    server = blocking(move || {
        server.restart().expect("restart");
        server
    })
    .await;
    assert_eq!(
        next_states(&mut events, 1).await,
        [(ConnectionState::Reconnected, 2)]
    );
    assert_ne!(warden.session_id(), old_id);
    // The restarted server still knew the old session (sessions survive restarts), so its
    // ephemeral would have lived until the server timed it out: the warden closed it first.
    let observer = connect_to(&connect).await;
    assert_eq!(observer.exists(&path).await.unwrap(), None);
    drop(server);
}

async fn connect_to(connect: &str) -> zkwarden::Client {
    common::connect(connect).await
}

#[tokio::test]
async fn non_retryable_errors_return_at_once() {
    let server = start_server().await;
    let warden = warden_for(&server.connect_string()).start().await.unwrap();
    let before = warden.metrics().retries;
    assert_eq!(
        warden.get_data("/no/such/node").await.unwrap_err(),
        Error::NoNode
    );
    let path = unique_path("exists");
    warden.create(&path, b"").await.unwrap();
    assert_eq!(
        warden.create(&path, b"").await.unwrap_err(),
        Error::NodeExists
    );
    assert_eq!(
        warden.set_data(&path, b"", Some(41)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(
        warden.metrics().retries,
        before,
        "no retries for definite answers"
    );
}

#[tokio::test]
async fn closing_the_warden_ends_the_session_and_the_stream() {
    let server = start_server().await;
    let warden = warden_for(&server.connect_string()).start().await.unwrap();
    let mut events = warden.events();
    let path = unique_path("closing");
    warden
        .create(&path, b"")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    warden.close().await.unwrap();
    assert_eq!(
        next_states(&mut events, 1).await,
        [(ConnectionState::Closed, 1)]
    );
    assert_eq!(warden.get_data(&path).await.unwrap_err(), Error::Closed);
    let observer = connect_to(&server.connect_string()).await;
    assert_eq!(observer.exists(&path).await.unwrap(), None);
}
