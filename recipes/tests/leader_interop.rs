//! Leader latches shared with Apache Curator, through faults: three Rust [`LeaderLatch`]
//! participants and two Curator `LeaderLatch` participants (a Java peer,
//! `tests/java/CuratorLatchPeer.java`, compiled here with the Debian Curator jars) elect on
//! one path while the test closes leaders, expires their sessions, cuts their connections
//! and blackholes them. Every participant logs when it believes it gained and lost
//! leadership (Rust ones end a belief when `lost()` resolves); the merged log must show no
//! two beliefs at once, and a leader must emerge once the faults stop.

mod common;
mod election_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use common::java_peer::{self, Scratch, wall_nanos};
use common::{SESSION_TIMEOUT, blocking, start_server, unique_path, warden, within};
use election_support::{Belief, Beliefs, Target};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zkwarden::testing::{FaultProxy, ZkEnsemble, connect_string_of};
use zkwarden::{SessionId, SessionPassword, Warden};
use zkwarden_recipes::leader::LeaderLatch;

const RUST_PARTICIPANTS: usize = 3;
const JAVA_PARTICIPANTS: usize = 2;

/// Appends `<who> <what> <nanos>[ <extra>]` with a single write (the file is opened for
/// appending, so lines from all participants land whole and in order). Returns the nanos.
fn note(log: &Path, who: &str, what: &str, extra: &str) -> u128 {
    let at = wall_nanos();
    let line = if extra.is_empty() {
        format!("{who} {what} {at}\n")
    } else {
        format!("{who} {what} {at} {extra}\n")
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log")
        .write_all(line.as_bytes())
        .expect("append to log");
    // Shown with --nocapture, and in the output of a failed run.
    print!("{line}");
    at
}

/// Waits, by child watches, until all participants have a node under `path`.
async fn await_queue(observer: &Warden, path: &str) {
    within("all participants queued", async {
        loop {
            let watcher = match observer.get_children_and_watch(path).await {
                Ok((children, watcher)) => {
                    if children.len() == RUST_PARTICIPANTS + JAVA_PARTICIPANTS {
                        return;
                    }
                    watcher
                }
                Err(zkwarden::Error::NoNode) => {
                    observer.exists_and_watch(path).await.expect("exists").1
                }
                Err(e) => panic!("list {path}: {e}"),
            };
            let _ = watcher.await;
        }
    })
    .await;
}

/// A Rust participant: its own warden behind its own proxies, and the task following its
/// latch.
struct RustPeer {
    who: String,
    warden: Warden,
    proxies: Vec<FaultProxy>,
    close: Option<oneshot::Sender<oneshot::Sender<()>>>,
    task: Option<JoinHandle<()>>,
}

impl RustPeer {
    async fn start(
        who: String,
        upstreams: &[SocketAddr],
        path: &str,
        log: &Path,
        beliefs: &mpsc::UnboundedSender<Belief>,
    ) -> RustPeer {
        let proxies = FaultProxy::start_many(upstreams).await.expect("proxies");
        let warden = warden(&connect_string_of(&proxies)).await;
        let mut peer = RustPeer {
            who,
            warden,
            proxies,
            close: None,
            task: None,
        };
        peer.join(path, log, beliefs).await;
        peer
    }

    /// Starts a latch and a task that logs every belief until told to close.
    async fn join(&mut self, path: &str, log: &Path, beliefs: &mpsc::UnboundedSender<Belief>) {
        let latch = LeaderLatch::builder(&self.warden, path)
            .id(self.who.clone())
            .start()
            .await
            .expect("start");
        let (close_tx, mut close_rx) = oneshot::channel::<oneshot::Sender<()>>();
        let (who, log, beliefs) = (self.who.clone(), log.to_owned(), beliefs.clone());
        self.close = Some(close_tx);
        self.task = Some(tokio::spawn(async move {
            let done = loop {
                let term = tokio::select! {
                    done = &mut close_rx => break done.ok(),
                    term = latch.await_leadership(None) => term.expect("leadership"),
                };
                let token = term.fencing_token().to_string();
                note(&log, &who, "gain", &token);
                let _ = beliefs.send(Belief {
                    who: who.clone(),
                    leading: true,
                });
                tokio::select! {
                    reason = term.lost() => {
                        note(&log, &who, "loss", &format!("{reason:?}"));
                        let _ = beliefs.send(Belief { who: who.clone(), leading: false });
                    }
                    done = &mut close_rx => {
                        // Stop acting as leader before leaving the election.
                        note(&log, &who, "loss", "Closing");
                        let _ = beliefs.send(Belief { who: who.clone(), leading: false });
                        break done.ok();
                    }
                }
            };
            note(&log, &who, "close", "");
            latch.close().await.expect("close latch");
            if let Some(done) = done {
                let _ = done.send(());
            }
        }));
    }

    /// Leaves the election and waits until the latch is closed.
    async fn leave(&mut self) {
        let (done_tx, done_rx) = oneshot::channel();
        if let Some(close) = self.close.take() {
            let _ = close.send(done_tx);
            within("a Rust latch to close", done_rx)
                .await
                .expect("closed");
        }
        if let Some(task) = self.task.take() {
            within("a Rust follower to end", task)
                .await
                .expect("follower");
        }
    }

    fn session(&self) -> (SessionId, SessionPassword) {
        let client = self.warden.client().expect("a client");
        (client.session_id(), client.session_password())
    }
}

/// A Java participant: a JVM running the Curator peer behind its own proxies.
struct JavaPeer {
    who: String,
    proxies: Vec<FaultProxy>,
    child: Child,
    stdin: ChildStdin,
    sessions: mpsc::UnboundedReceiver<(SessionId, SessionPassword)>,
}

impl JavaPeer {
    #[allow(clippy::too_many_arguments)]
    async fn start(
        who: String,
        upstreams: &[SocketAddr],
        path: &str,
        log: &Path,
        classes: &Path,
        classpath: &str,
        beliefs: &mpsc::UnboundedSender<Belief>,
    ) -> JavaPeer {
        let proxies = FaultProxy::start_many(upstreams).await.expect("proxies");
        let mut child = Command::new("java")
            .arg("-cp")
            .arg(format!("{}:{classpath}", classes.display()))
            .arg("CuratorLatchPeer")
            .arg(connect_string_of(&proxies))
            .arg(path)
            .arg(&who)
            .arg(log)
            .arg(SESSION_TIMEOUT.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Java peer");
        let stdin = child.stdin.take().expect("peer stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("peer stdout")).lines();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (session_tx, sessions) = mpsc::unbounded_channel();
        let beliefs = beliefs.clone();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                let parts: Vec<&str> = line.split(' ').collect();
                match parts.as_slice() {
                    ["ready"] => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(());
                        }
                    }
                    ["session", id, password] => {
                        let id: i64 = id.parse().expect("session id");
                        let bytes: Vec<u8> = (0..password.len())
                            .step_by(2)
                            .map(|i| u8::from_str_radix(&password[i..i + 2], 16).expect("hex"))
                            .collect();
                        let _ = session_tx.send((SessionId(id), SessionPassword::new(bytes)));
                    }
                    [who, what, _] if *what == "gain" || *what == "loss" => {
                        println!("{line}");
                        let _ = beliefs.send(Belief {
                            who: (*who).to_owned(),
                            leading: *what == "gain",
                        });
                    }
                    _ => {}
                }
            }
        });
        within("the Java peer to connect", ready_rx)
            .await
            .expect("the Java peer ended before it was ready");
        JavaPeer {
            who,
            proxies,
            child,
            stdin,
            sessions,
        }
    }

    async fn command(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write to the Java peer");
        self.stdin.flush().await.expect("flush");
    }

    async fn session(&mut self) -> (SessionId, SessionPassword) {
        self.command("session").await;
        within("the Java session", self.sessions.recv())
            .await
            .expect("a session line")
    }
}

