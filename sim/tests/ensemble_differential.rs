//! The model's ensemble against a real three-member ZooKeeper 3.8 ensemble
//! (`testing::ZkEnsemble`): a session taken over on another member leaves its old connection
//! on a follower stale. A read there is still served (a follower answers reads itself); a
//! write there reaches the quorum, which refuses it (session moved), and the follower drops
//! the connection without answering, so the client sees a lost connection; the write is not
//! applied. The model must tell the same story.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zkwarden::proto::CreateMode;
use zkwarden::testing::ZkEnsemble;
use zkwarden::{Client, ClientBuilder, Error};
use zkwarden_sim::model::Model;
use zkwarden_sim::net::{FaultRates, Plan, SimNet, address, connect_string};
use zkwarden_sim::trace::Trace;

/// What the story shows: each step's outcome, as text (ids and times aside).
async fn story(stale: ClientBuilder, taker: ClientBuilder, checker: ClientBuilder) -> Vec<String> {
    let mut lines = Vec::new();
    let a = stale.connect().await.expect("the first session");
    // The same session, taken over on another member.
    let b = taker
        .resume_session(a.session_id(), a.session_password())
        .connect()
        .await
        .expect("the session taken over");
    lines.push(format!("taken over: {}", b.session_id() == a.session_id()));
    let read = a.get_data("/").await.map(|_| "ok");
    lines.push(format!("read on the stale connection: {read:?}"));
    let write = a
        .create("/moved", b"stale", CreateMode::Persistent)
        .await
        .map(|_| "ok")
        .map_err(|e| match e {
            Error::ConnectionLoss => "connection lost".to_string(),
            e => e.to_string(),
        });
    lines.push(format!("write on the stale connection: {write:?}"));
    drop(a);
    let c = checker.connect().await.expect("a session to check with");
    c.sync("/").await.expect("sync");
    let applied = c.exists("/moved").await.map(|s| s.is_some());
    lines.push(format!("the write applied: {applied:?}"));
    let _ = c.close().await;
    let _ = b.close().await;
    lines
}

#[test]
fn a_write_from_a_stale_connection_is_refused_as_by_zookeeper() {
    let ensemble = ZkEnsemble::start(3).expect("a three-member ZooKeeper ensemble");
    let leader = ensemble.leader();
    let follower = (0..ensemble.len())
        .find(|&i| Some(i) != leader)
        .expect("a follower");
    let other = (0..ensemble.len())
        .find(|&i| i != follower)
        .expect("another member");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let timeout = Duration::from_secs(6);
    let expected = runtime.block_on(story(
        Client::builder(ensemble.member_connect_string(follower)).session_timeout(timeout),
        Client::builder(ensemble.member_connect_string(other)).session_timeout(timeout),
        Client::builder(ensemble.connect_string()).session_timeout(timeout),
    ));
    let got = runtime.block_on(async {
        let model = Arc::new(Mutex::new(Model::with_members(
            Duration::from_millis(200),
            tokio::time::Instant::now(),
            3,
        )));
        let net = SimNet {
            model,
            plan: Arc::new(Mutex::new(Plan::new(0, FaultRates::NONE, timeout))),
            trace: Trace::new(false),
        };
        let builder = |hosts: String| {
            Client::builder(hosts)
                .session_timeout(timeout)
                .dialer(net.clone())
        };
        story(
            builder(address(0, 0).to_string()),
            builder(address(1, 1).to_string()),
            builder(connect_string(3, 2)),
        )
        .await
    });
    println!("ZooKeeper: {expected:#?}");
    assert_eq!(expected.len(), 4, "{expected:?}");
    assert_eq!(
        expected, got,
        "ZooKeeper (left) and the model (right) differ"
    );
}
