//! Counters against a real ZooKeeper: exact sums through expired sessions, Curator's byte
//! encodings, and compare-and-set on stale versions.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use zkwarden::{Client, CreateMode, CreateOptions};
use zkwarden_recipes::counter::{AtomicLong, SharedCount, TICKET_PREFIX, VersionedValue};

const TASKS: usize = 10;
const INCREMENTS: usize = 1000;

/// A plain client, to read what the recipes stored byte for byte.
async fn raw(connect: &str) -> Client {
    Client::connect(connect).await.expect("plain client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_tasks_of_a_thousand_increments_sum_exactly_through_expiries() {
    let server = common::start_server().await;
    let connect = server.connect_string();
    let a = common::warden(&connect).await;
    let b = common::warden(&connect).await;
    let path = common::unique_path("atomic-sum");
    let (done_tx, done_rx) = watch::channel(0usize);
    let done_tx = Arc::new(done_tx);
    let started = Instant::now();

    let mut tasks = Vec::new();
    for i in 0..TASKS {
        // Five tasks on each warden, each with its own AtomicLong.
        let warden = if i % 2 == 0 { a.clone() } else { b.clone() };
        let path = path.clone();
        let done_tx = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            let counter = AtomicLong::new(&warden, &path);
            let mut posts = Vec::with_capacity(INCREMENTS);
            for _ in 0..INCREMENTS {
                let result = counter.increment().await.expect("increment");
                assert!(result.succeeded);
                assert_eq!(result.post, result.pre + 1);
                posts.push(result.post);
                done_tx.send_modify(|n| *n += 1);
            }
            counter.close().await.expect("close");
            posts
        }));
    }

    // Faults while the tasks run: A's session expires twice, B's once.
    let faults = {
        let (a, b, connect) = (a.clone(), b.clone(), connect.clone());
        let mut done = done_rx.clone();
        tokio::spawn(async move {
            for (at, warden) in [(1500, &a), (4000, &b), (6500, &a)] {
                done.wait_for(|n| *n >= at).await.expect("progress");
                common::znodes::expire_and_await_new_session(&connect, warden).await;
            }
        })
    };

    let mut all = BTreeSet::new();
    for task in tasks {
        // A loaded 2-core machine can need more than the usual patience for 10,000 increments.
        let posts = tokio::time::timeout(common::PATIENCE * 6, task)
            .await
            .expect("increments finish")
            .expect("task");
        for post in posts {
            assert!(all.insert(post), "value {post} was counted twice");
        }
    }
    common::within("faults", faults).await.expect("faults");
    let elapsed = started.elapsed();
    eprintln!(
        "{TASKS} x {INCREMENTS} increments through 3 expiries in {elapsed:?} \
         (generations: A {}, B {})",
        a.generation(),
        b.generation()
    );
    assert!(a.generation() >= 3 && b.generation() >= 2);

    let total = (TASKS * INCREMENTS) as i64;
    assert_eq!(all, (1..=total).collect::<BTreeSet<_>>());
    let counter = AtomicLong::new(&a, &path);
    assert_eq!(counter.get().await.unwrap(), total);

    // Curator's encoding: exactly eight big-endian bytes; and every ticket is gone.
    let client = raw(&connect).await;
    let (data, _) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], &total.to_be_bytes());
    assert_eq!(
        client.get_children(&path).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        client
            .get_children(&format!("{path}-tickets"))
            .await
            .unwrap_or_default(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn atomic_long_reads_and_writes_curators_bytes() {
    let server = common::start_server().await;
    let connect = server.connect_string();
    let w = common::warden(&connect).await;
    let client = raw(&connect).await;

    // A missing node reads 0 and is created on first use.
    let path = common::unique_path("atomic-bytes");
    let counter = AtomicLong::new(&w, &path);
    assert_eq!(counter.get().await.unwrap(), 0);
    let r = counter.add(-5).await.unwrap();
    assert_eq!((r.succeeded, r.pre, r.post), (true, 0, -5));
    let (data, _) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], &(-5i64).to_be_bytes());

    // What Curator would have written is read back.
    let written = 0x0102_0304_0506_0708i64;
    client
        .set_data(&path, &written.to_be_bytes(), None)
        .await
        .unwrap();
    assert_eq!(counter.get().await.unwrap(), written);
    let r = counter.decrement().await.unwrap();
    assert_eq!((r.pre, r.post), (written, written - 1));

    // Compare-and-set: the wrong expectation changes nothing; the right one does.
    let r = counter.compare_and_set(7, 9).await.unwrap();
    assert_eq!(
        (r.succeeded, r.pre, r.post),
        (false, written - 1, written - 1)
    );
    let r = counter
        .compare_and_set(written - 1, i64::MAX)
        .await
        .unwrap();
    assert_eq!((r.succeeded, r.pre, r.post), (true, written - 1, i64::MAX));
    // Wrapping as Java's long does.
    let r = counter.increment().await.unwrap();
    assert_eq!(r.post, i64::MIN);
    let (data, _) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], &i64::MIN.to_be_bytes());

    // A node without data (Curator reads it as 0).
    let empty = common::unique_path("atomic-empty");
    client
        .create(&empty, b"", CreateOptions::new(CreateMode::Persistent))
        .await
        .unwrap();
    let counter_empty = AtomicLong::new(&w, &empty);
    assert_eq!(counter_empty.get().await.unwrap(), 0);
    assert_eq!(counter_empty.increment().await.unwrap().post, 1);

    // Curator's layout: the counter has no children; the tickets live beside it until closed.
    assert!(client.get_children(&path).await.unwrap().is_empty());
    let ticket_parent = format!("{path}-tickets");
    let tickets = client.get_children(&ticket_parent).await.unwrap();
    assert_eq!(tickets.len(), 1);
    assert!(tickets[0].starts_with(TICKET_PREFIX));
    counter.close().await.unwrap();
    counter_empty.close().await.unwrap();
    assert!(
        client
            .get_children(&ticket_parent)
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn shared_count_is_four_big_endian_bytes_and_refuses_stale_versions() {
    let server = common::start_server().await;
    let connect = server.connect_string();
    let w = common::warden(&connect).await;
    let client = raw(&connect).await;
    let path = format!("{}/nested/count", common::unique_path("shared"));

    let count = SharedCount::new(&w, &path, 0x0A0B_0C0D);
    count.create_if_missing().await.unwrap();
    let (data, _) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], &[0x0A, 0x0B, 0x0C, 0x0D]);
    let first = count.get().await.unwrap();
    assert_eq!(first.value, 0x0A0B_0C0D);

    // Starting again keeps the value.
    SharedCount::new(&w, &path, 99)
        .create_if_missing()
        .await
        .unwrap();
    assert_eq!(count.get().await.unwrap(), first);

    let mut changes = count.watch();
    assert_eq!(
        common::within("first value", changes.next()).await,
        Some(first)
    );

    assert!(count.try_set(first, -2).await.unwrap());
    // The version read before that write is stale now.
    assert!(!count.try_set(first, 5).await.unwrap());
    let now = count.get().await.unwrap();
    assert_eq!(
        now,
        VersionedValue {
            value: -2,
            version: first.version + 1
        }
    );
    let (data, _) = client.get_data(&path).await.unwrap();
    assert_eq!(&data[..], &(-2i32).to_be_bytes());
    assert_eq!(common::within("change", changes.next()).await, Some(now));

    // A value Curator wrote is read back; set ignores versions.
    client
        .set_data(&path, &1234i32.to_be_bytes(), None)
        .await
        .unwrap();
    assert_eq!(count.get().await.unwrap().value, 1234);
    count.set(77).await.unwrap();
    assert_eq!(count.get().await.unwrap().value, 77);
    loop {
        let seen = common::within("set seen", changes.next()).await.unwrap();
        if seen.value == 77 {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_try_set_loops_from_two_wardens_lose_nothing() {
    const EACH: i32 = 200;
    let server = common::start_server().await;
    let connect = server.connect_string();
    let a = common::warden(&connect).await;
    let b = common::warden(&connect).await;
    let path = common::unique_path("shared-race");
    SharedCount::new(&a, &path, 10)
        .create_if_missing()
        .await
        .unwrap();

    let mut tasks = Vec::new();
    for warden in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let count = SharedCount::new(&warden, &path, 0);
            let mut refused = 0u32;
            for _ in 0..EACH {
                loop {
                    let seen = count.get().await.unwrap();
                    if count.try_set(seen, seen.value + 1).await.unwrap() {
                        break;
                    }
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for task in tasks {
        refused += common::within("try_set loops", task).await.unwrap();
    }
    let end = SharedCount::new(&b, &path, 0).get().await.unwrap();
    assert_eq!(end.value, 10 + 4 * EACH);
    assert_eq!(end.version, 4 * EACH);
    eprintln!("{refused} stale try_set calls were refused");
}
