//! The mutex under real faults, across processes: `lock_worker` processes (and a Curator
//! `InterProcessMutex` peer) contend for one lock while sessions are expired on the server,
//! partitions outlast or undercut the session, ensemble members die, and a holder is frozen
//! with SIGSTOP past its session timeout. Every holder appends `enter` and `exit`/`lost` lines
//! to one log; each test checks that no two holders that honour `lost()` were ever inside at
//! once, and the last one that a paused holder's fenced write is refused by the server.
//!
//! The workers are the `lock_worker` example, found next to this test binary: `cargo test -p
//! zkwarden-recipes` builds it; with `--test lock_chaos` alone, build it first with `cargo
//! build -p zkwarden-recipes --all-features --example lock_worker`.
//!
//! (Dropping an acquire future midway is covered in-process by `tests/mutex.rs`,
//! `dropped_acquires_leave_no_node`.)

mod common;

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use common::chaos::{
    End, Events, Scratch, Worker, WorkerSpec, assert_exclusive, compile_curator_peer,
    describe_handoffs, finish, id_of, is, median, overlaps, sections, session_of,
    start_curator_peer, unix_nanos,
};
use common::{blocking, start_server, unique_path, warden, within};
use zkwarden::testing::{FaultProxy, ZkEnsemble, expire_session};
use zkwarden::{Error, SessionId};

/// The workers' session timeout: short, so faults resolve quickly.
const SESSION_MS: u64 = 4000;

fn spec(id: &str, connect: &str, path: &str, rounds: u32, hold_ms: u64) -> WorkerSpec {
    WorkerSpec {
        id: id.to_owned(),
        connect: connect.to_owned(),
        path: path.to_owned(),
        rounds,
        hold_ms,
        session_timeout_ms: SESSION_MS,
        safety: "suspend",
        fence_node: None,
    }
}

/// Asserts that no contender node is left under `path` once every holder is gone.
async fn assert_no_contenders(connect: &str, path: &str) {
    let w = warden(connect).await;
    match w.get_children(path).await {
        Ok(children) => assert!(children.is_empty(), "left behind: {children:?}"),
        Err(Error::NoNode) => {}
        Err(e) => panic!("list {path}: {e}"),
    }
}

/// For every section that ended with `lost`, how long before the next holder entered.
fn lost_margins(all: &[common::chaos::Section]) -> Vec<Duration> {
    all.windows(2)
        .filter(|pair| pair[0].ended == End::Lost && pair[1].enter >= pair[0].end)
        .map(|pair| Duration::from_nanos((pair[1].enter - pair[0].end) as u64))
        .collect()
}

/// Three workers and a Curator peer on one lock; the current Rust holder's session is expired
/// on the server (through its session file) several times. With the default safety the
/// holder reports `lost` when the server closes its socket, before the next holder enters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_holders_stop_before_the_next_holder_enters() {
    const EXPIRIES: usize = 4;
    let scratch = Scratch::new("chaos-expire");
    let classpath = Some(compile_curator_peer(&scratch).await);
    let server = start_server().await;
    let connect = server.connect_string();
    let path = unique_path("chaos-expire");
    let log = scratch.join("holders.log");
    let mut events = Events::new();
    let workers: Vec<Worker> = (0..3)
        .map(|i| {
            let spec = spec(&format!("rust{i}"), &connect, &path, 4, 700);
            Worker::spawn(&spec, &log, &scratch.0, &events)
        })
        .collect();
    let peer = match &classpath {
        Some(classpath) => {
            Some(start_curator_peer(classpath, &connect, &path, 4, &log, 200, None).await)
        }
        None => None,
    };

    let (mut expired, mut hits, mut reasons) = (0, 0, Vec::new());
    for _ in 0..EXPIRIES {
        let enter = events
            .wait("a Rust holder to enter", |e| is(e, "enter", None))
            .await;
        let since = events.mark();
        let holder = id_of(&enter);
        let worker = workers.iter().find(|w| w.id == holder).expect("worker");
        let session = session_of(&enter);
        let wrote_it =
            |e: &serde_json::Value| is(e, "session", Some(&holder)) && session_of(e) == session;
        events
            .wait_from(0, "the holder's session file", wrote_it)
            .await;
        let (id, password) = worker.session();
        if id != SessionId(session) {
            // The holder already moved on to a new session: nothing to expire this round.
            continue;
        }
        expire_session(&connect, id, &password)
            .await
            .expect("expire the holder's session");
        expired += 1;
        let end = events
            .wait_from(since, "the expired holder to stop or finish", |e| {
                (is(e, "lost", Some(&holder)) || is(e, "exit", Some(&holder)))
                    && e["round"] == enter["round"]
            })
            .await;
        if end["event"] == "lost" {
            hits += 1;
            reasons.push(end["reason"].as_str().unwrap_or("?").to_owned());
        }
    }
    finish(workers).await;
    if let Some(mut peer) = peer {
        let status = within("the Curator peer to finish", peer.wait())
            .await
            .expect("wait for the Curator peer");
        assert!(status.success(), "the Curator peer failed: {status}");
    }
    let all = sections(&log);
    let checked = assert_exclusive(&all, |_| true);
    assert!(hits >= 1, "no expiry hit a holder while it held the lock");
    assert_no_contenders(&connect, &path).await;
    let margins = lost_margins(&all);
    println!(
        "expiry: {checked} critical sections checked, {expired} sessions expired ({hits} while \
         holding, lost reasons {reasons:?}), 0 overlaps; lost-to-next-enter margin median \
         {:.2?} (n={}); hand-offs {}",
        median(&margins).unwrap_or_default(),
        margins.len(),
        describe_handoffs(&all)
    );
}

