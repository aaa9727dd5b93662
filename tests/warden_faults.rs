//! The warden under real faults, each test pinning down the exact sequence of connection
//! states the fault produces: a partition shorter and longer than the session, a lost reply
//! to a create, the death of the ensemble member in use, a long chaos run of expiries and
//! kills under concurrent writes, and the ordering promises of the event stream.
//!
//! Every test prints `[timing]` lines (fault to `Reconnected`, measured with
//! [`ConnectionEvent::at`]) and the retries the warden made; run with `--nocapture` to see
//! them.
#![cfg(feature = "testing")]

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use futures_util::FutureExt;
use tokio::time::Instant;
use zkwarden::testing::{FaultProxy, ZkEnsemble, expire_session};
use zkwarden::warden::{ConnectionEvents, ConnectionUpdate, DataEvent, RetryConfig, WardenBuilder};
use zkwarden::{Client, ConnectionEvent, ConnectionState, CreateMode, Error, EventType, Warden};

use ConnectionState::{Closed, Connected, Lost, Reconnected, Suspended};

/// Step of the bounded polling loops, for conditions nothing can be awaited on.
const POLL_STEP: Duration = Duration::from_millis(20);

/// A warden that retries forever (every 50 ms) and waits long for a connection, so that
/// only the fault decides what the caller sees.
fn warden_for(connect: &str, session_timeout: Duration) -> WardenBuilder {
    Warden::builder(connect)
        .session_timeout(session_timeout)
        .connection_timeout(Duration::from_secs(20))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
}

/// The next update, which must be an event (these tests never let a reader fall behind).
async fn next_event(events: &mut ConnectionEvents) -> ConnectionEvent {
    match within("connection event", events.next_update()).await {
        Some(ConnectionUpdate::Event(event)) => event,
        Some(ConnectionUpdate::Lagged { missed }) => panic!("subscriber lagged by {missed}"),
        None => panic!("event stream ended"),
    }
}

/// The next `want.len()` events, which must have exactly these states and generations.
async fn expect_events(
    events: &mut ConnectionEvents,
    want: &[(ConnectionState, u64)],
) -> Vec<ConnectionEvent> {
    let mut got = Vec::with_capacity(want.len());
    for _ in want {
        got.push(next_event(events).await);
    }
    let seen: Vec<(ConnectionState, u64)> = got.iter().map(|e| (e.state, e.generation)).collect();
    assert_eq!(seen, want, "connection events: {got:?}");
    got
}

/// Nothing more has been reported (yet).
fn assert_quiet(events: &mut ConnectionEvents, when: &str) {
    if let Some(update) = events.next_update().now_or_never() {
        panic!("unexpected connection update {when}: {update:?}");
    }
}

/// Polls `check` every [`POLL_STEP`] until it holds, failing the test after PATIENCE.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !check().await {
            tokio::time::sleep(POLL_STEP).await;
        }
    })
    .await;
}

/// The time from `fault` to `event`, for the report.
fn since(fault: Instant, event: &ConnectionEvent) -> Duration {
    event.at.saturating_duration_since(fault)
}

/// Closes the warden and checks that `Closed` (of `generation`) is the very next event.
async fn close_and_expect_closed(warden: &Warden, events: &mut ConnectionEvents, generation: u64) {
    warden.close().await.unwrap();
    expect_events(events, &[(Closed, generation)]).await;
}

/// A client straight to the servers, past any proxy: the test's own view of the data.
async fn observer(connect_string: &str) -> Client {
    connect(connect_string).await
}

