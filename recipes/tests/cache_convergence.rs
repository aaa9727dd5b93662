//! Convergence of a tree cache under real faults: two independent writers (a second warden,
//! and kazoo from Python as a client that shares no code with ours) make random creates,
//! updates and deletes under the cached root while the test cuts, stalls and resets the
//! cache's connection, expires its session, and kills the ensemble member it is on. After
//! each fault heals and the writers pause, the cache must equal a fresh listing of the
//! server, and replaying its event stream from the starting snapshot must give the same.

mod cache_support;
mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cache_support::{Rng, Truth, join, server_tree, truth_of, wait_for_state};
use common::znodes::expire_and_await_new_session;
use common::{PATIENCE, blocking, init_tracing, unique_path, warden, within};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use zkwarden::testing::{FaultProxy, ZkEnsemble, ZkServer};
use zkwarden::warden::ConnectionState;
use zkwarden::{Error, Warden};
use zkwarden_recipes::cache::{CacheEvent, Snapshot, TreeCache};

/// Random creates, sets and deletes under a root with a handful of names on two levels.
const KAZOO_WRITER: &str = r#"
import random, sys
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError, NotEmptyError
hosts, root, ops, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
zk = KazooClient(hosts=hosts, timeout=10.0)
zk.start(timeout=30)
done = 0
for _ in range(ops):
    path = root + "/" + rnd.choice("abcdef")
    if rnd.random() < 0.6:
        path += "/" + str(rnd.randrange(4))
    data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(24)))
    op = rnd.random()
    try:
        if op < 0.4:
            zk.create(path, data)
        elif op < 0.75:
            zk.set(path, data)
        else:
            zk.delete(path)
        done += 1
    except (NoNodeError, NodeExistsError, NotEmptyError):
        pass
zk.stop()
zk.close()
print("applied", done)
"#;

/// Writes through a warden until told to stop; returns how many writes were applied.
fn rust_writer(w: Warden, root: String, seed: u64, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut rng = Rng(seed | 1);
        let mut applied = 0;
        while !stop.load(Ordering::Relaxed) {
            let mut path = join(&root, &((b'a' + rng.below(6) as u8) as char).to_string());
            if rng.below(10) < 6 {
                path = join(&path, &rng.below(4).to_string());
            }
            let data: Vec<u8> = (0..rng.below(24)).map(|_| rng.next() as u8).collect();
            let result = match rng.below(20) {
                0..8 => w.create(&path, &data).await.map(|_| ()),
                8..15 => w.set_data(&path, &data, None).await.map(|_| ()),
                _ => w.delete(&path, None).await,
            };
            match result {
                Ok(()) => applied += 1,
                Err(Error::NoNode | Error::NodeExists | Error::NotEmpty) => {}
                Err(e) => panic!("rust writer: {path}: {e}"),
            }
        }
        applied
    })
}

