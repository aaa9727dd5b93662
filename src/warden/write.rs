//! Writes under supervision: `set_data` and `delete`, with Curator's idempotent semantics,
//! recursive and guaranteed deletes.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};

use super::handle::Warden;
use super::retry_loop::OpClass;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::proto::Stat;

/// A `set_data`, run by awaiting it. Retried after ambiguous failures: without a version a
/// repeat writes the same data again; with a version a repeat fails `BadVersion` unless
/// [`idempotent`](SetDataBuilder::idempotent) is set, in which case, *after a repeat*, a node
/// that already holds this data at the next version counts as success (Curator's semantics).
/// Under contention another writer may have written the same bytes, so this is no basis for
/// counting: a counter needs its own proof of which write landed.
#[must_use = "a set_data does nothing until awaited"]
pub struct SetDataBuilder<'w> {
    warden: &'w Warden,
    path: String,
    data: Vec<u8>,
    version: Option<i32>,
    idempotent: bool,
}

/// A `delete`, run by awaiting it. Retried after ambiguous failures; a repeat may then find
/// the node gone and return `NoNode`, unless [`idempotent`](DeleteBuilder::idempotent) is
/// set, which makes a missing node success.
#[must_use = "a delete does nothing until awaited"]
pub struct DeleteBuilder<'w> {
    warden: &'w Warden,
    path: String,
    version: Option<i32>,
    idempotent: bool,
    recursive: bool,
}

impl Warden {
    /// Starts a `set_data` of `path` (compare-and-set when `version` is given).
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> SetDataBuilder<'_> {
        SetDataBuilder {
            warden: self,
            path: path.to_owned(),
            data: data.to_vec(),
            version,
            idempotent: false,
        }
    }

    /// Starts a `delete` of `path` (only at `version`, when given).
    pub fn delete(&self, path: &str, version: Option<i32>) -> DeleteBuilder<'_> {
        DeleteBuilder {
            warden: self,
            path: path.to_owned(),
            version,
            idempotent: false,
            recursive: false,
        }
    }
}

impl SetDataBuilder<'_> {
    /// Treats a version conflict caused by our own earlier attempt as success.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    async fn execute(self) -> Result<Stat> {
        let SetDataBuilder {
            warden,
            path,
            data,
            version,
            idempotent,
        } = self;
        let attempts = AtomicU32::new(0);
        let result = warden
            .run(OpClass::Idempotent, "set_data", &path, |c| {
                attempts.fetch_add(1, Ordering::Relaxed);
                c.set_data(&path, &data, version)
            })
            .await;
        // Only a repeat can have been beaten by our own earlier attempt: a first attempt that
        // fails BadVersion lost to another writer, even if that writer wrote the same bytes.
        let repeated = attempts.load(Ordering::Relaxed) > 1;
        match (result, version) {
            (Err(Error::BadVersion), Some(expected)) if idempotent && repeated => {
                let (current, stat) = warden.get_data(&path).await?;
                if current[..] == data[..] && stat.version == expected.wrapping_add(1) {
                    Ok(stat)
                } else {
                    Err(Error::BadVersion)
                }
            }
            (other, _) => other,
        }
    }
}

impl<'w> IntoFuture for SetDataBuilder<'w> {
    type Output = Result<Stat>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Stat>> + Send + 'w>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl DeleteBuilder<'_> {
    /// Treats a missing node as success.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Deletes the node's descendants first (the version applies to the node itself).
    pub fn recursive(mut self) -> Self {
        self.recursive = true;
        self
    }

    async fn execute(self) -> Result<()> {
        let DeleteBuilder {
            warden,
            path,
            version,
            idempotent,
            recursive,
        } = self;
        if path == "/" {
            return Err(Error::InvalidPath {
                path,
                reason: "the root cannot be deleted",
            });
        }
        let result = if recursive {
            warden
                .run(OpClass::Idempotent, "delete_recursive", &path, |c| {
                    delete_tree(c, path.clone(), version)
                })
                .await
        } else {
            warden
                .run(OpClass::Idempotent, "delete", &path, |c| {
                    c.delete(&path, version)
                })
                .await
        };
        match result {
            Err(Error::NoNode) if idempotent => Ok(()),
            other => other,
        }
    }
}

impl<'w> IntoFuture for DeleteBuilder<'w> {
    type Output = Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<()>> + Send + 'w>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

/// Deletes `path` and everything below it, deepest first. Children that vanish meanwhile are
/// fine; children that appear meanwhile make the parent's delete fail `NotEmpty`, and the
/// caller's retry tries again.
async fn delete_tree(client: Client, path: String, version: Option<i32>) -> Result<()> {
    // Depth-first listing, then deletes from the leaves up.
    let mut order = Vec::new();
    let mut stack = vec![path.clone()];
    while let Some(node) = stack.pop() {
        match client.get_children(&node).await {
            Ok(children) => {
                for child in children {
                    stack.push(if node == "/" {
                        format!("/{child}")
                    } else {
                        format!("{node}/{child}")
                    });
                }
                order.push(node);
            }
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    if order.is_empty() {
        return Err(Error::NoNode);
    }
    // Issue all deletes at once (pipelined), leaves first: `order` lists parents before
    // children, so reverse it.
    let deletes: Vec<_> = order
        .iter()
        .rev()
        .map(|node| {
            let v = if *node == path { version } else { None };
            client.delete(node, v)
        })
        .collect();
    let mut result = Ok(());
    for (delete, node) in deletes.into_iter().zip(order.iter().rev()) {
        match delete.await {
            Ok(()) => {}
            Err(Error::NoNode) if *node != path => {}
            Err(e) => {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
    }
    result
}
