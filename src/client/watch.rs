//! Watches: the handles user code holds, and the registry the session task keeps.
//!
//! A one-shot watch ([`OneshotWatcher`]) is a future that resolves with the first event; a
//! persistent watch ([`PersistentWatcher`]) is a stream of events. Both unregister themselves
//! when dropped, and the session removes the watch from the server once no local watcher of
//! that kind is left on the path.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use super::command::Command;
use super::server_watches::{Cover, Needs};
use crate::error::{Error, Result};
use crate::proto::{AddWatchMode, EventType, WatcherType};

/// A change to a watched node, as delivered to user code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The node it happened to (relative to the chroot).
    pub path: String,
    /// The zxid the server stamped on the notification (`-1` when it sent none).
    pub zxid: i64,
}

/// The kinds of watch the registry tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum WatchKind {
    /// Set by `get_data`, or by `exists` on a node that exists.
    Data,
    /// Set by `exists` on a node that does not exist.
    Exist,
    /// Set by `get_children`.
    Child,
    /// Added by `add_watch` in persistent mode.
    Persistent,
    /// Added by `add_watch` in recursive mode.
    Recursive,
}

impl WatchKind {
    pub(crate) fn from_mode(mode: AddWatchMode) -> WatchKind {
        match mode {
            AddWatchMode::Persistent => WatchKind::Persistent,
            AddWatchMode::PersistentRecursive => WatchKind::Recursive,
        }
    }
}

/// Where a fired watch goes.
#[derive(Debug)]
pub(crate) enum WatchSink {
    Oneshot(oneshot::Sender<Result<WatchedEvent>>),
    Stream(mpsc::UnboundedSender<WatchedEvent>),
}

impl WatchSink {
    /// Whether the handle that would receive the events is gone.
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            WatchSink::Oneshot(tx) => tx.is_closed(),
            WatchSink::Stream(tx) => tx.is_closed(),
        }
    }
}

/// Asks the session task to forget watch `id` when its handle is dropped.
#[derive(Debug)]
struct Unregister {
    id: u64,
    kind: WatchKind,
    server_path: String,
    commands: Option<mpsc::WeakUnboundedSender<Command>>,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some(commands) = self.commands.take().and_then(|c| c.upgrade()) {
            // If the task is gone there is nothing to unregister.
            let _ = commands.send(Command::Unwatch {
                id: self.id,
                kind: self.kind,
                server_path: std::mem::take(&mut self.server_path),
            });
        }
    }
}

/// A one-shot watch: resolves with the first event on its node.
///
/// Resolves to an error if the session ends first ([`Error::SessionExpired`],
/// [`Error::AuthFailed`] or [`Error::Closed`]). Dropping it before it fires unregisters it.
#[derive(Debug)]
#[must_use = "a watch does nothing unless awaited; dropping it removes it"]
pub struct OneshotWatcher {
    rx: oneshot::Receiver<Result<WatchedEvent>>,
    unregister: Option<Unregister>,
}

impl OneshotWatcher {
    pub(crate) fn new(
        id: u64,
        kind: WatchKind,
        server_path: String,
        rx: oneshot::Receiver<Result<WatchedEvent>>,
        commands: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        OneshotWatcher {
            rx,
            unregister: Some(Unregister {
                id,
                kind,
                server_path,
                commands: Some(commands),
            }),
        }
    }
}

impl Future for OneshotWatcher {
    type Output = Result<WatchedEvent>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = match Pin::new(&mut self.rx).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(outcome)) => outcome,
            Poll::Ready(Err(_)) => Err(Error::Closed),
        };
        // Fired: the server has already forgotten it, so there is nothing to unregister.
        if let Some(mut unregister) = self.unregister.take() {
            unregister.commands = None;
        }
        Poll::Ready(outcome)
    }
}

/// A persistent (or persistent recursive) watch: a stream of events that lasts until the
/// handle is dropped or the session ends (then the stream ends).
#[derive(Debug)]
#[must_use = "dropping a persistent watcher removes the watch"]
pub struct PersistentWatcher {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
    _unregister: Unregister,
}

impl PersistentWatcher {
    pub(crate) fn new(
        id: u64,
        kind: WatchKind,
        server_path: String,
        rx: mpsc::UnboundedReceiver<WatchedEvent>,
        commands: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        PersistentWatcher {
            rx,
            _unregister: Unregister {
                id,
                kind,
                server_path,
                commands: Some(commands),
            },
        }
    }

