//! The cache's memory: every cached node by path, and the queries answered from it.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::Bound;

use bytes::Bytes;
use zkwarden::Stat;

use super::events::CacheEvent;

/// A node as the cache holds it: its data (empty when the cache does not keep data) and
/// the stat read with that data.
///
/// The stat's data fields (`mzxid`, `version`, `data_length`, ...) always go with `data`.
/// Its child fields (`cversion`, `pzxid`, `num_children`) are those of the same read: the
/// cache follows children as nodes of their own, not through the parent's stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedNode {
    /// The node's data, or empty if the cache was built with `keep_data(false)`.
    pub data: Bytes,
    /// The node's stat as read with `data`.
    pub stat: Stat,
}

/// A copy of a cache's nodes at one moment, keyed by absolute path (within the warden's
/// namespace).
///
/// Besides answering queries, a snapshot can [`apply`](Snapshot::apply) a cache's events: a
/// snapshot taken together with a subscription ([`TreeCache::subscribe`]) and then fed every
/// event of that subscription equals the cache's own snapshot at the same point.
///
/// [`TreeCache::subscribe`]: super::TreeCache::subscribe
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    nodes: BTreeMap<String, CachedNode>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// The node at `path`, if cached.
    pub fn get(&self, path: &str) -> Option<&CachedNode> {
        self.nodes.get(path)
    }

    /// The cached children of `path` (names, not paths), in order.
    pub fn children(&self, path: &str) -> Vec<(String, CachedNode)> {
        children_of(&self.nodes, path)
            .map(|(name, node)| (name.to_owned(), node.clone()))
            .collect()
    }

    /// Every cached node, in path order.
    pub fn iter(&self) -> btree_map::Iter<'_, String, CachedNode> {
        self.nodes.iter()
    }

    /// How many nodes are cached.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is cached.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes as a map from path to node.
    pub fn into_map(self) -> BTreeMap<String, CachedNode> {
        self.nodes
    }

    /// Applies one of the cache's events: `Created` and `Changed` set the node, `Deleted`
    /// removes it; the other events change nothing.
    pub fn apply(&mut self, event: &CacheEvent) {
        match event {
            CacheEvent::Created { path, node } | CacheEvent::Changed { path, node } => {
                self.nodes.insert(path.clone(), node.clone());
            }
            CacheEvent::Deleted { path, .. } => {
                self.nodes.remove(path);
            }
            CacheEvent::Initialized | CacheEvent::Resynced { .. } | CacheEvent::Lagged { .. } => {}
        }
    }

    pub(super) fn from_map(nodes: BTreeMap<String, CachedNode>) -> Snapshot {
        Snapshot { nodes }
    }
}

impl<'a> IntoIterator for &'a Snapshot {
    type Item = (&'a String, &'a CachedNode);
    type IntoIter = btree_map::Iter<'a, String, CachedNode>;

    fn into_iter(self) -> Self::IntoIter {
        self.nodes.iter()
    }
}

/// The prefix every descendant of `path` starts with.
pub(super) fn descendant_prefix(path: &str) -> String {
    if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    }
}

/// The nodes of `nodes` at and after `from`, in path order.
fn from<'a, K: Borrow<str> + Ord, V>(
    nodes: &'a BTreeMap<K, V>,
    from: &str,
) -> btree_map::Range<'a, K, V> {
    nodes.range::<str, _>((Bound::Included(from), Bound::Unbounded))
}

/// The paths of the descendants of `path` in `nodes` (not `path` itself), in path order.
pub(super) fn descendants<K: Borrow<str> + Ord, V>(
    nodes: &BTreeMap<K, V>,
    path: &str,
) -> Vec<String> {
    let prefix = descendant_prefix(path);
    from(nodes, &prefix)
        .map(|(p, _)| p.borrow())
        .take_while(|p| p.starts_with(&prefix))
        .filter(|p| *p != path)
        .map(str::to_owned)
        .collect()
}

/// The children of `path` in `nodes` as (name, node), in name order.
pub(super) fn children_of<'a, K: Borrow<str> + Ord, V>(
    nodes: &'a BTreeMap<K, V>,
    path: &str,
) -> impl Iterator<Item = (&'a str, &'a V)> + 'a {
    let prefix = descendant_prefix(path);
    let len = prefix.len();
    from(nodes, &prefix)
        .map(|(p, node)| (p.borrow(), node))
        .take_while(move |(p, _)| p.starts_with(&prefix))
        .filter_map(move |(p, node)| {
            // The root "/" sorts first in its own range: its name is empty.
            let name = p.get(len..)?;
            if name.is_empty() || name.contains('/') {
                return None;
            }
            Some((name, node))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(czxid: i64) -> CachedNode {
        CachedNode {
            data: Bytes::from_static(b"x"),
            stat: Stat {
                czxid,
                mzxid: czxid,
                ..Stat::default()
            },
        }
    }

    fn snapshot(paths: &[&str]) -> Snapshot {
        let mut s = Snapshot::new();
        for (i, p) in paths.iter().enumerate() {
            s.nodes.insert((*p).to_owned(), node(i as i64 + 1));
        }
        s
    }

    #[test]
    fn children_are_direct_only() {
        let s = snapshot(&["/a", "/a/b", "/a/b/c", "/a/b-x", "/a/d", "/ab"]);
        let names: Vec<_> = s.children("/a").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "b-x", "d"]);
        let top: Vec<_> = s.children("/").into_iter().map(|(n, _)| n).collect();
        assert_eq!(top, ["a", "ab"]);
    }

    #[test]
    fn descendants_exclude_siblings_with_a_common_prefix() {
        let s = snapshot(&["/a", "/a/b", "/a/b/c", "/ab", "/a-b"]);
        assert_eq!(descendants(&s.nodes, "/a"), ["/a/b", "/a/b/c"]);
    }

    #[test]
    fn events_apply_in_order() {
        let mut s = Snapshot::new();
        s.apply(&CacheEvent::Created {
            path: "/a".into(),
            node: node(1),
        });
        s.apply(&CacheEvent::Changed {
            path: "/a".into(),
            node: node(2),
        });
        assert_eq!(s.get("/a"), Some(&node(2)));
        s.apply(&CacheEvent::Initialized);
        s.apply(&CacheEvent::Deleted {
            path: "/a".into(),
            node: node(2),
        });
        assert!(s.is_empty());
    }
}
