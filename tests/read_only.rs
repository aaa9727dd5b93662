//! Read-only mode on a real three-server ensemble (`readonlymode.enabled=true`): two members
//! killed, the third serving reads alone, then the quorum back.
//!
//! ZooKeeper 3.7+ read-only servers create only local sessions of their own and refuse (or
//! expire) sessions the quorum made, so a session that was on the quorum ends when only a
//! read-only server is left; a session started on the read-only server is replaced by a new
//! one when the client reaches a read-write server.
#![cfg(feature = "testing")]

mod common;

use std::time::Duration;

use common::*;
use tokio::sync::watch;
use tokio::time::Instant;
use zkwarden::testing::{FaultProxy, ZkEnsemble};
use zkwarden::warden::{ConnectionEvents, ConnectionState, DataEvent, RetryConfig};
use zkwarden::{Client, ClientBuilder, CreateMode, Error, Op, SessionState, SessionStatus, Warden};

/// Session timeout for clients that must ride out the read-only server leaving read-only
/// mode and the quorum forming again (several seconds on a loaded machine).
const LONG_SESSION: Duration = Duration::from_secs(20);

/// One ensemble at a time: three JVMs per test on a 2-core machine are plenty.
static ENSEMBLES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A three-member ensemble in read-only mode that grants sessions up to 30 s.
async fn start_ensemble() -> ZkEnsemble {
    init_tracing();
    blocking(|| {
        ZkEnsemble::builder()
            .read_only_mode(true)
            .max_session_timeout(Duration::from_secs(30))
            .start(3)
            .expect("three-member ensemble")
    })
    .await
}

/// Kills every member but `survivor`, and waits until `survivor` serves read-only.
async fn kill_all_but(ensemble: ZkEnsemble, survivor: usize) -> ZkEnsemble {
    blocking(move || {
        let mut ensemble = ensemble;
        for i in (0..ensemble.len()).filter(|&i| i != survivor) {
            ensemble.kill(i).expect("kill member");
        }
        ensemble
            .wait_read_only(survivor)
            .expect("the survivor goes read-only");
        ensemble
    })
    .await
}

/// Restarts every member but `survivor`.
async fn restart_all_but(ensemble: ZkEnsemble, survivor: usize) -> ZkEnsemble {
    blocking(move || {
        let mut ensemble = ensemble;
        for i in (0..ensemble.len()).filter(|&i| i != survivor) {
            ensemble.restart(i).expect("restart member");
        }
        ensemble
    })
    .await
}

/// Connects `builder` allowing read-only servers (with a session long enough to ride out a
/// quorum forming) and waits until a read-only server serves it; returns the client and its
/// states.
async fn read_only_session(builder: ClientBuilder) -> (Client, watch::Receiver<SessionStatus>) {
    let client = builder
        .read_only(true)
        .session_timeout(LONG_SESSION)
        .connect_timeout(PATIENCE)
        .connect()
        .await
        .expect("a read-only session");
    let mut states = client.state();
    wait_for_state(&mut states, "ConnectedReadOnly", |s| {
        s == SessionState::ConnectedReadOnly
    })
    .await;
    (client, states)
}

/// Waits until `client` is connected read-write, checks that `server` serves it and that it
/// takes a write; returns the connected status.
async fn writes_on(
    client: &Client,
    states: &mut watch::Receiver<SessionStatus>,
    server: std::net::SocketAddr,
) -> SessionStatus {
    let status = wait_for_state(states, "Connected", |s| s == SessionState::Connected).await;
    assert_eq!(client.connected_server(), Some(server));
    client
        .create(&unique_path("probed"), b"", CreateMode::Persistent)
        .await
        .unwrap();
    status
}

/// The member a client is connected to.
fn member_of(ensemble: &ZkEnsemble, client: &Client) -> usize {
    let server = client.connected_server().expect("connected");
    (0..ensemble.len())
        .find(|&i| ensemble.addr(i) == server)
        .expect("connected to a member")
}

