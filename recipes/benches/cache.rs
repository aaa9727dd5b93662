//! What a [`TreeCache`] costs, beside Curator's `CuratorCache` and kazoo's `TreeCache` on the
//! same server and the same tree in the same run:
//!
//! * **load**: time from start to initialized, and memory per node (the growth of the
//!   process's resident set while it loads: every contender runs in a fresh process of its
//!   own, measured from outside the same way), over interleaved passes;
//! * **write → event**: the delay from a write to the cache's `Changed`, next to the client's
//!   own one-shot data watch timed from the same write on the same clock (the floor any cache
//!   built on notifications can reach), and a read's round trip (what a cache that reads the
//!   node after its notification adds to that floor at the least);
//! * **herd**: many caches on one warden resyncing after the same server restart, sharing one
//!   [`ReadLimit`]: the time until all have resynced and the most reads in flight at once.
//!
//! ```text
//! cargo bench -p zkwarden-recipes --bench cache
//! cargo bench -p zkwarden-recipes --bench cache -- --nodes 10000 --passes 1 --no-peers
//! ZKWARDEN_BENCH_CACHE_NODES=1000000 cargo bench -p zkwarden-recipes --bench cache
//! ```
//!
//! It starts its own ZooKeeper (Debian's package, as the tests do) on a free loopback port,
//! compiles the Curator peer (`tests/java/CuratorCachePeer.java`, Debian's jars) and runs the
//! kazoo peer (`benches/peers/kazoo_tree_cache.py`, Debian's python3-kazoo), then prints a
//! table and one JSON line with the figures. A peer that cannot run is reported and left out.
//! CI only builds this; numbers come from running it by hand on an otherwise quiet machine.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use zkwarden::testing::ZkServer;
use zkwarden::warden::TreeEvent;
use zkwarden::{Client, CreateMode, Warden};
use zkwarden_recipes::cache::{CacheEvent, CacheEvents, ReadLimit, TreeCache};

// The interop tests' helpers: the Curator class path from Debian's jars, and `javac`.
#[path = "../tests/common/mod.rs"]
mod common;
use common::java_peer;

/// Where the benchmark builds its tree.
const ROOT: &str = "/cache-bench";

/// Where the herd's trees go: one per cache.
const HERD_ROOT: &str = "/cache-herd";

/// Bytes of data in every node (a small config value).
const DATA_LEN: usize = 32;

/// Writes in a burst (each to a node of its own, all sent at once).
const BURST: usize = 1_000;

/// Requests kept in flight while the tree is built.
const CREATE_WINDOW: usize = 512;

/// Bound for any single wait; reaching it aborts the run.
const PATIENCE: Duration = Duration::from_secs(600);

/// The opt-in size: `ZKWARDEN_BENCH_CACHE_NODES=1000000`.
const NODES_ENV: &str = "ZKWARDEN_BENCH_CACHE_NODES";

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Command-line settings.
struct Settings {
    nodes: usize,
    passes: usize,
    writes: usize,
    caches: usize,
    cache_nodes: usize,
    herd_limit: usize,
    peers: bool,
    /// Also time a bare tree watch (on a warden of its own) in every round.
    decompose: bool,
}

impl Settings {
    fn from_args(args: Vec<String>) -> BenchResult<Self> {
        let nodes = match std::env::var(NODES_ENV) {
            Ok(value) => value.parse()?,
            Err(_) => 100_000,
        };
        let mut settings = Settings {
            nodes,
            passes: 3,
            writes: 1_000,
            caches: 100,
            cache_nodes: 1_000,
            herd_limit: 1_024,
            peers: true,
            decompose: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--nodes" => settings.nodes = next_number(&mut args, "--nodes")?,
                "--passes" => settings.passes = next_number(&mut args, "--passes")?,
                "--writes" => settings.writes = next_number(&mut args, "--writes")?,
                "--caches" => settings.caches = next_number(&mut args, "--caches")?,
                "--cache-nodes" => settings.cache_nodes = next_number(&mut args, "--cache-nodes")?,
                "--herd-limit" => settings.herd_limit = next_number(&mut args, "--herd-limit")?,
                "--no-peers" => settings.peers = false,
                "--decompose" => settings.decompose = true,
                // `cargo bench` passes `--bench`; anything else is a mistake.
                "--bench" => {}
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        if settings.nodes < 100 || settings.cache_nodes < 100 {
            return Err("--nodes and --cache-nodes must be at least 100".into());
        }
        if settings.writes == 0 || settings.passes == 0 || settings.caches == 0 {
            return Err("--writes, --passes and --caches must be at least 1".into());
        }
        Ok(settings)
    }
}

fn next_number(args: &mut impl Iterator<Item = String>, flag: &str) -> BenchResult<usize> {
    let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    Ok(value.parse()?)
}

/// The resident set of process `pid` in bytes (Linux).
fn resident_bytes(pid: u32) -> BenchResult<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("statm has no resident field")?
        .parse()?;
    Ok(pages * 4096)
}

