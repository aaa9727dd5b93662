//! The read/write lock and the semaphore share their paths with Apache Curator's
//! `InterProcessReadWriteLock` and `InterProcessSemaphoreV2`: a Java peer
//! (`tests/java/CuratorRecipesPeer.java`, compiled here against the Debian Curator jars) and
//! Rust holders contend at once, every holder logs its critical sections to one file, and
//! the log shows no reader beside a writer, no two writers, and never more than N leases.
//! Both tests also print the hand-off times (one holder's exit to the next one's enter)
//! between Rust and Curator holders.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::java_peer::{self, Entry, Scratch, note, parse_log};
use common::{start_server, unique_path, warden, within};
use zkwarden::{Error, Warden};
use zkwarden_recipes::lock::{Lockable, ReadWriteLock, Semaphore, SemaphoreMutex};

const PEER: &str = "CuratorRecipesPeer";
const JAVA_ROUNDS: usize = 15;
const RUST_MIN_ROUNDS: usize = 15;
/// How long a reader or writer stays inside.
const RW_HOLD: Duration = Duration::from_millis(2);
/// How long a lease is held: long enough for the semaphore to fill, so hand-offs show.
const LEASE_HOLD: Duration = Duration::from_millis(20);

/// Compiles the peer into a fresh scratch directory.
async fn prepare(test: &str) -> (String, Scratch) {
    let scratch = Scratch::new(test);
    let classpath = java_peer::prepare(&format!("{PEER}.java"), &scratch).await;
    (classpath, scratch)
}

/// Waits for the peer to finish successfully (it gives up on its own after 60 s a round).
async fn finish(mut peer: java_peer::Peer) {
    let status = tokio::time::timeout(Duration::from_secs(150), peer.child.wait())
        .await
        .expect("the Java peer finished in time")
        .expect("wait for the Java peer");
    assert!(status.success(), "the Java peer failed: {status}");
}

async fn assert_no_children(w: &Warden, path: &str) {
    match w.get_children(path).await {
        Ok(children) => assert!(
            children.is_empty(),
            "left behind under {path}: {children:?}"
        ),
        Err(Error::NoNode) => {}
        Err(e) => panic!("list {path}: {e}"),
    }
}

fn lang(e: &Entry) -> &'static str {
    if e.is_java() { "curator" } else { "rust" }
}

