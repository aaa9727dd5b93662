//! What operators do to a running ensemble, on real servers, while wardens work: members added
//! and removed by `reconfig` (the wardens follow `/zookeeper/config`), the member a session is
//! on removed, many configuration changes in a row, a rolling restart, and a host name that
//! moves to another address.
#![cfg(feature = "testing")]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::task::JoinHandle;
use zkwarden::testing::ZkEnsemble;
use zkwarden::warden::{ConnectionEvents, RetryConfig, WardenBuilder};
use zkwarden::{Client, ConnectionState, CreateMode, Error, HostPort, Reconfig, Warden};

/// The superuser's password on the reconfigurable ensembles.
const SUPER_PASSWORD: &str = "ensemble-ops";

/// Writers and readers of the load, as the issue asks.
const WRITERS: usize = 20;
const READERS: usize = 5;
/// Wardens the load runs through (writer `i` and reader `i` use warden `i % WARDENS`).
const WARDENS: usize = 10;

/// A reconfigurable ensemble of `n` members plus `spares` spare members.
async fn reconfigurable(n: usize, spares: usize) -> ZkEnsemble {
    init_tracing();
    blocking(move || {
        ZkEnsemble::builder()
            .reconfig_enabled(true)
            .superuser(SUPER_PASSWORD)
            .spare_members(spares)
            .start(n)
            .expect("a reconfigurable ensemble")
    })
    .await
}

/// A warden that keeps retrying what may be retried, so that only a non-retryable error can
/// reach its callers.
fn patient(connect: &str, session_timeout: Duration) -> WardenBuilder {
    Warden::builder(connect)
        .session_timeout(session_timeout)
        .connection_timeout(PATIENCE)
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
}

/// The superuser's warden, allowed to reconfigure.
async fn admin(connect: &str) -> Warden {
    patient(connect, SESSION_TIMEOUT)
        .auth("digest", format!("super:{SUPER_PASSWORD}"))
        .start()
        .await
        .expect("the admin warden")
}

/// The client addresses of `members` of `ensemble`.
fn addrs_of(ensemble: &ZkEnsemble, members: &[usize]) -> BTreeSet<SocketAddr> {
    members.iter().map(|&i| ensemble.addr(i)).collect()
}

/// A warden's host list as addresses (the followed configuration names members by address).
fn hosts_of(warden: &Warden) -> BTreeSet<SocketAddr> {
    warden
        .hosts()
        .iter()
        .filter_map(|h| format!("{}:{}", h.host, h.port).parse().ok())
        .collect()
}

/// Waits (up to [`PATIENCE`]) until `done` holds, looking every 20 ms.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Waits until every warden follows exactly `members` and its session is connected to one
/// of them.
async fn await_followed(wardens: &[Warden], members: &BTreeSet<SocketAddr>) {
    until(
        "every warden follows the configuration and sits on a member of it",
        || {
            wardens.iter().all(|w| {
                // Connected, not only attached: a re-attached session is connected once
                // the server has answered on the new connection.
                hosts_of(w) == *members
                    && w.client().is_some_and(|c| {
                        c.session_state().is_connected()
                            && c.connected_server().is_some_and(|s| members.contains(&s))
                    })
            })
        },
    )
    .await;
}

/// 20 writers and 5 readers running through wardens until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    writers: Vec<JoinHandle<(String, u64, Vec<Error>)>>,
    readers: Vec<JoinHandle<Vec<Error>>>,
}

