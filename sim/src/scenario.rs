//! One simulated run: a model server, a fault plan and a few actors, each a real
//! [`zkwarden::Client`] issuing seeded batches of calls over the simulated network; then the
//! network heals and every invariant is checked.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use zkwarden::proto::{CreateMode, Stat};
use zkwarden::{Client, Error, OneshotWatcher, Op, SessionState};

use crate::check::{self, WriteCall};
use crate::model::conn::{Shared, lock};
use crate::net::{Links, Plan};
use crate::setup::Setup;
use crate::trace::Trace;

/// The paths the actors fight over.
const NODES: [&str; 3] = ["/s/a", "/s/b", "/s/c"];
/// The server's tick (sessions get 2 to 20 ticks).
pub(crate) const TICK: Duration = Duration::from_millis(200);

/// Figures of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Calls made.
    pub calls: usize,
    /// Calls that failed with a lost connection.
    pub connection_losses: usize,
    /// Sessions the server expired (silent past their timeout, or a forced expiry).
    pub expirations: usize,
    /// Watch events delivered.
    pub events: usize,
}

/// What a watch registered by a read must see.
#[derive(Debug)]
struct WatchRec {
    path: String,
    kind: WatchKind,
    /// The zxid the read saw (`mzxid` for data, `pzxid` for children; 0 for exist).
    seen: i64,
    /// The handle, until it resolves (with an event or an error).
    watcher: Option<OneshotWatcher>,
}

impl WatchRec {
    /// Whether the watch has resolved by now: its handle is polled once, without waiting.
    /// Asked when a reply is seen, this says whether the event came before that reply.
    fn resolved(&mut self) -> bool {
        if let Some(watcher) = &mut self.watcher {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if Pin::new(watcher).poll(&mut cx).is_ready() {
                self.watcher = None;
            }
        }
        self.watcher.is_none()
    }
}

/// The watches an actor follows, shared with its calls in flight: each read checks them the
/// moment its reply arrives.
type Watches = Arc<Mutex<WatchList>>;

