//! The task behind every cache: follows the warden's tree watch, reads what changed, and
//! turns the difference into events.
//!
//! The tree watch ([`Warden::watch_tree`]) names the nodes that changed and lists the whole
//! subtree (path and stat) after every reconnection and on every new session. The engine
//! reads the data of each node it is told about and compares zxids with what it holds:
//! a different creation zxid is a deletion and a creation, a newer modification zxid a
//! change. Events are applied to the cache and broadcast under one lock, so a snapshot
//! taken with a subscription plus that subscription's events always equals the cache.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tracing::{debug, warn};
use zkwarden::warden::{TreeEvent, TreeWatch};
use zkwarden::{Backoff, Error, Stat, Warden};

use super::events::CacheEvent;
use super::filter::Filter;
use super::snapshot::{CachedNode, Snapshot, descendants};

/// How many reads are in flight at once when many nodes are read.
const PIPELINE: usize = 256;

/// The first pause before reading again nodes whose read failed, doubled after each
/// failure up to [`RETRY_MAX`] (jittered, so the caches of many clients that lost one server
/// do not read again in step).
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the cache and its handles share: the nodes and the event channel, changed together
/// under one lock.
pub(super) struct Shared {
    nodes: Mutex<Snapshot>,
    /// Held open by the engine alone, so subscriptions end when it stops.
    events: broadcast::WeakSender<CacheEvent>,
}

impl Shared {
    /// The shared state and the sender of its events, for the engine.
    pub(super) fn new(capacity: usize) -> (Shared, broadcast::Sender<CacheEvent>) {
        let (events, _) = broadcast::channel(capacity.max(1));
        let shared = Shared {
            nodes: Mutex::new(Snapshot::new()),
            events: events.downgrade(),
        };
        (shared, events)
    }

    /// The nodes, locked. A panic elsewhere cannot leave them half-changed (every change is
    /// one map operation), so a poisoned lock is still good to read.
    pub(super) fn lock(&self) -> MutexGuard<'_, Snapshot> {
        self.nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A subscription to events from now on.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<CacheEvent> {
        crate::events_end::subscribe(&self.events)
    }

    /// A snapshot and a subscription taken at the same moment.
    pub(super) fn snapshot_and_subscribe(&self) -> (Snapshot, broadcast::Receiver<CacheEvent>) {
        let nodes = self.lock();
        (nodes.clone(), crate::events_end::subscribe(&self.events))
    }
}

/// Applies `event` to `nodes` and sends it to the subscribers (having none is fine).
fn emit(nodes: &mut Snapshot, events: &broadcast::Sender<CacheEvent>, event: CacheEvent) {
    nodes.apply(&event);
    let _ = events.send(event);
}

/// Publishes the number of cached nodes as the gauge `zkwarden.cache.nodes{path}` (cargo
/// feature `metrics`; nothing otherwise).
fn report_size(_root: &str, _nodes: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("zkwarden.cache.nodes", "path" => _root.to_owned()).set(_nodes as f64);
}

/// The outcome of reading one node.
enum Read {
    Found(Bytes, Stat),
    /// It does not exist, or this session may not read it.
    Missing,
    /// The read failed for now (connection trouble past the retry policy): try later.
    Failed,
}

impl Read {
    fn describe(&self) -> String {
        match self {
            Read::Found(_, stat) => format!("found czxid={} mzxid={}", stat.czxid, stat.mzxid),
            Read::Missing => "missing".to_owned(),
            Read::Failed => "failed".to_owned(),
        }
    }
}

/// The cache's background task.
pub(super) struct Engine {
    pub(super) warden: Warden,
    pub(super) shared: Arc<Shared>,
    /// The only strong sender of the cache's events: dropped with the engine.
    events: broadcast::Sender<CacheEvent>,
    pub(super) filter: Filter,
    pub(super) keep_data: bool,
    pub(super) initialized: watch::Sender<bool>,
    /// Nodes whose last read failed: read again at `retry_at`, or by the next resync.
    pending: BTreeSet<String>,
    retry_at: Instant,
    retry_pause: Backoff,
}

impl Engine {
    pub(super) fn new(
        warden: Warden,
        shared: Arc<Shared>,
        events: broadcast::Sender<CacheEvent>,
        filter: Filter,
        keep_data: bool,
        initialized: watch::Sender<bool>,
    ) -> Engine {
        Engine {
            warden,
            shared,
            events,
            filter,
            keep_data,
            initialized,
            pending: BTreeSet::new(),
            retry_at: Instant::now(),
            retry_pause: Backoff::new(RETRY_FIRST, RETRY_MAX),
        }
    }

    /// Follows `watch` until it ends (the warden closed) or the task is aborted (the cache
    /// was dropped).
    pub(super) async fn run(mut self, mut watch: TreeWatch) {
        let root = watch.path().to_owned();
        loop {
            report_size(&root, self.shared.lock().len());
            tokio::select! {
                event = watch.next() => {
                    let Some(event) = event else {
                        debug!("tree watch ended; cache stops");
                        return;
                    };
                    self.handle(event).await;
                }
                () = tokio::time::sleep_until(self.retry_at), if !self.pending.is_empty() => {
                    let paths: Vec<String> = std::mem::take(&mut self.pending).into_iter().collect();
                    debug!(count = paths.len(), "reading again nodes whose read failed");
                    self.refresh(paths).await;
                }
            }
        }
    }

