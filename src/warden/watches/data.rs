//! [`Warden::watch_data`]: a node's data, followed for as long as the stream is held.

use bytes::Bytes;
use tracing::{debug, trace};

use super::feed::{self, Feed, Pause, WatchStream};
use crate::client::{Client, OneshotWatcher, SessionId};
use crate::error::{Error, Result};
use crate::proto::Stat;
use crate::warden::handle::Warden;

/// The stream of a data watch ([`Warden::watch_data`]).
pub type DataWatch = WatchStream<DataEvent>;

/// A change to a watched node, as a [`DataWatch`] reports it.
///
/// Each event carries the node's state as read after the change, not the change itself:
/// several changes in quick succession may arrive as one event with the latest state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEvent {
    /// What is there now. Always the first event; sent again after the warden built a new
    /// session, since changes in between went unseen. `generation` is the session's
    /// generation ([`Warden::generation`]); `node` is `None` while the node does not exist.
    Resync {
        /// The generation of the session the state was read on.
        generation: u64,
        /// The node's data and stat, or `None` if it does not exist.
        node: Option<(Bytes, Stat)>,
    },
    /// The node's data was written (possibly with the same bytes).
    Changed {
        /// The data now.
        data: Bytes,
        /// The stat now.
        stat: Stat,
    },
    /// The node was created (or deleted and created again: then a [`DataEvent::Deleted`]
    /// comes first).
    Created {
        /// The data now.
        data: Bytes,
        /// The stat now.
        stat: Stat,
    },
    /// The node was deleted.
    Deleted,
}

impl Warden {
    /// Follows the data of the node at `path` (which need not exist yet).
    ///
    /// The stream starts with [`DataEvent::Resync`] holding the node as it is now, then
    /// reports every write, creation and deletion. It is re-armed after each firing (the
    /// state is read again with a new one-shot watch), kept across reconnections to the same
    /// session, and re-armed on every new session, each time followed by another `Resync`.
    /// Reads that find nothing new (the same modification zxid as the last event) emit
    /// nothing.
    ///
    /// Reads wait for a connection and are retried by the warden's policy; a read that still
    /// fails (for example `NoAuth`) is logged and tried again after a pause that grows from
    /// 100 ms to 5 s. The stream ends when the warden closes, or at once for an invalid path.
    /// Dropping it removes the watch.
    ///
    /// Servers before 3.9 keep one watch mode per path and session: do not combine this with
    /// a [`watch_tree`](Warden::watch_tree) of the same warden rooted at the same path (the
    /// tree would stop hearing about nodes below its root). Below the root is fine.
    pub fn watch_data(&self, path: &str) -> DataWatch {
        feed::start(self, "data", path, follow)
    }
}

/// Where the node stood at the last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    czxid: i64,
    mzxid: i64,
}

impl Mark {
    fn of(stat: &Stat) -> Mark {
        Mark {
            czxid: stat.czxid,
            mzxid: stat.mzxid,
        }
    }
}

/// What the consumer was last told, and on which session.
struct Told {
    session: SessionId,
    node: Option<Mark>,
}

/// The result of one read, with the watch it left.
enum Armed {
    Node(Bytes, Stat, OneshotWatcher),
    Missing(OneshotWatcher),
}

/// Reads the node and leaves a watch: a data watch if it exists, else an exists watch that
/// fires when it is created.
async fn arm(client: Client, path: String) -> Result<Armed> {
    loop {
        match client.get_data_and_watch(&path).await {
            Ok((data, stat, watcher)) => return Ok(Armed::Node(data, stat, watcher)),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
        match client.exists_and_watch(&path).await? {
            (None, watcher) => return Ok(Armed::Missing(watcher)),
            // Created between the two reads: read its data (dropping this watch).
            (Some(_), _) => continue,
        }
    }
}

/// The watch's task: read and arm, report, wait for the watch, again.
async fn follow(warden: Warden, path: String, feed: Feed<DataEvent>) {
    let mut pause = Pause::new();
    let mut told: Option<Told> = None;
    loop {
        let read = warden
            .read_on_session("watch_data", &path, |client| arm(client, path.clone()))
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
            Armed::Node(data, stat, watcher) => (Some((data, stat)), watcher),
            Armed::Missing(watcher) => (None, watcher),
        };
        let mark = node.as_ref().map(|(_, stat)| Mark::of(stat));
        let events = match &told {
            Some(last) if last.session == session => changes(last.node, node),
            _ => vec![DataEvent::Resync {
                generation: warden.generation_of(session).await,
                node,
            }],
        };
        told = Some(Told {
            session,
            node: mark,
        });
        for event in events {
            if !feed.send(event).await {
                return;
            }
        }
        match watcher.await {
            Ok(event) => trace!(event = ?event.event_type, "data watch fired"),
            // The session ended: the next read waits for the new one and resyncs.
            Err(error) => debug!(%error, "data watch ended with its session"),
        }
    }
}

/// The events that take the consumer from `before` to `now` (on one session).
fn changes(before: Option<Mark>, now: Option<(Bytes, Stat)>) -> Vec<DataEvent> {
    match (before, now) {
        (None, None) => vec![],
        (None, Some((data, stat))) => vec![DataEvent::Created { data, stat }],
        (Some(_), None) => vec![DataEvent::Deleted],
        (Some(last), Some((data, stat))) => {
            if last.czxid != stat.czxid {
                vec![DataEvent::Deleted, DataEvent::Created { data, stat }]
            } else if last.mzxid != stat.mzxid {
                vec![DataEvent::Changed { data, stat }]
            } else {
                vec![]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(czxid: i64, mzxid: i64) -> Stat {
        Stat {
            czxid,
            mzxid,
            ..Stat::default()
        }
    }

    fn node(czxid: i64, mzxid: i64) -> Option<(Bytes, Stat)> {
        Some((Bytes::from_static(b"x"), stat(czxid, mzxid)))
    }

    #[test]
    fn same_modification_is_not_reported_again() {
        assert!(changes(Some(Mark::of(&stat(1, 5))), node(1, 5)).is_empty());
        assert!(changes(None, None).is_empty());
    }

    #[test]
    fn transitions_become_events() {
        assert!(matches!(
            changes(Some(Mark::of(&stat(1, 5))), node(1, 6)).as_slice(),
            [DataEvent::Changed { stat, .. }] if stat.mzxid == 6
        ));
        assert!(matches!(
            changes(None, node(7, 7)).as_slice(),
            [DataEvent::Created { .. }]
        ));
        assert_eq!(
            changes(Some(Mark::of(&stat(1, 5))), None),
            vec![DataEvent::Deleted]
        );
        assert!(matches!(
            changes(Some(Mark::of(&stat(1, 5))), node(9, 9)).as_slice(),
            [DataEvent::Deleted, DataEvent::Created { .. }]
        ));
    }
}
