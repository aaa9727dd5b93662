//! [`Warden::watch_tree`]: every node at and below a path, followed for as long as the
//! stream is held.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::watch;
use tracing::{info, warn};

use super::fallback;
use super::feed::{self, Feed, Pause, Reconnection, WatchStream};
use crate::client::{Client, PersistentWatcher, SessionId, SessionStatus, WatchedEvent};
use crate::error::{Error, Result};
use crate::proto::{AddWatchMode, EventType, Stat};
use crate::warden::handle::Warden;

/// How many reads of a listing are in flight at once.
const PIPELINE: usize = 256;

/// The stream of a tree watch ([`Warden::watch_tree`]).
pub type TreeWatch = WatchStream<TreeEvent>;

/// A change in a watched subtree, as a [`TreeWatch`] reports it.
///
/// Apart from `Resync`, events are the server's notifications as they come, without further
/// reads: they name the node, not its new state. Paths are absolute (within the warden's
/// namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    /// Every node of the subtree now, the root included if it exists. Always the first
    /// event; sent again whenever changes may have gone unseen: after a new session, and
    /// after a reconnection to the same session (the server does not replay the changes a
    /// persistent watch missed while disconnected).
    Resync {
        /// The generation of the session the subtree was read on ([`Warden::generation`]).
        generation: u64,
        /// Path and stat of every node of the subtree.
        nodes: BTreeMap<String, Stat>,
    },
    /// A node was created.
    Created {
        /// The node.
        path: String,
    },
    /// A node's data was written.
    Changed {
        /// The node.
        path: String,
    },
    /// A node was deleted.
    Deleted {
        /// The node.
        path: String,
    },
}

impl Warden {
    /// Follows every node at and below `path` (which need not exist yet), with a persistent
    /// recursive watch (ZooKeeper 3.6+).
    ///
    /// The stream starts with [`TreeEvent::Resync`] listing the subtree as it is now, then
    /// reports creations, data writes and deletions anywhere in it. The watch is kept across
    /// reconnections and re-added on every new session; either way the subtree is listed
    /// again and another `Resync` follows.
    ///
    /// A listing runs while the watch is already armed, so an event that arrives during it
    /// may repeat what the following `Resync` already shows (a `Created` of a node it lists,
    /// a `Deleted` of one it does not): apply events idempotently. Servers that stamp
    /// notifications with their zxid (3.9+) let the watch drop such repeats.
    ///
    /// The wire client queues this watch's notifications without bound while the consumer
    /// (and so the watch's task) falls behind; the session itself never waits for it.
    ///
    /// Failing reads, closing and dropping behave as for [`Warden::watch_data`].
    ///
    /// On servers before 3.6, which answer `addWatch` with `Unimplemented`, the watch falls
    /// back to one-shot watches: a data watch and a child watch on every node of the subtree,
    /// re-armed after each firing. The stream carries the same events (children found
    /// through a child watch arrive as `Created`, with everything already below them), and
    /// the warden remembers the answer, so its later tree watches start in that mode. Changes
    /// made while a node's watch is being re-armed arrive folded together (several writes as
    /// one `Changed`; a child created and deleted again not at all), and the mode costs two
    /// watches per node on the server.
    ///
    /// Servers before 3.9 keep one watch mode per path and session, so on them do not combine
    /// this with a [`watch_data`](Warden::watch_data) or
    /// [`watch_children`](Warden::watch_children) of the same warden on the root path: the
    /// modes overwrite each other and one of the watches falls silent. Watches below the root
    /// are fine, and this watch already reports what those two would.
    pub fn watch_tree(&self, path: &str) -> TreeWatch {
        feed::start(self, "tree", path, |warden, root, feed| {
            follow(warden, root, feed, true)
        })
    }

    /// As [`watch_tree`](Warden::watch_tree), but without the listing: each
    /// [`TreeEvent::Resync`] comes with `nodes` empty, and the consumer reads the subtree
    /// itself once it has it (on the session the `generation` names, or a later one, which
    /// brings its own `Resync`). For consumers that read every node anyway, such as a cache
    /// reading data and stat together, this saves one request per node.
    ///
    /// On servers before 3.6 (the one-shot fallback described at `watch_tree`) the watch needs
    /// the listing to arm a watch on every node, and `Resync` carries it as `watch_tree` does.
    pub fn watch_tree_unlisted(&self, path: &str) -> TreeWatch {
        feed::start(self, "tree", path, |warden, root, feed| {
            follow(warden, root, feed, false)
        })
    }
}

