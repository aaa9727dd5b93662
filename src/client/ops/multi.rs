//! Transactions (`multi`) and batched reads (`multi_read`).

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use super::create::CreateOptions;
use super::write::version_or_any;
use crate::client::command::OnReply;
use crate::client::handle::{Client, await_reply};
use crate::error::{Error, Result};
use crate::proto::multi::{MultiOpRecord, MultiRequest, decode_multi_results};
use crate::proto::records::{
    CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, PathWatchRequest,
    SetDataRequest,
};
use crate::proto::{ErrorCode, OpCode, OpResult};

/// One write in a transaction. Build them with [`Op::create`], [`Op::delete`],
/// [`Op::set_data`] and [`Op::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node.
    Create {
        /// Path of the node.
        path: String,
        /// Initial data.
        data: Vec<u8>,
        /// Mode, ACL and TTL.
        options: CreateOptions,
    },
    /// Delete a node.
    Delete {
        /// Path of the node.
        path: String,
        /// Expected version (`None`: any).
        version: Option<i32>,
    },
    /// Replace a node's data.
    SetData {
        /// Path of the node.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected version (`None`: any).
        version: Option<i32>,
    },
    /// Require a node to exist (with a version, if given).
    Check {
        /// Path of the node.
        path: String,
        /// Expected version (`None`: any).
        version: Option<i32>,
    },
}

impl Op {
    /// A create.
    pub fn create(
        path: impl Into<String>,
        data: impl Into<Vec<u8>>,
        options: impl Into<CreateOptions>,
    ) -> Op {
        Op::Create {
            path: path.into(),
            data: data.into(),
            options: options.into(),
        }
    }

    /// A delete.
    pub fn delete(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Delete {
            path: path.into(),
            version,
        }
    }

    /// A data write.
    pub fn set_data(path: impl Into<String>, data: impl Into<Vec<u8>>, version: Option<i32>) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.into(),
            version,
        }
    }

    /// A version check.
    pub fn check(path: impl Into<String>, version: Option<i32>) -> Op {
        Op::Check {
            path: path.into(),
            version,
        }
    }

    /// The op's path.
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }
}

/// One read in a [`Client::multi_read`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiReadOp {
    /// Read a node's data and stat.
    GetData(String),
    /// List a node's children.
    GetChildren(String),
}

impl Client {
    /// Applies `ops` atomically: all of them, or none.
    ///
    /// Returns one [`OpResult`] per op. Paths of created nodes are relative to the chroot.
    ///
    /// # Errors
    /// [`Error::MultiFailed`] when an op failed (its index and code, and every op's result;
    /// nothing was applied); `ConnectionLoss` (the transaction may or may not have been
    /// applied); client-side `InvalidPath`, `DataTooLarge`, `InvalidArgument`.
    pub fn multi(&self, ops: &[Op]) -> impl Future<Output = Result<Vec<OpResult>>> + Send + use<> {
        let client = self.clone();
        let sent = self.send_multi(ops);
        async move {
            let reply = await_reply(sent).await?;
            let mut results = decode_multi_results(&reply.body)?;
            client.strip_created_paths(&mut results);
            let failed = results
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.error().map(|code| (i, code)))
                .find(|(_, code)| !matches!(code, ErrorCode::Ok | ErrorCode::RuntimeInconsistency))
                .or_else(|| {
                    results.iter().enumerate().find_map(|(i, r)| {
                        r.error().filter(|c| *c != ErrorCode::Ok).map(|c| (i, c))
                    })
                });
            match failed {
                Some((index, code)) => Err(Error::MultiFailed {
                    index,
                    code,
                    results: Arc::new(results),
                }),
                None => Ok(results),
            }
        }
    }

    /// Reads several nodes in one round trip (ZooKeeper 3.6+). Unlike [`Client::multi`],
    /// each read succeeds or fails on its own: a failed read is an [`OpResult::Error`] in its
    /// place.
    ///
    /// # Errors
    /// `Unimplemented` on older servers; `ConnectionLoss`; client-side `InvalidPath`.
    pub fn multi_read(
        &self,
        ops: &[MultiReadOp],
    ) -> impl Future<Output = Result<Vec<OpResult>>> + Send + use<> {
        let sent = (|| {
            let paths = ops
                .iter()
                .map(|op| match op {
                    MultiReadOp::GetData(p) | MultiReadOp::GetChildren(p) => {
                        self.server_path(p, false)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let records = ops
                .iter()
                .zip(&paths)
                .map(|(op, path)| {
                    let request = PathWatchRequest { path, watch: false };
                    match op {
                        MultiReadOp::GetData(_) => MultiOpRecord::GetData(request),
                        MultiReadOp::GetChildren(_) => MultiOpRecord::GetChildren(request),
                    }
                })
                .collect();
            let size = paths.iter().map(|p| p.len() + 32).sum::<usize>() + 16;
            self.send(
                OpCode::MultiRead,
                &MultiRequest { ops: records },
                size,
                OnReply::Nothing,
                "",
            )
        })();
        async move {
            let reply = await_reply(sent).await?;
            Ok(decode_multi_results(&reply.body)?)
        }
    }

    fn send_multi(
        &self,
        ops: &[Op],
    ) -> Result<tokio::sync::oneshot::Receiver<Result<crate::client::command::Reply>>> {
        let mut paths = Vec::with_capacity(ops.len());
        for op in ops {
            let sequential = match op {
                Op::Create { options, .. } => {
                    options.validate()?;
                    options.mode.is_sequential()
                }
                _ => false,
            };
            paths.push(self.server_path(op.path(), sequential)?);
        }
        let mut size = 16;
        let records = ops
            .iter()
            .zip(&paths)
            .map(|(op, path)| {
                let path: &str = path;
                size += path.len() + 48;
                match op {
                    Op::Create { data, options, .. } => {
                        size += data.len() + options.acl.len() * 32;
                        let acl = Cow::Borrowed(&*options.acl);
                        match options.ttl {
                            Some(ttl) => MultiOpRecord::CreateTtl(CreateTtlRequest {
                                path,
                                data,
                                acl,
                                flags: options.mode.flags(),
                                ttl: ttl.as_millis() as i64,
                            }),
                            None => MultiOpRecord::Create(
                                options.op_code(true),
                                CreateRequest {
                                    path,
                                    data,
                                    acl,
                                    flags: options.mode.flags(),
                                },
                            ),
                        }
                    }
                    Op::Delete { version, .. } => MultiOpRecord::Delete(DeleteRequest {
                        path,
                        version: version_or_any(*version),
                    }),
                    Op::SetData { data, version, .. } => {
                        size += data.len();
                        MultiOpRecord::SetData(SetDataRequest {
                            path,
                            data,
                            version: version_or_any(*version),
                        })
                    }
                    Op::Check { version, .. } => MultiOpRecord::Check(CheckVersionRequest {
                        path,
                        version: version_or_any(*version),
                    }),
                }
            })
            .collect();
        let span_path = ops.first().map_or("", Op::path);
        self.send(
            OpCode::Multi,
            &MultiRequest { ops: records },
            size,
            OnReply::Nothing,
            span_path,
        )
    }

    fn strip_created_paths(&self, results: &mut [OpResult]) {
        for result in results {
            if let OpResult::Create { path, .. } = result {
                *path = self.client_path(std::mem::take(path));
            }
        }
    }
}