/// The watches an actor follows, and how many have resolved; and what its reads showed, to
/// check that they never go back in time.
#[derive(Debug, Default)]
struct WatchList {
    open: Vec<WatchRec>,
    resolved: usize,
    /// The newest zxid a read of this actor's showed (in any stat).
    newest: i64,
    /// The model, whose log tells whether a read shows a state older than `newest`.
    model: Option<Shared>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchKind {
    Data,
    Exist,
    Child,
}

/// Everything an actor keeps.
struct Actor {
    id: usize,
    client: Client,
    rng: fastrand::Rng,
    trace: Trace,
    bound: Duration,
    watches: Watches,
    writes: Arc<Mutex<Vec<WriteCall>>>,
    stats: Stats,
    next_tag: usize,
    /// The network's windows (a pause of this actor's process among them).
    links: Links,
}

/// A call's result, as the actor checks it; a read's check (made when its reply arrived)
/// comes with it.
enum Outcome {
    Write(Result<(), Error>),
    Read(Option<Error>, Result<(), String>),
}

type Pending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// What a call was, for checks and messages.
#[derive(Debug, Clone)]
struct CallInfo {
    what: String,
    tag: Option<Bytes>,
}

/// Runs the scenario of `seed`; `Err` is a violation (message without the seed).
pub async fn run(seed: u64, trace: Trace) -> Result<Stats, String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let setup = Setup::draw(&mut rng, seed, "", &trace, seed_tree);
    let (session_timeout, actors) = (setup.session_timeout, setup.clients);
    let (model, links, net) = (setup.model.clone(), setup.links.clone(), setup.net.clone());
    let writes = Arc::new(Mutex::new(Vec::new()));
    // A barrier whose release order is fixed (tokio's Barrier wakes through a watch
    // channel, whose wake order is random): each actor reports its steps done, then the
    // network heals and the actors are released in id order.
    let (done, mut all_done) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut releases = Vec::new();
    let mut handles = Vec::new();
    for id in 0..actors {
        let builder = Client::builder(setup.connect_string(id))
            .session_timeout(session_timeout)
            .connect_timeout(session_timeout * 3)
            .dialer(net.clone());
        let actor_seed = rng.u64(..);
        let (trace, writes, links) = (trace.clone(), writes.clone(), links.clone());
        let model = model.clone();
        let done = done.clone();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        releases.push(release);
        let barrier = async move {
            let _ = done.send(id);
            let _ = released.await;
        };
        handles.push(tokio::spawn(async move {
            let client = match builder.connect().await {
                Ok(client) => client,
                Err(e) => {
                    trace.log(format_args!("actor {id}: could not connect: {e}"));
                    barrier.await;
                    return Ok(Stats::default());
                }
            };
            trace.log(format_args!("actor {id}: session {}", client.session_id()));
            let alive = Arc::new(Mutex::new(Ok(())));
            let monitor = tokio::spawn(liveness(
                client.clone(),
                session_timeout * 2 / 3,
                id,
                trace.clone(),
                alive.clone(),
            ));
            let mut actor = Actor {
                id,
                client,
                rng: fastrand::Rng::with_seed(actor_seed),
                trace,
                bound: session_timeout * 4 + Duration::from_secs(10),
                watches: Arc::new(Mutex::new(WatchList {
                    model: Some(model),
                    ..WatchList::default()
                })),
                writes,
                stats: Stats::default(),
                next_tag: 0,
                links,
            };
            let steps = actor.rng.usize(4..12);
            let mut result = Ok(());
            for _ in 0..steps {
                if let Err(e) = actor.step().await {
                    result = Err(e);
                    break;
                }
            }
            // Everyone waits for the others, then the network heals and each checks what
            // its watches must have seen.
            barrier.await;
            monitor.abort();
            result?;
            alive.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
            actor.settle().await?;
            Ok::<Stats, String>(actor.stats)
        }));
    }
    drop(done);
    for _ in 0..actors {
        if all_done.recv().await.is_none() {
            break;
        }
    }
    setup.heal(&trace);
    for release in releases {
        let _ = release.send(());
    }
    let mut stats = Stats::default();
    for handle in handles {
        let s = handle
            .await
            .map_err(|e| format!("an actor panicked: {e}"))??;
        stats.calls += s.calls;
        stats.connection_losses += s.connection_losses;
        stats.events += s.events;
    }
    setup.stop();
    let model = lock(&model);
    stats.expirations = model.ended.iter().filter(|e| e.2 != "closed").count();
    let writes = writes.lock().unwrap_or_else(|e| e.into_inner());
    check::writes(&writes, &model.applied)?;
    Ok(stats)
}

/// Slack on the client's read timeout: its timers fire at their deadlines on the paused
/// clock; this only absorbs the instant a reply is being processed.
const READ_SLACK: Duration = Duration::from_millis(50);

/// The client must notice a silent server: while connected, it may go `read` (two thirds of
/// the session timeout) without hearing from its server, and no longer. A breach is kept in
/// `verdict` (the first one).
async fn liveness(
    client: Client,
    read: Duration,
    id: usize,
    trace: Trace,
    verdict: Arc<Mutex<Result<(), String>>>,
) {
    let mut status = client.state();
    loop {
        let connected = status.borrow_and_update().state.is_connected();
        let heard = client.last_heard();
        let due = match (connected, heard) {
            (true, Some(heard)) => Some(heard + read + READ_SLACK),
            _ => None,
        };
        let timer = crate::scenario::sleep_until_due(due);
        tokio::select! {
            biased;
            changed = status.changed() => if changed.is_err() { return },
            () = timer => {
                // Still connected, and nothing heard since: the read timeout did not fire.
                if client.session_state().is_connected() && client.last_heard() == heard {
                    let message = format!(
                        "at {}: actor {id}: still connected {:?} after last hearing from the \
                         server (read timeout {read:?})",
                        trace.time(),
                        read + READ_SLACK
                    );
                    *verdict.lock().unwrap_or_else(|e| e.into_inner()) = Err(message);
                    return;
                }
            }
        }
    }
}

/// Sleeps until `due`, or forever when nothing is due (a deadline check that is off).
pub(crate) async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn lock_plan(plan: &Mutex<Plan>) -> std::sync::MutexGuard<'_, Plan> {
    plan.lock().unwrap_or_else(|e| e.into_inner())
}

