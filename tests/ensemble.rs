//! Sessions on a three-server ensemble: losing the server a session is on.
#![cfg(feature = "testing")]

mod common;

use common::*;
use zkwarden::testing::ZkEnsemble;
use zkwarden::{Client, CreateMode, Error, EventType, SessionState, Warden};

#[tokio::test]
async fn killing_the_member_in_use_moves_the_session_and_keeps_its_watch() {
    init_tracing();
    let mut ensemble = blocking(|| ZkEnsemble::start(3).expect("three-server ensemble")).await;
    let connect_string = ensemble.connect_string();
    let client = Client::builder(&connect_string)
        .session_timeout(SESSION_TIMEOUT)
        .connect()
        .await
        .unwrap();
    let mut states = client.state();
    let connections_before = states.borrow().connections;
    let session = client.session_id();
    let path = unique_path("failover");
    client
        .create(&path, b"before", CreateMode::Persistent)
        .await
        .unwrap();
    // The server must know about the watch before we take it away.
    let (_, _, watch) = client.get_data_and_watch(&path).await.unwrap();

    // The client knows which server it is on; no need to poll the members' `cons` output
    // (a blocking call that would spin inside the runtime).
    let server = client.connected_server().expect("connected");
    let member = (0..ensemble.len())
        .find(|&i| ensemble.addr(i) == server)
        .expect("the session is on a member of the ensemble");
    let mut ensemble = blocking(move || {
        ensemble.kill(member).expect("kill member");
        ensemble
    })
    .await;
    // The brief Disconnected in between may be overwritten in the state channel before this
    // task looks; a new connection is what proves the move.
    within(
        "connected again, on another member",
        states
            .wait_for(|s| s.connections > connections_before && s.state == SessionState::Connected),
    )
    .await
    .expect("the client is alive");
    assert_eq!(
        client.session_id(),
        session,
        "the session survives the move"
    );
    let now_on = client.connected_server().expect("connected");
    assert_ne!(now_on, ensemble.addr(member), "moved to another member");

    // A change made now, through another member, fires the watch set before the kill.
    let other = (member + 1) % 3;
    let writer = connect(&ensemble.member_connect_string(other)).await;
    writer.set_data(&path, b"after", None).await.unwrap();
    let event = within("watch set before the kill fires", watch)
        .await
        .unwrap();
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    let (data, _) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"after");

    // The killed member comes back and the ensemble is whole again.
    ensemble = blocking(move || {
        ensemble.restart(member).expect("restart member");
        ensemble
    })
    .await;
    assert!(ensemble.is_running(member));
}

/// Attaches `warden`'s session on member `to` with a second client (id and password), so the
/// leader records the session as owned by that member and the warden's connection is stale.
async fn steal_session(warden: &Warden, ensemble: &ZkEnsemble, to: usize) -> Client {
    let stolen = warden.client().expect("the warden has a session");
    Client::builder(ensemble.member_connect_string(to))
        .session_timeout(SESSION_TIMEOUT)
        .resume_session(stolen.session_id(), stolen.session_password())
        .connect()
        .await
        .expect("the same session attaches on another member")
}

/// How many connections the warden's current session has had.
fn connections(warden: &Warden) -> u64 {
    warden
        .client()
        .expect("the warden has a session")
        .state()
        .borrow()
        .connections
}

#[tokio::test]
async fn a_session_attached_elsewhere_fails_the_stale_connection_and_the_warden_retries() {
    init_tracing();
    let ensemble = blocking(|| ZkEnsemble::start(3).expect("three-server ensemble")).await;
    // The warden can reach member 0 only, so it comes back there after every drop.
    let warden = Warden::builder(ensemble.member_connect_string(0))
        .session_timeout(SESSION_TIMEOUT)
        .start()
        .await
        .unwrap();
    let session = warden.session_id();
    let path = unique_path("moved");
    warden.create(&path, b"before").await.unwrap();

    // A write on the stale connection: refused by the quorum, and the connection dropped.
    let thief = steal_session(&warden, &ensemble, 1).await;
    let before = connections(&warden);
    let stale = warden.client().expect("the warden has a session");
    // ZooKeeper (3.8) does not answer it `SessionMoved`: it closes the connection instead (so
    // a client cannot keep using it), which the caller sees as a lost connection. The client
    // also drops the connection itself on a `SessionMoved` reply (a unit test of the core).
    let err = stale.set_data(&path, b"stale", None).await.unwrap_err();
    assert_eq!(err, Error::ConnectionLoss);
    let mut states = stale.state();
    within(
        "the stale connection is replaced",
        states.wait_for(|s| s.connections > before && s.state == SessionState::Connected),
    )
    .await
    .unwrap();
    let (data, _) = warden.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"before", "the refused write was not applied");

    // The warden's own op after another theft: retried on the re-established connection.
    let second_thief = steal_session(&warden, &ensemble, 2).await;
    let before = connections(&warden);
    warden.set_data(&path, b"warden", None).await.unwrap();
    assert!(
        connections(&warden) > before,
        "the stale connection was dropped"
    );
    assert_eq!(warden.session_id(), session, "the same session throughout");
    let (data, _) = warden.get_data(&path).await.unwrap();
    assert_eq!(&data[..], b"warden");

    warden.close().await.unwrap();
    drop((thief, second_thief));
}