#[tokio::test]
async fn a_blackhole_shorter_than_the_session_resumes_it_with_reads_and_watches_intact() {
    let session_timeout = Duration::from_secs(9);
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let warden = warden_for(&proxy.connect_string(), session_timeout)
        .start()
        .await
        .unwrap();
    let start = warden.connection();
    assert_eq!((start.state, start.generation), (Connected, 1));
    let session = start.session_id;
    let client = warden.client().expect("a session");
    assert_eq!(client.negotiated_timeout(), Some(session_timeout));
    let mut events = warden.events();
    let direct = observer(&server.connect_string()).await;

    let path = unique_path("short-partition");
    warden.create(&path, b"before").await.unwrap();
    let (_, _, oneshot) = warden.get_data_and_watch(&path).await.unwrap();
    let mut resilient = warden.watch_data(&path);
    match within("first resync", resilient.next()).await {
        Some(DataEvent::Resync {
            generation: 1,
            node: Some((data, _)),
        }) => assert_eq!(&data[..], b"before"),
        other => panic!("expected the initial Resync, got {other:?}"),
    }
    let retries_before = warden.metrics().retries;

    // The partition: sockets open, nothing moves. The client gives up on the connection
    // after its read timeout (2/3 of 9 s), well before the session's 9 s run out.
    let fault = Instant::now();
    proxy.blackhole();
    let read = tokio::spawn({
        let warden = warden.clone();
        let path = path.clone();
        async move { warden.get_data(&path).await }
    });
    let suspended = expect_events(&mut events, &[(Suspended, 1)]).await;
    assert_eq!(suspended[0].session_id, session);
    assert!(
        !read.is_finished(),
        "the read cannot finish inside the partition"
    );

    proxy.pass_through();
    let heal = Instant::now();
    let reconnected = expect_events(&mut events, &[(Reconnected, 1)]).await;
    assert_eq!(reconnected[0].session_id, session, "the same session");
    assert_eq!(warden.session_id(), session);
    assert_eq!(warden.generation(), 1);

    // The read issued inside the partition completes after the heal, with the data.
    let (data, _) = within("read from inside the partition", read)
        .await
        .unwrap()
        .expect("read succeeds after the heal");
    assert_eq!(&data[..], b"before");

    // A change made after the heal fires the one-shot watch set before the fault (kept by
    // SetWatches) and reaches the resilient watch as a plain change, not a resync.
    direct.set_data(&path, b"after", None).await.unwrap();
    let fired = within("one-shot watch from before the fault", oneshot)
        .await
        .expect("the watch survived the reconnection");
    assert_eq!(fired.event_type, EventType::NodeDataChanged);
    assert_eq!(fired.path, path);
    match within("resilient watch change", resilient.next()).await {
        Some(DataEvent::Changed { data, .. }) => assert_eq!(&data[..], b"after"),
        other => panic!("expected Changed after the heal, got {other:?}"),
    }

    let metrics = warden.metrics();
    println!(
        "[timing] short blackhole (9 s session): fault->Suspended {:?}, fault->Reconnected {:?}, \
         heal->Reconnected {:?}; retries {}; reconnects {}",
        since(fault, &suspended[0]),
        since(fault, &reconnected[0]),
        since(heal, &reconnected[0]),
        metrics.retries - retries_before,
        metrics.reconnects,
    );
    assert!(
        metrics.retries > retries_before,
        "the in-flight read failed with the connection and was retried"
    );
    assert_eq!((metrics.reconnects, metrics.rebuilds), (1, 0));
    assert_quiet(&mut events, "after the reconnection");
    assert!(
        resilient.next().now_or_never().is_none(),
        "no further watch event (in particular no Resync)"
    );
    close_and_expect_closed(&warden, &mut events, 1).await;
}