/// `/s`, the actors' playground.
pub(crate) fn seed_tree(model: &Shared) {
    let mut m = lock(model);
    m.tree.zxid += 1;
    let zxid = m.tree.zxid;
    let args = crate::model::tree::CreateArgs {
        path: "/s",
        data: b"",
        acl: vec![],
        mode: CreateMode::Persistent,
        ttl: 0,
    };
    let _ = m.tree.create(&args, 0, zxid, 0, &mut Vec::new());
    m.commit(Instant::now());
}

/// Expires silent sessions every tick; once, at `forced`, expires a live session whatever
/// it did (a server-side expiry).
pub(crate) async fn ticker(model: Shared, forced: Option<Duration>, seed: u64, trace: Trace) {
    let start = Instant::now();
    let mut forced = forced;
    let mut rng = fastrand::Rng::with_seed(seed);
    loop {
        tokio::time::sleep(TICK / 4).await;
        let now = Instant::now();
        let mut m = lock(&model);
        if forced.is_some_and(|at| now - start >= at) {
            forced = None;
            let sessions = m.sessions();
            if !sessions.is_empty() {
                let victim = sessions[rng.usize(..sessions.len())];
                trace.log(format_args!("server: forced expiry of session {victim:#x}"));
                m.end_session(victim, now, "forced expiry");
            }
        }
        let before = m.ended.len();
        m.tick(now);
        for (id, _, why) in &m.ended[before..] {
            trace.log(format_args!("server: session {id:#x} {why}"));
        }
    }
}

impl Actor {
    fn tag(&mut self) -> Bytes {
        self.next_tag += 1;
        Bytes::from(format!("a{}-{}", self.id, self.next_tag))
    }

