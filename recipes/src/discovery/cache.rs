//! [`ServiceCache`]: the instances of one service, in memory.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use zkwarden::{Result, Warden};

use super::instance::ServiceInstance;
use crate::cache::{CacheEvents, ChildrenCache};

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

impl<P: DeserializeOwned> ServiceCache<P> {
    /// Starts caching the instances under `path` (a service's node).
    ///
    /// # Errors
    /// As [`ChildrenCacheBuilder::start`](crate::cache::ChildrenCacheBuilder::start).
    pub fn start(warden: &Warden, path: &str) -> Result<ServiceCache<P>> {
        Ok(ServiceCache {
            children: ChildrenCache::builder(warden, path).start()?,
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
