//! Reads: `exists`, `get_data`, `get_children`, `get_children2`, `get_acl`,
//! `get_all_children_number`, `get_ephemerals`, and their watching forms.

use std::future::Future;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::client::command::{OnReply, Reply};
use crate::client::handle::{Client, await_reply, decode};
use crate::client::watch::{OneshotWatcher, WatchKind, WatchSink};
use crate::error::{Error, Result};
use crate::proto::records::{
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse,
    GetDataResponse, GetEphemeralsResponse, PathRequest, PathWatchRequest, StatResponse,
};
use crate::proto::{Acl, OpCode, Stat};

type ReplyRx = oneshot::Receiver<Result<Reply>>;

impl Client {
    /// Sends a path-and-watch-flag request without a watch.
    fn send_path_read(&self, op: OpCode, path: &str) -> Result<ReplyRx> {
        let server_path = self.server_path(path, false)?;
        self.send(
            op,
            &PathWatchRequest {
                path: &server_path,
                watch: false,
            },
            server_path.len() + 8,
            OnReply::Nothing,
            path,
        )
    }

    /// Sends a path-and-watch-flag request that leaves a one-shot watch.
    fn send_watched_read(
        &self,
        op: OpCode,
        path: &str,
        on_ok: WatchKind,
        on_no_node: Option<WatchKind>,
    ) -> Result<(ReplyRx, OneshotWatcher)> {
        let server_path = self.server_path(path, false)?.into_owned();
        let id = self.next_watch_id();
        let (event_tx, event_rx) = oneshot::channel();
        let rx = self.send(
            op,
            &PathWatchRequest {
                path: &server_path,
                watch: true,
            },
            server_path.len() + 8,
            OnReply::RegisterWatch {
                id,
                server_path: server_path.clone(),
                on_ok,
                on_no_node,
                sink: WatchSink::Oneshot(event_tx),
            },
            path,
        )?;
        let watcher = OneshotWatcher::new(id, on_ok, server_path, event_rx, self.weak_commands());
        Ok((rx, watcher))
    }

    /// Sends a request that carries only a path.
    fn send_path_only(&self, op: OpCode, path: &str) -> Result<ReplyRx> {
        let server_path = self.server_path(path, false)?;
        self.send(
            op,
            &PathRequest { path: &server_path },
            server_path.len() + 4,
            OnReply::Nothing,
            path,
        )
    }