    fn node(&mut self) -> &'static str {
        NODES[self.rng.usize(..NODES.len())]
    }

    /// One batch of calls made back to back, then a pause.
    async fn step(&mut self) -> Result<(), String> {
        // A paused process makes no calls: the actor waits out its pause.
        self.links
            .wait_out_pause(self.id, "actor", &self.trace)
            .await;
        if matches!(
            self.client.session_state(),
            SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
        ) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return Ok(());
        }
        let n = self.rng.usize(1..=4);
        let mut infos = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        for _ in 0..n {
            let (info, call) = self.call();
            infos.push(info);
            pending.push(call);
        }
        self.stats.calls += n;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, call) in pending.into_iter().enumerate() {
            let (order, bound) = (order.clone(), self.bound);
            tasks.push(tokio::spawn(async move {
                let outcome = tokio::time::timeout(bound, call).await;
                order.lock().unwrap_or_else(|e| e.into_inner()).push(i);
                outcome
            }));
        }
        for (task, info) in tasks.into_iter().zip(infos) {
            let outcome = task.await.map_err(|e| format!("a call panicked: {e}"))?;
            let Ok(outcome) = outcome else {
                return Err(format!(
                    "at {}: actor {}: {} did not complete within {:?}",
                    self.trace.time(),
                    self.id,
                    info.what,
                    self.bound
                ));
            };
            self.check(&info, outcome)?;
        }
        let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
        check::call_order(self.id, &self.trace.time(), &order)?;
        let pause = if self.rng.u8(..10) == 0 {
            Duration::from_millis(self.rng.u64(1_000..6_000))
        } else {
            Duration::from_millis(self.rng.u64(0..300))
        };
        tokio::time::sleep(pause).await;
        Ok(())
    }

    /// Makes one call (queued now, in call order); returns what it is and its reply.
    fn call(&mut self) -> (CallInfo, Pending) {
        let path = self.node().to_string();
        let c = self.client.clone();
        let info = |what: String, tag: Option<Bytes>| CallInfo { what, tag };
        match self.rng.u8(..12) {
            0..=3 => {
                let tag = self.tag();
                let mode = match self.rng.u8(..6) {
                    0 => CreateMode::Ephemeral,
                    1 => CreateMode::PersistentSequential,
                    2 => CreateMode::EphemeralSequential,
                    _ => CreateMode::Persistent,
                };
                let f = self.client.create(&path, &tag, mode);
                let what = format!("create {path} {mode:?}");
                (
                    info(what, Some(tag)),
                    Box::pin(async move { Outcome::Write(f.await.map(|_| ())) }),
                )
            }
            4 | 5 => {
                let tag = self.tag();
                let f = c.set_data(&path, &tag, None);
                (
                    info(format!("set {path}"), Some(tag)),
                    Box::pin(async move { Outcome::Write(f.await.map(|_| ())) }),
                )
            }
            6 => {
                let f = c.delete(&path, None);
                (
                    info(format!("delete {path}"), None),
                    Box::pin(async move { Outcome::Write(f.await) }),
                )
            }
            7 => {
                let (a, b) = (self.tag(), self.tag());
                let other = self.node().to_string();
                let ops = [
                    Op::create(&path, a.to_vec(), CreateMode::Persistent),
                    Op::set_data(&other, b.to_vec(), None),
                ];
                let f = self.client.multi(&ops);
                // Both tags are applied or neither: the check follows the first.
                (
                    info(format!("multi create {path} + set {other}"), Some(a)),
                    Box::pin(async move { Outcome::Write(f.await.map(|_| ())) }),
                )
            }
            8 | 9 => {
                let f = c.get_data_and_watch(&path);
                let (watches, p, id) = (self.watches.clone(), path.clone(), self.id);
                (
                    info(format!("get_data_and_watch {path}"), None),
                    Box::pin(async move {
                        match f.await {
                            Ok((_, s, w)) => seen(&watches, id, &p, Seen::Node(s), Some(w)),
                            Err(Error::NoNode) => seen(&watches, id, &p, Seen::Missing, None),
                            Err(e) => Outcome::Read(Some(e), Ok(())),
                        }
                    }),
                )
            }
            10 => {
                let f = c.exists_and_watch(&path);
                let (watches, p, id) = (self.watches.clone(), path.clone(), self.id);
                (
                    info(format!("exists_and_watch {path}"), None),
                    Box::pin(async move {
                        match f.await {
                            Ok((Some(s), w)) => seen(&watches, id, &p, Seen::Node(s), Some(w)),
                            Ok((None, w)) => seen(&watches, id, &p, Seen::Missing, Some(w)),
                            Err(e) => Outcome::Read(Some(e), Ok(())),
                        }
                    }),
                )
            }
            _ => {
                let f = c.get_children2_and_watch("/s");
                let (watches, id) = (self.watches.clone(), self.id);
                (
                    CallInfo {
                        what: "get_children2_and_watch /s".into(),
                        tag: None,
                    },
                    Box::pin(async move {
                        match f.await {
                            Ok((_, s, w)) => seen(&watches, id, "/s", Seen::Children(s), Some(w)),
                            Err(e) => Outcome::Read(Some(e), Ok(())),
                        }
                    }),
                )
            }
        }
    }

    /// Checks one reply: writes go to the log; a read brings the check it made on arrival.
    fn check(&mut self, info: &CallInfo, outcome: Outcome) -> Result<(), String> {
        let at = self.trace.time();
        let error = match &outcome {
            Outcome::Write(Err(e)) | Outcome::Read(Some(e), _) => Some(e),
            _ => None,
        };
        if error.is_some_and(Error::is_connection_loss) {
            self.stats.connection_losses += 1;
        }
        self.trace.log(format_args!(
            "actor {}: {} -> {}",
            self.id,
            info.what,
            match error {
                Some(e) => format!("error: {e}"),
                None => "ok".into(),
            }
        ));
        match outcome {
            Outcome::Write(result) => {
                if let Some(tag) = &info.tag {
                    let call = WriteCall::new(self.id, info.what.clone(), tag.clone(), &result, at);
                    self.writes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(call);
                }
                Ok(())
            }
            Outcome::Read(_, checked) => checked.map_err(|e| format!("at {at}: {e}")),
        }
    }

    /// After the network healed: a sync, then one read of every watched path. A change the
    /// model holds that a watch has not reported by then is silence, which the read's
    /// check reports.
    async fn settle(&mut self) -> Result<(), String> {
        let mut synced = false;
        for _ in 0..5 {
            if matches!(
                self.client.session_state(),
                SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
            ) {
                break;
            }
            match tokio::time::timeout(self.bound, self.client.sync("/")).await {
                Ok(Ok(())) => {
                    synced = true;
                    break;
                }
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(_) => {
                    return Err(format!(
                        "at {}: actor {}: sync did not complete within {:?}",
                        self.trace.time(),
                        self.id,
                        self.bound
                    ));
                }
            }
        }
        if synced {
            let paths: Vec<(String, WatchKind)> = lock_watches(&self.watches)
                .open
                .iter()
                .map(|w| (w.path.clone(), w.kind))
                .collect();
            for (path, kind) in paths {
                let (watches, id) = (&self.watches, self.id);
                let outcome = match kind {
                    WatchKind::Data | WatchKind::Exist => match self.client.exists(&path).await {
                        Ok(Some(s)) => seen(watches, id, &path, Seen::Node(s), None),
                        Ok(None) => seen(watches, id, &path, Seen::Missing, None),
                        Err(e) => Outcome::Read(Some(e), Ok(())),
                    },
                    WatchKind::Child => match self.client.get_children2(&path).await {
                        Ok((_, s)) => seen(watches, id, &path, Seen::Children(s), None),
                        Err(e) => Outcome::Read(Some(e), Ok(())),
                    },
                };
                let info = CallInfo {
                    what: format!("final read of {path}"),
                    tag: None,
                };
                self.check(&info, outcome)?;
            }
        }
        self.stats.events += lock_watches(&self.watches).resolved;
        match tokio::time::timeout(self.bound, self.client.close()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(format!(
                "at {}: actor {}: close did not complete within {:?}",
                self.trace.time(),
                self.id,
                self.bound
            )),
        }
    }
}