/// The watch's task: add the recursive watch, list, report, forward; list again after a
/// reconnection; add the watch again when its stream ends. Without `listed`, the
/// `Resync` events come empty (see [`Warden::watch_tree_unlisted`]).
async fn follow(warden: Warden, root: String, feed: Feed<TreeEvent>, listed: bool) {
    let mut tree = Tree {
        warden,
        root,
        feed,
        pause: Pause::new(),
        zxids_known: true,
        listed,
    };
    loop {
        let support = &tree.warden.inner.watch_support;
        if support.recursive_unsupported() {
            return fallback::follow(tree.warden, tree.root, tree.feed).await;
        }
        let pretending = support.pretending();
        let armed = tree
            .warden
            .read_on_session("watch_tree", &tree.root, |client| {
                let status = client.state();
                // Under the test hook nothing is sent, and the answer is what a server
                // before 3.6 gives.
                let adding = (!pretending)
                    .then(|| client.add_watch(&tree.root, AddWatchMode::PersistentRecursive));
                async move {
                    match adding {
                        Some(adding) => Ok((adding.await?, status)),
                        None => Err(Error::Unimplemented),
                    }
                }
            })
            .await;
        let (session, (watcher, mut status)) = match armed {
            Ok(armed) => armed,
            Err(Error::Unimplemented) => {
                info!(
                    "server does not take persistent recursive watches (before 3.6); following the tree with one-shot watches"
                );
                tree.warden.inner.watch_support.mark_recursive_unsupported();
                continue;
            }
            Err(error) => {
                if tree.pause.after(&tree.warden, &error).await {
                    continue;
                }
                return;
            }
        };
        let Some(forwarded) = tree.forward(session, watcher, &mut status).await else {
            return;
        };
        if status.borrow().state.is_connected() {
            // The watch was removed on the server while the session lives on: add it back,
            // but not in a tight loop if someone keeps removing it.
            warn!("recursive watch removed on the server; adding it again");
            if forwarded == 0 {
                tokio::time::sleep(tree.pause.wait()).await;
            }
        }
    }
}

/// The state of a tree watch's task.
struct Tree {
    warden: Warden,
    root: String,
    feed: Feed<TreeEvent>,
    pause: Pause,
    /// Whether the server stamps notifications with their zxid: assumed until it shows it
    /// does not.
    zxids_known: bool,
    /// Whether `Resync` carries the listing (otherwise the consumer reads the tree itself).
    listed: bool,
}

impl Tree {
    /// Lists the subtree and forwards the events of `watcher` (armed on `session`) until
    /// its stream ends; lists again after every reconnection. Returns how many events it
    /// forwarded, or `None` when the watch should end.
    async fn forward(
        &mut self,
        session: SessionId,
        mut watcher: PersistentWatcher,
        status: &mut watch::Receiver<SessionStatus>,
    ) -> Option<u64> {
        let mut forwarded = 0u64;
        let mut status_open = true;
        loop {
            let connections = status.borrow_and_update().connections;
            let nodes = match self.list(session).await {
                Ok(Some(nodes)) => {
                    self.pause.reset();
                    nodes
                }
                // A new session: the watch died with the old one.
                Ok(None) => return Some(forwarded),
                Err(error) => {
                    if self.pause.after(&self.warden, &error).await {
                        continue;
                    }
                    return None;
                }
            };
            let mut shown = Shown::new(&nodes, self.zxids_known);
            let resync = TreeEvent::Resync {
                generation: self.warden.generation_of(session).await,
                nodes,
            };
            if !self.feed.send(resync).await {
                return None;
            }
            loop {
                tokio::select! {
                    biased;
                    event = watcher.next() => {
                        // The stream ends with the session, or when the watch was removed.
                        let Some(event) = event else {
                            return Some(forwarded);
                        };
                        if event.zxid <= 0 {
                            self.zxids_known = false;
                        }
                        if shown.covers(&event) {
                            continue;
                        }
                        let Some(event) = translate(event) else {
                            continue;
                        };
                        if !self.feed.send(event).await {
                            return None;
                        }
                        forwarded += 1;
                    }
                    reconnected = feed::reconnection(status, connections), if status_open => {
                        match reconnected {
                            Reconnection::Reconnected => break,
                            // The watch's stream ends with the client.
                            Reconnection::ClientGone => status_open = false,
                        }
                    }
                }
            }
        }
    }

    /// The subtree as read on `session`, or `None` if that session is no longer the
    /// warden's.
    async fn list(&self, session: SessionId) -> Result<Option<BTreeMap<String, Stat>>> {
        let listing = self
            .warden
            .read_on_session("watch_tree_list", &self.root, |client| {
                let root = self.root.clone();
                let listed = self.listed;
                async move {
                    // The listing only goes with the watch if it ran on the watch's session.
                    if client.session_id() != session {
                        return Ok(None);
                    }
                    if !listed {
                        return Ok(Some(BTreeMap::new()));
                    }
                    list(&client, &root).await.map(Some)
                }
            })
            .await?;
        Ok(listing.1)
    }
}

/// The consumer's event for a notification of the recursive watch.
fn translate(event: WatchedEvent) -> Option<TreeEvent> {
    let path = event.path;
    match event.event_type {
        EventType::NodeCreated => Some(TreeEvent::Created { path }),
        EventType::NodeDataChanged => Some(TreeEvent::Changed { path }),
        EventType::NodeDeleted => Some(TreeEvent::Deleted { path }),
        // Removal ends the stream; nothing else reaches a recursive watch.
        _ => None,
    }
}

