//! The recipes that follow data: sequential creates (the writes a blind retry would
//! duplicate), writes to a cached tree and a watched node, an exactly-once counter; and,
//! after the network heals, the check that the tree cache and the resilient data watch
//! caught up with the model.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use zkwarden::proto::CreateMode;
use zkwarden::warden::DataEvent;
use zkwarden::{Error, Warden};
use zkwarden_recipes::atomic::DistributedAtomicNumber;
use zkwarden_recipes::cache::TreeCache;

use super::{COUNTER, Ctx, TREE, WATCHED};
use crate::check::{WriteCall, maybe_applied};
use crate::model::conn::{Shared, lock as lock_model};

/// What a warden's observers hold: its tree cache and the latest state its resilient data
/// watch reported.
pub(super) struct Observers {
    cache: Option<TreeCache>,
    /// `None` before the first event; then the data of the watched node, if it exists.
    watched: Arc<Mutex<Option<Option<Bytes>>>>,
    follower: tokio::task::JoinHandle<()>,
}

/// Starts a tree cache on [`TREE`] and a resilient data watch on [`WATCHED`].
pub(super) async fn observe(warden: &Warden) -> Observers {
    let cache = TreeCache::builder(warden, TREE).start().await.ok();
    let mut watch = warden.watch_data(WATCHED);
    let watched: Arc<Mutex<Option<Option<Bytes>>>> = Arc::default();
    let latest = watched.clone();
    let follower = tokio::spawn(async move {
        while let Some(event) = watch.next().await {
            let now = match event {
                DataEvent::Resync { node, .. } => node.map(|(data, _)| data),
                DataEvent::Changed { data, .. } | DataEvent::Created { data, .. } => Some(data),
                DataEvent::Deleted => None,
            };
            *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        }
    });
    Observers {
        cache,
        watched,
        follower,
    }
}

/// Writes until the run ends: sequential creates below [`TREE`] (each checked: acknowledged
/// means applied once, a lost outcome at most once), creates, writes and deletes of a few
/// children there, and writes of [`WATCHED`].
pub(super) async fn writer(ctx: Ctx, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut n = 0;
    while ctx.next_round().await {
        n += 1;
        let tag = format!("w{}-{n}", ctx.id);
        let child = format!("{TREE}/x{}", rng.u8(..3));
        let w = &ctx.warden;
        match rng.u8(..6) {
            0 | 1 => {
                let mode = if rng.bool() {
                    CreateMode::PersistentSequential
                } else {
                    CreateMode::EphemeralSequential
                };
                let what = format!("create {TREE}/q- {mode:?}");
                let call = w.create(&format!("{TREE}/q-"), tag.as_bytes()).mode(mode);
                let Some(result) = ctx.bounded(&what, call.into_future()).await else {
                    return;
                };
                ctx.trace
                    .log(format_args!("warden {}: {what} -> {result:?}", ctx.id));
                let result = result.map(|_| ());
                let call =
                    WriteCall::new(ctx.id, what, Bytes::from(tag), &result, ctx.trace.time());
                ctx.rec.with(|r| r.writes.push(call));
            }
            2 => {
                let _ = ctx
                    .bounded("create", w.create(&child, tag.as_bytes()).into_future())
                    .await;
            }
            3 => {
                let _ = ctx
                    .bounded(
                        "set",
                        w.set_data(&child, tag.as_bytes(), None).into_future(),
                    )
                    .await;
            }
            4 => {
                let _ = ctx
                    .bounded("delete", w.delete(&child, None).into_future())
                    .await;
            }
            _ => {
                let set = ctx
                    .bounded(
                        "set",
                        w.set_data(WATCHED, tag.as_bytes(), None).into_future(),
                    )
                    .await;
                if matches!(set, Some(Err(Error::NoNode))) {
                    let _ = ctx
                        .bounded("create", w.create(WATCHED, tag.as_bytes()).into_future())
                        .await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..400))).await;
    }
}

/// Increments the counter until the run ends, counting what was acknowledged and what had
/// a lost outcome.
pub(super) async fn counter(ctx: Ctx, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let counter = DistributedAtomicNumber::<i64>::new(&ctx.warden, COUNTER);
    while ctx.next_round().await {
        let Some(result) = ctx.bounded("increment", counter.increment()).await else {
            return;
        };
        ctx.trace.log(format_args!(
            "warden {}: increment -> {:?}",
            ctx.id,
            result.as_ref().map(|v| (v.succeeded, v.post))
        ));
        match result {
            Ok(v) if v.succeeded => ctx.rec.with(|r| r.increments.0 += 1),
            Ok(_) => {}
            Err(e) if maybe_applied(&e) => ctx.rec.with(|r| r.increments.1 += 1),
            // The run closed the warden while the increment was still retrying, perhaps
            // after a send whose reply was lost: with the session gone, no client can
            // settle whether that send landed, so the outcome is unknown (recipe seed 272).
            Err(Error::Closed) if ctx.warden.is_closed() => {
                ctx.rec.with(|r| r.increments.1 += 1);
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..600))).await;
    }
    let _ = ctx.bounded("counter close", counter.close()).await;
}

/// After the network healed: the cache and the watch must come to equal the model (a change
/// missed across a reconnect or a new session must be caught up, never stay silent) within
/// the bound of one call.
pub(super) async fn settle(ctx: Ctx, model: Shared, observers: Observers) {
    let deadline = Instant::now() + ctx.bound;
    loop {
        let (tree, watched) = {
            let m = lock_model(&model);
            let tree: BTreeMap<String, Bytes> = m
                .tree
                .nodes()
                .filter(|(p, _)| p.starts_with(TREE))
                .map(|(p, n)| (p.clone(), n.data.clone()))
                .collect();
            (tree, m.tree.get(WATCHED).map(|n| n.data.clone()))
        };
        let cached: Option<BTreeMap<String, Bytes>> = observers.cache.as_ref().map(|c| {
            c.snapshot()
                .iter()
                .map(|(p, n)| (p.clone(), n.data.clone()))
                .collect()
        });
        let seen = observers
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let cache_ok = cached.as_ref().is_none_or(|c| *c == tree);
        let watch_ok = seen.as_ref() == Some(&watched);
        if cache_ok && watch_ok {
            break;
        }
        if Instant::now() >= deadline {
            let message = if !cache_ok {
                format!(
                    "the tree cache of {TREE} still differs from the model {:?} after the \
                     network healed: cache {cached:?}, model {tree:?}",
                    ctx.bound
                )
            } else {
                format!(
                    "the resilient data watch of {WATCHED} still reports {seen:?} {:?} after \
                     the network healed; the model holds {watched:?} (a missed change went \
                     unreported)",
                    ctx.bound
                )
            };
            ctx.rec.violate(format!(
                "at {}: warden {}: {message}",
                ctx.trace.time(),
                ctx.id
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(cache) = observers.cache {
        drop(cache);
    }
    observers.follower.abort();
}
