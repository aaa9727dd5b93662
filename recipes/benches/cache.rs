//! What a [`TreeCache`] costs: memory and load time for a 10,000-node tree, and the delay from
//! a write to the cache's event, next to the client's own one-shot data watch on the same
//! server in the same run (the floor any cache built on notifications can reach).
//!
//! ```text
//! cargo bench -p zkwarden-recipes --bench cache
//! cargo bench -p zkwarden-recipes --bench cache -- --nodes 10000 --writes 1000
//! ```
//!
//! It starts its own ZooKeeper (Debian's package, as the tests do) on a free loopback port and
//! prints one JSON line with the figures. CI only builds this; numbers come from running it by
//! hand. Memory is the growth of this process's resident set while the cache loads, so it
//! includes allocator slack; run it on an otherwise quiet machine for stable figures.

use std::error::Error;
use std::time::{Duration, Instant};

use zkwarden::testing::ZkServer;
use zkwarden::{Client, CreateMode, Warden};
use zkwarden_recipes::cache::{CacheEvent, CacheEvents, TreeCache};

/// Where the benchmark builds its tree.
const ROOT: &str = "/cache-bench";

/// Bytes of data in every node (a small config value).
const DATA_LEN: usize = 32;

/// Requests kept in flight while the tree is built.
const CREATE_WINDOW: usize = 512;

/// Bound for any single wait; reaching it aborts the run.
const PATIENCE: Duration = Duration::from_secs(60);

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Command-line settings.
struct Settings {
    nodes: usize,
    writes: usize,
}

impl Settings {
    fn from_args() -> BenchResult<Self> {
        let mut settings = Settings {
            nodes: 10_000,
            writes: 1_000,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--nodes" => settings.nodes = next_number(&mut args, "--nodes")?,
                "--writes" => settings.writes = next_number(&mut args, "--writes")?,
                // `cargo bench` passes `--bench`; anything else is a mistake.
                "--bench" => {}
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        if settings.nodes < 100 || settings.writes == 0 {
            return Err("--nodes must be at least 100 and --writes at least 1".into());
        }
        Ok(settings)
    }
}

fn next_number(args: &mut impl Iterator<Item = String>, flag: &str) -> BenchResult<usize> {
    let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    Ok(value.parse()?)
}

/// This process's resident set in bytes (Linux).
fn resident_bytes() -> BenchResult<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("statm has no resident field")?
        .parse()?;
    Ok(pages * 4096)
}

/// The paths of the tree: `ROOT`, then groups of 100 children under `ROOT/g<k>`, so that
/// `nodes` counts every node below the root.
fn tree_paths(nodes: usize) -> Vec<String> {
    let groups = nodes / 100;
    let mut paths = Vec::with_capacity(nodes);
    for group in 0..groups {
        paths.push(format!("{ROOT}/g{group}"));
    }
    let mut leaf = 0;
    while paths.len() < nodes {
        paths.push(format!("{ROOT}/g{}/n{leaf}", leaf % groups));
        leaf += 1;
    }
    paths
}

/// Creates the root and the tree, `CREATE_WINDOW` creates in flight at a time (groups first,
/// so every parent exists before its children are sent).
async fn build_tree(client: &Client, paths: &[String]) -> BenchResult<()> {
    client
        .create(ROOT, b"", CreateMode::Persistent)
        .await
        .map(drop)?;
    let data = [b'x'; DATA_LEN];
    let (groups, leaves): (Vec<&String>, Vec<&String>) = paths
        .iter()
        .partition(|path| path.matches('/').count() == 2);
    for batch in [groups, leaves] {
        for window in batch.chunks(CREATE_WINDOW) {
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

/// Waits for the cache's `Changed` event that shows `path` at modification zxid `mzxid` or
/// later. Earlier events (such as those of the peer's writes to the same node) are skipped.
async fn changed_to(events: &mut CacheEvents, path: &str, mzxid: i64) -> BenchResult<()> {
    loop {
        match tokio::time::timeout(PATIENCE, events.next()).await? {
            Some(CacheEvent::Changed {
                path: changed,
                node,
            }) if changed == path && node.stat.mzxid >= mzxid => {
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

async fn run(settings: Settings) -> BenchResult<()> {
    let server = tokio::task::spawn_blocking(|| ZkServer::builder().start()).await??;
    let connect = server.connect_string();
    let writer = Client::builder(&connect).connect().await?;
    let paths = tree_paths(settings.nodes);
    let started = Instant::now();
    build_tree(&writer, &paths).await?;
    let build_time = started.elapsed();

    let warden = Warden::builder(&connect).start().await?;
    let resident_before = resident_bytes()?;
    let started = Instant::now();
    let cache = TreeCache::builder(&warden, ROOT).start().await?;
    tokio::time::timeout(PATIENCE, cache.initialized()).await??;
    let load_time = started.elapsed();
    let resident_after = resident_bytes()?;
    // Subscribed after the load, so the initial `Created` events are not queued for it.
    let mut events = cache.events();
    let cached = cache.len();
    if cached != settings.nodes + 1 {
        return Err(format!(
            "cache holds {cached} nodes, expected {}",
            settings.nodes + 1
        )
        .into());
    }

    // The peer: the client's own one-shot data watch, set on a separate session so that its
    // notifications never share a socket with the cache's.
    let watcher = Client::builder(&connect).connect().await?;
    let mut cache_delays = Vec::with_capacity(settings.writes);
    let mut watch_delays = Vec::with_capacity(settings.writes);
    for round in 0..settings.writes {
        let path = &paths[(round * 7919) % paths.len()];
        let value = round.to_string();

        let (_, _, fired) = watcher.get_data_and_watch(path).await?;
        let sent = Instant::now();
        writer.set_data(path, value.as_bytes(), None).await?;
        tokio::time::timeout(PATIENCE, fired).await??;
        watch_delays.push(sent.elapsed());

        let sent = Instant::now();
        let written = writer.set_data(path, value.as_bytes(), None).await?;
        changed_to(&mut events, path, written.mzxid).await?;
        cache_delays.push(sent.elapsed());
    }
    let (cache_median, cache_p99) = percentiles(&mut cache_delays);
    let (watch_median, watch_p99) = percentiles(&mut watch_delays);
    let growth = resident_after.saturating_sub(resident_before);
    println!(
        "{{\"nodes\":{},\"build_ms\":{},\"load_ms\":{},\"rss_growth_bytes\":{},\
         \"bytes_per_node\":{},\"writes\":{},\"cache_event_us\":{{\"median\":{},\"p99\":{}}},\
         \"oneshot_watch_us\":{{\"median\":{},\"p99\":{}}},\"median_ratio\":{:.2}}}",
        cached,
        build_time.as_millis(),
        load_time.as_millis(),
        growth,
        growth / cached as u64,
        settings.writes,
        cache_median,
        cache_p99,
        watch_median,
        watch_p99,
        cache_median as f64 / watch_median.max(1) as f64,
    );
    Ok(())
}

fn main() -> BenchResult<()> {
    let settings = Settings::from_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(settings))
}
