//! The warden and the recipes in the simulation: each seed starts two or three real
//! [`zkwarden::Warden`]s over the simulated network, and on each runs the real recipes of
//! `zkwarden-recipes`, unchanged: a mutex whose holders make fenced writes, a semaphore, a
//! leader latch, a tree cache, a resilient data watch, an exactly-once counter and
//! sequential creates. Then the network heals and every invariant of
//! [`crate::check_recipes`] and [`check::writes`] is checked.

mod data;
mod lock;
mod warden;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use zkwarden::Warden;
use zkwarden::proto::CreateMode;

use crate::check::{self, WriteCall};
use crate::check_recipes::{self, FencedWrite, Holding};
use crate::model::conn::{Shared, lock as lock_model};
use crate::net::Links;
use crate::scenario::Stats;
use crate::setup::Setup;
use crate::trace::Trace;

/// The recipes' root in the model's tree.
const ROOT: &str = "/r";
/// The mutex, its fenced resource, the semaphore, the latch, its fenced resource, the
/// cached tree, the watched node and the counter.
const MUTEX: &str = "/r/mutex";
const FENCED: &str = "/r/fenced";
const SEMAPHORE: &str = "/r/semaphore";
const LEASES: usize = 2;
const LATCH: &str = "/r/latch";
const LED: &str = "/r/led";
const TREE: &str = "/r/tree";
const WATCHED: &str = "/r/watched";
const COUNTER: &str = "/r/counter";

/// What the actors of one run record for the checks after it.
#[derive(Debug, Default)]
struct Record {
    mutex: Vec<Holding>,
    leases: Vec<Holding>,
    leaders: Vec<Holding>,
    writes: Vec<WriteCall>,
    /// Counter increments acknowledged, and failed with a lost outcome.
    increments: (usize, usize),
    /// The first violation an actor saw while running (a hang, a state out of order).
    violation: Option<String>,
    /// Every warden's connection changes other than `Connected`/`Reconnected`: the session
    /// they name and when they were reported.
    doubts: Vec<(i64, Duration)>,
}

/// The record, shared by every task of a run.
#[derive(Debug, Clone)]
struct Rec {
    inner: Arc<Mutex<Record>>,
    start: Instant,
}

impl Rec {
    fn with<T>(&self, f: impl FnOnce(&mut Record) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Simulated time since the run began.
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn violate(&self, message: String) {
        self.with(|r| {
            r.violation.get_or_insert(message);
        });
    }
}

/// What every actor of one warden shares.
#[derive(Clone)]
struct Ctx {
    id: usize,
    warden: Warden,
    rec: Rec,
    trace: Trace,
    /// The actors stop starting work at this time; then the network heals.
    until: Instant,
    /// How long any one call may take before it counts as a hang.
    bound: Duration,
    session_timeout: Duration,
    /// The network's windows, a pause of this warden's process among them.
    links: Links,
}

impl Ctx {
    /// `call`, or a violation if it does not complete within the bound (a hang).
    async fn bounded<T>(&self, what: &str, call: impl Future<Output = T>) -> Option<T> {
        match tokio::time::timeout(self.bound, call).await {
            Ok(out) => Some(out),
            Err(_) => {
                self.rec.violate(format!(
                    "at {}: warden {}: {what} did not complete within {:?}",
                    self.trace.time(),
                    self.id,
                    self.bound
                ));
                None
            }
        }
    }

    fn running(&self) -> bool {
        Instant::now() < self.until
    }

