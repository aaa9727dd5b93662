//! The tree watch on servers without persistent recursive watches (before ZooKeeper 3.6):
//! one-shot watches on every node of the subtree, re-armed after each firing.
//!
//! Every node holds a data watch (`exists`) and a child watch (`getChildren`); a missing root
//! holds an exists watch. A firing is answered by reading the node again with a new watch,
//! and the difference between that read and what was known becomes the consumer's events,
//! the same kinds a recursive watch reports: `Created` (also for every node found under a
//! new child), `Changed`, `Deleted` (children before their parent). A recursive watch never
//! reports child-list changes, and neither does this.
//!
//! Between a firing and its re-arm the node goes unwatched. The re-arming read shows what
//! happened meanwhile: a newer modification zxid becomes one `Changed`, a different creation
//! zxid a `Deleted` and a `Created`, and a child list with names not yet known leads to those
//! children being read and reported. So the consumer ends in the server's state without an
//! extra `Resync`; only changes that cancel out inside the gap (a child created and deleted)
//! go unreported, which leaves no trace in the state either.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use tokio::task::JoinSet;
use tracing::{debug, trace, warn};

use super::feed::{Feed, Pause, Reconnection, reconnection};
use super::tree::{TreeEvent, join};
use crate::client::{Client, OneshotWatcher, WatchedEvent};
use crate::error::{Error, Result};
use crate::proto::{EventType, Stat};
use crate::warden::handle::Warden;

/// How many nodes are read at once (two requests each) while a subtree is listed.
const PIPELINE: usize = 128;

/// The two one-shot watches a node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `exists` with a watch: data writes, deletion, and creation of a missing root.
    Data,
    /// `getChildren` with a watch: children added or removed, deletion.
    Child,
}

/// A one-shot watch that fired, or ended with its session.
struct Fired {
    path: String,
    kind: Kind,
    /// Which arming of the node it belongs to, to ignore watches of a node since deleted.
    token: u64,
    outcome: Result<WatchedEvent>,
}

/// A watched node as last read.
struct Node {
    stat: Stat,
    children: BTreeSet<String>,
    token: u64,
}

/// One read of a node that left both watches, or an exists watch if it is missing.
enum NodeRead {
    Present {
        stat: Stat,
        children: Vec<String>,
        data: OneshotWatcher,
        child: OneshotWatcher,
    },
    Missing(OneshotWatcher),
}

/// Reads the node at `path` and leaves its watches. Both requests are sent before this
/// returns, so many calls pipeline.
fn read_node(client: &Client, path: &str) -> impl Future<Output = Result<NodeRead>> + Send + use<> {
    let client = client.clone();
    let path = path.to_owned();
    // The server answers in order: the child list first, then the stat.
    let mut children = client.get_children2_and_watch(&path);
    let mut exists = client.exists_and_watch(&path);
    async move {
        loop {
            match (children.await, exists.await) {
                (Ok((children, _, child)), Ok((Some(stat), data))) => {
                    return Ok(NodeRead::Present {
                        stat,
                        children,
                        data,
                        child,
                    });
                }
                // Missing, or deleted between the two reads (the child watch has fired).
                (Ok(_) | Err(Error::NoNode), Ok((None, watch))) => {
                    return Ok(NodeRead::Missing(watch));
                }
                // Created between the two reads: read it again.
                (Err(Error::NoNode), Ok((Some(_), _))) => {}
                (Err(e), _) | (_, Err(e)) => return Err(e),
            }
            children = client.get_children2_and_watch(&path);
            exists = client.exists_and_watch(&path);
        }
    }
}

/// The watched subtree and its pending one-shot watches.
struct Armed {
    root: String,
    nodes: BTreeMap<String, Node>,
    /// The token of the exists watch on the root while the root is missing.
    root_missing: Option<u64>,
    watches: JoinSet<Fired>,
    next_token: u64,
}

