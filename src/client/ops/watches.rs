//! Persistent watches (`add_watch`) and watch removal (`remove_watches`, `check_watches`).

use std::future::Future;

use tokio::sync::mpsc;

use crate::client::command::OnReply;
use crate::client::handle::{Client, await_reply};
use crate::client::watch::{PersistentWatcher, WatchKind, WatchSink};
use crate::error::{Error, Result};
use crate::proto::records::{AddWatchRequest, WatchesRequest};
use crate::proto::{AddWatchMode, ErrorCode, OpCode, WatcherType};

impl Client {
    /// Adds a persistent watch (ZooKeeper 3.6+) and returns the stream of its events.
    ///
    /// [`AddWatchMode::Persistent`] reports creation, data changes, deletion and child-list
    /// changes of `path`; [`AddWatchMode::PersistentRecursive`] reports creation, data changes
    /// and deletion of `path` and every node below it. The watch survives firing and
    /// reconnections; dropping the stream removes it (from the server too, once no other local
    /// watcher of that mode is left on the path). The node need not exist.
    ///
    /// # Errors
    /// `NoAuth`; `Unimplemented` on servers before 3.6; `ConnectionLoss`; client-side
    /// `InvalidPath`.
    pub fn add_watch(
        &self,
        path: &str,
        mode: AddWatchMode,
    ) -> impl Future<Output = Result<PersistentWatcher>> + Send + use<> {
        let kind = WatchKind::from_mode(mode);
        let sent = self.server_path(path, false).and_then(|server_path| {
            let server_path = server_path.into_owned();
            let id = self.next_watch_id();
            let (tx, rx) = mpsc::unbounded_channel();
            let reply = self.send(
                OpCode::AddWatch,
                &AddWatchRequest {
                    path: &server_path,
                    mode: mode.code(),
                },
                server_path.len() + 8,
                OnReply::RegisterWatch {
                    id,
                    server_path: server_path.clone(),
                    on_ok: kind,
                    on_no_node: None,
                    sink: WatchSink::Stream(tx),
                },
                path,
            )?;
            Ok((
                reply,
                PersistentWatcher::new(id, kind, server_path, rx, self.weak_commands()),
            ))
        });
        async move {
            let (reply, watcher) = sent?;
            await_reply(Ok(reply)).await?;
            Ok(watcher)
        }
    }

    /// Removes every watch of `watcher_type` this session has on `path`, on the server and
    /// locally: each local watcher is told with a `*WatchRemoved` event (one-shot watches
    /// resolve with it, persistent streams receive it).
    ///
    /// Where a persistent or recursive watch of this session stands on `path`, the one-shot
    /// watches there are kept client-side (see docs/watches.md): removing
    /// [`WatcherType::Data`] or [`WatcherType::Children`] then removes them locally and
    /// leaves the server's entry to the persistent watch.
    ///
    /// Servers before 3.9 remove persistent watches only with [`WatcherType::Any`]; asked for
    /// [`WatcherType::Persistent`] or [`WatcherType::PersistentRecursive`] they refuse, and this
    /// returns `Unimplemented` with nothing removed. (Dropping the [`PersistentWatcher`] always
    /// works.)
    ///
    /// # Errors
    /// `NoWatcher` when the server holds no such watch; `Unimplemented` (see above);
    /// `ConnectionLoss`; client-side `InvalidPath`.
    pub fn remove_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        let sent = self.server_path(path, false).and_then(|server_path| {
            self.send(
                OpCode::RemoveWatches,
                &WatchesRequest {
                    path: &server_path,
                    kind: watcher_type.code(),
                },
                server_path.len() + 8,
                OnReply::RemoveLocalWatches {
                    server_path: server_path.to_string(),
                    client_path: path.to_owned(),
                    watcher_type,
                },
                path,
            )
        });
        let persistent = matches!(
            watcher_type,
            WatcherType::Persistent | WatcherType::PersistentRecursive
        );
        async move {
            match await_reply(sent).await {
                Ok(_) => Ok(()),
                // Servers before 3.9 cannot decode the persistent watcher types.
                Err(Error::Server(ErrorCode::MarshallingError)) if persistent => {
                    Err(Error::Unimplemented)
                }
                Err(e) => Err(e),
            }
        }
    }

    /// Asks the server whether this session has a watch of `watcher_type` on `path`.
    ///
    /// # Errors
    /// `NoWatcher` when it has none; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn check_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        let sent = self.server_path(path, false).and_then(|server_path| {
            self.send(
                OpCode::CheckWatches,
                &WatchesRequest {
                    path: &server_path,
                    kind: watcher_type.code(),
                },
                server_path.len() + 8,
                OnReply::Nothing,
                path,
            )
        });
        async move {
            await_reply(sent).await?;
            Ok(())
        }
    }
}