/// The paths of a tree under `root`: groups of 100 children under `root/g<k>`, so that
/// `nodes` counts every node below the root.
fn tree_paths(root: &str, nodes: usize) -> Vec<String> {
    let groups = (nodes / 100).max(1);
    let mut paths = Vec::with_capacity(nodes);
    for group in 0..groups {
        paths.push(format!("{root}/g{group}"));
    }
    let mut leaf = 0;
    while paths.len() < nodes {
        paths.push(format!("{root}/g{}/n{leaf}", leaf % groups));
        leaf += 1;
    }
    paths
}

/// Creates `paths` (parents listed before their children), `CREATE_WINDOW` creates in flight
/// at a time, each level finished before the next is sent.
async fn create_all(client: &Client, paths: &[String]) -> BenchResult<()> {
    let data = [b'x'; DATA_LEN];
    let mut levels: Vec<Vec<&String>> = Vec::new();
    for path in paths {
        let depth = path.matches('/').count();
        if levels.len() < depth {
            levels.resize(depth, Vec::new());
        }
        levels[depth - 1].push(path);
    }
    for level in levels {
        for window in level.chunks(CREATE_WINDOW) {
            let creates: Vec<_> = window
                .iter()
                .map(|path| client.create(path, &data, CreateMode::Persistent))
                .collect();
            for create in creates {
                create.await?;
            }
        }
    }
    Ok(())
}

/// Waits for the cache's `Changed` event that shows `path` holding `value`. Other events
/// (of earlier writes, of other nodes) are skipped.
async fn changed_to(events: &mut CacheEvents, path: &str, value: &[u8]) -> BenchResult<()> {
    loop {
        match tokio::time::timeout(PATIENCE, events.next()).await? {
            Some(CacheEvent::Changed {
                path: changed,
                node,
            }) if changed == path && node.data == value => {
                return Ok(());
            }
            Some(CacheEvent::Lagged { missed }) => {
                return Err(format!("the cache subscriber lagged by {missed} events").into());
            }
            Some(_) => {}
            None => return Err("the cache's event stream ended".into()),
        }
    }
}

/// Median and 99th percentile, in microseconds.
fn percentiles(samples: &mut [Duration]) -> (u128, u128) {
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[index].as_micros()
    };
    (at(0.5), at(0.99))
}

fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// A contender loading the tree in a process of its own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Contender {
    Zkwarden,
    Curator,
    Kazoo,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Zkwarden => "zkwarden TreeCache",
            Contender::Curator => "Curator CuratorCache",
            Contender::Kazoo => "kazoo TreeCache",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Contender::Zkwarden => "zkwarden",
            Contender::Curator => "curator",
            Contender::Kazoo => "kazoo",
        }
    }
}

/// How to start each contender's process.
struct Launchers {
    /// The compiled Curator peer: its directory and class path.
    curator: Option<(PathBuf, String)>,
    /// Whether kazoo is importable.
    kazoo: bool,
}

