//! Session-level operations: `sync`, `add_auth`, `who_am_i`, `get_config`.

use std::future::Future;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::client::command::{Command, OnReply};
use crate::client::handle::{Client, await_reply, decode};
use crate::client::watch::{OneshotWatcher, WatchKind, WatchSink};
use crate::error::{Error, Result};
use crate::proto::records::{
    ClientInfo, GetDataResponse, PathRequest, PathWatchRequest, SyncResponse, WhoAmIResponse,
};
use crate::proto::{OpCode, Stat};

/// The node holding the ensemble's dynamic configuration (never under a chroot).
pub const CONFIG_NODE: &str = "/zookeeper/config";

impl Client {
    /// Waits until the server this session is connected to has caught up with the leader, so
    /// a read that follows sees every write committed before the sync.
    ///
    /// # Errors
    /// `NoNode` is not returned for missing paths; `ConnectionLoss`; client-side
    /// `InvalidPath`.
    pub fn sync(&self, path: &str) -> impl Future<Output = Result<()>> + Send + use<> {
        let sent = self.server_path(path, false).and_then(|server_path| {
            self.send(
                OpCode::Sync,
                &PathRequest { path: &server_path },
                server_path.len() + 4,
                OnReply::Nothing,
                path,
            )
        });
        async move {
            let _: SyncResponse = decode(&await_reply(sent).await?)?;
            Ok(())
        }
    }

    /// Adds credentials to this session (for example scheme `digest`, auth `user:password`).
    /// Once accepted they are presented again after every reconnect.
    ///
    /// # Errors
    /// `AuthFailed` (the session ends: the server closes it); `ConnectionLoss` (try again);
    /// `InvalidArgument` for an empty scheme.
    pub fn add_auth(
        &self,
        scheme: &str,
        auth: &[u8],
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        let sent = if scheme.is_empty() {
            Err(Error::InvalidArgument(
                "auth scheme must not be empty".into(),
            ))
        } else if scheme.len() + auth.len() + 64 > self.inner.max_frame_len {
            Err(Error::DataTooLarge {
                len: scheme.len() + auth.len(),
                limit: self.inner.max_frame_len,
            })
        } else {
            let (reply, rx) = oneshot::channel();
            self.inner
                .commands
                .send(Command::Auth {
                    scheme: scheme.to_owned(),
                    auth: auth.to_vec(),
                    reply,
                })
                .map(|()| rx)
                .map_err(|_| self.terminal_error())
        };
        async move {
            match sent?.await {
                Ok(result) => result,
                Err(_) => Err(Error::Closed),
            }
        }
    }

    /// The identities the server associates with this session (ZooKeeper 3.7+).
    ///
    /// # Errors
    /// `Unimplemented` on older servers; `ConnectionLoss`.
    pub fn who_am_i(&self) -> impl Future<Output = Result<Vec<ClientInfo>>> + Send + use<> {
        // whoAmI has no request body.
        let sent = self.send(OpCode::WhoAmI, &Empty, 0, OnReply::Nothing, "");
        async move { Ok(decode::<WhoAmIResponse>(&await_reply(sent).await?)?.client_info) }
    }

    /// The ensemble's configuration (the data of `/zookeeper/config`, outside any chroot).
    ///
    /// # Errors
    /// `NoNode` on servers without dynamic configuration; `NoAuth`; `ConnectionLoss`.
    pub fn get_config(&self) -> impl Future<Output = Result<(Bytes, Stat)>> + Send + use<> {
        let sent = self.send(
            OpCode::GetData,
            &PathWatchRequest {
                path: CONFIG_NODE,
                watch: false,
            },
            CONFIG_NODE.len() + 8,
            OnReply::Nothing,
            CONFIG_NODE,
        );
        async move {
            let reply: GetDataResponse = decode(&await_reply(sent).await?)?;
            Ok((reply.data, reply.stat))
        }
    }

    /// As [`Client::get_config`], leaving a watch that fires when the configuration changes.
    ///
    /// # Errors
    /// As [`Client::get_config`].
    pub fn get_config_and_watch(
        &self,
    ) -> impl Future<Output = Result<(Bytes, Stat, OneshotWatcher)>> + Send + use<> {
        let id = self.next_watch_id();
        let (event_tx, event_rx) = oneshot::channel();
        let sent = self.send(
            OpCode::GetData,
            &PathWatchRequest {
                path: CONFIG_NODE,
                watch: true,
            },
            CONFIG_NODE.len() + 8,
            OnReply::RegisterWatch {
                id,
                server_path: CONFIG_NODE.to_owned(),
                on_ok: WatchKind::Data,
                on_no_node: None,
                sink: WatchSink::Oneshot(event_tx),
            },
            CONFIG_NODE,
        );
        let watcher = OneshotWatcher::new(
            id,
            WatchKind::Data,
            CONFIG_NODE.to_owned(),
            event_rx,
            self.weak_commands(),
        );
        async move {
            let reply: GetDataResponse = decode(&await_reply(sent).await?)?;
            Ok((reply.data, reply.stat, watcher))
        }
    }
}

/// A request with no body.
struct Empty;

impl<'a> crate::proto::Jute<'a> for Empty {
    fn write(&self, _buf: &mut bytes::BytesMut) {}
    fn read(
        _r: &mut crate::proto::Reader<'a>,
    ) -> std::result::Result<Self, crate::proto::DecodeError> {
        Ok(Empty)
    }
}