/// Runs the kazoo writer script for `ops` operations against `hosts`.
async fn kazoo_writer(script: &std::path::Path, hosts: &str, root: &str, ops: u32, seed: u64) {
    let output = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .args([hosts, root, &ops.to_string(), &seed.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = within("kazoo writer", output)
        .await
        .expect("run python3 with kazoo");
    assert!(
        output.status.success(),
        "kazoo writer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write_script() -> tempfile_path::TempScript {
    tempfile_path::TempScript::new(KAZOO_WRITER)
}

/// A script file removed when dropped (no extra dependency for one temp file).
mod tempfile_path {
    use super::*;

    pub struct TempScript(pub std::path::PathBuf);

    impl TempScript {
        pub fn new(text: &str) -> TempScript {
            let path = std::env::temp_dir().join(format!(
                "zkwarden-kazoo-writer-{}-{}.py",
                std::process::id(),
                unique_path("s").trim_start_matches('/')
            ));
            let mut file = std::fs::File::create(&path).expect("write kazoo script");
            file.write_all(text.as_bytes()).expect("write kazoo script");
            TempScript(path)
        }
    }

    impl Drop for TempScript {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Follows a cache's events from its starting snapshot, counting what it applied.
struct Replay {
    snapshot: Arc<Mutex<Snapshot>>,
    applied: Arc<AtomicU64>,
    lagged: Arc<AtomicU64>,
    _task: JoinHandle<()>,
}

impl Replay {
    fn follow(cache: &TreeCache) -> Replay {
        let (start, mut events) = cache.subscribe();
        let snapshot = Arc::new(Mutex::new(start));
        let applied = Arc::new(AtomicU64::new(0));
        let lagged = Arc::new(AtomicU64::new(0));
        let task = {
            let (snapshot, applied, lagged) = (snapshot.clone(), applied.clone(), lagged.clone());
            tokio::spawn(async move {
                while let Some(event) = events.next().await {
                    if let CacheEvent::Lagged { missed } = event {
                        lagged.fetch_add(missed, Ordering::Relaxed);
                    }
                    if event.path().is_some() {
                        applied.fetch_add(1, Ordering::Relaxed);
                    }
                    snapshot.lock().await.apply(&event);
                }
            })
        };
        Replay {
            snapshot,
            applied,
            lagged,
            _task: task,
        }
    }
}

/// Tallies for the closing figures.
#[derive(Default, Debug)]
struct Tally {
    faults: u32,
    mismatches: u32,
}

/// Waits until the cache equals `truth` and the replay equals the cache. A mismatch that
/// persists for the whole patience is counted (and reported) rather than stopping the run.
async fn check_convergence(
    cache: &TreeCache,
    replay: &Replay,
    truth: &Truth,
    tally: &mut Tally,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let cached = truth_of(&cache.snapshot());
        let replayed = truth_of(&*replay.snapshot.lock().await);
        if &cached == truth && replayed == cached {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            tally.mismatches += 1;
            let diff: Vec<_> = truth
                .iter()
                .filter(|(p, v)| cached.get(*p) != Some(*v))
                .map(|(p, _)| p.clone())
                .chain(cached.keys().filter(|p| !truth.contains_key(*p)).cloned())
                .collect();
            let detail: Vec<_> = diff
                .iter()
                .map(|p| {
                    let server = truth.get(p).map(|t| (t.0, t.1));
                    let cache = cached.get(p).map(|c| (c.0, c.1));
                    (p, server, cache)
                })
                .collect();
            eprintln!(
                "MISMATCH after {what}: (path, server czxid/mzxid, cache czxid/mzxid): \
                 {detail:?}; replay equal: {}",
                replayed == cached
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One round: writers run while `fault` is injected and healed, then pause; the cache must
/// converge.
#[allow(clippy::too_many_arguments)]
async fn round<F, Fut>(
    name: &str,
    seed: u64,
    cache: &TreeCache,
    replay: &Replay,
    writer: &Warden,
    kazoo_hosts: &str,
    script: &std::path::Path,
    root: &str,
    tally: &mut Tally,
    fault: F,
) where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let rust = rust_writer(writer.clone(), root.to_owned(), seed, stop.clone());
    let kazoo = kazoo_writer(script, kazoo_hosts, root, 120, seed);
    let faulting = async {
        fault().await;
        tally.faults += 1;
    };
    tokio::join!(kazoo, faulting);
    stop.store(true, Ordering::Relaxed);
    within("rust writer to stop", rust)
        .await
        .expect("rust writer");
    let truth = server_tree(writer, root).await;
    check_convergence(cache, replay, &truth, tally, name).await;
}

fn report(test: &str, replay: &Replay, tally: &Tally) {
    eprintln!(
        "{test}: events checked {}, faults injected {}, mismatches {}, lagged {}",
        replay.applied.load(Ordering::Relaxed),
        tally.faults,
        tally.mismatches,
        replay.lagged.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_cut_connections_and_expired_sessions() {
    init_tracing();
    let server: ZkServer = blocking(|| {
        ZkServer::builder()
            .max_session_timeout(Duration::from_secs(30))
            .start()
            .expect("start ZooKeeper")
    })
    .await;
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let writer = warden(&server.connect_string()).await;
    let w = warden(&proxy.connect_string()).await;
    let root = unique_path("cache-converge");
    writer.create(&root, b"").await.expect("root");
    let script = write_script();

    let cache = TreeCache::builder(&w, &root)
        .event_capacity(1 << 16)
        .start()
        .await
        .expect("start");
    within("initialized", cache.initialized())
        .await
        .expect("init");
    let replay = Replay::follow(&cache);
    let mut tally = Tally::default();
    let hosts = server.connect_string();
    // Each kind of fault twice, interleaved, every round with its own writer seed.
    let faults = ["blackhole", "reset", "expiry", "drop replies"];
    for (seed, name) in (11..).zip(faults.iter().chain(faults.iter()).copied()) {
        let proxy = &proxy;
        let w = &w;
        let server = &server;
        round(
            name,
            seed,
            &cache,
            &replay,
            &writer,
            &hosts,
            &script.0,
            &root,
            &mut tally,
            || async move {
                let mut connection = w.events();
                match name {
                    "blackhole" => {
                        proxy.blackhole();
                        wait_for_state(&mut connection, ConnectionState::Suspended).await;
                        proxy.pass_through();
                        wait_for_state(&mut connection, ConnectionState::Reconnected).await;
                    }
                    "drop replies" => {
                        proxy.drop_replies();
                        wait_for_state(&mut connection, ConnectionState::Suspended).await;
                        proxy.pass_through();
                        wait_for_state(&mut connection, ConnectionState::Reconnected).await;
                    }
                    "reset" => {
                        proxy.reset_all();
                        wait_for_state(&mut connection, ConnectionState::Suspended).await;
                        wait_for_state(&mut connection, ConnectionState::Reconnected).await;
                    }
                    _ => {
                        expire_and_await_new_session(&server.connect_string(), w).await;
                    }
                }
            },
        )
        .await;
    }
    report("cut connections and expiry", &replay, &tally);
    assert_eq!(tally.mismatches, 0);
    assert_eq!(replay.lagged.load(Ordering::Relaxed), 0);
    assert!(replay.applied.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_a_member_kill() {
    init_tracing();
    let mut ensemble = blocking(|| ZkEnsemble::start(3).expect("three-server ensemble")).await;
    let connect = ensemble.connect_string();
    let writer = warden(&connect).await;
    let w = warden(&connect).await;
    let root = unique_path("cache-converge-ensemble");
    writer.create(&root, b"").await.expect("root");
    let script = write_script();
    let cache = TreeCache::builder(&w, &root)
        .event_capacity(1 << 16)
        .start()
        .await
        .expect("start");
    within("initialized", cache.initialized())
        .await
        .expect("init");
    let replay = Replay::follow(&cache);
    let mut tally = Tally::default();

    for seed in [21, 22, 23] {
        let stop = Arc::new(AtomicBool::new(false));
        let rust = rust_writer(writer.clone(), root.clone(), seed, stop.clone());
        let kazoo = {
            let (path, connect, root) = (script.0.clone(), connect.clone(), root.clone());
            tokio::spawn(async move { kazoo_writer(&path, &connect, &root, 60, seed).await })
        };
        let server = w
            .client()
            .and_then(|c| c.connected_server())
            .expect("connected");
        let member = (0..ensemble.len())
            .find(|&i| ensemble.addr(i) == server)
            .expect("the cache's session is on a member");
        let mut connection = w.events();
        ensemble = blocking(move || {
            ensemble.kill(member).expect("kill member");
            ensemble
        })
        .await;
        tally.faults += 1;
        wait_for_state(&mut connection, ConnectionState::Suspended).await;
        wait_for_state(&mut connection, ConnectionState::Reconnected).await;
        ensemble = blocking(move || {
            ensemble.restart(member).expect("restart member");
            ensemble
        })
        .await;
        within("kazoo writer", kazoo).await.expect("kazoo writer");
        stop.store(true, Ordering::Relaxed);
        within("rust writer to stop", rust)
            .await
            .expect("rust writer");
        let truth = server_tree(&writer, &root).await;
        check_convergence(&cache, &replay, &truth, &mut tally, "member kill").await;
    }
    report("member kill", &replay, &tally);
    assert_eq!(tally.mismatches, 0);
    assert_eq!(replay.lagged.load(Ordering::Relaxed), 0);
}
