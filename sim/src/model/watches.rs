//! The watches one connection holds, kept as a ZooKeeper 3.8 server keeps them: two tables
//! (data and child), each with one mode per path: standard (one-shot), persistent or
//! persistent-recursive. The last registration on a path sets its mode (3.8 lets modes on
//! one path override each other, ZOOKEEPER-4466); `exists` watches live in the data table;
//! `addWatch` goes in both; a recursive watch never hears of child lists. Watches belong to the
//! connection: when it closes they are gone, and the client sets them again with
//! `setWatches2` on its next connection.

use std::collections::BTreeMap;

use zkwarden::proto::{EventType, SetWatches2};

use super::tree::{Tree, Trigger, split};

/// How a watch on a path fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Once, then it is gone.
    Standard,
    /// Every change of the path.
    Persistent,
    /// Every change of the path and of the nodes below (no child lists).
    Recursive,
}

/// The watches of one connection.
#[derive(Debug, Default, Clone)]
pub struct Watches {
    /// `getData`, `exists`, `addWatch`.
    pub data: BTreeMap<String, Mode>,
    /// `getChildren`, persistent `addWatch`.
    pub child: BTreeMap<String, Mode>,
}

/// Whether `trigger` fires a watch of `table`; a standard watch it fires is removed.
fn fire_table(table: &mut BTreeMap<String, Mode>, trigger: &Trigger) -> bool {
    let path = trigger.path.as_str();
    let children = trigger.event == EventType::NodeChildrenChanged;
    let mut hit = false;
    match table.get(path).copied() {
        Some(Mode::Standard) => {
            hit = true;
            table.remove(path);
        }
        Some(Mode::Persistent) => hit = true,
        Some(Mode::Recursive) => hit = !children,
        None => {}
    }
    let mut at = path;
    while at != "/" && !children {
        at = split(at).0;
        hit |= table.get(at) == Some(&Mode::Recursive);
    }
    hit
}

impl Watches {
    /// Whether `trigger` notifies this connection. A connection hears of one change once,
    /// whatever watches it has on the path.
    pub fn fire(&mut self, trigger: &Trigger) -> bool {
        match trigger.event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                fire_table(&mut self.data, trigger)
            }
            EventType::NodeDeleted => {
                let data = fire_table(&mut self.data, trigger);
                fire_table(&mut self.child, trigger) || data
            }
            EventType::NodeChildrenChanged => fire_table(&mut self.child, trigger),
            _ => false,
        }
    }

    /// Registers a watch.
    pub fn add(&mut self, path: &str, data: bool, mode: Mode) {
        let table = if data {
            &mut self.data
        } else {
            &mut self.child
        };
        table.insert(path.to_string(), mode);
    }

    /// `addWatch`: in both tables.
    pub fn add_persistent(&mut self, path: &str, recursive: bool) {
        let mode = if recursive {
            Mode::Recursive
        } else {
            Mode::Persistent
        };
        self.add(path, true, mode);
        self.add(path, false, mode);
    }

    /// Whether any watch of `kind` (a `removeWatches` / `checkWatches` type: 1 children,
    /// 2 data, 3 any) is on `path`; with `remove`, removes them.
    pub fn take(&mut self, path: &str, kind: i32, remove: bool) -> bool {
        let tables: Vec<&mut BTreeMap<String, Mode>> = match kind {
            1 => vec![&mut self.child],
            2 => vec![&mut self.data],
            3 => vec![&mut self.data, &mut self.child],
            _ => vec![],
        };
        let mut found = false;
        for table in tables {
            found |= if remove {
                table.remove(path).is_some()
            } else {
                table.contains_key(path)
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
                Some(_) => self.add(path, true, Mode::Standard),
            }
        }
        for path in &set.exist_watches {
            match tree.get(path) {
                Some(_) => event(path, EventType::NodeCreated),
                None => self.add(path, true, Mode::Standard),
            }
        }
        for path in &set.child_watches {
            match tree.get(path) {
                None => event(path, EventType::NodeDeleted),
                Some(n) if n.stat.pzxid > rel => event(path, EventType::NodeChildrenChanged),
                Some(_) => self.add(path, false, Mode::Standard),
            }
        }
        for path in &set.persistent_watches {
            self.add_persistent(path, false);
        }
        for path in &set.persistent_recursive_watches {
            self.add_persistent(path, true);
        }
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
        w.add("/a", true, Mode::Standard);
        w.add_persistent("/r", true);
        assert!(w.fire(&trigger("/a", EventType::NodeDataChanged)));
        assert!(!w.fire(&trigger("/a", EventType::NodeDataChanged)));
        assert!(w.fire(&trigger("/r/x/y", EventType::NodeCreated)));
        assert!(!w.fire(&trigger("/r", EventType::NodeChildrenChanged)));
        assert!(w.fire(&trigger("/r", EventType::NodeDeleted)));
    }

    #[test]
    fn the_last_mode_registered_on_a_path_wins_as_in_zookeeper_3_8() {
        let mut w = Watches::default();
        w.add_persistent("/b", true);
        w.add_persistent("/b", false);
        assert!(!w.fire(&trigger("/b/z", EventType::NodeCreated)));
        assert!(w.fire(&trigger("/b", EventType::NodeChildrenChanged)));
        // A one-shot read watch turns a persistent watch into a one-shot one.
        w.add("/b", true, Mode::Standard);
        assert!(w.fire(&trigger("/b", EventType::NodeDataChanged)));
        assert!(!w.fire(&trigger("/b", EventType::NodeDataChanged)));
    }
}
