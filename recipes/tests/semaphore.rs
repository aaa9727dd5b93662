//! The Curator-compatible semaphore (InterProcessSemaphoreV2 layout) against a real
//! ZooKeeper: never more than N leases, the `locks`/`leases` layout, tries and deadlines,
//! all-or-none for many leases, cancellation, and lost leases after expiry.

mod common;

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use common::znodes::{await_children, await_new_session, children_of, expire};
use common::{start_server, unique_path, warden, within};
use tokio::time::Instant;
use zkwarden::warden::LockSafety;
use zkwarden::{ConnectionState, Error};
use zkwarden_recipes::lock::{LostReason, Semaphore};

fn soon() -> Instant {
    Instant::now() + Duration::from_millis(300)
}

/// Holders inside, most at once, sections, times over the limit.
#[derive(Default)]
struct Inside {
    now: usize,
    most: usize,
    sections: usize,
    over: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_more_than_n_leases() {
    const MAX: usize = 3;
    let server = start_server().await;
    let path = unique_path("semaphore-limit");
    let inside = Arc::new(StdMutex::new(Inside::default()));
    let mut tasks = Vec::new();
    for task in 0..6 {
        let w = warden(&server.connect_string()).await;
        let (path, inside) = (path.clone(), inside.clone());
        tasks.push(tokio::spawn(async move {
            let semaphore = Semaphore::new(&w, &path, MAX).payload(format!("task-{task}"));
            for _ in 0..10 {
                let lease = semaphore.acquire().await.expect("lease");
                {
                    let mut inside = inside.lock().expect("inside");
                    inside.now += 1;
                    inside.sections += 1;
                    if inside.now > MAX {
                        inside.over += 1;
                    }
                    inside.most = inside.most.max(inside.now);
                }
                // Long enough for the others to fill the semaphore meanwhile.
                tokio::time::sleep(Duration::from_millis(15)).await;
                assert!(lease.lost_reason().is_none());
                inside.lock().expect("inside").now -= 1;
                lease.release().await.expect("release");
            }
        }));
    }
    for task in tasks {
        within("a leasing task", task).await.expect("task");
    }
    let (sections, most, over) = {
        let inside = inside.lock().expect("inside");
        (inside.sections, inside.most, inside.over)
    };
    println!(
        "{} leases checked, at most {} held together (limit {MAX}), {} over the limit",
        sections, most, over
    );
    assert_eq!(sections, 60);
    assert_eq!(over, 0);
    let w = warden(&server.connect_string()).await;
    assert!(children_of(&w, &format!("{path}/leases")).await.is_empty());
    assert!(children_of(&w, &format!("{path}/locks")).await.is_empty());
}

#[tokio::test]
async fn curators_layout_and_the_limit_with_tries_and_deadlines() {
    let server = start_server().await;
    let path = unique_path("semaphore-layout");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let ours = Semaphore::new(&a, &path, 2).payload("alpha");
    let first = ours.acquire().await.expect("first");
    let second = ours
        .try_acquire()
        .await
        .expect("try")
        .expect("a free lease");
    for lease in [&first, &second] {
        let name = lease.node_path().strip_prefix(&format!("{path}/leases/"));
        let name = name.expect("under <path>/leases");
        assert!(
            name.starts_with("_c_") && name.contains("-lease-"),
            "{name}"
        );
        let (data, stat) = a.get_data(lease.node_path()).await.expect("lease node");
        assert_eq!(&data[..], b"alpha");
        assert_eq!(stat.ephemeral_owner, a.session_id().0);
    }
    assert!(second.fencing_token() > first.fencing_token());

    let theirs = Semaphore::new(&b, &path, 2);
    assert!(theirs.try_acquire().await.expect("try").is_none());
    let outcome = theirs.acquire_until(soon()).await;
    assert!(matches!(outcome, Err(Error::Timeout)), "{outcome:?}");
    assert_eq!(theirs.lease_nodes().await.expect("leases").len(), 2);
    await_children(&a, &format!("{path}/locks"), 0).await;

    // A waiter gets in as soon as a lease is returned.
    let waiting = tokio::spawn(async move { theirs.acquire().await });
    await_children(&a, &format!("{path}/leases"), 3).await;
    first.release().await.expect("release");
    let third = within("the waiter", waiting)
        .await
        .expect("task")
        .expect("lease");
    assert_eq!(
        third
            .node_path()
            .rsplit('/')
            .next()
            .map(|n| n.contains("-lease-")),
        Some(true)
    );
    drop(second);
    drop(third);
    await_children(&a, &format!("{path}/leases"), 0).await;
}

#[tokio::test]
async fn many_leases_are_all_or_none() {
    let server = start_server().await;
    let path = unique_path("semaphore-many");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let held = Semaphore::new(&a, &path, 3)
        .acquire_many(2, None)
        .await
        .expect("two leases");
    assert_eq!(held.len(), 2);
    let theirs = Semaphore::new(&b, &path, 3);
    let outcome = theirs.acquire_many(2, Some(soon())).await;
    assert!(matches!(outcome, Err(Error::Timeout)), "{outcome:?}");
    // The one lease it could take went back.
    await_children(&a, &format!("{path}/leases"), 2).await;
    let outcome = theirs.acquire_many(4, None).await;
    assert!(
        matches!(outcome, Err(Error::InvalidArgument(_))),
        "{outcome:?}"
    );
    for lease in held {
        lease.release().await.expect("release");
    }
    let all = theirs
        .acquire_many(3, Some(Instant::now() + common::PATIENCE))
        .await;
    assert_eq!(all.expect("three leases").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_acquires_leave_no_node() {
    let server = start_server().await;
    let path = unique_path("semaphore-cancel");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let holder = Semaphore::new(&a, &path, 1);
    let contender = Semaphore::new(&b, &path, 1);
    for round in 0..30u64 {
        // Half the rounds full (dropped while waiting on the leases or the lock), half free.
        let held = if round % 2 == 0 {
            Some(holder.acquire().await.expect("hold"))
        } else {
            None
        };
        let cut = Duration::from_micros(spread(round) % 25_000);
        let _ = tokio::time::timeout(cut, contender.acquire()).await;
        if let Some(held) = held {
            held.release().await.expect("release");
        }
    }
    await_children(&a, &format!("{path}/leases"), 0).await;
    await_children(&a, &format!("{path}/locks"), 0).await;
}

/// A cheap spread of cut points without another dependency.
fn spread(round: u64) -> u64 {
    round
        .wrapping_mul(6_364_136_223_846_793_005)
        .rotate_left(17)
        ^ 0x9e37_79b9
}

#[tokio::test]
async fn an_expired_session_loses_its_lease_and_leases_again_with_the_new_one() {
    let server = start_server().await;
    let path = unique_path("semaphore-expire");
    let w = warden(&server.connect_string()).await;
    let semaphore = Semaphore::new(&w, &path, 1).safety(LockSafety::Lost);
    let lease = semaphore.acquire().await.expect("lease");
    let old_node = lease.node_path().to_owned();
    let generation = w.generation();
    expire(&server.connect_string(), &w).await;
    let reason = within("lost() after expiry", lease.lost()).await;
    assert!(
        matches!(
            reason,
            LostReason::Lost | LostReason::NewSession | LostReason::Deleted
        ),
        "{reason:?}"
    );
    await_new_session(&w, generation).await;
    let again = semaphore
        .acquire()
        .await
        .expect("lease with the new session");
    let stat = w
        .exists(again.node_path())
        .await
        .expect("exists")
        .expect("node");
    assert_eq!(stat.ephemeral_owner, w.session_id().0);
    assert_eq!(w.exists(&old_node).await.expect("exists"), None);
    assert_eq!(semaphore.lease_nodes().await.expect("leases").len(), 1);
    lease
        .release()
        .await
        .expect("releasing a gone lease is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_session_expires_waits_again_with_the_new_one() {
    let server = start_server().await;
    let path = unique_path("semaphore-expire-waiting");
    let leases = format!("{path}/leases");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let held = Semaphore::new(&a, &path, 1).acquire().await.expect("hold");
    let waiter_semaphore = Semaphore::new(&b, &path, 1);
    let waiter = tokio::spawn(async move { waiter_semaphore.acquire().await });
    let first = await_children(&a, &leases, 2).await;
    let generation = b.generation();
    expire(&server.connect_string(), &b).await;
    within("a new session", async {
        let mut events = b.events();
        while b.generation() == generation || b.connection().state == ConnectionState::Lost {
            events.next().await;
        }
    })
    .await;
    // The waiter's lease node went with its session; it makes a new one and waits again.
    within("the waiter to wait again", async {
        loop {
            let (children, watcher) = a.get_children_and_watch(&leases).await.expect("list");
            if children.len() == 2 && children.iter().all(|c| first.contains(c)) {
                let _ = watcher.await;
                continue;
            }
            if children.len() == 2 {
                return;
            }
            let _ = watcher.await;
        }
    })
    .await;
    held.release().await.expect("release");
    let lease = within("the waiter", waiter)
        .await
        .expect("task")
        .expect("lease");
    let stat = b
        .exists(lease.node_path())
        .await
        .expect("exists")
        .expect("node");
    assert_eq!(stat.ephemeral_owner, b.session_id().0);
    assert_eq!(children_of(&a, &leases).await.len(), 1);
    await_children(&a, &format!("{path}/locks"), 0).await;
}
