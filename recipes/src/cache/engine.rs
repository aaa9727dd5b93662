//! The task behind every cache: follows the warden's tree watch, reads what changed, and
//! turns the difference into events.
//!
//! The tree watch ([`Warden::watch_tree_unlisted`]) names the nodes that changed, and says
//! when changes may have gone unseen (a reconnection, a new session): then the engine walks
//! the subtree itself, reading each node's data and stat and listing the children of nodes
//! that have some, many reads to a request (`multiRead`) and many requests in flight, up to
//! the cache's [`ReadLimit`]. It compares zxids with what it holds: a different creation
//! zxid is a deletion and a creation, a newer modification zxid a change, and a cached node
//! the walk did not find is gone. Events are applied to the cache and broadcast under one
//! lock, so a snapshot taken with a subscription plus that subscription's events always
//! equals the cache.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tracing::{debug, warn};
use zkwarden::client::MultiReadOp;
use zkwarden::warden::{TreeEvent, TreeWatch};
use zkwarden::{Backoff, Error, ErrorCode, OpResult, Stat, Warden};

use super::events::CacheEvent;
use super::filter::Filter;
use super::limit::ReadLimit;
use super::snapshot::{CachedNode, Snapshot};
use super::store::Store;
use crate::leader::naming::join;

/// Reads sent in one `multiRead` request. Big enough that the server handles a request per
/// many nodes, small enough that a reply (about 110 bytes a node of 32-byte values) stays
/// well inside one read of the socket.
const BATCH: usize = 128;

/// The most changed nodes gathered into one refresh (see [`Engine::gather`]).
const GATHER: usize = 1_024;

/// How gathering the changes that wait behind one ended.
enum Gathered {
    /// Nothing more waits (or the batch is full).
    All,
    /// An event of another kind, to handle after the reads.
    Held(TreeEvent),
    /// The tree watch ended.
    Ended,
}

/// The first pause before reading again nodes whose read failed, doubled after each
/// failure up to [`RETRY_MAX`] (jittered, so the caches of many clients that lost one server
/// do not read again in step).
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What the cache and its handles share: the nodes and the event channel, changed together
/// under one lock.
pub(super) struct Shared {
    nodes: Mutex<Store>,
    /// Held open by the engine alone, so subscriptions end when it stops.
    events: broadcast::WeakSender<CacheEvent>,
}

impl Shared {
    /// The shared state and the sender of its events, for the engine.
    pub(super) fn new(capacity: usize) -> (Shared, broadcast::Sender<CacheEvent>) {
        let (events, _) = broadcast::channel(capacity.max(1));
        let shared = Shared {
            nodes: Mutex::new(Store::default()),
            events: events.downgrade(),
        };
        (shared, events)
    }

    /// The nodes, locked. A panic elsewhere cannot leave them half-changed (every change is
    /// one map operation), so a poisoned lock is still good to read.
    pub(super) fn lock(&self) -> MutexGuard<'_, Store> {
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
        (nodes.snapshot(), crate::events_end::subscribe(&self.events))
    }
}

/// Applies `event` to `nodes` and sends it to the subscribers (having none is fine).
fn emit(nodes: &mut Store, events: &broadcast::Sender<CacheEvent>, event: CacheEvent) {
    nodes.apply(&event);
    let _ = events.send(event);
}

/// Publishes the number of cached nodes as the gauge `zkwarden.cache.nodes{path}` (cargo
/// feature `metrics`; nothing otherwise).
fn report_size(_root: &str, _nodes: usize) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("zkwarden.cache.nodes", "path" => _root.to_owned()).set(_nodes as f64);
}

/// One read of a walk or a refresh.
#[derive(Debug, Clone)]
enum Task {
    /// A node's data and stat.
    Data(String),
    /// A node's children.
    Children(String),
}

