//! Serves a warden's metrics in Prometheus text format (cargo feature `metrics`).
//!
//! ```text
//! cargo run --features testing,metrics --example metrics     # then: curl 127.0.0.1:9464/metrics
//! ZK_CONNECT=127.0.0.1:2181 cargo run --features testing,metrics --example metrics
//! ```
//!
//! Starts its own server unless `ZK_CONNECT` names one, reads and writes a node every second,
//! and answers every HTTP request on `127.0.0.1:9464` (or `METRICS_ADDR`) with the current
//! scrape. Break the server under it and watch `zkwarden_retries`,
//! `zkwarden_connection_transitions` and `zkwarden_connection_suspended_time` move.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use zkwarden::testing::ZkServer;
use zkwarden::{CreateMode, Warden};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let (connect, _server) = match std::env::var("ZK_CONNECT") {
        Ok(connect) => (connect, None),
        Err(_) => {
            let server = tokio::task::spawn_blocking(ZkServer::start).await??;
            (server.connect_string(), Some(server))
        }
    };
    let warden = Warden::builder(&connect).start().await?;
    let addr = std::env::var("METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".into());
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "ZooKeeper at {connect}; metrics at http://{}/metrics",
        listener.local_addr()?
    );

    let worker = warden.clone();
    tokio::spawn(async move {
        let path = "/zkwarden-metrics-example";
        let _ = worker.create(path, b"0").mode(CreateMode::Ephemeral).await;
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        for n in 0u64.. {
            ticks.tick().await;
            if let Err(e) = worker.set_data(path, n.to_string().as_bytes(), None).await {
                eprintln!("set_data: {e}");
            }
        }
    });

    loop {
        let (mut socket, _) = listener.accept().await?;
        let body = prometheus.render();
        tokio::spawn(async move {
            // Read (and ignore) the request; every path gets the scrape.
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}
