//! The few things a benchmarked client has to do. Every workload is written once against
//! [`Driver`], so both clients run exactly the same measuring code.

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// Session timeout both clients ask for.
pub(crate) const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed step, with enough context to tell which one.
#[derive(Debug)]
pub(crate) struct BenchError(String);

impl BenchError {
    /// `what` failed because of `cause`.
    pub(crate) fn new(what: &str, cause: impl fmt::Display) -> Self {
        BenchError(format!("{what}: {cause}"))
    }

    /// A message of our own.
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        BenchError(message.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type BenchResult<T> = Result<T, BenchError>;

/// One ZooKeeper session of the client under test.
///
/// The request methods are plain `fn`s returning futures (not `async fn`) on purpose: both
/// clients queue a request when the method is *called*, and the pipelined workloads rely on
/// that to keep many requests in flight without polling each future first.
pub(crate) trait Driver: Sized {
    /// A one-shot data watch, armed by [`Driver::get_and_watch`].
    type Watch;

    /// Opens a session and waits until it is connected.
    async fn open(connect: &str) -> BenchResult<Self>;

    /// Closes the session and waits until the client reports it closed.
    async fn close(self) -> BenchResult<()>;

    /// Reads a node's data; resolves to its length.
    fn get<'a>(&'a self, path: &'a str) -> impl Future<Output = BenchResult<usize>> + 'a;

    /// Replaces a node's data, whatever its version.
    fn set<'a>(
        &'a self,
        path: &'a str,
        data: &'a [u8],
    ) -> impl Future<Output = BenchResult<()>> + 'a;

    /// Creates a persistent node with an open ACL.
    fn create<'a>(
        &'a self,
        path: &'a str,
        data: &'a [u8],
    ) -> impl Future<Output = BenchResult<()>> + 'a;

    /// Deletes a node, whatever its version.
    fn delete<'a>(&'a self, path: &'a str) -> impl Future<Output = BenchResult<()>> + 'a;

    /// The names of a node's children.
    async fn children(&self, path: &str) -> BenchResult<Vec<String>>;

    /// Reads a node and leaves a one-shot data watch on it.
    async fn get_and_watch(&self, path: &str) -> BenchResult<Self::Watch>;

    /// Waits for a watch armed by [`Driver::get_and_watch`]; anything other than a data change
    /// is an error.
    async fn changed(watch: Self::Watch) -> BenchResult<()>;
}
