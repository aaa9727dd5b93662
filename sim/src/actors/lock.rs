//! The exclusive recipes: a mutex whose holders make fenced writes (sometimes after being
//! told they lost, as a stale holder would), a semaphore, a leader latch whose leaders
//! make fenced writes too. Every holding is recorded from the moment it was granted until
//! the holder was told it lost or began to release.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use zkwarden::warden::Fence;
use zkwarden_recipes::leader::LeaderLatch;
use zkwarden_recipes::lock::{Mutex, Semaphore};

use super::{Ctx, FENCED, LATCH, LEASES, LED, MUTEX, Rec, Record, SEMAPHORE, fenced_data};
use crate::check_recipes::Holding;

/// Which record a holding goes to.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Mutex,
    Lease,
    Leader,
}

fn list(r: &mut Record, kind: Kind) -> &mut Vec<Holding> {
    match kind {
        Kind::Mutex => &mut r.mutex,
        Kind::Lease => &mut r.leases,
        Kind::Leader => &mut r.leaders,
    }
}

/// Records a holding from now; a task ends it the moment `lost` resolves.
fn hold(
    ctx: &Ctx,
    kind: Kind,
    who: String,
    session: zkwarden::SessionId,
    lost: impl Future<Output = zkwarden_recipes::lock::LostReason> + Send + 'static,
) -> usize {
    ctx.trace.log(format_args!("{who}: holds"));
    let from = ctx.rec.now();
    let index = ctx.rec.with(|r| {
        let held = list(r, kind);
        held.push(Holding {
            who,
            from,
            until: None,
            session: session.0,
        });
        held.len() - 1
    });
    let (rec, trace) = (ctx.rec.clone(), ctx.trace.clone());
    tokio::spawn(async move {
        let reason = lost.await;
        stop(&rec, kind, index);
        trace.log(format_args!("{kind:?} holding {index}: lost ({reason:?})"));
    });
    index
}

/// The holder no longer believes it holds (told it lost, or releasing): from now on.
fn stop(rec: &Rec, kind: Kind, index: usize) {
    let now = rec.now();
    rec.with(|r| {
        if let Some(h) = list(r, kind).get_mut(index) {
            h.until = Some(h.until.map_or(now, |u| u.min(now)));
        }
    });
}

/// A pause of up to `max_ms`.
async fn pause(rng: &mut fastrand::Rng, max_ms: u64) {
    tokio::time::sleep(Duration::from_millis(rng.u64(0..max_ms))).await;
}

/// One fenced write of `token` by `who` to `path`; a stale holder's must be refused.
async fn fenced_write(ctx: &Ctx, fence: &(impl Fence + Sync), path: &str, token: i64, who: &str) {
    let tx = ctx.warden.transaction().fenced_by(fence).set_data(
        path,
        fenced_data(token, who).to_vec(),
        None,
    );
    if let Some(result) = ctx.bounded("a fenced write", tx.commit()).await {
        ctx.trace.log(format_args!(
            "{who}: fenced write (token {token}): {:?}",
            result.map(|_| ())
        ));
    }
}

/// Takes the mutex, makes a few fenced writes, releases it; again until the run ends.
pub(super) async fn mutex(ctx: Ctx, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mutex = Mutex::new(&ctx.warden, MUTEX);
    let mut n = 0;
    while ctx.next_round().await {
        let deadline = Instant::now() + Duration::from_millis(rng.u64(500..5_000));
        let Some(got) = ctx.bounded("mutex lock", mutex.lock_until(deadline)).await else {
            return;
        };
        let guard = match got {
            Ok(guard) => guard,
            Err(_) => {
                pause(&mut rng, 300).await;
                continue;
            }
        };
        n += 1;
        let who = format!("warden {} mutex holder {n}", ctx.id);
        let token = guard.fencing_token();
        let index = hold(
            &ctx,
            Kind::Mutex,
            who.clone(),
            guard.session_id(),
            guard.lost(),
        );
        for _ in 0..rng.usize(1..=3) {
            // A holder told it lost sometimes writes anyway, as a stale one would: the
            // fence must refuse it once another holds the lock.
            if guard.lost_reason().is_some() && rng.bool() {
                break;
            }
            fenced_write(&ctx, &guard, FENCED, token, &who).await;
            pause(&mut rng, 800).await;
        }
        stop(&ctx.rec, Kind::Mutex, index);
        let _ = ctx.bounded("mutex release", guard.release()).await;
        pause(&mut rng, 300).await;
    }
}

/// Takes a lease of the semaphore, holds it a while, releases it; again until the run ends.
pub(super) async fn semaphore(ctx: Ctx, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let semaphore = Semaphore::new(&ctx.warden, SEMAPHORE, LEASES);
    let mut n = 0;
    while ctx.next_round().await {
        let deadline = Instant::now() + Duration::from_millis(rng.u64(500..5_000));
        let Some(got) = ctx
            .bounded("semaphore acquire", semaphore.acquire_until(deadline))
            .await
        else {
            return;
        };
        let lease = match got {
            Ok(lease) => lease,
            Err(_) => {
                pause(&mut rng, 300).await;
                continue;
            }
        };
        n += 1;
        let who = format!("warden {} lease {n}", ctx.id);
        let index = hold(&ctx, Kind::Lease, who, lease.session_id(), lease.lost());
        pause(&mut rng, 1_500).await;
        stop(&ctx.rec, Kind::Lease, index);
        let _ = ctx.bounded("lease release", lease.release()).await;
        pause(&mut rng, 300).await;
    }
}

/// Runs a leader latch; each term makes a fenced write and lasts until lost or until the
/// latch is closed (and a new one started) after a while.
pub(super) async fn latch(ctx: Ctx, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut n = 0;
    while ctx.next_round().await {
        let Some(Ok(latch)) = ctx
            .bounded(
                "latch start",
                LeaderLatch::builder(&ctx.warden, LATCH)
                    .id(format!("w{}", ctx.id))
                    .start(),
            )
            .await
        else {
            return;
        };
        // Terms of this latch until it is closed.
        let closing = Instant::now() + Duration::from_millis(rng.u64(1_000..8_000));
        let mut current = None;
        while ctx.running() && Instant::now() < closing {
            let Some(got) = ctx
                .bounded("await leadership", latch.await_leadership(Some(closing)))
                .await
            else {
                return;
            };
            let Ok(leadership) = got else { break };
            n += 1;
            let who = format!("warden {} leader {n}", ctx.id);
            let index = hold(
                &ctx,
                Kind::Leader,
                who.clone(),
                leadership.session_id(),
                leadership.lost(),
            );
            current = Some(index);
            fenced_write(&ctx, &leadership, LED, leadership.fencing_token(), &who).await;
            tokio::select! {
                biased;
                _ = leadership.lost() => {
                    current = None;
                    // A term can end at the instant it began: let time move on.
                    pause(&mut rng, 100).await;
                }
                () = tokio::time::sleep_until(closing) => {}
            }
        }
        // Closing ends the term first.
        if let Some(index) = current {
            stop(&ctx.rec, Kind::Leader, index);
        }
        let _ = ctx.bounded("latch close", latch.close()).await;
        pause(&mut rng, 300).await;
    }
}
