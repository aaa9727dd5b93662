//! Fenced transactions against a real ZooKeeper: `Transaction::fenced_by` with a lock guard or
//! a leadership commits while the fence holds, and is refused with `Error::FencedOut`,
//! applying nothing, once the holder's session has expired or the lock was released.

mod common;

use common::znodes::await_new_session;
use common::{start_server, unique_path, warden, within};
use std::future::Future;

use zkwarden::testing::ZkServer;
use zkwarden::warden::{Fence, LockSafety, Warden};
use zkwarden::{CreateMode, Error, ErrorCode};
use zkwarden_recipes::leader::LeaderLatch;
use zkwarden_recipes::lock::Mutex;

/// A fenced write of `value` to `resource` that also creates `marker`, so a refusal can be
/// shown to apply nothing at all.
async fn fenced_write(
    w: &Warden,
    fence: &impl Fence,
    resource: &str,
    marker: &str,
    value: &[u8],
) -> zkwarden::Result<()> {
    w.transaction()
        .fenced_by(fence)
        .set_data(resource, value.to_vec(), None)
        .create(marker, Vec::new(), CreateMode::Persistent)
        .commit()
        .await
        .map(|results| assert_eq!(results.len(), 3, "the check and both writes"))
}

/// Expires `w`'s session on the server and waits for its next session, so the fenced write
/// that follows is not caught by the old connection closing (an ambiguous `ConnectionLoss`).
async fn expire_and_reconnect(w: &Warden) {
    let generation = w.generation();
    zkwarden::testing::expire_warden(w).await.expect("expire");
    await_new_session(w, generation).await;
}

/// Asserts `outcome` is the fence's refusal, naming `node`.
fn assert_fenced_out(outcome: zkwarden::Result<()>, node: &str) {
    match outcome {
        Err(Error::FencedOut {
            node: refused,
            code,
        }) => {
            assert_eq!(refused, node);
            assert_eq!(code, ErrorCode::NoNode);
        }
        other => panic!("a write fenced by a gone node must be fenced out: {other:?}"),
    }
}

async fn data_of(w: &Warden, path: &str) -> Vec<u8> {
    w.get_data(path).await.expect("read").0.to_vec()
}

/// A server, a warden on it, and a resource node (named after `prefix`) holding `v0`.
async fn setup(prefix: &str) -> (ZkServer, Warden, String) {
    let server = start_server().await;
    let w = warden(&server.connect_string()).await;
    let resource = unique_path(prefix);
    w.create_node(&resource, b"v0", CreateMode::Persistent)
        .await
        .expect("resource");
    (server, w, resource)
}

/// The course both kinds of fence run: a write fenced by `fence` commits; once the warden's
/// session has expired (and `lost` resolved), the same write is fenced out, naming `node`,
/// and applies nothing.
async fn admitted_then_fenced_out(
    w: &Warden,
    fence: &impl Fence,
    node: &str,
    lost: impl Future,
    resource: &str,
) {
    fenced_write(w, fence, resource, &format!("{resource}-m1"), b"v1")
        .await
        .expect("a write fenced by a live holder commits");
    assert_eq!(data_of(w, resource).await, b"v1");

    expire_and_reconnect(w).await;
    within("lost() after expiry", lost).await;

    let marker = format!("{resource}-m2");
    let outcome = fenced_write(w, fence, resource, &marker, b"stale").await;
    assert_fenced_out(outcome, node);
    assert!(is_fenced_out(w, fence, resource).await);
    assert_eq!(data_of(w, resource).await, b"v1", "nothing applied");
    let marker_stat = w.exists(&marker).await.expect("exists");
    assert_eq!(marker_stat, None, "nothing applied");
}

/// Whether a fenced write to `resource` is refused as fenced out (the predicate form).
async fn is_fenced_out(w: &Warden, fence: &impl Fence, resource: &str) -> bool {
    w.transaction()
        .fenced_by(fence)
        .set_data(resource, b"again".to_vec(), None)
        .commit()
        .await
        .is_err_and(|e| e.is_fenced_out())
}

