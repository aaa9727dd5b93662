//! The Curator-compatible mutex against a real ZooKeeper: exclusion, queue order without a
//! herd, cancellation, deadlines, lost locks and fencing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use common::znodes::{
    await_children, await_new_session, await_state, children_of, expire, watches_by_session,
};
use common::{PATIENCE, blocking, start_server, unique_path, warden, within};
use futures_util::FutureExt;
use tokio::time::Instant;
use zkwarden::testing::ZkServer;
use zkwarden::warden::LockSafety;
use zkwarden::{ConnectionState, CreateMode, Error, ErrorCode, Op};
use zkwarden_recipes::lock::{LostReason, Mutex, compare_sequences, sequence_of, sort_contenders};

async fn stop(mut server: ZkServer) -> ZkServer {
    blocking(move || {
        server.stop();
        server
    })
    .await
}

#[test]
fn sequence_numbers_are_integers_that_wrap() {
    assert_eq!(sequence_of("lock-0000000000"), Some(0));
    assert_eq!(sequence_of("lock-2147483647"), Some(i32::MAX));
    assert_eq!(sequence_of("lock--2147483648"), Some(i32::MIN));
    assert_eq!(sequence_of("lock--0000000001"), Some(-1));
    // Curator's protected names (a dashed UUID) and go-zookeeper's (32 hex digits).
    assert_eq!(
        sequence_of("_c_0f7d9c1e-3b4a-4c5d-8e6f-7a8b9c0d1e2f-lock-0000000042"),
        Some(42)
    );
    assert_eq!(
        sequence_of("_c_0123456789abcdef0123456789abcdef-lock-0000000043"),
        Some(43)
    );
    for not_a_lock in [
        "lock-",
        "lock-abc",
        "leader-0000000001",
        "lock-+0000000001",
        "",
    ] {
        assert_eq!(sequence_of(not_a_lock), None, "{not_a_lock:?}");
    }
    assert_eq!(compare_sequences(1, 2), std::cmp::Ordering::Less);
    assert_eq!(
        compare_sequences(i32::MAX, i32::MIN),
        std::cmp::Ordering::Less
    );
    assert_eq!(compare_sequences(-1, 0), std::cmp::Ordering::Less);
    assert_eq!(compare_sequences(5, 5), std::cmp::Ordering::Equal);
}

#[test]
fn contenders_sort_by_number_whatever_the_prefix() {
    let names = vec![
        "_c_0123456789abcdef0123456789abcdef-lock-0000000010".to_owned(),
        "lock-0000000002".to_owned(),
        "_c_0f7d9c1e-3b4a-4c5d-8e6f-7a8b9c0d1e2f-lock-0000000003".to_owned(),
        "unrelated".to_owned(),
        "_c_ffffffffffffffffffffffffffffffff-lock-0000000001".to_owned(),
    ];
    assert_eq!(
        sort_contenders(names),
        [
            "_c_ffffffffffffffffffffffffffffffff-lock-0000000001",
            "lock-0000000002",
            "_c_0f7d9c1e-3b4a-4c5d-8e6f-7a8b9c0d1e2f-lock-0000000003",
            "_c_0123456789abcdef0123456789abcdef-lock-0000000010",
        ]
    );
}

