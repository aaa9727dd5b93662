//! Which persistent mode the server holds on each watched path, so that no watch of this
//! session takes anything away from another (ZOOKEEPER-4466).
//!
//! A ZooKeeper 3.8 server keeps, per connection, two tables (data and child) with one entry
//! per path, and the last registration on a path sets that entry's mode: a one-shot read watch
//! makes a persistent or recursive watch one-shot, a persistent watch ends a recursive one's
//! events below the path, a recursive watch ends a persistent one's child-list events (a
//! recursive entry never reports `NodeChildrenChanged`), and `addWatch` sets both tables.
//!
//! The client therefore keeps the server's entry for a path at the strongest mode any local
//! watcher needs, and serves the weaker watchers from it:
//! - while a persistent or recursive watch covers a path, a one-shot watch there is set
//!   client-side only (the read goes out without its watch flag) and fired by the covering
//!   watch's events;
//! - a persistent watch asked for where a recursive one stands is sent as recursive;
//! - under a recursive entry, child-list changes of the path itself are told to its persistent
//!   and child watchers from the creation or deletion of a direct child, which the recursive
//!   entry reports (the server signals a child-list change exactly then);
//! - when the covering watch goes, the entry steps down in place, without a gap: to persistent
//!   if a persistent watcher remains, else to one-shot entries for the one-shot watchers left
//!   (a watching `exists` / `getChildren` replaces the mode in one step), else it is removed.
//!
//! Two views are kept: `intended` changes when a request is written and drives what the next
//! request does; `effective` changes when its reply is read, and says how the events read
//! meanwhile were produced (a recursive entry's, or not).

use std::collections::{HashMap, VecDeque};

use super::watch::WatchKind;
use crate::proto::{AddWatchMode, WatcherType};

/// A persistent mode the server holds on a path for this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cover {
    /// `addWatch` persistent: every event at the path, child lists included.
    Persistent,
    /// `addWatch` recursive: creations, changes and deletions at and below the path.
    Recursive,
}

impl Cover {
    fn mode(self) -> AddWatchMode {
        match self {
            Cover::Persistent => AddWatchMode::Persistent,
            Cover::Recursive => AddWatchMode::PersistentRecursive,
        }
    }
}

/// What the watchers of one path need from the server: those registered and those whose
/// request is still waiting for its reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// A recursive watcher.
    pub recursive: bool,
    /// A persistent watcher.
    pub persistent: bool,
    /// A one-shot data or exists watcher.
    pub data: bool,
    /// A one-shot child watcher.
    pub child: bool,
}

impl Needs {
    /// Adds what a watcher of `kind` needs.
    pub(crate) fn add(&mut self, kind: WatchKind) {
        match kind {
            WatchKind::Data | WatchKind::Exist => self.data = true,
            WatchKind::Child => self.child = true,
            WatchKind::Persistent => self.persistent = true,
            WatchKind::Recursive => self.recursive = true,
        }
    }

    /// Adds what `other` needs.
    pub(crate) fn merge(&mut self, other: Needs) {
        self.recursive |= other.recursive;
        self.persistent |= other.persistent;
        self.data |= other.data;
        self.child |= other.child;
    }

    fn cover(self) -> Option<Cover> {
        if self.recursive {
            Some(Cover::Recursive)
        } else if self.persistent {
            Some(Cover::Persistent)
        } else {
            None
        }
    }
}

/// A request the session writes on its own to bring a path's server entries to what its
/// watchers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fix {
    /// `addWatch` in this mode (replaces both entries' mode).
    AddWatch(AddWatchMode),
    /// A watching `exists`: makes the data entry one-shot (or sets one).
    ArmData,
    /// A watching `getChildren`: makes the child entry one-shot (or sets one).
    ArmChild,
    /// `removeWatches` of this type.
    Remove(WatcherType),
}

/// The persistent modes this session holds on the server, per server path.
#[derive(Debug, Default)]
pub(crate) struct ServerWatches {
    intended: HashMap<String, Cover>,
    effective: HashMap<String, Cover>,
    /// Changes to `effective` waiting for the reply to the request (by xid) that makes them.
    in_flight: VecDeque<(i32, String, Option<Cover>)>,
}

impl ServerWatches {
    /// Whether a persistent or recursive entry covers `path` once the requests written so far
    /// are processed: a one-shot watch there must then be set client-side only.
    pub(crate) fn covers(&self, path: &str) -> bool {
        self.intended.contains_key(path)
    }

    /// Whether the events read now at `path`'s children came through a recursive entry on
    /// `path` (so `path`'s child-list changes must be derived from them).
    pub(crate) fn recursive_at(&self, path: &str) -> bool {
        self.effective.get(path) == Some(&Cover::Recursive)
    }