impl Launchers {
    fn command(&self, contender: Contender, connect: &str) -> BenchResult<Command> {
        let mut command = match contender {
            Contender::Zkwarden => {
                let mut command = Command::new(std::env::current_exe()?);
                command.arg("--load-child");
                command
            }
            Contender::Curator => {
                let (dir, classpath) = self.curator.as_ref().ok_or("no Curator peer")?;
                let mut command = Command::new("java");
                command
                    .arg("-cp")
                    .arg(format!("{}:{classpath}", dir.display()))
                    .arg("CuratorCachePeer");
                command
            }
            Contender::Kazoo => {
                let mut command = Command::new("/usr/bin/python3");
                command.arg(peer_script());
                command
            }
        };
        command
            .arg(connect)
            .arg(ROOT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        Ok(command)
    }

    fn available(&self) -> Vec<Contender> {
        let mut contenders = vec![Contender::Zkwarden];
        if self.curator.is_some() {
            contenders.push(Contender::Curator);
        }
        if self.kazoo {
            contenders.push(Contender::Kazoo);
        }
        contenders
    }
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/kazoo_tree_cache.py")
}

/// Compiles the Curator peer into `dir` (as the interop tests do) and returns its class path,
/// or says why it cannot.
async fn compile_curator(dir: &Path) -> Result<String, String> {
    let classpath = java_peer::classpath()?;
    java_peer::compile(&classpath, "CuratorCachePeer.java", dir).await?;
    Ok(classpath)
}

/// Whether kazoo's TreeCache can be imported.
fn kazoo_available() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import kazoo.recipe.cache"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A contender's process, speaking the peers' line protocol.
struct Loader {
    child: Child,
    stdin: ChildStdin,
    lines: std::io::Lines<BufReader<ChildStdout>>,
}

impl Loader {
    fn start(mut command: Command) -> BenchResult<Loader> {
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut loader = Loader {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        loader.expect("ready")?;
        Ok(loader)
    }

    /// The next line of output, which must start with `word`.
    fn expect(&mut self, word: &str) -> BenchResult<String> {
        let line = self.lines.next().ok_or("the contender ended")??;
        if line.split_whitespace().next() != Some(word) {
            return Err(format!("expected {word}, the contender said {line:?}").into());
        }
        Ok(line)
    }

    fn send(&mut self, command: &str) -> BenchResult<()> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        Ok(())
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        let _ = self.send("quit");
        // A few seconds to close its session, then it is killed.
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One load: milliseconds to initialized, nodes cached, resident growth in bytes.
struct Load {
    millis: u64,
    nodes: usize,
    growth: u64,
}

/// Loads the tree once in a fresh process of `contender`.
fn load_once(
    launchers: &Launchers,
    contender: Contender,
    connect: &str,
    expected: usize,
) -> BenchResult<Load> {
    let mut loader = Loader::start(launchers.command(contender, connect)?)?;
    let pid = loader.child.id();
    let before = resident_bytes(pid)?;
    loader.send(&format!("load {expected}"))?;
    let line = loader.expect("loaded")?;
    let after = resident_bytes(pid)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [_, millis, nodes] = fields.as_slice() else {
        return Err(format!("malformed answer {line:?}").into());
    };
    Ok(Load {
        millis: millis.parse()?,
        nodes: nodes.parse()?,
        growth: after.saturating_sub(before),
    })
}

/// The contender `--load-child <connect> <root>`: our cache in a process of its own.
fn load_child(args: &[String]) -> BenchResult<()> {
    let [connect, root] = args else {
        return Err("--load-child needs <connect> <root>".into());
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let warden = Warden::builder(connect).start().await?;
            println!("ready");
            let mut lines = std::io::stdin().lock().lines();
            let mut cache = None;
            while let Some(line) = lines.next().transpose()? {
                match line.split_whitespace().next().unwrap_or("") {
                    "load" => {
                        let started = Instant::now();
                        let loaded = TreeCache::builder(&warden, root).start().await?;
                        tokio::time::timeout(PATIENCE, loaded.initialized()).await??;
                        println!("loaded {} {}", started.elapsed().as_millis(), loaded.len());
                        cache = Some(loaded);
                    }
                    "quit" => break,
                    other => println!("error unknown command {other}"),
                }
            }
            drop(cache);
            warden.close().await?;
            Ok(())
        })
}

/// Per contender: load times (ms) and bytes per node over the passes.
struct LoadFigures {
    contender: Contender,
    millis: Vec<u64>,
    bytes_per_node: Vec<u64>,
    /// The fewest nodes it held once loaded, over the passes.
    held: usize,
}

/// Interleaved passes of every contender loading the tree.
fn load_passes(
    settings: &Settings,
    launchers: &Launchers,
    connect: &str,
) -> BenchResult<Vec<LoadFigures>> {
    let contenders = launchers.available();
    let mut figures: Vec<LoadFigures> = contenders
        .iter()
        .map(|&contender| LoadFigures {
            contender,
            millis: Vec::new(),
            bytes_per_node: Vec::new(),
            held: usize::MAX,
        })
        .collect();
    for pass in 0..settings.passes {
        // A different contender first in each pass, so none always meets a cold server.
        for i in 0..contenders.len() {
            let index = (i + pass) % contenders.len();
            let contender = contenders[index];
            let load = load_once(launchers, contender, connect, settings.nodes + 1)?;
            // Ours must hold the whole tree; a peer that does not is reported as it is.
            if load.nodes != settings.nodes + 1 && contender == Contender::Zkwarden {
                return Err(format!(
                    "{} cached {} nodes, expected {}",
                    contender.name(),
                    load.nodes,
                    settings.nodes + 1
                )
                .into());
            }
            if load.nodes != settings.nodes + 1 {
                // Curator 5.4 stops at about 64K nodes (CURATOR-690, fixed in 5.6).
                eprintln!(
                    "{} held {} of {} nodes",
                    contender.name(),
                    load.nodes,
                    settings.nodes + 1
                );
            }
            figures[index].held = figures[index].held.min(load.nodes);
            eprintln!(
                "pass {pass}: {} loaded {} nodes in {} ms, {} bytes/node",
                contender.name(),
                load.nodes,
                load.millis,
                load.growth / load.nodes as u64
            );
            figures[index].millis.push(load.millis);
            figures[index]
                .bytes_per_node
                .push(load.growth / load.nodes as u64);
        }
    }
    Ok(figures)
}

/// Write → event delays of every round, in microseconds.
#[derive(Default)]
struct Delays {
    /// Until the cache's `Changed`.
    cache: Vec<Duration>,
    /// Until the client's own one-shot data watch fired: the floor for anything built on
    /// notifications.
    watch: Vec<Duration>,
    /// Until the writer had its reply.
    write: Vec<Duration>,
    /// A plain read's round trip on the cache's warden, right after: what a cache adds to
    /// the watch's delay at the least, since it reads the node after the notification.
    read: Vec<Duration>,
    /// Per round, the cache's delay less the watch's (the two are paired: same write).
    extra: Vec<Duration>,
    /// Per pass: from a burst of writes to distinct nodes, sent all at once, until the cache
    /// showed every one of them, and until the writer had every reply.
    burst: Vec<(Duration, Duration)>,
    /// With `--decompose`: until a bare tree watch (`Warden::watch_tree_unlisted`, what the
    /// cache follows) on a warden of its own reported the change.
    tree: Vec<Duration>,
}

impl Delays {
    fn extend(&mut self, pass: Delays) {
        self.cache.extend(pass.cache);
        self.watch.extend(pass.watch);
        self.write.extend(pass.write);
        self.read.extend(pass.read);
        self.extra.extend(pass.extra);
        self.tree.extend(pass.tree);
        self.burst.extend(pass.burst);
    }
}

/// The one-minute load average, as the kernel reports it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|line| line.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Write → `Changed` beside a one-shot watch, in passes of `settings.writes` rounds.
///
/// Each round makes one write and times both observers from it, on one clock: the one-shot
/// watch is armed first (on a session of its own, so that its notification never shares a
/// socket with the cache's), then the write is sent, and the watch, the cache's event and the
/// write's reply are awaited together, each timed when it arrives. Neither observer waits
/// for the writer's reply, as a reader in another process would not. A read's round trip on
/// the cache's warden is timed after, in the same round.
async fn event_delays(settings: &Settings, connect: &str, paths: &[String]) -> BenchResult<Delays> {
    let writer = Client::builder(connect).connect().await?;
    let warden = Warden::builder(connect).start().await?;
    let cache = TreeCache::builder(&warden, ROOT).start().await?;
    tokio::time::timeout(PATIENCE, cache.initialized()).await??;
    // Subscribed after the load, so the initial `Created` events are not queued for it.
    let mut events = cache.events();
    let watcher = Client::builder(connect).connect().await?;
    let tree_warden = Warden::builder(connect).start().await?;
    let mut tree = if settings.decompose {
        let mut tree = tree_warden.watch_tree_unlisted(ROOT);
        match tokio::time::timeout(PATIENCE, tree.next()).await? {
            Some(TreeEvent::Resync { .. }) => Some(tree),
            other => return Err(format!("the tree watch began with {other:?}").into()),
        }
    } else {
        None
    };
    let mut all = Delays::default();
    for pass in 0..settings.passes {
        let load = load_average();
        let mut delays = Delays::default();
        for round in 0..settings.writes {
            let path = &paths[(round * 7919 + pass) % paths.len()];
            let value = format!("{pass}-{round}");

            let (_, _, fired) = watcher.get_data_and_watch(path).await?;
            let sent = Instant::now();
            let watched = async {
                tokio::time::timeout(PATIENCE, fired).await??;
                BenchResult::Ok(sent.elapsed())
            };
            let cached = async {
                changed_to(&mut events, path, value.as_bytes()).await?;
                BenchResult::Ok(sent.elapsed())
            };
            let written = async {
                writer.set_data(path, value.as_bytes(), None).await?;
                BenchResult::Ok(sent.elapsed())
            };
            let treed = async {
                let Some(tree) = tree.as_mut() else {
                    return BenchResult::Ok(None);
                };
                loop {
                    match tokio::time::timeout(PATIENCE, tree.next()).await? {
                        Some(TreeEvent::Changed { path: changed }) if changed == *path => {
                            return Ok(Some(sent.elapsed()));
                        }
                        Some(_) => {}
                        None => return Err("the tree watch ended".into()),
                    }
                }
            };
            let (watch, cache, write, treed) = tokio::try_join!(watched, cached, written, treed)?;
            delays.tree.extend(treed);
            delays.watch.push(watch);
            delays.cache.push(cache);
            delays.write.push(write);
            delays.extra.push(cache.saturating_sub(watch));

            let started = Instant::now();
            warden.get_data(path).await?;
            delays.read.push(started.elapsed());
        }
        delays
            .burst
            .push(burst(&writer, &mut events, paths, pass).await?);
        let (cache, _) = percentiles(&mut delays.cache);
        let (watch, _) = percentiles(&mut delays.watch);
        let (read, _) = percentiles(&mut delays.read);
        if !delays.tree.is_empty() {
            let (tree, _) = percentiles(&mut delays.tree);
            eprintln!("delay pass {pass}: bare tree watch {tree} us");
        }
        eprintln!(
            "delay pass {pass} (load average {load} -> {}): cache {cache} us, watch {watch} us, \
             ratio {:.2}, read {read} us",
            load_average(),
            cache as f64 / watch.max(1) as f64
        );
        all.extend(delays);
    }
    drop(cache);
    drop(tree);
    warden.close().await?;
    tree_warden.close().await?;
    Ok(all)
}

/// Writes to [`BURST`] distinct nodes of `paths`, all sent at once, and returns the time
/// until the cache showed every write and until the writer had every reply.
async fn burst(
    writer: &Client,
    events: &mut CacheEvents,
    paths: &[String],
    pass: usize,
) -> BenchResult<(Duration, Duration)> {
    let value = format!("burst-{pass}");
    let mut waiting: std::collections::HashSet<&str> =
        paths.iter().rev().take(BURST).map(String::as_str).collect();
    let sent = Instant::now();
    let writes: Vec<_> = waiting
        .iter()
        .map(|path| writer.set_data(path, value.as_bytes(), None))
        .collect();
    let written = async {
        for write in writes {
            write.await?;
        }
        BenchResult::Ok(sent.elapsed())
    };
    let cached = async {
        while !waiting.is_empty() {
            match tokio::time::timeout(PATIENCE, events.next()).await? {
                Some(CacheEvent::Changed { path, node }) if node.data == value.as_bytes() => {
                    waiting.remove(path.as_str());
                }
                Some(CacheEvent::Lagged { missed }) => {
                    return Err(format!("the cache subscriber lagged by {missed} events").into());
                }
                Some(_) => {}
                None => return Err("the cache's event stream ended".into()),
            }
        }
        BenchResult::Ok(sent.elapsed())
    };
    let (cached, written) = tokio::try_join!(cached, written)?;
    Ok((cached, written))
}

/// The herd: `caches` caches of `cache_nodes` nodes each on one warden, sharing one read
/// limit, resyncing after the server restarts. Returns (ms from the server serving again
/// until every cache resynced, ms from the restart's start, peak reads in flight).
async fn herd(settings: &Settings, server: &mut ZkServer) -> BenchResult<(u128, u128, usize)> {
    let connect = server.connect_string();
    let writer = Client::builder(&connect).connect().await?;
    writer
        .create(HERD_ROOT, b"", CreateMode::Persistent)
        .await?;
    let mut all = Vec::new();
    for cache in 0..settings.caches {
        let root = format!("{HERD_ROOT}/c{cache}");
        all.push(root.clone());
        all.extend(tree_paths(&root, settings.cache_nodes - 1));
    }
    create_all(&writer, &all).await?;
    writer.close().await?;

    let warden = Warden::builder(&connect).start().await?;
    let limit = ReadLimit::new(settings.herd_limit);
    let mut caches = Vec::with_capacity(settings.caches);
    for cache in 0..settings.caches {
        let builder = TreeCache::builder(&warden, &format!("{HERD_ROOT}/c{cache}"));
        caches.push(builder.read_limit(limit.clone()).start().await?);
    }
    for cache in &caches {
        tokio::time::timeout(PATIENCE, cache.initialized()).await??;
    }
    let mut subscriptions: Vec<CacheEvents> = caches.iter().map(TreeCache::events).collect();
    limit.reset_peak();

    let restarting = Instant::now();
    tokio::task::block_in_place(|| server.restart())?;
    let serving = Instant::now();
    for events in &mut subscriptions {
        loop {
            match tokio::time::timeout(PATIENCE, events.next()).await? {
                Some(CacheEvent::Resynced { .. }) => break,
                Some(_) => {}
                None => return Err("a herd cache stopped".into()),
            }
        }
    }
    let converged = (
        serving.elapsed().as_millis(),
        restarting.elapsed().as_millis(),
    );
    for cache in &caches {
        if cache.len() != settings.cache_nodes {
            return Err(format!(
                "a herd cache holds {} nodes after resync, expected {}",
                cache.len(),
                settings.cache_nodes
            )
            .into());
        }
    }
    drop(caches);
    warden.close().await?;
    Ok((converged.0, converged.1, limit.peak()))
}

async fn run(settings: Settings) -> BenchResult<()> {
    // Sessions of 30 s: under the peers' unbounded loads a client can go seconds without an
    // answer to its ping, and the testing default (at most 4 s) would cut it off mid-load.
    // The server's heap grows with the tree: 1 GB holds 100,000 nodes with room to spare, a
    // million need about 3.
    let heap_mb = (settings.nodes / 1_000 * 3).max(1_024);
    let mut server = tokio::task::spawn_blocking(move || {
        ZkServer::builder()
            .max_session_timeout(Duration::from_secs(30))
            .jvm_arg(format!("-Xmx{heap_mb}m"))
            .start()
    })
    .await??;
    let connect = server.connect_string();
    let writer = Client::builder(&connect).connect().await?;
    let paths = tree_paths(ROOT, settings.nodes);
    let started = Instant::now();
    writer.create(ROOT, b"", CreateMode::Persistent).await?;
    create_all(&writer, &paths).await?;
    let build_time = started.elapsed();
    eprintln!(
        "built {} nodes in {} ms",
        settings.nodes,
        build_time.as_millis()
    );

    let scratch = std::env::temp_dir().join(format!("zkwarden-cache-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut launchers = Launchers {
        curator: None,
        kazoo: false,
    };
    if settings.peers {
        match compile_curator(&scratch).await {
            Ok(classpath) => launchers.curator = Some((scratch.clone(), classpath)),
            Err(why) => eprintln!("Curator peer left out: {why}"),
        }
        launchers.kazoo = kazoo_available();
        if !launchers.kazoo {
            eprintln!("kazoo peer left out: /usr/bin/python3 cannot import kazoo");
        }
    }
    let connect_for_loads = connect.clone();
    let loads =
        tokio::task::block_in_place(|| load_passes(&settings, &launchers, &connect_for_loads));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut loads = loads?;

    let mut delays = event_delays(&settings, &connect, &paths).await?;
    let (cache_median, cache_p99) = percentiles(&mut delays.cache);
    let (watch_median, watch_p99) = percentiles(&mut delays.watch);
    let (write_median, write_p99) = percentiles(&mut delays.write);
    let (read_median, read_p99) = percentiles(&mut delays.read);
    let (extra_median, extra_p99) = percentiles(&mut delays.extra);
    let mut burst_cache: Vec<Duration> = delays.burst.iter().map(|b| b.0).collect();
    let mut burst_write: Vec<Duration> = delays.burst.iter().map(|b| b.1).collect();
    let (burst_cache, _) = percentiles(&mut burst_cache);
    let (burst_write, _) = percentiles(&mut burst_write);
    let burst_cache = burst_cache / 1_000;
    let burst_write = burst_write / 1_000;
    if !delays.tree.is_empty() {
        let (tree_median, tree_p99) = percentiles(&mut delays.tree);
        println!("write -> bare tree watch: median {tree_median} us (p99 {tree_p99})");
    }
    writer.close().await?;
    let (herd_ms, herd_total_ms, herd_peak) = herd(&settings, &mut server).await?;

    // The table.
    let medians: Vec<(Contender, u64, u64)> = loads
        .iter_mut()
        .map(|f| {
            (
                f.contender,
                median(&mut f.millis),
                median(&mut f.bytes_per_node),
            )
        })
        .collect();
    let held: Vec<usize> = loads.iter().map(|f| f.held).collect();
    let ours = medians[0];
    let best_peer = medians[1..].iter().min_by_key(|m| m.1).copied();
    let leanest_peer = medians[1..].iter().min_by_key(|m| m.2).copied();
    println!(
        "\nload of {} nodes ({DATA_LEN}-byte values), medians of {} interleaved passes",
        settings.nodes + 1,
        settings.passes
    );
    println!("| contender | load ms | bytes/node | nodes held |");
    println!("|---|---|---|---|");
    for ((contender, millis, bytes), held) in medians.iter().zip(&held) {
        println!("| {} | {millis} | {bytes} | {held} |", contender.name());
    }
    if let (Some(fast), Some(lean)) = (best_peer, leanest_peer) {
        println!(
            "load time {:.2}x the faster peer ({}), memory {:.2}x the leaner peer ({})",
            ours.1 as f64 / fast.1.max(1) as f64,
            fast.0.name(),
            ours.2 as f64 / lean.2.max(1) as f64,
            lean.0.name()
        );
    }
    println!(
        "write -> cache event: median {cache_median} us (p99 {cache_p99}); one-shot watch \
         median {watch_median} us (p99 {watch_p99}); ratio {:.2}; the cache later than the \
         watch by a median {extra_median} us (p99 {extra_p99}) for the same write; the \
         write's reply median {write_median} us (p99 {write_p99}); a read's round trip \
         median {read_median} us (p99 {read_p99}); {} writes",
        cache_median as f64 / watch_median.max(1) as f64,
        settings.writes * settings.passes
    );
    println!(
        "burst of {BURST} writes to distinct nodes sent at once: the cache showed all in a \
         median {burst_cache} ms, the writer had all replies in {burst_write} ms"
    );
    println!(
        "herd: {} caches x {} nodes resynced {herd_ms} ms after the server served again \
         ({herd_total_ms} ms after the restart began); peak reads in flight {herd_peak} \
         (limit {})",
        settings.caches, settings.cache_nodes, settings.herd_limit
    );
    let load_json: Vec<String> = medians
        .iter()
        .map(|(contender, millis, bytes)| {
            format!(
                "\"{}\":{{\"load_ms\":{millis},\"bytes_per_node\":{bytes}}}",
                contender.key()
            )
        })
        .collect();
    println!(
        "{{\"nodes\":{},\"passes\":{},\"build_ms\":{},{},\"writes\":{},\
         \"cache_event_us\":{{\"median\":{cache_median},\"p99\":{cache_p99}}},\
         \"oneshot_watch_us\":{{\"median\":{watch_median},\"p99\":{watch_p99}}},\
         \"cache_minus_watch_us\":{{\"median\":{extra_median},\"p99\":{extra_p99}}},\
         \"write_us\":{{\"median\":{write_median},\"p99\":{write_p99}}},\
         \"burst\":{{\"writes\":{BURST},\"cache_ms\":{burst_cache},\"write_ms\":{burst_write}}},\
         \"read_us\":{{\"median\":{read_median},\"p99\":{read_p99}}},\
         \"herd\":{{\"caches\":{},\"nodes_each\":{},\"converge_ms\":{herd_ms},\
         \"from_restart_ms\":{herd_total_ms},\"peak_in_flight\":{herd_peak},\"limit\":{}}}}}",
        settings.nodes + 1,
        settings.passes,
        build_time.as_millis(),
        load_json.join(","),
        settings.writes * settings.passes,
        settings.caches,
        settings.cache_nodes,
        settings.herd_limit,
    );
    Ok(())
}

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--load-child") {
        return load_child(&args[1..]);
    }
    let settings = Settings::from_args(args)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(settings))
}
