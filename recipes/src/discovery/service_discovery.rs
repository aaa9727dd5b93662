//! [`ServiceDiscovery`]: registers this process's instances and queries everyone's.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use zkwarden::{Error, Result, Warden};

use super::cache::ServiceCache;
use super::instance::{ServiceInstance, ServiceType};
use super::provider::{ProviderStrategy, ServiceProvider};
use crate::lock::internals::{join, trim_path};
use crate::persistent_node::{NodeEvent, NodeMode, PersistentNode};

/// How long [`ServiceDiscovery::register`] waits for the node unless told otherwise.
pub const DEFAULT_REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// One instance this process registered, and the node that keeps it.
struct Registration<P> {
    instance: ServiceInstance<P>,
    node: PersistentNode,
}

/// Service discovery on the znodes of Curator's `ServiceDiscovery` (curator-x-discovery):
/// each instance is a node `<base>/<service name>/<instance id>` holding the instance's JSON
/// (see the [module docs](super)).
///
/// Cloning gives another handle on the same registrations. [`close`](Self::close)
/// unregisters them; dropping the last handle only stops keeping them (ephemeral instances
/// then live until the session ends, persistent ones stay).
pub struct ServiceDiscovery<P> {
    warden: Warden,
    base: String,
    compatible: bool,
    register_timeout: Duration,
    registered: Arc<Mutex<HashMap<String, Registration<P>>>>,
}

impl<P> Clone for ServiceDiscovery<P> {
    fn clone(&self) -> Self {
        ServiceDiscovery {
            warden: self.warden.clone(),
            base: self.base.clone(),
            compatible: self.compatible,
            register_timeout: self.register_timeout,
            registered: self.registered.clone(),
        }
    }
}

impl<P> fmt::Debug for ServiceDiscovery<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDiscovery")
            .field("base", &self.base)
            .field("compatible", &self.compatible)
            .finish_non_exhaustive()
    }
}

