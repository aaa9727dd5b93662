//! Counters, barriers and the leader selector side by side with Apache Curator 5.4 on the
//! same znodes. One Java peer (`tests/java/CuratorCoordPeer.java`, compiled once for this
//! binary against the Debian Curator jars) runs Curator's `SharedCount`,
//! `DistributedBarrier`, `DistributedDoubleBarrier` and `LeaderSelector`; Rust participants
//! use [`SharedCount`], [`Barrier`], [`DoubleBarrier`] and [`LeaderSelector`] on the same
//! paths, and the results must be exact:
//!
//! * compare-and-set increments from both sides add up to exactly the successful sets, and
//!   each side's listener sees the other side's writes;
//! * barrier waiters on either side are released by the other side's remove;
//! * double-barrier members of both kinds enter only once all have arrived and leave only
//!   once all have started to leave (checked on one shared log);
//! * selectors of both kinds take turns through session expiries and blackholed
//!   connections: one leader at a time in the shared log, and everybody leads.

mod common;
mod election_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::java_peer::{self, Entry, Peer, Scratch, note, parse_log, prepare_shared, wall_nanos};
use common::znodes::{await_children, await_children_where, children_of, watches_by_session};
use common::{SESSION_TIMEOUT, start_server, unique_path, warden, within};
use election_support::{Belief, Beliefs, Target};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};
use tokio::sync::{Notify, mpsc};
use zkwarden::testing::{FaultProxy, ZkServer};
use zkwarden::warden::RetryConfig;
use zkwarden::{SessionId, SessionPassword, Warden};
use zkwarden_recipes::barrier::{Barrier, DoubleBarrier, READY_NODE};
use zkwarden_recipes::counter::{CountWatch, SharedCount};
use zkwarden_recipes::leader::LeaderSelector;

const PEER: &str = "CuratorCoordPeer";

/// Starts the Curator peer with one client per `(who, connect string)`, logging to `log`.
async fn start_peer(log: &Path, session: Duration, clients: &[(&str, String)]) -> Peer {
    let (classpath, classes) = prepare_shared(&format!("{PEER}.java")).await;
    let mut args = vec![log.display().to_string(), session.as_millis().to_string()];
    args.extend(
        clients
            .iter()
            .map(|(who, connect)| format!("{who}={connect}")),
    );
    java_peer::start(&classpath, &classes, PEER, &args).await
}

/// Sends `command` and returns the peer's reply, which must begin with `reply`.
async fn ask(peer: &mut Peer, command: &str, reply: &str) -> String {
    peer.send(command).await;
    let line = peer.line().await;
    assert!(
        line.starts_with(reply),
        "{command:?} got {line:?}, not {reply:?}"
    );
    line
}

/// Reads lines until each of `expected` came, in any order; any other line fails the test.
async fn expect_lines(peer: &mut Peer, expected: &[&str]) {
    let mut missing: BTreeSet<&str> = expected.iter().copied().collect();
    while !missing.is_empty() {
        let line = peer.line().await;
        assert!(
            missing.remove(line.as_str()),
            "unexpected line from the Curator peer: {line:?} (waiting for {missing:?})"
        );
    }
}

/// Tells the peer to close everything and waits for its successful exit.
async fn quit(mut peer: Peer) {
    ask(&mut peer, "quit", "done").await;
    let status = within("the Curator peer to exit", peer.child.wait())
        .await
        .expect("wait for the Curator peer");
    assert!(status.success(), "the Curator peer failed: {status}");
}

/// Takes values from `changes` until it reports `value`.
async fn await_count(changes: &mut CountWatch, value: i32) {
    within(&format!("the shared count to reach {value}"), async {
        while let Some(seen) = changes.next().await {
            if seen.value == value {
                return;
            }
        }
        panic!("the count watch ended");
    })
    .await;
}