/// Reads every node at and below `root`, level by level, each level's reads pipelined.
/// Nodes deleted while it reads, and nodes below the root it may not read, are left out.
async fn list(client: &Client, root: &str) -> Result<BTreeMap<String, Stat>> {
    let mut nodes = BTreeMap::new();
    let mut level = vec![root.to_owned()];
    while !level.is_empty() {
        let mut below = Vec::new();
        for batch in level.chunks(PIPELINE) {
            // Each request is sent when it is made, so the whole batch is in flight before
            // the first reply is awaited.
            let replies: Vec<_> = batch
                .iter()
                .map(|path| client.get_children2(path))
                .collect();
            for (path, reply) in batch.iter().zip(replies) {
                match reply.await {
                    Ok((children, stat)) => {
                        below.extend(children.iter().map(|child| join(path, child)));
                        nodes.insert(path.clone(), stat);
                    }
                    // Deleted since its parent was read (its event follows).
                    Err(Error::NoNode) => {}
                    // A node below the root that this session may not read: leave it (and
                    // what is below it) out rather than fail the whole listing.
                    Err(Error::NoAuth) if path != root => {
                        warn!(%path, "tree watch may not read this node; leaving it out");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        level = below;
    }
    Ok(nodes)
}

pub(super) fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// The creation and modification zxids of each node in the last listing, to drop events
/// that the listing already reflects. Only servers that stamp notifications with their zxid
/// allow this; for others it stays empty.
struct Shown {
    marks: HashMap<String, (i64, i64)>,
}

impl Shown {
    fn new(nodes: &BTreeMap<String, Stat>, zxids_known: bool) -> Shown {
        let marks = if zxids_known {
            nodes
                .iter()
                .map(|(path, stat)| (path.clone(), (stat.czxid, stat.mzxid)))
                .collect()
        } else {
            HashMap::new()
        };
        Shown { marks }
    }

    /// Whether the listing already shows `event`'s effect. Once an event for a node is not
    /// covered, no later one is either, so the node is forgotten.
    fn covers(&mut self, event: &WatchedEvent) -> bool {
        if self.marks.is_empty() {
            return false;
        }
        if event.zxid <= 0 {
            self.marks = HashMap::new();
            return false;
        }
        let Some(&(czxid, mzxid)) = self.marks.get(&event.path) else {
            return false;
        };
        let covered = match event.event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => mzxid >= event.zxid,
            // The listing shows a node created after this deletion.
            EventType::NodeDeleted => czxid > event.zxid,
            _ => false,
        };
        if !covered {
            self.marks.remove(&event.path);
        }
        covered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: EventType, path: &str, zxid: i64) -> WatchedEvent {
        WatchedEvent {
            event_type,
            path: path.to_owned(),
            zxid,
        }
    }

    fn listing(nodes: &[(&str, i64, i64)]) -> BTreeMap<String, Stat> {
        nodes
            .iter()
            .map(|&(path, czxid, mzxid)| {
                let stat = Stat {
                    czxid,
                    mzxid,
                    ..Stat::default()
                };
                (path.to_owned(), stat)
            })
            .collect()
    }

    #[test]
    fn joins_paths() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn events_the_listing_shows_are_dropped() {
        let nodes = listing(&[("/r", 1, 4), ("/r/a", 5, 5)]);
        let mut shown = Shown::new(&nodes, true);
        assert!(shown.covers(&event(EventType::NodeCreated, "/r/a", 5)));
        assert!(shown.covers(&event(EventType::NodeDataChanged, "/r", 4)));
        // Newer than the listing: passes, and so does everything after it for that node.
        assert!(!shown.covers(&event(EventType::NodeDataChanged, "/r", 6)));
        assert!(!shown.covers(&event(EventType::NodeDataChanged, "/r", 3)));
        // Not in the listing: passes.
        assert!(!shown.covers(&event(EventType::NodeDeleted, "/r/b", 2)));
        // A deletion before the listed node's creation is shown by it.
        assert!(shown.covers(&event(EventType::NodeDeleted, "/r/a", 3)));
        assert!(!shown.covers(&event(EventType::NodeDeleted, "/r/a", 7)));
    }

    #[test]
    fn without_zxids_nothing_is_dropped() {
        let nodes = listing(&[("/r", 1, 4)]);
        let mut shown = Shown::new(&nodes, true);
        assert!(!shown.covers(&event(EventType::NodeDataChanged, "/r", -1)));
        assert!(!shown.covers(&event(EventType::NodeDataChanged, "/r", 2)));
        let mut unknown = Shown::new(&nodes, false);
        assert!(!unknown.covers(&event(EventType::NodeDataChanged, "/r", 2)));
    }

    #[test]
    fn notifications_map_to_events() {
        assert_eq!(
            translate(event(EventType::NodeCreated, "/a", -1)),
            Some(TreeEvent::Created { path: "/a".into() })
        );
        assert_eq!(
            translate(event(EventType::NodeDataChanged, "/a", -1)),
            Some(TreeEvent::Changed { path: "/a".into() })
        );
        assert_eq!(
            translate(event(EventType::NodeDeleted, "/a", -1)),
            Some(TreeEvent::Deleted { path: "/a".into() })
        );
        assert_eq!(
            translate(event(EventType::PersistentWatchRemoved, "/a", -1)),
            None
        );
    }
}