#[tokio::test]
async fn a_blackhole_longer_than_the_session_is_lost_by_the_clients_clock_then_rebuilt() {
    let session_timeout = Duration::from_secs(4);
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let warden = warden_for(&proxy.connect_string(), session_timeout)
        .start()
        .await
        .unwrap();
    let start = warden.connection();
    assert_eq!((start.state, start.generation), (Connected, 1));
    let old_session = start.session_id;
    assert_eq!(
        warden.client().unwrap().negotiated_timeout(),
        Some(session_timeout)
    );
    let mut events = warden.events();
    let direct = observer(&server.connect_string()).await;
    let ephemeral = warden
        .create(&unique_path("gen1-ephemeral"), b"")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let owner = direct.exists(&ephemeral).await.unwrap().expect("created");
    assert_eq!(owner.ephemeral_owner, old_session.0);

    let fault = Instant::now();
    proxy.blackhole();
    let replies_before = proxy.stats().bytes_to_client;
    // Nobody can tell the warden its session is gone: its own clock must, while the
    // partition is still in place.
    let lost = expect_events(&mut events, &[(Suspended, 1), (Lost, 1)]).await;
    assert_eq!(
        lost[1].session_id, old_session,
        "Lost names the old session"
    );
    assert_eq!(
        proxy.stats().bytes_to_client,
        replies_before,
        "not a byte from the server reached the client before Lost"
    );
    assert!(warden.client().is_none(), "no session while rebuilding");
    assert_quiet(&mut events, "while the partition holds the rebuild back");

    proxy.pass_through();
    let heal = Instant::now();
    let rebuilt = expect_events(&mut events, &[(Reconnected, 2)]).await;
    let new_session = rebuilt[0].session_id;
    assert_ne!(new_session, old_session, "a new session");
    assert_eq!(warden.session_id(), new_session);
    assert_eq!(warden.generation(), 2);
    // The warden ended the old session on the server before building the new one, so its
    // ephemeral is already gone.
    assert_eq!(
        direct.exists(&ephemeral).await.unwrap(),
        None,
        "the ephemeral of generation 1 is gone by the time generation 2 is reported"
    );
    let path = unique_path("gen2");
    warden.create(&path, b"new").await.unwrap();
    assert_eq!(&warden.get_data(&path).await.unwrap().0[..], b"new");

    let metrics = warden.metrics();
    println!(
        "[timing] long blackhole (4 s session): fault->Suspended {:?}, fault->Lost {:?}, \
         fault->Reconnected {:?} (held back until the heal), heal->Reconnected {:?}; \
         retries {}; rebuilds {}",
        since(fault, &lost[0]),
        since(fault, &lost[1]),
        since(fault, &rebuilt[0]),
        since(heal, &rebuilt[0]),
        metrics.retries,
        metrics.rebuilds,
    );
    assert_eq!((metrics.rebuilds, metrics.reconnects), (1, 0));
    assert_quiet(&mut events, "after the rebuild");
    close_and_expect_closed(&warden, &mut events, 2).await;
}

/// Starts a three-member ensemble that grants sessions up to 30 s (the default caps them at
/// 4 s, too short to ride out an election on a loaded machine).
async fn start_ensemble() -> ZkEnsemble {
    init_tracing();
    blocking(|| {
        ZkEnsemble::builder()
            .max_session_timeout(Duration::from_secs(30))
            .start(3)
    })
    .await
    .expect("three-member ensemble (run scripts/install-zookeeper.sh)")
}

/// The member that holds a connection for `session` (asked with `cons`, polled off the
/// runtime every [`POLL_STEP`]), and its role (`leader` or `follower`).
async fn member_holding(ensemble: ZkEnsemble, session: i64) -> (ZkEnsemble, usize, String) {
    blocking(move || {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(member) = ensemble.member_of_session(session) {
                let role = ensemble.mode(member).unwrap_or_default();
                return (ensemble, member, role);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no member reports session {session:#x}"
            );
            std::thread::sleep(POLL_STEP);
        }
    })
    .await
}

async fn kill_member(mut ensemble: ZkEnsemble, member: usize) -> ZkEnsemble {
    blocking(move || {
        ensemble.kill(member).expect("kill member");
        ensemble
    })
    .await
}

