//! Service discovery beside Apache Curator's curator-x-discovery on one base path: a Java
//! peer (`tests/java/CuratorDiscoveryPeer.java`, compiled against the Debian jars) and a
//! Rust `ServiceDiscovery` register, list and pick each other's instances.

mod common;

use std::collections::BTreeMap;

use common::java_peer::{self, Peer};
use common::znodes::{await_children, expire_and_await_new_session};
use common::{start_server, unique_path, warden, within};
use serde::{Deserialize, Serialize};
use zkwarden::{Error, Warden};
use zkwarden_recipes::discovery::{
    ProviderStrategy, ServiceDiscovery, ServiceInstance, ServiceProvider, ServiceType, Strategy,
    UriSpec,
};

const PEER: &str = "CuratorDiscoveryPeer";

/// The payload the peer uses: a `java.util.Map`, which Curator writes with its class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JavaMap {
    #[serde(rename = "@class")]
    class: String,
    value: String,
}

fn java_map(value: &str) -> JavaMap {
    JavaMap {
        class: "java.util.HashMap".into(),
        value: value.into(),
    }
}

async fn start_peer(connect: &str, base: &str) -> Peer {
    let (classpath, dir) = java_peer::prepare_shared(&format!("{PEER}.java")).await;
    let args = [connect.to_owned(), base.to_owned()];
    java_peer::start(&classpath, &dir, PEER, &args).await
}

/// The peer's answer lines to `command` up to its `end` line, each without `prefix`.
async fn answers(peer: &mut Peer, command: &str, prefix: &str) -> Vec<String> {
    peer.send(command).await;
    let mut found = Vec::new();
    loop {
        let line = peer.line().await;
        if line == "end" {
            return found;
        }
        let answer = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("peer said {line:?} to {command:?}"));
        found.push(answer.to_owned());
    }
}

/// The peer's answer to `instances <name>`: id → the JSON Curator wrote for it.
async fn curator_instances(peer: &mut Peer, name: &str) -> BTreeMap<String, String> {
    answers(peer, &format!("instances {name}"), "instance ")
        .await
        .into_iter()
        .map(|json| {
            let instance = ServiceInstance::<JavaMap>::from_json(json.as_bytes()).unwrap();
            (instance.id, json)
        })
        .collect()
}

/// The ids a Curator round-robin `ServiceProvider` picks, once it sees `count` instances.
async fn curator_picks(peer: &mut Peer, name: &str, count: usize, picks: usize) -> Vec<String> {
    answers(peer, &format!("pick {name} {count} {picks}"), "picked ").await
}

/// Waits, by the cache's events, until the provider offers exactly `ids`.
async fn await_offered(provider: &ServiceProvider<JavaMap>, ids: &[&str]) {
    let mut events = provider.cache().events();
    provider.initialized().await.unwrap();
    within(&format!("the provider to offer {ids:?}"), async {
        loop {
            let offered: Vec<String> = provider.all_instances().into_iter().map(|i| i.id).collect();
            if offered == ids {
                return;
            }
            events.next().await.expect("cache events");
        }
    })
    .await;
}