#[test]
fn contenders_sort_across_the_wrap() {
    // The server's counter passed 2^31: the negative numbers are the newest.
    let names = vec![
        "_c_a-lock--2147483647".to_owned(),
        "_c_b-lock-2147483646".to_owned(),
        "_c_c-lock--2147483648".to_owned(),
        "_c_d-lock-2147483647".to_owned(),
    ];
    assert_eq!(
        sort_contenders(names),
        [
            "_c_b-lock-2147483646",
            "_c_d-lock-2147483647",
            "_c_c-lock--2147483648",
            "_c_a-lock--2147483647",
        ]
    );
    // Around zero, integer order: text order would put -1 before -2.
    let names = vec![
        "lock-0000000001".to_owned(),
        "lock--0000000001".to_owned(),
        "lock--0000000002".to_owned(),
        "lock-0000000000".to_owned(),
    ];
    assert_eq!(
        sort_contenders(names),
        [
            "lock--0000000002",
            "lock--0000000001",
            "lock-0000000000",
            "lock-0000000001"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_tasks_never_overlap_and_tokens_grow() {
    let server = start_server().await;
    let path = unique_path("mutex-exclusion");
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(StdMutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for task in 0..5 {
        let w = warden(&server.connect_string()).await;
        let (path, inside, tokens) = (path.clone(), inside.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let mutex = Mutex::new(&w, &path).payload(format!("task-{task}"));
            for _ in 0..20 {
                let guard = mutex.lock().await.expect("lock");
                assert!(
                    !inside.swap(true, Ordering::SeqCst),
                    "two holders in the critical section"
                );
                tokens.lock().expect("tokens").push(guard.fencing_token());
                // Give a would-be second holder every chance to run.
                tokio::task::yield_now().await;
                assert!(guard.lost_reason().is_none());
                inside.store(false, Ordering::SeqCst);
                guard.release().await.expect("release");
            }
        }));
    }
    for task in tasks {
        within("a locking task", task).await.expect("task");
    }
    let tokens = tokens.lock().expect("tokens").clone();
    assert_eq!(tokens.len(), 100);
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "fencing tokens must grow with every acquisition: {tokens:?}"
    );
    let w = warden(&server.connect_string()).await;
    assert!(children_of(&w, &path).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_waiter_watches_only_its_predecessor_and_the_queue_is_fifo() {
    let server = start_server().await;
    let path = unique_path("mutex-queue");
    let holder_warden = warden(&server.connect_string()).await;
    let holder = Mutex::new(&holder_warden, &path)
        .lock()
        .await
        .expect("holder");
    let order = Arc::new(StdMutex::new(Vec::new()));
    let mut sessions = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let w = warden(&server.connect_string()).await;
        sessions.push(format!("0x{:x}", w.session_id().0));
        let (lock_path, order) = (path.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let guard = Mutex::new(&w, &lock_path)
                .lock()
                .await
                .expect("waiter lock");
            let name = guard
                .node_path()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned();
            order.lock().expect("order").push(name);
            guard.release().await.expect("release");
        }));
        // One at a time, so the queue order is known.
        await_children(&holder_warden, &path, i + 2).await;
    }
    let queue = sort_contenders(children_of(&holder_warden, &path).await);
    assert_eq!(queue.len(), 6);
    let expected: BTreeMap<String, BTreeSet<String>> = sessions
        .iter()
        .enumerate()
        .map(|(i, session)| {
            (
                session.clone(),
                BTreeSet::from([format!("{path}/{}", queue[i])]),
            )
        })
        .collect();
    // The server learns of each watch a little after the node appears: poll it, bounded.
    let started = Instant::now();
    let seen = loop {
        let all = watches_by_session(&server);
        let seen: BTreeMap<_, _> = all
            .into_iter()
            .filter(|(session, _)| sessions.contains(session))
            .collect();
        if seen == expected || started.elapsed() > PATIENCE {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        seen, expected,
        "each waiter must watch exactly its predecessor (no herd, no parent watch)"
    );

    holder.release().await.expect("release holder");
    for task in tasks {
        within("a waiter", task).await.expect("waiter");
    }
    let order = order.lock().expect("order").clone();
    assert_eq!(
        order,
        queue[1..],
        "the lock goes to waiters in sequence order"
    );
}

#[tokio::test]
async fn try_lock_fails_while_held_and_leaves_no_node() {
    let server = start_server().await;
    let path = unique_path("mutex-try");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let held = Mutex::new(&a, &path).try_lock().await.expect("try a");
    let held = held.expect("a free lock is taken");
    let other = Mutex::new(&b, &path);
    assert!(other.try_lock().await.expect("try b").is_none());
    assert_eq!(
        children_of(&a, &path).await,
        [held.node_path().rsplit('/').next().unwrap_or("").to_owned()]
    );
    held.release().await.expect("release");
    let second = other.try_lock().await.expect("try b again");
    assert!(second.is_some(), "free again after release");
}

#[tokio::test]
async fn a_deadline_passes_with_timeout_and_no_node() {
    let server = start_server().await;
    let path = unique_path("mutex-deadline");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let held = Mutex::new(&a, &path).lock().await.expect("lock");
    let started = Instant::now();
    let outcome = Mutex::new(&b, &path)
        .lock_until(started + Duration::from_millis(300))
        .await;
    assert!(matches!(outcome, Err(Error::Timeout)), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        children_of(&a, &path).await.len(),
        1,
        "only the holder's node"
    );
    drop(held);
    // Dropping the guard releases it in the background.
    await_children(&a, &path, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_acquires_leave_no_node() {
    let server = start_server().await;
    let path = unique_path("mutex-cancel");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let contender = Mutex::new(&b, &path);
    for round in 0..30 {
        // Half the rounds with the lock held (the acquire is dropped while waiting), half
        // free (dropped while creating, confirming, or after winning).
        let held = if round % 2 == 0 {
            Some(Mutex::new(&a, &path).lock().await.expect("hold"))
        } else {
            None
        };
        let cut = Duration::from_micros(fastrand_like(round) % 20_000);
        let _ = tokio::time::timeout(cut, contender.lock()).await;
        if let Some(held) = held {
            held.release().await.expect("release");
        }
    }
    // Janitor and background deletes settle; watched, not slept on.
    await_children(&a, &path, 0).await;
}

/// A cheap spread of cut points without another dependency.
fn fastrand_like(round: u64) -> u64 {
    round
        .wrapping_mul(6_364_136_223_846_793_005)
        .rotate_left(17)
        ^ 0x9e37_79b9
}

#[tokio::test]
async fn lost_resolves_at_suspended_by_default() {
    let server = start_server().await;
    let path = unique_path("mutex-suspend");
    let w = warden(&server.connect_string()).await;
    assert_eq!(w.lock_safety(), LockSafety::Suspend);
    let guard = Mutex::new(&w, &path).lock().await.expect("lock");
    let lost = guard.lost();
    assert!(guard.lost_reason().is_none());
    let _server = stop(server).await;
    let reason = within("lost() after the server stopped", lost).await;
    assert_eq!(reason, LostReason::Suspended);
    assert_eq!(guard.lost_reason(), Some(LostReason::Suspended));
}

#[tokio::test]
async fn lost_waits_for_the_session_deadline_when_asked() {
    let server = start_server().await;
    let path = unique_path("mutex-deadline-safety");
    let w = warden(&server.connect_string()).await;
    let margin = Duration::from_secs(1);
    let guard = Mutex::new(&w, &path)
        .safety(LockSafety::SessionDeadline { margin })
        .lock()
        .await
        .expect("lock");
    let mut lost = Box::pin(guard.lost());
    let _server = stop(server).await;
    await_state(&w, ConnectionState::Suspended).await;
    let suspended_at = Instant::now();
    let deadline = w.session_deadline().expect("a session deadline");
    assert!(
        (&mut lost).now_or_never().is_none(),
        "not lost at Suspended"
    );
    let reason = within("lost() at the session deadline", lost).await;
    assert_eq!(reason, LostReason::SessionDeadline);
    let now = Instant::now();
    assert!(
        now + Duration::from_millis(50) >= deadline - margin,
        "not before the deadline"
    );
    assert!(now < deadline, "before the session could expire");
    assert!(now > suspended_at);
}

#[tokio::test]
async fn an_expired_session_loses_the_lock_and_fenced_writes_fail() {
    let server = start_server().await;
    let path = unique_path("mutex-expire");
    let resource = unique_path("mutex-resource");
    let w = warden(&server.connect_string()).await;
    w.create_node(&resource, b"v0", CreateMode::Persistent)
        .await
        .expect("resource");
    let mutex = Mutex::new(&w, &path).safety(LockSafety::Lost);
    let guard = mutex.lock().await.expect("lock");
    let first_token = guard.fencing_token();

    // A fenced write while the lock is held goes through.
    w.multi(&guard.fence(vec![Op::set_data(&resource, b"v1".to_vec(), None)]))
        .await
        .expect("fenced write while held");

    let old_generation = w.generation();
    expire(&server.connect_string(), &w).await;
    let reason = within("lost() after expiry", guard.lost()).await;
    assert!(
        matches!(
            reason,
            LostReason::Lost | LostReason::NewSession | LostReason::Deleted
        ),
        "{reason:?}"
    );
    await_new_session(&w, old_generation).await;

    // The stale holder's write is refused by the server: the check on its node fails.
    let outcome = w
        .multi(&guard.fence(vec![Op::set_data(&resource, b"stale".to_vec(), None)]))
        .await;
    match outcome {
        Err(Error::MultiFailed { index, code, .. }) => {
            assert_eq!((index, code), (0, ErrorCode::NoNode));
        }
        other => panic!("a fenced write after the lock was lost must fail: {other:?}"),
    }
    let (data, _) = w.get_data(&resource).await.expect("resource");
    assert_eq!(&data[..], b"v1");
    guard
        .release()
        .await
        .expect("release of a gone node is fine");

    // The new session contends afresh, with a larger token.
    let again = mutex.lock().await.expect("lock again");
    assert!(again.fencing_token() > first_token);
    assert_eq!(
        w.exists(again.node_path())
            .await
            .expect("exists")
            .expect("node")
            .ephemeral_owner,
        w.session_id().0
    );
}

#[tokio::test]
async fn expiry_resolves_lost_under_the_default_safety_too() {
    let server = start_server().await;
    let path = unique_path("mutex-expire-default");
    let w = warden(&server.connect_string()).await;
    let guard = Mutex::new(&w, &path).lock().await.expect("lock");
    expire(&server.connect_string(), &w).await;
    let reason = within("lost() after expiry", guard.lost()).await;
    assert_ne!(reason, LostReason::Released);
}

#[tokio::test]
async fn a_vanished_container_parent_is_recreated() {
    common::init_tracing();
    let server = blocking(|| {
        ZkServer::builder()
            .max_session_timeout(Duration::from_secs(30))
            .jvm_arg("-Dznode.container.checkIntervalMs=100")
            .start()
    })
    .await
    .expect("start ZooKeeper");
    let path = unique_path("mutex-container");
    let w = warden(&server.connect_string()).await;
    let mutex = Mutex::new(&w, &path);
    mutex
        .lock()
        .await
        .expect("lock")
        .release()
        .await
        .expect("release");
    within("the empty container to go", async {
        loop {
            match w.exists_and_watch(&path).await.expect("exists") {
                (None, _) => return,
                (Some(_), watcher) => {
                    let _ = watcher.await;
                }
            }
        }
    })
    .await;
    let guard = mutex.lock().await.expect("lock after the parent vanished");
    assert!(guard.node_path().starts_with(&format!("{path}/_c_")));
    assert!(guard.node_path().contains("-lock-"));
}
