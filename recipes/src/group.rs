//! Group membership: members announce themselves with a [`GroupMember`] (an ephemeral
//! [`PersistentNode`] at `<group>/<member id>` holding the member's payload), and anyone
//! follows the group with a [`Group`], a live map of member id → payload.
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use std::time::Duration;
//! use zkwarden_recipes::group::{Group, GroupMember};
//!
//! let me = GroupMember::builder(&warden, "/workers", "worker-7")
//!     .payload("10.0.0.7:9000")
//!     .start()
//!     .await?;
//! me.wait_joined(Duration::from_secs(10)).await;
//!
//! let group = Group::builder(&warden, "/workers").start().await?;
//! let mut members = group.members();
//! loop {
//!     for (id, payload) in members.borrow_and_update().iter() {
//!         println!("{id}: {payload:?}");
//!     }
//!     if members.changed().await.is_err() {
//!         break;
//!     }
//! }
//! me.leave().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Under Suspended/Lost
//!
//! While `Suspended`, a member's node stays on the server as long as its session may live,
//! and the group view keeps what it last saw. When a member's session is `Lost` its node
//! vanishes with it (watchers see the member leave) and is created again on the new session
//! (watchers see it come back). A group view whose own session is lost lists the group again
//! on the new session and replaces its map with what it finds (a resync), so joins and
//! leaves it missed are reflected.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zkwarden::warden::TreeEvent;
use zkwarden::{Error, Result, Stat, Warden};

use crate::persistent_node::{NodeMode, PersistentNode, PersistentNodeBuilder};

/// A member of a group: an ephemeral node `<group>/<member id>` holding the member's payload,
/// kept in existence by a [`PersistentNode`]. Dropping it stops keeping the node (it then
/// lives until the session ends); [`leave`](GroupMember::leave) deletes it.
#[derive(Debug)]
pub struct GroupMember {
    id: String,
    node: PersistentNode,
}

/// Settings of a [`GroupMember`], from [`GroupMember::builder`].
#[derive(Debug, Clone)]
#[must_use = "a member does not join until started"]
pub struct GroupMemberBuilder {
    id: String,
    node: PersistentNodeBuilder,
}

impl GroupMemberBuilder {
    /// The member's payload (empty unless set).
    pub fn payload(mut self, payload: impl Into<Bytes>) -> Self {
        self.node = self.node.data(payload);
        self
    }

    /// Joins the group. Returns without waiting for the server; the node is created in the
    /// background (see [`wait_joined`](GroupMember::wait_joined)). The group node is
    /// created as a container if it is missing.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid group path or member id; [`Error::Closed`] when
    /// the warden is closed.
    pub async fn start(self) -> Result<GroupMember> {
        Ok(GroupMember {
            id: self.id,
            node: self.node.start().await?,
        })
    }
}

impl GroupMember {
    /// Settings for joining the group at `group_path` as `member_id`.
    pub fn builder(warden: &Warden, group_path: &str, member_id: &str) -> GroupMemberBuilder {
        let path = member_path(group_path, member_id);
        GroupMemberBuilder {
            id: member_id.to_owned(),
            node: PersistentNode::builder(warden, &path, NodeMode::Ephemeral),
        }
    }

    /// Joins the group at `group_path` as `member_id` with `payload`, without checking the
    /// path. Returns at once; the node is created in the background.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[deprecated(
        note = "use `GroupMember::builder(warden, group_path, member_id).payload(payload).start().await`"
    )]
    pub fn join(
        warden: &Warden,
        group_path: &str,
        member_id: &str,
        payload: impl Into<Bytes>,
    ) -> Self {
        let path = member_path(group_path, member_id);
        GroupMember {
            id: member_id.to_owned(),
            node: PersistentNode::builder(warden, &path, NodeMode::Ephemeral)
                .data(payload)
                .spawn(),
        }
    }

    /// This member's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The node behind this membership.
    pub fn node(&self) -> &PersistentNode {
        &self.node
    }

    /// Waits until the member's node exists, up to `timeout`; returns whether it does.
    pub async fn wait_joined(&self, timeout: Duration) -> bool {
        self.node.wait_for_initial_create(timeout).await
    }

    /// Replaces the payload (now, and on every recreation).
    ///
    /// # Errors
    /// As [`PersistentNode::set_data`].
    pub async fn set_payload(&self, payload: impl Into<Bytes>) -> Result<()> {
        self.node.set_data(payload).await
    }

    /// Leaves the group: deletes the member's node.
    ///
    /// # Errors
    /// As [`PersistentNode::close`].
    pub async fn leave(self) -> Result<()> {
        self.node.close().await
    }
}

/// A live view of a group's members and their payloads, kept current by a background task
/// for as long as this is held.
///
/// It follows the group node's subtree with [`Warden::watch_tree`] (one recursive watch,
/// ZooKeeper 3.6+), so payload changes show as well as joins and leaves. Only direct
/// children of the group node count as members.
#[derive(Debug)]
pub struct Group {
    path: String,
    members: watch::Receiver<BTreeMap<String, Bytes>>,
    task: JoinHandle<()>,
}