/// Each worker reaches the server through its own proxy. The holder's proxy goes silent:
/// once until the holder has stopped (shorter than the session, which survives), once until
/// another worker has taken the lock (longer than the session, which expires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_shorter_and_longer_than_the_session() {
    let scratch = Scratch::new("chaos-partition");
    let server = start_server().await;
    let path = unique_path("chaos-partition");
    let log = scratch.join("holders.log");
    let mut events = Events::new();
    let mut proxies = Vec::new();
    for _ in 0..3 {
        proxies.push(FaultProxy::start(server.addr()).await.expect("proxy"));
    }
    // The victim holds longer than its read timeout (2/3 of the session), so a partition
    // started as it enters is noticed while it still holds.
    let mut workers = vec![Worker::spawn(
        &spec("victim", &proxies[0].connect_string(), &path, 4, 3500),
        &log,
        &scratch.0,
        &events,
    )];
    for (i, proxy) in proxies.iter().enumerate().skip(1) {
        let spec = spec(&format!("peer{i}"), &proxy.connect_string(), &path, 6, 300);
        workers.push(Worker::spawn(&spec, &log, &scratch.0, &events));
    }

    let mut blackholes = 0;
    let mut short_kept_session = None;
    let mut long_done = false;
    for _attempt in 0..3 {
        if short_kept_session.is_some() && long_done {
            break;
        }
        let enter = events
            .wait("the victim to enter", |e| is(e, "enter", Some("victim")))
            .await;
        let since = events.mark();
        let session = session_of(&enter);
        proxies[0].blackhole();
        blackholes += 1;
        let end = events
            .wait_from(since, "the partitioned victim to stop", |e| {
                (is(e, "lost", Some("victim")) || is(e, "exit", Some("victim")))
                    && e["round"] == enter["round"]
            })
            .await;
        if end["event"] == "exit" {
            // The partition began too late to catch the hold; try the next round.
            proxies[0].pass_through();
            continue;
        }
        assert_eq!(end["reason"], "Suspended", "{end}");
        if short_kept_session.is_none() {
            // Shorter than the session: healed as soon as the holder has stopped.
            proxies[0].pass_through();
            let back = events
                .wait_from(since, "the victim to reconnect", |e| {
                    is(e, "state", Some("victim"))
                        && (e["state"] == "Reconnected" || e["state"] == "Lost")
                })
                .await;
            short_kept_session =
                Some(back["state"] == "Reconnected" && session_of(&back) == session);
        } else {
            // Longer than the session: healed only after someone else took the lock, which
            // needs the victim's session to have expired on the server.
            events
                .wait_from(since, "another holder to enter", |e| {
                    is(e, "enter", None) && e["id"] != "victim"
                })
                .await;
            proxies[0].pass_through();
            events
                .wait_from(since, "the victim's new session", |e| {
                    is(e, "session", Some("victim")) && session_of(e) != session
                })
                .await;
            long_done = true;
        }
    }
    assert!(
        short_kept_session.is_some() && long_done,
        "both partitions should have caught the victim holding"
    );
    finish(workers).await;

    let all = sections(&log);
    let checked = assert_exclusive(&all, |_| true);
    assert_no_contenders(&server.connect_string(), &path).await;
    println!(
        "partitions: {checked} critical sections checked, {blackholes} blackholes (short one kept \
         the session: {:?}), 0 overlaps; hand-offs {}",
        short_kept_session,
        describe_handoffs(&all)
    );
}