/// Every state a client goes through, until its session ends.
fn record_states(
    mut states: watch::Receiver<SessionStatus>,
) -> tokio::task::JoinHandle<Vec<SessionState>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let state = states.borrow_and_update().state;
            if seen.last() != Some(&state) {
                seen.push(state);
            }
            if state.is_terminal() || states.changed().await.is_err() {
                return seen;
            }
        }
    })
}

/// Fills `/<prefix>` with data and two children; returns its path.
async fn seed(connect_string: &str, prefix: &str) -> String {
    let writer = connect(connect_string).await;
    let path = unique_path(prefix);
    writer
        .create(&path, b"before", CreateMode::Persistent)
        .await
        .unwrap();
    for child in ["a", "b"] {
        writer
            .create(&format!("{path}/{child}"), b"", CreateMode::Persistent)
            .await
            .unwrap();
    }
    writer.close().await.unwrap();
    path
}

#[tokio::test]
async fn a_read_only_client_reads_from_the_lone_member_and_returns_to_read_write() {
    let _one_at_a_time = ENSEMBLES.lock().await;
    let ensemble = start_ensemble().await;
    let connect_string = ensemble.connect_string();
    let path = seed(&connect_string, "ro").await;

    // Two sessions made on the quorum: one allowing read-only mode, one not.
    let veteran = Client::builder(&connect_string)
        .read_only(true)
        .session_timeout(SESSION_TIMEOUT)
        .connect()
        .await
        .unwrap();
    assert_eq!(veteran.session_state(), SessionState::Connected);
    let survivor = member_of(&ensemble, &veteran);
    let plain = Client::builder(ensemble.member_connect_string(survivor))
        .session_timeout(SESSION_TIMEOUT)
        .connect()
        .await
        .unwrap();
    let veteran_states = record_states(veteran.state());
    let plain_states = record_states(plain.state());

    let killed_at = Instant::now();
    let ensemble = kill_all_but(ensemble, survivor).await;

    // A new client that allows read-only mode gets a session from the lone member once it
    // has gone read-only.
    let (reader, mut reader_states) = read_only_session(Client::builder(&connect_string)).await;
    eprintln!("kill -> ConnectedReadOnly: {:?}", killed_at.elapsed());
    let ro_session = reader.session_id();
    assert_eq!(reader.connected_server(), Some(ensemble.addr(survivor)));

    // Reads return what was written before the quorum was lost.
    let (data, _) = reader.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"before");
    let mut children = reader.get_children(&path).await.unwrap();
    children.sort();
    assert_eq!(children, ["a", "b"]);
    assert!(reader.exists(&path).await.unwrap().is_some());
    assert!(reader.exists(&format!("{path}/c")).await.unwrap().is_none());
    let (_, _, watch) = reader.get_data_and_watch(&path).await.unwrap();

    // Writes fail with NotReadOnly, and the session carries on.
    let child = format!("{path}/c");
    assert_eq!(
        reader
            .create(&child, b"", CreateMode::Persistent)
            .await
            .unwrap_err(),
        Error::NotReadOnly
    );
    assert_eq!(
        reader.set_data(&path, b"no", None).await.unwrap_err(),
        Error::NotReadOnly
    );
    assert_eq!(
        reader.delete(&format!("{path}/a"), None).await.unwrap_err(),
        Error::NotReadOnly
    );
    let ops = [
        Op::set_data(path.clone(), b"no".to_vec(), None),
        Op::create(child.clone(), b"".to_vec(), CreateMode::Persistent),
    ];
    assert_eq!(reader.multi(&ops).await.unwrap_err(), Error::NotReadOnly);
    assert_eq!(reader.session_state(), SessionState::ConnectedReadOnly);
    assert_eq!(reader.session_id(), ro_session);
    let (data, _) = reader.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"before");

    // A client that does not allow read-only mode is not served.
    let refused = Client::builder(&connect_string)
        .session_timeout(SESSION_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    assert!(
        matches!(refused, Err(Error::ConnectFailed { .. })),
        "{refused:?}"
    );

    // Sessions the quorum made are not served by a read-only server: both end, and the one
    // that does not allow read-only mode was never connected meanwhile.
    let veteran_seen = within("veteran session ends", veteran_states)
        .await
        .unwrap();
    assert_eq!(veteran_seen.last(), Some(&SessionState::Expired));
    assert!(!veteran_seen.contains(&SessionState::ConnectedReadOnly));
    let plain_seen = within("plain session ends", plain_states).await.unwrap();
    assert_eq!(
        plain_seen,
        [
            SessionState::Connected,
            SessionState::Disconnected,
            SessionState::Expired
        ]
    );

    // The quorum comes back: the reader moves to a read-write server by itself, under a new
    // session (its read-only session is unknown to the quorum), with its watch restored.
    let restarted_at = Instant::now();
    let ensemble = restart_all_but(ensemble, survivor).await;
    let status = wait_for_state(&mut reader_states, "Connected", |s| {
        s == SessionState::Connected
    })
    .await;
    eprintln!("restart -> Connected: {:?}", restarted_at.elapsed());
    assert_ne!(status.session_id, ro_session, "a new session");
    assert_eq!(reader.session_id(), status.session_id);
    reader.set_data(&path, b"after", None).await.unwrap();
    let event = within("watch set in read-only mode fires", watch)
        .await
        .unwrap();
    assert_eq!(event.event_type, zkwarden::EventType::NodeDataChanged);
    reader
        .create(&child, b"", CreateMode::Persistent)
        .await
        .unwrap();
    drop(ensemble);
}