impl<P> ServiceDiscovery<P>
where
    P: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Discovery under `base` (Curator's `basePath`), writing instances with the `enabled`
    /// field (see [`compatible_serialization`](Self::compatible_serialization)).
    pub fn new(warden: &Warden, base: impl Into<String>) -> ServiceDiscovery<P> {
        let base = trim_path(base.into());
        ServiceDiscovery {
            warden: warden.clone(),
            base,
            compatible: false,
            register_timeout: DEFAULT_REGISTER_TIMEOUT,
            registered: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// With `true`, instances are written without the `enabled` field, as Curator's default
    /// serializer writes them (for readers older than Curator 2.10, which refuse unknown
    /// fields). [`set_enabled`](Self::set_enabled) then has no effect on readers. Off by
    /// default: Curator 5 readers ignore fields they do not know, and Curator reads
    /// `enabled` when its serializer is built with `compatibleSerializationMode = false`.
    pub fn compatible_serialization(mut self, compatible: bool) -> Self {
        self.compatible = compatible;
        self
    }

    /// How long [`register`](Self::register) waits for the node to be created (default
    /// [`DEFAULT_REGISTER_TIMEOUT`]).
    pub fn register_timeout(mut self, timeout: Duration) -> Self {
        self.register_timeout = timeout;
        self
    }

    /// The base path.
    pub fn base_path(&self) -> &str {
        &self.base
    }

    /// The path of the node of service `name` (the parent of its instances).
    pub fn path_for_name(&self, name: &str) -> String {
        join(&self.base, name)
    }

    /// The path of the node of instance `id` of service `name`.
    pub fn path_for_instance(&self, name: &str, id: &str) -> String {
        join(&self.path_for_name(name), id)
    }

    /// Registers `instance` and keeps it registered: a `Dynamic` instance is an ephemeral
    /// node, made again on every new session after an expiry; `Static` and `Permanent` are
    /// persistent nodes, made again if deleted. Registering an id again replaces the
    /// registration (the node is deleted and created again, so watchers see the change, as
    /// in Curator). Returns once the node exists.
    ///
    /// A `DynamicSequential` instance is an ephemeral sequential node named
    /// `_c_<uuid>-<id><sequence>` (a protected create), which Curator lists but cannot look
    /// up by id (nor can Curator's own such instances be).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a name or id that cannot be a node name, or a payload
    /// that cannot be serialized; [`Error::NodeExists`] when another live session holds an
    /// ephemeral node at the instance's path; [`Error::Timeout`] when the node could not be
    /// made within the register timeout (then nothing stays registered); `Closed` when the
    /// warden is closed.
    pub async fn register(&self, instance: ServiceInstance<P>) -> Result<()> {
        instance.check_names()?;
        if self.warden.is_closed() {
            return Err(Error::Closed);
        }
        let data = instance.to_json(self.compatible)?;
        let mode = match instance.service_type {
            ServiceType::Dynamic => NodeMode::Ephemeral,
            ServiceType::DynamicSequential => NodeMode::EphemeralSequential,
            ServiceType::Static | ServiceType::Permanent => NodeMode::Persistent,
        };
        let path = self.path_for_instance(&instance.name, &instance.id);
        let mut registered = self.registered.lock().await;
        if let Some(old) = registered.remove(&instance.id) {
            old.node.close().await?;
        }
        let node = PersistentNode::builder(&self.warden, &path, mode)
            .data(data)
            .start()
            .await?;
        let mut events = node.events();
        let mut actual = node.actual_path_receiver();
        let conflict = async {
            while let Some(event) = events.next().await {
                if let NodeEvent::Conflict { .. } = event {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        let outcome = tokio::time::timeout(self.register_timeout, async {
            tokio::select! {
                created = actual.wait_for(Option::is_some) => created.map(|_| ()).map_err(|_| Error::Closed),
                () = conflict => Err(Error::NodeExists),
            }
        })
        .await
        .unwrap_or(Err(Error::Timeout));
        if let Err(e) = outcome {
            if let Err(close) = node.close().await {
                tracing::debug!(%path, error = %close, "could not remove a failed registration");
            }
            return Err(e);
        }
        registered.insert(instance.id.clone(), Registration { instance, node });
        Ok(())
    }

    /// Replaces the data of a registered instance (same name and id) with `instance`: written
    /// now and used for every recreation.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when no instance with this id is registered here, the name
    /// differs from the registered one, or the payload cannot be serialized; `NoAuth`;
    /// connection errors once the warden's retries are spent; `Closed`.
    pub async fn update(&self, instance: ServiceInstance<P>) -> Result<()> {
        let data = instance.to_json(self.compatible)?;
        let mut registered = self.registered.lock().await;
        let Some(entry) = registered.get_mut(&instance.id) else {
            return Err(Error::InvalidArgument(format!(
                "service instance {} is not registered here",
                instance.id
            )));
        };
        if entry.instance.name != instance.name {
            return Err(Error::InvalidArgument(format!(
                "service instance {} is registered as {:?}, not {:?}",
                instance.id, entry.instance.name, instance.name
            )));
        }
        entry.node.set_data(data).await?;
        entry.instance = instance;
        Ok(())
    }

    /// Marks a registered instance up or down (its `enabled` field) without unregistering
    /// it: providers (ours and Curator's) skip disabled instances.
    ///
    /// # Errors
    /// As [`update`](Self::update).
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<()> {
        let current = self
            .registered
            .lock()
            .await
            .get(id)
            .map(|r| r.instance.clone());
        let Some(mut instance) = current else {
            return Err(Error::InvalidArgument(format!(
                "service instance {id} is not registered here"
            )));
        };
        instance.enabled = enabled;
        self.update(instance).await
    }

    /// Unregisters instance `id` (deletes its node); an id not registered here is not an
    /// error.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent; `Closed`.
    pub async fn unregister(&self, id: &str) -> Result<()> {
        let removed = self.registered.lock().await.remove(id);
        match removed {
            Some(registration) => registration.node.close().await,
            None => Ok(()),
        }
    }

    /// The instances registered through this discovery, as last given.
    pub async fn registered(&self) -> Vec<ServiceInstance<P>> {
        self.registered
            .lock()
            .await
            .values()
            .map(|r| r.instance.clone())
            .collect()
    }

    /// Unregisters every instance registered here.
    ///
    /// # Errors
    /// The first error of an unregistration (the others are still tried).
    pub async fn close(&self) -> Result<()> {
        let all: Vec<Registration<P>> = self
            .registered
            .lock()
            .await
            .drain()
            .map(|(_, r)| r)
            .collect();
        let mut result = Ok(());
        for registration in all {
            if let Err(e) = registration.node.close().await {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }

    /// The names of all services (the children of the base path; none while it does not
    /// exist).
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent; `Closed`.
    pub async fn query_for_names(&self) -> Result<Vec<String>> {
        match self.warden.get_children(&self.base).await {
            Ok(mut names) => {
                names.sort();
                Ok(names)
            }
            Err(Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Every instance of service `name`, read from the server now. A node whose data is not
    /// an instance is skipped (and logged), so one bad entry does not hide the others.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent; `Closed`.
    pub async fn query_for_instances(&self, name: &str) -> Result<Vec<ServiceInstance<P>>> {
        let parent = self.path_for_name(name);
        let mut ids = match self.warden.get_children(&parent).await {
            Ok(ids) => ids,
            Err(Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        ids.sort();
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            match self.query_for_instance(name, &id).await {
                Ok(Some(instance)) => found.push(instance),
                Ok(None) => {}
                Err(Error::InvalidArgument(why)) => {
                    tracing::warn!(%parent, %id, %why, "skipping a node that is not a service instance");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// Instance `id` of service `name`, or `None` when there is no such node.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the node's data is not an instance; `NoAuth`;
    /// connection errors once the warden's retries are spent; `Closed`.
    pub async fn query_for_instance(
        &self,
        name: &str,
        id: &str,
    ) -> Result<Option<ServiceInstance<P>>> {
        match self
            .warden
            .get_data(&self.path_for_instance(name, id))
            .await
        {
            Ok((data, _)) => ServiceInstance::from_json(&data).map(Some),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A started cache of the instances of service `name`.
    ///
    /// # Errors
    /// As [`ChildrenCacheBuilder::start`](crate::cache::ChildrenCacheBuilder::start).
    pub async fn service_cache(&self, name: &str) -> Result<ServiceCache<P>> {
        ServiceCache::builder(&self.warden, &self.path_for_name(name))
            .start()
            .await
    }

    /// A started provider of instances of service `name`, picking with `strategy`.
    ///
    /// # Errors
    /// As [`service_cache`](Self::service_cache).
    pub async fn service_provider(
        &self,
        name: &str,
        strategy: ProviderStrategy,
    ) -> Result<ServiceProvider<P>> {
        Ok(ServiceProvider::new(
            self.service_cache(name).await?,
            strategy,
        ))
    }
}
