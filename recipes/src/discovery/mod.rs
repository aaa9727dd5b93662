//! Service discovery on the znodes of Apache Curator's `curator-x-discovery`: Rust and Java
//! services register and find each other.
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::discovery::{ProviderStrategy, ServiceDiscovery, ServiceInstance};
//!
//! let discovery = ServiceDiscovery::<String>::new(&warden, "/services");
//! let me = ServiceInstance::new("api").with_address("10.0.0.7", 8080);
//! discovery.register(me.clone()).await?;
//!
//! let provider = discovery
//!     .service_provider("api", ProviderStrategy::round_robin())
//!     .await?;
//! provider.initialized().await?;
//! if let Some(api) = provider.instance() {
//!     println!("calling {}:{:?}", api.address.unwrap_or_default(), api.port);
//! }
//! // Out of service for a while, still registered:
//! discovery.set_enabled(&me.id, false).await?;
//! discovery.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! An instance of service `name` with id `id` is the node `<base>/<name>/<id>`, its data the
//! instance's JSON exactly as Curator's `JsonInstanceSerializer` writes it
//! ([`ServiceInstance::to_json`]); missing parents are containers. `Dynamic` instances are
//! ephemeral nodes, `Static` and `Permanent` ones persistent.
//!
//! # Suspended / Lost
//!
//! Each registration is a [`PersistentNode`](crate::persistent_node::PersistentNode): while
//! `Suspended` the ephemeral node lives on as long as its session may; after `Lost`, once the
//! warden has a new session, the node is created again with the latest data (Curator
//! re-registers on reconnection the same way). Between the two, other processes do not see
//! the instance. Caches and providers keep the last instances read while `Suspended` and
//! resync after reconnecting (see [`cache`](crate::cache)).

mod cache;
mod instance;
mod provider;
mod service_discovery;

pub use cache::{ServiceCache, ServiceCacheBuilder};
pub use instance::{ServiceInstance, ServiceType, UriPart, UriSpec};
pub use provider::{DownInstancePolicy, ProviderStrategy, ServiceProvider, Strategy};
pub use service_discovery::{DEFAULT_REGISTER_TIMEOUT, ServiceDiscovery};
