//! [`Fence`]: what makes a transaction depend on still holding a lock or a leadership.

use crate::client::Op;

/// Something a write can be made to depend on: a held lock, a term of leadership. A
/// transaction [fenced](super::Transaction::fenced_by) by it carries the fence's checks in
/// front of its own ops, so the server applies the writes only while every node the fence
/// stands on still exists, and refuses them with
/// [`Error::FencedOut`](crate::Error::FencedOut) once one is gone.
///
/// The recipes' lock guards and `Leadership` implement it. To implement it for something
/// else, return one [`Op::check`] per node whose existence proves the right to write.
///
/// # Fencing and `lost()` work together
///
/// The guards' `lost()` resolves early, at `Suspended`, because a suspended holder cannot
/// know whether its session still lives. The fence is decided by the server at the moment of
/// the write: a fenced write can still succeed after `lost()` fired at `Suspended`, if the
/// session lived through the disconnection and the node is still there. That write is
/// correct (no one else can hold the lock while the node exists), but a holder that stopped
/// work on `lost()` should not rely on it. Use `lost()` to stop starting work, and the fence
/// to make sure no write lands once the right to write is really gone.
pub trait Fence {
    /// The checks to put in front of a fenced transaction: one [`Op::check`] per node the
    /// fence stands on.
    fn fence_checks(&self) -> Vec<Op>;
}

impl<F: Fence + ?Sized> Fence for &F {
    fn fence_checks(&self) -> Vec<Op> {
        (**self).fence_checks()
    }
}

/// `ops` with `fence`'s checks in front, for [`Warden::multi`](super::Warden::multi). A
/// refusal then surfaces as [`MultiFailed`](crate::Error::MultiFailed) at an index below the
/// number of checks; [`Transaction::fenced_by`](super::Transaction::fenced_by) turns it into
/// [`FencedOut`](crate::Error::FencedOut) and is the better way.
pub fn fenced(fence: &(impl Fence + ?Sized), ops: Vec<Op>) -> Vec<Op> {
    let mut all = fence.fence_checks();
    all.extend(ops);
    all
}