impl Load {
    /// Starts the load; writer `i` sets `/w{i}` to 1, 2, 3, ... in its warden's namespace.
    async fn start(wardens: &[Warden]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let mut writers = Vec::new();
        for i in 0..WRITERS {
            let warden = wardens[i % wardens.len()].clone();
            let path = format!("/w{i}");
            warden
                .create(&path, b"0")
                .idempotent()
                .await
                .expect("the writer's node");
            let (stop, writes) = (stop.clone(), writes.clone());
            writers.push(tokio::spawn(async move {
                let mut acked = 0u64;
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let next = acked + 1;
                    match warden
                        .set_data(&path, next.to_string().as_bytes(), None)
                        .await
                    {
                        Ok(_) => {
                            acked = next;
                            writes.fetch_add(1, Ordering::Relaxed);
                        }
                        // Anything reaching the caller is recorded; the test fails on it.
                        Err(e) => errors.push(e),
                    }
                }
                (path, acked, errors)
            }));
        }
        let mut readers = Vec::new();
        for i in 0..READERS {
            let warden = wardens[i % wardens.len()].clone();
            let stop = stop.clone();
            readers.push(tokio::spawn(async move {
                let mut errors = Vec::new();
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    n = (n + 7) % WRITERS;
                    if let Err(e) = warden.get_data(&format!("/w{n}")).await {
                        errors.push(e);
                    }
                }
                errors
            }));
        }
        Load {
            stop,
            writes,
            writers,
            readers,
        }
    }

    /// Waits until `more` further writes were acknowledged: the load runs at this point.
    async fn progress(&self, more: u64) {
        let target = self.writes.load(Ordering::Relaxed) + more;
        until("the writers make progress", || {
            self.writes.load(Ordering::Relaxed) >= target
        })
        .await;
    }

    /// Stops the load; returns each writer's node and last acknowledged value, and every
    /// error that reached a caller.
    async fn stop(self) -> (Vec<(String, u64)>, Vec<Error>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut acked = Vec::new();
        let mut errors = Vec::new();
        for writer in self.writers {
            let (path, last, errs) = within("a writer stops", writer).await.expect("writer");
            acked.push((path, last));
            errors.extend(errs);
        }
        for reader in self.readers {
            errors.extend(within("a reader stops", reader).await.expect("reader"));
        }
        (acked, errors)
    }

    /// Stops the load and checks it: no non-retryable error reached a caller and every
    /// acknowledged write is there (read through `reader`). Returns the writers' nodes and
    /// last acknowledged values, and the retryable errors that reached a caller.
    async fn finish(self, reader: &Warden) -> (Vec<(String, u64)>, Vec<Error>) {
        let (acked, errors) = self.stop().await;
        assert!(
            errors.iter().all(Error::is_retryable),
            "no non-retryable error reaches a caller: {errors:?}"
        );
        assert_no_write_lost(reader, &acked).await;
        (acked, errors)
    }
}

/// Checks that every acknowledged write is there, read through `warden` after a sync.
async fn assert_no_write_lost(warden: &Warden, acked: &[(String, u64)]) {
    warden.sync("/").await.unwrap();
    for (path, last) in acked {
        let (data, _) = warden.get_data(path).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&data).unwrap(),
            last.to_string(),
            "{path}: the last acknowledged write is the value"
        );
    }
}

/// `count` wardens on `connect` in namespace `namespace`.
async fn wardens(
    connect: &str,
    namespace: &str,
    count: usize,
    session_timeout: Duration,
) -> Vec<Warden> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(
            patient(connect, session_timeout)
                .namespace(namespace)
                .start()
                .await
                .expect("a warden"),
        );
    }
    out
}

/// Ids of the two members to remove when shrinking 5 -> 3: two of the first three, not the
/// leader (so no election interrupts the load; removing a leader is a different test).
fn two_followers(ensemble: &ZkEnsemble) -> Vec<usize> {
    (0..3)
        .filter(|&i| ensemble.mode(i).as_deref() != Some("leader"))
        .take(2)
        .collect()
}

