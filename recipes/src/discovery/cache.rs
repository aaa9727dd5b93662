//! [`ServiceCache`]: the instances of one service, in memory.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use zkwarden::{Result, Warden};

use super::instance::ServiceInstance;
use crate::cache::{CacheEvents, ChildrenCache, ChildrenCacheBuilder};

/// The instances of one service kept in memory and up to date (Curator's `ServiceCache`): a
/// [`ChildrenCache`] of the service's node, its children read as instances.
///
/// It has the children cache's behaviour through faults: the last state read stays while
/// `Suspended`, and the cache resyncs after a reconnection or a new session.
#[derive(Debug)]
pub struct ServiceCache<P> {
    children: ChildrenCache,
    payload: PhantomData<fn() -> P>,
}

/// Settings of a [`ServiceCache`], from [`ServiceCache::builder`].
#[must_use = "a cache does nothing until started"]
pub struct ServiceCacheBuilder<P> {
    children: ChildrenCacheBuilder,
    payload: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for ServiceCacheBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCacheBuilder")
            .field("children", &self.children)
            .finish()
    }
}

impl<P: DeserializeOwned> ServiceCacheBuilder<P> {
    /// How many events subscribers may fall behind before they are told they lagged.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.children = self.children.event_capacity(capacity);
        self
    }

    /// Starts caching the instances, without waiting for the server (see
    /// [`ServiceCache::initialized`]).
    ///
    /// # Errors
    /// As [`ChildrenCacheBuilder::start`].
    pub async fn start(self) -> Result<ServiceCache<P>> {
        Ok(ServiceCache {
            children: self.children.start().await?,
            payload: PhantomData,
        })
    }
}

impl<P: DeserializeOwned> ServiceCache<P> {
    /// Settings for a cache of the instances under `path` (a service's node).
    pub fn builder(warden: &Warden, path: &str) -> ServiceCacheBuilder<P> {
        ServiceCacheBuilder {
            children: ChildrenCache::builder(warden, path),
            payload: PhantomData,
        }
    }

    /// Starts caching the instances under `path` (a service's node).
    ///
    /// # Errors
    /// As [`ChildrenCacheBuilder::start`].
    #[deprecated(note = "use `ServiceCache::builder(warden, path).start().await`")]
    pub fn start(warden: &Warden, path: &str) -> Result<ServiceCache<P>> {
        let children = ChildrenCache::builder(warden, path).spawn()?;
        Ok(ServiceCache {
            children,
            payload: PhantomData,
        })
    }

    /// The instances now cached, in id order. A node whose data is not an instance is left
    /// out (and logged at debug level, since this runs on every pick of a provider).
    pub fn instances(&self) -> Vec<ServiceInstance<P>> {
        self.children
            .children()
            .into_iter()
            .filter_map(|(id, node)| match ServiceInstance::from_json(&node.data) {
                Ok(instance) => Some(instance),
                Err(error) => {
                    tracing::debug!(%id, %error, "cached node is not a service instance");
                    None
                }
            })
            .collect()
    }

    /// Resolves once the instances were read at least once.
    ///
    /// # Errors
    /// As [`ChildrenCache::initialized`].
    pub async fn initialized(&self) -> Result<()> {
        self.children.initialized().await
    }

    /// The cache's changes from now on (one event per instance node created, changed or
    /// deleted).
    pub fn events(&self) -> CacheEvents {
        self.children.events()
    }

    /// The underlying children cache.
    pub fn as_children(&self) -> &ChildrenCache {
        &self.children
    }
}