const COUNT_TASKS: usize = 2;
const COUNT_THREADS: usize = 2;
const INCREMENTS: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_shared_counts_add_up_exactly() {
    let server = start_server().await;
    let scratch = Scratch::new("coord-count");
    let path = unique_path("shared-count");
    let w = warden(&server.connect_string()).await;
    let count = SharedCount::new(&w, &path, 0);
    count.create_if_missing().await.expect("create the count");
    let mut changes = count.watch();
    await_count(&mut changes, 0).await;
    let mut peer = start_peer(
        &scratch.join("unused.log"),
        SESSION_TIMEOUT,
        &[("java", server.connect_string())],
    )
    .await;
    ask(&mut peer, &format!("count {path} 7"), "count-started").await;
    // The node existed: Curator's seed does not overwrite it.
    assert_eq!(ask(&mut peer, "count-get", "count ").await, "count 0");

    // A Rust write reaches Curator's listener, and a Curator write the Rust stream.
    count.set(1000).await.expect("set");
    ask(&mut peer, "count-seen 1000", "count-seen ").await;
    ask(&mut peer, "count-set 2000", "count-set").await;
    await_count(&mut changes, 2000).await;

    // Both sides increment by compare-and-set at once, each participant until it has made
    // INCREMENTS successful sets.
    let mut wardens = Vec::new();
    for _ in 0..COUNT_TASKS {
        wardens.push(warden(&server.connect_string()).await);
    }
    peer.send(&format!("count-inc {COUNT_THREADS} {INCREMENTS}"))
        .await;
    let tasks: Vec<_> = wardens
        .into_iter()
        .map(|w| {
            let path = path.clone();
            tokio::spawn(async move {
                let count = SharedCount::new(&w, &path, 0);
                let (mut done, mut lost) = (0, 0);
                while done < INCREMENTS {
                    let seen = count.get().await.expect("get");
                    if count.try_set(seen, seen.value + 1).await.expect("try_set") {
                        done += 1;
                    } else {
                        lost += 1;
                    }
                }
                lost
            })
        })
        .collect();
    let reply = within("Curator's increments", peer.line()).await;
    let java_lost: usize = reply
        .strip_prefix("incremented ")
        .unwrap_or_else(|| panic!("count-inc got {reply:?}"))
        .parse()
        .expect("a number of lost races");
    let mut rust_lost = 0;
    for task in tasks {
        rust_lost += within("Rust's increments", task).await.expect("task");
    }

    let expected = 2000 + ((COUNT_TASKS + COUNT_THREADS) * INCREMENTS) as i32;
    assert_eq!(count.get().await.expect("get").value, expected);
    assert_eq!(
        ask(&mut peer, "count-get", "count ").await,
        format!("count {expected}")
    );
    await_count(&mut changes, expected).await;
    ask(&mut peer, &format!("count-seen {expected}"), "count-seen ").await;
    println!(
        "shared count: {} successful sets, lost races: rust {rust_lost}, curator {java_lost}",
        (COUNT_TASKS + COUNT_THREADS) * INCREMENTS
    );
    quit(peer).await;
}