    /// An `addWatch` in `requested` mode is being written with `xid`: returns the mode to
    /// send (recursive if a recursive entry stands there: it serves a persistent watcher too).
    pub(crate) fn add_watch(
        &mut self,
        xid: i32,
        path: &str,
        requested: AddWatchMode,
    ) -> AddWatchMode {
        let cover = match (requested, self.intended.get(path)) {
            (AddWatchMode::Persistent, Some(Cover::Recursive)) => Cover::Recursive,
            (AddWatchMode::Persistent, _) => Cover::Persistent,
            (AddWatchMode::PersistentRecursive, _) => Cover::Recursive,
        };
        self.set(xid, path, Some(cover));
        cover.mode()
    }

    /// A `removeWatches` of every type is being written with `xid`: the entries go.
    pub(crate) fn remove_all(&mut self, xid: i32, path: &str) {
        self.set(xid, path, None);
    }

    /// An `addWatch` on `path` failed: the entry is what the other watchers (`needs`) had
    /// before (servers before 3.6 refuse `addWatch`; a lost connection resets everything).
    pub(crate) fn add_watch_failed(&mut self, path: &str, needs: Needs) {
        match needs.cover() {
            Some(cover) => self.intended.insert(path.to_owned(), cover),
            None => self.intended.remove(path),
        };
    }

    /// What to write after a watcher of `gone` left `path`, given what the remaining watchers
    /// `need`; records the change of mode it makes. The first fix carries that change; the
    /// caller passes its xid to [`ServerWatches::written`].
    pub(crate) fn after_removal(&mut self, path: &str, gone: WatchKind, need: Needs) -> Vec<Fix> {
        let Some(cover) = self.intended.get(path).copied() else {
            // One-shot entries only: remove the table's entry once no watcher uses it.
            return match gone {
                WatchKind::Data | WatchKind::Exist if !need.data => {
                    vec![Fix::Remove(WatcherType::Data)]
                }
                WatchKind::Child if !need.child => vec![Fix::Remove(WatcherType::Children)],
                // Not expected (a persistent watch always has an entry), but never leave one
                // on the server that nothing listens to.
                WatchKind::Persistent | WatchKind::Recursive if need == Needs::default() => {
                    vec![Fix::Remove(WatcherType::Any)]
                }
                _ => Vec::new(),
            };
        };
        match (cover, need.cover()) {
            (Cover::Recursive, Some(Cover::Recursive)) | (Cover::Persistent, Some(_)) => Vec::new(),
            (Cover::Recursive, Some(Cover::Persistent)) => {
                self.intended.insert(path.to_owned(), Cover::Persistent);
                vec![Fix::AddWatch(AddWatchMode::Persistent)]
            }
            (_, None) => {
                self.intended.remove(path);
                match (need.data, need.child) {
                    (false, false) => vec![Fix::Remove(WatcherType::Any)],
                    (true, false) => vec![Fix::ArmData, Fix::Remove(WatcherType::Children)],
                    (false, true) => vec![Fix::ArmChild, Fix::Remove(WatcherType::Data)],
                    (true, true) => vec![Fix::ArmData, Fix::ArmChild],
                }
            }
        }
    }

    /// The first request of an [`after_removal`](ServerWatches::after_removal) batch was
    /// written with `xid`: once it is answered, events come from the new mode.
    pub(crate) fn written(&mut self, xid: i32, path: &str) {
        let cover = self.intended.get(path).copied();
        self.in_flight.push_back((xid, path.to_owned(), cover));
    }

    fn set(&mut self, xid: i32, path: &str, cover: Option<Cover>) {
        match cover {
            Some(cover) => self.intended.insert(path.to_owned(), cover),
            None => self.intended.remove(path),
        };
        self.in_flight.push_back((xid, path.to_owned(), cover));
    }

    /// The reply to `xid` was read (`ok`: without an error): a change it made is now in
    /// force. (A failed `addWatch` changed nothing; a failed removal leaves nothing either.)
    pub(crate) fn replied(&mut self, xid: i32, ok: bool) {
        // Replies come in request order, so anything older was answered already.
        while let Some((front, _, _)) = self.in_flight.front() {
            let front = *front;
            if front != xid && !wrapping_before(front, xid) {
                return;
            }
            let Some((_, path, cover)) = self.in_flight.pop_front() else {
                return;
            };
            if front != xid {
                continue;
            }
            match cover {
                Some(cover) if ok => {
                    self.effective.insert(path, cover);
                }
                Some(_) => {}
                None => {
                    self.effective.remove(&path);
                }
            }
        }
    }

