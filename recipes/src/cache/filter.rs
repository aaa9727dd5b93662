//! Which nodes below the root a cache holds: depth limit, selector, and whether the root
//! itself counts.

use std::fmt;
use std::sync::Arc;

use super::snapshot::descendant_prefix;

/// Decides, for a node below a cache's root, whether it and its subtree are cached.
pub(super) type Selector = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The cache's choice of nodes.
#[derive(Clone)]
pub(super) struct Filter {
    pub(super) root: String,
    /// Deepest level cached: 0 is the root alone, 1 its children, ...
    pub(super) max_depth: Option<usize>,
    pub(super) selector: Option<Selector>,
    /// Leave the root itself out (a children cache).
    pub(super) skip_root: bool,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("root", &self.root)
            .field("max_depth", &self.max_depth)
            .field("selector", &self.selector.is_some())
            .field("skip_root", &self.skip_root)
            .finish()
    }
}

impl Filter {
    /// Whether the node at `path` belongs in the cache: it is the root or below it, no
    /// deeper than the limit, and the selector accepts it and every ancestor below the root.
    pub(super) fn accepts(&self, path: &str) -> bool {
        let Some(relative) = self.relative(path) else {
            return false;
        };
        if relative.is_empty() {
            return !self.skip_root;
        }
        let depth = relative.split('/').count();
        if self.max_depth.is_some_and(|max| depth > max) {
            return false;
        }
        let Some(selector) = &self.selector else {
            return true;
        };
        // The root and each ancestor end where a '/' of the relative part begins.
        let base = path.len() - relative.len();
        relative
            .match_indices('/')
            .map(|(i, _)| &path[..base + i])
            .chain(std::iter::once(path))
            .all(|prefix| selector(prefix))
    }

    /// Whether children of the node at `path` (the root, or a node [`accepts`](Self::accepts)
    /// took) may be cached: it is above the depth limit.
    pub(super) fn lists_below(&self, path: &str) -> bool {
        let Some(relative) = self.relative(path) else {
            return false;
        };
        let depth = if relative.is_empty() {
            0
        } else {
            relative.split('/').count()
        };
        self.max_depth.is_none_or(|max| depth < max)
    }

    /// `path` relative to the root: empty for the root, `None` outside the subtree.
    fn relative<'a>(&self, path: &'a str) -> Option<&'a str> {
        if path == self.root {
            return Some("");
        }
        match path.strip_prefix(&descendant_prefix(&self.root)) {
            Some(rest) if !rest.is_empty() => Some(rest),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(root: &str, max_depth: Option<usize>, skip_root: bool) -> Filter {
        Filter {
            root: root.to_owned(),
            max_depth,
            selector: None,
            skip_root,
        }
    }

    #[test]
    fn only_the_subtree() {
        let f = filter("/r", None, false);
        assert!(f.accepts("/r"));
        assert!(f.accepts("/r/a/b/c"));
        assert!(!f.accepts("/rx"));
        assert!(!f.accepts("/"));
        let top = filter("/", None, false);
        assert!(top.accepts("/"));
        assert!(top.accepts("/a/b"));
    }

    #[test]
    fn depth_and_root() {
        let f = filter("/r", Some(1), true);
        assert!(!f.accepts("/r"));
        assert!(f.accepts("/r/a"));
        assert!(!f.accepts("/r/a/b"));
        assert!(f.lists_below("/r"));
        assert!(!f.lists_below("/r/a"));
        let root_only = filter("/r", Some(0), false);
        assert!(root_only.accepts("/r"));
        assert!(!root_only.accepts("/r/a"));
        assert!(!root_only.lists_below("/r"));
        assert!(filter("/", None, false).lists_below("/a/b"));
    }

    #[test]
    fn selector_prunes_subtrees() {
        let mut f = filter("/r", None, false);
        f.selector = Some(Arc::new(|path: &str| !path.ends_with("/skip")));
        assert!(f.accepts("/r/a"));
        assert!(!f.accepts("/r/skip"));
        assert!(!f.accepts("/r/skip/below"));
        assert!(f.accepts("/r/a/keep"));
    }
}