    /// Waits out a pause of this warden's process (it starts no work meanwhile), then says
    /// whether the run goes on.
    async fn next_round(&self) -> bool {
        self.links
            .wait_out_pause(self.id, "warden", &self.trace)
            .await;
        self.running()
    }
}

/// Runs the recipe scenario of `seed`; `Err` is a violation (message without the seed).
pub async fn run(seed: u64, trace: Trace) -> Result<Stats, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let setup = Setup::draw(&mut rng, seed, "recipes, ", &trace, |model| {
        for path in [ROOT, TREE, FENCED, LED] {
            make_node(model, path);
        }
        lock_model(model).commit(Instant::now());
    });
    let session_timeout = setup.session_timeout;
    let model = setup.model.clone();
    let rec = Rec {
        inner: Arc::default(),
        start: Instant::now(),
    };
    let until = Instant::now() + Duration::from_millis(rng.u64(6_000..14_000));
    let operation_timeout = session_timeout * 3;
    let bound = operation_timeout + session_timeout * 4 + Duration::from_secs(10);

    let mut handles = Vec::new();
    let mut ctxs = Vec::new();
    for id in 0..setup.clients {
        let started = Warden::builder(setup.connect_string(id))
            .session_timeout(session_timeout)
            .connection_timeout(session_timeout * 3)
            .operation_timeout(operation_timeout)
            .follow_ensemble(false)
            .dialer(setup.net.clone())
            .start()
            .await;
        let warden = match started {
            Ok(warden) => warden,
            Err(e) => {
                trace.log(format_args!("warden {id}: could not start: {e}"));
                continue;
            }
        };
        trace.log(format_args!("warden {id}: session {}", warden.session_id()));
        let ctx = Ctx {
            id,
            warden,
            rec: rec.clone(),
            trace: trace.clone(),
            until,
            bound,
            session_timeout,
            links: setup.links.clone(),
        };
        handles.push(tokio::spawn(warden::follow(ctx.clone())));
        let observers = data::observe(&ctx.warden).await;
        let actor_seed = rng.u64(..);
        handles.extend(spawn_actors(&ctx, actor_seed));
        ctxs.push((ctx, observers));
    }
    // Work until the end of the rough phase, then heal: the rough phase's actors finish
    // what they had started, and the caches and watches must catch up.
    tokio::time::sleep_until(until).await;
    setup.heal(&trace);
    let mut settled = Vec::new();
    let mut closing = Vec::new();
    for (ctx, observers) in ctxs {
        settled.push(tokio::spawn(data::settle(
            ctx.clone(),
            model.clone(),
            observers,
        )));
        closing.push(ctx);
    }
    for handle in settled {
        handle
            .await
            .map_err(|e| format!("a settling task panicked: {e}"))?;
    }
    let end = rec.now();
    for ctx in &closing {
        trace.log(format_args!("run: closing warden {}", ctx.id));
        let _ = ctx.bounded("close", ctx.warden.close()).await;
    }
    for handle in handles {
        handle
            .await
            .map_err(|e| format!("an actor panicked: {e}"))?;
    }
    setup.stop();
    verdict(&rec, &model, end)
}

