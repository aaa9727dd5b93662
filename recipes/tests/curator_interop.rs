//! The mutex shares a lock path with Apache Curator's `InterProcessMutex`: a Java peer
//! (`tests/java/CuratorLockPeer.java`, compiled here with the Debian Curator jars) and Rust
//! holders take turns, and the log of their critical sections shows no overlap.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::java_peer::{self, Scratch, wall_nanos};
use common::{start_server, unique_path, warden, within};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use zkwarden::Error;
use zkwarden_recipes::lock::Mutex;

const JAVA_ROUNDS: usize = 20;
const RUST_HOLDERS: usize = 2;
const RUST_MIN_ROUNDS: usize = 20;

/// Appends one line with a single write (the file is opened for appending, so lines from
/// all holders land whole and in order).
fn note(log: &Path, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    file.write_all(format!("{line} {}\n", wall_nanos()).as_bytes())
        .expect("append to log");
}

/// One parsed log line: who, entering or not, when.
struct Entry {
    who: String,
    enter: bool,
    at: u128,
}

fn parse_log(text: &str) -> Vec<Entry> {
    text.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 3, "malformed log line {line:?}");
            let enter = match parts[1] {
                "enter" => true,
                "exit" => false,
                other => panic!("unknown event {other:?} in {line:?}"),
            };
            Entry {
                who: parts[0].to_owned(),
                enter,
                at: parts[2].parse().expect("nanos"),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_curator_holders_never_overlap() {
    let scratch = Scratch::new("curator-mutex");
    let classpath = java_peer::prepare("CuratorLockPeer.java", &scratch).await;
    let server = start_server().await;
    let path = unique_path("curator-mutex");
    let log = scratch.0.join("holders.log");

    let mut peer = Command::new("java")
        .arg("-cp")
        .arg(format!("{}:{classpath}", scratch.0.display()))
        .arg("CuratorLockPeer")
        .arg(server.connect_string())
        .arg(&path)
        .arg(JAVA_ROUNDS.to_string())
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Java peer");
    let mut lines = BufReader::new(peer.stdout.take().expect("peer stdout")).lines();
    within("the Java peer to connect", async {
        while let Some(line) = lines.next_line().await.expect("peer stdout") {
            if line == "ready" {
                return;
            }
        }
        panic!("the Java peer ended before it was ready");
    })
    .await;

    // Rust holders contend for as long as the Java peer does (and at least a few rounds).
    let java_done = Arc::new(AtomicBool::new(false));
    let rust_rounds = Arc::new(AtomicUsize::new(0));
    let mut holders = Vec::new();
    for holder in 0..RUST_HOLDERS {
        let w = warden(&server.connect_string()).await;
        let (path, log) = (path.clone(), log.clone());
        let (java_done, rust_rounds) = (java_done.clone(), rust_rounds.clone());
        holders.push(tokio::spawn(async move {
            let mutex = Mutex::new(&w, &path).payload(format!("rust-{holder}"));
            let mut rounds = 0;
            while rounds < RUST_MIN_ROUNDS || !java_done.load(Ordering::SeqCst) {
                let guard = mutex.lock().await.expect("rust lock");
                note(&log, "rust enter");
                // Simulated work inside the critical section.
                tokio::time::sleep(Duration::from_millis(2)).await;
                note(&log, "rust exit");
                guard.release().await.expect("rust release");
                rounds += 1;
            }
            rust_rounds.fetch_add(rounds, Ordering::SeqCst);
        }));
    }

    let status = tokio::time::timeout(Duration::from_secs(120), peer.wait())
        .await
        .expect("the Java peer finished in time")
        .expect("wait for the Java peer");
    java_done.store(true, Ordering::SeqCst);
    assert!(status.success(), "the Java peer failed: {status}");
    for holder in holders {
        within("a Rust holder", holder).await.expect("holder");
    }

    let entries = parse_log(&std::fs::read_to_string(&log).expect("read log"));
    let mut handovers = 0;
    let mut last_exit: Option<&Entry> = None;
    for pair in entries.chunks(2) {
        let [enter, exit] = pair else {
            panic!("the log ends inside a critical section");
        };
        assert!(
            enter.enter && !exit.enter && enter.who == exit.who,
            "overlap: {} {} followed by {} {}",
            enter.who,
            if enter.enter { "enter" } else { "exit" },
            exit.who,
            if exit.enter { "enter" } else { "exit" },
        );
        assert!(exit.at >= enter.at, "exit before enter");
        if let Some(previous) = last_exit {
            assert!(
                enter.at >= previous.at,
                "entered before the last holder left"
            );
            if previous.who != enter.who {
                handovers += 1;
            }
        }
        last_exit = Some(exit);
    }
    let java = entries
        .iter()
        .filter(|e| e.who == "java" && e.enter)
        .count();
    let rust = entries
        .iter()
        .filter(|e| e.who == "rust" && e.enter)
        .count();
    assert_eq!(java, JAVA_ROUNDS);
    assert_eq!(rust, rust_rounds.load(Ordering::SeqCst));
    assert!(
        handovers >= 2,
        "the lock should have passed between Java and Rust ({handovers} handovers)"
    );
    println!(
        "{} critical sections ({java} Curator, {rust} Rust), {handovers} Java/Rust handovers, no overlap",
        java + rust
    );

    // Nobody left a node behind.
    let w = warden(&server.connect_string()).await;
    match w.get_children(&path).await {
        Ok(children) => assert!(children.is_empty(), "left behind: {children:?}"),
        Err(Error::NoNode) => {}
        Err(e) => panic!("list {path}: {e}"),
    }
}
