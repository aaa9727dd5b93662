//! The multi-lock over mutexes, a write lock and a semaphore against a real ZooKeeper:
//! all or none (with a deadline), release in reverse order, lost when any member is lost,
//! exclusion between processes, and cancellation without leftovers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::znodes::children_of;
use common::{start_server, unique_path, warden, within};
use tokio::time::Instant;
use zkwarden::{AddWatchMode, CreateMode, Error, EventType, Op, Warden};
use zkwarden_recipes::lock::{LostReason, MultiLock, Mutex, ReadWriteLock, Semaphore};

/// Waits, by child watches, until `path` has no children.
async fn await_empty(w: &Warden, path: &str) {
    within(&format!("no children under {path}"), async {
        loop {
            let (children, watcher) = match w.get_children_and_watch(path).await {
                Ok(found) => found,
                Err(Error::NoNode) => return,
                Err(e) => panic!("list {path}: {e}"),
            };
            if children.is_empty() {
                return;
            }
            let _ = watcher.await;
        }
    })
    .await
}

fn three_members(w: &Warden, base: &str) -> MultiLock {
    MultiLock::new()
        .with(Mutex::new(w, format!("{base}/a")))
        .with(ReadWriteLock::new(w, format!("{base}/b")).write())
        .with(Semaphore::new(w, format!("{base}/c"), 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_or_none_and_released_in_reverse_order() {
    let server = start_server().await;
    let base = unique_path("multi");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let multi = three_members(&a, &base);
    assert_eq!(multi.len(), 3);

    // The middle member is taken elsewhere: the first is taken, then given back.
    let blocker = ReadWriteLock::new(&b, format!("{base}/b"))
        .write()
        .lock()
        .await
        .expect("blocker");
    let outcome = multi
        .lock_until(Instant::now() + Duration::from_millis(300))
        .await;
    assert!(matches!(outcome, Err(Error::Timeout)), "{outcome:?}");
    await_empty(&b, &format!("{base}/a")).await;
    assert_eq!(children_of(&b, &format!("{base}/b")).await.len(), 1);
    assert!(
        children_of(&b, &format!("{base}/c/leases"))
            .await
            .is_empty()
    );
    blocker.release().await.expect("release blocker");

    let guard = within("all three", multi.lock()).await.expect("multi");
    let nodes: Vec<String> = guard
        .guards()
        .iter()
        .map(|g| g.node_path().to_owned())
        .collect();
    assert!(nodes[0].starts_with(&format!("{base}/a/")));
    assert!(nodes[1].starts_with(&format!("{base}/b/")) && nodes[1].contains("__WRIT__"));
    assert!(nodes[2].starts_with(&format!("{base}/c/leases/")));
    assert_eq!(guard.fencing_tokens().len(), 3);
    assert!(guard.lost_reason().is_none());

    // A fenced write checks every member.
    let resource = format!("{base}/resource");
    a.create_node(&resource, b"v0", CreateMode::Persistent)
        .await
        .expect("resource");
    let fenced = guard.fence(vec![Op::set_data(&resource, b"v1".to_vec(), None)]);
    assert_eq!(fenced.len(), 4);
    a.multi(&fenced).await.expect("fenced write");

    // Another observer sees the members go, the last taken first.
    let mut deletions = b
        .add_watch(&base, AddWatchMode::PersistentRecursive)
        .await
        .expect("watch");
    guard.release().await.expect("release");
    let mut order = Vec::new();
    within("three deletions", async {
        while order.len() < 3 {
            let event = deletions.next().await.expect("watch events");
            if event.event_type == EventType::NodeDeleted && nodes.contains(&event.path) {
                order.push(event.path);
            }
        }
    })
    .await;
    let reversed: Vec<String> = nodes.iter().rev().cloned().collect();
    assert_eq!(order, reversed, "released in reverse order");
}

#[tokio::test]
async fn lost_resolves_when_any_member_is_lost() {
    let server = start_server().await;
    let base = unique_path("multi-lost");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let guard = MultiLock::new()
        .with(Mutex::new(&a, format!("{base}/x")))
        .with(Mutex::new(&a, format!("{base}/y")))
        .lock()
        .await
        .expect("multi");
    let lost = guard.lost();
    // An administrator removes one member's node.
    b.delete(guard.guards()[1].node_path(), None)
        .await
        .expect("delete");
    assert_eq!(within("lost()", lost).await, LostReason::Deleted);
    assert_eq!(guard.lost_reason(), Some(LostReason::Deleted));
    assert_eq!(guard.guards()[0].lost_reason(), None);
    guard
        .release()
        .await
        .expect("release (one node already gone)");
    await_empty(&a, &format!("{base}/x")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_lock_holders_exclude_each_other_and_single_holders() {
    let server = start_server().await;
    let base = unique_path("multi-exclusion");
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let sections = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for task in 0..3 {
        let w = warden(&server.connect_string()).await;
        let (base, inside, overlaps, sections) = (
            base.clone(),
            inside.clone(),
            overlaps.clone(),
            sections.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Two take both locks (in the same order); one takes only the second.
            let multi = if task < 2 {
                MultiLock::new()
                    .with(Mutex::new(&w, format!("{base}/p")))
                    .with(Mutex::new(&w, format!("{base}/q")))
            } else {
                MultiLock::new().with(Mutex::new(&w, format!("{base}/q")))
            };
            for _ in 0..12 {
                let guard = multi.lock().await.expect("multi");
                if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                sections.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                guard.release().await.expect("release");
            }
        }));
    }
    for task in tasks {
        within("a multi-lock task", task).await.expect("task");
    }
    let (sections, overlaps) = (
        sections.load(Ordering::SeqCst),
        overlaps.load(Ordering::SeqCst),
    );
    println!("{sections} critical sections checked, {overlaps} overlaps");
    assert_eq!(sections, 36);
    assert_eq!(overlaps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_acquires_leave_no_node() {
    let server = start_server().await;
    let base = unique_path("multi-cancel");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let multi = three_members(&b, &base);
    for round in 0..24u64 {
        // Every third round the last member is full, so the drop finds two members held.
        let held = if round % 3 == 0 {
            Some(
                Semaphore::new(&a, format!("{base}/c"), 1)
                    .acquire()
                    .await
                    .expect("hold"),
            )
        } else {
            None
        };
        let cut = Duration::from_micros(spread(round) % 40_000);
        let _ = tokio::time::timeout(cut, multi.lock()).await;
        if let Some(held) = held {
            held.release().await.expect("release");
        }
    }
    for member in ["a", "b", "c/leases", "c/locks"] {
        await_empty(&a, &format!("{base}/{member}")).await;
    }
}

/// A cheap spread of cut points without another dependency.
fn spread(round: u64) -> u64 {
    round
        .wrapping_mul(6_364_136_223_846_793_005)
        .rotate_left(17)
        ^ 0x9e37_79b9
}