/// Median and 90th percentile of `samples` (nanoseconds), in milliseconds.
fn summary(samples: &mut [u128]) -> String {
    if samples.is_empty() {
        return "no samples".to_owned();
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64 / 1e6;
    format!(
        "n={} median={:.2} ms p90={:.2} ms",
        samples.len(),
        at(0.5),
        at(0.9)
    )
}

fn print_handoffs(what: &str, handoffs: &mut BTreeMap<(&'static str, &'static str), Vec<u128>>) {
    for ((from, to), samples) in handoffs.iter_mut() {
        println!("{what} hand-off {from} -> {to}: {}", summary(samples));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_readers_and_writers_share_one_lock() {
    const TEST: &str = "rust_and_curator_readers_and_writers_share_one_lock";
    let (classpath, scratch) = prepare(TEST).await;
    let server = start_server().await;
    let path = unique_path("curator-rwlock");
    let log = scratch.0.join("holders.log");
    let args = [
        "rw".to_owned(),
        server.connect_string(),
        path.clone(),
        log.display().to_string(),
        "2".to_owned(),
        "2".to_owned(),
        JAVA_ROUNDS.to_string(),
        RW_HOLD.as_millis().to_string(),
    ];
    let peer = java_peer::start(&classpath, &scratch.0, PEER, &args).await;

    let java_done = Arc::new(AtomicBool::new(false));
    let rust_sections = Arc::new(AtomicUsize::new(0));
    let mut holders = Vec::new();
    for (who, write) in [
        ("rust-r0", false),
        ("rust-r1", false),
        ("rust-w0", true),
        ("rust-w1", true),
    ] {
        let w = warden(&server.connect_string()).await;
        let (path, log) = (path.clone(), log.clone());
        let (java_done, rust_sections) = (java_done.clone(), rust_sections.clone());
        holders.push(tokio::spawn(async move {
            let lock = ReadWriteLock::new(&w, &path).payload(who);
            let mut rounds = 0;
            while rounds < RUST_MIN_ROUNDS || !java_done.load(Ordering::SeqCst) {
                let (guard, mode) = if write {
                    (lock.write().lock().await.expect("rust write lock"), "write")
                } else {
                    (lock.read().lock().await.expect("rust read lock"), "read")
                };
                note(&log, who, mode, "enter");
                tokio::time::sleep(RW_HOLD).await;
                note(&log, who, mode, "exit");
                guard.release().await.expect("rust release");
                rounds += 1;
            }
            rust_sections.fetch_add(rounds, Ordering::SeqCst);
        }));
    }
    finish(peer).await;
    java_done.store(true, Ordering::SeqCst);
    for holder in holders {
        within("a Rust holder", holder).await.expect("holder");
    }

    let entries = parse_log(&std::fs::read_to_string(&log).expect("read log"));
    let mut readers: BTreeSet<&str> = BTreeSet::new();
    let mut writer: Option<&str> = None;
    let mut overlaps = 0;
    let mut most_readers = 0;
    let mut sections: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut handoffs: BTreeMap<(&str, &str), Vec<u128>> = BTreeMap::new();
    let mut previous: Option<&Entry> = None;
    for entry in &entries {
        let who = entry.who.as_str();
        match (entry.mode.as_str(), entry.enter) {
            ("write", true) => {
                if writer.is_some() || !readers.is_empty() {
                    overlaps += 1;
                    println!("overlap: {who} writes beside {writer:?} and readers {readers:?}");
                }
                writer = Some(who);
                *sections.entry((lang(entry), "write")).or_default() += 1;
                if let Some(prev) = previous.filter(|p| p.mode == "write" && !p.enter) {
                    if prev.who != entry.who {
                        handoffs
                            .entry((lang(prev), lang(entry)))
                            .or_default()
                            .push(entry.at.saturating_sub(prev.at));
                    }
                }
            }
            ("write", false) => {
                assert_eq!(writer, Some(who), "{who} left a write lock it did not hold");
                writer = None;
            }
            ("read", true) => {
                if writer.is_some() {
                    overlaps += 1;
                    println!("overlap: {who} reads beside writer {writer:?}");
                }
                assert!(readers.insert(who), "{who} entered twice");
                most_readers = most_readers.max(readers.len());
                *sections.entry((lang(entry), "read")).or_default() += 1;
            }
            ("read", false) => assert!(
                readers.remove(who),
                "{who} left a read lock it did not hold"
            ),
            (mode, _) => panic!("unexpected mode {mode}"),
        }
        previous = Some(entry);
    }
    assert!(
        writer.is_none() && readers.is_empty(),
        "the log ends inside a section"
    );
    assert_eq!(
        overlaps, 0,
        "readers overlapped a writer, or writers each other"
    );
    assert_eq!(sections.get(&("curator", "read")), Some(&(2 * JAVA_ROUNDS)));
    assert_eq!(
        sections.get(&("curator", "write")),
        Some(&(2 * JAVA_ROUNDS))
    );
    let rust: usize = sections
        .iter()
        .filter(|((lang, _), _)| *lang == "rust")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(rust, rust_sections.load(Ordering::SeqCst));
    println!(
        "{} critical sections checked {sections:?}, at most {most_readers} readers together, {overlaps} overlaps",
        sections.values().sum::<usize>()
    );
    print_handoffs("write lock", &mut handoffs);

    let w = warden(&server.connect_string()).await;
    assert_no_children(&w, &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_leases_never_exceed_the_limit() {
    leases_beside_curator(
        "rust_and_curator_leases_never_exceed_the_limit",
        "sem",
        2,
        JAVA_ROUNDS,
        |w: &Warden, path: &str, who: &str| -> Arc<dyn Lockable> {
            Arc::new(Semaphore::new(w, path, 2).payload(who))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_semaphore_mutexes_exclude_each_other() {
    leases_beside_curator(
        "rust_and_curator_semaphore_mutexes_exclude_each_other",
        "semmutex",
        1,
        // One holder at a time: fewer rounds keep the test as quick as the semaphore's.
        JAVA_ROUNDS / 2,
        |w: &Warden, path: &str, who: &str| -> Arc<dyn Lockable> {
            Arc::new(SemaphoreMutex::new(w, path).payload(who))
        },
    )
    .await;
}

/// Three Curator threads (peer mode `kind`, `rounds` leases each) and three Rust holders
/// made by `make` (at least `rounds` each, and on until Curator is done) take leases of one
/// path; the log shows never more than `max` at once, and the limit reached.
async fn leases_beside_curator(
    test: &str,
    kind: &str,
    max: usize,
    rounds: usize,
    make: fn(&Warden, &str, &str) -> Arc<dyn Lockable>,
) {
    let (classpath, scratch) = prepare(test).await;
    let server = start_server().await;
    let path = unique_path("curator-semaphore");
    let log = scratch.0.join("holders.log");
    let args = [
        kind.to_owned(),
        server.connect_string(),
        path.clone(),
        log.display().to_string(),
        max.to_string(),
        "3".to_owned(),
        rounds.to_string(),
        LEASE_HOLD.as_millis().to_string(),
    ];
    let peer = java_peer::start(&classpath, &scratch.0, PEER, &args).await;

    let java_done = Arc::new(AtomicBool::new(false));
    let rust_sections = Arc::new(AtomicUsize::new(0));
    let mut holders = Vec::new();
    for holder in 0..3 {
        let w = warden(&server.connect_string()).await;
        let (path, log) = (path.clone(), log.clone());
        let (java_done, rust_sections) = (java_done.clone(), rust_sections.clone());
        holders.push(tokio::spawn(async move {
            let who = format!("rust-s{holder}");
            let lock = make(&w, &path, &who);
            let min_rounds = rounds;
            let mut rounds = 0;
            while rounds < min_rounds || !java_done.load(Ordering::SeqCst) {
                let lease = lock.lock_until(None).await.expect("rust lease");
                note(&log, &who, "lease", "enter");
                tokio::time::sleep(LEASE_HOLD).await;
                note(&log, &who, "lease", "exit");
                lease.release().await.expect("rust release");
                rounds += 1;
            }
            rust_sections.fetch_add(rounds, Ordering::SeqCst);
        }));
    }
    finish(peer).await;
    java_done.store(true, Ordering::SeqCst);
    for holder in holders {
        within("a Rust holder", holder).await.expect("holder");
    }

    let entries = parse_log(&std::fs::read_to_string(&log).expect("read log"));
    let (over, most, sections, mut handoffs) = check_leases(&entries, max);
    assert_eq!(over, 0, "more than {max} leases were held at once");
    assert_eq!(most, max, "the limit should have been reached at times");
    assert_eq!(sections.get("curator"), Some(&(3 * rounds)));
    assert_eq!(
        sections.get("rust"),
        Some(&rust_sections.load(Ordering::SeqCst))
    );
    println!(
        "{kind}: {} leases checked {sections:?}, at most {most} held together (limit {max}), {over} over the limit",
        sections.values().sum::<usize>()
    );
    print_handoffs(kind, &mut handoffs);

    let w = warden(&server.connect_string()).await;
    assert_no_children(&w, &format!("{path}/leases")).await;
    assert_no_children(&w, &format!("{path}/locks")).await;
}

/// Replays a lease log: how often the limit was passed, the most held at once, sections by
/// language, and hand-off times from an exit of a full semaphore to the next enter.
#[allow(clippy::type_complexity)]
fn check_leases(
    entries: &[Entry],
    max: usize,
) -> (
    usize,
    usize,
    BTreeMap<&'static str, usize>,
    BTreeMap<(&'static str, &'static str), Vec<u128>>,
) {
    let mut held: BTreeSet<&str> = BTreeSet::new();
    let (mut over, mut most) = (0, 0);
    let mut sections: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut handoffs: BTreeMap<(&'static str, &'static str), Vec<u128>> = BTreeMap::new();
    // The exit that freed a slot of a full semaphore, waiting for the next enter.
    let mut freed: Option<&Entry> = None;
    for entry in entries {
        assert_eq!(entry.mode, "lease");
        if entry.enter {
            assert!(held.insert(&entry.who), "{} entered twice", entry.who);
            if held.len() > max {
                over += 1;
                println!("over the limit: {held:?}");
            }
            most = most.max(held.len());
            *sections.entry(lang(entry)).or_default() += 1;
            if let Some(exit) = freed.take() {
                handoffs
                    .entry((lang(exit), lang(entry)))
                    .or_default()
                    .push(entry.at.saturating_sub(exit.at));
            }
        } else {
            let was_full = held.len() == max;
            assert!(
                held.remove(entry.who.as_str()),
                "{} left without a lease",
                entry.who
            );
            if was_full {
                freed = Some(entry);
            }
        }
    }
    assert!(held.is_empty(), "the log ends with leases held");
    (over, most, sections, handoffs)
}

#[test]
fn the_lease_checker_sees_one_lease_too_many() {
    let log = "a lease enter 1\nb lease enter 2\nc lease enter 3\na lease exit 4\nb lease exit 5\nc lease exit 6\n";
    let entries = parse_log(log);
    let (over, most, _, _) = check_leases(&entries, 2);
    assert_eq!((over, most), (1, 3));
}
