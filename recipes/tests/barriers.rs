//! Barriers against a real ZooKeeper: members pass together, leave together, and a
//! connection blip lets nobody through early.

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use zkwarden::warden::{ChildrenEvent, RetryConfig};
use zkwarden::{ConnectionState, Warden};
use zkwarden_recipes::barrier::{Barrier, DoubleBarrier, READY_NODE};

/// A warden whose session outlives a server restart.
async fn patient_warden(connect: &str) -> Warden {
    Warden::builder(connect)
        .session_timeout(Duration::from_secs(30))
        .connection_timeout(Duration::from_secs(20))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
        .start()
        .await
        .expect("warden start")
}

/// The member nodes below a double barrier (without `ready`).
async fn members(warden: &Warden, path: &str) -> Vec<String> {
    match warden.get_children(path).await {
        Ok(mut children) => {
            children.retain(|c| c != READY_NODE);
            children
        }
        Err(zkwarden::Error::NoNode) => Vec::new(),
        Err(e) => panic!("list members: {e}"),
    }
}

/// Waits (on a children watch) until `path` has `n` member nodes.
async fn await_members(warden: &Warden, path: &str, n: usize) {
    let mut watch = warden.watch_children(path);
    common::within("member nodes", async {
        loop {
            let children = match watch.next().await.expect("watch open") {
                ChildrenEvent::Resync { children, .. } => children.unwrap_or_default(),
                ChildrenEvent::Changed { children } => children,
                ChildrenEvent::Deleted => Vec::new(),
            };
            if children.iter().filter(|c| *c != READY_NODE).count() == n {
                return;
            }
        }
    })
    .await;
}