/// Settings of a [`Group`] view, from [`Group::builder`].
#[derive(Debug, Clone)]
#[must_use = "a group view does nothing until started"]
pub struct GroupBuilder {
    warden: Warden,
    path: String,
}

impl GroupBuilder {
    /// Starts following the group (which need not exist yet). The map is empty until the
    /// group has been read once.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid path; [`Error::Closed`] when the warden is
    /// closed.
    pub async fn start(self) -> Result<Group> {
        crate::starting::check(&self.warden, &self.path, false)?;
        Ok(self.spawn())
    }

    fn spawn(self) -> Group {
        let (tx, members) = watch::channel(BTreeMap::new());
        let task = tokio::spawn(follow(self.warden, self.path.clone(), tx));
        Group {
            path: self.path,
            members,
            task,
        }
    }
}

impl Group {
    /// Settings for a view of the group at `group_path`.
    pub fn builder(warden: &Warden, group_path: &str) -> GroupBuilder {
        GroupBuilder {
            warden: warden.clone(),
            path: group_path.to_owned(),
        }
    }

    /// Starts following the group at `group_path`, without checking the path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[deprecated(note = "use `Group::builder(warden, group_path).start().await`")]
    pub fn watch(warden: &Warden, group_path: &str) -> Group {
        Group::builder(warden, group_path).spawn()
    }

    /// A receiver of the members (id → payload), to read and to await changes.
    pub fn members(&self) -> watch::Receiver<BTreeMap<String, Bytes>> {
        self.members.clone()
    }

    /// The members now.
    pub fn snapshot(&self) -> BTreeMap<String, Bytes> {
        self.members.borrow().clone()
    }

    /// The group's path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn member_path(group: &str, member: &str) -> String {
    if group == "/" {
        format!("/{member}")
    } else {
        format!("{}/{member}", group.trim_end_matches('/'))
    }
}

/// The member id of `path` if it is a direct child of `group`.
fn member_of<'p>(group: &str, path: &'p str) -> Option<&'p str> {
    let rest = if group == "/" {
        path.strip_prefix('/')?
    } else {
        path.strip_prefix(group)?.strip_prefix('/')?
    };
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// A member's payload from the read of its node; `None` if it is gone (or cannot be read).
fn payload(path: &str, read: Result<(Bytes, Stat)>) -> Option<Bytes> {
    match read {
        Ok((data, _)) => Some(data),
        Err(Error::NoNode) => None,
        Err(error) => {
            tracing::warn!(%path, %error, "could not read a group member");
            None
        }
    }
}

/// The view's task: list on every resync, read what changed in between.
async fn follow(warden: Warden, group: String, tx: watch::Sender<BTreeMap<String, Bytes>>) {
    let mut tree = warden.watch_tree(&group);
    while let Some(event) = tree.next().await {
        tracing::trace!(?event, "group event");
        match event {
            TreeEvent::Resync { nodes, .. } => {
                let members: Vec<(&str, &str)> = nodes
                    .keys()
                    .filter_map(|path| Some((member_of(&group, path)?, path.as_str())))
                    .collect();
                // Every member read at once (pipelined), not one round trip each.
                let paths: Vec<&str> = members.iter().map(|&(_, path)| path).collect();
                let reads = warden.get_data_batch(&paths).await;
                let mut fresh = BTreeMap::new();
                for ((id, path), read) in members.into_iter().zip(reads) {
                    if let Some(data) = payload(path, read) {
                        fresh.insert(id.to_owned(), data);
                    }
                }
                tx.send_if_modified(|members| {
                    let modified = *members != fresh;
                    *members = fresh;
                    modified
                });
            }
            TreeEvent::Created { path } | TreeEvent::Changed { path } => {
                let Some(id) = member_of(&group, &path) else {
                    continue;
                };
                let data = payload(&path, warden.get_data(&path).await);
                tx.send_if_modified(|members| match data {
                    Some(data) => members.insert(id.to_owned(), data.clone()) != Some(data),
                    None => members.remove(id).is_some(),
                });
            }
            TreeEvent::Deleted { path } => {
                if path == group {
                    tx.send_if_modified(|members| {
                        let modified = !members.is_empty();
                        members.clear();
                        modified
                    });
                } else if let Some(id) = member_of(&group, &path) {
                    tx.send_if_modified(|members| members.remove(id).is_some());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_direct_children() {
        assert_eq!(member_of("/g", "/g/a"), Some("a"));
        assert_eq!(member_of("/g", "/g/a/b"), None);
        assert_eq!(member_of("/g", "/g"), None);
        assert_eq!(member_of("/g", "/gx/a"), None);
        assert_eq!(member_of("/", "/a"), Some("a"));
        assert_eq!(member_path("/g", "a"), "/g/a");
        assert_eq!(member_path("/", "a"), "/a");
    }
}