#[tokio::test]
async fn three_to_five_to_three_members_under_load() {
    let mut ensemble = reconfigurable(3, 2).await;
    let connect = ensemble.connect_string();
    let admin = admin(&connect).await;
    let namespace = unique_path("grow-shrink");
    let wardens = wardens(&connect, &namespace, WARDENS, SESSION_TIMEOUT).await;
    await_followed(&wardens, &addrs_of(&ensemble, &[0, 1, 2])).await;
    let load = Load::start(&wardens).await;
    load.progress(200).await;

    // 3 -> 5: the spares start with the current members plus themselves, then join.
    let mut ensemble = blocking(move || {
        for spare in [3, 4] {
            ensemble.start_spare(spare).expect("a spare starts");
        }
        ensemble
    })
    .await;
    let joining = [ensemble.member_spec(3), ensemble.member_spec(4)];
    admin
        .reconfig(&Reconfig::incremental(joining, []))
        .await
        .expect("two members join");
    let five = addrs_of(&ensemble, &[0, 1, 2, 3, 4]);
    await_followed(&wardens, &five).await;
    load.progress(200).await;
    let on_new: usize = wardens
        .iter()
        .filter_map(|w| w.client()?.connected_server())
        .filter(|s| *s == ensemble.addr(3) || *s == ensemble.addr(4))
        .count();
    println!("after 3 -> 5: {on_new} of {WARDENS} sessions moved to the two new members");

    // 5 -> 3: two of the original members leave; then they are shut down.
    let (ensemble_back, leaving) = blocking(move || {
        let leaving = two_followers(&ensemble);
        (ensemble, leaving)
    })
    .await;
    ensemble = ensemble_back;
    let ids = leaving.iter().map(|&i| i as u64 + 1);
    admin
        .reconfig(&Reconfig::incremental(Vec::<String>::new(), ids))
        .await
        .expect("two members leave");
    let staying: Vec<usize> = (0..5).filter(|i| !leaving.contains(i)).collect();
    let three = addrs_of(&ensemble, &staying);
    await_followed(&wardens, &three).await;
    let ensemble = blocking(move || {
        for &i in &leaving {
            ensemble.kill(i).expect("a removed member stops");
        }
        ensemble
    })
    .await;
    load.progress(200).await;
    let (acked, errors) = load.finish(&wardens[0]).await;
    assert!(
        errors.is_empty(),
        "the wardens retried everything: {errors:?}"
    );
    await_followed(&wardens, &three).await;
    for warden in &wardens {
        assert_eq!(warden.generation(), 1, "no session was lost");
    }
    // The namespace still applies: the nodes are under it, not at the root.
    let (data, _) = admin.get_data(&format!("{namespace}/w0")).await.unwrap();
    assert_eq!(std::str::from_utf8(&data).unwrap(), acked[0].1.to_string());
    assert_eq!(admin.exists("/w0").await.unwrap(), None);
    for warden in wardens {
        warden.close().await.unwrap();
    }
    admin.close().await.unwrap();
    drop(ensemble);
}

/// The watches a member holds for `session` on `/zookeeper/config` (from `wchc`).
fn config_watches(ensemble: &ZkEnsemble, members: &[usize], session: i64) -> usize {
    let header = format!("0x{session:x}");
    members
        .iter()
        .filter_map(|&i| ensemble.four_letter(i, "wchc").ok())
        .map(|wchc| {
            let mut count = 0;
            let mut ours = false;
            for line in wchc.lines() {
                if line.starts_with("0x") {
                    ours = line.trim() == header;
                } else if ours && line.trim() == "/zookeeper/config" {
                    count += 1;
                }
            }
            count
        })
        .sum()
}