/// Waits until `sessions` sessions watch `path` (a waiter watches the node just before it
/// sleeps). No event says when another process has set a watch, so the server's watch list
/// is read again every few milliseconds.
async fn await_watchers(server: &ZkServer, path: &str, sessions: usize) {
    within(&format!("{sessions} sessions watching {path}"), async {
        loop {
            let watching = tokio::task::block_in_place(|| watches_by_session(server))
                .values()
                .filter(|paths| paths.contains(path))
                .count();
            if watching >= sessions {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_waiters_pass_when_the_other_side_removes_the_barrier() {
    let server = start_server().await;
    let scratch = Scratch::new("coord-barrier");
    let observer = warden(&server.connect_string()).await;
    let mut peer = start_peer(
        &scratch.join("unused.log"),
        SESSION_TIMEOUT,
        &[("java", server.connect_string())],
    )
    .await;
    for curator_closes in [true, false] {
        let path = unique_path("barrier");
        let barrier = Barrier::new(&observer, &path);
        if curator_closes {
            ask(&mut peer, &format!("barrier-set {path}"), "barrier-set").await;
        } else {
            barrier.set_barrier().await.expect("set");
        }
        let mut rust = Vec::new();
        for _ in 0..2 {
            let w = warden(&server.connect_string()).await;
            let path = path.clone();
            rust.push(tokio::spawn(async move {
                Barrier::new(&w, &path).wait_on_barrier(None).await
            }));
        }
        for who in ["java-0", "java-1"] {
            peer.send(&format!("barrier-wait {path} {who}")).await;
        }
        // Both Rust sessions and Curator's one are waiting on the node.
        await_watchers(&server, &path, 3).await;
        assert!(
            rust.iter().all(|t| !t.is_finished()),
            "a Rust waiter passed a closed barrier"
        );

        // The side that did not close the barrier opens it.
        if curator_closes {
            barrier.remove_barrier().await.expect("remove");
            expect_lines(
                &mut peer,
                &["barrier-released java-0", "barrier-released java-1"],
            )
            .await;
        } else {
            peer.send(&format!("barrier-remove {path}")).await;
            expect_lines(
                &mut peer,
                &[
                    "barrier-removed",
                    "barrier-released java-0",
                    "barrier-released java-1",
                ],
            )
            .await;
        }
        for task in rust {
            let passed = within("a Rust waiter", task)
                .await
                .expect("task")
                .expect("wait");
            assert!(passed, "a Rust waiter gave up");
        }
    }
    quit(peer).await;
}

/// The members' node names among `children` (`ready` left out), sorted.
fn members(children: &[String]) -> Vec<String> {
    let mut members: Vec<String> = children
        .iter()
        .filter(|c| *c != READY_NODE)
        .cloned()
        .collect();
    members.sort_unstable();
    members
}

/// In one phase (`enter` or `leave`) of the double barrier: the last member to begin it
/// began before the first member got through.
fn assert_together(entries: &[Entry], phase: &str, count: usize) {
    let began: Vec<u128> = entries
        .iter()
        .filter(|e| e.mode == phase && e.enter)
        .map(|e| e.at)
        .collect();
    let through: Vec<u128> = entries
        .iter()
        .filter(|e| e.mode == phase && !e.enter)
        .map(|e| e.at)
        .collect();
    assert_eq!(
        (began.len(), through.len()),
        (count, count),
        "{phase}: {entries:?}"
    );
    let last_began = began.iter().max().copied().unwrap_or(0);
    let first_through = through.iter().min().copied().unwrap_or(0);
    assert!(
        first_through > last_began,
        "{phase}: a member got through {} µs before the last one began",
        (last_began - first_through) / 1000
    );
    println!(
        "double barrier {phase}: first member through {:.2} ms after the last one began",
        (first_through - last_began) as f64 / 1e6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_members_enter_and_leave_a_double_barrier_together() {
    const MEMBERS: usize = 4;
    let server = start_server().await;
    let scratch = Scratch::new("coord-double-barrier");
    let log = scratch.join("members.log");
    let path = unique_path("double-barrier");
    let observer = warden(&server.connect_string()).await;
    // The barrier node exists before anybody arrives (both recipes accept that), so the
    // test's child watches below always watch an existing node.
    observer
        .create(&path, b"")
        .await
        .expect("create the barrier node");
    let mut peer = start_peer(&log, SESSION_TIMEOUT, &[("java", server.connect_string())]).await;
    let mut rust = Vec::new();
    for who in ["rust-0", "rust-1"] {
        let w = warden(&server.connect_string()).await;
        rust.push((who, DoubleBarrier::new(&w, &path, MEMBERS), w));
    }
    let rust_ids: Vec<String> = rust
        .iter()
        .map(|(_, b, _)| b.member_id().to_owned())
        .collect();
    let spawn_phase =
        |who: &'static str, barrier: DoubleBarrier, log: PathBuf, phase: &'static str| {
            tokio::spawn(async move {
                note(&log, who, phase, "enter");
                if phase == "enter" {
                    barrier.enter().await.expect("enter");
                } else {
                    barrier.leave().await.expect("leave");
                }
                note(&log, who, phase, "exit");
            })
        };

    // Arrivals: rust-0, java-0, rust-1, and java-1 only once the other three are in.
    let mut entering = vec![spawn_phase(
        rust[0].0,
        rust[0].1.clone(),
        log.clone(),
        "enter",
    )];
    peer.send(&format!("dbarrier-enter {path} {MEMBERS} java-0"))
        .await;
    entering.push(spawn_phase(
        rust[1].0,
        rust[1].1.clone(),
        log.clone(),
        "enter",
    ));
    let three = await_children_where(&observer, &path, "three members in", |c| {
        members(c).len() == 3
    })
    .await;
    assert!(
        entering.iter().all(|t| !t.is_finished()),
        "a Rust member entered early"
    );
    let java0: Vec<String> = members(&three)
        .into_iter()
        .filter(|m| !rust_ids.contains(m))
        .collect();
    assert_eq!(java0.len(), 1, "{three:?}");
    peer.send(&format!("dbarrier-enter {path} {MEMBERS} java-1"))
        .await;
    expect_lines(
        &mut peer,
        &["dbarrier-entered java-0", "dbarrier-entered java-1"],
    )
    .await;
    for task in entering {
        within("a Rust member to enter", task).await.expect("enter");
    }
    let all = members(&children_of(&observer, &path).await);
    assert_eq!(all.len(), MEMBERS, "{all:?}");
    let java1 = all
        .iter()
        .find(|m| !rust_ids.contains(m) && **m != java0[0])
        .expect("java-1's node")
        .clone();

    // Leaving: everybody but java-1 first. Curator's and our recipe keep the lowest node
    // until the last, so wait until only that one and java-1's are left.
    let mut leaving: Vec<_> = rust
        .iter()
        .map(|(who, barrier, _)| spawn_phase(who, barrier.clone(), log.clone(), "leave"))
        .collect();
    peer.send("dbarrier-leave java-0").await;
    let mut staying = vec![all[0].clone(), java1];
    staying.dedup();
    staying.sort_unstable();
    await_children_where(
        &observer,
        &path,
        "all but java-1 and the lowest to leave",
        |c| members(c) == staying,
    )
    .await;
    assert!(
        leaving.iter().all(|t| !t.is_finished()),
        "a Rust member left early"
    );
    peer.send("dbarrier-leave java-1").await;
    expect_lines(&mut peer, &["dbarrier-left java-0", "dbarrier-left java-1"]).await;
    for task in leaving.drain(..) {
        within("a Rust member to leave", task).await.expect("leave");
    }
    // Every member deleted `ready` (or found it gone) before returning.
    assert_eq!(children_of(&observer, &path).await, Vec::<String>::new());
    quit(peer).await;

    let entries = parse_log(&std::fs::read_to_string(&log).expect("read the log"));
    assert_together(&entries, "enter", MEMBERS);
    assert_together(&entries, "leave", MEMBERS);
}

/// The selector test's session timeout, Rust and Curator alike: short, since a blackholed
/// leader is replaced only once the server expires its session.
const SELECTOR_SESSION: Duration = Duration::from_secs(4);

/// What happens to the current leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// It is told to give up its term (and queues again).
    Yield,
    /// Its session is expired on the server.
    Expire,
    /// Its connection goes silent until somebody else leads.
    Blackhole,
}

const SELECTOR_FAULTS: &[(Fault, Target)] = &[
    (Fault::Yield, Target::Any),
    (Fault::Expire, Target::Rust),
    (Fault::Expire, Target::Curator),
    (Fault::Blackhole, Target::Rust),
    (Fault::Blackhole, Target::Curator),
];

/// A Rust selector behind a proxy of its own; its scope leads until released or cancelled.
struct RustSelector {
    who: String,
    warden: Warden,
    proxy: FaultProxy,
    release: Arc<Notify>,
    handle: LeaderSelector,
}

impl RustSelector {
    async fn start(
        who: &str,
        server: &ZkServer,
        path: &str,
        log: &Path,
        beliefs: &mpsc::UnboundedSender<Belief>,
    ) -> RustSelector {
        let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
        let warden = Warden::builder(proxy.connect_string())
            .session_timeout(SELECTOR_SESSION)
            .connection_timeout(Duration::from_secs(20))
            .retry(RetryConfig::Forever {
                sleep: Duration::from_millis(50),
            })
            .start()
            .await
            .expect("warden start");
        let release = Arc::new(Notify::new());
        let (me, log, beliefs, released) = (
            who.to_owned(),
            log.to_owned(),
            beliefs.clone(),
            release.clone(),
        );
        let handle = LeaderSelector::builder(&warden, path)
            .id(who)
            .start(move |_leadership, cancel| {
                let (who, log, beliefs, release) =
                    (me.clone(), log.clone(), beliefs.clone(), released.clone());
                async move {
                    // Registered before the test hears of the term, so a release it sends
                    // at once is not missed.
                    let released = release.notified();
                    tokio::pin!(released);
                    released.as_mut().enable();
                    note(&log, &who, "lead", "enter");
                    println!("{who} leads");
                    let _ = beliefs.send(Belief {
                        who: who.clone(),
                        leading: true,
                    });
                    tokio::select! {
                        () = cancel.cancelled() => println!("{who} cancelled"),
                        () = released => println!("{who} released"),
                    }
                    note(&log, &who, "lead", "exit");
                    println!("{who} stepped down");
                    let _ = beliefs.send(Belief {
                        who,
                        leading: false,
                    });
                }
            })
            .await
            .expect("start");
        RustSelector {
            who: who.to_owned(),
            warden,
            proxy,
            release,
            handle,
        }
    }
}

/// The Curator side of the selector test: one peer with a client per participant, each
/// behind a proxy of its own, and what its output told so far.
struct CuratorSelectors {
    child: Child,
    stdin: ChildStdin,
    proxies: BTreeMap<String, FaultProxy>,
    sessions: mpsc::UnboundedReceiver<(SessionId, SessionPassword)>,
    others: mpsc::UnboundedReceiver<String>,
}

impl CuratorSelectors {
    /// Starts the peer; its `lead`/`unlead` lines become beliefs.
    async fn start(
        server: &ZkServer,
        log: &Path,
        beliefs: &mpsc::UnboundedSender<Belief>,
    ) -> CuratorSelectors {
        let mut proxies = BTreeMap::new();
        let mut clients = Vec::new();
        for who in ["java-0", "java-1"] {
            let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
            clients.push((who, proxy.connect_string()));
            proxies.insert(who.to_owned(), proxy);
        }
        let Peer {
            child,
            mut lines,
            stdin,
        } = start_peer(log, SELECTOR_SESSION, &clients).await;
        let (sessions_tx, sessions) = mpsc::unbounded_channel();
        let (others_tx, others) = mpsc::unbounded_channel();
        let beliefs = beliefs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let parts: Vec<&str> = line.split(' ').collect();
                match parts.as_slice() {
                    [what @ ("lead" | "unlead"), who] => {
                        println!("{line}");
                        let _ = beliefs.send(Belief {
                            who: (*who).to_owned(),
                            leading: *what == "lead",
                        });
                    }
                    ["session", _, id, password] => {
                        let _ = sessions_tx.send(parse_session(id, password));
                    }
                    _ => {
                        let _ = others_tx.send(line);
                    }
                }
            }
        });
        CuratorSelectors {
            child,
            stdin,
            proxies,
            sessions,
            others,
        }
    }

    async fn send(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write to the Curator peer");
        self.stdin.flush().await.expect("flush to the Curator peer");
    }

    async fn session(&mut self, who: &str) -> (SessionId, SessionPassword) {
        self.send(&format!("session {who}")).await;
        within("a Curator session", self.sessions.recv())
            .await
            .expect("a session line")
    }

    async fn quit(mut self) {
        self.send("quit").await;
        let line = within("the Curator peer to finish", self.others.recv()).await;
        assert_eq!(line.as_deref(), Some("done"));
        let status = within("the Curator peer to exit", self.child.wait())
            .await
            .expect("wait for the Curator peer");
        assert!(status.success(), "the Curator peer failed: {status}");
    }
}

/// `<id> <password hex>` as the peer prints a session.
fn parse_session(id: &str, password: &str) -> (SessionId, SessionPassword) {
    let bytes: Vec<u8> = password
        .as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
        .collect();
    (
        SessionId(id.parse().expect("session id")),
        SessionPassword::new(bytes),
    )
}

/// Leadership terms from the log: `(who, from, to)`, sorted by start. A term whose owner's
/// session was expired on the server (`expired`: who, when) ends at the expiry at the
/// latest: from then on its node is gone and the participant learns it at its next contact.
fn terms(entries: &[Entry], expired: &[(String, u128)]) -> Vec<(String, u128, u128)> {
    let mut open: BTreeMap<&str, u128> = BTreeMap::new();
    let mut terms = Vec::new();
    for entry in entries {
        assert_eq!(entry.mode, "lead", "{entry:?}");
        if entry.enter {
            assert!(
                open.insert(&entry.who, entry.at).is_none(),
                "{} led twice at once",
                entry.who
            );
        } else {
            let from = open
                .remove(entry.who.as_str())
                .unwrap_or_else(|| panic!("{} ended a term it had not begun", entry.who));
            let to = expired
                .iter()
                .filter(|(who, at)| *who == entry.who && (from..entry.at).contains(at))
                .map(|(_, at)| *at)
                .min()
                .unwrap_or(entry.at);
            terms.push((entry.who.clone(), from, to));
        }
    }
    assert!(open.is_empty(), "terms never ended: {open:?}");
    terms.sort_by_key(|t| t.1);
    terms
}

/// How many terms overlap one that began before them.
fn overlaps(terms: &[(String, u128, u128)]) -> usize {
    let mut overlaps = 0;
    let mut last_end: Option<&(String, u128, u128)> = None;
    for term in terms {
        if let Some(previous) = last_end {
            if term.1 < previous.2 {
                overlaps += 1;
                println!("OVERLAP: {previous:?} and {term:?}");
            }
        }
        if last_end.is_none_or(|p| term.2 > p.2) {
            last_end = Some(term);
        }
    }
    overlaps
}

#[test]
fn the_term_checker_sees_two_leaders() {
    let log = "a lead enter 1\nb lead enter 2\na lead exit 3\nb lead exit 4\n";
    let entries = parse_log(log);
    assert_eq!(overlaps(&terms(&entries, &[])), 1);
    // Expired on the server before b began: no overlap.
    assert_eq!(overlaps(&terms(&entries, &[("a".to_owned(), 2)])), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_selectors_lead_one_at_a_time_through_faults() {
    let server = start_server().await;
    let scratch = Scratch::new("coord-selector");
    let log = scratch.join("leaders.log");
    let path = unique_path("selector-interop");
    let (beliefs_tx, beliefs_rx) = mpsc::unbounded_channel();
    let mut beliefs = Beliefs::new(beliefs_rx);
    let observer = warden(&server.connect_string()).await;
    // The election node exists before anybody queues, so the child watch below always
    // watches an existing node.
    observer
        .create(&path, b"")
        .await
        .expect("create the election node");
    let mut curator = CuratorSelectors::start(&server, &log, &beliefs_tx).await;
    let mut rust = Vec::new();
    for who in ["rust-0", "rust-1"] {
        rust.push(RustSelector::start(who, &server, &path, &log, &beliefs_tx).await);
    }
    curator.send(&format!("select {path}")).await;
    // Everybody is queued before the faults begin (a yield must find somebody else to take
    // over), and lists under the id it gave.
    await_children(&observer, &path, 4).await;
    let mut ids: Vec<String> = LeaderSelector::participants_on(&observer, &path)
        .await
        .expect("participants")
        .into_iter()
        .map(|p| p.id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["java-0", "java-1", "rust-0", "rust-1"]);

    let mut expired: Vec<(String, u128)> = Vec::new();
    let mut applied = Vec::new();
    let everybody = ["java-0", "java-1", "rust-0", "rust-1"];
    // The faults, each on a leader of the kind it targets (others yield until one leads);
    // then yields until everybody has led.
    let mut plan: Vec<(Fault, Target)> = SELECTOR_FAULTS.to_vec();
    plan.extend(std::iter::repeat_n(
        (Fault::Yield, Target::Any),
        2 * everybody.len(),
    ));
    for (fault, target) in plan {
        if fault == Fault::Yield
            && target == Target::Any
            && applied.len() >= SELECTOR_FAULTS.len()
            && everybody
                .iter()
                .all(|who| beliefs.terms().contains_key(*who))
        {
            break;
        }
        let mut leader = beliefs.one_leader().await;
        for _ in 0..2 * everybody.len() {
            if target.matches(&leader) {
                break;
            }
            yield_term(&mut curator, &rust, &mut beliefs, &leader).await;
            leader = beliefs.one_leader().await;
        }
        assert!(target.matches(&leader), "{target:?} never led");
        println!("{fault:?} on {leader}");
        match fault {
            Fault::Yield => yield_term(&mut curator, &rust, &mut beliefs, &leader).await,
            Fault::Expire => {
                let rust_leader = rust.iter().find(|r| r.who == leader);
                let session = match rust_leader {
                    Some(_) => None,
                    None => Some(curator.session(&leader).await),
                };
                expired.push((leader.clone(), wall_nanos()));
                match (rust_leader, session) {
                    (Some(r), _) => {
                        zkwarden::testing::expire_warden(&r.warden)
                            .await
                            .expect("expire");
                    }
                    (None, Some((id, password))) => {
                        zkwarden::testing::expire_session(&server.connect_string(), id, &password)
                            .await
                            .expect("expire");
                    }
                    (None, None) => unreachable!(),
                }
                beliefs.loss_by(&leader).await;
                beliefs.gain_by_other_than(&leader).await;
            }
            Fault::Blackhole => {
                let proxy = match rust.iter().find(|r| r.who == leader) {
                    Some(r) => &r.proxy,
                    None => &curator.proxies[&leader],
                };
                proxy.blackhole();
                // It steps down when its connection goes quiet; the next leader begins once
                // the server expires its session.
                beliefs.loss_by(&leader).await;
                beliefs.gain_by_other_than(&leader).await;
                proxy.pass_through();
            }
        }
        applied.push((fault, leader));
    }
    println!("faults applied: {applied:?}");

    for r in rust {
        r.handle.close().await.expect("close");
    }
    curator.quit().await;
    let entries = parse_log(&std::fs::read_to_string(&log).expect("read the log"));
    let mut entries = entries;
    entries.sort_by_key(|e| e.at);
    let terms = terms(&entries, &expired);
    let mut by_who: BTreeMap<&str, usize> = BTreeMap::new();
    for (who, _, _) in &terms {
        *by_who.entry(who.as_str()).or_default() += 1;
    }
    println!("{} terms {by_who:?}", terms.len());
    // Hand-offs: from the end of one term (a yield, or a fault's effect) to the next start.
    let kind = |who: &str| {
        if who.starts_with("rust-") {
            "rust"
        } else {
            "curator"
        }
    };
    let mut handoffs: BTreeMap<(&str, &str), Vec<f64>> = BTreeMap::new();
    for pair in terms.windows(2) {
        let ((from, _, end), (to, start, _)) = (&pair[0], &pair[1]);
        handoffs
            .entry((kind(from), kind(to)))
            .or_default()
            .push(start.saturating_sub(*end) as f64 / 1e6);
    }
    for ((from, to), gaps) in &handoffs {
        let most = gaps.iter().copied().fold(0.0, f64::max);
        println!(
            "selector hand-off {from} -> {to}: n={} max={most:.1} ms {gaps:.1?}",
            gaps.len()
        );
    }
    assert_eq!(overlaps(&terms), 0, "two participants led at once");
    for who in everybody {
        assert!(by_who.contains_key(who), "{who} never led: {by_who:?}");
    }
}

/// Tells `leader` to end its term and waits until somebody else leads.
async fn yield_term(
    curator: &mut CuratorSelectors,
    rust: &[RustSelector],
    beliefs: &mut Beliefs,
    leader: &str,
) {
    match rust.iter().find(|r| r.who == leader) {
        Some(r) => r.release.notify_waiters(),
        None => curator.send(&format!("release {leader}")).await,
    }
    beliefs.loss_by(leader).await;
    beliefs.gain_by_other_than(leader).await;
}
