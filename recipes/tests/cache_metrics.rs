//! Cargo feature `metrics`: a tree cache publishes how many nodes it holds.

mod common;

use std::time::Duration;

use common::{PATIENCE, start_server, unique_path, warden};
use metrics_exporter_prometheus::PrometheusBuilder;
use zkwarden_recipes::cache::TreeCache;

#[tokio::test]
async fn the_cache_size_gauge_follows_the_tree() {
    // The recorder is process-wide; this is the only test in this binary.
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("install the recorder");
    let server = start_server().await;
    let warden = warden(&server.connect_string()).await;
    let root = unique_path("sized");
    for child in ["a", "b", "c"] {
        warden
            .create(&format!("{root}/{child}"), b"x")
            .parents(zkwarden::warden::ParentMode::Persistent)
            .await
            .unwrap();
    }
    let cache = TreeCache::builder(&warden, &root).start().await.unwrap();
    cache.initialized().await.unwrap();

    // The gauge is set once the engine has applied a change; the scrape is polled until it
    // shows the size the cache itself reports, or the test's patience runs out.
    let series = format!("zkwarden_cache_nodes{{path=\"{root}\"}}");
    let gauge = |scrape: &str| -> Option<f64> {
        scrape
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str())?.trim().parse().ok())
    };
    let wait_for = |wanted: f64| {
        let prometheus = &prometheus;
        let gauge = &gauge;
        async move {
            tokio::time::timeout(PATIENCE, async {
                while gauge(&prometheus.render()) != Some(wanted) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("gauge never showed {wanted}: {}", prometheus.render()));
        }
    };
    assert_eq!(cache.len(), 4);
    wait_for(4.0).await;
    warden.delete(&format!("{root}/a"), None).await.unwrap();
    wait_for(3.0).await;
    assert_eq!(cache.len(), 3);
}