/// The faults, applied in turn to whoever leads at the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The leader leaves the election (measures the hand-off).
    Close,
    /// The leader's session is expired on the server.
    Expire,
    /// The leader's connection is reset (it reconnects to the same session).
    Reset,
    /// The leader's connection is blackholed until somebody else leads.
    Blackhole,
    /// The ensemble member serving the leader's session is killed (and restarted).
    KillServing,
    /// The ensemble's own leader is killed (and restarted): every client of it, and the
    /// quorum, goes away for a while.
    KillQuorumLeader,
}

/// The faults of the run. One aimed at a kind of participant closes other leaders first
/// until one of that kind leads.
const SCHEDULE: &[(Fault, Target)] = &[
    (Fault::Close, Target::Any),
    (Fault::Expire, Target::Rust),
    (Fault::Close, Target::Any),
    (Fault::Expire, Target::Curator),
    (Fault::Reset, Target::Rust),
    (Fault::Close, Target::Any),
    (Fault::Reset, Target::Curator),
    (Fault::Blackhole, Target::Rust),
    (Fault::Close, Target::Any),
    (Fault::Blackhole, Target::Curator),
    (Fault::Close, Target::Any),
    (Fault::Expire, Target::Any),
    (Fault::Close, Target::Any),
    (Fault::Close, Target::Any),
];