    /// The next event, or `None` once the session has ended or the watch was removed.
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for PersistentWatcher {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// One registered watcher.
#[derive(Debug)]
struct Entry {
    id: u64,
    sink: WatchSink,
}

/// Every watch the session holds, keyed by server-side path.
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    data: HashMap<String, Vec<Entry>>,
    exist: HashMap<String, Vec<Entry>>,
    child: HashMap<String, Vec<Entry>>,
    persistent: HashMap<String, Vec<Entry>>,
    recursive: HashMap<String, Vec<Entry>>,
}

impl WatchRegistry {
    fn map(&mut self, kind: WatchKind) -> &mut HashMap<String, Vec<Entry>> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::Recursive => &mut self.recursive,
        }
    }

    /// Adds a watcher (after the server confirmed it by replying).
    pub(crate) fn register(
        &mut self,
        kind: WatchKind,
        server_path: String,
        id: u64,
        sink: WatchSink,
    ) {
        self.map(kind)
            .entry(server_path)
            .or_default()
            .push(Entry { id, sink });
    }

    /// Removes watcher `id`; returns whether it was registered. What the server must then
    /// change is decided by [`ServerWatches`](super::server_watches::ServerWatches).
    pub(crate) fn unregister(&mut self, id: u64, kind: WatchKind, server_path: &str) -> bool {
        // An exists watch becomes a data or an exist watch depending on the reply; look in both.
        if kind == WatchKind::Data && !self.contains(WatchKind::Data, server_path, id) {
            return self.unregister_exact(id, WatchKind::Exist, server_path);
        }
        self.unregister_exact(id, kind, server_path)
    }

    fn contains(&mut self, kind: WatchKind, server_path: &str, id: u64) -> bool {
        self.map(kind)
            .get(server_path)
            .is_some_and(|entries| entries.iter().any(|e| e.id == id))
    }

    fn unregister_exact(&mut self, id: u64, kind: WatchKind, server_path: &str) -> bool {
        let map = self.map(kind);
        let Some(entries) = map.get_mut(server_path) else {
            return false;
        };
        let before = entries.len();
        entries.retain(|e| e.id != id);
        let removed = entries.len() != before;
        if entries.is_empty() {
            map.remove(server_path);
        }
        removed
    }

    /// What the watchers registered on exactly this path need from the server.
    pub(crate) fn needs(&self, server_path: &str) -> Needs {
        let mut needs = Needs::default();
        for (kind, map) in [
            (WatchKind::Data, &self.data),
            (WatchKind::Exist, &self.exist),
            (WatchKind::Child, &self.child),
            (WatchKind::Persistent, &self.persistent),
            (WatchKind::Recursive, &self.recursive),
        ] {
            if map.contains_key(server_path) {
                needs.add(kind);
            }
        }
        needs
    }

    /// The persistent and recursive watches, as the modes a watch restore sets on the server.
    pub(crate) fn covers(&self) -> impl Iterator<Item = (String, Cover)> + '_ {
        let persistent = self
            .persistent
            .keys()
            .map(|p| (p.clone(), Cover::Persistent));
        let recursive = self.recursive.keys().map(|p| (p.clone(), Cover::Recursive));
        persistent.chain(recursive)
    }

    /// Tells the child-list watchers of `server_path` (one-shot child watches and persistent
    /// watches) of a child-list change the server did not report itself: it holds a recursive
    /// entry there, which reports the child's creation or deletion instead.
    pub(crate) fn dispatch_child_list(&mut self, server_path: &str, event: &WatchedEvent) {
        self.fire_oneshots(WatchKind::Child, server_path, event);
        fire_streams(&mut self.persistent, server_path, event);
    }

    /// Removes every local watcher of `kind` on a path, telling each it was removed.
    pub(crate) fn remove_all(
        &mut self,
        server_path: &str,
        watcher_type: WatcherType,
        client_path: &str,
    ) {
        let kinds: &[WatchKind] = match watcher_type {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::Recursive],
            WatcherType::Any => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::Recursive,
            ],
        };
        for &kind in kinds {
            let event_type = match kind {
                WatchKind::Child => EventType::ChildWatchRemoved,
                WatchKind::Data | WatchKind::Exist => EventType::DataWatchRemoved,
                WatchKind::Persistent | WatchKind::Recursive => EventType::PersistentWatchRemoved,
            };
            if let Some(entries) = self.map(kind).remove(server_path) {
                let event = WatchedEvent {
                    event_type,
                    path: client_path.to_owned(),
                    zxid: -1,
                };
                for entry in entries {
                    deliver(entry.sink, &event);
                }
            }
        }
    }

    /// Delivers a node event to every watcher it triggers, following the server's rules:
    /// data and exists watches fire on create, change and delete; child watches on child
    /// changes and delete; persistent watches on any event at their node; recursive watches
    /// on create, change and delete at or below their node.
    pub(crate) fn dispatch(
        &mut self,
        event_type: EventType,
        server_path: &str,
        event: &WatchedEvent,
    ) {
        let (data, child, recursive) = match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => (true, false, true),
            EventType::NodeChildrenChanged => (false, true, false),
            EventType::NodeDeleted => (true, true, true),
            _ => return,
        };
        if data {
            self.fire_oneshots(WatchKind::Data, server_path, event);
            self.fire_oneshots(WatchKind::Exist, server_path, event);
        }
        if child {
            self.fire_oneshots(WatchKind::Child, server_path, event);
        }
        fire_streams(&mut self.persistent, server_path, event);
        if recursive && !self.recursive.is_empty() {
            let mut prefix = server_path;
            loop {
                fire_streams(&mut self.recursive, prefix, event);
                if prefix == "/" {
                    break;
                }
                prefix = match prefix.rfind('/') {
                    Some(0) => "/",
                    Some(i) => &prefix[..i],
                    None => break,
                };
            }
        }
    }

    fn fire_oneshots(&mut self, kind: WatchKind, server_path: &str, event: &WatchedEvent) {
        if let Some(entries) = self.map(kind).remove(server_path) {
            for entry in entries {
                deliver(entry.sink, event);
            }
        }
    }

    /// Ends every watcher: one-shots receive `cause`, streams end.
    pub(crate) fn fail_all(&mut self, cause: &Error) {
        for map in [
            &mut self.data,
            &mut self.exist,
            &mut self.child,
            &mut self.persistent,
            &mut self.recursive,
        ] {
            // In path order: the order the watchers wake in must not depend on the map's
            // hash keys (a simulation replays a seed exactly).
            let mut all: Vec<(String, Vec<Entry>)> = map.drain().collect();
            all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (_, entries) in all {
                for entry in entries {
                    if let WatchSink::Oneshot(tx) = entry.sink {
                        let _ = tx.send(Err(cause.clone()));
                    }
                }
            }
        }
    }

    /// Drops watchers whose handles are gone (a one-shot whose receiver was dropped without
    /// the drop message arriving yet is harmless, but this keeps the maps lean).
    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    /// The paths to re-register with SetWatches2, per kind.
    pub(crate) fn paths(&self) -> WatchPaths {
        // Sorted: the order reaches the server, and a simulation must replay it exactly.
        let keys = |m: &HashMap<String, Vec<Entry>>| {
            let mut keys = m.keys().cloned().collect::<Vec<_>>();
            keys.sort_unstable();
            keys
        };
        WatchPaths {
            data: keys(&self.data),
            exist: keys(&self.exist),
            child: keys(&self.child),
            persistent: keys(&self.persistent),
            recursive: keys(&self.recursive),
        }
    }
}