#[tokio::test]
async fn probing_finds_a_read_write_server_while_the_read_only_one_stays_read_only() {
    let _one_at_a_time = ENSEMBLES.lock().await;
    let ensemble = start_ensemble().await;
    let ensemble = kill_all_but(ensemble, 0).await;
    // A read-write server the client cannot reach yet.
    let standalone = start_server().await;
    let proxy = FaultProxy::start(standalone.addr()).await.unwrap();
    proxy.refuse_new(true);

    let connect_string = format!("{},{}", ensemble.member_connect_string(0), proxy.addr());
    let (client, mut states) = read_only_session(Client::builder(&connect_string)).await;
    let ro_session = client.session_id();
    assert_eq!(client.connected_server(), Some(ensemble.addr(0)));

    // The read-write server becomes reachable; the read-only one stays read-only (it has no
    // quorum), so only the probe can find it.
    let opened_at = Instant::now();
    proxy.refuse_new(false);
    let status = writes_on(&client, &mut states, proxy.addr()).await;
    eprintln!(
        "read-write server reachable -> Connected: {:?}",
        opened_at.elapsed()
    );
    assert_ne!(status.session_id, ro_session);
    let (ensemble, mode) = blocking(move || {
        let mode = ensemble.mode(0);
        (ensemble, mode)
    })
    .await;
    assert_eq!(mode.as_deref(), Some("read-only"));
    drop(ensemble);
}

/// As above, with every member reachable only over TLS (the connect string names the secure
/// client ports, and the servers require the client's certificate): the probe asks `isro`
/// over the session's own TLS settings, or it could never find the read-write server.
#[cfg(feature = "tls")]
#[tokio::test]
async fn probing_finds_a_read_write_server_over_tls() {
    use zkwarden::testing::{TlsClientAuth, TlsMaterial, ZkServer};

    let _one_at_a_time = ENSEMBLES.lock().await;
    init_tracing();
    let material = TlsMaterial::generate().expect("certificates");
    let builder = ZkEnsemble::builder()
        .read_only_mode(true)
        .max_session_timeout(Duration::from_secs(30))
        .tls(&material, TlsClientAuth::Need);
    let ensemble = blocking(move || builder.start(3))
        .await
        .expect("three-member TLS ensemble");
    let ensemble = kill_all_but(ensemble, 0).await;
    let server = ZkServer::builder().tls(&material, TlsClientAuth::Need);
    let standalone = blocking(move || server.start())
        .await
        .expect("a TLS server");
    let proxy = FaultProxy::start(standalone.secure_addr().expect("tls"))
        .await
        .unwrap();
    proxy.refuse_new(true);

    let read_only_member = ensemble.secure_addr(0).expect("tls");
    let connect_string = format!("{read_only_member},{}", proxy.addr());
    let builder = Client::builder(&connect_string).tls(material.mutual_client_config());
    let (client, mut states) = read_only_session(builder).await;
    assert_eq!(client.connected_server(), Some(read_only_member));

    // Only the probe can find the read-write server: the read-only one keeps its connection.
    proxy.refuse_new(false);
    writes_on(&client, &mut states, proxy.addr()).await;
    drop(ensemble);
}

