//! A typed builder for transactions (`multi`) under supervision.

use super::fence::Fence;
use super::handle::Warden;
use crate::client::{CreateOptions, Op};
use crate::error::{Error, Result};
use crate::proto::OpResult;

/// A transaction: writes applied all together or not at all, collected with the chainable
/// methods and sent by [`commit`](Transaction::commit). Get one from
/// [`Warden::transaction`].
///
/// ```no_run
/// # async fn demo(warden: zkwarden::warden::Warden) -> zkwarden::Result<()> {
/// use zkwarden::CreateMode;
///
/// let (_, stat) = warden.get_data("/config").await?;
/// let results = warden
///     .transaction()
///     .check("/config", Some(stat.version))
///     .create("/config/v2", b"new".to_vec(), CreateMode::Persistent)
///     .set_data("/config", b"v2".to_vec(), None)
///     .commit()
///     .await?;
/// assert_eq!(results.len(), 3);
/// # Ok(()) }
/// ```
///
/// # Repeats
///
/// A transaction is a write that might be applied twice, so it is retried only when the
/// failed attempt certainly never reached the server (no connection came up, the session
/// moved, the server throttled it). After an ambiguous failure — the connection dropped
/// while the request was in flight — `commit` returns `ConnectionLoss` and the transaction
/// may or may not have been applied.
///
/// To make a transaction safe to repeat, guard it with a version: read the node it depends
/// on, and [`check`](Transaction::check) (or [`set_data`](Transaction::set_data) or
/// [`delete`](Transaction::delete)) that node at the version read. If the first attempt was
/// applied, that version has moved on and a repeat fails with
/// [`MultiFailed`](crate::Error::MultiFailed) (`BadVersion`) instead of applying twice; read
/// the node again to learn whether the change is there. [`Warden::retrying`] runs such a
/// read-then-commit sequence under one retry budget.
///
/// # Fencing
///
/// [`fenced_by`](Transaction::fenced_by) makes the transaction depend on a held lock or a
/// term of leadership (any [`Fence`]): it is applied only while the fence's nodes exist, and
/// refused with [`Error::FencedOut`] once the holder's session ended or the lock was
/// released, so a former holder's write never lands.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::warden::Warden, guard: impl zkwarden::warden::Fence)
/// # -> zkwarden::Result<()> {
/// match warden
///     .transaction()
///     .fenced_by(&guard)
///     .set_data("/counter", b"42".to_vec(), None)
///     .commit()
///     .await
/// {
///     Ok(_) => {}
///     Err(e) if e.is_fenced_out() => { /* no longer the holder: stop */ }
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
///
/// A fenced write can still succeed after the guard's `lost()` fired at `Suspended`, when
/// the session lived through the disconnection: see [Fence](Fence#fencing-and-lost-work-together).
#[must_use = "a transaction does nothing until committed"]
#[derive(Debug)]
pub struct Transaction<'w> {
    warden: &'w Warden,
    ops: Vec<Op>,
    /// How many of the leading ops are fence checks.
    fence_checks: usize,
}

impl Warden {
    /// Starts an empty transaction.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction {
            warden: self,
            ops: Vec::new(),
            fence_checks: 0,
        }
    }
}

impl<'w> Transaction<'w> {
    /// Adds a create of `path` with `data`; `options` is a [`CreateMode`](crate::CreateMode)
    /// or full [`CreateOptions`]. A sequential create's actual path is in its
    /// [`OpResult::Create`].
    pub fn create(
        mut self,
        path: impl Into<String>,
        data: impl Into<Vec<u8>>,
        options: impl Into<CreateOptions>,
    ) -> Self {
        self.ops.push(Op::create(path, data, options));
        self
    }

    /// Adds a delete of `path` (only at `version`, when given).
    pub fn delete(mut self, path: impl Into<String>, version: Option<i32>) -> Self {
        self.ops.push(Op::delete(path, version));
        self
    }

    /// Adds a data write to `path` (only at `version`, when given).
    pub fn set_data(
        mut self,
        path: impl Into<String>,
        data: impl Into<Vec<u8>>,
        version: Option<i32>,
    ) -> Self {
        self.ops.push(Op::set_data(path, data, version));
        self
    }

    /// Adds a condition: `path` exists (at `version`, when given). It changes nothing, but
    /// the transaction fails unless it holds.
    pub fn check(mut self, path: impl Into<String>, version: Option<i32>) -> Self {
        self.ops.push(Op::check(path, version));
        self
    }

    /// Makes the transaction depend on `fence` (a held lock, a term of leadership): its
    /// checks go in front of every other op, so the server applies the writes only while
    /// the fence holds, and [`commit`](Transaction::commit) reports a refusal as
    /// [`Error::FencedOut`]. Several fences may be stacked.
    pub fn fenced_by(mut self, fence: &(impl Fence + ?Sized)) -> Self {
        let checks = fence.fence_checks();
        let at = self.fence_checks;
        self.fence_checks += checks.len();
        self.ops.splice(at..at, checks);
        self
    }

    /// Adds an op built elsewhere.
    pub fn op(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }

    /// The ops collected so far, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// How many ops the transaction holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the transaction holds no op.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies the ops atomically (through [`Warden::multi`]) and returns one result per op,
    /// in order. An empty transaction returns at once with no results and sends nothing.
    ///
    /// # Errors
    /// [`MultiFailed`](crate::Error::MultiFailed) with the index and code of the op that
    /// failed (`NoNode`, `NodeExists`, `BadVersion`, `NotEmpty`, `NoAuth`, ...) and every
    /// op's result; nothing was applied. `ConnectionLoss` when the outcome is unknown (see
    /// [Repeats](Transaction#repeats)). Client-side `InvalidPath`, `DataTooLarge`,
    /// `InvalidArgument` (nothing was sent). [`Error::FencedOut`] when a fence added by
    /// [`fenced_by`](Transaction::fenced_by) no longer holds (nothing was applied).
    /// Otherwise as [`Warden::multi`].
    pub async fn commit(self) -> Result<Vec<OpResult>> {
        if self.ops.is_empty() {
            return Ok(Vec::new());
        }
        match self.warden.multi(&self.ops).await {
            Err(Error::MultiFailed { index, code, .. }) if index < self.fence_checks => {
                Err(Error::FencedOut {
                    node: self.ops.get(index).map_or("", Op::path).to_owned(),
                    code,
                })
            }
            other => other,
        }
    }
}