/// A three-member ensemble: the member the holder is connected to is killed (SIGKILL) while
/// it holds, then restarted, several times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_holders_member_never_lets_two_in() {
    const KILLS: usize = 3;
    common::init_tracing();
    let scratch = Scratch::new("chaos-ensemble");
    let ensemble = blocking(|| ZkEnsemble::start(3))
        .await
        .expect("start a 3-member ensemble");
    let connect = ensemble.connect_string();
    let ensemble = Arc::new(StdMutex::new(ensemble));
    let path = unique_path("chaos-ensemble");
    let log = scratch.join("holders.log");
    let mut events = Events::new();
    let mut workers = vec![Worker::spawn(
        &spec("victim", &connect, &path, 7, 1500),
        &log,
        &scratch.0,
        &events,
    )];
    for i in 1..3 {
        let spec = spec(&format!("peer{i}"), &connect, &path, 5, 300);
        workers.push(Worker::spawn(&spec, &log, &scratch.0, &events));
    }

    let (mut kills, mut hits) = (0, 0);
    for _attempt in 0..6 {
        if hits == KILLS {
            break;
        }
        let enter = events
            .wait("the victim to enter", |e| is(e, "enter", Some("victim")))
            .await;
        let since = events.mark();
        let session = session_of(&enter);
        let member = {
            let ensemble = ensemble.clone();
            blocking(move || {
                let mut ensemble = ensemble.lock().expect("ensemble");
                let member = ensemble.member_of_session(session);
                if let Some(member) = member {
                    ensemble.kill(member).expect("kill the member");
                }
                member
            })
            .await
        };
        let Some(member) = member else {
            continue; // between servers right now
        };
        kills += 1;
        let end = events
            .wait_from(since, "the victim to stop or finish", |e| {
                (is(e, "lost", Some("victim")) || is(e, "exit", Some("victim")))
                    && e["round"] == enter["round"]
            })
            .await;
        if end["event"] == "lost" {
            hits += 1;
        }
        let ensemble = ensemble.clone();
        blocking(move || ensemble.lock().expect("ensemble").restart(member))
            .await
            .expect("restart the member");
        // Catch the victim's next entry fresh, not one that began during the restart.
        events.drain();
    }
    assert!(hits >= 1, "no kill caught the victim holding the lock");
    finish(workers).await;

    let all = sections(&log);
    let checked = assert_exclusive(&all, |_| true);
    assert_no_contenders(&connect, &path).await;
    println!(
        "ensemble: {checked} critical sections checked, {kills} member kills ({hits} while the \
         victim held), 0 overlaps; hand-offs {}",
        describe_handoffs(&all)
    );
}

/// A holder that never gives up (`--safety none`) is frozen with SIGSTOP past its session
/// timeout while another takes the lock; woken, it makes its fenced write, which the server
/// refuses. The counter equals the writes the workers saw accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_holders_fenced_write_is_refused() {
    let scratch = Scratch::new("chaos-sigstop");
    let server = start_server().await;
    let connect = server.connect_string();
    let path = unique_path("chaos-sigstop");
    let counter = unique_path("chaos-counter");
    let log = scratch.join("holders.log");
    let mut events = Events::new();
    // The stale holder never stops by itself: it believes it holds the lock until it exits.
    let mut stale = spec("stale", &connect, &path, 3, 2500);
    stale.safety = "none";
    stale.fence_node = Some(counter.clone());
    let mut workers = vec![Worker::spawn(&stale, &log, &scratch.0, &events)];
    for i in 1..3 {
        let mut spec = spec(&format!("peer{i}"), &connect, &path, 6, 200);
        spec.fence_node = Some(counter.clone());
        workers.push(Worker::spawn(&spec, &log, &scratch.0, &events));
    }

    let mut refused = None;
    let mut pauses = 0;
    for _attempt in 0..2 {
        let enter = events
            .wait("the stale holder to enter", |e| {
                is(e, "enter", Some("stale"))
            })
            .await;
        let since = events.mark();
        let stopped_at = unix_nanos();
        workers[0].signal("STOP");
        pauses += 1;
        // Someone else gets the lock only once the paused holder's session has expired.
        events
            .wait_from(since, "another holder to enter", |e| {
                is(e, "enter", None) && e["id"] != "stale"
            })
            .await;
        workers[0].signal("CONT");
        let fenced = events
            .wait_from(since, "the stale holder's fenced write", |e| {
                is(e, "fenced", Some("stale")) && e["round"] == enter["round"]
            })
            .await;
        let sent_ns = u128::from(fenced["sent_ns"].as_u64().expect("sent_ns"));
        if sent_ns < stopped_at {
            continue; // the write beat the signal: not a stale write
        }
        refused = Some(fenced);
        break;
    }
    let refused = refused.expect("the stale holder was paused before its write");
    assert_eq!(
        refused["accepted"], false,
        "a stale fenced write: {refused}"
    );
    assert_eq!(refused["index"], 0, "the lock check refuses it: {refused}");
    assert_eq!(refused["code"], "NoNode", "{refused}");
    finish(workers).await;

    events.drain();
    let fenced = events.all("fenced");
    assert!(
        fenced.iter().all(|e| e["accepted"].is_boolean()),
        "every fenced write has a known fate: {fenced:?}"
    );
    let accepted = fenced.iter().filter(|e| e["accepted"] == true).count();
    let rejected = fenced.len() - accepted;
    let w = warden(&connect).await;
    let (data, _) = w.get_data(&counter).await.expect("read the counter");
    let value: usize = String::from_utf8_lossy(&data)
        .trim()
        .parse()
        .expect("an integer");
    let markers = match w.get_children(&counter).await {
        Ok(children) => children.len(),
        Err(Error::NoNode) => 0,
        Err(e) => panic!("list {counter}: {e}"),
    };
    assert_eq!(value, accepted, "the counter counts the accepted writes");
    assert_eq!(markers, accepted, "one marker per accepted write");

    let all = sections(&log);
    let checked = assert_exclusive(&all, |who| who != "stale");
    assert_no_contenders(&connect, &path).await;
    let stale_overlaps = overlaps(&all, |_| true).len();
    assert!(
        stale_overlaps >= 1,
        "the paused holder's section must cover another's entry"
    );
    println!(
        "sigstop: {checked} honouring sections checked, {pauses} pauses past the session, 0 \
         overlaps among them ({stale_overlaps} with the paused holder, as expected); fenced \
         writes: {accepted} accepted = counter {value}, {rejected} refused"
    );
}

