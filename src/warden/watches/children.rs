//! [`Warden::watch_children`]: a node's list of children, followed for as long as the stream
//! is held.

use tracing::{debug, trace};

use super::feed::{self, Feed, Pause, WatchStream};
use crate::client::{Client, OneshotWatcher, SessionId};
use crate::error::{Error, Result};
use crate::warden::handle::Warden;

/// The stream of a children watch ([`Warden::watch_children`]).
pub type ChildrenWatch = WatchStream<ChildrenEvent>;

/// A change to a watched node's children, as a [`ChildrenWatch`] reports it. Child names are
/// sorted.
///
/// Each event carries the list as read after the change: several changes in quick
/// succession may arrive as one event, and a child added and removed in between may never
/// show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildrenEvent {
    /// What is there now. Always the first event; sent again after the warden built a new
    /// session, since changes in between went unseen.
    Resync {
        /// The generation of the session the list was read on ([`Warden::generation`]).
        generation: u64,
        /// The children, or `None` while the node does not exist.
        children: Option<Vec<String>>,
    },
    /// The list of children is now `children`. Also sent when the node is created (then the
    /// list may be empty).
    Changed {
        /// The children now.
        children: Vec<String>,
    },
    /// The node was deleted.
    Deleted,
}

impl Warden {
    /// Follows the children of the node at `path` (which need not exist yet).
    ///
    /// The stream starts with [`ChildrenEvent::Resync`] holding the children as they are
    /// now, then reports every change of the list, the node's deletion, and its creation (as
    /// [`ChildrenEvent::Changed`]). It is re-armed after each firing, kept across
    /// reconnections to the same session, and re-armed on every new session, each time
    /// followed by another `Resync`. Reads that find the same list as the last event emit
    /// nothing.
    ///
    /// Failing reads, closing and dropping behave as for [`Warden::watch_data`]. Servers
    /// before 3.9 keep one watch mode per path and session: after a reconnection, a children
    /// watch on the root path of a [`watch_tree`](Warden::watch_tree) of the same warden hears
    /// nothing more. Watch a tree's root with the tree watch alone.
    pub fn watch_children(&self, path: &str) -> ChildrenWatch {
        feed::start(self, "children", path, follow)
    }
}

/// The node as the consumer last saw it: its creation zxid and sorted children.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    czxid: i64,
    children: Vec<String>,
}

/// What the consumer was last told, and on which session.
struct Told {
    session: SessionId,
    node: Option<Listed>,
}

/// The result of one read, with the watch it left.
enum Armed {
    Node(Listed, OneshotWatcher),
    Missing(OneshotWatcher),
}

/// Lists the children and leaves a child watch, or, while the node is missing, an exists
/// watch that fires when it is created.
async fn arm(client: Client, path: String) -> Result<Armed> {
    loop {
        match client.get_children2_and_watch(&path).await {
            Ok((mut children, stat, watcher)) => {
                children.sort_unstable();
                let listed = Listed {
                    czxid: stat.czxid,
                    children,
                };
                return Ok(Armed::Node(listed, watcher));
            }
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
        match client.exists_and_watch(&path).await? {
            (None, watcher) => return Ok(Armed::Missing(watcher)),
            // Created between the two reads: list it (dropping this watch).
            (Some(_), _) => continue,
        }
    }
}

/// The watch's task: list and arm, report, wait for the watch, again.
async fn follow(warden: Warden, path: String, feed: Feed<ChildrenEvent>) {
    let mut pause = Pause::new();
    let mut told: Option<Told> = None;
    loop {
        let read = warden
            .read_on_session("watch_children", &path, |client| arm(client, path.clone()))
            .await;
        let (session, armed) = match read {
            Ok(read) => {
                pause.reset();
                read
            }
            Err(error) => {
                if pause.after(&warden, &error).await {
                    continue;
                }
                return;
            }
        };
        let (node, watcher) = match armed {
            Armed::Node(listed, watcher) => (Some(listed), watcher),
            Armed::Missing(watcher) => (None, watcher),
        };
        let events = match &told {
            Some(last) if last.session == session => changes(last.node.as_ref(), node.as_ref()),
            _ => vec![ChildrenEvent::Resync {
                generation: warden.generation_of(session).await,
                children: node.as_ref().map(|n| n.children.clone()),
            }],
        };
        told = Some(Told { session, node });
        for event in events {
            if !feed.send(event).await {
                return;
            }
        }
        match watcher.await {
            Ok(event) => trace!(event = ?event.event_type, "children watch fired"),
            // The session ended: the next read waits for the new one and resyncs.
            Err(error) => debug!(%error, "children watch ended with its session"),
        }
    }
}

/// The events that take the consumer from `before` to `now` (on one session).
fn changes(before: Option<&Listed>, now: Option<&Listed>) -> Vec<ChildrenEvent> {
    let changed = |now: &Listed| ChildrenEvent::Changed {
        children: now.children.clone(),
    };
    match (before, now) {
        (None, None) => vec![],
        (None, Some(now)) => vec![changed(now)],
        (Some(_), None) => vec![ChildrenEvent::Deleted],
        (Some(last), Some(now)) if last.czxid != now.czxid => {
            vec![ChildrenEvent::Deleted, changed(now)]
        }
        (Some(last), Some(now)) if last.children != now.children => vec![changed(now)],
        (Some(_), Some(_)) => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(czxid: i64, children: &[&str]) -> Listed {
        Listed {
            czxid,
            children: children.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn same_list_is_not_reported_again() {
        let a = listed(1, &["a", "b"]);
        assert!(changes(Some(&a), Some(&a.clone())).is_empty());
        assert!(changes(None, None).is_empty());
    }

    #[test]
    fn transitions_become_events() {
        let a = listed(1, &["a"]);
        let ab = listed(1, &["a", "b"]);
        assert_eq!(
            changes(Some(&a), Some(&ab)),
            vec![ChildrenEvent::Changed {
                children: ab.children.clone()
            }]
        );
        assert_eq!(changes(Some(&a), None), vec![ChildrenEvent::Deleted]);
        assert_eq!(
            changes(None, Some(&listed(2, &[]))),
            vec![ChildrenEvent::Changed { children: vec![] }]
        );
        assert_eq!(
            changes(Some(&a), Some(&listed(3, &["a"]))),
            vec![
                ChildrenEvent::Deleted,
                ChildrenEvent::Changed {
                    children: vec!["a".into()]
                }
            ]
        );
    }
}