async fn owner_of(w: &Warden, path: &str) -> i64 {
    w.exists(path).await.unwrap().expect("node").ephemeral_owner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_and_rust_see_each_others_instances_with_equal_fields() {
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let base = unique_path("discovery");
    let mut peer = start_peer(&connect, &base).await;
    let discovery = ServiceDiscovery::<JavaMap>::new(&w, &base);

    // Curator registers; the node holds what Curator's serializer wrote, and Rust reads it
    // field by field and writes it again byte for byte.
    peer.send("register api java-1 10.0.0.1 8080 8443 from-java 1700000000000")
        .await;
    let line = peer.line().await;
    let written = line.strip_prefix("ok ").expect("registered").to_owned();
    let (raw, _) = w.get_data(&format!("{base}/api/java-1")).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&raw), written);
    let java = discovery
        .query_for_instance("api", "java-1")
        .await
        .unwrap()
        .expect("Curator's instance");
    assert_eq!(
        java,
        ServiceInstance {
            name: "api".into(),
            id: "java-1".into(),
            address: Some("10.0.0.1".into()),
            port: Some(8080),
            ssl_port: Some(8443),
            payload: Some(java_map("from-java")),
            registration_time_utc: 1_700_000_000_000,
            service_type: ServiceType::Dynamic,
            uri_spec: Some(UriSpec::parse("{scheme}://{address}:{port}").unwrap()),
            enabled: true,
        }
    );
    assert_eq!(java.to_json(false).unwrap(), raw.to_vec());
    assert_eq!(java.uri(), "https://10.0.0.1:8080");

    // Rust registers; Curator reads it and writes it again byte for byte.
    let mut rust = ServiceInstance::new("api")
        .with_id("rust-1")
        .with_address("10.0.0.2", 9090)
        .with_payload(java_map("from-rust"));
    rust.uri_spec = Some(UriSpec::parse("{scheme}://{address}:{port}/v1").unwrap());
    discovery.register(rust.clone()).await.unwrap();
    let seen = curator_instances(&mut peer, "api").await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen["rust-1"].as_bytes(), rust.to_json(false).unwrap());
    assert_eq!(seen["java-1"], written);
    peer.send("names").await;
    assert_eq!(peer.line().await, "names api");
    assert_eq!(discovery.query_for_names().await.unwrap(), ["api"]);
    let ids: Vec<String> = discovery
        .query_for_instances("api")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["java-1", "rust-1"]);

    // Marked down, the Rust instance stays registered but Curator's provider skips it.
    discovery.set_enabled("rust-1", false).await.unwrap();
    assert_eq!(curator_instances(&mut peer, "api").await.len(), 2);
    assert_eq!(
        curator_picks(&mut peer, "api", 1, 4).await,
        ["java-1", "java-1", "java-1", "java-1"]
    );
    discovery.set_enabled("rust-1", true).await.unwrap();
    let mut picks = curator_picks(&mut peer, "api", 2, 4).await;
    picks.sort();
    assert_eq!(picks, ["java-1", "java-1", "rust-1", "rust-1"]);

    // Our provider: round robin over both, and Curator's down-instance policy.
    let provider = discovery
        .service_provider("api", ProviderStrategy::round_robin())
        .await
        .unwrap();
    await_offered(&provider, &["java-1", "rust-1"]).await;
    let picked: Vec<String> = (0..4).map(|_| provider.instance().unwrap().id).collect();
    assert_eq!(picked, ["java-1", "rust-1", "java-1", "rust-1"]);
    provider.note_error(&java);
    assert_eq!(provider.all_instances().len(), 2, "one error is not down");
    provider.note_error(&java);
    assert_eq!(provider.instance().unwrap().id, "rust-1");

    // Bad input is refused before anything is written.
    assert!(matches!(
        discovery
            .register(ServiceInstance::new("api").with_id("a/b"))
            .await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        discovery
            .update(ServiceInstance::new("api").with_id("never"))
            .await,
        Err(Error::InvalidArgument(_))
    ));

    // Unregistering removes the node; Curator's close removes its own.
    discovery.unregister("rust-1").await.unwrap();
    assert_eq!(
        curator_instances(&mut peer, "api")
            .await
            .into_keys()
            .collect::<Vec<_>>(),
        ["java-1"]
    );
    peer.send("quit").await;
    await_children(&w, &format!("{base}/api"), 0).await;
    assert_eq!(peer.child.wait().await.unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_instance_comes_back_after_its_session_expires_and_curator_picks_it() {
    let server = start_server().await;
    let connect = server.connect_string();
    let w = warden(&connect).await;
    let base = unique_path("discovery-expiry");
    let mut peer = start_peer(&connect, &base).await;
    let discovery = ServiceDiscovery::<JavaMap>::new(&w, &base);
    for id in ["rust-1", "rust-2"] {
        let instance = ServiceInstance::new("api")
            .with_id(id)
            .with_address("10.0.0.3", 7000)
            .with_payload(java_map(id));
        discovery.register(instance).await.unwrap();
    }
    // A static instance is a persistent node: the expiry does not touch it.
    let fixed = ServiceInstance::new("api")
        .with_id("static-1")
        .with_address("10.0.0.4", 7000)
        .with_type(ServiceType::Static);
    discovery.register(fixed).await.unwrap();
    let static_path = format!("{base}/api/static-1");
    let static_before = w.exists(&static_path).await.unwrap().expect("static node");
    assert_eq!(static_before.ephemeral_owner, 0);
    let before = w.session_id();
    assert_eq!(owner_of(&w, &format!("{base}/api/rust-1")).await, before.0);

    let after = expire_and_await_new_session(&connect, &w).await;
    await_children(&w, &format!("{base}/api"), 3).await;
    for id in ["rust-1", "rust-2"] {
        assert_eq!(owner_of(&w, &format!("{base}/api/{id}")).await, after.0);
    }
    let static_after = w.exists(&static_path).await.unwrap().expect("static node");
    assert_eq!(static_after.czxid, static_before.czxid);
    let mut picks = curator_picks(&mut peer, "api", 3, 6).await;
    picks.sort();
    assert_eq!(
        picks,
        [
            "rust-1", "rust-1", "rust-2", "rust-2", "static-1", "static-1"
        ]
    );

    // A sticky provider of ours keeps to one instance while it is there.
    let provider = discovery
        .service_provider("api", ProviderStrategy::sticky(Strategy::Random))
        .await
        .unwrap();
    let mut events = provider.cache().events();
    provider.initialized().await.unwrap();
    within("the instances cached", async {
        while provider.all_instances().len() < 3 {
            events.next().await.expect("cache events");
        }
    })
    .await;
    let first = provider.instance().unwrap().id;
    for _ in 0..5 {
        assert_eq!(provider.instance().unwrap().id, first);
    }
    discovery.close().await.unwrap();
    peer.send("quit").await;
    await_children(&w, &format!("{base}/api"), 0).await;
}
