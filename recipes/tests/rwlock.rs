//! The Curator-compatible read/write lock against a real ZooKeeper: readers share, writers
//! exclude everyone, a reader queues behind a writer ahead of it and watches that writer,
//! the write holder may read, deadlines and cancellation leave no node, and an expired
//! session loses its guards and contends again with its new session.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use common::znodes::{
    await_children, await_new_session, children_of, expire, name_of, watches_by_session,
};
use common::{PATIENCE, start_server, unique_path, warden, within};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use zkwarden::Error;
use zkwarden::warden::LockSafety;
use zkwarden_recipes::lock::{LostReason, Mutex, ReadWriteLock};

/// Who is inside the critical section, as the holders report it.
#[derive(Default)]
struct Inside {
    readers: usize,
    writer: bool,
    overlaps: usize,
    most_readers: usize,
    sections: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_overlap_and_writers_are_exclusive() {
    let server = start_server().await;
    let path = unique_path("rw-exclusion");
    let inside = Arc::new(StdMutex::new(Inside::default()));
    let tokens = Arc::new(StdMutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for task in 0..5 {
        let write = task >= 3;
        let w = warden(&server.connect_string()).await;
        let (path, inside, tokens) = (path.clone(), inside.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let lock = ReadWriteLock::new(&w, &path).payload(format!("task-{task}"));
            for _ in 0..15 {
                let guard = if write {
                    lock.write().lock().await.expect("write lock")
                } else {
                    lock.read().lock().await.expect("read lock")
                };
                {
                    let mut now = inside.lock().expect("inside");
                    now.sections += 1;
                    if write {
                        if now.writer || now.readers > 0 {
                            now.overlaps += 1;
                        }
                        now.writer = true;
                        tokens.lock().expect("tokens").push(guard.fencing_token());
                    } else {
                        if now.writer {
                            now.overlaps += 1;
                        }
                        now.readers += 1;
                        now.most_readers = now.most_readers.max(now.readers);
                    }
                }
                // Long enough for other readers to come in beside this one.
                tokio::time::sleep(Duration::from_millis(3)).await;
                assert!(guard.lost_reason().is_none());
                {
                    let mut now = inside.lock().expect("inside");
                    if write {
                        now.writer = false;
                    } else {
                        now.readers -= 1;
                    }
                }
                guard.release().await.expect("release");
            }
        }));
    }
    for task in tasks {
        within("a locking task", task).await.expect("task");
    }
    let (sections, most_readers, overlaps) = {
        let inside = inside.lock().expect("inside");
        (inside.sections, inside.most_readers, inside.overlaps)
    };
    println!(
        "{sections} critical sections checked (45 read, 30 write), at most {most_readers} readers together, {overlaps} overlaps"
    );
    assert_eq!(sections, 75);
    assert_eq!(overlaps, 0, "a reader beside a writer, or two writers");
    let tokens = tokens.lock().expect("tokens").clone();
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "write fencing tokens must grow: {tokens:?}"
    );
    let w = warden(&server.connect_string()).await;
    assert!(children_of(&w, &path).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_queues_behind_the_first_writer_ahead_of_it() {
    let server = start_server().await;
    let path = unique_path("rw-queue");
    let a = warden(&server.connect_string()).await;
    let lock = ReadWriteLock::new(&a, &path);
    // Readers share the lock while no writer is ahead.
    let r1 = lock.read().lock().await.expect("first reader");
    let r2 = lock
        .read()
        .try_lock()
        .await
        .expect("second reader")
        .expect("readers share");

    // A writer queues behind them.
    let writer_warden = warden(&server.connect_string()).await;
    let writer_session = format!("0x{:x}", writer_warden.session_id().0);
    let (writer_in, mut writer_in_rx) = oneshot::channel();
    let (writer_out, writer_out_rx) = oneshot::channel::<()>();
    let writer_path = path.clone();
    let writer = tokio::spawn(async move {
        let guard = ReadWriteLock::new(&writer_warden, &writer_path)
            .write()
            .lock()
            .await
            .expect("writer");
        let _ = writer_in.send(name_of(guard.node_path()));
        let _ = writer_out_rx.await;
        guard.release().await.expect("writer release");
    });
    let queue = await_children(&a, &path, 3).await;
    let writer_node = queue
        .iter()
        .find(|c| c.contains("__WRIT__"))
        .expect("the writer's node")
        .clone();

    // A reader arriving now may not pass the waiting writer.
    assert!(lock.read().try_lock().await.expect("try read").is_none());
    assert_eq!(
        children_of(&a, &path).await.len(),
        3,
        "try_lock left a node"
    );
    let reader_warden = warden(&server.connect_string()).await;
    let reader_session = format!("0x{:x}", reader_warden.session_id().0);
    let (reader_in, mut reader_in_rx) = mpsc::unbounded_channel();
    let reader_path = path.clone();
    let reader = tokio::spawn(async move {
        let guard = ReadWriteLock::new(&reader_warden, &reader_path)
            .read()
            .lock()
            .await
            .expect("late reader");
        let _ = reader_in.send(());
        guard.release().await.expect("reader release");
    });
    await_children(&a, &path, 4).await;

    // The late reader watches the writer; the writer watches the reader just before it.
    let r2_node = format!("{path}/{}", name_of(r2.node_path()));
    let expected = BTreeMap::from([
        (
            reader_session.clone(),
            BTreeSet::from([format!("{path}/{writer_node}")]),
        ),
        (writer_session.clone(), BTreeSet::from([r2_node])),
    ]);
    let started = Instant::now();
    let seen = loop {
        let seen: BTreeMap<_, _> = watches_by_session(&server)
            .into_iter()
            .filter(|(s, _)| *s == reader_session || *s == writer_session)
            .collect();
        if seen == expected || started.elapsed() > PATIENCE {
            break seen;
        }
        // The server registers a watch a little after the read that set it: poll it, bounded.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen, expected, "who watches whom");

    // The readers leave: the writer gets in, and the late reader still waits.
    r1.release().await.expect("release r1");
    r2.release().await.expect("release r2");
    let granted = within("the writer", &mut writer_in_rx)
        .await
        .expect("writer granted");
    assert_eq!(granted, writer_node);
    assert!(
        reader_in_rx.try_recv().is_err(),
        "the late reader got in beside the writer"
    );
    writer_out.send(()).expect("writer still waiting");
    within("the late reader", reader_in_rx.recv())
        .await
        .expect("reader granted");
    within("the writer", writer).await.expect("writer task");
    within("the reader", reader).await.expect("reader task");
    await_children(&a, &path, 0).await;
}

#[tokio::test]
async fn the_write_holder_takes_the_read_lock_at_once() {
    let server = start_server().await;
    let path = unique_path("rw-reentrant");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let lock = ReadWriteLock::new(&a, &path);
    let write = lock.write().lock().await.expect("write");
    // Another writer waits behind.
    let other = ReadWriteLock::new(&b, &path);
    let other_write = other.write();
    let waiting = tokio::spawn(async move { other_write.lock().await.map(|g| g.fencing_token()) });
    await_children(&a, &path, 2).await;

    let read = within(
        "a read lock under the write lock",
        lock.read().lock_while_writing(&write),
    )
    .await
    .expect("read under write");
    assert!(read.node_path().contains("__READ__"));
    // Nobody else reads while the write lock is held.
    assert!(other.read().try_lock().await.expect("try").is_none());

    // Only this lock's write guards are proof.
    let outcome = lock.read().lock_while_writing(&read).await;
    assert!(
        matches!(outcome, Err(Error::InvalidArgument(_))),
        "{outcome:?}"
    );
    let elsewhere = Mutex::new(&a, unique_path("rw-other"))
        .lock()
        .await
        .expect("mutex");
    let outcome = lock.read().lock_while_writing(&elsewhere).await;
    assert!(
        matches!(outcome, Err(Error::InvalidArgument(_))),
        "{outcome:?}"
    );

    read.release().await.expect("release read");
    let token = write.fencing_token();
    write.release().await.expect("release write");
    let next = within("the waiting writer", waiting)
        .await
        .expect("task")
        .expect("lock");
    assert!(next > token);
}

#[tokio::test]
async fn deadlines_and_tries_leave_no_node() {
    let server = start_server().await;
    let path = unique_path("rw-deadline");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let held = ReadWriteLock::new(&a, &path)
        .write()
        .lock()
        .await
        .expect("write");
    let lock = ReadWriteLock::new(&b, &path);
    let soon = || Instant::now() + Duration::from_millis(300);
    let outcome = lock.write().lock_until(soon()).await;
    assert!(matches!(outcome, Err(Error::Timeout)), "{outcome:?}");
    let outcome = lock.read().lock_until(soon()).await;
    assert!(matches!(outcome, Err(Error::Timeout)), "{outcome:?}");
    assert!(lock.write().try_lock().await.expect("try write").is_none());
    assert!(lock.read().try_lock().await.expect("try read").is_none());
    assert_eq!(
        children_of(&a, &path).await,
        [name_of(held.node_path())],
        "only the holder's node"
    );
    drop(held);
    await_children(&a, &path, 0).await;
    let read = lock
        .read()
        .try_lock()
        .await
        .expect("try read")
        .expect("free");
    let write = lock.write().try_lock().await.expect("try write");
    assert!(write.is_none(), "a reader holds the lock");
    read.release().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_acquires_leave_no_node() {
    let server = start_server().await;
    let path = unique_path("rw-cancel");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let holder = ReadWriteLock::new(&a, &path);
    let contender = ReadWriteLock::new(&b, &path);
    for round in 0..32u64 {
        // A quarter of the rounds each: held by a writer or a reader, or free; the
        // contender reads or writes.
        let held = match round % 4 {
            0 => Some(holder.write().lock().await.expect("hold write")),
            1 => Some(holder.read().lock().await.expect("hold read")),
            _ => None,
        };
        let cut = Duration::from_micros(spread(round) % 20_000);
        if round % 2 == 0 {
            let _ = tokio::time::timeout(cut, contender.read().lock()).await;
        } else {
            let _ = tokio::time::timeout(cut, contender.write().lock()).await;
        }
        if let Some(held) = held {
            held.release().await.expect("release");
        }
    }
    // Janitor and background deletes settle; watched, not slept on.
    await_children(&a, &path, 0).await;
}

/// A cheap spread of cut points without another dependency.
fn spread(round: u64) -> u64 {
    round
        .wrapping_mul(6_364_136_223_846_793_005)
        .rotate_left(17)
        ^ 0x9e37_79b9
}

#[tokio::test]
async fn an_expired_session_loses_its_guard_and_contends_with_the_new_one() {
    let server = start_server().await;
    let path = unique_path("rw-expire");
    let w = warden(&server.connect_string()).await;
    let lock = ReadWriteLock::new(&w, &path).safety(LockSafety::Lost);
    let read = lock.read().lock().await.expect("read");
    let (old_node, old_session) = (read.node_path().to_owned(), w.session_id());
    let generation = w.generation();
    expire(&server.connect_string(), &w).await;
    let reason = within("lost() after expiry", read.lost()).await;
    assert!(
        matches!(
            reason,
            LostReason::Lost | LostReason::NewSession | LostReason::Deleted
        ),
        "{reason:?}"
    );
    await_new_session(&w, generation).await;
    let write = lock
        .write()
        .lock()
        .await
        .expect("write with the new session");
    let stat = w
        .exists(write.node_path())
        .await
        .expect("exists")
        .expect("node");
    assert_eq!(stat.ephemeral_owner, w.session_id().0);
    assert_ne!(w.session_id(), old_session);
    assert_eq!(w.exists(&old_node).await.expect("exists"), None);
    assert_eq!(children_of(&w, &path).await, [name_of(write.node_path())]);
    read.release().await.expect("releasing a gone node is fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_session_expires_queues_again_with_the_new_one() {
    let server = start_server().await;
    let path = unique_path("rw-expire-waiting");
    let (a, b) = (
        warden(&server.connect_string()).await,
        warden(&server.connect_string()).await,
    );
    let held = ReadWriteLock::new(&a, &path)
        .write()
        .lock()
        .await
        .expect("hold");
    let waiter_lock = ReadWriteLock::new(&b, &path);
    let waiter = tokio::spawn(async move { waiter_lock.read().lock().await });
    let queue = await_children(&a, &path, 2).await;
    let first_node = queue
        .into_iter()
        .find(|c| c.contains("__READ__"))
        .expect("the waiter's node");
    let generation = b.generation();
    expire(&server.connect_string(), &b).await;
    await_new_session(&b, generation).await;
    // The old node went with its session; the waiter queues again under the new one.
    within("the waiter to queue again", async {
        loop {
            let (children, watcher) = a.get_children_and_watch(&path).await.expect("list");
            if children.len() == 2 && !children.contains(&first_node) {
                return;
            }
            let _ = watcher.await;
        }
    })
    .await;
    held.release().await.expect("release");
    let guard = within("the waiter", waiter)
        .await
        .expect("task")
        .expect("read lock");
    let stat = b
        .exists(guard.node_path())
        .await
        .expect("exists")
        .expect("node");
    assert_eq!(stat.ephemeral_owner, b.session_id().0);
    assert_ne!(name_of(guard.node_path()), first_node);
    assert_eq!(children_of(&a, &path).await, [name_of(guard.node_path())]);
}