#[tokio::test]
async fn a_session_on_a_removed_member_moves_first_and_many_changes_leak_nothing() {
    let ensemble = reconfigurable(3, 0).await;
    let (mut ensemble, followers) = blocking(move || {
        let followers: Vec<usize> = (0..3)
            .filter(|&i| ensemble.mode(i).as_deref() != Some("leader"))
            .collect();
        (ensemble, followers)
    })
    .await;
    let leader = (0..3).find(|i| !followers.contains(i)).expect("a leader");
    let admin = admin(&ensemble.member_connect_string(leader)).await;
    // A warden whose session is on a follower (two in three are): that follower will leave.
    let all = addrs_of(&ensemble, &[0, 1, 2]);
    let mut warden = None;
    for _ in 0..10 {
        let candidate = patient(&ensemble.connect_string(), SESSION_TIMEOUT)
            .start()
            .await
            .unwrap();
        await_followed(std::slice::from_ref(&candidate), &all).await;
        let server = candidate.client().and_then(|c| c.connected_server());
        match server.and_then(|s| ensemble.member_at(s)) {
            Some(member) if followers.contains(&member) => {
                warden = Some((candidate, member));
                break;
            }
            _ => candidate.close().await.unwrap(),
        }
    }
    let (warden, gone) = warden.expect("a session on a follower within ten tries");
    let other = followers
        .iter()
        .copied()
        .find(|&f| f != gone)
        .expect("two followers");
    let client = warden.client().expect("a session");
    let session = warden.session_id();

    // The member the session is on leaves the configuration: the session moves off it while
    // it still runs.
    admin
        .reconfig(&Reconfig::incremental(
            Vec::<String>::new(),
            [gone as u64 + 1],
        ))
        .await
        .unwrap();
    let remaining = addrs_of(&ensemble, &[leader, other]);
    await_followed(std::slice::from_ref(&warden), &remaining).await;
    let connections = client.state().borrow().connections;
    // Then the operator shuts it down: nothing happens to the session.
    let mut ensemble = blocking(move || {
        ensemble.kill(gone).expect("kill the removed member");
        ensemble
    })
    .await;
    warden.create("/moved", b"").await.unwrap();
    assert_eq!(
        client.state().borrow().connections,
        connections,
        "no reconnect"
    );
    assert_eq!(warden.session_id(), session, "the session survived");
    assert_eq!(warden.generation(), 1);

    // 20 changes of the configuration: the other follower leaves and rejoins ten times. The
    // warden follows each, holding one watch on the configuration, with no task left over.
    let tasks = tokio::runtime::Handle::current().metrics();
    let tasks_before = tasks.num_alive_tasks();
    let spec = ensemble.member_spec(other).to_owned();
    let mut most_tasks = 0;
    for change in 0..20 {
        let (reconfig, expected) = if change % 2 == 0 {
            (
                Reconfig::incremental(Vec::<String>::new(), [other as u64 + 1]),
                addrs_of(&ensemble, &[leader]),
            )
        } else {
            (
                Reconfig::incremental([spec.clone()], []),
                addrs_of(&ensemble, &[leader, other]),
            )
        };
        admin.reconfig(&reconfig).await.unwrap();
        await_followed(std::slice::from_ref(&warden), &expected).await;
        most_tasks = most_tasks.max(tasks.num_alive_tasks());
    }
    println!("tasks alive: {tasks_before} before the 20 changes, at most {most_tasks} during");
    assert!(
        most_tasks <= tasks_before + 2,
        "tasks stay bounded: {tasks_before} before, {most_tasks} at most"
    );
    // The follower re-reads with a watch after each change: exactly one is left, on the
    // member the session is on.
    let session_raw = warden.session_id().0;
    ensemble = blocking(move || {
        let members = [leader, other];
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let watches = config_watches(&ensemble, &members, session_raw);
            if watches == 1 {
                break;
            }
            assert!(
                watches < 2,
                "at most one configuration watch per session, found {watches}"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the configuration watch is re-armed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        ensemble
    })
    .await;
    assert_eq!(
        warden.session_id(),
        session,
        "the session survived all changes"
    );
    warden.close().await.unwrap();
    admin.close().await.unwrap();
    drop(ensemble);
}

/// Sums, per warden, the time from each `Suspended` to the next connected state.
fn suspended_time(mut events: ConnectionEvents) -> JoinHandle<(Duration, Vec<ConnectionState>)> {
    tokio::spawn(async move {
        let mut total = Duration::ZERO;
        let mut since = None;
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            seen.push(event.state);
            match event.state {
                ConnectionState::Suspended => since = since.or(Some(event.at)),
                ConnectionState::Connected | ConnectionState::Reconnected => {
                    if let Some(start) = since.take() {
                        total += event.at - start;
                    }
                }
                _ => {}
            }
        }
        (total, seen)
    })
}