    /// A new connection: the entries are those the watch restore sets, one per path holding
    /// a persistent or recursive watcher (SetWatches2 restores recursive watches last, so a
    /// path with both ends recursive).
    pub(crate) fn reset(&mut self, covers: impl Iterator<Item = (String, Cover)>) {
        self.intended.clear();
        self.in_flight.clear();
        for (path, cover) in covers {
            let entry = self.intended.entry(path).or_insert(cover);
            if cover == Cover::Recursive {
                *entry = cover;
            }
        }
        self.effective = self.intended.clone();
    }
}

/// Whether xid `a` was written before `b` (xids grow and may wrap).
fn wrapping_before(a: i32, b: i32) -> bool {
    b.wrapping_sub(a) > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(kinds: &[WatchKind]) -> Needs {
        let mut n = Needs::default();
        for &k in kinds {
            n.add(k);
        }
        n
    }

    #[test]
    fn a_persistent_watch_under_a_recursive_one_is_sent_recursive() {
        let mut s = ServerWatches::default();
        assert_eq!(
            s.add_watch(1, "/a", AddWatchMode::PersistentRecursive),
            AddWatchMode::PersistentRecursive
        );
        assert_eq!(
            s.add_watch(2, "/a", AddWatchMode::Persistent),
            AddWatchMode::PersistentRecursive
        );
        assert!(s.covers("/a"));
        assert!(!s.recursive_at("/a"), "not before the reply");
        s.replied(1, true);
        assert!(s.recursive_at("/a"));
        s.replied(2, true);
        assert!(s.recursive_at("/a"));
    }

    #[test]
    fn dropping_the_recursive_watch_steps_down_to_persistent() {
        let mut s = ServerWatches::default();
        s.add_watch(1, "/a", AddWatchMode::Persistent);
        s.add_watch(2, "/a", AddWatchMode::PersistentRecursive);
        s.replied(1, true);
        s.replied(2, true);
        let fixes = s.after_removal("/a", WatchKind::Recursive, need(&[WatchKind::Persistent]));
        assert_eq!(fixes, vec![Fix::AddWatch(AddWatchMode::Persistent)]);
        s.written(3, "/a");
        // Events read before the reply were produced by the recursive entry.
        assert!(s.recursive_at("/a"));
        s.replied(3, true);
        assert!(!s.recursive_at("/a"));
        assert!(s.covers("/a"));
    }

    #[test]
    fn one_shots_left_under_a_dropped_cover_are_armed_on_the_server() {
        let cases = [
            (vec![], vec![Fix::Remove(WatcherType::Any)]),
            (
                vec![WatchKind::Exist],
                vec![Fix::ArmData, Fix::Remove(WatcherType::Children)],
            ),
            (
                vec![WatchKind::Child],
                vec![Fix::ArmChild, Fix::Remove(WatcherType::Data)],
            ),
            (
                vec![WatchKind::Data, WatchKind::Child],
                vec![Fix::ArmData, Fix::ArmChild],
            ),
        ];
        for (left, expected) in cases {
            let mut s = ServerWatches::default();
            s.add_watch(1, "/a", AddWatchMode::Persistent);
            assert_eq!(
                s.after_removal("/a", WatchKind::Persistent, need(&left)),
                expected,
                "{left:?}"
            );
            assert!(!s.covers("/a"));
        }
    }

    #[test]
    fn a_one_shot_under_a_cover_leaves_the_server_alone() {
        let mut s = ServerWatches::default();
        s.add_watch(1, "/a", AddWatchMode::PersistentRecursive);
        assert!(
            s.after_removal("/a", WatchKind::Data, need(&[WatchKind::Recursive]))
                .is_empty()
        );
        // Without a cover, the last one-shot of a table removes that table's entry.
        assert_eq!(
            s.after_removal("/b", WatchKind::Exist, need(&[WatchKind::Child])),
            vec![Fix::Remove(WatcherType::Data)]
        );
        assert!(
            s.after_removal("/b", WatchKind::Child, need(&[WatchKind::Child]))
                .is_empty()
        );
    }

    #[test]
    fn reset_takes_the_strongest_mode_per_path() {
        let mut s = ServerWatches::default();
        s.add_watch(7, "/gone", AddWatchMode::Persistent);
        s.reset(
            [
                ("/a".to_owned(), Cover::Recursive),
                ("/a".to_owned(), Cover::Persistent),
                ("/b".to_owned(), Cover::Persistent),
            ]
            .into_iter(),
        );
        assert!(s.recursive_at("/a"));
        assert!(s.covers("/b") && !s.recursive_at("/b"));
        assert!(!s.covers("/gone"));
    }

    #[test]
    fn a_failed_add_watch_falls_back_to_what_the_watchers_need() {
        let mut s = ServerWatches::default();
        s.add_watch(1, "/a", AddWatchMode::Persistent);
        s.add_watch_failed("/a", Needs::default());
        assert!(!s.covers("/a"));
    }
}