#[tokio::test]
async fn killing_the_member_in_use_moves_the_same_session_to_another() {
    let ensemble = start_ensemble().await;
    let connect = ensemble.connect_string();
    let warden = warden_for(&connect, Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let start = warden.connection();
    assert_eq!((start.state, start.generation), (Connected, 1));
    let session = start.session_id;
    let mut events = warden.events();
    let path = unique_path("member-death");
    warden.create(&path, b"before").await.unwrap();

    let (ensemble, member, role) = member_holding(ensemble, session.0).await;
    let fault = Instant::now();
    let ensemble = kill_member(ensemble, member).await;
    let moved = expect_events(&mut events, &[(Suspended, 1), (Reconnected, 1)]).await;
    assert!(moved.iter().all(|e| e.session_id == session));
    assert_eq!(warden.session_id(), session, "the same session");
    assert_eq!(warden.generation(), 1);
    let now_on = warden.client().unwrap().connected_server().unwrap();
    assert_ne!(now_on, ensemble.addr(member), "on another member now");

    // Operations work on the moved session.
    warden.set_data(&path, b"after", None).await.unwrap();
    assert_eq!(&warden.get_data(&path).await.unwrap().0[..], b"after");
    let child = warden
        .create(&format!("{path}/child"), b"")
        .mode(CreateMode::Ephemeral)
        .await
        .unwrap();
    let stat = warden.exists(&child).await.unwrap().expect("created");
    assert_eq!(stat.ephemeral_owner, session.0);

    let metrics = warden.metrics();
    println!(
        "[timing] member kill ({role}): fault->Suspended {:?}, fault->Reconnected {:?}; \
         retries {}",
        since(fault, &moved[0]),
        since(fault, &moved[1]),
        metrics.retries,
    );
    assert_eq!((metrics.reconnects, metrics.rebuilds), (1, 0));
    assert_quiet(&mut events, "after the move");
    close_and_expect_closed(&warden, &mut events, 1).await;
    drop(ensemble);
}

#[tokio::test]
async fn a_create_whose_reply_is_lost_never_makes_two_nodes() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let warden = warden_for(&proxy.connect_string(), SESSION_TIMEOUT)
        .start()
        .await
        .unwrap();
    assert_eq!(warden.connection().state, Connected);
    let session = warden.session_id();
    let mut events = warden.events();
    let direct = observer(&server.connect_string()).await;
    let parent = unique_path("lost-reply");
    direct
        .create(&parent, b"", CreateMode::Persistent)
        .await
        .unwrap();

    // A plain, non-sequential create: the server applies it, the reply vanishes.
    let node = format!("{parent}/plain");
    let dropped_before = proxy.stats().bytes_dropped;
    proxy.drop_replies();
    let fault = Instant::now();
    let create = tokio::spawn({
        let warden = warden.clone();
        let node = node.clone();
        async move { warden.create(&node, b"x").await }
    });
    eventually("the plain create lands", || async {
        direct.exists(&node).await.unwrap().is_some()
    })
    .await;
    // The node can be seen before its reply reaches the proxy; leaving drop-replies before
    // the proxy has discarded that reply would let it through.
    await_dropped_reply(&proxy, dropped_before, create_reply_len(&node)).await;
    // Leaving drop-replies resets the connection whose reply stream broke off.
    proxy.pass_through();
    let plain_events = expect_events(&mut events, &[(Suspended, 1), (Reconnected, 1)]).await;
    assert!(plain_events.iter().all(|e| e.session_id == session));
    let plain = within("plain create returns", create).await.unwrap();
    // The first attempt failed with ConnectionLoss; the retry found the node the first
    // attempt had made. (Ok would need the lost reply, which never comes.)
    assert_eq!(
        plain,
        Err(Error::NodeExists),
        "plain create after a lost reply"
    );
    assert_eq!(direct.get_children(&parent).await.unwrap(), ["plain"]);
    let retries_plain = warden.metrics().retries;

    // A sequential create: it is not repeated after the ambiguous failure, since a repeat
    // would make a second node.
    let sequential_parent = format!("{parent}/seq");
    direct
        .create(&sequential_parent, b"", CreateMode::Persistent)
        .await
        .unwrap();
    let dropped_before = proxy.stats().bytes_dropped;
    proxy.drop_replies();
    let fault_seq = Instant::now();
    let create = tokio::spawn({
        let warden = warden.clone();
        let prefix = format!("{sequential_parent}/n-");
        async move {
            warden
                .create(&prefix, b"x")
                .mode(CreateMode::PersistentSequential)
                .await
        }
    });
    eventually("the sequential create lands", || async {
        !direct
            .get_children(&sequential_parent)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let made = format!(
        "{sequential_parent}/{}",
        direct.get_children(&sequential_parent).await.unwrap()[0]
    );
    await_dropped_reply(&proxy, dropped_before, create_reply_len(&made)).await;
    proxy.pass_through();
    let seq_events = expect_events(&mut events, &[(Suspended, 1), (Reconnected, 1)]).await;
    assert!(seq_events.iter().all(|e| e.session_id == session));
    let sequential = within("sequential create returns", create).await.unwrap();
    assert_eq!(sequential, Err(Error::ConnectionLoss), "not retried");
    let children = direct.get_children(&sequential_parent).await.unwrap();
    assert_eq!(
        children.len(),
        1,
        "exactly one sequential node: {children:?}"
    );
    assert!(children[0].starts_with("n-"));

    let metrics = warden.metrics();
    println!(
        "[timing] lost create reply: plain fault->Reconnected {:?} (returned {plain:?}, \
         retries {retries_plain}); sequential fault->Reconnected {:?} (returned \
         {sequential:?}, retries {})",
        since(fault, &plain_events[1]),
        since(fault_seq, &seq_events[1]),
        metrics.retries - retries_plain,
    );
    assert_eq!(
        metrics.retries, retries_plain,
        "the sequential create was not retried"
    );
    assert_eq!((metrics.reconnects, metrics.rebuilds), (2, 0));
    assert_quiet(&mut events, "after both faults");
    close_and_expect_closed(&warden, &mut events, 1).await;
}

/// What one writer of the chaos test saw acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// The node it owns.
    node: String,
    /// The last value written with `Ok` (0 for none).
    value: u64,
    /// The last value it tried to write.
    tried: u64,
    /// Children created with `Ok`.
    children: Vec<String>,
    /// Every error returned to it.
    errors: Vec<Error>,
}

/// Each writer writes at this pace: 50 writers make about 500 writes a second, enough to
/// have many in flight at every fault without starving three JVMs on two cores.
const WRITE_PACE: Duration = Duration::from_millis(100);

/// Writes increasing counters to `node` (and every fifth round creates a child) until
/// `stop`, recording what was acknowledged.
async fn writer(warden: Warden, node: String, stop: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked {
        node: node.clone(),
        ..Acked::default()
    };
    let mut pace = tokio::time::interval(WRITE_PACE);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        pace.tick().await;
        acked.tried += 1;
        let n = acked.tried;
        match warden.set_data(&node, n.to_string().as_bytes(), None).await {
            Ok(_) => acked.value = n,
            Err(e) => acked.errors.push(e),
        }
        if n % 5 == 0 {
            // Idempotent: a retry that finds the node its lost attempt made counts as done.
            match warden
                .create(&format!("{node}/c{n}"), b"c")
                .idempotent()
                .await
            {
                Ok(path) => acked.children.push(path),
                Err(e) => acked.errors.push(e),
            }
        }
    }
    acked
}

