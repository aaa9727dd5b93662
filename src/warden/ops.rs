//! The client's operations, supervised: each waits for a connected session and is retried by
//! the policy when that is safe.

use bytes::Bytes;

use super::handle::Warden;
use super::retry_loop::OpClass;
use crate::client::{MultiReadOp, OneshotWatcher, Op, PersistentWatcher, Reconfig, SessionId};
use crate::error::Result;
use crate::proto::records::ClientInfo;
use crate::proto::{Acl, AddWatchMode, CreateMode, OpResult, Stat, WatcherType};

impl Warden {
    /// The node's [`Stat`], or `None` if it does not exist. Retried.
    ///
    /// # Errors
    /// `NoAuth`; `InvalidPath`; connection errors once retries are spent; `Timeout` past the
    /// call's deadline; `Closed`.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.run(OpClass::Idempotent, "exists", path, |c| c.exists(path))
            .await
    }

    /// The node's data and stat. Retried.
    ///
    /// # Errors
    /// `NoNode`; `NoAuth`; as [`Warden::exists`].
    pub async fn get_data(&self, path: &str) -> Result<(Bytes, Stat)> {
        self.run(OpClass::Idempotent, "get_data", path, |c| c.get_data(path))
            .await
    }

    /// The node's data and stat, leaving a one-shot watch on the current session. For a watch
    /// that survives session loss, use [`Warden::watch_data`].
    ///
    /// # Errors
    /// As [`Warden::get_data`].
    pub async fn get_data_and_watch(&self, path: &str) -> Result<(Bytes, Stat, OneshotWatcher)> {
        self.run(OpClass::Idempotent, "get_data_and_watch", path, |c| {
            c.get_data_and_watch(path)
        })
        .await
    }

    /// The node's stat (or `None`), leaving a one-shot watch on the current session.
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn exists_and_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatcher)> {
        self.run(OpClass::Idempotent, "exists_and_watch", path, |c| {
            c.exists_and_watch(path)
        })
        .await
    }

    /// The names of the node's children. Retried.
    ///
    /// # Errors
    /// `NoNode`; as [`Warden::exists`].
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        self.run(OpClass::Idempotent, "get_children", path, |c| {
            c.get_children(path)
        })
        .await
    }

    /// The names of the node's children and its stat. Retried.
    ///
    /// # Errors
    /// As [`Warden::get_children`].
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        self.run(OpClass::Idempotent, "get_children2", path, |c| {
            c.get_children2(path)
        })
        .await
    }

    /// The children, leaving a one-shot child watch on the current session. For a watch that
    /// survives session loss, use [`Warden::watch_children`].
    ///
    /// # Errors
    /// As [`Warden::get_children`].
    pub async fn get_children_and_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, OneshotWatcher)> {
        self.run(OpClass::Idempotent, "get_children_and_watch", path, |c| {
            c.get_children_and_watch(path)
        })
        .await
    }

    /// The number of descendants (ZooKeeper 3.6+). Retried.
    ///
    /// # Errors
    /// As [`Warden::get_children`].
    pub async fn get_all_children_number(&self, path: &str) -> Result<u32> {
        self.run(OpClass::Idempotent, "get_all_children_number", path, |c| {
            c.get_all_children_number(path)
        })
        .await
    }

    /// The current session's ephemeral nodes under a path prefix (ZooKeeper 3.6+). Retried.
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        self.run(OpClass::Idempotent, "get_ephemerals", prefix, |c| {
            c.get_ephemerals(prefix)
        })
        .await
    }

    /// The node's ACL and stat. Retried.
    ///
    /// # Errors
    /// `NoNode`; as [`Warden::exists`].
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        self.run(OpClass::Idempotent, "get_acl", path, |c| c.get_acl(path))
            .await
    }

    /// Replaces the node's ACL if its ACL version matches. Retried (a repeated versioned
    /// write fails `BadVersion` rather than applying twice).
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; `InvalidAcl`; `NoAuth`; as [`Warden::exists`].
    pub async fn set_acl(&self, path: &str, acl: &[Acl], aversion: Option<i32>) -> Result<Stat> {
        self.run(OpClass::Idempotent, "set_acl", path, |c| {
            c.set_acl(path, acl, aversion)
        })
        .await
    }

    /// Waits until the connected server has caught up with the leader. Retried.
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn sync(&self, path: &str) -> Result<()> {
        self.run(OpClass::Idempotent, "sync", path, |c| c.sync(path))
            .await
    }

    /// Succeeds if the node exists (with data version `version`, if given). Retried.
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; as [`Warden::exists`].
    pub async fn check(&self, path: &str, version: Option<i32>) -> Result<()> {
        self.run(OpClass::Idempotent, "check", path, |c| {
            c.check(path, version)
        })
        .await
    }

    /// Applies `ops` atomically. A transaction that may have been applied is not repeated:
    /// after an ambiguous connection loss this returns `ConnectionLoss`. (Put a version check
    /// in the transaction, or use [`Warden::retrying`] with a read, to make it safe to
    /// repeat.)
    ///
    /// # Errors
    /// `MultiFailed` with the failing op; `ConnectionLoss`; as [`Warden::exists`].
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let path = ops.first().map_or("", Op::path);
        self.run(OpClass::NonIdempotent, "multi", path, |c| c.multi(ops))
            .await
    }

    /// Applies `ops` atomically on session `session` only, in one attempt, never on a later
    /// session: for work that is only valid for the session that holds something (a lock
    /// node, an ephemeral claim), where a retry on a new session would act in someone else's
    /// name. The caller decides whether to try again (after a `ConnectionLoss` the transaction
    /// may have been applied).
    ///
    /// # Errors
    /// [`Error::SessionExpired`](crate::Error::SessionExpired) when the warden no longer runs
    /// on `session` (nothing was sent); `NotConnected` while that session has no connection;
    /// otherwise as [`Warden::multi`], without retries.
    pub async fn multi_on_session(&self, session: SessionId, ops: &[Op]) -> Result<Vec<OpResult>> {
        let client = self
            .client()
            .filter(|c| c.session_id() == session)
            .ok_or(crate::error::Error::SessionExpired)?;
        client.multi(ops).await
    }

    /// Reads several nodes in one round trip (ZooKeeper 3.6+). Retried.
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn multi_read(&self, ops: &[MultiReadOp]) -> Result<Vec<OpResult>> {
        self.run(OpClass::Idempotent, "multi_read", "", |c| c.multi_read(ops))
            .await
    }

    /// Adds a persistent watch on the current session. The stream ends if the session is lost;
    /// for one that survives, use [`Warden::watch_tree`].
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatcher> {
        self.run(OpClass::Idempotent, "add_watch", path, |c| {
            c.add_watch(path, mode)
        })
        .await
    }

    /// Removes this session's watches of a type on a path. Retried.
    ///
    /// # Errors
    /// `NoWatcher`; as [`Warden::exists`].
    pub async fn remove_watches(&self, path: &str, watcher_type: WatcherType) -> Result<()> {
        self.run(OpClass::Idempotent, "remove_watches", path, |c| {
            c.remove_watches(path, watcher_type)
        })
        .await
    }

    /// The identities the server knows the current session by (ZooKeeper 3.7+). Retried.
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        self.run(OpClass::Idempotent, "who_am_i", "", |c| c.who_am_i())
            .await
    }

    /// The ensemble configuration. Retried.
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn get_config(&self) -> Result<(Bytes, Stat)> {
        self.run(OpClass::Idempotent, "get_config", "", |c| c.get_config())
            .await
    }

    /// The ensemble configuration, leaving a one-shot watch on the current session that fires
    /// when it changes. Retried.
    ///
    /// # Errors
    /// As [`Warden::exists`].
    pub async fn get_config_and_watch(&self) -> Result<(Bytes, Stat, OneshotWatcher)> {
        self.run(OpClass::Idempotent, "get_config_and_watch", "", |c| {
            c.get_config_and_watch()
        })
        .await
    }

    /// Changes the ensemble's membership; see [`Client::reconfig`](crate::Client::reconfig).
    /// Not idempotent: retried only when the change was certainly not made (never after a
    /// lost connection, which leaves the outcome unknown).
    ///
    /// # Errors
    /// As [`Client::reconfig`](crate::Client::reconfig), connection errors once retries are
    /// spent; `Timeout` past the call's deadline; `Closed`.
    pub async fn reconfig(&self, change: &Reconfig) -> Result<(Bytes, Stat)> {
        self.run(OpClass::NonIdempotent, "reconfig", "", |c| {
            c.reconfig(change)
        })
        .await
    }

    /// Creates a node with an open ACL in `mode`: shorthand for
    /// `warden.create(path, data).mode(mode).await`.
    ///
    /// # Errors
    /// As [`CreateBuilder`](super::CreateBuilder).
    pub async fn create_node(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<String> {
        self.create(path, data).mode(mode).await
    }
}
