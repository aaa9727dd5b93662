//! `create`, `create2`, containers and TTL nodes.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use crate::client::command::OnReply;
use crate::client::handle::{Client, await_reply, decode};
use crate::error::{Error, Result};
use crate::proto::records::{Create2Response, CreateRequest, CreateResponse, CreateTtlRequest};
use crate::proto::{Acl, CreateMode, OpCode, Stat};

/// How to create a node: its mode, ACL and (for TTL modes) time to live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// The creation mode.
    pub mode: CreateMode,
    /// The ACL (default: open to everyone).
    pub acl: Cow<'static, [Acl]>,
    /// Time to live, required for the TTL modes and refused for the others.
    pub ttl: Option<Duration>,
}

impl CreateOptions {
    /// Options for `mode`, with an open ACL and no TTL.
    pub fn new(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            acl: Cow::Borrowed(Acl::OPEN_UNSAFE),
            ttl: None,
        }
    }

    /// Sets the ACL.
    pub fn acl(mut self, acl: impl Into<Cow<'static, [Acl]>>) -> Self {
        self.acl = acl.into();
        self
    }

    /// Sets the time to live (TTL modes only).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Checks the combination of mode and TTL.
    pub(crate) fn validate(&self) -> Result<()> {
        match (self.mode.is_ttl(), self.ttl) {
            (true, None) => Err(Error::InvalidArgument(format!(
                "{:?} needs a TTL",
                self.mode
            ))),
            (true, Some(ttl)) if ttl.is_zero() || ttl.as_millis() > (1u128 << 40) => Err(
                Error::InvalidArgument(format!("TTL {ttl:?} is out of range")),
            ),
            (false, Some(_)) => Err(Error::InvalidArgument(format!(
                "{:?} does not take a TTL",
                self.mode
            ))),
            _ if self.acl.is_empty() => Err(Error::InvalidArgument("ACL must not be empty".into())),
            _ => Ok(()),
        }
    }

    /// The op code a create with these options uses, given whether a stat is wanted.
    pub(crate) fn op_code(&self, with_stat: bool) -> OpCode {
        match self.mode {
            CreateMode::Container => OpCode::CreateContainer,
            m if m.is_ttl() => OpCode::CreateTtl,
            _ if with_stat => OpCode::Create2,
            _ => OpCode::Create,
        }
    }
}

impl From<CreateMode> for CreateOptions {
    fn from(mode: CreateMode) -> Self {
        CreateOptions::new(mode)
    }
}

impl Client {
    /// Creates a node and returns its path (with the sequence number for sequential modes).
    ///
    /// `options` is a [`CreateMode`] (open ACL) or full [`CreateOptions`].
    ///
    /// # Errors
    /// `NodeExists`; `NoNode` (no parent); `NoChildrenForEphemerals` (parent is ephemeral);
    /// `InvalidAcl`; `NoAuth`; `Unimplemented` (TTL nodes while the server disables them);
    /// `ConnectionLoss` (the node may or may not exist); client-side `InvalidPath`,
    /// `DataTooLarge`, `InvalidArgument`.
    pub fn create<O: Into<CreateOptions>>(
        &self,
        path: &str,
        data: &[u8],
        options: O,
    ) -> impl Future<Output = Result<String>> + Send + use<O> {
        let client = self.clone();
        let sent = self.send_create(path, data, &options.into(), false);
        async move {
            let (op, reply) = sent?;
            let reply = await_reply(Ok(reply)).await?;
            let server_path = if op == OpCode::Create {
                decode::<CreateResponse>(&reply)?.path
            } else {
                decode::<Create2Response>(&reply)?.path
            };
            Ok(client.client_path(server_path))
        }
    }

    /// Creates a node and returns its path and its [`Stat`].
    ///
    /// # Errors
    /// As [`Client::create`].
    pub fn create2<O: Into<CreateOptions>>(
        &self,
        path: &str,
        data: &[u8],
        options: O,
    ) -> impl Future<Output = Result<(String, Stat)>> + Send + use<O> {
        let client = self.clone();
        let sent = self.send_create(path, data, &options.into(), true);
        async move {
            let (_, reply) = sent?;
            let reply: Create2Response = decode(&await_reply(Ok(reply)).await?)?;
            Ok((client.client_path(reply.path), reply.stat))
        }
    }

    fn send_create(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
        with_stat: bool,
    ) -> Result<(
        OpCode,
        tokio::sync::oneshot::Receiver<Result<crate::client::command::Reply>>,
    )> {
        options.validate()?;
        let server_path = self.server_path(path, options.mode.is_sequential())?;
        let op = options.op_code(with_stat);
        let size = server_path.len() + data.len() + 64;
        let rx = match options.ttl {
            Some(ttl) => self.send(
                op,
                &CreateTtlRequest {
                    path: &server_path,
                    data,
                    acl: Cow::Borrowed(&options.acl),
                    flags: options.mode.flags(),
                    ttl: ttl.as_millis() as i64,
                },
                size,
                OnReply::Nothing,
                path,
            )?,
            None => self.send(
                op,
                &CreateRequest {
                    path: &server_path,
                    data,
                    acl: Cow::Borrowed(&options.acl),
                    flags: options.mode.flags(),
                },
                size,
                OnReply::Nothing,
                path,
            )?,
        };
        Ok((op, rx))
    }
}