/// Waits for the rebuild after an expiry of generation `generation`: `Suspended`, possibly
/// brief returns of the old session while the close is applied (the closing connection
/// displaces the warden's, which may reconnect before the close commits, or even be let in
/// by a follower just after it: the first request then answers "session expired"), `Lost`,
/// then `Reconnected` with the next generation. Returns every event seen.
async fn await_rebuild(events: &mut ConnectionEvents, generation: u64) -> Vec<ConnectionEvent> {
    let mut seen = vec![next_event(events).await];
    assert_eq!((seen[0].state, seen[0].generation), (Suspended, generation));
    loop {
        let event = next_event(events).await;
        seen.push(event);
        if event.state == Lost {
            break;
        }
        assert_eq!(event.generation, generation, "{seen:?}");
        assert!(matches!(event.state, Suspended | Reconnected), "{seen:?}");
    }
    assert_eq!(seen[seen.len() - 1].generation, generation);
    let rebuilt = next_event(events).await;
    assert_eq!(
        (rebuilt.state, rebuilt.generation),
        (Reconnected, generation + 1),
        "{seen:?}"
    );
    seen.push(rebuilt);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_of_expiries_and_member_kills_loses_no_acknowledged_write() {
    const WRITERS: usize = 50;
    const ROUNDS: usize = 5;
    let test_start = Instant::now();
    let mut ensemble = start_ensemble().await;
    let connect = ensemble.connect_string();
    let warden = Warden::builder(&connect)
        .session_timeout(Duration::from_secs(10))
        .connection_timeout(Duration::from_secs(30))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
        .start()
        .await
        .unwrap();
    assert_eq!(warden.connection().state, Connected);
    let mut events = warden.events();
    let root = unique_path("chaos");
    warden.create(&root, b"").await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::with_capacity(WRITERS);
    for i in 0..WRITERS {
        let node = format!("{root}/w{i}");
        warden.create(&node, b"0").await.unwrap();
        writers.push(tokio::spawn(writer(warden.clone(), node, stop.clone())));
    }
    let ensemble_up = test_start.elapsed();

    let mut generation = 1;
    let mut expiry_times = Vec::new();
    let mut kill_times = Vec::new();
    for round in 0..ROUNDS {
        // Kill the member holding the session: the session moves, same generation.
        let session = warden.session_id();
        let (held, member, role) = member_holding(ensemble, session.0).await;
        let fault = Instant::now();
        let held = kill_member(held, member).await;
        let moved = expect_events(
            &mut events,
            &[(Suspended, generation), (Reconnected, generation)],
        )
        .await;
        assert!(moved.iter().all(|e| e.session_id == session), "{moved:?}");
        kill_times.push((role, since(fault, &moved[1])));

        // Bring it back in the background (a JVM start takes seconds) while the session is
        // expired: only one member is ever down, so the quorum holds throughout.
        let restarting = tokio::task::spawn_blocking(move || {
            let mut held = held;
            held.restart(member).expect("restart member");
            held
        });

        let client = warden.client().expect("a connected session");
        let fault = Instant::now();
        expire_session(&connect, client.session_id(), &client.session_password())
            .await
            .unwrap();
        drop(client);
        let rebuild = await_rebuild(&mut events, generation).await;
        let rebuilt = rebuild[rebuild.len() - 1];
        assert_ne!(rebuilt.session_id, session);
        generation += 1;
        assert_eq!(warden.generation(), generation);
        expiry_times.push(since(fault, &rebuilt));
        if rebuild.len() > 3 {
            println!("[chaos] round {round}: expiry blips {rebuild:?}");
        }

        ensemble = within("member restart", restarting)
            .await
            .expect("restart task");
    }
    let faults_done = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::with_capacity(WRITERS);
    for handle in writers {
        outcomes.push(
            within("writer finishes after the faults", handle)
                .await
                .expect("writer task"),
        );
    }
    let drained = faults_done.elapsed();

    // Every acknowledged write is on the servers. Read through a fresh session after a
    // sync, so a member that lagged behind cannot hide a write.
    let check = observer(&connect).await;
    check.sync(&root).await.unwrap();
    let mut total_acked = 0;
    let mut total_children = 0;
    for acked in &outcomes {
        assert!(
            acked.errors.is_empty(),
            "{}: errors reached the writer: {:?}",
            acked.node,
            acked.errors
        );
        assert!(acked.value > 0, "{} acknowledged nothing", acked.node);
        check.sync(&acked.node).await.unwrap();
        let (data, _) = check.get_data(&acked.node).await.unwrap();
        let stored: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
        assert!(
            stored >= acked.value && stored <= acked.tried,
            "{}: stored {stored}, last acknowledged {}, last tried {}",
            acked.node,
            acked.value,
            acked.tried
        );
        let present: BTreeSet<String> = check
            .get_children(&acked.node)
            .await
            .unwrap()
            .into_iter()
            .map(|name| format!("{}/{name}", acked.node))
            .collect();
        for child in &acked.children {
            assert!(present.contains(child), "acknowledged {child} is missing");
        }
        total_acked += acked.value;
        total_children += acked.children.len();
    }

    let metrics = warden.metrics();
    println!(
        "[timing] chaos: ensemble up after {ensemble_up:?}; kill->Reconnected {kill_times:?}; \
         expiry->Reconnected {expiry_times:?}; writers drained in {drained:?}; \
         total {:?}",
        test_start.elapsed()
    );
    println!(
        "[chaos] {total_acked} acknowledged writes and {total_children} children over \
         {WRITERS} writers; metrics {metrics:?}"
    );
    assert_eq!(metrics.rebuilds, ROUNDS as u64);
    assert_eq!(warden.generation(), 1 + ROUNDS as u64);
    assert_quiet(&mut events, "after the chaos");
    close_and_expect_closed(&warden, &mut events, generation).await;
    drop(ensemble);
}

/// How many events a subscriber may fall behind before it is told it lagged (the warden's
/// buffer).
const EVENT_BUFFER: usize = 256;

#[tokio::test]
async fn connection_events_keep_order_start_at_subscription_and_report_lag() {
    let server = start_server().await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let warden = warden_for(&proxy.connect_string(), SESSION_TIMEOUT)
        .start()
        .await
        .unwrap();
    let session = warden.session_id();
    // `Connected` was reported before `start` returned: no subscriber can see it.
    assert_eq!(warden.connection().state, Connected);
    let mut early = warden.events();
    // Subscribed now and not read until the end.
    let mut lazy = warden.events();
    assert_quiet(&mut early, "before any fault");

    // A reset connection: the client reconnects at once to the same session.
    let fault = Instant::now();
    proxy.reset_all();
    let first = expect_events(&mut early, &[(Suspended, 1), (Reconnected, 1)]).await;

    let mut late = warden.events();
    assert_quiet(
        &mut late,
        "for a subscriber that joined after the first fault",
    );
    proxy.reset_all();
    let second = expect_events(&mut early, &[(Suspended, 1), (Reconnected, 1)]).await;
    let late_seen = expect_events(&mut late, &[(Suspended, 1), (Reconnected, 1)]).await;
    assert_eq!(late_seen, second, "the same events, from subscription on");
    assert_quiet(&mut late, "after the second fault");
    drop(late);

    // Enough further resets (each takes milliseconds) to overflow the lazy subscriber's
    // buffer by a few events.
    let mut all: Vec<ConnectionEvent> = first.iter().chain(&second).copied().collect();
    let cycles = EVENT_BUFFER / 2 + 2;
    let lag_start = Instant::now();
    for _ in 2..cycles {
        proxy.reset_all();
        all.extend(expect_events(&mut early, &[(Suspended, 1), (Reconnected, 1)]).await);
    }
    let lag_took = lag_start.elapsed();
    assert_eq!(all.len(), 2 * cycles);
    assert!(all.iter().all(|e| e.session_id == session));
    assert!(
        all.windows(2).all(|w| w[0].at <= w[1].at),
        "events in the order they happened"
    );

    // The lazy subscriber is told how much it missed, then gets the newest EVENT_BUFFER
    // events in order.
    let missed = all.len() - EVENT_BUFFER;
    match within("lag notice", lazy.next_update()).await {
        Some(ConnectionUpdate::Lagged { missed: n }) => assert_eq!(n, missed as u64),
        other => panic!("expected Lagged, got {other:?}"),
    }
    for (i, want) in all.iter().enumerate().skip(missed) {
        assert_eq!(
            next_event(&mut lazy).await,
            *want,
            "event {i} after the lag"
        );
    }
    assert_quiet(&mut lazy, "once caught up");

    let metrics = warden.metrics();
    println!(
        "[timing] connection reset: fault->Reconnected {:?}; {} more reset cycles took \
         {lag_took:?}; retries {}; reconnects {}",
        since(fault, &first[1]),
        cycles - 2,
        metrics.retries,
        metrics.reconnects,
    );
    assert_eq!(metrics.reconnects, cycles as u64);

    warden.close().await.unwrap();
    let closed_early = expect_events(&mut early, &[(Closed, 1)]).await;
    let closed_lazy = expect_events(&mut lazy, &[(Closed, 1)]).await;
    assert_eq!(closed_early, closed_lazy);
    assert!(closed_early[0].at >= all[all.len() - 1].at);
    // With the last handle gone the streams end.
    drop(warden);
    assert!(within("stream ends", early.next()).await.is_none());
}