#[tokio::test]
async fn a_lock_fence_admits_the_holder_and_refuses_it_after_its_session_expired() {
    let (_server, w, resource) = setup("fence-lock-resource").await;
    let mutex = Mutex::new(&w, unique_path("fence-lock")).safety(LockSafety::Lost);
    let guard = mutex.lock().await.expect("lock");
    admitted_then_fenced_out(&w, &guard, guard.node_path(), guard.lost(), &resource).await;
}

#[tokio::test]
async fn a_leadership_fence_admits_the_leader_and_refuses_it_after_its_session_expired() {
    let (_server, w, resource) = setup("fence-leader-resource").await;
    let latch = LeaderLatch::builder(&w, unique_path("fence-leader"))
        .safety(LockSafety::Lost)
        .start()
        .await
        .expect("start");
    let term = latch.await_leadership(None).await.expect("leadership");
    admitted_then_fenced_out(&w, &term, term.node_path(), term.lost(), &resource).await;
}

#[tokio::test]
async fn stacked_fences_name_the_one_that_failed_and_other_failures_stay_multi_failed() {
    let (_server, w, resource) = setup("fence-stack-resource").await;
    let kept = Mutex::new(&w, unique_path("fence-stack-a"))
        .lock()
        .await
        .expect("lock a");
    let released = Mutex::new(&w, unique_path("fence-stack-b"))
        .lock()
        .await
        .expect("lock b");

    // A failure of the transaction's own ops is not a fence failure: the index counts the
    // fence's checks, as the server does.
    let missing = unique_path("fence-stack-missing");
    match w
        .transaction()
        .fenced_by(&kept)
        .set_data(&missing, b"x".to_vec(), None)
        .fenced_by(&released)
        .commit()
        .await
    {
        Err(Error::MultiFailed { index, code, .. }) => {
            assert_eq!((index, code), (2, ErrorCode::NoNode));
        }
        other => panic!("a missing target is not a fence failure: {other:?}"),
    }

    let released_node = released.node_path().to_owned();
    let fence_b = released.fence_checks();
    released.release().await.expect("release");
    let outcome = w
        .transaction()
        .fenced_by(&kept)
        .fenced_by(&Checks(fence_b))
        .set_data(&resource, b"late".to_vec(), None)
        .commit()
        .await
        .map(drop);
    assert_fenced_out(outcome, &released_node);
    assert_eq!(data_of(&w, &resource).await, b"v0", "nothing applied");
}

/// A fence made of checks taken from a guard before it was released.
struct Checks(Vec<zkwarden::Op>);

impl Fence for Checks {
    fn fence_checks(&self) -> Vec<zkwarden::Op> {
        self.0.clone()
    }
}

/// Closing a warden tells its lock guards they lost before the server deletes their nodes:
/// by the time another session hears that the lock node is gone, the guard already says
/// `Closed`. (The simulation found `Closed` reported only once the session was gone, so a
/// holder still believed in a lock another process could take; its regression seeds are
/// in `sim/tests/recipes.rs`.)
#[tokio::test]
async fn closing_the_warden_ends_a_guard_before_its_node_goes() {
    let server = start_server().await;
    let holder = warden(&server.connect_string()).await;
    let observer = warden(&server.connect_string()).await;
    let path = unique_path("close-order");
    let guard = within("lock", Mutex::new(&holder, &path).lock())
        .await
        .expect("lock");
    let (stat, watcher) = observer
        .exists_and_watch(guard.node_path())
        .await
        .expect("watch the lock node");
    assert!(stat.is_some(), "the lock node exists while held");
    let closing = tokio::spawn({
        let holder = holder.clone();
        async move { holder.close().await }
    });
    let event = within("the lock node deleted", watcher)
        .await
        .expect("a watch event");
    assert_eq!(event.event_type, zkwarden::EventType::NodeDeleted);
    assert_eq!(
        guard.lost_reason(),
        Some(zkwarden_recipes::lock::LostReason::Closed),
        "the guard must have been told before its node went"
    );
    within("close", closing)
        .await
        .expect("join")
        .expect("close");
}
