//! Atomic values on Curator's layout: Rust and Curator processes increment one
//! `DistributedAtomicLong` and one promoted `DistributedAtomicInteger` at once (a Java peer,
//! `tests/java/CuratorAtomicPeer.java`) and the totals are exact; and the byte-level rules of
//! `DistributedAtomicValue` and the promotion's timeout.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::java_peer::{self, Scratch};
use common::znodes::children_of;
use common::{start_server, unique_path, warden, within};
use zkwarden::Error;
use zkwarden_recipes::atomic::{
    AtomicLong, DistributedAtomicInteger, DistributedAtomicValue, PromotedToLock,
};
use zkwarden_recipes::lock::Mutex;

const PEER: &str = "CuratorAtomicPeer";
const JAVA_THREADS: usize = 2;
const RUST_TASKS: usize = 2;
const INCREMENTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_increments_on_one_counter_sum_exactly() {
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let base = unique_path("atomic-interop");
    let (long_path, int_path, lock_path) = (
        format!("{base}/long"),
        format!("{base}/int"),
        format!("{base}/int-lock"),
    );
    let scratch = Scratch::new("atomic-interop");
    let classpath = java_peer::prepare(&format!("{PEER}.java"), &scratch).await;
    let args = [
        connect.clone(),
        long_path.clone(),
        int_path.clone(),
        lock_path.clone(),
        JAVA_THREADS.to_string(),
        INCREMENTS.to_string(),
    ];
    let mut peer = java_peer::start(&classpath, &scratch.0, PEER, &args).await;
    peer.send("go").await;

    let mut tasks = Vec::new();
    for _ in 0..RUST_TASKS {
        let (w, long_path, int_path, lock_path) = (
            w.clone(),
            long_path.clone(),
            int_path.clone(),
            lock_path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let long = AtomicLong::new(&w, &long_path);
            // Straight to the mutex every time: the promoted mode, beside Curator's.
            let int = DistributedAtomicInteger::new(&w, &int_path)
                .optimistic_tries(0)
                .promoted(PromotedToLock::new(lock_path));
            let mut posts = Vec::with_capacity(INCREMENTS);
            for _ in 0..INCREMENTS {
                let r = long.increment().await.expect("long increment");
                assert!(r.succeeded && r.post == r.pre + 1);
                posts.push(r.post);
                loop {
                    let r = int.increment().await.expect("int increment");
                    assert_eq!(r.stats.optimistic_tries, 0);
                    assert!(r.stats.promoted_tries >= 1);
                    if r.succeeded {
                        assert_eq!(r.post, r.pre + 1);
                        break;
                    }
                }
            }
            long.close().await.expect("close");
            int.close().await.expect("close");
            posts
        }));
    }
    let mut rust_posts = BTreeSet::new();
    for task in tasks {
        for post in within("the Rust increments", task).await.expect("task") {
            assert!(rust_posts.insert(post), "{post} counted twice");
        }
    }
    assert_eq!(peer.line().await, "done");

    let total = (JAVA_THREADS + RUST_TASKS) * INCREMENTS;
    let long = AtomicLong::new(&w, &long_path);
    let int = DistributedAtomicInteger::new(&w, &int_path);
    assert_eq!(long.get().await.unwrap(), total as i64);
    assert_eq!(int.get().await.unwrap(), total as i32);
    peer.send("read").await;
    assert_eq!(peer.line().await, format!("values {total} {total}"));
    // Curator's layout: the value in the node itself, no children below it.
    let (data, _) = w.get_data(&long_path).await.unwrap();
    assert_eq!(&data[..], &(total as i64).to_be_bytes());
    let (data, _) = w.get_data(&int_path).await.unwrap();
    assert_eq!(&data[..], &(total as i32).to_be_bytes());
    assert!(children_of(&w, &long_path).await.is_empty());
    assert!(children_of(&w, &int_path).await.is_empty());
    assert!(
        children_of(&w, &format!("{long_path}-tickets"))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_values_follow_curators_rules_and_a_promotion_can_time_out() {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let base = unique_path("atomic-rules");

    // Bytes, Curator-exact writes (no tickets anywhere).
    let path = format!("{base}/value");
    let value = DistributedAtomicValue::new(&w, &path).exactly_once(false);
    assert_eq!(value.get().await.unwrap(), None);
    assert!(value.initialize(b"a").await.unwrap());
    assert!(!value.initialize(b"z").await.unwrap());
    let r = value.compare_and_set(b"x", b"y").await.unwrap();
    assert!(!r.succeeded);
    assert_eq!(
        (r.pre.as_deref(), r.post.as_deref()),
        (Some(&b"a"[..]), Some(&b"a"[..]))
    );
    let r = value.compare_and_set(b"a", b"b").await.unwrap();
    assert!(r.succeeded);
    assert_eq!(r.post.as_deref(), Some(&b"b"[..]));
    assert_eq!(r.stats.optimistic_tries, 1);
    let r = value.try_set(b"c").await.unwrap();
    assert!(r.succeeded);
    value.force_set(b"d").await.unwrap();
    assert_eq!(value.get().await.unwrap().as_deref(), Some(&b"d"[..]));
    assert!(children_of(&w, &format!("{path}-tickets")).await.is_empty());
    assert!(children_of(&w, &path).await.is_empty());

    // A node that is not a big-endian int is refused, and left alone.
    let bad = format!("{base}/bad");
    w.create(&bad, b"abc").await.unwrap();
    let int = DistributedAtomicInteger::new(&w, &bad);
    assert!(matches!(
        int.increment().await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(int.get().await, Err(Error::InvalidArgument(_))));
    assert_eq!(&w.get_data(&bad).await.unwrap().0[..], b"abc");

    // A missing node counts from zero; subtract and compare-and-set.
    let count = DistributedAtomicInteger::new(&w, &format!("{base}/count"));
    assert_eq!(count.subtract(3).await.unwrap().post, -3);
    assert!(!count.compare_and_set(0, 5).await.unwrap().succeeded);
    assert!(count.compare_and_set(-3, 5).await.unwrap().succeeded);
    assert_eq!(count.get().await.unwrap(), 5);
    count.close().await.unwrap();

    // While someone else holds the promotion mutex, a promoted change waits only as long
    // as it may, then reports that it did not succeed.
    let lock_path = format!("{base}/lock");
    let held = Mutex::new(&w, lock_path.clone()).lock().await.unwrap();
    let promoted = DistributedAtomicInteger::new(&w, &format!("{base}/count"))
        .optimistic_tries(0)
        .promoted(PromotedToLock::new(lock_path).max_wait(Duration::from_millis(300)));
    let r = promoted.increment().await.unwrap();
    assert!(!r.succeeded);
    assert_eq!((r.pre, r.post), (5, 5));
    assert_eq!(r.stats.promoted_tries, 0);
    held.release().await.unwrap();
    let r = promoted.increment().await.unwrap();
    assert!(r.succeeded);
    assert_eq!(r.post, 6);
    promoted.close().await.unwrap();
}
