//! Service discovery that Curator's `curator-x-discovery` shares: registers two instances of
//! `api`, marks one down, and asks a round-robin provider for instances.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example discovery [-- HOST:PORT]
//! ```
//!
//! Without an address it starts a ZooKeeper of its own.

mod support;

use zkwarden_recipes::discovery::{ProviderStrategy, ServiceDiscovery, ServiceInstance, UriSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (warden, _server) = support::warden().await?;
    let discovery = ServiceDiscovery::<String>::new(&warden, "/example/services");
    let spec = UriSpec::parse("{scheme}://{address}:{port}/v1")?;
    for (id, port) in [("a", 8080), ("b", 8081)] {
        let mut instance = ServiceInstance::new("api")
            .with_id(id)
            .with_address("127.0.0.1", port)
            .with_payload(format!("instance {id}"));
        instance.uri_spec = Some(spec.clone());
        discovery.register(instance).await?;
    }
    println!("services: {:?}", discovery.query_for_names().await?);
    for instance in discovery.query_for_instances("api").await? {
        println!(
            "{} at {}: {}",
            instance.id,
            instance.uri(),
            String::from_utf8(instance.to_json(false)?)?
        );
    }

    let provider = discovery
        .service_provider("api", ProviderStrategy::round_robin())
        .await?;
    provider.initialized().await?;
    let mut events = provider.cache().events();
    discovery.set_enabled("b", false).await?;
    // Wait for the cache to see b go down.
    while provider.all_instances().len() != 1 {
        events.next().await;
    }
    for _ in 0..3 {
        if let Some(picked) = provider.instance() {
            println!("picked {} (b is marked down)", picked.id);
        }
    }
    discovery.close().await?;
    warden.close().await?;
    Ok(())
}
