//! Writes: `set_data`, `delete`, `set_acl`, and the version `check`.

use std::borrow::Cow;
use std::future::Future;

use crate::client::command::OnReply;
use crate::client::handle::{Client, await_reply, decode};
use crate::error::Result;
use crate::proto::records::{DeleteRequest, SetAclRequest, SetDataRequest, StatResponse};
use crate::proto::{Acl, OpCode, Stat};

/// The wire form of "any version".
pub(crate) fn version_or_any(version: Option<i32>) -> i32 {
    version.unwrap_or(-1)
}

impl Client {
    /// Replaces the node's data, if its version is `version` (`None`: any version). Returns
    /// the new [`Stat`].
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; `NoAuth`; `ConnectionLoss` (the write may or may not have been
    /// applied); client-side `InvalidPath`, `DataTooLarge`.
    pub fn set_data(
        &self,
        path: &str,
        data: &[u8],
        version: Option<i32>,
    ) -> impl Future<Output = Result<Stat>> + Send + use<> {
        let sent = self.server_path(path, false).and_then(|server_path| {
            self.send(
                OpCode::SetData,
                &SetDataRequest {
                    path: &server_path,
                    data,
                    version: version_or_any(version),
                },
                server_path.len() + data.len() + 12,
                OnReply::Nothing,
                path,
            )
        });
        async move { Ok(decode::<StatResponse>(&await_reply(sent).await?)?.stat) }
    }

    /// Deletes the node, if its version is `version` (`None`: any version).
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; `NotEmpty`; `NoAuth`; `ConnectionLoss`; client-side
    /// `InvalidPath` (including the root).
    pub fn delete(
        &self,
        path: &str,
        version: Option<i32>,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        let sent = self.server_path(path, false).and_then(|server_path| {
            if path == "/" {
                return Err(crate::error::Error::InvalidPath {
                    path: path.to_owned(),
                    reason: "the root cannot be deleted",
                });
            }
            self.send(
                OpCode::Delete,
                &DeleteRequest {
                    path: &server_path,
                    version: version_or_any(version),
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

    /// Replaces the node's ACL, if its ACL version is `aversion` (`None`: any).
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; `InvalidAcl`; `NoAuth`; `ConnectionLoss`.
    pub fn set_acl(
        &self,
        path: &str,
        acl: &[Acl],
        aversion: Option<i32>,
    ) -> impl Future<Output = Result<Stat>> + Send + use<> {
        let sent = self.server_path(path, false).and_then(|server_path| {
            self.send(
                OpCode::SetAcl,
                &SetAclRequest {
                    path: &server_path,
                    acl: Cow::Borrowed(acl),
                    version: version_or_any(aversion),
                },
                server_path.len() + acl.len() * 32 + 12,
                OnReply::Nothing,
                path,
            )
        });
        async move { Ok(decode::<StatResponse>(&await_reply(sent).await?)?.stat) }
    }

    /// Succeeds if the node exists with data version `version` (`None`: exists at all).
    /// Sent as a one-op transaction, which every server since 3.4 accepts.
    ///
    /// # Errors
    /// `NoNode`; `BadVersion`; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn check(
        &self,
        path: &str,
        version: Option<i32>,
    ) -> impl Future<Output = Result<()>> + Send + use<> {
        let result = self.multi(&[super::multi::Op::check(path, version)]);
        async move {
            result.await.map(|_| ()).map_err(|e| match e {
                crate::error::Error::MultiFailed { code, .. } => {
                    crate::error::Error::from_code(code)
                }
                other => other,
            })
        }
    }
}