/// The checks after the run, on what the actors recorded and what the model applied.
fn verdict(rec: &Rec, model: &Shared, end: Duration) -> Result<Stats, String> {
    let model = lock_model(model);
    // A forced expiry ends a session the server still hears from: no client can know
    // before the server tells it, so the holder's right ends at that instant (its writes
    // after it are the fence's to refuse, which the fenced-write check covers), provided
    // the holder stopped by the time its warden heard of it. A holding granted after the
    // expiry but before the warden heard of it came from a reply the server sent before
    // the expiry (the model answers no request of an ended session) that was still on its
    // way: it held nothing.
    let forced: Vec<(i64, Duration)> = model
        .ended
        .iter()
        .filter(|e| e.2 == "forced expiry")
        .map(|e| (e.0, e.1.saturating_duration_since(rec.start)))
        .collect();
    rec.with(|r| {
        if let Some(v) = &r.violation {
            return Err(v.clone());
        }
        for &(session, at) in &forced {
            // When the victim's warden heard of it (the connection closed under it).
            let told = r
                .doubts
                .iter()
                .filter(|d| d.0 == session && d.1 >= at)
                .map(|d| d.1)
                .min()
                .unwrap_or(end);
            for held in [&mut r.mutex, &mut r.leases, &mut r.leaders] {
                for h in held.iter_mut() {
                    // Only a holder that stopped when its warden heard is excused.
                    if h.session == session && h.from < told && h.until.is_some_and(|u| u <= told) {
                        h.until = Some(h.until.map_or(at, |u| u.min(at.max(h.from))));
                    }
                }
            }
        }
        check_recipes::holders("mutex", 1, &r.mutex, end)?;
        check_recipes::holders("semaphore", LEASES, &r.leases, end)?;
        check_recipes::holders("leader latch", 1, &r.leaders, end)?;
        for (what, path) in [("mutex", FENCED), ("leader latch", LED)] {
            let fenced: Vec<FencedWrite> = model
                .applied
                .iter()
                .filter(|a| a.kind == "set" && a.path == path)
                .filter_map(|a| parse_fenced(a.zxid, &a.data))
                .collect();
            check_recipes::fenced_writes(what, &fenced)?;
        }
        // Each write of the counter adds one; the create that starts it holds its value.
        let mut counted = 0;
        for a in model.applied.iter().filter(|a| a.path == COUNTER) {
            match a.kind {
                "set" => counted += 1,
                "create" => counted += counter_value(&a.data)?,
                _ => {}
            }
        }
        let value = match model.tree.get(COUNTER) {
            Some(node) => counter_value(&node.data)?,
            None => 0,
        };
        check_recipes::counter(value, counted as usize, r.increments.0, r.increments.1)?;
        check::writes(&r.writes, &model.applied)?;
        Ok(Stats {
            calls: r.writes.len() + r.mutex.len() + r.leases.len() + r.leaders.len(),
            connection_losses: 0,
            expirations: model.ended.iter().filter(|e| e.2 != "closed").count(),
            events: 0,
        })
    })
}

/// The counter's value: eight bytes, big-endian (as Curator's `DistributedAtomicLong`), or
/// none for zero.
fn counter_value(data: &[u8]) -> Result<i64, String> {
    if data.is_empty() {
        // A counter node made empty reads as zero.
        return Ok(0);
    }
    <[u8; 8]>::try_from(data)
        .map(i64::from_be_bytes)
        .map_err(|_| format!("counter: unreadable value {data:?}"))
}

/// A fenced write's data is `token|who`.
fn fenced_data(token: i64, who: &str) -> Bytes {
    Bytes::from(format!("{token}|{who}"))
}

fn parse_fenced(zxid: i64, data: &[u8]) -> Option<FencedWrite> {
    let text = std::str::from_utf8(data).ok()?;
    let (token, who) = text.split_once('|')?;
    Some(FencedWrite {
        zxid,
        token: token.parse().ok()?,
        who: who.to_string(),
    })
}

/// The actors of one warden, each with its own generator drawn from `seed`.
fn spawn_actors(ctx: &Ctx, seed: u64) -> Vec<tokio::task::JoinHandle<()>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    vec![
        tokio::spawn(lock::mutex(ctx.clone(), rng.u64(..))),
        tokio::spawn(lock::semaphore(ctx.clone(), rng.u64(..))),
        tokio::spawn(lock::latch(ctx.clone(), rng.u64(..))),
        tokio::spawn(data::writer(ctx.clone(), rng.u64(..))),
        tokio::spawn(data::counter(ctx.clone(), rng.u64(..))),
    ]
}

/// A persistent node made before the run (no zxid of a client's).
fn make_node(model: &Shared, path: &str) {
    let mut m = lock_model(model);
    m.tree.zxid += 1;
    let zxid = m.tree.zxid;
    let args = crate::model::tree::CreateArgs {
        path,
        data: b"",
        acl: vec![],
        mode: CreateMode::Persistent,
        ttl: 0,
    };
    let _ = m.tree.create(&args, 0, zxid, 0, &mut Vec::new());
}
