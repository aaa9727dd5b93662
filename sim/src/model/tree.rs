//! The data tree: nodes with their full [`Stat`], ordered by zxid, and the writes that change
//! it. Every write reports the watch triggers it caused, in the order ZooKeeper fires them;
//! routing them to watchers is [`super::watches`]' job.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zkwarden::proto::{Acl, CreateMode, ErrorCode, EventType, Stat};

/// Largest TTL the server takes.
const MAX_TTL: i64 = (1 << 40) - 1;

/// A node the server deletes by itself. (ZooKeeper marks them in `ephemeralOwner`, but
/// shows clients 0 there, so the model keeps the kind apart from the stat.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extended {
    /// Deleted once it has had children and has none.
    Container,
    /// Deleted when unchanged and childless for this many ms.
    Ttl(i64),
}

/// One znode.
#[derive(Debug, Clone)]
pub struct Node {
    /// The data.
    pub data: Bytes,
    /// The ACL (kept and returned; not enforced).
    pub acl: Vec<Acl>,
    /// The stat, kept as the server keeps it.
    pub stat: Stat,
    /// Child names.
    pub children: BTreeSet<String>,
    /// Container or TTL.
    pub extended: Option<Extended>,
    /// Children ever created: what ZooKeeper keeps as `cversion` and numbers sequential
    /// children with. Clients see `2 * creates - children` (creates and deletes).
    creates: i32,
}

impl Node {
    /// The child count and the `cversion` clients see, after a child came or went.
    fn children_changed(&mut self) {
        self.stat.num_children = self.children.len() as i32;
        self.stat.cversion = 2 * self.creates - self.stat.num_children;
    }

    /// Whether the node dies with session `owner`'s end.
    fn owned_by(&self, session: i64) -> bool {
        session != 0 && self.stat.ephemeral_owner == session
    }
}

/// A change a watcher may hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The node the event names.
    pub path: String,
    /// What happened to it.
    pub event: EventType,
}

/// The tree and the last zxid.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
    /// The zxid of the last committed transaction.
    pub zxid: i64,
}

impl Default for Tree {
    fn default() -> Self {
        let mut tree = Tree {
            nodes: BTreeMap::new(),
            zxid: 0,
        };
        tree.nodes.insert("/".into(), empty_node(Stat::default()));
        // As a real server: `/zookeeper` with its `quota` and `config` children.
        for path in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            tree.nodes.insert(path.into(), empty_node(Stat::default()));
            let (parent, name) = split(path);
            if let Some(p) = tree.nodes.get_mut(parent) {
                p.children.insert(name.into());
                p.stat.num_children = p.children.len() as i32;
            }
        }
        tree
    }
}

fn empty_node(stat: Stat) -> Node {
    Node {
        data: Bytes::new(),
        acl: vec![],
        stat,
        children: BTreeSet::new(),
        extended: None,
        creates: 0,
    }
}

/// `(parent, name)` of an absolute path other than `/`.
pub use zkwarden::client::path::split_parent as split;

/// A create as the request asks for it.
#[derive(Debug, Clone)]
pub struct CreateArgs<'a> {
    /// The path asked for (before any sequence suffix).
    pub path: &'a str,
    /// The data.
    pub data: &'a [u8],
    /// The ACL.
    pub acl: Vec<Acl>,
    /// The mode.
    pub mode: CreateMode,
    /// The TTL in ms (TTL modes only).
    pub ttl: i64,
}