fn lock_watches(watches: &Watches) -> std::sync::MutexGuard<'_, WatchList> {
    watches.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a read showed of a node.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// The node, with its stat (`getData`, `exists`).
    Node(Stat),
    /// No node.
    Missing,
    /// The node's child list, with its stat.
    Children(Stat),
}

/// A read of `path` by `actor` has just shown `what`: every watch the actor holds there that
/// this read shows changed must already have delivered its event (watch events come before
/// any reply read after them; a reconnect fires the missed ones or errs, never stays
/// silent). Then `watcher`, the watch the read left, is followed.
fn seen(
    watches: &Watches,
    actor: usize,
    path: &str,
    what: Seen,
    watcher: Option<OneshotWatcher>,
) -> Outcome {
    let mut list = lock_watches(watches);
    let mut checked = fresh(&list, actor, path, what);
    for w in list.open.iter_mut().filter(|w| w.path == path) {
        let changed = match (w.kind, what) {
            (WatchKind::Data, Seen::Node(s)) => s.mzxid > w.seen,
            (WatchKind::Data | WatchKind::Child, Seen::Missing) => true,
            (WatchKind::Exist, Seen::Node(_) | Seen::Children(_)) => true,
            (WatchKind::Child, Seen::Children(s)) => s.pzxid > w.seen,
            _ => false,
        };
        if checked.is_ok() && changed && !w.resolved() {
            checked = Err(format!(
                "actor {actor}: a read of {path} shows {what:?}, a change its {:?} watch (set \
                 at zxid {}) has not reported",
                w.kind, w.seen
            ));
            break;
        }
    }
    list.newest = list.newest.max(match what {
        Seen::Node(s) | Seen::Children(s) => s.mzxid.max(s.pzxid).max(s.czxid),
        Seen::Missing => 0,
    });
    let before = list.open.len();
    list.open.retain_mut(|w| !w.resolved());
    list.resolved += before - list.open.len();
    if let Some(watcher) = watcher {
        let (kind, zxid) = match what {
            Seen::Node(s) => (WatchKind::Data, s.mzxid),
            Seen::Missing => (WatchKind::Exist, 0),
            Seen::Children(s) => (WatchKind::Child, s.pzxid),
        };
        list.open.push(WatchRec {
            path: path.to_string(),
            kind,
            seen: zxid,
            watcher: Some(watcher),
        });
    }
    Outcome::Read(None, checked)
}

/// A read never goes back in time: once an actor's reads showed zxid `newest`, its client
/// has seen at least that zxid, and a member that serves it has applied at least that much
/// (it refuses a client that has seen more), so no later read may show `path` older than
/// a change at or before `newest`.
fn fresh(list: &WatchList, actor: usize, path: &str, what: Seen) -> Result<(), String> {
    let Some(model) = &list.model else {
        return Ok(());
    };
    let (shown, children) = match what {
        Seen::Node(s) => (s.mzxid, false),
        Seen::Children(s) => (s.pzxid, true),
        Seen::Missing => return Ok(()),
    };
    let model = lock(model);
    check::fresh(&model.applied, path, children, shown, list.newest)
        .map_err(|e| format!("actor {actor}: {e}"))
}