impl Armed {
    fn new(root: &str) -> Armed {
        Armed {
            root: root.to_owned(),
            nodes: BTreeMap::new(),
            root_missing: None,
            watches: JoinSet::new(),
            next_token: 0,
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Waits for `watcher` in the set of pending watches.
    fn hold(&mut self, path: &str, kind: Kind, token: u64, watcher: OneshotWatcher) {
        let path = path.to_owned();
        self.watches.spawn(async move {
            Fired {
                path,
                kind,
                token,
                outcome: watcher.await,
            }
        });
    }

    /// Path and stat of every watched node.
    fn listing(&self) -> BTreeMap<String, Stat> {
        self.nodes
            .iter()
            .map(|(path, node)| (path.clone(), node.stat))
            .collect()
    }

    /// Reads and watches `start` and every node below it not yet watched, level by level,
    /// pushing a `Created` for each onto `events` (parents first).
    async fn discover(
        &mut self,
        client: &Client,
        start: &str,
        events: &mut Vec<TreeEvent>,
    ) -> Result<()> {
        let mut level = vec![start.to_owned()];
        while !level.is_empty() {
            let mut below = Vec::new();
            for batch in level.chunks(PIPELINE) {
                let reads: Vec<_> = batch
                    .iter()
                    .filter(|path| !self.nodes.contains_key(*path))
                    .map(|path| (path, read_node(client, path)))
                    .collect();
                for (path, read) in reads {
                    match read.await {
                        Ok(NodeRead::Present {
                            stat,
                            children,
                            data,
                            child,
                        }) => {
                            let token = self.token();
                            self.hold(path, Kind::Data, token, data);
                            self.hold(path, Kind::Child, token, child);
                            below.extend(children.iter().map(|c| join(path, c)));
                            let node = Node {
                                stat,
                                children: children.into_iter().collect(),
                                token,
                            };
                            self.nodes.insert(path.clone(), node);
                            events.push(TreeEvent::Created { path: path.clone() });
                        }
                        Ok(NodeRead::Missing(watch)) => {
                            // Below the root, the parent's child watch reports a new node.
                            if *path == self.root {
                                let token = self.token();
                                self.root_missing = Some(token);
                                self.hold(path, Kind::Data, token, watch);
                            }
                        }
                        Err(Error::NoAuth) if *path != self.root => {
                            warn!(%path, "tree watch may not read this node; leaving it out");
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            level = below;
        }
        Ok(())
    }

    /// Forgets `path` and every watched node below it, pushing a `Deleted` for each,
    /// children before parents. Their pending watches are ignored when they fire.
    fn forget(&mut self, path: &str, events: &mut Vec<TreeEvent>) {
        let prefix = if path == "/" {
            "/".to_owned()
        } else {
            format!("{path}/")
        };
        let mut gone: Vec<String> = self
            .nodes
            .keys()
            .filter(|p| *p == path || p.starts_with(&prefix))
            .cloned()
            .collect();
        // Reverse path order puts every node before its parent.
        gone.reverse();
        for path in gone {
            self.nodes.remove(&path);
            events.push(TreeEvent::Deleted { path });
        }
    }

    /// Answers a fired watch: reads the node again with a new watch and returns the events
    /// that take the consumer from what was known to what the read shows.
    async fn on_fired(&mut self, client: &Client, fired: Fired) -> Result<Vec<TreeEvent>> {
        let event = fired.outcome?;
        trace!(path = %fired.path, event = ?event.event_type, kind = ?fired.kind, "one-shot watch fired");
        let mut events = Vec::new();
        if fired.path == self.root && self.root_missing == Some(fired.token) {
            self.root_missing = None;
            let root = self.root.clone();
            self.discover(client, &root, &mut events).await?;
            return Ok(events);
        }
        let Some(node) = self.nodes.get(&fired.path) else {
            return Ok(events);
        };
        if node.token != fired.token {
            // A watch of an earlier incarnation of the node.
            return Ok(events);
        }
        let (czxid, mzxid, token) = (node.stat.czxid, node.stat.mzxid, node.token);
        let path = fired.path;
        match fired.kind {
            Kind::Data => match client.exists_and_watch(&path).await? {
                (Some(stat), watch) if stat.czxid == czxid => {
                    self.hold(&path, Kind::Data, token, watch);
                    if stat.mzxid != mzxid || event.event_type == EventType::NodeDataChanged {
                        events.push(TreeEvent::Changed { path: path.clone() });
                    }
                    if let Some(node) = self.nodes.get_mut(&path) {
                        node.stat = stat;
                    }
                }
                (Some(_), _) => self.recreated(client, &path, &mut events).await?,
                (None, watch) => self.gone(&path, watch, &mut events),
            },
            Kind::Child => match client.get_children2_and_watch(&path).await {
                Ok((children, stat, watch)) if stat.czxid == czxid => {
                    self.hold(&path, Kind::Child, token, watch);
                    let now: BTreeSet<String> = children.into_iter().collect();
                    let before = match self.nodes.get_mut(&path) {
                        Some(node) => std::mem::replace(&mut node.children, now.clone()),
                        None => BTreeSet::new(),
                    };
                    for name in before.difference(&now) {
                        self.forget(&join(&path, name), &mut events);
                    }
                    // Not yet watched: new, or deleted and created again since.
                    for name in &now {
                        let child = join(&path, name);
                        if !self.nodes.contains_key(&child) {
                            self.discover(client, &child, &mut events).await?;
                        }
                    }
                }
                Ok(_) => self.recreated(client, &path, &mut events).await?,
                Err(Error::NoNode) => {
                    let (found, watch) = client.exists_and_watch(&path).await?;
                    match found {
                        Some(_) => self.recreated(client, &path, &mut events).await?,
                        None => self.gone(&path, watch, &mut events),
                    }
                }
                Err(e) => return Err(e),
            },
        }
        Ok(events)
    }

    /// The node at `path` was deleted and created again since it was last read.
    async fn recreated(
        &mut self,
        client: &Client,
        path: &str,
        events: &mut Vec<TreeEvent>,
    ) -> Result<()> {
        self.forget(path, events);
        self.discover(client, path, events).await
    }

    /// The node at `path` is gone; `watch` is an exists watch on it.
    fn gone(&mut self, path: &str, watch: OneshotWatcher, events: &mut Vec<TreeEvent>) {
        self.forget(path, events);
        if path == self.root {
            let token = self.token();
            self.root_missing = Some(token);
            self.hold(path, Kind::Data, token, watch);
        }
    }
}

/// The tree watch's task in one-shot mode: list the subtree while arming every node's
/// watches, report it as a `Resync`, answer firings; list again after a reconnection, on a
/// new session, or when a read fails.
pub(super) async fn follow(warden: Warden, root: String, feed: Feed<TreeEvent>) {
    let mut pause = Pause::new();
    // The watches of the last listing stay set until the next listing has set its own, so
    // that the session does not remove them from the server in between.
    let mut armed: Option<Armed> = None;
    loop {
        let listed = warden
            .read_on_session("watch_tree_list", &root, |client| {
                let root = root.clone();
                async move {
                    let status = client.state();
                    let connections = status.borrow().connections;
                    let mut fresh = Armed::new(&root);
                    fresh.discover(&client, &root, &mut Vec::new()).await?;
                    Ok((client, status, connections, fresh))
                }
            })
            .await;
        let (session, (client, mut status, connections, fresh)) = match listed {
            Ok(listed) => {
                pause.reset();
                listed
            }
            Err(error) => {
                if pause.after(&warden, &error).await {
                    continue;
                }
                return;
            }
        };
        let tree = armed.insert(fresh);
        let resync = TreeEvent::Resync {
            generation: warden.generation_of(session).await,
            nodes: tree.listing(),
        };
        if !feed.send(resync).await {
            return;
        }
        let mut status_open = true;
        loop {
            tokio::select! {
                biased;
                fired = tree.watches.join_next(), if !tree.watches.is_empty() => {
                    let Some(Ok(fired)) = fired else {
                        continue;
                    };
                    match tree.on_fired(&client, fired).await {
                        Ok(events) => {
                            for event in events {
                                if !feed.send(event).await {
                                    return;
                                }
                            }
                        }
                        Err(error) => {
                            debug!(%error, "one-shot tree watch lost track; listing again");
                            // A lost connection or session needs no pause: the new
                            // listing waits for the warden's next session anyway.
                            let connection_gone = error.is_retryable() || error.is_session_terminal();
                            if !connection_gone && !pause.after(&warden, &error).await {
                                return;
                            }
                            break;
                        }
                    }
                }
                reconnected = reconnection(&mut status, connections), if status_open => {
                    match reconnected {
                        Reconnection::Reconnected => break,
                        Reconnection::ClientGone => status_open = false,
                    }
                }
                else => {
                    // Nothing left to wait for: the session's client is gone.
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed_with(paths: &[&str]) -> Armed {
        let mut armed = Armed::new("/r");
        for path in paths {
            let node = Node {
                stat: Stat::default(),
                children: BTreeSet::new(),
                token: 0,
            };
            armed.nodes.insert((*path).to_owned(), node);
        }
        armed
    }

    #[test]
    fn forgetting_a_node_reports_its_children_first() {
        let mut armed = armed_with(&["/r", "/r/a", "/r/a/b", "/r/a/b/c", "/r/a-x", "/r/ab"]);
        let mut events = Vec::new();
        armed.forget("/r/a", &mut events);
        let deleted: Vec<String> = events
            .into_iter()
            .map(|event| match event {
                TreeEvent::Deleted { path } => path,
                other => panic!("expected Deleted, got {other:?}"),
            })
            .collect();
        assert_eq!(deleted, ["/r/a/b/c", "/r/a/b", "/r/a"]);
        let left: Vec<&String> = armed.nodes.keys().collect();
        assert_eq!(left, ["/r", "/r/a-x", "/r/ab"]);
    }

    #[test]
    fn forgetting_the_root_path_forgets_everything() {
        let mut armed = armed_with(&["/", "/a", "/a/b"]);
        armed.root = "/".to_owned();
        let mut events = Vec::new();
        armed.forget("/", &mut events);
        assert_eq!(events.len(), 3);
        assert!(armed.nodes.is_empty());
    }
}
