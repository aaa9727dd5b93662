//! Sessions on a three-server ensemble: losing the server a session is on.
#![cfg(feature = "testing")]

mod common;

use common::*;
use zkwarden::testing::ZkEnsemble;
use zkwarden::{Client, CreateMode, EventType, SessionState};

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