    async fn handle(&mut self, event: TreeEvent) {
        tracing::trace!(?event, "tree event");
        match event {
            TreeEvent::Resync { generation, nodes } => self.resync(generation, nodes).await,
            TreeEvent::Created { path } | TreeEvent::Changed { path } => {
                if self.filter.accepts(&path) {
                    self.refresh(vec![path]).await;
                }
            }
            TreeEvent::Deleted { path } => {
                self.pending.remove(&path);
                let mut nodes = self.shared.lock();
                remove(&mut nodes, &self.events, &path);
            }
        }
    }

    /// Rebuilds the cache from a listing of the subtree: deletes what is gone, reads what is
    /// new or differs, then reports `Initialized` (the first time) or `Resynced`.
    async fn resync(&mut self, generation: u64, listing: BTreeMap<String, Stat>) {
        let listing: BTreeMap<String, Stat> = listing
            .into_iter()
            .filter(|(path, _)| self.filter.accepts(path))
            .collect();
        let to_read: Vec<String> = {
            let mut nodes = self.shared.lock();
            let gone: Vec<String> = nodes
                .map()
                .keys()
                .filter(|path| !listing.contains_key(*path))
                .cloned()
                .collect();
            // Deepest first, so no node is reported gone before its children.
            for path in gone.iter().rev() {
                remove(&mut nodes, &self.events, path);
            }
            listing
                .iter()
                .filter(|(path, stat)| match nodes.get(path) {
                    None => true,
                    Some(cached) => {
                        cached.stat.czxid != stat.czxid || cached.stat.mzxid != stat.mzxid
                    }
                })
                .map(|(path, _)| path.clone())
                .collect()
        };
        // What the listing covers needs no separate retry.
        self.pending.clear();
        self.retry_pause.reset();
        debug!(
            listed = listing.len(),
            reading = to_read.len(),
            "resyncing the cache"
        );
        self.refresh(to_read).await;
        // `Resynced` promises the cache equals the server: finish the reads first. A read
        // fails only past the warden's retry policy, so this waits out a long outage.
        while !self.pending.is_empty() && !self.warden.is_closed() {
            tokio::time::sleep_until(self.retry_at).await;
            let paths: Vec<String> = std::mem::take(&mut self.pending).into_iter().collect();
            self.refresh(paths).await;
        }
        let first = !*self.initialized.borrow();
        {
            let mut nodes = self.shared.lock();
            let event = if first {
                CacheEvent::Initialized
            } else {
                CacheEvent::Resynced { generation }
            };
            emit(&mut nodes, &self.events, event);
        }
        if first {
            self.initialized.send_replace(true);
        }
    }

    /// Reads `paths` (in path order, parents before children) and applies what it finds.
    async fn refresh(&mut self, mut paths: Vec<String>) {
        paths.sort();
        for batch in paths.chunks(PIPELINE) {
            let reads = self.read_many(batch).await;
            let mut nodes = self.shared.lock();
            for (path, read) in batch.iter().zip(reads) {
                tracing::trace!(%path, read = read.describe(), "read");
                match read {
                    Read::Found(data, stat) => {
                        // A copy, so that a reply's data does not pin the larger read buffer it
                        // was sliced from for as long as the node stays cached.
                        let data = if self.keep_data {
                            Bytes::copy_from_slice(&data)
                        } else {
                            Bytes::new()
                        };
                        found(&mut nodes, &self.events, path, CachedNode { data, stat });
                    }
                    Read::Missing => remove(&mut nodes, &self.events, path),
                    Read::Failed => {
                        self.pending.insert(path.clone());
                    }
                }
            }
        }
        if self.pending.is_empty() {
            self.retry_pause.reset();
        } else {
            self.retry_at = Instant::now() + self.retry_pause.next_pause();
        }
    }

    /// Reads every path of `batch`, all at once on the current session, retried by the
    /// warden's policy.
    async fn read_many(&self, batch: &[String]) -> Vec<Read> {
        let reads = self.warden.get_data_batch(batch).await;
        batch
            .iter()
            .zip(reads)
            .map(|(path, read)| classify(path, read))
            .collect()
    }
}

/// Sorts a read's result.
fn classify(path: &str, result: zkwarden::Result<(Bytes, Stat)>) -> Read {
    match result {
        Ok((data, stat)) => Read::Found(data, stat),
        Err(Error::NoNode) => Read::Missing,
        Err(Error::NoAuth) => {
            warn!(%path, "cache may not read this node; leaving it out");
            Read::Missing
        }
        Err(error) => {
            debug!(%path, %error, "cache read failed");
            Read::Failed
        }
    }
}