/// The answer to one [`Task`].
enum Answer {
    Data(zkwarden::Result<(Bytes, Stat)>),
    Children(zkwarden::Result<Vec<String>>),
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
    /// Bounds the reads in flight (shared with other caches given the same limit).
    limit: ReadLimit,
    /// Whether to batch reads with `multiRead`: until a server (before 3.6) refuses it.
    multi_read: bool,
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
        limit: ReadLimit,
    ) -> Engine {
        Engine {
            warden,
            shared,
            events,
            filter,
            keep_data,
            initialized,
            limit,
            multi_read: true,
            pending: BTreeSet::new(),
            retry_at: Instant::now(),
            retry_pause: Backoff::new(RETRY_FIRST, RETRY_MAX),
        }
    }

    /// Follows `watch` until it ends (the warden closed) or the task is aborted (the cache
    /// was dropped).
    pub(super) async fn run(mut self, mut watch: TreeWatch) {
        let root = watch.path().to_owned();
        // An event taken from the watch while gathering changes, handled next.
        let mut held = None;
        loop {
            report_size(&root, self.shared.lock().len());
            let event = match held.take() {
                Some(event) => event,
                None => tokio::select! {
                    biased;
                    event = watch.next() => {
                        let Some(event) = event else {
                            debug!("tree watch ended; cache stops");
                            return;
                        };
                        event
                    }
                    () = tokio::time::sleep_until(self.retry_at), if !self.pending.is_empty() => {
                        let paths: Vec<String> = std::mem::take(&mut self.pending).into_iter().collect();
                        debug!(count = paths.len(), "reading again nodes whose read failed");
                        self.refresh(paths).await;
                        continue;
                    }
                },
            };
            match self.handle(event, &mut watch).await {
                Gathered::All => {}
                Gathered::Held(event) => held = Some(event),
                Gathered::Ended => {
                    debug!("tree watch ended; cache stops");
                    return;
                }
            }
        }
    }

    /// The nodes to read for a change of `path` and the changes already waiting behind it,
    /// so that a burst of changes is read a batch to a request rather than one round trip
    /// each. Gathering stops at the first event of another kind (a deletion or a resync,
    /// handled after the reads, as it came after the changes), when nothing more waits, or
    /// at [`GATHER`] nodes.
    fn gather(&self, watch: &mut TreeWatch, path: String) -> (Vec<String>, Gathered) {
        let mut paths = BTreeSet::new();
        if self.filter.accepts(&path) {
            paths.insert(path);
        }
        let next = loop {
            if paths.len() >= GATHER {
                break Gathered::All;
            }
            // Only what is already queued: never waits.
            match watch.next().now_or_never() {
                None => break Gathered::All,
                Some(None) => break Gathered::Ended,
                Some(Some(TreeEvent::Created { path } | TreeEvent::Changed { path })) => {
                    if self.filter.accepts(&path) {
                        paths.insert(path);
                    }
                }
                Some(Some(event)) => break Gathered::Held(event),
            }
        };
        (paths.into_iter().collect(), next)
    }

    /// Applies `event`; a change is read together with the changes already waiting behind
    /// it, and what ended that gathering is returned.
    async fn handle(&mut self, event: TreeEvent, watch: &mut TreeWatch) -> Gathered {
        tracing::trace!(?event, "tree event");
        match event {
            // Only a tree watch in its one-shot fallback (servers before 3.6) lists; an
            // empty listing (no root) is as well found by a walk.
            TreeEvent::Resync { generation, nodes } if !nodes.is_empty() => {
                self.resync_listed(generation, nodes).await;
            }
            TreeEvent::Resync { generation, .. } => self.resync(generation).await,
            TreeEvent::Created { path } | TreeEvent::Changed { path } => {
                let (paths, next) = self.gather(watch, path);
                tracing::trace!(count = paths.len(), "changed nodes to read");
                if !paths.is_empty() {
                    self.refresh(paths).await;
                }
                return next;
            }
            TreeEvent::Deleted { path } => {
                self.pending.remove(&path);
                let mut nodes = self.shared.lock();
                remove(&mut nodes, &self.events, &path);
            }
        }
        Gathered::All
    }

    /// Rebuilds the cache from a walk of the subtree: reports what changed and what is gone,
    /// then `Initialized` (the first time) or `Resynced`. A walk that could not finish
    /// (reads failing past the warden's retry policy) starts over after a pause, so this
    /// waits out a long outage: `Resynced` promises the cache equals the server.
    async fn resync(&mut self, generation: u64) {
        loop {
            if self.walk().await {
                break;
            }
            if self.warden.is_closed() {
                return;
            }
            tokio::time::sleep(self.retry_pause.next_pause()).await;
        }
        self.retry_pause.reset();
        // What the walk covers needs no separate retry.
        self.pending.clear();
        self.finish_resync(generation);
    }

    /// Sends `Initialized` (the first time) or `Resynced`.
    fn finish_resync(&mut self, generation: u64) {
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

    /// Reads the whole subtree and applies it; `false` if some read failed (what was read
    /// is applied all the same).
    async fn walk(&mut self) -> bool {
        let root = self.filter.root.clone();
        let mut start = Vec::new();
        if self.filter.lists_below(&root) {
            start.push(Task::Children(root.clone()));
        }
        if self.filter.accepts(&root) {
            start.push(Task::Data(root.clone()));
        }
        // Only a cache that holds nodes can hold some the walk no longer finds.
        let mut seen = (!self.shared.lock().is_empty()).then(HashSet::new);
        let failed = self.read_all(start, true, seen.as_mut()).await;
        if !failed.is_empty() {
            debug!(failed = failed.len(), "walk of the tree incomplete");
            return false;
        }
        if let Some(seen) = seen {
            let mut nodes = self.shared.lock();
            keep_only(&mut nodes, &self.events, |path| seen.contains(path));
        }
        true
    }

    /// Rebuilds the cache from a listing of the subtree (the tree watch's one-shot
    /// fallback): deletes what is gone, reads what is new or differs, then reports
    /// `Initialized` (the first time) or `Resynced`.
    async fn resync_listed(&mut self, generation: u64, listing: BTreeMap<String, Stat>) {
        let listing: BTreeMap<String, Stat> = listing
            .into_iter()
            .filter(|(path, _)| self.filter.accepts(path))
            .collect();
        let to_read: Vec<String> = {
            let mut nodes = self.shared.lock();
            keep_only(&mut nodes, &self.events, |path| listing.contains_key(path));
            listing
                .iter()
                .filter(|(path, stat)| match nodes.stat(path) {
                    None => true,
                    Some(cached) => cached.czxid != stat.czxid || cached.mzxid != stat.mzxid,
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
        self.finish_resync(generation);
    }

    /// Puts a node just read into `nodes` (its data copied into the store, or dropped
    /// without `keep_data`), reporting the difference from what was there.
    fn found(&self, nodes: &mut Store, path: &str, data: &[u8], stat: Stat) {
        let data = if self.keep_data {
            nodes.keep(data)
        } else {
            Bytes::new()
        };
        found(nodes, &self.events, path, CachedNode { data, stat });
    }

    /// Reads `paths` (in path order, parents before children) and applies what it finds;
    /// the ones that failed wait in `pending`.
    async fn refresh(&mut self, mut paths: Vec<String>) {
        paths.sort();
        let tasks = paths.into_iter().map(Task::Data).collect();
        for task in self.read_all(tasks, false, None).await {
            if let Task::Data(path) = task {
                self.pending.insert(path);
            }
        }
        if self.pending.is_empty() {
            self.retry_pause.reset();
        } else {
            self.retry_at = Instant::now() + self.retry_pause.next_pause();
        }
    }

    /// Runs `tasks`, [`BATCH`] to a request and as many requests at once as the limit
    /// allows, applying each answer as it comes. With `expand`, a node found with children
    /// has them listed, and listed children are read, so that the walk covers the subtree.
    /// Paths found go into `seen`. Returns the tasks that failed.
    async fn read_all(
        &mut self,
        mut tasks: Vec<Task>,
        expand: bool,
        mut seen: Option<&mut HashSet<String>>,
    ) -> Vec<Task> {
        // Taken from the end: a walk goes deep before wide, which keeps the list short.
        tasks.reverse();
        let mut failed = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        loop {
            // A batch never needs more room than the whole limit.
            let next = tasks.len().min(BATCH).min(self.limit.max());
            tokio::select! {
                // Answers first, so that what they add to `tasks` goes out in the next batch.
                biased;
                Some((batch, answers)) = in_flight.next() => {
                    self.apply(batch, answers, expand, &mut tasks, &mut failed, &mut seen);
                }
                pass = self.limit.admit(next), if next > 0 => {
                    let batch: Vec<Task> = tasks.split_off(tasks.len() - next);
                    let sent = fetch(self.warden.clone(), self.multi_read, batch);
                    in_flight.push(async move {
                        let answered = sent.await;
                        drop(pass);
                        answered
                    });
                }
                else => break,
            }
        }
        failed
    }

    /// Applies the answers to one batch.
    fn apply(
        &mut self,
        batch: Vec<Task>,
        answers: Answers,
        expand: bool,
        tasks: &mut Vec<Task>,
        failed: &mut Vec<Task>,
        seen: &mut Option<&mut HashSet<String>>,
    ) {
        let answers = match answers {
            Answers::Each(answers) => answers,
            Answers::Unimplemented => {
                // A server before 3.6: the same reads, one request each.
                debug!("server does not take multiRead; reading nodes one at a time");
                self.multi_read = false;
                tasks.extend(batch);
                return;
            }
        };
        let mut nodes = self.shared.lock();
        for (task, answer) in batch.into_iter().zip(answers) {
            match (task, answer) {
                (Task::Data(path), Answer::Data(read)) => {
                    let read = classify(&path, read);
                    tracing::trace!(%path, read = read.describe(), "read");
                    match read {
                        Read::Found(data, stat) => {
                            if expand && stat.num_children > 0 && self.filter.lists_below(&path) {
                                tasks.push(Task::Children(path.clone()));
                            }
                            if let Some(seen) = seen.as_deref_mut() {
                                seen.insert(path.clone());
                            }
                            self.found(&mut nodes, &path, &data, stat);
                        }
                        Read::Missing => remove(&mut nodes, &self.events, &path),
                        Read::Failed => failed.push(Task::Data(path)),
                    }
                }
                (Task::Children(path), Answer::Children(listed)) => match listed {
                    Ok(children) => tasks.extend(
                        children
                            .iter()
                            .map(|child| join(&path, child))
                            .filter(|child| self.filter.accepts(child))
                            .map(Task::Data),
                    ),
                    // Deleted since it was read (its event follows).
                    Err(Error::NoNode) => {}
                    Err(Error::NoAuth) => {
                        warn!(%path, "cache may not list this node's children; leaving them out");
                    }
                    Err(error) => {
                        debug!(%path, %error, "cache listing failed");
                        failed.push(Task::Children(path));
                    }
                },
                // `fetch` answers each task in kind.
                (task, _) => failed.push(task),
            }
        }
    }
}

/// The answers to one batch of tasks.
enum Answers {
    /// One per task, in order.
    Each(Vec<Answer>),
    /// The server does not take `multiRead`: nothing was read.
    Unimplemented,
}

/// Sends the reads of `batch` at once (when this is called, not when awaited) and returns
/// the batch with its answers. Retries follow the warden's policy.
fn fetch(
    warden: Warden,
    multi_read: bool,
    batch: Vec<Task>,
) -> impl std::future::Future<Output = (Vec<Task>, Answers)> {
    // One read goes alone: it costs the server the same and saves encoding a batch.
    let one = match batch.as_slice() {
        [Task::Data(path)] => Some(path.clone()),
        _ => None,
    };
    let ops: Vec<MultiReadOp> = batch
        .iter()
        .map(|task| match task {
            Task::Data(path) => MultiReadOp::GetData(path.clone()),
            Task::Children(path) => MultiReadOp::GetChildren(path.clone()),
        })
        .collect();
    async move {
        if let Some(path) = one {
            let read = warden.get_data(&path).await;
            return (batch, Answers::Each(vec![Answer::Data(read)]));
        }
        if !multi_read {
            let answers = futures_util::future::join_all(batch.iter().map(|task| {
                let warden = warden.clone();
                let task = task.clone();
                async move {
                    match task {
                        Task::Data(path) => Answer::Data(warden.get_data(&path).await),
                        Task::Children(path) => Answer::Children(warden.get_children(&path).await),
                    }
                }
            }))
            .await;
            return (batch, Answers::Each(answers));
        }
        let answers = match warden.multi_read(&ops).await {
            Ok(results) => Answers::Each(
                batch
                    .iter()
                    .zip(results)
                    .map(|(task, result)| answer(task, result))
                    .collect(),
            ),
            Err(Error::Unimplemented) => Answers::Unimplemented,
            Err(error) => Answers::Each(
                batch
                    .iter()
                    .map(|task| match task {
                        Task::Data(_) => Answer::Data(Err(error.clone())),
                        Task::Children(_) => Answer::Children(Err(error.clone())),
                    })
                    .collect(),
            ),
        };
        (batch, answers)
    }
}

/// The answer to `task` in a `multiRead` reply.
fn answer(task: &Task, result: OpResult) -> Answer {
    match (task, result) {
        (Task::Data(_), OpResult::GetData { data, stat }) => Answer::Data(Ok((data, stat))),
        (Task::Children(_), OpResult::GetChildren { children }) => Answer::Children(Ok(children)),
        (Task::Data(_), OpResult::Error(code)) => Answer::Data(Err(Error::from_code(code))),
        (Task::Children(_), OpResult::Error(code)) => Answer::Children(Err(Error::from_code(code))),
        // A reply that does not match its request.
        (Task::Data(_), _) => Answer::Data(Err(Error::from_code(ErrorCode::MarshallingError))),
        (Task::Children(_), _) => {
            Answer::Children(Err(Error::from_code(ErrorCode::MarshallingError)))
        }
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
fn found(nodes: &mut Store, events: &broadcast::Sender<CacheEvent>, path: &str, node: CachedNode) {
    let path = path.to_owned();
    let Some(cached) = nodes.stat(&path) else {
        emit(nodes, events, CacheEvent::Created { path, node });
        return;
    };
    let (czxid, mzxid) = (cached.czxid, cached.mzxid);
    if node.stat.czxid > czxid {
        // Deleted and created again: so were any cached children older than the new node.
        let stale: Vec<String> = nodes
            .descendants(&path)
            .into_iter()
            .filter(|child| {
                nodes
                    .stat(child)
                    .is_some_and(|stat| stat.czxid < node.stat.czxid)
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

/// Removes every cached node for which `keep` is false, reporting each.
fn keep_only(
    nodes: &mut Store,
    events: &broadcast::Sender<CacheEvent>,
    keep: impl Fn(&str) -> bool,
) {
    let gone: Vec<String> = nodes
        .paths()
        .filter(|path| !keep(path))
        .map(str::to_owned)
        .collect();
    // Deepest first, so no node is reported gone before its children.
    for path in gone.iter().rev() {
        remove(nodes, events, path);
    }
}

/// Removes a node and anything cached below it (deepest first), reporting each.
fn remove(nodes: &mut Store, events: &broadcast::Sender<CacheEvent>, path: &str) {
    if nodes.stat(path).is_none() {
        return;
    }
    for child in nodes.descendants(path).iter().rev() {
        remove_one(nodes, events, child);
    }
    remove_one(nodes, events, path);
}

fn remove_one(nodes: &mut Store, events: &broadcast::Sender<CacheEvent>, path: &str) {
    if let Some(node) = nodes.get(path) {
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