    /// The node's [`Stat`], or `None` if it does not exist.
    ///
    /// # Errors
    /// `NoAuth`; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn exists(&self, path: &str) -> impl Future<Output = Result<Option<Stat>>> + Send + use<> {
        let sent = self.send_path_read(OpCode::Exists, path);
        async move { exists_result(await_reply(sent).await) }
    }

    /// As [`Client::exists`], leaving a watch that fires when the node is created, changed or
    /// deleted.
    ///
    /// # Errors
    /// As [`Client::exists`].
    pub fn exists_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Option<Stat>, OneshotWatcher)>> + Send + use<> {
        let sent = self.send_watched_read(
            OpCode::Exists,
            path,
            WatchKind::Data,
            Some(WatchKind::Exist),
        );
        async move {
            let (rx, watcher) = sent?;
            Ok((exists_result(await_reply(Ok(rx)).await)?, watcher))
        }
    }

    /// The node's data and [`Stat`].
    ///
    /// # Errors
    /// `NoNode`; `NoAuth`; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn get_data(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Bytes, Stat)>> + Send + use<> {
        let sent = self.send_path_read(OpCode::GetData, path);
        async move {
            let reply: GetDataResponse = decode(&await_reply(sent).await?)?;
            Ok((reply.data, reply.stat))
        }
    }

    /// As [`Client::get_data`], leaving a watch that fires when the data changes or the node
    /// is deleted.
    ///
    /// # Errors
    /// As [`Client::get_data`] (no watch is left when it fails).
    pub fn get_data_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Bytes, Stat, OneshotWatcher)>> + Send + use<> {
        let sent = self.send_watched_read(OpCode::GetData, path, WatchKind::Data, None);
        async move {
            let (rx, watcher) = sent?;
            let reply: GetDataResponse = decode(&await_reply(Ok(rx)).await?)?;
            Ok((reply.data, reply.stat, watcher))
        }
    }

    /// The names of the node's children (unordered).
    ///
    /// # Errors
    /// `NoNode`; `NoAuth`; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn get_children(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + use<> {
        let sent = self.send_path_read(OpCode::GetChildren, path);
        async move { Ok(decode::<GetChildrenResponse>(&await_reply(sent).await?)?.children) }
    }

    /// As [`Client::get_children`], leaving a watch that fires when a child is added or
    /// removed, or the node is deleted.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub fn get_children_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, OneshotWatcher)>> + Send + use<> {
        let sent = self.send_watched_read(OpCode::GetChildren, path, WatchKind::Child, None);
        async move {
            let (rx, watcher) = sent?;
            let reply: GetChildrenResponse = decode(&await_reply(Ok(rx)).await?)?;
            Ok((reply.children, watcher))
        }
    }

    /// The names of the node's children and the node's [`Stat`].
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub fn get_children2(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat)>> + Send + use<> {
        let sent = self.send_path_read(OpCode::GetChildren2, path);
        async move {
            let reply: GetChildren2Response = decode(&await_reply(sent).await?)?;
            Ok((reply.children, reply.stat))
        }
    }

    /// As [`Client::get_children2`], leaving a child watch.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub fn get_children2_and_watch(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<String>, Stat, OneshotWatcher)>> + Send + use<> {
        let sent = self.send_watched_read(OpCode::GetChildren2, path, WatchKind::Child, None);
        async move {
            let (rx, watcher) = sent?;
            let reply: GetChildren2Response = decode(&await_reply(Ok(rx)).await?)?;
            Ok((reply.children, reply.stat, watcher))
        }
    }

    /// The number of all descendants of the node (ZooKeeper 3.6+).
    ///
    /// # Errors
    /// `NoNode`; `NoAuth`; `Unimplemented` on older servers; `ConnectionLoss`.
    pub fn get_all_children_number(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<u32>> + Send + use<> {
        let sent = self.send_path_only(OpCode::GetAllChildrenNumber, path);
        async move {
            let reply: GetAllChildrenNumberResponse = decode(&await_reply(sent).await?)?;
            u32::try_from(reply.total).map_err(|_| {
                Error::MalformedFrame(format!("negative child count {}", reply.total).into())
            })
        }
    }

    /// Paths of this session's ephemeral nodes under `prefix` (`/` for all), ZooKeeper 3.6+.
    /// The prefix is a plain string prefix, so `/app/lo` also matches `/app/lock-1`.
    ///
    /// # Errors
    /// `Unimplemented` on older servers; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn get_ephemerals(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send + use<> {
        let client = self.clone();
        // A prefix may end in '/' or be any string prefix of a path; validate what we can.
        let sent = if prefix.starts_with('/') {
            let server_prefix = if client.inner.chroot.is_empty() {
                prefix.to_owned()
            } else {
                client.inner.chroot.apply(prefix)
            };
            self.send(
                OpCode::GetEphemerals,
                &PathRequest {
                    path: &server_prefix,
                },
                server_prefix.len() + 4,
                OnReply::Nothing,
                prefix,
            )
        } else {
            Err(Error::InvalidPath {
                path: prefix.to_owned(),
                reason: "path must start with '/'",
            })
        };
        async move {
            let reply: GetEphemeralsResponse = decode(&await_reply(sent).await?)?;
            Ok(reply
                .ephemerals
                .into_iter()
                .map(|p| client.client_path(p))
                .collect())
        }
    }

    /// The node's ACL and [`Stat`].
    ///
    /// # Errors
    /// `NoNode`; `NoAuth`; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn get_acl(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<(Vec<Acl>, Stat)>> + Send + use<> {
        let sent = self.send_path_only(OpCode::GetAcl, path);
        async move {
            let reply: GetAclResponse = decode(&await_reply(sent).await?)?;
            Ok((reply.acl, reply.stat))
        }
    }
}

fn exists_result(reply: Result<Reply>) -> Result<Option<Stat>> {
    match reply {
        Ok(reply) => Ok(Some(decode::<StatResponse>(&reply)?.stat)),
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}