/// The participants, and what the test knows about their beliefs.
struct Cluster {
    rust: Vec<RustPeer>,
    java: Vec<JavaPeer>,
    beliefs: Beliefs,
    beliefs_tx: mpsc::UnboundedSender<Belief>,
    connect: String,
    path: String,
    log: PathBuf,
    faults: BTreeMap<String, usize>,
    ensemble: Option<Arc<StdMutex<ZkEnsemble>>>,
}

impl Cluster {
    fn proxies_of(&self, who: &str) -> &[FaultProxy] {
        match self.rust.iter().find(|p| p.who == who) {
            Some(peer) => &peer.proxies,
            None => {
                &self
                    .java
                    .iter()
                    .find(|p| p.who == who)
                    .expect("peer")
                    .proxies
            }
        }
    }

    /// The session of participant `who`.
    async fn session_of(&mut self, who: &str) -> (SessionId, SessionPassword) {
        match self.rust.iter().find(|p| p.who == who) {
            Some(peer) => peer.session(),
            None => {
                self.java
                    .iter_mut()
                    .find(|p| p.who == who)
                    .expect("peer")
                    .session()
                    .await
            }
        }
    }

    /// Applies `fault` to the current leader `leader` and waits for its effect.
    async fn apply(&mut self, fault: Fault, leader: &str) {
        let is_rust = leader.starts_with("rust-");
        println!("fault {fault:?} on {leader}");
        match fault {
            Fault::Close => {
                if is_rust {
                    let peer = self
                        .rust
                        .iter_mut()
                        .find(|p| p.who == leader)
                        .expect("peer");
                    peer.leave().await;
                    self.beliefs.loss_by(leader).await;
                    self.beliefs.gain_by_other_than(leader).await;
                    peer.join(&self.path, &self.log, &self.beliefs_tx).await;
                } else {
                    let peer = self
                        .java
                        .iter_mut()
                        .find(|p| p.who == leader)
                        .expect("peer");
                    peer.command("close").await;
                    self.beliefs.loss_by(leader).await;
                    self.beliefs.gain_by_other_than(leader).await;
                    peer.command("start").await;
                }
            }
            Fault::Expire => {
                let (session, password) = self.session_of(leader).await;
                note(&self.log, leader, "expire", "");
                zkwarden::testing::expire_session(&self.connect, session, &password)
                    .await
                    .expect("expire");
                self.beliefs.loss_by(leader).await;
                self.beliefs.gain_by_other_than(leader).await;
            }
            Fault::Reset => {
                self.proxies_of(leader)
                    .iter()
                    .for_each(FaultProxy::reset_all);
                // It steps down at Suspended; whoever leads next (often itself again, its
                // node being still first) is awaited by the next round.
                self.beliefs.loss_by(leader).await;
            }
            Fault::Blackhole => {
                self.proxies_of(leader)
                    .iter()
                    .for_each(FaultProxy::blackhole);
                self.beliefs.loss_by(leader).await;
                // Somebody else leads once the server expires the cut-off session.
                self.beliefs.gain_by_other_than(leader).await;
                self.proxies_of(leader)
                    .iter()
                    .for_each(FaultProxy::pass_through);
            }
            Fault::KillServing | Fault::KillQuorumLeader => {
                let ensemble = self.ensemble.clone().expect("an ensemble");
                let (session, _) = self.session_of(leader).await;
                let member = blocking({
                    let ensemble = ensemble.clone();
                    move || {
                        let mut ensemble = ensemble.lock().expect("ensemble");
                        let member = if fault == Fault::KillServing {
                            ensemble.member_of_session(session.0)
                        } else {
                            ensemble.leader()
                        }
                        .expect("a member to kill");
                        ensemble.kill(member).expect("kill");
                        member
                    }
                })
                .await;
                note(&self.log, leader, "kill", &member.to_string());
                if fault == Fault::KillServing {
                    // Its connection is gone: it steps down at Suspended.
                    self.beliefs.loss_by(leader).await;
                }
                blocking(move || {
                    ensemble
                        .lock()
                        .expect("ensemble")
                        .restart(member)
                        .expect("restart")
                })
                .await;
            }
        }
        let kind = if is_rust { "rust" } else { "curator" };
        *self
            .faults
            .entry(format!("{fault:?} {kind}").to_lowercase())
            .or_default() += 1;
    }
}

