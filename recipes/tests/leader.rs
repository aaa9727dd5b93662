//! Leader latch and leader selector against a real ZooKeeper: one leader at a time,
//! hand-over on close, expiry, suspension, re-queueing and participant listings.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::znodes::{await_children_where, await_state, children_of, expire, name_of};
use common::{start_server, unique_path, warden, within};
use futures_util::FutureExt;
use futures_util::future::select_all;
use tokio::sync::mpsc;
use zkwarden::testing::FaultProxy;
use zkwarden::warden::LockSafety;
use zkwarden::{ConnectionState, CreateMode, Error, ErrorCode, Op};
use zkwarden_recipes::leader::{LeaderLatch, LeaderSelector, Leadership, LostReason};

/// Waits until one of `latches` leads; returns its index and term.
async fn await_any_leader(latches: &[&LeaderLatch]) -> (usize, Leadership) {
    let waits = latches
        .iter()
        .map(|latch| Box::pin(latch.await_leadership(None)));
    let (result, index, _) = within("a leader", select_all(waits)).await;
    (index, result.expect("leadership"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_among_five_latches_and_everybody_is_listed() {
    let server = start_server().await;
    let path = unique_path("latch-five");
    let mut latches = Vec::new();
    for i in 0..5 {
        let w = warden(&server.connect_string()).await;
        latches.push(
            LeaderLatch::builder(&w, &path)
                .id(format!("rust-{i}"))
                .start()
                .await
                .expect("start"),
        );
    }
    let observer = warden(&server.connect_string()).await;
    await_children_where(&observer, &path, "five latch nodes", |c| c.len() == 5).await;
    let refs: Vec<&LeaderLatch> = latches.iter().collect();
    let (leader, term) = await_any_leader(&refs).await;

    let leading: Vec<usize> = (0..5).filter(|&i| latches[i].has_leadership()).collect();
    assert_eq!(leading, [leader], "exactly one latch leads");
    let node = latches[leader].node_path().expect("leader's node");
    assert_eq!(term.node_path(), node);
    assert_eq!(
        observer
            .exists(&node)
            .await
            .expect("exists")
            .expect("node")
            .czxid,
        term.fencing_token()
    );
    let name = name_of(&node);
    assert!(
        name.starts_with("_c_") && name.contains("-latch-"),
        "{name}"
    );

    let participants = latches[0].participants().await.expect("participants");
    assert_eq!(participants.len(), 5);
    assert_eq!(participants[0].id, format!("rust-{leader}"));
    assert!(participants[0].is_leader);
    assert!(participants[1..].iter().all(|p| !p.is_leader));
    let mut ids: Vec<String> = participants.iter().map(|p| p.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, (0..5).map(|i| format!("rust-{i}")).collect::<Vec<_>>());
    let listed = latches[3]
        .leader()
        .await
        .expect("leader")
        .expect("a leader");
    assert_eq!(listed.id, format!("rust-{leader}"));
    assert_eq!(listed.node, node);

    for latch in latches {
        latch.close().await.expect("close");
    }
    assert!(
        children_of(&observer, &path).await.is_empty(),
        "no node left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_leader_hands_leadership_on_with_a_larger_token() {
    let server = start_server().await;
    let path = unique_path("latch-handover");
    let mut latches: Vec<Option<LeaderLatch>> = Vec::new();
    for i in 0..3 {
        let w = warden(&server.connect_string()).await;
        latches.push(Some(
            LeaderLatch::builder(&w, &path)
                .id(format!("rust-{i}"))
                .start()
                .await
                .expect("start"),
        ));
    }
    let mut last_token = i64::MIN;
    let mut leaders = Vec::new();
    for _round in 0..3 {
        let live: Vec<(usize, &LeaderLatch)> = latches
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().map(|l| (i, l)))
            .collect();
        let refs: Vec<&LeaderLatch> = live.iter().map(|(_, l)| *l).collect();
        let (at, term) = await_any_leader(&refs).await;
        let index = live[at].0;
        assert!(term.fencing_token() > last_token, "tokens grow");
        last_token = term.fencing_token();
        leaders.push(index);
        let lost = term.lost();
        latches[index]
            .take()
            .expect("leader")
            .close()
            .await
            .expect("close");
        assert_eq!(within("lost() on close", lost).await, LostReason::Released);
        assert!(!term.is_valid());
    }
    leaders.sort();
    assert_eq!(leaders, [0, 1, 2], "each latch led once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_leader_loses_and_queues_again_with_a_new_node() {
    let server = start_server().await;
    let path = unique_path("latch-expire");
    let resource = unique_path("latch-resource");
    let wa = warden(&server.connect_string()).await;
    let wb = warden(&server.connect_string()).await;
    wa.create_node(&resource, b"v0", CreateMode::Persistent)
        .await
        .expect("resource");
    let a = LeaderLatch::builder(&wa, &path)
        .id("a")
        .start()
        .await
        .expect("start");
    let term = within("a leads", a.await_leadership(None))
        .await
        .expect("a leads");
    let b = LeaderLatch::builder(&wb, &path)
        .id("b")
        .start()
        .await
        .expect("start");
    let old_node = term.node_path().to_owned();
    let old_name = name_of(&old_node);
    await_children_where(&wb, &path, "both nodes", |c| c.len() == 2).await;

    wa.multi(&term.fence(vec![Op::set_data(&resource, b"v1".to_vec(), None)]))
        .await
        .expect("a fenced write while leading");
    let old_generation = wa.generation();
    expire(&server.connect_string(), &wa).await;
    let reason = within("a's lost()", term.lost()).await;
    assert!(
        matches!(
            reason,
            // The server drops the connection first: under the default safety that is
            // already the end of the term.
            LostReason::Suspended | LostReason::Lost | LostReason::NewSession | LostReason::Deleted
        ),
        "{reason:?}"
    );
    assert!(!a.has_leadership());

    let b_term = within("b leads", b.await_leadership(None))
        .await
        .expect("b leads");
    assert!(b_term.fencing_token() > term.fencing_token());

    // A queues again behind b, with a new node of its new session; the old one is gone.
    let now = await_children_where(&wb, &path, "a's new node", |c| {
        c.len() == 2 && !c.contains(&old_name)
    })
    .await;
    assert!(wa.generation() > old_generation);
    let new_node = a.node_path().expect("a's node");
    assert_ne!(new_node, old_node);
    assert!(now.contains(&name_of(&new_node)), "{now:?} {new_node}");
    let stat = wa.exists(&new_node).await.expect("exists").expect("node");
    assert_eq!(stat.ephemeral_owner, wa.session_id().0);
    assert!(!a.has_leadership());

    // The former leader's fenced write is refused by the server.
    match wa
        .multi(&term.fence(vec![Op::set_data(&resource, b"stale".to_vec(), None)]))
        .await
    {
        Err(Error::MultiFailed { index, code, .. }) => {
            assert_eq!((index, code), (0, ErrorCode::NoNode))
        }
        other => panic!("a stale fenced write must fail: {other:?}"),
    }

    // When b leaves, a leads again with a larger token.
    b.close().await.expect("close b");
    let again = within("a leads again", a.await_leadership(None))
        .await
        .expect("a leads again");
    assert!(again.fencing_token() > b_term.fencing_token());
    a.close().await.expect("close a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_ends_the_term_at_once_and_the_latch_leads_again_after_reconnecting() {
    let server = start_server().await;
    let path = unique_path("latch-suspend");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let w = warden(&proxy.connect_string()).await;
    assert_eq!(w.lock_safety(), LockSafety::Suspend);
    let latch = LeaderLatch::builder(&w, &path)
        .id("solo")
        .start()
        .await
        .expect("start");
    let term = within("leads", latch.await_leadership(None))
        .await
        .expect("leads");
    let session = w.session_id();

    proxy.blackhole();
    await_state(&w, ConnectionState::Suspended).await;
    let reason = within("lost() at Suspended", term.lost()).await;
    assert_eq!(reason, LostReason::Suspended);
    assert!(!latch.has_leadership());
    assert!(!term.is_valid());

    proxy.pass_through();
    let again = within("leads again", latch.await_leadership(None))
        .await
        .expect("leads again");
    assert_eq!(w.session_id(), session, "the same session survived");
    assert_eq!(again.node_path(), term.node_path(), "the node was kept");
    assert_eq!(again.fencing_token(), term.fencing_token());
    assert!(again.is_valid());
    latch.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latch_that_tolerates_short_disconnections_keeps_its_term_until_the_deadline() {
    let server = start_server().await;
    let path = unique_path("latch-deadline");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let w = warden(&proxy.connect_string()).await;
    let margin = std::time::Duration::from_secs(1);
    let latch = LeaderLatch::builder(&w, &path)
        .id("patient")
        .safety(LockSafety::SessionDeadline { margin })
        .start()
        .await
        .expect("start");
    let term = within("leads", latch.await_leadership(None))
        .await
        .expect("leads");
    let mut lost = Box::pin(term.lost());

    proxy.blackhole();
    await_state(&w, ConnectionState::Suspended).await;
    assert!(
        (&mut lost).now_or_never().is_none(),
        "still leading right after Suspended"
    );
    let reason = within("lost() at the session deadline", lost).await;
    assert_eq!(reason, LostReason::SessionDeadline);
    assert!(!latch.has_leadership());
    proxy.pass_through();
    within("leads again", latch.await_leadership(None))
        .await
        .expect("leads again");
    latch.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_take_turns_requeue_and_never_overlap() {
    let server = start_server().await;
    let path = unique_path("selector-turns");
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, i64)>();
    let inside = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for i in 0..3 {
        let w = warden(&server.connect_string()).await;
        let (tx, inside) = (tx.clone(), inside.clone());
        let id = format!("sel-{i}");
        handles.push(
            LeaderSelector::builder(&w, &path)
                .id(id.clone())
                .start(move |leadership, cancel| {
                    let (tx, inside, id) = (tx.clone(), inside.clone(), id.clone());
                    async move {
                        assert!(!inside.swap(true, Ordering::SeqCst), "two leaders at once");
                        assert!(leadership.is_valid());
                        // Simulated work; stops early if leadership may be lost.
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                        }
                        inside.store(false, Ordering::SeqCst);
                        let _ = tx.send((id, leadership.fencing_token()));
                    }
                })
                .await
                .expect("start"),
        );
    }
    let mut terms = Vec::new();
    while terms.len() < 12 {
        terms.push(within("a term", rx.recv()).await.expect("a term"));
    }
    for pair in terms.windows(2) {
        assert!(pair[1].1 > pair[0].1, "tokens grow: {pair:?}");
    }
    for i in 0..3 {
        assert!(
            terms.iter().any(|(id, _)| *id == format!("sel-{i}")),
            "sel-{i} led: {terms:?}"
        );
    }
    let participants = handles[0].participants().await.expect("participants");
    assert!((1..=3).contains(&participants.len()), "{participants:?}");
    for p in &participants {
        assert!(p.node.contains("-lock-"), "{}", p.node);
    }
    for handle in handles {
        assert!(handle.terms() >= 1);
        handle.close().await.expect("close");
    }
    let w = warden(&server.connect_string()).await;
    assert!(children_of(&w, &path).await.is_empty(), "no node left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_without_requeue_leads_once_and_hands_over() {
    let server = start_server().await;
    let path = unique_path("selector-once");
    let wa = warden(&server.connect_string()).await;
    let wb = warden(&server.connect_string()).await;
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    let (release_a, released) = tokio::sync::oneshot::channel::<()>();
    let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
    let txa = tx.clone();
    let a = LeaderSelector::builder(&wa, &path)
        .id("once")
        .requeue(false)
        .start(move |_, _| {
            let (tx, released) = (txa.clone(), released.clone());
            async move {
                let _ = tx.send("once");
                if let Some(released) = released.lock().await.take() {
                    let _ = released.await;
                }
            }
        })
        .await
        .expect("start");
    assert_eq!(within("a leads", rx.recv()).await, Some("once"));
    let b = LeaderSelector::builder(&wb, &path)
        .id("again")
        .start(move |_, cancel| {
            let tx = tx.clone();
            async move {
                let _ = tx.send("again");
                cancel.cancelled().await;
            }
        })
        .await
        .expect("start");
    await_children_where(&wb, &path, "both queued", |c| c.len() == 2).await;
    let leader = a.leader().await.expect("leader").expect("a leader");
    assert_eq!(leader.id, "once");
    let listed = b.participants().await.expect("participants");
    assert_eq!(
        listed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["once", "again"]
    );
    assert!(a.has_leadership() && !b.has_leadership());

    release_a.send(()).expect("a's scope is waiting");
    assert_eq!(within("b leads", rx.recv()).await, Some("again"));
    // a did not queue again: b is alone.
    let listed = b.participants().await.expect("participants");
    assert_eq!(
        listed.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["again"]
    );
    assert_eq!(a.terms(), 1);
    b.close().await.expect("close b");
    a.close().await.expect("close a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_waits_for_leadership_runs_once_and_steps_down() {
    let server = start_server().await;
    let path = unique_path("selector-run");
    let wa = warden(&server.connect_string()).await;
    let wb = warden(&server.connect_string()).await;
    // `a` leads first and holds until told; `run` on `b` must wait for it.
    let (release_a, released) = tokio::sync::oneshot::channel::<()>();
    let (led_tx, led) = tokio::sync::oneshot::channel::<i64>();
    let a = LeaderSelector::builder(&wa, &path)
        .id("first")
        .run(move |leadership, _| async move {
            let _ = led_tx.send(leadership.fencing_token());
            let _ = released.await;
        });
    let a = tokio::spawn(a);
    let a_token = within("a leads", led).await.expect("a's term began");
    let b = tokio::spawn(LeaderSelector::builder(&wb, &path).id("second").run(
        |leadership, _cancel| async move {
            // `?` works in a scope that returns a Result.
            let node = leadership.node_path().to_owned();
            Ok::<_, Error>((leadership.fencing_token(), node))
        },
    ));
    await_children_where(&wb, &path, "both queued", |c| c.len() == 2).await;
    assert!(!b.is_finished(), "b ran before a stepped down");
    release_a.send(()).expect("a's scope is waiting");
    within("a returns", a)
        .await
        .expect("a's task")
        .expect("a ran");
    let (b_token, b_node) = within("b runs", b)
        .await
        .expect("b's task")
        .expect("b ran")
        .expect("b's scope succeeded");
    assert!(b_token > a_token, "tokens {a_token} then {b_token}");
    assert!(b_node.starts_with(&path), "{b_node}");
    // Both stepped down: no queue node is left.
    assert!(children_of(&wb, &path).await.is_empty(), "queue nodes left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_that_fails_ends_its_term_and_the_error_is_kept() {
    let server = start_server().await;
    let path = unique_path("selector-error");
    let w = warden(&server.connect_string()).await;
    let (tx, mut rx) = mpsc::unbounded_channel::<i64>();
    let terms = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let selector = LeaderSelector::builder(&w, &path)
        .start(move |leadership, cancel| {
            let (tx, terms) = (tx.clone(), terms.clone());
            async move {
                let token = leadership.fencing_token();
                let _ = tx.send(token);
                // The first term fails; the next one holds until cancelled.
                if terms.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(Error::InvalidArgument(format!("term {token} refused")));
                }
                cancel.cancelled().await;
                Ok(())
            }
        })
        .await
        .expect("start");
    let first = within("first term", rx.recv()).await.expect("a term");
    let second = within("second term", rx.recv()).await.expect("a term");
    assert!(second > first, "the selector requeued after the error");
    let error = selector
        .last_error()
        .expect("the failed term's error is kept");
    assert_eq!(error, format!("invalid argument: term {first} refused"));
    assert!(selector.has_leadership(), "the second term runs");
    selector.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_cancels_the_selector_token_and_it_requeues() {
    let server = start_server().await;
    let path = unique_path("selector-suspend");
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let w = warden(&proxy.connect_string()).await;
    let (tx, mut rx) = mpsc::unbounded_channel::<(Option<LostReason>, i64)>();
    let handle = LeaderSelector::builder(&w, &path)
        .id("solo")
        .start(move |leadership, cancel| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((None, leadership.fencing_token()));
                cancel.cancelled().await;
                let _ = tx.send((leadership.lost_reason(), leadership.fencing_token()));
            }
        })
        .await
        .expect("start");
    let (_, first_token) = within("leads", rx.recv()).await.expect("term");
    proxy.blackhole();
    let (reason, _) = within("token cancelled", rx.recv()).await.expect("cancel");
    assert_eq!(reason, Some(LostReason::Suspended));
    assert!(!handle.has_leadership());
    proxy.pass_through();
    let (reason, token) = within("leads again", rx.recv()).await.expect("term");
    assert_eq!(reason, None);
    assert!(token > first_token, "a new node, a larger token");
    assert_eq!(handle.terms(), 2);
    handle.close().await.expect("close");
    let (reason, _) = within("cancelled on close", rx.recv())
        .await
        .expect("close");
    assert_eq!(reason, Some(LostReason::Released));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_queues_with_mutex_holders_as_curators_does() {
    let server = start_server().await;
    let path = unique_path("selector-mutex");
    let w = warden(&server.connect_string()).await;
    let guard = zkwarden_recipes::lock::Mutex::new(&w, &path)
        .payload("mutex-holder")
        .lock()
        .await
        .expect("lock");
    let (tx, mut rx) = mpsc::unbounded_channel::<i64>();
    let handle = LeaderSelector::builder(&w, &path)
        .id("selector")
        .start(move |leadership, cancel| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(leadership.fencing_token());
                cancel.cancelled().await;
            }
        })
        .await
        .expect("start");
    await_children_where(&w, &path, "both queued", |c| c.len() == 2).await;
    let listed = LeaderSelector::participants_on(&w, &path)
        .await
        .expect("participants");
    assert_eq!(
        listed
            .iter()
            .map(|p| (p.id.as_str(), p.is_leader))
            .collect::<Vec<_>>(),
        [("mutex-holder", true), ("selector", false)]
    );
    assert!(!handle.has_leadership());
    let held_token = guard.fencing_token();
    guard.release().await.expect("release");
    let token = within("the selector leads", rx.recv())
        .await
        .expect("a term");
    assert!(token > held_token);
    let leader = LeaderSelector::leader_on(&w, &path)
        .await
        .expect("leader")
        .expect("a leader");
    assert_eq!(leader.id, "selector");
    handle.close().await.expect("close");
}
