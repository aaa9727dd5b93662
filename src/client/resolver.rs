//! Name resolution: the [`Resolver`] a client asks for a host's addresses on every connection
//! attempt, so a host that moves behind its name is found at its new address.
//!
//! Resolving is one half of reaching a server: name → addresses. Reaching an address (TCP,
//! TLS) is the other half and stays with the transport.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use super::connect_string::HostPort;

/// What [`Resolver::resolve`] returns: the addresses of one host, in the order to try them.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Turns a host of the connect string (or of a followed ensemble) into addresses.
///
/// The client calls it on every connection attempt, never caching the answer, so a name that
/// moves to another address is followed on the next attempt. The default,
/// [`SystemResolver`], asks the operating system (tokio's `lookup_host`). A closure
/// `Fn(HostPort) -> impl Future<Output = io::Result<Vec<SocketAddr>>>` is a resolver too,
/// which is how a test moves a name:
///
/// ```
/// use std::net::SocketAddr;
/// use std::sync::{Arc, Mutex};
/// use zkwarden::{Client, HostPort};
///
/// let target: Arc<Mutex<SocketAddr>> = Arc::new(Mutex::new(([127, 0, 0, 1], 2181).into()));
/// let moved = target.clone();
/// let builder = Client::builder("zk.example:2181").resolver(move |_host: HostPort| {
///     let addr = *moved.lock().unwrap();
///     async move { Ok(vec![addr]) }
/// });
/// # let _ = (builder, target);
/// ```
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host` now (its port is part of each address). An empty list or an
    /// error makes the attempt on this host fail; the client tries the next host.
    fn resolve(&self, host: &HostPort) -> ResolveFuture;
}

impl<F, Fut> Resolver for F
where
    F: Fn(HostPort) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static,
{
    fn resolve(&self, host: &HostPort) -> ResolveFuture {
        Box::pin(self(host.clone()))
    }
}

/// The default [`Resolver`]: the operating system's resolver through tokio's `lookup_host`
/// (an IP address resolves to itself without a lookup).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &HostPort) -> ResolveFuture {
        let host = host.clone();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.host.as_str(), host.port))
                .await?
                .collect())
        })
    }
}

/// The resolver a session uses, shared by its connector, its read-only probe and
/// `close_session`. `Debug` names it only.
#[derive(Clone)]
pub(crate) struct SharedResolver(Arc<dyn Resolver>);

impl SharedResolver {
    pub(crate) fn new(resolver: impl Resolver) -> SharedResolver {
        SharedResolver(Arc::new(resolver))
    }

    /// The addresses of `host` now.
    pub(crate) fn resolve(&self, host: &HostPort) -> ResolveFuture {
        self.0.resolve(host)
    }
}

impl Default for SharedResolver {
    fn default() -> Self {
        SharedResolver::new(SystemResolver)
    }
}

impl fmt::Debug for SharedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}