#[tokio::test]
async fn a_rolling_restart_under_load_expires_no_session() {
    init_tracing();
    let session_timeout = Duration::from_secs(10);
    let ensemble = blocking(|| {
        ZkEnsemble::builder()
            .max_session_timeout(Duration::from_secs(20))
            .start(3)
            .expect("a three-server ensemble")
    })
    .await;
    let connect = ensemble.connect_string();
    let namespace = unique_path("rolling");
    let wardens = wardens(&connect, &namespace, WARDENS, session_timeout).await;
    let sessions: Vec<_> = wardens.iter().map(Warden::session_id).collect();
    let watchers: Vec<_> = wardens.iter().map(|w| suspended_time(w.events())).collect();
    let load = Load::start(&wardens).await;
    load.progress(200).await;
    let mut ensemble = ensemble;
    for member in 0..3 {
        ensemble = blocking(move || {
            ensemble.restart(member).expect("the member restarts");
            ensemble
        })
        .await;
        load.progress(100).await;
    }
    load.finish(&wardens[0]).await;
    for (warden, session) in wardens.iter().zip(&sessions) {
        assert_eq!(warden.session_id(), *session, "no session expired");
        assert_eq!(warden.generation(), 1);
        warden.close().await.unwrap();
    }
    let mut totals = Vec::new();
    for watcher in watchers {
        let (total, seen) = within("the event stream ends", watcher).await.unwrap();
        assert!(!seen.contains(&ConnectionState::Lost), "{seen:?}");
        totals.push(total);
    }
    totals.sort();
    let shown: Vec<String> = totals.iter().map(|t| format!("{t:.2?}")).collect();
    println!(
        "rolling restart of 3 members, T = 10 s: Suspended per session (sorted): {}",
        shown.join(", ")
    );
    drop(ensemble);
}

#[tokio::test]
async fn a_host_name_that_moves_is_followed() {
    init_tracing();
    let mut ensemble = blocking(|| ZkEnsemble::start(3).expect("a three-server ensemble")).await;
    let target = Arc::new(Mutex::new(ensemble.addr(0)));
    let asked = Arc::new(AtomicU64::new(0));
    let (moved, counter) = (target.clone(), asked.clone());
    let client = Client::builder("zk.moving.test:2181")
        .session_timeout(SESSION_TIMEOUT)
        .resolver(move |host: HostPort| {
            counter.fetch_add(1, Ordering::Relaxed);
            let addr = (host.host == "zk.moving.test").then(|| *moved.lock().unwrap());
            async move { Ok(addr.into_iter().collect()) }
        })
        .connect()
        .await
        .unwrap();
    assert_eq!(client.connected_server(), Some(ensemble.addr(0)));
    let session = client.session_id();
    let mut states = client.state();
    let connections = states.borrow().connections;

    // The member goes away and its name now points at another member.
    *target.lock().unwrap() = ensemble.addr(1);
    let ensemble = blocking(move || {
        ensemble.kill(0).expect("kill the member");
        ensemble
    })
    .await;
    within(
        "connected again",
        states.wait_for(|s| s.connections > connections && s.state.is_connected()),
    )
    .await
    .unwrap();
    assert_eq!(client.connected_server(), Some(ensemble.addr(1)));
    assert_eq!(client.session_id(), session, "the same session");
    assert!(
        asked.load(Ordering::Relaxed) >= 2,
        "resolved on every attempt"
    );
    client
        .create(&unique_path("followed"), b"", CreateMode::Ephemeral)
        .await
        .unwrap();
    client.close().await.unwrap();
    drop(ensemble);
}