/// Server paths with watches, per kind.
#[derive(Debug, Default)]
pub(crate) struct WatchPaths {
    pub data: Vec<String>,
    pub exist: Vec<String>,
    pub child: Vec<String>,
    pub persistent: Vec<String>,
    pub recursive: Vec<String>,
}

fn deliver(sink: WatchSink, event: &WatchedEvent) {
    match sink {
        WatchSink::Oneshot(tx) => {
            let _ = tx.send(Ok(event.clone()));
        }
        WatchSink::Stream(tx) => {
            let _ = tx.send(event.clone());
        }
    }
}

fn fire_streams(map: &mut HashMap<String, Vec<Entry>>, server_path: &str, event: &WatchedEvent) {
    if let Some(entries) = map.get(server_path) {
        for entry in entries {
            if let WatchSink::Stream(tx) = &entry.sink {
                let _ = tx.send(event.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: EventType, path: &str) -> WatchedEvent {
        WatchedEvent {
            event_type: t,
            path: path.into(),
            zxid: 1,
        }
    }

    #[test]
    fn recursive_watch_sees_descendants_but_not_child_list_changes() {
        let mut reg = WatchRegistry::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        reg.register(WatchKind::Recursive, "/a".into(), 1, WatchSink::Stream(tx));
        reg.dispatch(
            EventType::NodeCreated,
            "/a/b/c",
            &event(EventType::NodeCreated, "/a/b/c"),
        );
        reg.dispatch(
            EventType::NodeChildrenChanged,
            "/a",
            &event(EventType::NodeChildrenChanged, "/a"),
        );
        reg.dispatch(
            EventType::NodeDataChanged,
            "/ab",
            &event(EventType::NodeDataChanged, "/ab"),
        );
        assert_eq!(rx.try_recv().unwrap().path, "/a/b/c");
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn oneshot_fires_once_and_unregister_reports_server_removal() {
        let mut reg = WatchRegistry::default();
        let (tx, mut rx) = oneshot::channel();
        reg.register(WatchKind::Data, "/x".into(), 1, WatchSink::Oneshot(tx));
        reg.dispatch(
            EventType::NodeDataChanged,
            "/x",
            &event(EventType::NodeDataChanged, "/x"),
        );
        assert!(rx.try_recv().unwrap().is_ok());
        assert!(reg.is_empty());

        let (tx1, _rx1) = oneshot::channel();
        let (tx2, _rx2) = oneshot::channel();
        reg.register(WatchKind::Data, "/y".into(), 2, WatchSink::Oneshot(tx1));
        reg.register(WatchKind::Exist, "/y".into(), 3, WatchSink::Oneshot(tx2));
        assert!(reg.unregister(2, WatchKind::Data, "/y"));
        assert_eq!(
            reg.needs("/y"),
            Needs {
                data: true,
                ..Needs::default()
            }
        );
        assert!(reg.unregister(3, WatchKind::Exist, "/y"));
        assert!(!reg.unregister(3, WatchKind::Exist, "/y"));
        assert_eq!(reg.needs("/y"), Needs::default());
    }
}
