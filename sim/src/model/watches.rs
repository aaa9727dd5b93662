//! The watches one connection holds, as a ZooKeeper server keeps them: one-shot data, exist
//! and child watches, persistent and persistent-recursive watches. They belong to the
//! connection: when it closes they are gone, and the client sets them again with
//! `setWatches2` on its next connection.

use std::collections::BTreeSet;

use zkwarden::proto::{EventType, SetWatches2};

use super::tree::{Tree, Trigger, split};

/// The watches of one connection.
#[derive(Debug, Default, Clone)]
pub struct Watches {
    /// Data watches (`getData`, `exists` on an existing node).
    pub data: BTreeSet<String>,
    /// Exist watches (`exists` on a missing node).
    pub exist: BTreeSet<String>,
    /// Child watches (`getChildren`).
    pub child: BTreeSet<String>,
    /// Persistent watches.
    pub persistent: BTreeSet<String>,
    /// Persistent recursive watches.
    pub recursive: BTreeSet<String>,
}

impl Watches {
    /// Whether `trigger` notifies this connection; one-shot watches it fires are removed.
    /// A connection hears of one change once, whatever watches it has on the path.
    pub fn fire(&mut self, trigger: &Trigger) -> bool {
        let path = trigger.path.as_str();
        let mut hit = false;
        match trigger.event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
            }
            EventType::NodeDeleted => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
                hit |= self.child.remove(path);
            }
            EventType::NodeChildrenChanged => {
                hit |= self.child.remove(path);
            }
            _ => {}
        }
        hit |= self.persistent.contains(path);
        // Recursive watches hear of every node below them, but not of child lists.
        if trigger.event != EventType::NodeChildrenChanged {
            hit |= self.recursive_covers(path);
        }
        hit
    }

    fn recursive_covers(&self, path: &str) -> bool {
        let mut at = path;
        loop {
            if self.recursive.contains(at) {
                return true;
            }
            if at == "/" {
                return false;
            }
            at = split(at).0;
        }
    }

    /// Whether any watch of `kind` (a `removeWatches` / `checkWatches` type: 1 children,
    /// 2 data, 3 any, 4 persistent, 5 recursive) is on `path`; with `remove`, removes them.
    pub fn take(&mut self, path: &str, kind: i32, remove: bool) -> bool {
        let mut sets: Vec<&mut BTreeSet<String>> = match kind {
            1 => vec![&mut self.child],
            2 => vec![&mut self.data, &mut self.exist],
            3 => vec![
                &mut self.child,
                &mut self.data,
                &mut self.exist,
                &mut self.persistent,
                &mut self.recursive,
            ],
            4 => vec![&mut self.persistent],
            5 => vec![&mut self.recursive],
            _ => vec![],
        };
        let mut found = false;
        for set in &mut sets {
            found |= if remove {
                set.remove(path)
            } else {
                set.contains(path)
            };
        }
        found
    }

    /// Re-registers the watches of a `setWatches2`; returns the events for changes after
    /// `relative_zxid` that the client missed, in ZooKeeper's order (data, exist, child).
    /// Persistent watches are put back without events: the server has no record of what
    /// they missed.
    pub fn restore(&mut self, tree: &Tree, set: &SetWatches2) -> Vec<Trigger> {
        let rel = set.relative_zxid;
        let mut events = Vec::new();
        let mut event = |path: &str, event| {
            events.push(Trigger {
                path: path.to_string(),
                event,
            })
        };
        for path in &set.data_watches {
            match tree.get(path) {
                None => event(path, EventType::NodeDeleted),
                Some(n) if n.stat.mzxid > rel => event(path, EventType::NodeDataChanged),
                Some(_) => {
                    self.data.insert(path.clone());
                }
            }
        }
        for path in &set.exist_watches {
            match tree.get(path) {
                Some(_) => event(path, EventType::NodeCreated),
                None => {
                    self.exist.insert(path.clone());
                }
            }
        }
        for path in &set.child_watches {
            match tree.get(path) {
                None => event(path, EventType::NodeDeleted),
                Some(n) if n.stat.pzxid > rel => event(path, EventType::NodeChildrenChanged),
                Some(_) => {
                    self.child.insert(path.clone());
                }
            }
        }
        self.persistent
            .extend(set.persistent_watches.iter().cloned());
        self.recursive
            .extend(set.persistent_recursive_watches.iter().cloned());
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(path: &str, event: EventType) -> Trigger {
        Trigger {
            path: path.into(),
            event,
        }
    }

    #[test]
    fn one_shot_watches_fire_once_and_recursive_ones_skip_child_lists() {
        let mut w = Watches::default();
        w.data.insert("/a".into());
        w.recursive.insert("/r".into());
        assert!(w.fire(&trigger("/a", EventType::NodeDataChanged)));
        assert!(!w.fire(&trigger("/a", EventType::NodeDataChanged)));
        assert!(w.fire(&trigger("/r/x/y", EventType::NodeCreated)));
        assert!(!w.fire(&trigger("/r", EventType::NodeChildrenChanged)));
        assert!(w.fire(&trigger("/r", EventType::NodeDeleted)));
    }
}