/// One line of the merged log.
#[derive(Debug)]
struct Entry {
    who: String,
    what: String,
    at: u128,
    extra: String,
}

fn parse_log(text: &str) -> Vec<Entry> {
    let mut entries: Vec<Entry> = text
        .lines()
        .map(|line| {
            let parts: Vec<&str> = line.splitn(4, ' ').collect();
            assert!(parts.len() >= 3, "malformed log line {line:?}");
            Entry {
                who: parts[0].to_owned(),
                what: parts[1].to_owned(),
                at: parts[2].parse().expect("nanos"),
                extra: parts.get(3).copied().unwrap_or("").to_owned(),
            }
        })
        .collect();
    // Appends from two processes land in order of their writes, but the clock was read
    // just before: order by the clock.
    entries.sort_by_key(|e| e.at);
    entries
}

/// One belief interval: who, from, to (the end capped where the session was expired on
/// the server, from which moment its token is invalid), and the end as reported.
#[derive(Debug)]
struct Interval {
    who: String,
    from: u128,
    to: u128,
    reported_to: u128,
}

fn intervals(entries: &[Entry]) -> Vec<Interval> {
    let mut open: BTreeMap<&str, (u128, Option<u128>)> = BTreeMap::new();
    let mut done = Vec::new();
    for e in entries {
        match e.what.as_str() {
            "gain" => {
                assert!(
                    open.insert(&e.who, (e.at, None)).is_none(),
                    "{} gained twice without a loss",
                    e.who
                );
            }
            "loss" => {
                let (from, expired) = open
                    .remove(e.who.as_str())
                    .unwrap_or_else(|| panic!("{} lost without a gain", e.who));
                done.push(Interval {
                    who: e.who.clone(),
                    from,
                    to: expired.map_or(e.at, |x| x.min(e.at)),
                    reported_to: e.at,
                });
            }
            "expire" => {
                if let Some((_, expired)) = open.get_mut(e.who.as_str()) {
                    expired.get_or_insert(e.at);
                }
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "beliefs never ended: {open:?}");
    done.sort_by_key(|i| i.from);
    done
}

fn millis(nanos: u128) -> f64 {
    nanos as f64 / 1e6
}

fn summary(label: &str, mut samples: Vec<f64>) -> String {
    if samples.is_empty() {
        return format!("{label}: no samples");
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    format!(
        "{label}: n={} median={median:.1} ms max={max:.1} ms",
        samples.len()
    )
}

/// Where the participants connect.
struct Servers {
    upstreams: Vec<SocketAddr>,
    connect: String,
    ensemble: Option<Arc<StdMutex<ZkEnsemble>>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_latches_elect_one_leader_through_faults() {
    let (classpath, scratch) = latch_peer("through_faults").await;
    let server = start_server().await;
    let servers = Servers {
        upstreams: vec![server.addr()],
        connect: server.connect_string(),
        ensemble: None,
    };
    elect_through_faults(&servers, SCHEDULE, &classpath, &scratch).await;
}

/// The faults of the ensemble run.
const ENSEMBLE_SCHEDULE: &[(Fault, Target)] = &[
    (Fault::KillServing, Target::Rust),
    (Fault::Close, Target::Any),
    (Fault::KillQuorumLeader, Target::Any),
    (Fault::Close, Target::Any),
    (Fault::KillServing, Target::Curator),
    (Fault::Expire, Target::Any),
    (Fault::Close, Target::Any),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_latches_elect_one_leader_while_ensemble_members_die() {
    let (classpath, scratch) = latch_peer("ensemble").await;
    common::init_tracing();
    let ensemble = blocking(|| {
        ZkEnsemble::builder()
            .max_session_timeout(Duration::from_secs(30))
            .start(3)
    })
    .await
    .expect("start a three-member ensemble");
    let servers = Servers {
        upstreams: (0..ensemble.len()).map(|i| ensemble.addr(i)).collect(),
        connect: ensemble.connect_string(),
        ensemble: Some(Arc::new(StdMutex::new(ensemble))),
    };
    elect_through_faults(&servers, ENSEMBLE_SCHEDULE, &classpath, &scratch).await;
}

/// The Java peer's class path and a scratch directory holding its compiled class.
async fn latch_peer(test: &str) -> (String, Scratch) {
    let scratch = Scratch::new(&format!("latch-{test}"));
    let classpath = java_peer::prepare("CuratorLatchPeer.java", &scratch).await;
    (classpath, scratch)
}

/// Three Rust and two Curator participants elect on one path through `schedule`; checks
/// the merged log and reports hand-off times.
async fn elect_through_faults(
    servers: &Servers,
    schedule: &[(Fault, Target)],
    classpath: &str,
    scratch: &Scratch,
) {
    let path = unique_path("latch-interop");
    let log = scratch.0.join("beliefs.log");
    let (beliefs_tx, beliefs_rx) = mpsc::unbounded_channel();
    let mut beliefs = Beliefs::new(beliefs_rx);

    let mut rust = Vec::new();
    for i in 0..RUST_PARTICIPANTS {
        rust.push(
            RustPeer::start(
                format!("rust-{i}"),
                &servers.upstreams,
                &path,
                &log,
                &beliefs_tx,
            )
            .await,
        );
    }
    let mut java = Vec::new();
    for i in 0..JAVA_PARTICIPANTS {
        java.push(
            JavaPeer::start(
                format!("java-{i}"),
                &servers.upstreams,
                &path,
                &log,
                &scratch.0,
                classpath,
                &beliefs_tx,
            )
            .await,
        );
    }
    let observer = warden(&servers.connect).await;

    // Everybody is queued and listed, with the ids their nodes hold; the listing's leader
    // is the one that believes it leads.
    await_queue(&observer, &path).await;
    let first = beliefs.one_leader().await;
    let participants = LeaderLatch::participants_on(&observer, &path)
        .await
        .expect("participants");
    let mut ids: Vec<&str> = participants.iter().map(|p| p.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["java-0", "java-1", "rust-0", "rust-1", "rust-2"]);
    assert!(participants[0].is_leader);
    assert_eq!(participants[0].id, first);

    let mut cluster = Cluster {
        rust,
        java,
        beliefs,
        beliefs_tx,
        connect: servers.connect.clone(),
        path: path.clone(),
        log: log.clone(),
        faults: BTreeMap::new(),
        ensemble: servers.ensemble.clone(),
    };
    for &(fault, target) in schedule {
        let mut leader = cluster.beliefs.one_leader().await;
        for _ in 0..2 * (RUST_PARTICIPANTS + JAVA_PARTICIPANTS) {
            if target.matches(&leader) {
                break;
            }
            cluster.apply(Fault::Close, &leader).await;
            leader = cluster.beliefs.one_leader().await;
        }
        cluster.apply(fault, &leader).await;
    }
    let Cluster {
        mut rust,
        mut java,
        mut beliefs,
        faults,
        ..
    } = cluster;

    // The faults have stopped: a leader emerges, and the listing agrees with it.
    let last = beliefs.one_leader().await;
    await_queue(&observer, &path).await;
    let listed = LeaderLatch::leader_on(&observer, &path)
        .await
        .expect("leader")
        .expect("a leader");
    assert_eq!(listed.id, last);
    println!("leader after the faults: {last}");

    // Everybody leaves.
    for peer in &mut rust {
        peer.leave().await;
    }
    for peer in &mut java {
        peer.command("quit").await;
        let status = within("the Java peer to quit", peer.child.wait())
            .await
            .expect("wait");
        assert!(status.success(), "{}: {status}", peer.who);
    }

    // The merged log: no two beliefs overlap (a session expired on the server ends its
    // owner's valid token at the moment of expiry), and hand-off times.
    let entries = parse_log(&std::fs::read_to_string(&log).expect("read log"));
    let intervals = intervals(&entries);
    let mut overlaps = 0;
    // How long a leader whose session the server expired still believed it led after its
    // successor began (its token was already invalid), by kind.
    let mut stale_belief: BTreeMap<&str, u128> = BTreeMap::new();
    let mut last_end: Option<&Interval> = None;
    for interval in &intervals {
        if let Some(previous) = last_end {
            if interval.from < previous.to {
                overlaps += 1;
                println!(
                    "OVERLAP: {} until {} and {} from {}",
                    previous.who, previous.to, interval.who, interval.from
                );
            }
            let kind = if previous.who.starts_with("rust-") {
                "rust"
            } else {
                "curator"
            };
            let stale = stale_belief.entry(kind).or_default();
            *stale = (*stale).max(previous.reported_to.saturating_sub(interval.from));
        }
        if last_end.is_none_or(|p| interval.to > p.to) {
            last_end = Some(interval);
        }
    }
    // Rust tokens never go backwards.
    let mut last_token = i64::MIN;
    for e in entries
        .iter()
        .filter(|e| e.what == "gain" && e.who.starts_with("rust-"))
    {
        let token: i64 = e.extra.parse().expect("token");
        assert!(token >= last_token, "fencing tokens went backwards: {e:?}");
        last_token = token;
    }
    let mut rust_handoffs = Vec::new();
    let mut java_handoffs = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.what != "close" {
            continue;
        }
        if let Some(next) = entries[i + 1..]
            .iter()
            .find(|n| n.what == "gain" && n.who != e.who)
        {
            let delta = millis(next.at - e.at);
            if e.who.starts_with("rust-") {
                rust_handoffs.push(delta);
            } else {
                java_handoffs.push(delta);
            }
        }
    }
    let gains = entries.iter().filter(|e| e.what == "gain").count();
    println!(
        "{} terms ({} by Curator), faults {faults:?}, overlaps {overlaps}, longest stale belief of an expired leader after its successor began: {}",
        gains,
        entries
            .iter()
            .filter(|e| e.what == "gain" && e.who.starts_with("java-"))
            .count(),
        stale_belief
            .iter()
            .map(|(kind, nanos)| format!("{kind} {:.1} ms", millis(*nanos)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    println!(
        "{}",
        summary("hand-off after a Rust leader closed", rust_handoffs)
    );
    println!(
        "{}",
        summary("hand-off after a Curator leader closed", java_handoffs)
    );
    assert_eq!(overlaps, 0, "two participants believed they led at once");
}