impl Tree {
    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every node, in path order (for comparisons and traces).
    pub fn nodes(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// The node at `path`, or `NoNode`.
    pub fn node(&self, path: &str) -> Result<&Node, ErrorCode> {
        self.nodes.get(path).ok_or(ErrorCode::NoNode)
    }

    /// Checks and applies a create at zxid `zxid` (the caller bumps it) for `session`;
    /// returns the created path.
    pub fn create(
        &mut self,
        args: &CreateArgs<'_>,
        session: i64,
        zxid: i64,
        now_ms: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<String, ErrorCode> {
        if args.path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        if args.mode.is_ttl() && (args.ttl <= 0 || args.ttl > MAX_TTL) {
            return Err(ErrorCode::BadArguments);
        }
        if !args.mode.is_ttl() && args.ttl != 0 && args.ttl != -1 {
            return Err(ErrorCode::BadArguments);
        }
        let (parent_path, _) = split(args.path);
        let parent = self.nodes.get(parent_path).ok_or(ErrorCode::NoNode)?;
        if parent.stat.ephemeral_owner != 0 {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let path = if args.mode.is_sequential() {
            format!("{}{:010}", args.path, parent.creates)
        } else {
            args.path.to_string()
        };
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        let owner = if args.mode.is_ephemeral() { session } else { 0 };
        let extended = match args.mode {
            CreateMode::Container => Some(Extended::Container),
            m if m.is_ttl() => Some(Extended::Ttl(args.ttl)),
            _ => None,
        };
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            ctime: now_ms,
            mtime: now_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            data_length: args.data.len() as i32,
            num_children: 0,
            pzxid: zxid,
        };
        let mut node = empty_node(stat);
        node.data = Bytes::copy_from_slice(args.data);
        node.acl = args.acl.clone();
        node.extended = extended;
        let (_, name) = split(&path);
        let name = name.to_string();
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.insert(name);
            parent.creates += 1;
            parent.stat.pzxid = zxid;
            parent.children_changed();
        }
        self.nodes.insert(path.clone(), node);
        triggers.push(Trigger {
            path: path.clone(),
            event: EventType::NodeCreated,
        });
        triggers.push(Trigger {
            path: parent_path.to_string(),
            event: EventType::NodeChildrenChanged,
        });
        Ok(path)
    }

    /// Checks a delete without applying it.
    pub fn check_delete(&self, path: &str, version: i32) -> Result<(), ErrorCode> {
        if path == "/" || path == "/zookeeper" {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.node(path)?;
        if version != -1 && version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        Ok(())
    }

    /// Checks and applies a delete.
    pub fn delete(
        &mut self,
        path: &str,
        version: i32,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), ErrorCode> {
        self.check_delete(path, version)?;
        self.nodes.remove(path);
        let (parent_path, name) = split(path);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.children.remove(name);
            parent.stat.pzxid = zxid;
            parent.children_changed();
        }
        triggers.push(Trigger {
            path: path.to_string(),
            event: EventType::NodeDeleted,
        });
        triggers.push(Trigger {
            path: parent_path.to_string(),
            event: EventType::NodeChildrenChanged,
        });
        Ok(())
    }

    /// Checks and applies a data write; returns the new stat.
    pub fn set_data(
        &mut self,
        path: &str,
        data: &[u8],
        version: i32,
        zxid: i64,
        now_ms: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Stat, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        if version != -1 && version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        node.data = Bytes::copy_from_slice(data);
        node.stat.version += 1;
        node.stat.mzxid = zxid;
        node.stat.mtime = now_ms;
        node.stat.data_length = data.len() as i32;
        triggers.push(Trigger {
            path: path.to_string(),
            event: EventType::NodeDataChanged,
        });
        Ok(node.stat)
    }

    /// Checks and applies an ACL write; returns the new stat.
    pub fn set_acl(&mut self, path: &str, acl: Vec<Acl>, version: i32) -> Result<Stat, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        if version != -1 && version != node.stat.aversion {
            return Err(ErrorCode::BadVersion);
        }
        node.acl = acl;
        node.stat.aversion += 1;
        Ok(node.stat)
    }

    /// A version check (inside `multi`).
    pub fn check_version(&self, path: &str, version: i32) -> Result<(), ErrorCode> {
        let node = self.node(path)?;
        if version != -1 && version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        Ok(())
    }

    /// The ephemeral nodes of `session`, in path order.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.owned_by(session))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Nodes below `path` (not counting it).
    pub fn descendants(&self, path: &str) -> usize {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .count()
    }

    /// Containers that had children and have none, and TTL nodes unchanged and childless
    /// for their TTL: what the server's container manager would delete at `now_ms`.
    pub fn expired_extended(&self, now_ms: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.children.is_empty())
            .filter(|(_, n)| match n.extended {
                Some(Extended::Ttl(ttl)) => now_ms - n.stat.mtime > ttl,
                Some(Extended::Container) => n.stat.cversion > 0,
                None => false,
            })
            .map(|(p, _)| p.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(tree: &mut Tree, path: &str, mode: CreateMode) -> Result<String, ErrorCode> {
        tree.zxid += 1;
        let zxid = tree.zxid;
        tree.create(
            &CreateArgs {
                path,
                data: b"x",
                acl: vec![],
                mode,
                ttl: 0,
            },
            7,
            zxid,
            0,
            &mut vec![],
        )
    }

    #[test]
    fn sequential_names_follow_the_parent_cversion() {
        let mut tree = Tree::default();
        create(&mut tree, "/a", CreateMode::Persistent).unwrap();
        create(&mut tree, "/a/x", CreateMode::Persistent).unwrap();
        let seq = create(&mut tree, "/a/s-", CreateMode::PersistentSequential).unwrap();
        assert_eq!(seq, "/a/s-0000000001");
        let stat = tree.get("/a").unwrap().stat;
        assert_eq!((stat.cversion, stat.num_children, stat.pzxid), (2, 2, 3));
        // A delete counts in the cversion clients see, not in sequence numbers (as in
        // ZooKeeper 3.8, which keeps creates and shows `2 * creates - children`).
        tree.delete("/a/x", -1, 4, &mut vec![]).unwrap();
        assert_eq!(tree.get("/a").unwrap().stat.cversion, 3);
        let seq = create(&mut tree, "/a/s-", CreateMode::PersistentSequential).unwrap();
        assert_eq!(seq, "/a/s-0000000002");
    }

    #[test]
    fn ephemerals_have_no_children_and_die_with_their_owner() {
        let mut tree = Tree::default();
        create(&mut tree, "/e", CreateMode::Ephemeral).unwrap();
        assert_eq!(
            create(&mut tree, "/e/c", CreateMode::Persistent),
            Err(ErrorCode::NoChildrenForEphemerals)
        );
        assert_eq!(tree.ephemerals_of(7), vec!["/e".to_string()]);
        assert_eq!(tree.check_delete("/", -1), Err(ErrorCode::BadArguments));
    }
}
