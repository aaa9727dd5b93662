//! The workloads, written once for any [`Driver`].
//!
//! Each one (except `connect`, which touches no node) works under a fresh root node and
//! removes it afterwards. Setup (connecting, creating nodes, a short warm-up) and cleanup stay
//! outside the timed section; only `connect` times connecting, because there it is the op.

use std::future::Future;
use std::pin::Pin;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::args::{Args, Workload};
use crate::driver::{BenchError, BenchResult, Driver};
use crate::measure::{Latencies, Probe, Sample};

/// Ops run before the timed section of the node workloads, so that first-use costs (buffers
/// growing, the server's caches) are not measured.
const WARM_UP_OPS: usize = 200;

/// Runs the workload `args` names with client `D`.
pub(crate) async fn run<D: Driver>(args: &Args) -> BenchResult<Sample> {
    if args.workload == Workload::Connect {
        return connect::<D>(args).await;
    }
    let main = D::open(&args.connect).await?;
    let root = unique_root();
    if let Err(e) = main.create(&root, b"zkbench").await {
        let _ = main.close().await;
        return Err(e);
    }
    let outcome = under_root(&main, &root, args).await;
    let cleanup = remove_tree(&main, &root).await;
    let closed = main.close().await;
    // The workload's own error is the interesting one; report cleanup trouble otherwise.
    let sample = outcome?;
    cleanup.map_err(|e| BenchError::new(&format!("removing {root}"), e))?;
    closed?;
    Ok(sample)
}

/// `/zkbench-<pid>-<nanoseconds since the epoch>`.
fn unique_root() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("/zkbench-{}-{nanos}", std::process::id())
}

async fn under_root<D: Driver>(main: &D, root: &str, args: &Args) -> BenchResult<Sample> {
    let n = args.n;
    let data = vec![b'z'; args.size];
    let node = format!("{root}/node");
    if args.workload != Workload::CreateSeq {
        main.create(&node, &data).await?;
    }
    match args.workload {
        Workload::Connect => unreachable!("handled by run"),
        Workload::GetSeq => {
            for _ in 0..WARM_UP_OPS.min(n) {
                let len = main.get(&node).await?;
                if len != data.len() {
                    return Err(BenchError::msg(format!(
                        "get_data returned {len} bytes, expected {}",
                        data.len()
                    )));
                }
            }
            let mut latencies = Latencies::with_capacity(n);
            let probe = Probe::start()?;
            for _ in 0..n {
                let issued = Instant::now();
                main.get(&node).await?;
                latencies.record(issued);
            }
            probe.stop(n as u64, Some(latencies.into_inner()))
        }
        Workload::GetPipe => {
            pipelined(WARM_UP_OPS.min(n), args.inflight, || main.get(&node)).await?;
            pipelined(n, args.inflight, || main.get(&node)).await
        }
        Workload::SetPipe => {
            pipelined(WARM_UP_OPS.min(n), args.inflight, || main.set(&node, &data)).await?;
            pipelined(n, args.inflight, || main.set(&node, &data)).await
        }
        Workload::CreateSeq => {
            // Names are made up front: formatting them must not count as the client's work.
            let names: Vec<String> = (0..n).map(|i| format!("{root}/n{i:010}")).collect();
            let mut latencies = Latencies::with_capacity(2 * n);
            let probe = Probe::start()?;
            for name in &names {
                let issued = Instant::now();
                main.create(name, &data).await?;
                latencies.record(issued);
            }
            for name in &names {
                let issued = Instant::now();
                main.delete(name).await?;
                latencies.record(issued);
            }
            probe.stop(2 * n as u64, Some(latencies.into_inner()))
        }
        Workload::WatchFanout => {
            let changer = D::open(&args.connect).await?;
            let outcome = watch_fanout(main, &changer, &node, &data, n).await;
            let closed = changer.close().await;
            let sample = outcome?;
            closed?;
            Ok(sample)
        }
    }
}

/// `connect`: open, wait until connected, close, wait until closed; `n` times. The latency
/// is open-to-connected.
async fn connect<D: Driver>(args: &Args) -> BenchResult<Sample> {
    let mut latencies = Latencies::with_capacity(args.n);
    let probe = Probe::start()?;
    for _ in 0..args.n {
        let opened = Instant::now();
        let session = D::open(&args.connect).await?;
        latencies.record(opened);
        session.close().await?;
    }
    probe.stop(args.n as u64, Some(latencies.into_inner()))
}

/// `watch_fanout`: `watcher` watches `node`, `changer` changes it. The latency runs from just
/// before the change is issued to the event reaching this code; re-arming is not timed per op
/// but is part of the wall time and CPU.
async fn watch_fanout<D: Driver>(
    watcher: &D,
    changer: &D,
    node: &str,
    data: &[u8],
    n: usize,
) -> BenchResult<Sample> {
    let mut latencies = Latencies::with_capacity(n);
    let mut watch = watcher.get_and_watch(node).await?;
    let probe = Probe::start()?;
    for _ in 0..n {
        let issued = Instant::now();
        let change = changer.set(node, data);
        D::changed(watch).await?;
        latencies.record(issued);
        change.await?;
        watch = watcher.get_and_watch(node).await?;
    }
    let sample = probe.stop(n as u64, Some(latencies.into_inner()));
    drop(watch);
    sample
}

/// Issues `n` requests made by `issue`, keeping up to `inflight` of them outstanding: a ring
/// of slots in issue order, where the oldest request is awaited and its slot refilled at
/// once. Replies come back in order, so waiting on the oldest loses nothing (and its latency,
/// issue to completion, is what a caller awaiting it would see); the ring and the latency
/// buffer (allocated before the timed section) make the harness itself allocate nothing per op.
async fn pipelined<T, Fut, F>(n: usize, inflight: usize, mut issue: F) -> BenchResult<Sample>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = BenchResult<T>>,
{
    let depth = inflight.clamp(1, n.max(1));
    let mut ring: Vec<Pin<Box<Option<Fut>>>> = (0..depth).map(|_| Box::pin(None)).collect();
    let mut issued = vec![Instant::now(); depth];
    let mut latencies = Latencies::with_capacity(n);
    let probe = Probe::start()?;
    for i in 0..n + depth {
        let slot = &mut ring[i % depth];
        if let Some(oldest) = slot.as_mut().as_pin_mut() {
            oldest.await?;
            latencies.record(issued[i % depth]);
        }
        if i < n {
            // Refill the slot; past `n` the loop only drains what is still outstanding.
            issued[i % depth] = Instant::now();
            slot.set(Some(issue()));
        } else {
            slot.set(None);
        }
    }
    probe.stop(n as u64, Some(latencies.into_inner()))
}

/// Deletes `root` and everything below it: gathers the tree breadth-first, then deletes it in
/// reverse, so every child goes before its parent.
async fn remove_tree<D: Driver>(client: &D, root: &str) -> BenchResult<()> {
    let mut nodes = vec![root.to_owned()];
    let mut next = 0;
    while next < nodes.len() {
        let parent = nodes[next].clone();
        for child in client.children(&parent).await? {
            nodes.push(format!("{parent}/{child}"));
        }
        next += 1;
    }
    for node in nodes.iter().rev() {
        client.delete(node).await?;
    }
    Ok(())
}