/// Stops the server and starts it again on the same port and data, then waits until
/// `warden` is back on the same session.
async fn blip(server: zkwarden::testing::ZkServer, warden: &Warden) -> zkwarden::testing::ZkServer {
    let mut events = warden.events();
    let generation = warden.generation();
    let session = warden.session_id();
    let server = common::blocking(move || {
        let mut server = server;
        server.stop();
        server.restart().expect("restart server");
        server
    })
    .await;
    common::within("reconnection", async {
        let mut suspended = false;
        loop {
            let event = events.next().await.expect("warden alive");
            match event.state {
                ConnectionState::Suspended => suspended = true,
                ConnectionState::Reconnected if suspended => break,
                _ => {}
            }
        }
    })
    .await;
    assert_eq!(warden.generation(), generation, "the session survived");
    assert_eq!(warden.session_id(), session);
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_barrier_members_pass_together_and_leave_together() {
    const N: usize = 5;
    let server = common::start_server().await;
    let connect = server.connect_string();
    let a = common::warden(&connect).await;
    let b = common::warden(&connect).await;
    let observer = common::warden(&connect).await;
    let path = common::unique_path("double");
    // Nobody leaves before every member checked what it saw when it passed.
    let checked = Arc::new(tokio::sync::Barrier::new(N));

    let spawn_member = |i: usize| -> JoinHandle<()> {
        let warden = if i % 2 == 0 { a.clone() } else { b.clone() };
        let observer = observer.clone();
        let path = path.clone();
        let checked = checked.clone();
        tokio::spawn(async move {
            let member = DoubleBarrier::new(&warden, &path, N);
            member.enter().await.expect("enter");
            // Passing means every member's node is there.
            let seen = members(&observer, &path).await;
            assert_eq!(seen.len(), N, "passed with only {seen:?}");
            assert!(seen.iter().any(|m| m == member.member_id()));
            checked.wait().await;
            member.leave().await.expect("leave");
            // Leaving means every member's node is gone.
            assert!(members(&observer, &path).await.is_empty());
        })
    };

    let early: Vec<_> = (0..N - 1).map(spawn_member).collect();
    await_members(&observer, &path, N - 1).await;
    // Make sure a round trip on each warden happened after the nodes appeared.
    a.sync(&path).await.unwrap();
    b.sync(&path).await.unwrap();
    for member in &early {
        assert!(
            !member.is_finished(),
            "a member passed before the last entered"
        );
    }
    assert!(
        observer
            .exists(&format!("{path}/{READY_NODE}"))
            .await
            .unwrap()
            .is_none()
    );

    let last = spawn_member(N - 1);
    for member in early.into_iter().chain([last]) {
        common::within("members", member).await.expect("member");
    }
    // `ready` is gone too: the barrier can be used again.
    assert!(
        observer
            .get_children(&path)
            .await
            .unwrap_or_default()
            .is_empty()
    );

    // A second round on the same path.
    let again: Vec<_> = (0..2)
        .map(|i| {
            let warden = if i == 0 { a.clone() } else { b.clone() };
            let path = path.clone();
            tokio::spawn(async move {
                let member = DoubleBarrier::new(&warden, &path, 2);
                member.enter().await.expect("enter again");
                member.leave().await.expect("leave again");
            })
        })
        .collect();
    for member in again {
        common::within("second round", member)
            .await
            .expect("member");
    }
}

#[tokio::test]
async fn double_barrier_enter_times_out_alone() {
    let server = common::start_server().await;
    let w = common::warden(&server.connect_string()).await;
    let path = common::unique_path("double-alone");
    let member = DoubleBarrier::new(&w, &path, 2);
    assert!(
        !member
            .enter_timeout(Duration::from_millis(300))
            .await
            .unwrap()
    );
    // The node stays, as in Curator, until the member leaves.
    assert_eq!(
        members(&w, &path).await,
        vec![member.member_id().to_owned()]
    );
    assert!(member.leave_timeout(Duration::from_secs(10)).await.unwrap());
    assert!(members(&w, &path).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_blip_lets_no_double_barrier_member_pass_early() {
    let server = common::start_server().await;
    let connect = server.connect_string();
    let w = patient_warden(&connect).await;
    let path = common::unique_path("double-blip");

    let first = DoubleBarrier::new(&w, &path, 2);
    let first_id = first.member_id().to_owned();
    let waiter = tokio::spawn(async move {
        first.enter().await.expect("enter");
        first
    });
    await_members(&w, &path, 1).await;

    let server = blip(server, &w).await;
    // The blip changed no node: the member's ephemeral is still there (same session), and
    // the waiter, having heard about the disconnection and reconnection, still waits.
    w.sync(&path).await.unwrap();
    assert_eq!(members(&w, &path).await, vec![first_id]);
    assert!(!waiter.is_finished(), "passed on a connection event");

    let second = DoubleBarrier::new(&w, &path, 2);
    common::within("second enters", second.enter())
        .await
        .unwrap();
    let first = common::within("first passes", waiter).await.unwrap();
    let (l1, l2) = tokio::join!(first.leave(), second.leave());
    l1.unwrap();
    l2.unwrap();
    assert!(members(&w, &path).await.is_empty());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_holds_waiters_until_removed_even_across_a_blip() {
    let server = common::start_server().await;
    let connect = server.connect_string();
    let w = patient_warden(&connect).await;
    let path = format!("{}/gate", common::unique_path("barrier"));
    let barrier = Barrier::new(&w, &path);

    // Open: passes at once.
    assert!(barrier.wait_on_barrier(None).await.unwrap());
    barrier.set_barrier().await.unwrap();
    barrier.set_barrier().await.unwrap();
    assert!(
        !barrier
            .wait_on_barrier(Some(Duration::from_millis(300)))
            .await
            .unwrap()
    );

    let waiter = {
        let barrier = barrier.clone();
        tokio::spawn(async move { barrier.wait_on_barrier(None).await })
    };
    let server = blip(server, &w).await;
    w.sync(&path).await.unwrap();
    assert!(w.exists(&path).await.unwrap().is_some());
    assert!(!waiter.is_finished(), "passed on a connection event");

    barrier.remove_barrier().await.unwrap();
    barrier.remove_barrier().await.unwrap();
    assert!(common::within("waiter", waiter).await.unwrap().unwrap());
    drop(server);
}
