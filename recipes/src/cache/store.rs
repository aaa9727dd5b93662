//! How a cache holds its nodes: compactly, since a cache may hold millions.
//!
//! Each node costs its path (once, as the key), one small allocation for its stat and data
//! handle, and its data. Values of up to [`SMALL_VALUE`] bytes are packed into shared blocks
//! of [`BLOCK`] bytes instead of one allocation each (which would cost an allocation header
//! and, once the value is shared with an event, a reference count of its own). The public
//! [`Snapshot`] is built from this on demand.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use zkwarden::Stat;

use super::events::CacheEvent;
use super::snapshot::{CachedNode, Snapshot, children_of, descendants};

/// Values up to this size share blocks.
const SMALL_VALUE: usize = 256;

/// The size of a block of small values. A block is freed once no cached node (and no event
/// or handle) refers to any value in it, so churn can keep at most one block alive per value
/// still cached from it: with values of tens of bytes, a few dozen nodes share a block.
const BLOCK: usize = 8 * 1024;

/// One cached node: what a [`CachedNode`] holds, boxed so that the index stays small.
struct Entry {
    stat: Stat,
    data: Bytes,
}

/// The nodes of one cache, by path.
#[derive(Default)]
pub(super) struct Store {
    nodes: BTreeMap<Box<str>, Box<Entry>>,
    /// Where the next small value goes: the unused tail of the current block.
    block: BytesMut,
}

impl Store {
    /// The node at `path`.
    pub(super) fn get(&self, path: &str) -> Option<CachedNode> {
        self.nodes.get(path).map(|entry| node_of(entry))
    }

    /// The stat of the node at `path`.
    pub(super) fn stat(&self, path: &str) -> Option<&Stat> {
        self.nodes.get(path).map(|entry| &entry.stat)
    }

    /// How many nodes are cached.
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is cached.
    pub(super) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The cached children of `path` as (name, node), in name order.
    pub(super) fn children(&self, path: &str) -> Vec<(String, CachedNode)> {
        children_of(&self.nodes, path)
            .map(|(name, entry)| (name.to_owned(), node_of(entry)))
            .collect()
    }

    /// The paths of the cached descendants of `path`, in path order.
    pub(super) fn descendants(&self, path: &str) -> Vec<String> {
        descendants(&self.nodes, path)
    }

    /// Every cached path, in order.
    pub(super) fn paths(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(|path| &**path)
    }

    /// A copy of every node.
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot::from_map(
            self.nodes
                .iter()
                .map(|(path, entry)| (path.to_string(), node_of(entry)))
                .collect(),
        )
    }

    /// Copies `data` into the store's memory (see the module docs): the form a node's data is
    /// kept in, so that a reply's buffer is not pinned for as long as the node stays cached.
    pub(super) fn keep(&mut self, data: &[u8]) -> Bytes {
        if data.is_empty() {
            return Bytes::new();
        }
        if data.len() > SMALL_VALUE {
            return Bytes::copy_from_slice(data);
        }
        if self.block.capacity() < data.len() {
            self.block = BytesMut::with_capacity(BLOCK);
        }
        self.block.extend_from_slice(data);
        // The taken part shares the block; what is left keeps the rest of its capacity.
        self.block.split().freeze()
    }

    /// Applies one of the cache's events: `Created` and `Changed` set the node, `Deleted`
    /// removes it; the other events change nothing.
    pub(super) fn apply(&mut self, event: &CacheEvent) {
        match event {
            CacheEvent::Created { path, node } | CacheEvent::Changed { path, node } => {
                let entry = Box::new(Entry {
                    stat: node.stat,
                    data: node.data.clone(),
                });
                match self.nodes.get_mut(path.as_str()) {
                    Some(cached) => *cached = entry,
                    None => {
                        self.nodes.insert(path.as_str().into(), entry);
                    }
                }
            }
            CacheEvent::Deleted { path, .. } => {
                self.nodes.remove(path.as_str());
            }
            CacheEvent::Initialized | CacheEvent::Resynced { .. } | CacheEvent::Lagged { .. } => {}
        }
    }
}

fn node_of(entry: &Entry) -> CachedNode {
    CachedNode {
        data: entry.data.clone(),
        stat: entry.stat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_share_blocks_and_large_ones_do_not() {
        let mut store = Store::default();
        let a = store.keep(b"first");
        let b = store.keep(b"second");
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
        // Adjacent in one block.
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
        let large = store.keep(&[7u8; SMALL_VALUE + 1]);
        assert_eq!(large.len(), SMALL_VALUE + 1);
        assert!(store.keep(b"").is_empty());
        // A full block makes way for a new one without touching the values already kept.
        let values: Vec<Bytes> = (0..2 * BLOCK / SMALL_VALUE)
            .map(|i| store.keep(&[i as u8; SMALL_VALUE]))
            .collect();
        for (i, value) in values.iter().enumerate() {
            assert!(value.iter().all(|&byte| byte == i as u8));
        }
        assert_eq!(&a[..], b"first");
    }

    #[test]
    fn events_apply_and_queries_answer() {
        let mut store = Store::default();
        let node = |czxid: i64| CachedNode {
            data: Bytes::from_static(b"x"),
            stat: Stat {
                czxid,
                mzxid: czxid,
                ..Stat::default()
            },
        };
        for (i, path) in ["/a", "/a/b", "/a/b/c", "/a/d", "/ab"].iter().enumerate() {
            store.apply(&CacheEvent::Created {
                path: (*path).into(),
                node: node(i as i64 + 1),
            });
        }
        let names: Vec<String> = store.children("/a").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(store.descendants("/a"), ["/a/b", "/a/b/c", "/a/d"]);
        store.apply(&CacheEvent::Changed {
            path: "/a".into(),
            node: node(9),
        });
        assert_eq!(store.stat("/a").map(|s| s.czxid), Some(9));
        store.apply(&CacheEvent::Deleted {
            path: "/ab".into(),
            node: node(5),
        });
        assert_eq!(store.len(), 4);
        assert_eq!(store.snapshot().get("/a"), Some(&node(9)));
    }
}