/// For each section of `who` that ended with `lost`: the next other holder's entry minus the
/// `lost` line, in milliseconds (negative: the next holder was in first).
fn signed_margins_ms(all: &[common::chaos::Section], who: &str) -> Vec<f64> {
    all.iter()
        .filter(|s| s.who == who && s.ended == End::Lost)
        .filter_map(|lost| {
            let next = all.iter().find(|s| s.who != who && s.enter > lost.enter)?;
            Some((next.enter as f64 - lost.end as f64) / 1e6)
        })
        .collect()
}

/// The comparison: a Curator 5.4 holder whose session is expired on the server
/// learns of it later than ours. Measured, not judged: the Curator holder's overlap is
/// reported, and every other pair of holders must still be exclusive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_curator_holder_is_measured() {
    const EXPIRIES: usize = 3;
    let scratch = Scratch::new("chaos-curator");
    let classpath = compile_curator_peer(&scratch).await;
    let server = start_server().await;
    let connect = server.connect_string();
    let path = unique_path("chaos-curator");
    let log = scratch.join("holders.log");
    let java_session = scratch.join("java.session");
    let mut events = Events::new();
    let mut peer = start_curator_peer(
        &classpath,
        &connect,
        &path,
        EXPIRIES as u32 + 2,
        &log,
        1500,
        Some((&java_session, &events)),
    )
    .await;
    let workers: Vec<Worker> = (0..2)
        .map(|i| {
            let spec = spec(&format!("rust{i}"), &connect, &path, 12, 200);
            Worker::spawn(&spec, &log, &scratch.0, &events)
        })
        .collect();

    let (mut expired, mut hits) = (0, 0);
    for _ in 0..EXPIRIES {
        let enter = events
            .wait("the Curator holder to enter", |e| {
                is(e, "enter", Some("java"))
            })
            .await;
        let since = events.mark();
        let (id, password) = common::chaos::read_session_file(&java_session);
        expire_session(&connect, id, &password)
            .await
            .expect("expire the Curator holder's session");
        expired += 1;
        let end = events
            .wait_from(since, "the Curator holder to stop or finish", |e| {
                (is(e, "lost", Some("java")) || is(e, "exit", Some("java")))
                    && e["round"] == enter["round"]
            })
            .await;
        if end["event"] == "lost" {
            hits += 1;
        }
    }
    finish(workers).await;
    let status = common::chaos::wait_child("the Curator peer", &mut peer).await;
    assert!(status.success(), "the Curator peer failed: {status}");
    assert!(hits >= 1, "no expiry caught the Curator peer holding");

    let all = sections(&log);
    let expired_java = |s: &common::chaos::Section| s.who == "java" && s.ended == End::Lost;
    let others: Vec<_> = overlaps(&all, |_| true)
        .into_iter()
        .filter(|(a, b)| !expired_java(a) && !expired_java(b))
        .collect();
    assert!(
        others.is_empty(),
        "overlaps not involving the expired Curator holder: {others:?}"
    );
    let curator_overlaps = overlaps(&all, |_| true).len();
    let margins = signed_margins_ms(&all, "java");
    let mut sorted = margins.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "curator expiry: {} sections, {expired} expiries ({hits} while holding), {curator_overlaps} \
         overlaps by the expired Curator holder; next holder's entry minus Curator's lost report \
         (ms, negative = overlap): {margins:.1?}, median {:.1}; hand-offs {}",
        all.len(),
        sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN),
        describe_handoffs(&all)
    );
}