/// Puts a node just read into the cache, reporting the difference from what was there.
fn found(
    nodes: &mut Snapshot,
    events: &broadcast::Sender<CacheEvent>,
    path: &str,
    node: CachedNode,
) {
    let path = path.to_owned();
    let Some(cached) = nodes.get(&path) else {
        emit(nodes, events, CacheEvent::Created { path, node });
        return;
    };
    let (czxid, mzxid) = (cached.stat.czxid, cached.stat.mzxid);
    if node.stat.czxid > czxid {
        // Deleted and created again: so were any cached children older than the new node.
        let stale: Vec<String> = descendants(nodes.map(), &path)
            .into_iter()
            .filter(|child| {
                nodes
                    .get(child)
                    .is_some_and(|n| n.stat.czxid < node.stat.czxid)
            })
            .collect();
        for child in stale.iter().rev() {
            remove(nodes, events, child);
        }
        // Only the node itself: children newer than the new node belong to it and stay.
        remove_one(nodes, events, &path);
        emit(nodes, events, CacheEvent::Created { path, node });
    } else if node.stat.czxid == czxid && node.stat.mzxid > mzxid {
        emit(nodes, events, CacheEvent::Changed { path, node });
    }
    // Otherwise the read is no newer than the cache: nothing to report.
}

/// Removes a node and anything cached below it (deepest first), reporting each.
fn remove(nodes: &mut Snapshot, events: &broadcast::Sender<CacheEvent>, path: &str) {
    if nodes.get(path).is_none() {
        return;
    }
    for child in descendants(nodes.map(), path).iter().rev() {
        remove_one(nodes, events, child);
    }
    remove_one(nodes, events, path);
}

fn remove_one(nodes: &mut Snapshot, events: &broadcast::Sender<CacheEvent>, path: &str) {
    if let Some(node) = nodes.map_mut().get(path).cloned() {
        let path = path.to_owned();
        emit(nodes, events, CacheEvent::Deleted { path, node });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(czxid: i64, mzxid: i64) -> CachedNode {
        CachedNode {
            data: Bytes::new(),
            stat: Stat {
                czxid,
                mzxid,
                ..Stat::default()
            },
        }
    }

    fn drain(rx: &mut broadcast::Receiver<CacheEvent>) -> Vec<(char, String)> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            let kind = match &event {
                CacheEvent::Created { .. } => 'C',
                CacheEvent::Changed { .. } => 'M',
                CacheEvent::Deleted { .. } => 'D',
                _ => '?',
            };
            out.push((kind, event.path().unwrap_or("").to_owned()));
        }
        out
    }

    #[test]
    fn zxids_decide_the_event() {
        let (shared, events) = Shared::new(64);
        let mut rx = shared.subscribe();
        let mut nodes = shared.lock();
        found(&mut nodes, &events, "/r", node(1, 1));
        found(&mut nodes, &events, "/r/a", node(2, 2));
        // Same zxids, or older: nothing.
        found(&mut nodes, &events, "/r/a", node(2, 2));
        // Newer mzxid: changed.
        found(&mut nodes, &events, "/r/a", node(2, 5));
        // Newer czxid: deleted and created again, with the stale children.
        found(&mut nodes, &events, "/r", node(7, 7));
        let seen = drain(&mut rx);
        let expect: Vec<(char, String)> = [
            ('C', "/r"),
            ('C', "/r/a"),
            ('M', "/r/a"),
            ('D', "/r/a"),
            ('D', "/r"),
            ('C', "/r"),
        ]
        .iter()
        .map(|(k, p)| (*k, (*p).to_owned()))
        .collect();
        assert_eq!(seen, expect);
        assert_eq!(nodes.len(), 1);
    }

    #[test]
    fn a_recreated_parent_keeps_its_new_children() {
        let (shared, events) = Shared::new(64);
        let mut rx = shared.subscribe();
        let mut nodes = shared.lock();
        found(&mut nodes, &events, "/r", node(1, 1));
        found(&mut nodes, &events, "/r/old", node(2, 2));
        // The child of the new incarnation was read before the parent was.
        found(&mut nodes, &events, "/r/new", node(9, 9));
        drain(&mut rx);
        found(&mut nodes, &events, "/r", node(8, 8));
        let seen = drain(&mut rx);
        let expect: Vec<(char, String)> = [('D', "/r/old"), ('D', "/r"), ('C', "/r")]
            .iter()
            .map(|(k, p)| (*k, (*p).to_owned()))
            .collect();
        assert_eq!(seen, expect);
        assert!(nodes.get("/r/new").is_some());
    }

    #[test]
    fn removal_takes_children_deepest_first() {
        let (shared, events) = Shared::new(64);
        let mut rx = shared.subscribe();
        let mut nodes = shared.lock();
        for (i, p) in ["/r", "/r/a", "/r/a/b", "/r-x"].iter().enumerate() {
            found(&mut nodes, &events, p, node(i as i64 + 1, 1));
        }
        drain(&mut rx);
        remove(&mut nodes, &events, "/r");
        let seen: Vec<String> = drain(&mut rx).into_iter().map(|(_, p)| p).collect();
        assert_eq!(seen, ["/r/a/b", "/r/a", "/r"]);
        assert_eq!(nodes.len(), 1);
    }
}