/// The next `n` (state, generation) pairs.
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
async fn a_warden_serves_reads_read_only_and_returns_to_read_write() {
    let _one_at_a_time = ENSEMBLES.lock().await;
    let ensemble = start_ensemble().await;
    let connect_string = ensemble.connect_string();
    let path = seed(&connect_string, "ro-warden").await;
    let warden = Warden::builder(&connect_string)
        .read_only(true)
        .session_timeout(LONG_SESSION)
        .connection_timeout(PATIENCE)
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
        .start()
        .await
        .unwrap();
    assert_eq!(warden.connection().state, ConnectionState::Connected);
    let mut events = warden.events();
    let mut data_watch = warden.watch_data(&path);
    assert!(matches!(
        within("first resync", data_watch.next()).await,
        Some(DataEvent::Resync { generation: 1, .. })
    ));

    let survivor = member_of(&ensemble, &warden.client().expect("a client"));
    let killed_at = Instant::now();
    let ensemble = kill_all_but(ensemble, survivor).await;
    // The quorum's session is refused by the read-only member; a new one is made there.
    assert_eq!(
        next_states(&mut events, 3).await,
        [
            (ConnectionState::Suspended, 1),
            (ConnectionState::Lost, 1),
            (ConnectionState::ReadOnly, 2)
        ]
    );
    eprintln!("warden: kill -> ReadOnly: {:?}", killed_at.elapsed());

    let (data, _) = warden.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"before");
    let mut children = warden.get_children(&path).await.unwrap();
    children.sort();
    assert_eq!(children, ["a", "b"]);
    let retries_before = warden.metrics().retries;
    assert_eq!(
        warden.set_data(&path, b"no", None).await.unwrap_err(),
        Error::NotReadOnly
    );
    assert_eq!(
        warden.create(&format!("{path}/c"), b"").await.unwrap_err(),
        Error::NotReadOnly
    );
    assert_eq!(
        warden.delete(&format!("{path}/a"), None).await.unwrap_err(),
        Error::NotReadOnly
    );
    assert_eq!(
        warden.metrics().retries,
        retries_before,
        "NotReadOnly is not retried"
    );
    assert_eq!(warden.connection().state, ConnectionState::ReadOnly);

    // Back to read-write: the read-only session is replaced by a quorum session.
    let restarted_at = Instant::now();
    let ensemble = restart_all_but(ensemble, survivor).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&(ConnectionState::Reconnected, 3)) {
        seen.extend(next_states(&mut events, 1).await);
    }
    eprintln!(
        "warden: restart -> Reconnected: {:?}",
        restarted_at.elapsed()
    );
    assert_eq!(
        seen,
        [
            (ConnectionState::Suspended, 2),
            (ConnectionState::Lost, 2),
            (ConnectionState::Reconnected, 3)
        ]
    );
    warden.set_data(&path, b"after", None).await.unwrap();
    // The resilient watch follows the node through both new sessions.
    loop {
        match within("the write reaches the data watch", data_watch.next()).await {
            Some(DataEvent::Changed { data, .. }) if &data[..] == b"after" => break,
            Some(DataEvent::Resync {
                node: Some((data, _)),
                ..
            }) if &data[..] == b"after" => break,
            Some(_) => {}
            None => panic!("data watch ended"),
        }
    }
    warden.close().await.unwrap();
    drop(ensemble);
}
